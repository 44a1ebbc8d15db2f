//! Validation of branch and tag names that come from outside (flow files,
//! command-line flags) before they reach git.
//!
//! The rules are git-check-ref-format(1) applied to the full ref
//! `refs/heads/<name>`, plus our own rule that a name must not start with `-`
//! so git can never read it as an option.

/// Characters git forbids anywhere in a ref name, besides control characters
/// and space, which get their own wording.
use super::error::usage;
use super::text::shown;

const FORBIDDEN: [char; 7] = ['~', '^', ':', '?', '*', '[', '\\'];

/// Checks `name` (a branch or tag name as a user typed it, e.g.
/// `rust-v0.130.0`, `code-mode-exec-hooks`, `feature/x`) against git's
/// check-ref-format rules for the full ref name `refs/heads/<name>`, plus our
/// own rule that it must not start with `-`.
///
/// Returns `Err(reason)` where `reason` is a short lowercase phrase naming the
/// problem, e.g. `contains '..'`, meant to follow the name in an error message.
pub fn check_ref_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_string());
    }
    if name == "@" {
        return Err("is '@'".to_string());
    }
    if name.starts_with('-') {
        return Err("starts with '-'".to_string());
    }
    for c in name.chars() {
        if c.is_ascii_control() {
            return Err("contains a control character".to_string());
        }
        if c == ' ' {
            return Err("contains a space".to_string());
        }
        if FORBIDDEN.contains(&c) {
            return Err(format!("contains '{c}'"));
        }
    }
    for needle in ["..", "@{", "//"] {
        if name.contains(needle) {
            return Err(format!("contains '{needle}'"));
        }
    }
    // `refs/heads/` + a leading `/` would make an empty component.
    if name.starts_with('/') {
        return Err("starts with '/'".to_string());
    }
    if name.ends_with('/') {
        return Err("ends with '/'".to_string());
    }
    if name.ends_with('.') {
        return Err("ends with '.'".to_string());
    }
    if name.ends_with(".lock") {
        return Err("ends with '.lock'".to_string());
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err("has a component starting with '.'".to_string());
        }
        if component.ends_with(".lock") {
            return Err("has a component ending with '.lock'".to_string());
        }
    }
    Ok(())
}

/// `tag` as a release tag from outside (a flag, an input, an event), or a
/// usage error that names it.
pub fn check_tag(tag: &str) -> anyhow::Result<()> {
    check_ref_name(tag).map_err(|why| usage(format!("tag `{}` is not a valid tag name: it {why}", shown(tag))))
}

#[cfg(test)]
mod tests {
    use super::check_ref_name;

    #[test]
    fn accepts_valid_names() {
        let valid = [
            "rust-v0.130.0",
            "v1.2.3-rc.1",
            "patchmoi/rust-v0.1.0",
            "feature/x_y",
            "a@b",
            "code-mode-exec-hooks",
            "a/b/c",
            "x-",
            "@a",
            "a.b",
            "a.lockx",
            "lock",
            "a/lock/b",
            "release+build",
            "a{b}",
            "ünïcode",
            "a-/b",
        ];
        for name in valid {
            assert_eq!(check_ref_name(name), Ok(()), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let invalid = [
            ("", "is empty"),
            ("@", "is '@'"),
            ("-x", "starts with '-'"),
            ("--force", "starts with '-'"),
            ("a..b", "contains '..'"),
            ("..", "contains '..'"),
            ("a b", "contains a space"),
            ("a\tb", "contains a control character"),
            ("a\nb", "contains a control character"),
            ("a\u{0}b", "contains a control character"),
            ("a\u{7f}b", "contains a control character"),
            ("a~1", "contains '~'"),
            ("a^2", "contains '^'"),
            ("a:b", "contains ':'"),
            ("a?", "contains '?'"),
            ("a*", "contains '*'"),
            ("a[b", "contains '['"),
            ("a\\b", "contains '\\'"),
            ("a@{1}", "contains '@{'"),
            ("a//b", "contains '//'"),
            ("/a", "starts with '/'"),
            ("a/", "ends with '/'"),
            ("a.", "ends with '.'"),
            ("a/b.", "ends with '.'"),
            (".a", "has a component starting with '.'"),
            ("a/.b", "has a component starting with '.'"),
            ("./a", "has a component starting with '.'"),
            (".", "ends with '.'"),
            ("a.lock", "ends with '.lock'"),
            ("a.lock/b", "has a component ending with '.lock'"),
            ("a/b.lock", "ends with '.lock'"),
            ("x/a.lock/b", "has a component ending with '.lock'"),
        ];
        for (name, reason) in invalid {
            assert_eq!(check_ref_name(name), Err(reason.to_string()), "wrong verdict for {name:?}");
        }
    }
}
