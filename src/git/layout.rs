//! Where a repository keeps its objects and its config, its object format,
//! and whether it has replace refs: what a quarantine needs to know, read
//! off the settings' own `git config --list` where that answer is certain,
//! so that a small run starts one process fewer.
//!
//! `git config --list --show-scope --show-origin` names the file each
//! setting came from; the repository's own (`local`) settings come from
//! `<common git directory>/config`. git prints that path as it opened it:
//! absolute for a linked worktree, relative to the top level otherwise
//! (`.git/config`, or `config` in a bare repository). A relative one is
//! read only where the handle's directory is that top level beyond doubt
//! (its `.git` is a directory; for `config`, it is itself a git directory
//! with no `.git`), as git's discovery looks there first. Anything else (a
//! subdirectory, a `core.worktree`, includes, git's location variables set,
//! refs in a reftable, no local settings at all), and `git rev-parse`
//! answers as before; a test compares the two on every kind of repository.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::Git;
use crate::core::env::inherited_by_git;

/// The key of a setting as `git config --list -z` lists it (`key\nvalue`,
/// or the bare key of a setting without a value): section and name in lower
/// case.
pub(super) fn setting_key(entry: &str) -> &str {
    entry.split('\n').next().unwrap_or_default()
}

/// The last value of the setting `key` in `settings` (as `git config
/// --list -z` lists them): None when it is not set, Some(None) for a
/// setting written without a value.
pub(super) fn setting_value<'a>(settings: &'a [String], key: &str) -> Option<Option<&'a str>> {
    let entry = settings.iter().rev().find(|entry| setting_key(entry) == key)?;
    Some(entry.split_once('\n').map(|(_, value)| value))
}

/// A boolean setting as git reads it (`git_parse_maybe_bool`, then a
/// number): no value is true; true/yes/on and false/no/off/empty in any
/// case; a number is true unless 0. None for anything else (git would
/// refuse it).
pub(super) fn git_bool(value: Option<&str>) -> Option<bool> {
    let Some(value) = value else { return Some(true) };
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" | "" => Some(false),
        number => number.parse::<i64>().ok().map(|number| number != 0),
    }
}

/// See the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    pub objects: PathBuf,
    /// `sha1` or `sha256`.
    pub format: String,
    pub common_dir: PathBuf,
    /// Whether any `refs/replace/` ref exists (`git replay` is not used then).
    pub replace_refs: bool,
}

/// Variables that move the git directory, its objects, its replace refs,
/// or the file `git config` reads as the repository's.
const LOCATION_ENV: [&str; 6] =
    ["GIT_DIR", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_WORK_TREE", "GIT_REPLACE_REF_BASE", "GIT_CONFIG"];

impl Git {
    /// The settings in effect (`key\nvalue` each, as `git config --list -z`
    /// lists them) and, when they tell it beyond doubt, the layout: one
    /// process.
    pub(super) fn settings_and_layout(&self) -> Result<(Vec<String>, Option<Layout>)> {
        let out = self.run_bytes(&["config", "--list", "--show-scope", "--show-origin", "-z"], None)?;
        let text = String::from_utf8_lossy(&out);
        let fields: Vec<&str> = text.split('\0').collect();
        // scope, origin, setting; and the empty field after the last NUL.
        if fields.len() % 3 != 1 {
            bail!("git config --list printed {} fields, not three a setting", fields.len() - 1);
        }
        let mut settings = Vec::new();
        // The repository's own settings, where git reads its extensions.
        let mut local = Vec::new();
        let mut local_files: Vec<&str> = Vec::new();
        for triple in fields.chunks_exact(3) {
            let [scope, origin, setting] = triple else { unreachable!("chunks of three") };
            if *scope == "local" {
                if !local_files.contains(origin) {
                    local_files.push(origin);
                }
                local.push(setting.to_string());
            }
            settings.push(setting.to_string());
        }
        // One local file, not one it includes (whose settings are `local` too).
        let included = settings.iter().any(|entry| {
            let key = setting_key(entry);
            key.starts_with("include.") || key.starts_with("includeif.")
        });
        let layout = match local_files.as_slice() {
            [file] if !included => {
                file.strip_prefix("file:").and_then(|file| layout_from(&self.dir, file, &settings, &local))
            }
            _ => None,
        };
        Ok((settings, layout))
    }

    /// The layout as `git rev-parse` tells it.
    pub(super) fn layout_from_git(&self) -> Result<Layout> {
        let args = ["rev-parse", "--path-format=absolute", "--git-path", "objects", "--show-object-format"];
        let answers = self.run(&[&args[..], &["--git-common-dir", "--glob=refs/replace/*"]].concat())?;
        let mut answers = answers.lines().map(str::to_string);
        let (Some(objects), Some(format), Some(common_dir)) = (answers.next(), answers.next(), answers.next()) else {
            bail!("git rev-parse did not name the object directory, the format and the git directory");
        };
        let replace_refs = answers.next().is_some();
        Ok(Layout { objects: PathBuf::from(objects), format, common_dir: PathBuf::from(common_dir), replace_refs })
    }
}

/// The layout, from the file the local settings came from (as git printed
/// it), the settings and the repository's own (`local`) ones; None unless
/// certain. `rev-parse` prints absolute paths: a relative directory (a
/// workspace root given as `.`) is left to it.
fn layout_from(dir: &Path, local_file: &str, settings: &[String], local: &[String]) -> Option<Layout> {
    let moved = ["extensions.refstorage", "core.worktree"].iter().any(|key| setting_value(settings, key).is_some());
    if !dir.is_absolute() || moved || LOCATION_ENV.iter().any(|name| inherited_by_git(name)) {
        return None;
    }
    let dot_git = dir.join(".git");
    let file = match local_file {
        absolute if absolute.starts_with('/') => PathBuf::from(absolute),
        ".git/config" if dot_git.is_dir() => dot_git.join("config"),
        "config" if !dot_git.exists() && dir.join("HEAD").is_file() && dir.join("objects").is_dir() => {
            dir.join("config")
        }
        _ => return None,
    };
    let common_dir = file.parent()?.to_path_buf();
    if !file.is_file() || !common_dir.join("objects").is_dir() {
        return None;
    }
    let format = match setting_value(local, "extensions.objectformat") {
        None => "sha1".to_string(),
        Some(Some(format)) if format.eq_ignore_ascii_case("sha1") || format.eq_ignore_ascii_case("sha256") => {
            format.to_ascii_lowercase()
        }
        Some(_) => return None,
    };
    let replace_refs = has_replace_refs(&common_dir)?;
    Some(Layout { objects: common_dir.join("objects"), format, common_dir, replace_refs })
}

/// Whether the files backend holds any replace ref: a file under
/// `refs/replace/` (a lock counts too: this only keeps `git replay` out) or
/// a `packed-refs` line naming one. None when either cannot be read.
fn has_replace_refs(common_dir: &Path) -> Option<bool> {
    fn any_file(dir: &Path) -> Option<bool> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Some(false),
            Err(_) => return None,
        };
        for entry in entries {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            if !kind.is_dir() || any_file(&entry.path())? {
                return Some(true);
            }
        }
        Some(false)
    }
    if any_file(&common_dir.join("refs/replace"))? {
        return Some(true);
    }
    match std::fs::read_to_string(common_dir.join("packed-refs")) {
        Ok(packed) => Some(
            packed.lines().any(|line| line.split_once(' ').is_some_and(|(_, name)| name.starts_with("refs/replace/"))),
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::*;

    /// The layout read off the settings is `rev-parse`'s wherever it is
    /// read: a repository's top level, a bare repository, a linked
    /// worktree, with a replace ref packed or loose, in SHA-256; and it is
    /// not read from a subdirectory, where git's relative path would mislead.
    #[test]
    fn the_layout_read_off_the_settings_is_rev_parses() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("repo");
        let repo = FixtureRepo::init(&top).unwrap();
        let first = repo.commit("first", &[("sub/a", "1\n")]).unwrap();
        let second = repo.commit("second", &[("sub/a", "2\n")]).unwrap();
        let bare = dir.path().join("bare.git");
        repo.git(&["clone", "-q", "--bare", top.to_str().unwrap(), bare.to_str().unwrap()]).unwrap();
        let linked = dir.path().join("linked");
        repo.git(&["worktree", "add", "-q", "--detach", linked.to_str().unwrap()]).unwrap();
        let sha256 = dir.path().join("sha256");
        let status = std::process::Command::new("git")
            .args(["init", "-q", "--object-format=sha256", sha256.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());

        let compare = |at: &Path, read: bool| {
            let git = Git::at(at);
            let (_, layout) = git.settings_and_layout().unwrap();
            let expected = git.layout_from_git().unwrap();
            match layout {
                Some(layout) => assert_eq!(layout, expected, "{}", at.display()),
                None => assert!(!read, "{}: not read", at.display()),
            }
            assert_eq!(layout_read(&git), read, "{}", at.display());
        };
        fn layout_read(git: &Git) -> bool {
            git.settings_and_layout().unwrap().1.is_some()
        }
        for (at, read) in [(&top, true), (&bare, true), (&linked, true), (&sha256, true), (&top.join("sub"), false)] {
            compare(at, read);
        }
        // Booleans as git reads them (`config --type=bool`).
        for value in [None, Some(""), Some("yes"), Some("Off"), Some("2"), Some("0"), Some("-1")] {
            let setting = value.map_or("x.y".to_string(), |value| format!("x.y={value}"));
            let read = Git::at(&top).with_config(&setting).run(&["config", "--type=bool", "x.y"]).unwrap();
            assert_eq!(git_bool(value), Some(read == "true"), "{value:?}");
        }
        // A relative directory (a workspace root given as `.`): rev-parse's
        // paths are absolute, so it answers.
        assert_eq!(layout_from(Path::new("."), ".git/config", &[], &[]), None);
        repo.git(&["replace", &second, &first]).unwrap();
        compare(&top, true);
        repo.git(&["pack-refs", "--all"]).unwrap();
        compare(&top, true);
        assert!(Git::at(&top).settings_and_layout().unwrap().1.unwrap().replace_refs);
    }
}
