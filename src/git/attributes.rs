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

use std::collections::HashSet;
use std::ops::Range;

use anyhow::{bail, Result};

use super::batch::Ask;
use super::Git;

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
    fn trees_of(&self, revs: &[&str]) -> Result<Vec<String>> {
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
