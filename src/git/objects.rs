//! Objects: reading commits and blobs in batches, writing rewritten commits,
//! and the quarantine that keeps a replay's new objects out of the repository
//! until they are published as one pack.
//!
//! Each loose object costs about a millisecond on ordinary disks, and a
//! replay of a long stack writes thousands; one pack costs one write.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha1::Digest;

use super::pack::{loose_compressor, write_loose, write_pack, LooseObjects};
use super::Git;

/// A commit as stored, plus the fields replay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommit {
    pub id: String,
    pub tree: String,
    pub parents: Vec<String>,
    /// The whole object body (headers, blank line, message), byte for byte.
    pub raw: Vec<u8>,
}

impl RawCommit {
    fn parse(id: &str, raw: Vec<u8>) -> Result<RawCommit> {
        let mut tree = None;
        let mut parents = Vec::new();
        for line in header_lines(&raw) {
            if let Some(value) = line.strip_prefix(b"tree ") {
                tree = Some(String::from_utf8_lossy(value).into_owned());
            } else if let Some(value) = line.strip_prefix(b"parent ") {
                parents.push(String::from_utf8_lossy(value).into_owned());
            }
        }
        let tree = tree.with_context(|| format!("commit {id} has no tree"))?;
        Ok(RawCommit { id: id.to_string(), tree, parents, raw })
    }

    /// The message, lossily decoded.
    pub fn message(&self) -> String {
        let start = find_subsequence(&self.raw, b"\n\n").map_or(self.raw.len(), |at| at + 2);
        String::from_utf8_lossy(&self.raw[start..]).into_owned()
    }

    /// The first line of the message.
    pub fn subject(&self) -> String {
        self.message().lines().next().unwrap_or_default().trim().to_string()
    }

    /// `Name <email>` of the author.
    pub fn author(&self) -> String {
        header_lines(&self.raw)
            .find_map(|line| line.strip_prefix(b"author "))
            .map(|value| {
                let value = String::from_utf8_lossy(value);
                // Drop the trailing "<timestamp> <tz>".
                match value.rfind('>') {
                    Some(end) => value[..=end].to_string(),
                    None => value.into_owned(),
                }
            })
            .unwrap_or_default()
    }

    /// The same commit with another tree and a single parent. Author,
    /// committer, encoding and message stay byte for byte, so the result
    /// depends only on its inputs; a signature would no longer verify and is
    /// dropped, as `git rebase` does.
    pub fn rewrite(&self, tree: &str, parent: &str) -> Vec<u8> {
        let body_start = find_subsequence(&self.raw, b"\n\n").map_or(self.raw.len(), |at| at + 1);
        let mut out = Vec::with_capacity(self.raw.len());
        out.extend_from_slice(format!("tree {tree}\nparent {parent}\n").as_bytes());
        let mut skipping = false;
        for line in self.raw[..body_start].split_inclusive(|b| *b == b'\n') {
            // Continuation lines of a multi-line header start with a space.
            if line.starts_with(b" ") {
                if !skipping {
                    out.extend_from_slice(line);
                }
                continue;
            }
            skipping = [&b"tree "[..], b"parent ", b"gpgsig ", b"gpgsig-sha256 ", b"mergetag "]
                .iter()
                .any(|prefix| line.starts_with(prefix));
            if !skipping {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(&self.raw[body_start..]);
        out
    }
}

pub(super) fn header_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == b'\n').take_while(|line| !line.is_empty())
}

fn find_subsequence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: String,
    pub kind: String,
    pub oid: String,
    pub name: String,
}

/// An object's type (`blob`, `tree`, `commit`, `tag`) and contents.
pub type Object = (String, Vec<u8>);

/// The id git gives an object of `kind` with `body`, in the repository's
/// hash (`sha1` or `sha256`).
pub fn object_id(format: &str, kind: &str, body: &[u8]) -> String {
    let header = format!("{kind} {}\0", body.len());
    if format == "sha256" {
        let mut hasher = sha2::Sha256::new();
        hasher.update(header.as_bytes());
        hasher.update(body);
        format!("{:x}", hasher.finalize())
    } else {
        let mut hasher = sha1::Sha1::new();
        hasher.update(header.as_bytes());
        hasher.update(body);
        format!("{:x}", hasher.finalize())
    }
}

impl Git {
    /// `sha1` or `sha256`.
    pub fn object_format(&self) -> Result<String> {
        self.run(&["rev-parse", "--show-object-format"])
    }

    /// Reads objects by any revision syntax (`<commit>`, `<tree>:<path>`) in
    /// one process. A spec that names nothing gives None.
    pub fn read_objects(&self, specs: &[String]) -> Result<Vec<Option<Object>>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = specs.iter().map(|spec| format!("{spec}\n")).collect();
        let out = self.run_bytes(&["cat-file", "--batch"], Some(input.as_bytes()))?;
        let mut rest = &out[..];
        let mut objects = Vec::with_capacity(specs.len());
        for spec in specs {
            let newline = rest.iter().position(|b| *b == b'\n').context("truncated cat-file output")?;
            let header = String::from_utf8_lossy(&rest[..newline]).into_owned();
            rest = &rest[newline + 1..];
            // `<spec> missing` and `<spec> ambiguous` carry the spec, which may
            // itself contain spaces (`<tree>:my file`); a found object is
            // `<oid> <type> <size>`.
            if header.ends_with(" missing") || header.ends_with(" ambiguous") {
                objects.push(None);
                continue;
            }
            let fields: Vec<&str> = header.split(' ').collect();
            if fields.len() != 3 {
                bail!("unexpected cat-file answer {header:?} for {spec}");
            }
            let size: usize = fields[2].parse().with_context(|| format!("bad object size for {spec}"))?;
            if rest.len() < size + 1 {
                bail!("truncated cat-file output for {spec}");
            }
            objects.push(Some((fields[1].to_string(), rest[..size].to_vec())));
            rest = &rest[size + 1..];
        }
        Ok(objects)
    }

    /// Reads commits in one process; fails naming the first that is not a commit.
    pub fn read_commits(&self, ids: &[String]) -> Result<Vec<RawCommit>> {
        let objects = self.read_objects(ids)?;
        ids.iter()
            .zip(objects)
            .map(|(id, object)| match object {
                Some((kind, raw)) if kind == "commit" => RawCommit::parse(id, raw),
                _ => bail!("{id} is not a commit"),
            })
            .collect()
    }

    /// Writes blobs in one process and returns their ids.
    pub fn write_blobs(&self, bodies: &[Vec<u8>]) -> Result<Vec<String>> {
        let staging = tempfile::tempdir().context("failed to create a temporary directory")?;
        self.write_objects("blob", staging.path(), bodies)
    }

    /// `hash-object --stdin-paths` reads one file per object: the bodies are
    /// staged as files, so any number of objects costs one process.
    fn write_objects(&self, kind: &str, staging: &Path, bodies: &[Vec<u8>]) -> Result<Vec<String>> {
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(staging)?;
        let mut paths = String::new();
        for (index, body) in bodies.iter().enumerate() {
            let path = staging.join(format!("{kind}-{index}"));
            std::fs::write(&path, body).with_context(|| format!("failed to write {}", path.display()))?;
            paths.push_str(&format!("{}\n", path.display()));
        }
        let args = ["hash-object", "-w", "-t", kind, "--no-filters", "--stdin-paths"];
        let out = self.run_bytes(&args, Some(paths.as_bytes()))?;
        Ok(String::from_utf8_lossy(&out).lines().map(str::to_string).collect())
    }

    /// The entries of one tree (not recursive).
    pub fn ls_tree(&self, tree: &str) -> Result<Vec<TreeEntry>> {
        let out = self.run_bytes(&["ls-tree", "-z", "--end-of-options", tree], None)?;
        String::from_utf8_lossy(&out)
            .split('\0')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (meta, name) = line.split_once('\t').context("malformed ls-tree line")?;
                let mut fields = meta.split(' ');
                let (Some(mode), Some(kind), Some(oid)) = (fields.next(), fields.next(), fields.next()) else {
                    bail!("malformed ls-tree line {line:?}");
                };
                Ok(TreeEntry { mode: mode.into(), kind: kind.into(), oid: oid.into(), name: name.into() })
            })
            .collect()
    }

    /// A tree of regular files named `name` holding blob `oid`, no subdirectories.
    pub fn make_flat_tree<'a>(&self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String> {
        let mut input = String::new();
        for (name, oid) in entries {
            input.push_str(&format!("100644 blob {oid}\t{name}\0"));
        }
        let out = self.run_bytes(&["mktree", "-z"], Some(input.as_bytes()))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// A commit of `tree` with `parents`, stamped with patchmoi's identity.
    pub fn commit_tree(&self, tree: &str, parents: &[String], message: &str) -> Result<String> {
        let mut args = vec!["commit-tree", tree];
        for parent in parents {
            args.extend(["-p", parent.as_str()]);
        }
        args.extend(["-F", "-"]);
        let out = self.run_bytes(&args, Some(message.as_bytes()))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// A quarantine: a repository view whose new objects go to a temporary
    /// directory while existing objects stay readable.
    ///
    /// The quarantine lives in memory (`/dev/shm`) where there is one, else
    /// in the git directory, and its loose objects are not compressed: each
    /// object is written once, read a few times, then packed (and
    /// compressed) or thrown away, so disk writes and zlib there are pure cost.
    pub fn quarantine(&self) -> Result<Quarantine> {
        let objects = self.git_path("objects")?;
        let in_memory = Path::new("/dev/shm");
        remove_abandoned_quarantines(in_memory);
        let builder = tempfile::Builder::new().prefix("patchmoi-quarantine-").tempdir_in(in_memory);
        let dir = match builder {
            Ok(dir) => dir,
            Err(_) => {
                let parent = self.git_path("patchmoi")?;
                std::fs::create_dir_all(&parent).with_context(|| format!("failed to create {}", parent.display()))?;
                tempfile::Builder::new()
                    .prefix("quarantine-")
                    .tempdir_in(&parent)
                    .with_context(|| format!("failed to create a quarantine under {}", parent.display()))?
            }
        };
        let format = self.object_format()?;
        let quarantine_objects = dir.path().join("objects");
        std::fs::create_dir_all(&quarantine_objects)?;
        let git = self
            .with_env("GIT_OBJECT_DIRECTORY", quarantine_objects.as_os_str())
            .with_env("GIT_ALTERNATE_OBJECT_DIRECTORIES", objects.as_os_str())
            .with_config("core.looseCompression=0");
        Ok(Quarantine {
            git,
            staging: dir.path().join("staging"),
            objects: quarantine_objects,
            repo_objects: objects,
            format,
            replay_allowed: std::sync::OnceLock::new(),
            zlib: std::sync::Mutex::new(loose_compressor()),
            repo: self.clone(),
            dir,
        })
    }
}

/// A quarantine is removed when its run ends; one whose process was killed
/// stays, in memory, until the machine restarts. Any older than a day is
/// such a leftover (no run takes that long): remove it, quietly.
fn remove_abandoned_quarantines(dir: &Path) {
    const ABANDONED: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let ours = entry.file_name().to_string_lossy().starts_with("patchmoi-quarantine-");
        let age = entry.metadata().and_then(|meta| meta.modified()).ok().and_then(|at| at.elapsed().ok());
        if ours && age.is_some_and(|age| age > ABANDONED) {
            if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                tracing::debug!("could not remove {}: {error}", entry.path().display());
            }
        }
    }
}

/// See [`Git::quarantine`]. Dropping it discards whatever was not published.
pub struct Quarantine {
    /// Commands run through this handle write into the quarantine.
    pub git: Git,
    /// Scratch space for files that feed git (commit bodies).
    pub staging: PathBuf,
    /// Where the new objects are, loose.
    objects: PathBuf,
    /// The repository's object directory.
    repo_objects: PathBuf,
    /// `sha1` or `sha256`, the repository's object format.
    format: String,
    /// See [`Quarantine::replay_allowed`].
    pub(super) replay_allowed: std::sync::OnceLock<bool>,
    /// One compressor for the loose objects patchmoi writes here.
    zlib: std::sync::Mutex<flate2::Compress>,
    /// The repository itself, outside the quarantine.
    repo: Git,
    dir: tempfile::TempDir,
}

impl Quarantine {
    /// `sha1` or `sha256`.
    pub fn format(&self) -> &str {
        &self.format
    }

    pub(super) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's common git directory (shared by all its worktrees:
    /// config, `info/`, objects).
    pub(super) fn repo_common_dir(&self) -> &Path {
        self.repo_objects.parent().unwrap_or(&self.repo_objects)
    }

    /// Writes a commit into the quarantine and returns its id.
    pub fn write_commit(&self, body: &[u8]) -> Result<String> {
        // A poisoned lock only means another thread panicked mid-write; the
        // compressor is reset before every object.
        let mut zlib = self.zlib.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        write_loose(&self.objects, &self.format, "commit", body, &mut zlib)
    }

    /// The packs git wrote into the quarantine, if any.
    fn packs(&self) -> Result<Vec<PathBuf>> {
        let dir = self.objects.join("pack");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut packs = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("failed to list {}", dir.display()))?.path();
            if path.extension().is_some_and(|ext| ext == "pack") {
                packs.push(path);
            }
        }
        Ok(packs)
    }

    /// A commit of `tree` with no parent, for `git replay` to start from:
    /// it wants a commit, and a resolved conflict gives only a tree. Fixed
    /// identity and date, so no configured identity is needed.
    pub fn base_commit(&self, tree: &str) -> Result<String> {
        let stamp = "patchmoi <patchmoi@users.noreply.github.com> 0 +0000";
        self.write_commit(
            format!("tree {tree}\nauthor {stamp}\ncommitter {stamp}\n\npatchmoi: replay base\n").as_bytes(),
        )
    }

    /// Moves the objects reachable from `tips` (commits or trees) that only
    /// the quarantine has into the repository, as one pack.
    pub fn publish(&self, tips: &[String]) -> Result<()> {
        let format = &self.format;
        // A tip the repository has (the same replay again) brings all it
        // reaches; only the others need packing.
        let input: String = tips.iter().map(|tip| format!("{tip}\n")).collect();
        let answers = self.repo.run_bytes(&["cat-file", "--batch-check"], Some(input.as_bytes()))?;
        let missing: Vec<String> = String::from_utf8_lossy(&answers)
            .lines()
            .filter_map(|line| line.strip_suffix(" missing"))
            .map(str::to_string)
            .collect();
        // Git itself may have packed what it wrote here (`hash-object` puts
        // blobs above core.bigFileThreshold straight into a pack): those
        // packs go over as they are.
        for pack in self.packs()? {
            let bytes = std::fs::read(&pack).with_context(|| format!("failed to read {}", pack.display()))?;
            self.repo.run_bytes(&["index-pack", "--stdin"], Some(&bytes)).context("failed to store a pack")?;
        }
        let loose = LooseObjects::list(&self.objects, format)?;
        let objects = loose.reachable(&missing)?;
        if objects.is_empty() {
            return Ok(());
        }
        let pack = write_pack(&objects, format)?;
        // The quarantine may be on another filesystem (tmpfs), so the pack is
        // streamed into the repository and indexed there, as a fetch would be.
        self.repo
            .run_bytes(&["index-pack", "--stdin"], Some(&pack))
            .context("failed to store the new objects as one pack")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_left_by_killed_runs_are_removed_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("patchmoi-quarantine-old");
        let fresh = dir.path().join("patchmoi-quarantine-fresh");
        let other = dir.path().join("someone-elses");
        for path in [&old, &fresh, &other] {
            std::fs::create_dir_all(path.join("objects/ab")).unwrap();
        }
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
        for path in [&old, &other] {
            std::fs::File::open(path).unwrap().set_modified(two_days_ago).unwrap();
        }
        remove_abandoned_quarantines(dir.path());
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }

    const SIGNED: &[u8] = b"tree 1111\nparent 2222\nparent 3333\nauthor A U <a@x> 1700000000 +0100\n\
committer C O <c@x> 1700000100 +0000\nencoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\
\nSubject line\n\nBody text\n";

    #[test]
    fn parses_commit_fields() {
        let commit = RawCommit::parse("c0", SIGNED.to_vec()).unwrap();
        assert_eq!(commit.tree, "1111");
        assert_eq!(commit.parents, vec!["2222", "3333"]);
        assert_eq!(commit.subject(), "Subject line");
        assert_eq!(commit.author(), "A U <a@x>");
        assert_eq!(commit.message(), "Subject line\n\nBody text\n");
    }

    #[test]
    fn rewrite_keeps_identity_and_message_and_drops_signature() {
        let commit = RawCommit::parse("c0", SIGNED.to_vec()).unwrap();
        let rewritten = String::from_utf8(commit.rewrite("9999", "8888")).unwrap();
        assert_eq!(
            rewritten,
            "tree 9999\nparent 8888\nauthor A U <a@x> 1700000000 +0100\n\
committer C O <c@x> 1700000100 +0000\nencoding ISO-8859-1\n\nSubject line\n\nBody text\n"
        );
    }

    #[test]
    fn object_ids_match_git() {
        // `printf '' | git hash-object --stdin` and `git hash-object -t tree /dev/null`
        assert_eq!(object_id("sha1", "blob", b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        assert_eq!(object_id("sha1", "tree", b""), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(
            object_id("sha256", "blob", b""),
            "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813"
        );
    }
}
