//! Patches upstream already has: a patch whose patch-id equals an upstream
//! commit's is dropped before the replay.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;

use crate::git::{Git, RawCommit};

/// Patches whose patch-id matches an upstream commit in `merge_base..release`.
/// A patch-id covers every file of a diff, so only upstream commits that
/// change exactly the same set of files as some patch can match: those are
/// found from file lists (one `git log --name-only`), and only they are diffed.
pub fn upstreamed_patches(
    git: &Git,
    merge_base: &str,
    release: &str,
    patches: &[RawCommit],
) -> Result<HashMap<String, String>> {
    let singles: Vec<String> =
        patches.iter().filter(|patch| patch.parents.len() == 1).map(|patch| patch.id.clone()).collect();
    if singles.is_empty() {
        return Ok(HashMap::new());
    }
    let stack_sets = git.files_changed_by(&singles)?;
    let upstream_sets = git.files_changed_in(merge_base, release)?;
    let shapes: BTreeSet<&BTreeSet<String>> = stack_sets.iter().map(|(_, files)| files).collect();
    let upstream: Vec<String> =
        upstream_sets.iter().filter(|(_, files)| shapes.contains(files)).map(|(sha, _)| sha.clone()).collect();
    if upstream.is_empty() {
        return Ok(HashMap::new());
    }
    let upstream_shapes: BTreeSet<&BTreeSet<String>> =
        upstream_sets.iter().filter(|(sha, _)| upstream.contains(sha)).map(|(_, files)| files).collect();
    let stack: Vec<String> =
        stack_sets.iter().filter(|(_, files)| upstream_shapes.contains(files)).map(|(sha, _)| sha.clone()).collect();
    let diffs = |commits: &[String]| git.diffs_of(commits);
    let upstream_ids: HashMap<String, String> = git.patch_ids(&diffs(&upstream)?)?.into_iter().collect();
    Ok(git
        .patch_ids(&diffs(&stack)?)?
        .into_iter()
        .filter_map(|(patch_id, commit)| upstream_ids.get(&patch_id).map(|upstream| (commit, upstream.clone())))
        .collect())
}
