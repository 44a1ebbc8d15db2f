//! Untrusted text shown to people: a tag, a flow name or a path from
//! outside may hold control characters and terminal escape sequences,
//! which must reach a terminal as visible escapes, never as commands.

/// `text` with every control character written as an escape (`\n`, `\t`,
/// `\u{1b}`), the rest as it is.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A whole message for a terminal: line breaks and tabs kept (messages from
/// git span lines), every other control character escaped.
pub fn printable(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(shown("v1\n\u{1b}[31mred"), "v1\\n\\u{1b}[31mred");
        assert_eq!(shown("rust-v0.130.0"), "rust-v0.130.0");
        assert_eq!(printable("line one\nline\ttwo \u{1b}]0;title\u{7}"), "line one\nline\ttwo \\u{1b}]0;title\\u{7}");
    }
}
