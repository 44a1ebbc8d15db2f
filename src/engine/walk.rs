//! Which commits of the maintained branch are patches: those `git rebase
//! <tag>` replays, the branch's commits the release does not contain, read
//! along first parents so that a topic merge stays one patch.
//!
//! Two kinds of commit on that walk are upstream's work, not the fork's, and
//! are left out with a reason: a merge of upstream into the branch (GitHub's
//! "Sync fork", `git merge upstream/main`) whose other parents the release
//! already contains, and any commit upstream's default branch reaches but
//! the release does not (upstream's unreleased work: a documented
//! difference from `git rebase <tag>`, which would replay it as patches).

use std::collections::HashSet;

use anyhow::Result;

use crate::engine::land;
use crate::git::{Git, RawCommit};

/// The reason a merge of released upstream work is left out.
pub const MERGED_UPSTREAM: &str = "merged upstream, left out";
/// The reason upstream's unreleased work is left out.
pub const UNRELEASED: &str = "upstream, not in this release";

/// One commit of the walk and, when it is not a patch, why.
pub struct Walked {
    pub commit: RawCommit,
    pub left_out: Option<&'static str>,
}

/// The first-parent commits of `head` that `release` does not contain,
/// above the newest land merge, read: what the branch head and the
/// release alone decide (see [`classify`] for the rest).
pub struct Chain {
    /// The newest land merge on the chain (`land: merge`), if any.
    landed: Option<String>,
    /// The commits above it, oldest first.
    pub commits: Vec<RawCommit>,
}

/// The chain of a branch head above a release, from its first-parent walk
/// ([`Git::first_parent_chain`]): a landed branch's patches start above its
/// newest land merge (`land: merge`), as the ones below it were replayed
/// onto the release it landed.
pub fn chain(git: &Git, chain: &[(String, Vec<String>)]) -> Result<Chain> {
    let landed = newest_land_merge(git, chain)?;
    // Above the land merge, nothing on the chain is its ancestor: excluding
    // it leaves the chain above it.
    let above = landed.as_ref().and_then(|landed| chain.iter().position(|(id, _)| id == landed)).map_or(0, |at| at + 1);
    let ids: Vec<String> = chain[above..].iter().map(|(id, _)| id.clone()).collect();
    Ok(Chain { landed, commits: git.read_commits(&ids)? })
}

/// The chain's commits, oldest first, each with why it is left out, if it
/// is. `upstream_head` is upstream's default branch, when known.
pub fn classify(
    git: &Git,
    chain: Chain,
    head: &str,
    release: &str,
    upstream_head: Option<&str>,
) -> Result<Vec<Walked>> {
    let unreleased: HashSet<String> = match upstream_head {
        // A release cut from the default branch's tip excludes the same.
        Some(upstream) if upstream != release => {
            let mut excluded = vec![release, upstream];
            excluded.extend(chain.landed.as_deref());
            let ours: HashSet<String> = git.first_parent_commits(head, &excluded)?.into_iter().collect();
            chain.commits.iter().map(|commit| &commit.id).filter(|id| !ours.contains(*id)).cloned().collect()
        }
        _ => HashSet::new(),
    };
    let mut walked = Vec::new();
    for commit in chain.commits {
        let left_out = if unreleased.contains(&commit.id) {
            Some(UNRELEASED)
        } else if commit.parents.len() > 1 {
            merge_of_upstream(git, &commit, release, upstream_head)?
        } else {
            None
        };
        walked.push(Walked { commit, left_out });
    }
    Ok(walked)
}

/// The newest merge of the chain whose message has a line starting with
/// `Patchmoi-Land: ` (its trailer), as `rev-list --first-parent --merges --max-count=1
/// --extended-regexp --grep='^Patchmoi-Land: '` finds it; only the chain's
/// merges are read.
fn newest_land_merge(git: &Git, chain: &[(String, Vec<String>)]) -> Result<Option<String>> {
    let merges: Vec<String> = chain.iter().filter(|(_, parents)| parents.len() > 1).map(|(id, _)| id.clone()).collect();
    let marker = format!("{}: ", land::TRAILER);
    let read = git.read_commits(&merges)?;
    Ok(read
        .into_iter()
        .rev()
        .find(|merge| merge.message().lines().any(|line| line.starts_with(&marker)))
        .map(|merge| merge.id))
}

/// Why a merge is upstream's work: every parent but the first is in the
/// release (or, failing that, on upstream's default branch). None for a
/// topic merge, which is carried as one patch.
fn merge_of_upstream(
    git: &Git,
    merge: &RawCommit,
    release: &str,
    upstream_head: Option<&str>,
) -> Result<Option<&'static str>> {
    let mut released = true;
    for parent in &merge.parents[1..] {
        if git.is_ancestor(parent, release)? {
            continue;
        }
        released = false;
        match upstream_head {
            Some(upstream) if git.is_ancestor(parent, upstream)? => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(if released { MERGED_UPSTREAM } else { UNRELEASED }))
}
