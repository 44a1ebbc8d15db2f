//! Patches upstream already has: a patch that git's cherry-pick detection
//! finds in the release is dropped before the replay, as `git rebase <tag>`
//! drops it.
//!
//! The decision is git's own (`rev-list --cherry-mark`, the walk `git
//! rebase` runs): its patch-ids place hunks without the indent heuristic and
//! compare binary changes by blob, and patchmoi's would not always agree.
//! Which upstream commit matched is only for the report, paired here by
//! `git patch-id` over the few commits git marked.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;

use crate::git::{CherryMarks, Git, RawCommit};

/// Patches (by id) that the release already has, each with the upstream
/// commit of the same change when one could be named. A patch that starts
/// empty is never one (git's sequencer keeps it: `is_empty` in
/// `sequencer_make_script`), and merges have no patch-id. `marked` is what
/// [`Git::start_cherry_walk`] found for `release...head`.
pub fn upstreamed_patches(
    git: &Git,
    patches: &[&RawCommit],
    empty: &BTreeSet<String>,
    marked: CherryMarks,
) -> Result<HashMap<String, Option<String>>> {
    let dropped: Vec<String> = patches
        .iter()
        .filter(|patch| patch.parents.len() == 1 && marked.tip.contains(&patch.id) && !empty.contains(&patch.id))
        .map(|patch| patch.id.clone())
        .collect();
    if dropped.is_empty() {
        return Ok(HashMap::new());
    }
    let upstream: Vec<String> = marked.upstream.into_iter().collect();
    // git marks both commits of each equivalent pair: with one upstream
    // commit marked, it is every dropped patch's pair, and no patch-id need
    // be computed again.
    if let [only] = upstream.as_slice() {
        return Ok(dropped.into_iter().map(|id| (id, Some(only.clone()))).collect());
    }
    // Both sides' patch-ids in one diff and one patch-id process.
    let both: Vec<String> = upstream.iter().chain(&dropped).cloned().collect();
    let ids = git.patch_ids(&git.diffs_of(&both)?)?;
    let upstream_side: BTreeSet<&String> = upstream.iter().collect();
    let mut upstream_ids: HashMap<&str, &str> = HashMap::new();
    for (patch_id, commit) in &ids {
        if upstream_side.contains(commit) {
            upstream_ids.insert(patch_id, commit);
        }
    }
    let mut named: HashMap<String, Option<String>> = dropped.iter().map(|id| (id.clone(), None)).collect();
    for (patch_id, commit) in &ids {
        if let (Some(entry), Some(upstream)) = (named.get_mut(commit), upstream_ids.get(patch_id.as_str())) {
            *entry = Some(upstream.to_string());
        }
    }
    Ok(named)
}
