//! Objects: reading commits and blobs in batches, writing rewritten commits,
//! and the quarantine that keeps a replay's new objects out of the repository
//! until they are published as one pack.
//!
//! Each loose object costs about a millisecond on ordinary disks, and a
//! replay of a long stack writes thousands; one pack costs one write.

use std::path::Path;

use anyhow::{bail, Context, Result};
use sha1::Digest;

use super::batch::Ask;
use super::paths::path_bytes;
use super::{Git, COMMITTER_EMAIL, COMMITTER_NAME};

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
    pub(super) fn parse(id: &str, raw: Vec<u8>) -> Result<RawCommit> {
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
    /// The tree of commit (or tag) `rev`.
    pub fn tree_of(&self, rev: &str) -> Result<String> {
        let spec = format!("{rev}^{{tree}}");
        if let Some(mut answers) = self.batch(Ask::Info, &[spec.as_bytes()]) {
            return match answers.remove(0) {
                Some((oid, _)) => Ok(oid),
                None => bail!("{rev} names no tree"),
            };
        }
        self.run(&["rev-parse", &format!("{rev}^{{tree}}")])
    }

    /// Writes the index of this repository (or worktree) as a tree.
    pub fn write_tree(&self) -> Result<String> {
        self.run(&["write-tree"])
    }

    /// `tree` with each `(path, content, mode)` replaced (content None:
    /// removed), built in
    /// a temporary index so no worktree or real index is involved.
    pub fn tree_with_replaced_paths(
        &self,
        tree: &str,
        files: &[(String, Option<String>, String)],
        staging: &Path,
    ) -> Result<String> {
        std::fs::create_dir_all(staging).with_context(|| format!("failed to create {}", staging.display()))?;
        let index = tempfile::Builder::new()
            .prefix("index-")
            .tempfile_in(staging)
            .with_context(|| format!("failed to write an index in {}", staging.display()))?
            .into_temp_path();
        let indexed = self.with_env("GIT_INDEX_FILE", index.as_os_str());
        indexed.run(&["read-tree", tree])?;
        let bodies: Vec<Vec<u8>> =
            files.iter().filter_map(|(_, content, _)| content.clone().map(String::into_bytes)).collect();
        let mut oids = self.write_blobs(&bodies)?.into_iter();
        let mut info = Vec::new();
        for (path, content, mode) in files {
            let meta = match content {
                Some(_) => format!("{mode} {}\t", oids.next().unwrap_or_default()),
                None => format!("0 {}\t", "0".repeat(tree.len())),
            };
            info.extend_from_slice(meta.as_bytes());
            info.extend_from_slice(&path_bytes(path));
            info.push(0);
        }
        indexed.run_bytes(&["update-index", "-z", "--index-info"], Some(&info))?;
        indexed.run(&["write-tree"])
    }

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
        // `<tree>:<path>` specs hold paths, which may hold newlines: NUL ends each.
        let specs_bytes: Vec<Vec<u8>> = specs.iter().map(|spec| path_bytes(spec)).collect();
        let names: Vec<&[u8]> = specs_bytes.iter().map(Vec::as_slice).collect();
        if let Some(answers) = self.batch(Ask::Contents, &names) {
            return Ok(answers.into_iter().map(|answer| answer.map(|(_, object)| object)).collect());
        }
        let input: Vec<u8> = specs_bytes.iter().flat_map(|spec| spec.iter().copied().chain([0])).collect();
        let out = self.run_bytes(&["cat-file", "--batch", "-z"], Some(&input))?;
        let mut rest = &out[..];
        let mut objects = Vec::with_capacity(specs.len());
        for (spec, bytes) in specs.iter().zip(&specs_bytes) {
            // A spec it cannot find comes back whole, newlines and all.
            let unknown = [&b" missing\n"[..], b" ambiguous\n"]
                .iter()
                .map(|answer| [&bytes[..], answer].concat())
                .find(|answer| rest.starts_with(answer));
            if let Some(answer) = unknown {
                rest = &rest[answer.len()..];
                objects.push(None);
                continue;
            }
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

    /// Which of `ids` (full object ids) this repository does not have.
    pub(crate) fn missing_objects(&self, ids: &[String]) -> Result<Vec<String>> {
        let names: Vec<&[u8]> = ids.iter().map(String::as_bytes).collect();
        if let Some(answers) = self.batch(Ask::Info, &names) {
            return Ok(ids
                .iter()
                .zip(answers)
                .filter(|(_, answer)| answer.is_none())
                .map(|(id, _)| id.clone())
                .collect());
        }
        let input: String = ids.iter().map(|id| format!("{id}\n")).collect();
        let answers = self.run_bytes(&["cat-file", "--batch-check"], Some(input.as_bytes()))?;
        Ok(String::from_utf8_lossy(&answers)
            .lines()
            .filter_map(|line| line.strip_suffix(" missing"))
            .map(str::to_string)
            .collect())
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
        std::fs::create_dir_all(staging).with_context(|| format!("failed to create {}", staging.display()))?;
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
                Ok(TreeEntry { mode: mode.into(), kind: kind.into(), oid: oid.into(), name: name.to_string() })
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

    /// A commit of `tree` with `parents`, stamped with patchmoi's identity
    /// as author and committer: patchmoi's own bookkeeping (the memory of
    /// resolutions) needs no `user.name` on a fresh CI runner.
    pub fn commit_tree(&self, tree: &str, parents: &[String], message: &str) -> Result<String> {
        let mut args = vec!["commit-tree", tree];
        for parent in parents {
            args.extend(["-p", parent.as_str()]);
        }
        args.extend(["-F", "-"]);
        let git = self.with_env("GIT_AUTHOR_NAME", COMMITTER_NAME).with_env("GIT_AUTHOR_EMAIL", COMMITTER_EMAIL);
        let out = git.run_bytes(&args, Some(message.as_bytes()))?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
