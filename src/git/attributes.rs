//! Where merges take `.gitattributes` from: where `git rebase` takes them.
//!
//! merge-ort reads attributes through git's attribute stack (attr.c): the
//! `.gitattributes` files of the working tree (or the index), then
//! `info/attributes`. During `git rebase` the working tree is the state the
//! next patch lands on, so each merge sees the attributes of its `ours`
//! side. `git merge-tree` and `git replay` would read the maintainer's
//! checkout instead, which has nothing to do with the merge; patchmoi names
//! the tree with `--attr-source` (git ≥ 2.40), which replaces the working
//! tree and index in that stack and leaves `info/attributes` and the
//! global attributes file in place. One process reads one source, so a
//! batch is split wherever the attributes change.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use anyhow::{bail, Context, Result};

use super::batch::Ask;
use super::pack::{hex, id_len, tree_entries};
use super::{Git, Quarantine, RawCommit};

/// Pathspecs for every `.gitattributes` file, wherever it is.
const ATTRIBUTE_FILES: [&str; 1] = [":(glob)**/.gitattributes"];

impl Git {
    /// This repository view reading attributes from `tree` (a tree-ish).
    pub(crate) fn attributes_from(&self, tree: &str) -> Git {
        let mut git = self.clone();
        git.attr_source = Some(tree.to_string());
        git
    }

    /// Splits `sources` (tree-ishes, one per merge, in order) into
    /// consecutive ranges whose `.gitattributes` files are all the same,
    /// each with the source to read them from.
    pub(crate) fn attribute_ranges(&self, sources: &[&str]) -> Result<Vec<(Range<usize>, String)>> {
        let mut starts: Vec<usize> = Vec::new();
        for index in 0..sources.len() {
            if index == 0 || sources[index] != sources[index - 1] {
                starts.push(index);
            }
        }
        let mut cuts = vec![true; starts.len()];
        if starts.len() > 1 {
            let distinct: Vec<&str> = starts.iter().map(|&start| sources[start]).collect();
            let trees = self.trees_of(&distinct)?;
            let differ = self.attributes_differ(&trees)?;
            for (index, differs) in differ.into_iter().enumerate() {
                cuts[index + 1] = differs;
            }
        }
        let mut ranges: Vec<(Range<usize>, String)> = Vec::new();
        for (number, &start) in starts.iter().enumerate() {
            let end = starts.get(number + 1).copied().unwrap_or(sources.len());
            match ranges.last_mut() {
                Some((range, _)) if !cuts[number] => range.end = end,
                _ => ranges.push((start..end, sources[start].to_string())),
            }
        }
        Ok(ranges)
    }

    /// The stack commits (non-merges) that change a `.gitattributes` file.
    pub fn changing_attributes(&self, commits: &[&str]) -> Result<HashSet<String>> {
        if commits.is_empty() {
            return Ok(HashSet::new());
        }
        let input: String = commits.iter().map(|commit| format!("{commit}\n")).collect();
        let mut args = vec!["diff-tree", "--stdin", "-r", "--name-only", "--no-renames", "--"];
        args.extend(ATTRIBUTE_FILES);
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "0").run_bytes(&args, Some(input.as_bytes()))?;
        let ids: HashSet<&str> = commits.iter().copied().collect();
        let mut changing = HashSet::new();
        let mut current: Option<&str> = None;
        let text = String::from_utf8_lossy(&out);
        for line in text.lines() {
            if ids.contains(line) {
                current = Some(line);
            } else if let Some(commit) = current {
                changing.insert(commit.to_string());
            }
        }
        Ok(changing)
    }

    /// The tree of each tree-ish, in order, in one process.
    pub(super) fn trees_of(&self, revs: &[&str]) -> Result<Vec<String>> {
        let specs: Vec<String> = revs.iter().map(|rev| format!("{rev}^{{tree}}")).collect();
        let names: Vec<&[u8]> = specs.iter().map(String::as_bytes).collect();
        if let Some(answers) = self.batch(Ask::Info, &names) {
            return revs
                .iter()
                .zip(answers)
                .map(|(rev, answer)| match answer {
                    Some((oid, (kind, _))) if kind == "tree" => Ok(oid),
                    _ => bail!("failed to read the tree of {rev}"),
                })
                .collect();
        }
        let input: String = revs.iter().map(|rev| format!("{rev}^{{tree}}\n")).collect();
        let out = self.run_bytes(&["cat-file", "--batch-check=%(objectname) %(objecttype)"], Some(input.as_bytes()))?;
        let text = String::from_utf8_lossy(&out);
        let trees: Vec<String> =
            text.lines().filter_map(|line| line.strip_suffix(" tree")).map(str::to_string).collect();
        if trees.len() != revs.len() {
            bail!("failed to read the trees of {} revisions: {}", revs.len(), text.trim());
        }
        Ok(trees)
    }

    /// For each consecutive pair of `trees`, whether their `.gitattributes`
    /// files differ: one `diff-tree --stdin` over the pairs, which prints
    /// each pair's header and then the attribute files that differ.
    fn attributes_differ(&self, trees: &[String]) -> Result<Vec<bool>> {
        let pairs: Vec<String> = trees.windows(2).map(|pair| format!("{} {}", pair[0], pair[1])).collect();
        let input: String = pairs.iter().map(|pair| format!("{pair}\n")).collect();
        let mut args = vec!["diff-tree", "--stdin", "-r", "--name-only", "--no-renames", "--"];
        args.extend(ATTRIBUTE_FILES);
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "0").run_bytes(&args, Some(input.as_bytes()))?;
        let mut differ = vec![false; pairs.len()];
        let mut at: Option<usize> = None;
        for line in String::from_utf8_lossy(&out).lines() {
            let next = at.map_or(0, |index| index + 1);
            if pairs.get(next).is_some_and(|pair| pair == line) {
                at = Some(next);
            } else if let Some(index) = at {
                differ[index] = true;
            }
        }
        if !pairs.is_empty() && at != Some(pairs.len() - 1) {
            bail!("git diff-tree answered {} tree pairs out of {}", at.map_or(0, |index| index + 1), pairs.len());
        }
        Ok(differ)
    }
}

impl Quarantine {
    /// The patches (non-merges) that change a `.gitattributes` file, as
    /// [`Git::changing_attributes`] finds them (which answers for stacks
    /// longer than [`IN_PROCESS_MAX`]), read in-process through the
    /// repository's long-lived cat-file: the trees of each patch and its
    /// parent are compared level by level, descending only where they
    /// differ, one round trip a level for all patches. A differing file (or
    /// link) of that name counts, as do those inside a directory added or
    /// removed whole; a directory of that name is only walked, as the
    /// pathspec `**/.gitattributes` matches no path inside one; a root
    /// commit changes nothing (`diff-tree` prints nothing for one without
    /// `--root`).
    pub fn changing_attributes(&self, patches: &[&RawCommit]) -> Result<HashSet<String>> {
        let repo = self.repo();
        let ask_git = || {
            let ids: Vec<&str> = patches.iter().map(|patch| patch.id.as_str()).collect();
            repo.changing_attributes(&ids)
        };
        if patches.len() > IN_PROCESS_MAX {
            return ask_git();
        }
        let single: Vec<&&RawCommit> = patches.iter().filter(|patch| patch.parents.len() == 1).collect();
        let mut trees: HashMap<&str, String> =
            patches.iter().map(|patch| (patch.id.as_str(), patch.tree.clone())).collect();
        let unknown: Vec<&str> =
            single.iter().map(|patch| patch.parents[0].as_str()).filter(|parent| !trees.contains_key(parent)).collect();
        for (parent, tree) in unknown.iter().zip(repo.trees_of(&unknown)?) {
            trees.insert(parent, tree);
        }
        // (patch, parent's tree or none, patch's tree or none) still to compare.
        let mut level: Vec<(&str, Option<String>, Option<String>)> = single
            .iter()
            .map(|patch| (patch.id.as_str(), Some(trees[patch.parents[0].as_str()].clone()), Some(patch.tree.clone())))
            .collect();
        let id_len = id_len(self.format());
        let mut changing = HashSet::new();
        while !level.is_empty() {
            let mut wanted: Vec<&str> =
                level.iter().flat_map(|(_, old, new)| [old, new]).flatten().map(String::as_str).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let names: Vec<&[u8]> = wanted.iter().map(|id| id.as_bytes()).collect();
            let Some(answers) = repo.batch(Ask::Contents, &names) else { return ask_git() };
            let mut read: HashMap<&str, Vec<TreeItem>> = HashMap::new();
            for (id, answer) in wanted.iter().zip(answers) {
                match answer {
                    Some((_, (kind, body))) if kind == "tree" => {
                        read.insert(id, tree_items(&body, id_len).with_context(|| format!("tree {id}"))?);
                    }
                    _ => bail!("tree {id} could not be read"),
                }
            }
            let mut next = Vec::new();
            for (patch, old, new) in &level {
                if changing.contains(*patch) {
                    continue;
                }
                let empty = Vec::new();
                let old_items = old.as_deref().map_or(&empty, |id| &read[id]);
                let new_items = new.as_deref().map_or(&empty, |id| &read[id]);
                let old_map: HashMap<&[u8], &TreeItem> =
                    old_items.iter().map(|item| (item.name.as_slice(), item)).collect();
                let new_map: HashMap<&[u8], &TreeItem> =
                    new_items.iter().map(|item| (item.name.as_slice(), item)).collect();
                // Each name once: the old tree's, then those only the new one has.
                let added = new_items.iter().filter(|item| !old_map.contains_key(item.name.as_slice()));
                let names = old_items.iter().chain(added).map(|item| item.name.as_slice());
                for name in names {
                    let (before, after) = (old_map.get(name), new_map.get(name));
                    let same = match (before, after) {
                        (Some(old), Some(new)) => old.canonical_mode() == new.canonical_mode() && old.id == new.id,
                        (None, None) => true,
                        _ => false,
                    };
                    if same {
                        continue;
                    }
                    let file = |item: Option<&&TreeItem>| item.is_some_and(|item| !item.is_tree());
                    if name == b".gitattributes" && (file(before) || file(after)) {
                        changing.insert(patch.to_string());
                        break;
                    }
                    let subtree =
                        |item: Option<&&TreeItem>| item.filter(|item| item.is_tree()).map(|item| item.id.clone());
                    let (old_sub, new_sub) = (subtree(before), subtree(after));
                    if old_sub.is_some() || new_sub.is_some() {
                        next.push((*patch, old_sub, new_sub));
                    }
                }
            }
            next.retain(|(patch, _, _)| !changing.contains(*patch));
            level = next;
        }
        Ok(changing)
    }
}

/// The longest stack whose attribute changes are read in-process. Each
/// tree read through cat-file costs about 20 µs here (most resolving its
/// deltas), so the read grows with the stack where `diff-tree` in one
/// process does not: measured, 0.3 ms in-process against a 2 ms process
/// for 4 patches, 2–4 ms against 4–5 ms for 45, 23 ms against 9 ms for 200.
const IN_PROCESS_MAX: usize = 64;

/// One entry of a tree object.
struct TreeItem {
    mode: Vec<u8>,
    name: Vec<u8>,
    id: String,
}

impl TreeItem {
    /// The mode as git reads it (`canon_mode`): octal, a regular file's
    /// permissions cut to 644 or 755 by its owner's execute bit, so an old
    /// tool's `100664` or `040000` is what git sees.
    fn canonical_mode(&self) -> Option<u32> {
        let mode = u32::from_str_radix(std::str::from_utf8(&self.mode).ok()?, 8).ok()?;
        Some(match mode & 0o170000 {
            0o100000 if mode & 0o100 != 0 => 0o100755,
            0o100000 => 0o100644,
            kind => kind,
        })
    }

    /// A directory, by the mode's type bits.
    fn is_tree(&self) -> bool {
        self.canonical_mode() == Some(0o040000)
    }
}

/// A tree object's entries.
fn tree_items(body: &[u8], id_len: usize) -> Result<Vec<TreeItem>> {
    let entries = tree_entries(body, id_len)?.into_iter();
    Ok(entries.map(|(mode, name, id)| TreeItem { mode: mode.to_vec(), name: name.to_vec(), id: hex(id) }).collect())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::*;

    /// The in-process read finds the patches `git diff-tree` finds, on
    /// every way a `.gitattributes` can change: at the top, deep down,
    /// inside a directory added or removed whole; and not for a change
    /// beside one, inside a directory of that name, in a root commit or a
    /// merge.
    #[test]
    fn attribute_changes_read_in_process_are_diff_trees() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init(dir.path()).unwrap();
        let root = repo.commit("root", &[(".gitattributes", "*.txt text\n"), ("a/b/c.txt", "1\n")]).unwrap();
        let mut commits = vec![root];
        commits.push(repo.commit("beside", &[("a/b/c.txt", "2\n"), ("a/x", "1\n")]).unwrap());
        commits.push(repo.commit("top", &[(".gitattributes", "*.txt -text\n")]).unwrap());
        commits.push(repo.commit("deep", &[("a/b/.gitattributes", "*.c diff\n")]).unwrap());
        commits.push(repo.commit("added whole", &[("n/m/.gitattributes", "* binary\n"), ("n/f", "1\n")]).unwrap());
        repo.git(&["rm", "-r", "-q", "n"]).unwrap();
        repo.git(&["commit", "-q", "-m", "removed whole"]).unwrap();
        commits.push(repo.rev("HEAD").unwrap());
        commits.push(repo.commit("named so", &[(".gitattributes.d/.gitattributes/f", "x\n")]).unwrap());
        commits.push(repo.commit("deep beside", &[("a/b/d", "1\n")]).unwrap());
        let side = commits[1].clone();
        repo.git(&["checkout", "-q", "-b", "side", &side]).unwrap();
        repo.commit("side", &[("s/.gitattributes", "* -diff\n")]).unwrap();
        repo.git(&["checkout", "-q", "-"]).unwrap();
        repo.git(&["merge", "-q", "--no-edit", "side"]).unwrap();
        commits.push(repo.rev("HEAD").unwrap());
        commits.push(repo.commit("after the merge", &[("z", "1\n")]).unwrap());

        let git = Git::open(dir.path()).unwrap();
        let ids: Vec<&str> = commits.iter().map(String::as_str).collect();
        let expected = git.changing_attributes(&ids).unwrap();
        let patches = git.read_commits(&commits).unwrap();
        let patches: Vec<&RawCommit> = patches.iter().collect();
        let found = git.quarantine().unwrap().changing_attributes(&patches).unwrap();
        assert_eq!(found, expected);
        let subjects: HashSet<String> = patches.iter().filter(|p| found.contains(&p.id)).map(|p| p.subject()).collect();
        let named: HashSet<String> = ["top", "deep", "added whole", "removed whole"].map(String::from).into();
        assert_eq!(subjects, named);
    }

    /// A directory entry written with a zero-padded mode (`040000`, as some
    /// old tools wrote) is walked as git walks it, and a file mode such a
    /// tool wrote (`100664`) is read as git reads it.
    #[test]
    fn a_zero_padded_directory_mode_is_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init(dir.path()).unwrap();
        let write = |kind: &str, body: &[u8]| {
            let mut child = std::process::Command::new("git")
                .args(["hash-object", "-w", "--literally", "--stdin", "-t", kind])
                .current_dir(dir.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), body).unwrap();
            let out = child.wait_with_output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let entry = |mode: &str, name: &str, id: &str| {
            let mut bytes = format!("{mode} {name}\0").into_bytes();
            bytes.extend((0..id.len()).step_by(2).map(|at| u8::from_str_radix(&id[at..at + 2], 16).unwrap()));
            bytes
        };
        let mut commits: Vec<String> = Vec::new();
        // The third changes only how the second's mode is written: git
        // reads 100664 as 100644, so nothing changed.
        for (text, mode) in [("* text\n", "100644"), ("* -text\n", "100644"), ("* -text\n", "100664")] {
            let attributes = write("blob", text.as_bytes());
            let sub = write("tree", &entry(mode, ".gitattributes", &attributes));
            let root = write("tree", &entry("040000", "sub", &sub));
            let mut args = vec!["commit-tree".to_string(), root, "-m".into(), text.into()];
            if let Some(parent) = commits.last() {
                args.extend(["-p".into(), parent.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            commits.push(repo.git(&args).unwrap());
        }
        let git = Git::open(dir.path()).unwrap();
        let expected = git.changing_attributes(&[&commits[1], &commits[2]]).unwrap();
        assert_eq!(expected, HashSet::from([commits[1].clone()]), "git walks it, and reads 100664 as 100644");
        let patches = git.read_commits(&commits[1..]).unwrap();
        let patches: Vec<&RawCommit> = patches.iter().collect();
        assert_eq!(git.quarantine().unwrap().changing_attributes(&patches).unwrap(), expected);
    }
}
