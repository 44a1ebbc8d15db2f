//! Table tests of tag globs and version order.

use super::{glob_match, TagRule, Version};

#[test]
fn glob_cases() {
    // (pattern, texts that match, texts that don't)
    let cases: [(&str, &[&str], &[&str]); 21] = [
        ("rust-v*", &["rust-v0.130.0", "rust-v"], &["v0.130.0", "rust-"]),
        ("v?.*", &["v1.2.3", "v1."], &["v10.2.3", "v.1"]),
        ("v[0-9].*", &["v1.0"], &["vx.0"]),
        ("[abc]x", &["ax", "bx"], &["dx", "x", "abx"]),
        ("[!abc]x", &["dx", "-x"], &["ax", "x"]),
        ("[]a]", &["]", "a"], &["b"]),
        ("[!]]", &["a"], &["]"]),
        ("[a-]", &["a", "-"], &["b"]),
        ("a[b", &["a[b"], &["ab"]),
        // Actions' rules: `*` stops at `/`, `**` does not.
        ("*", &["", "rust-v1"], &["patchmoi/rust-v1"]),
        ("**", &["", "patchmoi/rust-v1", "a/b/c"], &[]),
        ("patchmoi/*", &["patchmoi/a", "patchmoi/"], &["patchmoi", "patchmoi/a/b"]),
        ("patchmoi/**", &["patchmoi/a/b", "patchmoi/"], &["patchmoi"]),
        ("releases/**-alpha", &["releases/v1/x-alpha", "releases/-alpha"], &["releases/v1-beta"]),
        ("*/*", &["openai/codex"], &["openai", "a/b/c"]),
        ("v?.0", &["v1.0"], &["v/.0", "v10.0"]),
        ("a***b", &["ab", "a/x/b"], &["a/x/c"]),
        ("@*/pkg@*", &["@scope/pkg@1.2.3"], &["@a/b/pkg@1"]),
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
        // PEP 440: pre-releases right after the numbers, as the semver they equal.
        ("v2.1.0rc1", Some("2.1.0-rc.1"), true),
        ("2.1.0.rc1", Some("2.1.0-rc.1"), true),
        ("v3.12.0b4", Some("3.12.0-beta.4"), true),
        ("v3.12.0a1", Some("3.12.0-alpha.1"), true),
        ("1.0c2", Some("1.0-rc.2"), true),
        ("v1.0.0-rc1", Some("1.0.0-rc.1"), true),
        ("v1.0.0.post1", Some("1.0.0.post1"), false),
        ("v1.0.0.dev3", Some("1.0.0.dev3"), true),
        // Calendar versions, dotted or dashed.
        ("release-2024-05-01", Some("2024.5.1"), false),
        ("2024.05.01", Some("2024.5.1"), false),
        // The version is the word that starts with a digit (or `v` and one).
        ("h2-v0.4.1", Some("0.4.1"), false),
        ("python3.12-v3.12.1", Some("3.12.1"), false),
        ("go1.22.0", Some("1.22.0"), false),
        ("@scope/pkg@1.2.3", Some("1.2.3"), false),
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
    let ascending: Vec<&str> = "0.9.0 0.10.0 0.130.0 1.0.0.dev1 1.0.0-alpha 1.0.0-alpha.1 \
        1.0.0-alpha.beta 1.0.0-beta 1.0.0-beta.2 1.0.0-beta.11 1.0.0rc9 1.0.0-rc10 \
        1.0.0 1.0.0.post1 1.0.0.post2 1.0.1 1.1 1.1.0 2 2024.4.30 2024-05-01 2024.5.2"
        .split_whitespace()
        .collect();
    for pair in ascending.windows(2) {
        assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
    }
    assert_eq!(v("v1.2.3").cmp(&v("rust-1.2.3")), std::cmp::Ordering::Equal);
    assert_eq!(v("v2.1.0rc1"), v("v2.1.0-rc.1"));
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
fn a_pep_440_pre_release_is_never_the_newest_stable() {
    let tags = ["v2.0.0", "v2.1.0rc1", "v2.1.0b2", "v2.1.0.dev1", "v2.0.1.post1"];
    let none: Vec<String> = Vec::new();
    let stable = TagRule { pattern: "v*", prereleases: false, skip: &none };
    assert_eq!(stable.newest(tags), Some("v2.0.1.post1"));
    let any = TagRule { pattern: "v*", prereleases: true, skip: &none };
    assert_eq!(any.newest(tags), Some("v2.1.0rc1"));
}

#[test]
fn tag_globs_keep_star_within_one_path_segment() {
    let none: Vec<String> = Vec::new();
    let tags = ["codex/v1.0.0", "v0.9.0", "tools/codex/v2.0.0"];
    let cases = [("*", Some("v0.9.0")), ("*/v*", Some("codex/v1.0.0")), ("**/v*", Some("tools/codex/v2.0.0"))];
    for (pattern, want) in cases {
        assert_eq!(TagRule { pattern, prereleases: false, skip: &none }.newest(tags), want, "{pattern}");
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
