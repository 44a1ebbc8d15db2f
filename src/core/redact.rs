//! Hiding credentials in text meant for people: the user-info part of URLs
//! (a token in `https://x-access-token:TOKEN@github.com/…` must never reach
//! a log or an error).

/// Hides the user-info part of every URL in `text` (`https://user:token@host`
/// becomes `https://***@host`): a token must never reach a log or an error.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        let cases = [
            ("https://x-access-token:ghs_secret@github.com/o/r.git", "https://***@github.com/o/r.git"),
            (
                "fatal: unable to access 'https://tok@host/x/': 403",
                "fatal: unable to access 'https://***@host/x/': 403",
            ),
            ("https://github.com/openai/codex.git", "https://github.com/openai/codex.git"),
            ("/local/path", "/local/path"),
            ("a https://u:p@h/ b ssh://git@h2:22/r", "a https://***@h/ b ssh://***@h2:22/r"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }
}
