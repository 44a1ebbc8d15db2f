//! The `contentHash` of an installed item, exactly as codex-flows computes
//! it, so a lock written by either tool verifies under the other: walk the
//! directory (skipping `.git`, each level sorted by name the way
//! JavaScript's `localeCompare` sorts, files only); for each file feed
//! `relative/posix/path`, NUL, the hex sha256 of its bytes, NUL into one
//! sha256; the hash is `sha256:` + its hex.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// A directory's hash and the bytes of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub hash: String,
    pub bytes: u64,
}

/// Hashes the files under `root`.
pub fn hash_dir(root: &Path) -> Result<Digested> {
    let mut outer = Sha256::new();
    let mut bytes = 0;
    for file in walk_files(root)? {
        let contents = std::fs::read(&file).with_context(|| format!("failed to read {}", file.display()))?;
        bytes += contents.len() as u64;
        let relative = file.strip_prefix(root).unwrap_or(&file);
        let posix: Vec<String> =
            relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
        outer.update(posix.join("/").as_bytes());
        outer.update([0]);
        outer.update(format!("{:x}", Sha256::digest(&contents)).as_bytes());
        outer.update([0]);
    }
    Ok(Digested { hash: format!("sha256:{:x}", outer.finalize()), bytes })
}

/// Files under `root` in codex-flows' order; none when it does not exist.
pub fn walk_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("failed to read {}", dir.display())),
    };
    let mut entries: Vec<_> = entries.collect::<std::io::Result<_>>()?;
    entries.sort_by(|a, b| locale_compare(&a.file_name().to_string_lossy(), &b.file_name().to_string_lossy()));
    for entry in entries {
        if entry.file_name() == ".git" {
            continue;
        }
        // Like Node's Dirent: a symbolic link is neither a file nor a directory.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// `a.localeCompare(b)` as Node (ICU's root collation) orders names of
/// ASCII letters, digits and punctuation: punctuation and symbols first in
/// ICU's order, then digits, then letters ignoring case; then, between
/// names equal so far, lowercase before uppercase. Other characters sort
/// after ASCII by code point (an approximation: pack names are ASCII).
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    let primary = |text: &str| text.chars().map(primary_weight).collect::<Vec<u32>>();
    let tertiary = |text: &str| text.chars().map(|c| u32::from(c.is_ascii_uppercase())).collect::<Vec<u32>>();
    primary(a).cmp(&primary(b)).then_with(|| tertiary(a).cmp(&tertiary(b))).then_with(|| a.cmp(b))
}

/// ICU root collation's order of the ASCII characters that are not letters
/// or digits (CLDR root chart: whitespace, punctuation, symbols, currency).
const SYMBOLS: &str = "\t\n\u{b}\u{c}\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

fn primary_weight(c: char) -> u32 {
    if let Some(at) = SYMBOLS.find(c) {
        return at as u32;
    }
    match c {
        '0'..='9' => 100 + (c as u32 - '0' as u32),
        'a'..='z' => 200 + (c as u32 - 'a' as u32),
        'A'..='Z' => 200 + (c as u32 - 'A' as u32),
        other => 1_000 + other as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_locale_compare_does() {
        // Orders Node prints for `[...].sort((a, b) => a.localeCompare(b))`.
        let mut names =
            vec!["b.txt", "B.txt", "a", "A", "_x", "-x", "10", "9", "Zeta", "alpha", "a-b", "a_b", "ab", "a.b"];
        names.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(
            names,
            ["_x", "-x", "10", "9", "a", "A", "a_b", "a-b", "a.b", "ab", "alpha", "b.txt", "B.txt", "Zeta"]
        );
    }

    #[test]
    fn hashes_paths_and_contents_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("exec")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("flow.toml"), "name = 'x'\n").unwrap();
        std::fs::write(dir.path().join("exec/run.ts"), "x").unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "ignored").unwrap();
        let digested = hash_dir(dir.path()).unwrap();
        let mut outer = Sha256::new();
        for (path, contents) in [("exec/run.ts", "x"), ("flow.toml", "name = 'x'\n")] {
            outer.update(format!("{path}\0{:x}\0", Sha256::digest(contents)));
        }
        assert_eq!(digested.hash, format!("sha256:{:x}", outer.finalize()));
        assert_eq!(digested.bytes, 12);
    }
}
