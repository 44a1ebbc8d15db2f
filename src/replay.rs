//! Replaying a patch stack onto a new base, in memory, with the semantics of
//! one cherry-pick after another but without running one process per patch.
//!
//! Sequential replay is a chain: patch *i* lands on the tree patch *i-1*
//! produced, `R_i = merge(base = parent(S_i), ours = R_{i-1}, theirs = S_i)`.
//! Because `git merge-tree` only answers once its input is closed, a chain
//! would cost one process per patch. Instead we guess a window of `R_i` at
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

use anyhow::Result;

use crate::git::{Git, MergeRequest, MergeResult, RawCommit};

/// How the replay of a stack went, in trees; commits are made by the caller.
#[derive(Debug)]
pub struct Replay {
    /// Patches that landed, in order: index into the input and the new tree.
    pub applied: Vec<(usize, String)>,
    /// Patches that changed nothing on the new base (upstream has them).
    pub empty: Vec<usize>,
    /// The patch that did not apply and its conflicted merge; the patches
    /// after it were not tried.
    pub stop: Option<(usize, MergeResult)>,
    /// How many merges ran one process each (0 when every guess held).
    pub sequential_merges: usize,
}

/// How many patches one pair of batched merges covers.
pub const WINDOW: usize = 16;

/// Replays `patches` (oldest first) onto the tree `onto`; `merge_base` is
/// the commit the first patch's change is measured from for the guesses
/// (the stack's merge base, or the patch before the first one).
pub fn replay(git: &Git, merge_base: &str, onto: &str, patches: &[&RawCommit]) -> Result<Replay> {
    let mut replay = Replay { applied: Vec::new(), empty: Vec::new(), stop: None, sequential_merges: 0 };
    let mut current = onto.to_string();
    let mut base = merge_base.to_string();
    for (number, window) in patches.chunks(WINDOW).enumerate() {
        let offset = number * WINDOW;
        if let Some(stop) = replay_window(git, &base, &mut current, window, offset, &mut replay)? {
            replay.stop = Some(stop);
            break;
        }
        base = window.last().expect("chunks are not empty").id.clone();
    }
    Ok(replay)
}

/// One window: guesses, checks, then the walk that trusts a check only while
/// its guessed predecessor was the true state. Returns the stop, if any.
fn replay_window(
    git: &Git,
    base: &str,
    current: &mut String,
    window: &[&RawCommit],
    offset: usize,
    replay: &mut Replay,
) -> Result<Option<(usize, MergeResult)>> {
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
        if result.tree == *current {
            replay.empty.push(offset + index);
        } else {
            replay.applied.push((offset + index, result.tree.clone()));
        }
        on_guess = guesses[index].clean && guesses[index].tree == result.tree;
        *current = result.tree;
    }
    Ok(None)
}

/// The first parent: a merge in the stack is replayed as its first-parent
/// change, like `cherry-pick -m 1`. A root commit has the empty tree as base.
pub fn first_parent(commit: &RawCommit) -> String {
    commit.parents.first().cloned().unwrap_or_else(|| EMPTY_TREE.to_string())
}

const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
