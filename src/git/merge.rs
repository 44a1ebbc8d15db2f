//! In-memory three-way merges: `git merge-tree --write-tree --stdin`, many
//! merges per process, no checkout, no index. Inputs may be commits or trees.

use anyhow::{bail, Context, Result};

use super::paths::path_from_bytes;
use super::{failure_message, Git};

/// One merge: apply the change `base → theirs` on top of `ours`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    pub base: String,
    pub ours: String,
    pub theirs: String,
}

/// What one merge produced. A conflicted merge still has a tree: files with
/// conflict markers where both sides touched the same lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeResult {
    pub clean: bool,
    pub tree: String,
    /// Index entries (stages 1–3) of every conflicted path, as `git
    /// update-index --index-info` takes them.
    pub conflicts: Vec<ConflictEntry>,
    /// git's own messages: `(paths, kind, text)`, kind like `CONFLICT (contents)`.
    pub messages: Vec<(Vec<String>, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConflictEntry {
    pub mode: String,
    pub oid: String,
    /// 1 = base, 2 = ours (upstream), 3 = theirs (the patch).
    pub stage: u8,
    pub path: String,
}

impl MergeResult {
    /// Conflicted paths, each once, in git's order.
    pub fn conflicted_paths(&self) -> Vec<String> {
        conflicted_paths(&self.conflicts)
    }
}

/// The paths of conflict entries (one per stage), each once, in order.
pub fn conflicted_paths(conflicts: &[ConflictEntry]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for entry in conflicts {
        if !paths.contains(&entry.path) {
            paths.push(entry.path.clone());
        }
    }
    paths
}

impl Git {
    /// Runs the merges in as few `merge-tree` processes as attributes allow:
    /// each merge reads `.gitattributes` from its `ours` side, as `git
    /// rebase` does (see `attributes.rs`), and one process reads one source.
    /// Results come back in request order. (merge-tree buffers its output
    /// until stdin closes, so a batch is the unit: a chain where each merge
    /// needs the previous result must be split into batches by the caller.)
    pub fn merge_trees(&self, requests: &[MergeRequest]) -> Result<Vec<MergeResult>> {
        let sources: Vec<&str> = requests.iter().map(|request| request.ours.as_str()).collect();
        let mut results = Vec::with_capacity(requests.len());
        for (range, source) in self.attribute_ranges(&sources)? {
            results.extend(self.attributes_from(&source).merge_batch(&requests[range])?);
        }
        Ok(results)
    }

    /// Every merge in one `merge-tree` process.
    fn merge_batch(&self, requests: &[MergeRequest]) -> Result<Vec<MergeResult>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = String::new();
        for req in requests {
            input.push_str(&format!("{} -- {} {}\n", req.base, req.ours, req.theirs));
        }
        let output = self.output(&["merge-tree", "--write-tree", "-z", "--stdin"], Some(input.as_bytes()))?;
        // In --stdin mode the exit status is 0 for clean and conflicted merges
        // alike; anything else is a real failure (bad object, I/O).
        if !output.status.success() {
            bail!("git merge-tree failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let results = parse_batch(&output.stdout).context("failed to read git merge-tree output")?;
        if results.len() != requests.len() {
            bail!("git merge-tree answered {} merges out of {}", results.len(), requests.len());
        }
        Ok(results)
    }

    /// One merge; see [`Git::merge_trees`].
    pub fn merge_tree(&self, request: MergeRequest) -> Result<MergeResult> {
        let mut results = self.merge_trees(std::slice::from_ref(&request))?;
        Ok(results.remove(0))
    }
}

/// Parses the `-z --stdin` output: per merge, `status NUL tree NUL`, then for
/// a conflicted merge the conflict entries up to an empty field and the
/// messages (`count NUL paths… NUL kind NUL text NUL`), and finally an empty
/// field that ends the merge.
fn parse_batch(bytes: &[u8]) -> Result<Vec<MergeResult>> {
    // Fields are bytes: paths may be any bytes (see `paths.rs`).
    let mut fields = bytes.split(|byte| *byte == 0);
    let text = |field: &[u8]| String::from_utf8_lossy(field).into_owned();
    let mut results = Vec::new();
    loop {
        let status = match fields.next() {
            None | Some(b"") => break,
            Some(status) => status,
        };
        let clean = match status {
            b"1" => true,
            b"0" => false,
            other => bail!("unexpected merge status {:?}", text(other)),
        };
        let tree = text(fields.next().context("missing tree")?);
        let mut conflicts = Vec::new();
        let mut messages = Vec::new();
        if !clean {
            for field in fields.by_ref() {
                if field.is_empty() {
                    break;
                }
                conflicts.push(parse_conflict_entry(field)?);
            }
        }
        loop {
            let count = fields.next().context("truncated merge output")?;
            if count.is_empty() {
                break;
            }
            let count: usize = text(count).parse().context("bad path count in merge message")?;
            let paths = (0..count)
                .map(|_| fields.next().map(path_from_bytes).context("truncated message paths"))
                .collect::<Result<Vec<_>>>()?;
            let kind = text(fields.next().context("truncated message kind")?);
            let message = text(fields.next().context("truncated message")?).trim_end().to_string();
            messages.push((paths, kind, message));
        }
        results.push(MergeResult { clean, tree, conflicts, messages });
    }
    Ok(results)
}

/// `<mode> SP <oid> SP <stage> TAB <path>`
fn parse_conflict_entry(field: &[u8]) -> Result<ConflictEntry> {
    let tab = field.iter().position(|byte| *byte == b'\t').context("conflict entry without a path")?;
    let (meta, path) = (String::from_utf8_lossy(&field[..tab]), &field[tab + 1..]);
    let mut parts = meta.split(' ');
    let (Some(mode), Some(oid), Some(stage)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("malformed conflict entry {meta:?}");
    };
    Ok(ConflictEntry {
        mode: mode.to_string(),
        oid: oid.to_string(),
        stage: stage.parse().context("bad conflict stage")?,
        path: path_from_bytes(path),
    })
}

impl Git {
    /// The three-way merge of one file's texts (`base → theirs` applied on
    /// `ours`), as `git merge-file` makes it; None when the two changes
    /// overlap.
    pub fn merge_texts(&self, base: &str, ours: &str, theirs: &str) -> Result<Option<String>> {
        let oids =
            self.write_blobs(&[ours.as_bytes().to_vec(), base.as_bytes().to_vec(), theirs.as_bytes().to_vec()])?;
        let [ours, base, theirs] = [&oids[0], &oids[1], &oids[2]].map(String::as_str);
        let args = ["merge-file", "-p", "--object-id", ours, base, theirs];
        let output = self.output(&args, None)?;
        // The exit code is the number of conflicts; a negative one an error.
        match output.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned())),
            Some(1..=127) => Ok(None),
            _ => bail!(failure_message(&args, &output)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clean_and_conflicted_merges() {
        // Captured from git 2.47 `merge-tree --write-tree -z --stdin`.
        let raw = [
            "1",
            "aaaa",
            "",
            "0",
            "bbbb",
            "100644 b1 1\tf",
            "100644 b2 2\tf",
            "100644 b3 3\tf",
            "",
            "1",
            "f",
            "Auto-merging",
            "Auto-merging f\n",
            "1",
            "f",
            "CONFLICT (contents)",
            "CONFLICT (content): Merge conflict in f\n",
            "",
            "",
        ]
        .join("\0");
        let results = parse_batch(raw.as_bytes()).unwrap();
        assert_eq!(results.len(), 2);
        assert!(results[0].clean);
        assert_eq!(results[0].tree, "aaaa");
        assert!(!results[1].clean);
        assert_eq!(results[1].conflicts.len(), 3);
        assert_eq!(results[1].conflicts[2].stage, 3);
        assert_eq!(results[1].conflicted_paths(), vec!["f".to_string()]);
        assert_eq!(results[1].messages[1].1, "CONFLICT (contents)");
        assert_eq!(results[1].messages[1].2, "CONFLICT (content): Merge conflict in f");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_batch(b"7\0tree\0\0").is_err());
        assert!(parse_batch(b"0\0tree\0no-tab-here\0").is_err());
    }
}
