//! Secrets are values, not names: every secret the process holds is kept
//! here, and each value is scrubbed from everything patchmoi writes or
//! prints.

/// Hides every secret in `text`: for logs and files that people read.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}
