//! Which upstream release tags a flow follows, and which of them is newest.
//!
//! Tags are matched with globs from the flow file, by GitHub Actions'
//! filter rules for branches and tags (`*` stops at `/`, `**` does not),
//! and ordered by the version read out of them: semver, with PEP 440's
//! pre-, post- and dev-releases recognised (`v2.1.0rc1` is a pre-release)
//! and calendar versions (`2024.05.01`, `2024-05-01`) ordered by number, so
//! `rust-v0.10.0` is newer than `rust-v0.9.0` though it sorts before it as
//! a string.

use std::cmp::Ordering;

/// Glob match as GitHub Actions filters branches and tags: `*` matches
/// any run of characters but `/`, `**` any run at all, `?` one character
/// but `/`, `[abc]`, `[a-z]` and `[!abc]` one character of (or not of) a
/// class; everything else is literal. The whole of `text` must match. A `[`
/// without a closing `]` is literal.
/// https://docs.github.com/actions/writing-workflows/workflow-syntax-for-github-actions#filter-pattern-cheat-sheet
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // matches[p][t]: whether pattern[p..] matches text[t..], filled from the end.
    let mut matches = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    matches[pattern.len()][text.len()] = true;
    for p in (0..pattern.len()).rev() {
        let double = pattern[p] == '*' && pattern.get(p + 1) == Some(&'*');
        // The second `*` of a `**` is handled with the first.
        let second = pattern[p] == '*' && p > 0 && pattern[p - 1] == '*' && !(p > 1 && pattern[p - 2] == '*');
        for t in (0..=text.len()).rev() {
            matches[p][t] = if double {
                // `**`: nothing, or one more character of any kind.
                matches[p + 2][t] || (t < text.len() && matches[p][t + 1])
            } else if pattern[p] == '*' && !second {
                matches[p + 1][t] || (t < text.len() && text[t] != '/' && matches[p][t + 1])
            } else if second {
                matches[p + 1][t]
            } else {
                t < text.len() && match_one(&pattern[p..], text[t]).is_some_and(|width| matches[p + width][t + 1])
            };
        }
    }
    matches[0][0]
}

/// When the pattern element at the start of `pattern` (not `*`) matches `c`,
/// how many pattern characters that element spans.
fn match_one(pattern: &[char], c: char) -> Option<usize> {
    match *pattern.first()? {
        '?' => (c != '/').then_some(1),
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

/// A version read out of a release tag: numbers `N(.N)*` (or `N(-N)*`, a
/// calendar date), then a pre-release, semver's `-ident(.ident)*` or PEP
/// 440's `a1`, `b2`, `rc3`, `.dev4` right after the numbers, then PEP 440's
/// `.post5`; build metadata (`+...`) and anything else after it is ignored.
/// The numbers start at the first digit that begins a word (after `-`,
/// `_`, `/`, `@` or a `v` that does), else at the first digit:
/// `rust-v0.130.0` -> 0.130.0, `h2-v0.4.1` -> 0.4.1, `v2.1.0rc1` -> 2.1.0
/// pre-release rc.1, `release-2024-05-01` -> 2024.5.1, `nightly` -> none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Vec<Ident>,
    /// PEP 440's post-release number (`.post1`): after the release.
    post: Option<u64>,
}

/// A pre-release identifier; numeric ones compare numerically (semver §11).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    // Declared in this order so PEP 440's `dev` sorts before every other
    // pre-release, and numeric identifiers before alphanumeric ones.
    Dev,
    Numeric(u64),
    Alpha(String),
}

impl Version {
    /// Reads the version out of `tag`, or None when it has no digits or a
    /// number too large for u64.
    pub fn parse_from_tag(tag: &str) -> Option<Version> {
        let mut rest = &tag[version_start(tag)?..];
        let mut numbers = Vec::new();
        // Dots separate the numbers; so do dashes when the first separator was one (2024-05-01).
        let mut separator = None;
        loop {
            let (digits, after) = split_run(rest, |c| c.is_ascii_digit());
            numbers.push(digits.parse().ok()?);
            rest = after;
            let next = after.chars().next().filter(|c| *c == '.' || (*c == '-' && separator != Some('.')));
            match next {
                Some(sep) if after[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    separator.get_or_insert(sep);
                    if separator != Some(sep) {
                        break;
                    }
                    rest = &after[1..];
                }
                _ => break,
            }
        }
        let (pre, after) = match rest.strip_prefix('-') {
            Some(semver) => semver_pre(semver)?,
            None => pep440_pre(rest)?,
        };
        let post = pep440_post(after)?;
        Some(Version { numbers, pre, post })
    }

    /// True for versions like `1.2.3-rc.1` and `2.1.0rc1`.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// Where the version in `tag` starts: the first digit that begins a word,
/// else the first digit.
fn version_start(tag: &str) -> Option<usize> {
    let bytes = tag.as_bytes();
    let boundary = |i: usize| i == 0 || matches!(bytes[i - 1], b'-' | b'_' | b'/' | b'@' | b' ');
    let word_start = (0..bytes.len()).find(|&i| {
        bytes[i].is_ascii_digit() && (boundary(i) || (matches!(bytes[i - 1], b'v' | b'V') && boundary(i - 1)))
    });
    word_start.or_else(|| tag.find(|c: char| c.is_ascii_digit()))
}

/// An identifier, split where letters turn to digits (`rc10` is `rc`, 10:
/// `rc9` < `rc10`, and `rc1` equals `rc.1`).
fn idents(ident: &str) -> Option<Vec<Ident>> {
    if ident.bytes().all(|b| b.is_ascii_digit()) {
        return Some(vec![Ident::Numeric(ident.parse().ok()?)]);
    }
    let (letters, digits) = split_run(ident, |c| !c.is_ascii_digit());
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !letters.ends_with('-') {
        return Some(vec![Ident::Alpha(letters.to_string()), Ident::Numeric(digits.parse().ok()?)]);
    }
    Some(vec![Ident::Alpha(ident.to_string())])
}

/// Semver's pre-release after its `-`, and what follows it.
fn semver_pre(mut rest: &str) -> Option<(Vec<Ident>, &str)> {
    let mut pre = Vec::new();
    loop {
        let (ident, after) = split_run(rest, |c| c.is_ascii_alphanumeric() || c == '-');
        if ident.is_empty() {
            return Some((pre, rest));
        }
        pre.extend(idents(ident)?);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return Some((pre, after)),
        }
    }
}

/// PEP 440's pre- or dev-release right after the numbers (`rc1`, `.rc1`,
/// `_b2`, `.dev3`, `a`), as the semver identifiers it equals
/// (`2.1.0rc1` = `2.1.0-rc.1`), and what follows it.
/// https://peps.python.org/pep-0440/#pre-releases
fn pep440_pre(rest: &str) -> Option<(Vec<Ident>, &str)> {
    let unseparated = rest.trim_start_matches(['.', '_']);
    let (word, after) = split_run(unseparated, |c| c.is_ascii_alphabetic());
    let kind = match word.to_ascii_lowercase().as_str() {
        "a" | "alpha" => Ident::Alpha("alpha".into()),
        "b" | "beta" => Ident::Alpha("beta".into()),
        "c" | "rc" | "pre" | "preview" => Ident::Alpha("rc".into()),
        "dev" => Ident::Dev,
        _ => return Some((Vec::new(), rest)),
    };
    let (digits, after) = split_run(after.trim_start_matches(['.', '_', '-']), |c| c.is_ascii_digit());
    let mut pre = vec![kind];
    if !digits.is_empty() {
        pre.push(Ident::Numeric(digits.parse().ok()?));
    }
    Some((pre, after))
}

/// PEP 440's post-release (`.post1`, `-post2`, `post3`), if `rest` starts with one.
fn pep440_post(rest: &str) -> Option<Option<u64>> {
    let unseparated = rest.trim_start_matches(['.', '_', '-']);
    let Some(after) = unseparated.strip_prefix("post").or_else(|| unseparated.strip_prefix("POST")) else {
        return Some(None);
    };
    let (digits, _) = split_run(after.trim_start_matches(['.', '_', '-']), |c| c.is_ascii_digit());
    Some(Some(if digits.is_empty() { 0 } else { digits.parse().ok()? }))
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
            // No post-release sorts before any (None < Some).
            .then_with(|| self.post.cmp(&other.post))
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
#[path = "tag_order_tests.rs"]
mod tests;
