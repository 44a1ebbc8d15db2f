//! Which upstream release tags a flow follows, and which of them is newest.
//!
//! Tags are matched with shell-style globs from the flow file and ordered by
//! the version read out of them, semver-style, so `rust-v0.10.0` is newer
//! than `rust-v0.9.0` even though it sorts before it as a string.

use std::cmp::Ordering;

/// Shell-style glob match as used in flow files: `*` matches any run of
/// characters (including `/`), `?` one character, `[abc]`, `[a-z]` and
/// `[!abc]` classes; everything else is literal. The whole of `text` must
/// match. A `[` without a closing `]` is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and how much text it has swallowed so far; on a
    // mismatch it swallows one more character and we retry from there.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&'*') {
            star = Some((p, t));
            p += 1;
        } else if let Some(width) = match_one(&pattern[p..], text[t]) {
            p += width;
            t += 1;
        } else if let Some((sp, st)) = star {
            star = Some((sp, st + 1));
            p = sp + 1;
            t = st + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// When the pattern element at the start of `pattern` (not `*`) matches `c`,
/// how many pattern characters that element spans.
fn match_one(pattern: &[char], c: char) -> Option<usize> {
    match *pattern.first()? {
        '?' => Some(1),
        '[' => match class(&pattern[1..], c) {
            Some((hit, width)) => hit.then_some(width + 1),
            // A `[` that never closes is literal.
            None => (c == '[').then_some(1),
        },
        literal => (literal == c).then_some(1),
    }
}

/// Reads a class body (what follows `[`): whether `c` is a member, and how
/// many characters the body spans including `]`; None when unterminated.
fn class(body: &[char], c: char) -> Option<(bool, usize)> {
    let negated = body.first() == Some(&'!');
    let start = usize::from(negated);
    let mut hit = false;
    let mut i = start;
    loop {
        let lo = *body.get(i)?;
        // As in sh, a `]` right after `[` or `[!` is a member, not the end.
        if lo == ']' && i > start {
            return Some((hit != negated, i + 1));
        }
        let hi = match (body.get(i + 1), body.get(i + 2)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                i += 2;
                hi
            }
            _ => lo,
        };
        hit |= lo <= c && c <= hi;
        i += 1;
    }
}

/// A version read out of a release tag: the first run that starts with a
/// digit, shaped `N(.N)*`, optionally followed by a pre-release part
/// `-ident(.ident)*`; build metadata (`+...`) and anything else after it is
/// ignored. `rust-v0.130.0` -> 0.130.0, `v1.2.3-rc.2` -> 1.2.3-rc.2,
/// `release-2024.05` -> 2024.5, `nightly` -> none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Vec<Ident>,
}

/// A pre-release identifier; numeric ones compare numerically (semver §11).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    // Declared first so numeric identifiers sort before alphanumeric ones.
    Numeric(u64),
    Alpha(String),
}

impl Version {
    /// Reads the version out of `tag`, or None when it has no digits or a
    /// number too large for u64.
    pub fn parse_from_tag(tag: &str) -> Option<Version> {
        let start = tag.find(|c: char| c.is_ascii_digit())?;
        let mut rest = &tag[start..];
        let mut numbers = Vec::new();
        loop {
            let (digits, after) = split_run(rest, |c| c.is_ascii_digit());
            numbers.push(digits.parse().ok()?);
            rest = after;
            match rest.strip_prefix('.') {
                Some(next) if next.starts_with(|c: char| c.is_ascii_digit()) => rest = next,
                _ => break,
            }
        }
        let mut pre = Vec::new();
        if let Some(mut rest) = rest.strip_prefix('-') {
            loop {
                let (ident, after) = split_run(rest, |c| c.is_ascii_alphanumeric() || c == '-');
                if ident.is_empty() {
                    break;
                }
                pre.push(if ident.bytes().all(|b| b.is_ascii_digit()) {
                    Ident::Numeric(ident.parse().ok()?)
                } else {
                    Ident::Alpha(ident.to_string())
                });
                match after.strip_prefix('.') {
                    Some(next) => rest = next,
                    None => break,
                }
            }
        }
        Some(Version { numbers, pre })
    }

    /// True for versions like `1.2.3-rc.1`.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// Splits `s` after its leading run of characters that satisfy `keep`.
fn split_run(s: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    s.split_at(s.find(|c: char| !keep(c)).unwrap_or(s.len()))
}

impl Ord for Version {
    /// Numbers compare numerically with missing ones counting as 0; a
    /// pre-release sorts before the same version without one; identifiers
    /// compare per semver §11. As a last resort fewer numbers sort first
    /// (1.2 < 1.2.0) so the order agrees with the derived `Eq`.
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.numbers.len().max(other.numbers.len());
        let number = |v: &Version, i: usize| v.numbers.get(i).copied().unwrap_or(0);
        (0..len)
            .map(|i| number(self, i).cmp(&number(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // Lexicographic slice order is exactly semver's rule that
                // more identifiers win when the shared prefix is equal.
                _ => self.pre.cmp(&other.pre),
            })
            .then_with(|| self.numbers.len().cmp(&other.numbers.len()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Which tags a flow follows, and the newest of them.
pub struct TagRule<'a> {
    /// Glob a tag must match.
    pub pattern: &'a str,
    /// Whether pre-release tags (`v1.2.3-rc.1`) are followed.
    pub prereleases: bool,
    /// Globs (or exact names) of tags never to follow.
    pub skip: &'a [String],
}

impl TagRule<'_> {
    /// True when `tag` matches `pattern`, is not matched by any glob in
    /// `skip`, has a version, and is not a pre-release unless `prereleases`.
    pub fn follows(&self, tag: &str) -> bool {
        self.version_of(tag).is_some()
    }

    /// The newest followed tag in version order. Tags with equal versions are
    /// ordered by the tag string (greater wins) so the answer never depends
    /// on input order.
    pub fn newest<'t>(&self, tags: impl IntoIterator<Item = &'t str>) -> Option<&'t str> {
        tags.into_iter().filter_map(|tag| Some((self.version_of(tag)?, tag))).max().map(|(_, tag)| tag)
    }

    fn version_of(&self, tag: &str) -> Option<Version> {
        if !glob_match(self.pattern, tag) || self.skip.iter().any(|s| glob_match(s, tag)) {
            return None;
        }
        Version::parse_from_tag(tag).filter(|v| self.prereleases || !v.is_prerelease())
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_match, TagRule, Version};

    #[test]
    fn glob_cases() {
        // (pattern, texts that match, texts that don't)
        let cases: [(&str, &[&str], &[&str]); 14] = [
            ("rust-v*", &["rust-v0.130.0", "rust-v"], &["v0.130.0", "rust-"]),
            ("v?.*", &["v1.2.3", "v1."], &["v10.2.3", "v.1"]),
            ("v[0-9].*", &["v1.0"], &["vx.0"]),
            ("[abc]x", &["ax", "bx"], &["dx", "x", "abx"]),
            ("[!abc]x", &["dx", "-x"], &["ax", "x"]),
            ("[]a]", &["]", "a"], &["b"]),
            ("[!]]", &["a"], &["]"]),
            ("[a-]", &["a", "-"], &["b"]),
            ("a[b", &["a[b"], &["ab"]),
            ("*", &["", "patchmoi/rust-v1"], &[]),
            ("patchmoi/*", &["patchmoi/a/b", "patchmoi/"], &["patchmoi"]),
            ("*a*b", &["xaxxbyb", "ab"], &["xaxxby", "ba"]),
            ("", &[""], &["a"]),
            ("?", &["é"], &["", "ab"]),
        ];
        for (pattern, yes, no) in cases {
            for text in yes {
                assert!(glob_match(pattern, text), "{pattern:?} should match {text:?}");
            }
            for text in no {
                assert!(!glob_match(pattern, text), "{pattern:?} matched {text:?}");
            }
        }
    }

    fn v(tag: &str) -> Version {
        Version::parse_from_tag(tag).unwrap_or_else(|| panic!("no version in {tag:?}"))
    }

    #[test]
    fn parses_versions_from_tags() {
        // (tag, the version it should equal, is it a pre-release)
        let cases = [
            ("rust-v0.130.0", Some("0.130.0"), false),
            ("v1.2.3-rc.2", Some("1.2.3-rc.2"), true),
            ("0.5.0-alpha.12", Some("0.5.0-alpha.12"), true),
            ("release-2024.05", Some("2024.5"), false),
            ("v1.2.3+build.7", Some("1.2.3"), false),
            ("v1.2.3-rc.1+build", Some("1.2.3-rc.1"), true),
            ("v1.2.", Some("1.2"), false),
            ("v1.2.3-", Some("1.2.3"), false),
            ("v1.2.3-rc.", Some("1.2.3-rc"), true),
            ("nightly", None, false),
            ("", None, false),
            ("v99999999999999999999", None, false),
        ];
        for (tag, want, pre) in cases {
            let got = Version::parse_from_tag(tag);
            assert_eq!(got, want.map(v), "{tag:?}");
            assert_eq!(got.is_some_and(|g| g.is_prerelease()), pre, "{tag:?}");
        }
    }

    #[test]
    fn orders_versions() {
        let ascending: Vec<&str> = "0.9.0 0.10.0 0.130.0 1.0.0-alpha 1.0.0-alpha.1 \
            1.0.0-alpha.beta 1.0.0-beta 1.0.0-beta.2 1.0.0-beta.11 1.0.0-rc.1 \
            1.0.0 1.0.1 1.1 1.1.0 2"
            .split_whitespace()
            .collect();
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        assert_eq!(v("v1.2.3").cmp(&v("rust-1.2.3")), std::cmp::Ordering::Equal);
    }

    #[test]
    fn picks_newest_followed_tag() {
        let tags: Vec<&str> = "rust-v0.9.0 rust-v0.130.0 rust-v0.10.0 rust-v0.131.0-alpha.2 \
            rust-v0.131.0-alpha.10 rust-v0.129.0 rust-vnext v9.9.9 rust-v1.0.0-rc.1"
            .split_whitespace()
            .collect();
        let none: Vec<String> = Vec::new();
        let exact = vec!["rust-v0.130.0".to_string()];
        let globs = vec!["rust-v0.13[0-9].0".to_string(), "*-rc.*".to_string()];
        // (pattern, prereleases, skip, newest)
        let cases: [(&str, bool, &[String], Option<&str>); 6] = [
            ("rust-v*", false, &none, Some("rust-v0.130.0")),
            ("rust-v*", true, &none, Some("rust-v1.0.0-rc.1")),
            ("rust-v*", false, &exact, Some("rust-v0.129.0")),
            ("rust-v*", true, &globs, Some("rust-v0.131.0-alpha.10")),
            ("v*", false, &none, Some("v9.9.9")),
            ("go-v*", true, &none, None),
        ];
        for (pattern, prereleases, skip, want) in cases {
            let rule = TagRule { pattern, prereleases, skip };
            let forward = rule.newest(tags.iter().copied());
            let backward = rule.newest(tags.iter().rev().copied());
            assert_eq!((forward, backward), (want, want), "{pattern} {prereleases}");
        }
    }

    #[test]
    fn follows_and_breaks_ties_by_tag() {
        let skip = ["v2.0.0".to_string()];
        let rule = TagRule { pattern: "*", prereleases: false, skip: &skip };
        let cases = [("v1.0.0", true), ("v2.0.0", false), ("v1.0-rc", false), ("x", false)];
        for (tag, want) in cases {
            assert_eq!(rule.follows(tag), want, "{tag}");
        }
        let tied = ["a-1.0.0", "c-1.0.0", "b-1.0.0"];
        assert_eq!(rule.newest(tied), Some("c-1.0.0"));
        assert_eq!(rule.newest(tied.into_iter().rev()), Some("c-1.0.0"));
        assert_eq!(rule.newest([]), None);
    }
}
