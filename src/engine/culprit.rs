//! Culprits: the upstream commit after which a patch stops applying.
//!
//! The claim a culprit makes is checked before it is made: with the patches
//! below carried along, the patch applies on the culprit's (first) parent
//! and conflicts on the culprit. The patches below are carried to the
//! patch's files in one of two ways, and the claim must hold with the same
//! one on both sides:
//!
//! - *as replayed*: the change the replay made on the release before this
//!   patch (resolutions from the memory included), taken back to the probed
//!   commit: `merge(base = release, ours = probe, theirs = landed on)`;
//! - *as committed*: the fork's own change below the patch, from where the
//!   patch's history last met upstream:
//!   `merge(base = merge-base(parent, release), ours = probe, theirs = parent)`.
//!
//! A way counts at a probe only when its merge is clean on the patch's
//! files (what happens elsewhere cannot change the patch's merge). The
//! search bisects the first-parent upstream commits since the fork point
//! that touch the patch's files, preferring "as replayed" where it counts;
//! when the commit it lands on does not satisfy the claim, no single
//! upstream commit explains the conflict and none is named.

use std::collections::HashMap;

use anyhow::Result;

use crate::engine::replay::first_parent;
use crate::git::{Git, MergeRequest, RawCommit};

/// How the patches below were carried when the claim was checked.
pub const AS_REPLAYED: &str = "replayed";
pub const AS_COMMITTED: &str = "committed";

/// Where one patch is searched from.
pub struct Search<'a> {
    /// Sees every object, the replay's included.
    pub git: &'a Git,
    pub release: &'a str,
    pub release_tree: &'a str,
    /// Where the branch left upstream along first parents: the culprit
    /// range starts here, not at the merge base a synced branch has.
    pub fork_point: &'a str,
}

/// One patch to find the culprit of.
pub struct Target<'a> {
    pub patch: &'a RawCommit,
    /// Whether any patch of the stack is below it.
    pub has_lower: bool,
    /// The tree it landed on in the replay, when the replay got that far.
    pub landed_on: Option<&'a str>,
    /// The files it changes.
    pub paths: &'a [String],
    /// Where its own history last met upstream (the merge base of its
    /// parent and the release, else the fork point).
    pub own_base: &'a str,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The claim holds for this commit; `carried` says how the patches below
    /// were carried (None when there are none).
    Upstream { sha: String, subject: String, carried: Option<&'static str> },
    /// The conflict changes along upstream's history, but at no single
    /// commit with the claim holding.
    NoSingleCommit,
    /// No upstream commit changes the answer: the patch conflicts with the
    /// stack, not with upstream.
    NotUpstream,
}

/// A probe's answer for one way of carrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Applies,
    Conflicts,
    /// The patches below could not be carried this way to the patch's files.
    Unknown,
}

/// The answers at one commit: as replayed, as committed.
type Answers = [Probe; 2];

const WAYS: [&str; 2] = [AS_REPLAYED, AS_COMMITTED];

impl Search<'_> {
    /// The culprit of `target`, checked.
    pub fn culprit(&self, target: &Target) -> Result<Finding> {
        let candidates = self.git.first_parent_range_touching(self.fork_point, self.release, target.paths)?;
        let Some(last) = candidates.last() else { return Ok(Finding::NotUpstream) };
        let committed_base = target.own_base.to_string();
        let mut probes = Probes { search: self, target, committed_base, seen: HashMap::new() };
        // Where the answer is known, prefer the patches as replayed.
        let applies = |answers: Answers| match answers {
            [Probe::Unknown, other] => other == Probe::Applies,
            [replayed, _] => replayed == Probe::Applies,
        };
        if applies(probes.at(last)?) {
            return Ok(Finding::NotUpstream);
        }
        // The patch is taken to apply before candidates[lo]; it does not at candidates[hi].
        let (mut lo, mut hi) = (0, candidates.len() - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if applies(probes.at(&candidates[mid])?) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let culprit = &candidates[lo];
        let commit = &self.git.read_commits(std::slice::from_ref(culprit))?[0];
        let before = probes.at(&first_parent(commit))?;
        let after = probes.at(culprit)?;
        let way = (0..WAYS.len()).find(|&way| before[way] == Probe::Applies && after[way] == Probe::Conflicts);
        tracing::debug!(patch = %target.patch.id, culprit = %culprit, ?before, ?after, "culprit checked");
        Ok(match way {
            Some(way) => Finding::Upstream {
                sha: culprit.clone(),
                subject: commit.subject(),
                carried: target.has_lower.then_some(WAYS[way]),
            },
            None => Finding::NoSingleCommit,
        })
    }
}

/// Probes of one patch, each commit probed once.
struct Probes<'a> {
    search: &'a Search<'a>,
    target: &'a Target<'a>,
    committed_base: String,
    seen: HashMap<String, Answers>,
}

impl Probes<'_> {
    /// Does the patch apply at upstream commit `at`, with the patches below
    /// carried each way? Two batches: the carrying merges (one `ours`), then
    /// the patch onto each way's result.
    fn at(&mut self, at: &str) -> Result<Answers> {
        if let Some(answers) = self.seen.get(at) {
            return Ok(*answers);
        }
        let (search, target) = (self.search, self.target);
        let patch = target.patch;
        let parent = first_parent(patch);
        // With nothing below, both ways are the probed commit itself.
        let below: [Option<String>; 2] = if !target.has_lower {
            [Some(at.to_string()), None]
        } else {
            let replayed = target.landed_on.map(|tree| MergeRequest {
                base: search.release_tree.into(),
                ours: at.into(),
                theirs: tree.into(),
            });
            let committed = MergeRequest { base: self.committed_base.clone(), ours: at.into(), theirs: parent.clone() };
            let requests: Vec<MergeRequest> = replayed.into_iter().chain([committed]).collect();
            let mut results = search.git.merge_trees(&requests)?.into_iter();
            let mut carried = || {
                results.next().and_then(|result| {
                    let clean_on_patch = !result.conflicted_paths().iter().any(|path| target.paths.contains(path));
                    clean_on_patch.then_some(result.tree)
                })
            };
            let replayed = if target.landed_on.is_some() { carried() } else { None };
            [replayed, carried()]
        };
        let requests: Vec<MergeRequest> = below
            .iter()
            .flatten()
            .map(|tree| MergeRequest { base: parent.clone(), ours: tree.clone(), theirs: patch.id.clone() })
            .collect();
        let mut merged = search.git.merge_trees(&requests)?.into_iter();
        let mut answers = [Probe::Unknown; 2];
        for (way, tree) in below.iter().enumerate() {
            if tree.is_some() {
                let clean = merged.next().is_some_and(|result| result.clean);
                answers[way] = if clean { Probe::Applies } else { Probe::Conflicts };
            }
        }
        if !target.has_lower {
            answers[1] = answers[0];
        }
        self.seen.insert(at.to_string(), answers);
        Ok(answers)
    }
}
