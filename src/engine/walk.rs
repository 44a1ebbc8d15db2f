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
/// oldest first, each with why it is left out, if it is. `upstream_head` is
/// upstream's default branch, when known; `landed` the newest land merge
/// of the branch (`land: merge`), whose parents hold no patch to replay.
pub fn walk(
    git: &Git,
    head: &str,
    release: &str,
    upstream_head: Option<&str>,
    landed: Option<&str>,
) -> Result<Vec<Walked>> {
    let mut excluded = vec![release];
    excluded.extend(landed);
    let ids = git.first_parent_commits(head, &excluded)?;
    let unreleased: HashSet<String> = match upstream_head {
        // A release cut from the default branch's tip excludes the same.
        Some(upstream) if upstream != release => {
            excluded.push(upstream);
            let ours: HashSet<String> = git.first_parent_commits(head, &excluded)?.into_iter().collect();
            ids.iter().filter(|id| !ours.contains(*id)).cloned().collect()
        }
        _ => HashSet::new(),
    };
    let mut walked = Vec::new();
    for commit in git.read_commits(&ids)? {
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
