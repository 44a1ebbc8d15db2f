//! A remote that is a repository on this machine (a mirror, a cache, the
//! benchmark's upstream): the values a fetch would take from it, read from
//! its files with no process.
//!
//! `git fetch <path>` starts four processes (fetch, a shell, upload-pack,
//! then a connectivity check), the costliest step of a small run, to learn
//! what the other repository's refs point at. Where the answer is objects
//! this repository has under a ref already, git itself transfers nothing
//! (`check_exist_and_connected` in builtin/fetch.c); the caller then only
//! copies the values. Read here only where git would advertise exactly
//! those values: anything unusual about the path, its repository or the
//! settings, and the caller fetches as before.

use std::path::{Path, PathBuf};

use super::layout::setting_key;
use super::pack::id_len;
use super::Quarantine;
use crate::core::env::inherited_by_git;

/// Settings (lower case, as `git config --list` prints them) under which
/// a fetch from a path could see other refs, or none: rewritten URLs, a
/// protocol policy, refs hidden from upload-pack, and includes (an
/// `includeIf "gitdir:<upstream>"` applies in upload-pack, run there, and
/// not here).
const TRANSPORT_SETTINGS: [&str; 6] =
    ["url.", "protocol.", "transfer.hiderefs", "uploadpack.hiderefs", "include.", "includeif."];

/// Variables of git's environment with the same power: a protocol policy
/// (`protocol.file.allow` defaults to `user`) and ref namespaces.
const TRANSPORT_ENV: [&str; 3] = ["GIT_ALLOW_PROTOCOL", "GIT_PROTOCOL_FROM_USER", "GIT_NAMESPACE"];

impl Quarantine {
    /// The values of `refs` (full ref names, or `HEAD`) in `remote`, as a
    /// fetch from it would take them, when `remote` is a repository on
    /// this machine that can be read exactly; None otherwise, or when any
    /// of them is missing or symbolic (the caller then fetches, and git
    /// says what it says).
    pub fn local_remote_refs(&self, remote: &str, refs: &[&str]) -> Option<Vec<String>> {
        let settings = self.settings()?;
        if settings.iter().any(|entry| TRANSPORT_SETTINGS.iter().any(|key| setting_key(entry).starts_with(key))) {
            return None;
        }
        if TRANSPORT_ENV.iter().any(|name| inherited_by_git(name)) {
            return None;
        }
        let git_dir = local_git_dir(remote)?;
        let hex_len = 2 * id_len(self.format());
        let repo = LocalRepo { git_dir, hex_len, packed: std::sync::OnceLock::new() };
        refs.iter().map(|refname| repo.resolve(refname)).collect()
    }
}

/// Whether `remote` is a path to a repository on this machine that
/// [`Quarantine::local_remote_refs`] may read (the settings decide the rest).
pub fn is_local_repository(remote: &str) -> bool {
    local_git_dir(remote).is_some()
}

/// The git directory `remote` names, when it is a plain local path (or a
/// `file://` URL without escapes) to a repository patchmoi can read: its
/// own files, no `.git` file pointing elsewhere, not a linked worktree's,
/// owned by this user (git refuses others' as dubious), and no extension
/// (reftable keeps refs elsewhere), include or hidden refs in its config.
fn local_git_dir(remote: &str) -> Option<PathBuf> {
    let path = remote.strip_prefix("file://").unwrap_or(remote);
    if !path.starts_with('/') || (path.len() != remote.len() && path.contains('%')) {
        return None;
    }
    let path = Path::new(path);
    // As git's `enter_repo` looks for a local transport: `<path>/.git`
    // first, then the path itself. A `.git` file or link (a worktree, a
    // submodule) points elsewhere: not read here.
    let dot_git = path.join(".git");
    let git_dir = match std::fs::symlink_metadata(&dot_git) {
        Ok(meta) if meta.is_dir() => dot_git,
        Ok(_) => return None,
        Err(_) => path.to_path_buf(),
    };
    if !git_dir.join("HEAD").is_file() || !git_dir.join("objects").is_dir() || git_dir.join("commondir").exists() {
        return None;
    }
    // SAFETY: geteuid takes no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    for dir in [path, git_dir.as_path()] {
        let meta = std::fs::symlink_metadata(dir).ok()?;
        if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != me {
            return None;
        }
    }
    let config = std::fs::read_to_string(git_dir.join("config")).ok()?.to_lowercase();
    if ["extensions", "include", "hiderefs"].iter().any(|word| config.contains(word)) {
        return None;
    }
    // A format git does not know makes it refuse the repository.
    let version = config.lines().find_map(|line| line.trim().strip_prefix("repositoryformatversion"));
    let version = version.map(|rest| rest.trim_start().trim_start_matches('=').trim());
    if version.is_some_and(|version| version != "0" && version != "1") {
        return None;
    }
    Some(git_dir)
}

/// The files-backend refs of a local repository.
struct LocalRepo {
    git_dir: PathBuf,
    hex_len: usize,
    /// `packed-refs`, read once if needed: (name, value) lines.
    packed: std::sync::OnceLock<Option<Vec<(String, String)>>>,
}

impl LocalRepo {
    /// The object id `refname` holds, following `HEAD` to its branch (one
    /// level, as a repository's HEAD does); None when missing or unusual.
    fn resolve(&self, refname: &str) -> Option<String> {
        if refname == "HEAD" {
            let head = std::fs::read_to_string(self.git_dir.join("HEAD")).ok()?;
            return match head.strip_prefix("ref: ") {
                Some(target) if target.trim_end().starts_with("refs/heads/") => self.value(target.trim_end()),
                Some(_) => None,
                None => self.object_id(&head),
            };
        }
        if !refname.starts_with("refs/") || refname.split('/').any(|part| part.is_empty() || part.starts_with('.')) {
            return None;
        }
        self.value(refname)
    }

    /// A ref's value: its loose file first (where git writes), then
    /// `packed-refs`.
    fn value(&self, refname: &str) -> Option<String> {
        match std::fs::read_to_string(self.git_dir.join(refname)) {
            // A symbolic ref (`ref: …`) or anything else unexpected.
            Ok(loose) => self.object_id(&loose),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let packed = self.packed.get_or_init(|| self.read_packed()).as_ref()?;
                packed.iter().find(|(name, _)| name == refname).map(|(_, value)| value.clone())
            }
            Err(_) => None,
        }
    }

    /// `packed-refs` as (name, value); None when it cannot be read exactly.
    /// A missing file holds no refs.
    fn read_packed(&self) -> Option<Vec<(String, String)>> {
        let text = match std::fs::read_to_string(self.git_dir.join("packed-refs")) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
            Err(_) => return None,
        };
        let mut refs = Vec::new();
        for line in text.lines() {
            // The header, and the peeled value of the tag above.
            if line.starts_with('#') || line.starts_with('^') {
                continue;
            }
            let (value, name) = line.split_once(' ')?;
            refs.push((name.to_string(), self.object_id(value)?));
        }
        Some(refs)
    }

    /// `text` (one line) as an object id of this repository's format.
    fn object_id(&self, text: &str) -> Option<String> {
        let id = text.strip_suffix('\n').unwrap_or(text);
        (id.len() == self.hex_len && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::super::Git;

    /// Refs read from the files are `git ls-remote`'s, loose or packed,
    /// annotated tags unpeeled, HEAD followed to its branch; and where the
    /// files or the settings could make a fetch see something else, nothing
    /// is read.
    #[test]
    fn refs_read_from_a_local_repository_are_ls_remotes() {
        let dir = tempfile::tempdir().unwrap();
        let upstream = dir.path().join("upstream");
        let repo = FixtureRepo::init(&upstream).unwrap();
        repo.commit("first", &[("a", "1\n")]).unwrap();
        repo.git(&["tag", "-a", "-m", "packed", "v1"]).unwrap();
        repo.git(&["pack-refs", "--all"]).unwrap();
        repo.commit("second", &[("a", "2\n")]).unwrap();
        repo.git(&["tag", "-a", "-m", "loose", "v2"]).unwrap();
        let fork = dir.path().join("fork");
        FixtureRepo::init(&fork).unwrap();
        let git = Git::open(&fork).unwrap();
        let quarantine = git.quarantine().unwrap();
        let remote = upstream.to_str().unwrap();
        let refs = ["refs/tags/v1", "refs/tags/v2", "HEAD"];
        let listed = git.run(&["ls-remote", remote]).unwrap();
        let value =
            |name: &str| listed.lines().find_map(|line| line.strip_suffix(&format!("\t{name}"))).unwrap().to_string();
        let expected: Vec<String> = refs.iter().map(|name| value(name)).collect();
        assert_eq!(quarantine.local_remote_refs(remote, &refs), Some(expected.clone()));
        let url = format!("file://{remote}");
        assert_eq!(quarantine.local_remote_refs(&url, &refs), Some(expected));

        // A missing ref, a relative path, a `.git` file: git says.
        assert_eq!(quarantine.local_remote_refs(remote, &["refs/tags/v3"]), None);
        assert_eq!(quarantine.local_remote_refs("upstream", &["HEAD"]), None);
        let linked = dir.path().join("linked");
        repo.git(&["worktree", "add", "-q", "--detach", linked.to_str().unwrap()]).unwrap();
        assert_eq!(quarantine.local_remote_refs(linked.to_str().unwrap(), &["HEAD"]), None);
        // Settings that rewrite the URL, or an include that may apply in
        // upstream's upload-pack: git says.
        let rewritten = git.with_config(&format!("url.{remote}.insteadOf=/elsewhere")).quarantine().unwrap();
        assert_eq!(rewritten.local_remote_refs(remote, &["HEAD"]), None);
        let included = git.with_config(&format!("includeIf.gitdir:{remote}/.path=/nowhere")).quarantine().unwrap();
        assert_eq!(included.local_remote_refs(remote, &["HEAD"]), None);
        // A repository format git does not know, refs kept in a reftable: git says.
        let config = upstream.join(".git/config");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("repositoryformatversion = 0", "repositoryformatversion = 2")).unwrap();
        assert_eq!(quarantine.local_remote_refs(remote, &["HEAD"]), None);
        std::fs::write(&config, text.replace("repositoryformatversion = 0", "repositoryformatversion = 1")).unwrap();
        assert!(quarantine.local_remote_refs(remote, &["HEAD"]).is_some());
        repo.git(&["config", "extensions.refStorage", "files"]).unwrap();
        assert_eq!(quarantine.local_remote_refs(remote, &["HEAD"]), None);
    }
}
