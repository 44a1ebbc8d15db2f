//! Replaying a patch stack onto a new base, in memory, with the semantics of
//! one cherry-pick after another but without running one process per patch.
//!
//! Sequential replay is a chain: patch *i* lands on the tree patch *i-1*
//! produced, `R_i = merge(base = parent(S_i), ours = R_{i-1}, theirs = S_i)`.
//!
//! The fast way is `git replay`, which runs that chain in one process and
//! keeps merge-ort's caches between patches (see [`crate::git::Run`]). It
//! takes runs of patches that are parent and child in history, so the stack
//! goes in as runs split where an upstreamed patch was dropped, and it stops
//! without saying where when a patch conflicts. It is used while it applies;
//! from the first run that does not (or for a stack git replay cannot take:
//! merges in it, or merge settings it might read differently) the windows
//! below take over and find the exact patch that stops.
//!
//! Windows: because `git merge-tree` only answers once its input is closed, a
//! chain would cost one process per patch. Instead we guess a window of `R_i` at
//! once: from the true tree `R_k` at the window's start, the cumulative merge
//! `C_i = merge(base = S_k, ours = R_k, theirs = S_i)` (one batch), then
//! check the guesses with the real chain step, fed the guessed predecessor:
//! `V_i = merge(parent(S_i), C_{i-1}, S_i)` (a second batch). Where
//! `V_i == C_i` for every step up to *j*, induction gives `R_i == C_i`
//! exactly. At the first step where a guess fails we continue one merge at a
//! time from the true state, so the result is always the sequential one; the
//! guesses only save processes.
//!
//! Windows bound the guesses' cost: a cumulative merge redoes the work of
//! every patch since the window started, so guessing a whole stack at once
//! grows with the square of its length; windows of [`WINDOW`] keep it linear
//! at two processes per window.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::git::{Git, MergeRequest, MergeResult, Quarantine, RawCommit, Run};

/// How the replay of a stack went, in trees; commits are made by the caller.
#[derive(Debug, Default)]
pub struct Replay {
    /// Patches that landed, in order: index into the input and the new tree.
    pub applied: Vec<(usize, String)>,
    /// Patches that became empty on the new base: their change is there.
    pub empty: Vec<usize>,
    /// The patch that did not apply and its conflicted merge; the patches
    /// after it were not tried.
    pub stop: Option<(usize, MergeResult)>,
    /// How many patches `git replay` replayed (here or in `known`).
    pub chained: usize,
    /// How many merges ran one process each (0 when every guess held).
    pub sequential_merges: usize,
}

impl Replay {
    /// Records the tree patch `index` produced on top of `current`. A patch
    /// that started empty is kept as it is, as `git rebase` keeps it.
    fn record(&mut self, index: usize, tree: String, current: &mut String, started_empty: bool) {
        if tree == *current && !started_empty {
            self.empty.push(index);
        } else {
            self.applied.push((index, tree.clone()));
        }
        *current = tree;
    }
}

/// How many patches one pair of batched merges covers.
pub const WINDOW: usize = 16;

/// Where a replay starts: a commit and its tree.
pub struct Onto<'a> {
    pub commit: &'a str,
    pub tree: &'a str,
}

/// The patches to replay, oldest first, and which of them changed nothing
/// in their own history (`git commit --allow-empty`).
pub struct Patches<'a> {
    pub commits: &'a [&'a RawCommit],
    pub started_empty: &'a BTreeSet<String>,
}

impl Patches<'_> {
    fn started_empty(&self, index: usize) -> bool {
        self.started_empty.contains(&self.commits[index].id)
    }
}

/// Replays `patches` onto `onto`; `merge_base` is the commit the first
/// patch's change is measured from for the guesses (the first patch's
/// parent, or the patch before the first one). `known` holds what an
/// earlier replay of the leading patches gave: (scratch commit, tree) each.
pub fn replay(
    quarantine: &Quarantine,
    merge_base: &str,
    onto: &Onto,
    stack: &Patches,
    known: &[(String, String)],
) -> Result<Replay> {
    let patches = stack.commits;
    let mut replay = Replay::default();
    let mut current = onto.tree.to_string();
    let mut tip = onto.commit;
    for (index, (commit, tree)) in known.iter().take(patches.len()).enumerate() {
        replay.record(index, tree.clone(), &mut current, stack.started_empty(index));
        replay.chained += 1;
        tip = commit;
    }
    let mut done = known.len().min(patches.len());
    // The fast path is only a shortcut: whatever way it fails, the windows
    // below replay the same patches and find what it could not.
    let steps = chained(quarantine, tip, &patches[done..]).unwrap_or_else(|error| {
        tracing::warn!("git replay failed, replaying with git merge-tree instead: {error:#}");
        None
    });
    if let Some(steps) = steps {
        for (_, tree) in steps {
            replay.record(done, tree, &mut current, stack.started_empty(done));
            done += 1;
            replay.chained += 1;
        }
    }
    let mut base = if done == 0 { merge_base.to_string() } else { patches[done - 1].id.clone() };
    for (number, window) in patches[done..].chunks(WINDOW).enumerate() {
        let offset = done + number * WINDOW;
        if let Some(stop) =
            replay_window(&quarantine.git, &base, &mut current, stack, offset, window.len(), &mut replay)?
        {
            replay.stop = Some(stop);
            break;
        }
        base = window.last().expect("chunks are not empty").id.clone();
    }
    Ok(replay)
}

/// The whole stack replayed in one `git replay` run, as if no patch were
/// dropped: (scratch commit, tree) of every patch, or none when a patch
/// conflicts (git replay does not say which) or the stack is not one git
/// replay can take. The caller keeps what holds once it knows the drops.
pub fn speculate(quarantine: &Quarantine, onto: &str, stack: &[RawCommit]) -> Result<Vec<(String, String)>> {
    let patches: Vec<&RawCommit> = stack.iter().collect();
    Ok(chained(quarantine, onto, &patches)?.unwrap_or_default())
}

/// (scratch commit, tree) of the leading patches that `git replay` applies
/// onto the commit `onto`: all of them, or up to the run that conflicts.
/// None when the stack is not one git replay can take.
fn chained(quarantine: &Quarantine, onto: &str, patches: &[&RawCommit]) -> Result<Option<Vec<(String, String)>>> {
    if patches.is_empty() || patches.iter().any(|patch| patch.parents.len() != 1) {
        return Ok(None);
    }
    if !quarantine.replay_allowed() {
        return Ok(None);
    }
    // git replay reads attributes from one tree per process: a patch that
    // changes them ends its run, so the next run reads them as changed.
    let changing_attributes = quarantine.changing_attributes(patches)?;
    let mut runs: Vec<Run> = Vec::new();
    for (index, patch) in patches.iter().enumerate() {
        let parent = patch.parents[0].as_str();
        match runs.last_mut() {
            Some(run) if index > 0 && patches[index - 1].id == parent && !changing_attributes.contains(parent) => {
                run.last = &patch.id;
                run.len += 1;
            }
            _ => runs.push(Run { from: parent, last: &patch.id, len: 1 }),
        }
    }
    quarantine.replay_runs(onto, &runs)
}

/// One window: guesses, checks, then the walk that trusts a check only while
/// its guessed predecessor was the true state. Returns the stop, if any.
fn replay_window(
    git: &Git,
    base: &str,
    current: &mut String,
    stack: &Patches,
    offset: usize,
    len: usize,
    replay: &mut Replay,
) -> Result<Option<(usize, MergeResult)>> {
    let window = &stack.commits[offset..offset + len];
    let guesses = git.merge_trees(
        &window
            .iter()
            .map(|patch| MergeRequest { base: base.into(), ours: current.clone(), theirs: patch.id.clone() })
            .collect::<Vec<_>>(),
    )?;
    let checks = git.merge_trees(
        &window
            .iter()
            .enumerate()
            .map(|(index, patch)| MergeRequest {
                base: first_parent(patch),
                ours: if index == 0 { current.clone() } else { guesses[index - 1].tree.clone() },
                theirs: patch.id.clone(),
            })
            .collect::<Vec<_>>(),
    )?;
    // Whether `current` equals the guess the next check was fed.
    let mut on_guess = true;
    for (index, patch) in window.iter().enumerate() {
        let result = if on_guess {
            checks[index].clone()
        } else {
            replay.sequential_merges += 1;
            git.merge_tree(MergeRequest { base: first_parent(patch), ours: current.clone(), theirs: patch.id.clone() })?
        };
        if !result.clean {
            return Ok(Some((offset + index, result)));
        }
        on_guess = guesses[index].clean && guesses[index].tree == result.tree;
        replay.record(offset + index, result.tree, current, stack.started_empty(offset + index));
    }
    Ok(None)
}

/// The first parent: a merge in the stack is replayed as its first-parent
/// change, like `cherry-pick -m 1`. A root commit has the empty tree as base.
pub fn first_parent(commit: &RawCommit) -> String {
    commit.parents.first().cloned().unwrap_or_else(|| EMPTY_TREE.to_string())
}

const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
