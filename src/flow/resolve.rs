//! Resolving a conflict once: `resolve` recreates the stopped state of a
//! release in a worktree patchmoi owns, `continue` validates what the person
//! did there and records it in the memory of resolutions (the caller then
//! replays the flow, which now gets past the conflict), and `abort` removes
//! it all. The user's own checkout and branches are never touched.
//!
//! Replayed commits are deterministic, so the recreated state is the same
//! every time for the same inputs; a `continue` after the maintained branch
//! or the tag moved is refused.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::memory::{Entry, Memory};
use crate::engine::recall::{learn_resolutions, validate};
use crate::engine::replay;
use crate::engine::stack;
use crate::engine::stack::{
    prepare, replay_prepared, resolve_branch, Patch, Precondition, RecalledPatch, StackSpec, Stopped,
};
use crate::flow::event::{now, FlowEvent};
use crate::flow::flows::Flow;
use crate::flow::state::worktrees_dir;
use crate::flow::state::{write_atomic, StateDir};
use crate::flow::workspace;
use crate::git;
use crate::git::{ConflictEntry, Git};

/// A resolution in progress, kept next to the runner state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paused {
    pub flow: String,
    pub tag: String,
    /// The event the flow ran for: `continue` runs it again.
    pub event: FlowEvent,
    pub branch: String,
    pub branch_head: String,
    pub release: String,
    pub patch: Patch,
    /// The files the patch changes: a resolution may edit these beside the
    /// conflicting ones (empty in a session started by an older patchmoi;
    /// then they are read from the patch).
    #[serde(default)]
    pub patch_paths: Vec<String>,
    /// The conflicted merge and its index stages.
    pub merge_tree: String,
    pub conflicts: Vec<ConflictEntry>,
    pub worktree: PathBuf,
    /// Every file is checked out, not only the conflicting ones.
    #[serde(default)]
    pub full: bool,
    pub created_at: String,
}

impl Paused {
    pub fn conflicted_paths(&self) -> Vec<String> {
        git::conflicted_paths(&self.conflicts)
    }
}

/// How `resolve` ended.
pub enum Started {
    /// A worktree with the conflict, ready for a person.
    Ready(Box<Paused>),
    /// The stack applies (perhaps thanks to the memory): nothing to resolve.
    Applies {
        recalled: Vec<RecalledPatch>,
    },
    UpToDate,
    Blocked(String),
}

/// The stack spec of `flow` for `tag`.
pub fn spec_for(flow: &Flow, tag: &str) -> Result<StackSpec> {
    if flow.stack.is_none() {
        bail!("flow {} has no `stack:`; there is nothing to resolve", flow.name);
    }
    flow.stack_spec(tag)
}

fn paused_path(state_dir: &StateDir, flow: &str, tag: &str) -> PathBuf {
    state_dir.dir.join("paused").join(format!("{flow}-{tag}.json"))
}

/// The worktrees of every resolution in progress: a run leaves them be.
pub fn session_worktrees(state_dir: &StateDir) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(state_dir.dir.join("paused")) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| serde_json::from_str::<Paused>(&text).ok())
        .map(|paused| paused.worktree)
        .collect()
}

/// The resolution in progress for `flow` and `tag`, if any.
pub fn load_paused(state_dir: &StateDir, flow: &str, tag: &str) -> Result<Option<Paused>> {
    let path = paused_path(state_dir, flow, tag);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// Recreates the stopped state of `event`'s release for `flow` in
/// `.codex/workspace/actions/worktrees/<flow>-<tag>`.
pub fn start(git: &Git, workspace: &Path, flow: &Flow, event: &FlowEvent, tag: &str, full: bool) -> Result<Started> {
    let state_dir = StateDir::of(workspace);
    if let Some(paused) = load_paused(&state_dir, &flow.name, tag)? {
        bail!(
            "a resolution of {} for {tag} is already in progress in {}; finish it with `patchmoi continue --flow {} --tag {tag}` or drop it with `patchmoi abort --flow {} --tag {tag}`",
            flow.name,
            paused.worktree.display(),
            flow.name,
            flow.name
        );
    }
    let spec = spec_for(flow, tag)?;
    let stopped = match reusable(git, &state_dir, flow, &spec)? {
        Some(stopped) => stopped,
        None => match replay_to_stop(git, &spec)? {
            Ok(stopped) => stopped,
            Err(started) => return Ok(started),
        },
    };
    let path = worktrees_dir(workspace).join(format!("{}-{tag}", flow.name));
    if path.exists() {
        git.remove_worktree(&path)?;
    }
    let worktrees = worktrees_dir(workspace);
    std::fs::create_dir_all(&worktrees).with_context(|| format!("failed to create {}", worktrees.display()))?;
    // Sparse by default: only the conflicting files and the patch's own are
    // written, so a large repository costs no more than its conflicts.
    // `full` checks out every file, for a fix that must be built or tested
    // where it is made.
    if full {
        git.add_conflict_worktree(&path, &stopped.head, &stopped.tree, &stopped.conflicts)?;
    } else {
        // The patch's other files too: a resolution may need to edit them.
        git.add_sparse_conflict_worktree(
            &path,
            &stopped.head,
            &stopped.tree,
            &stopped.conflicts,
            &stopped.patch_paths,
        )?;
    }
    workspace::relabel_conflicts(&path, &stopped.conflicts, &workspace::labels(tag, &stopped.patch))?;
    let paused = Paused {
        flow: flow.name.clone(),
        tag: tag.to_string(),
        event: event.clone(),
        branch: spec.branch.clone(),
        branch_head: stopped.branch_head,
        release: stopped.release,
        patch: stopped.patch,
        patch_paths: stopped.patch_paths,
        merge_tree: stopped.tree,
        conflicts: stopped.conflicts,
        worktree: path,
        full,
        created_at: now(),
    };
    write_atomic(&paused_path(&state_dir, &flow.name, tag), &serde_json::to_vec_pretty(&paused)?)?;
    Ok(Started::Ready(Box::new(paused)))
}

/// The stopped state the last run recorded, when it was computed from the
/// branch head, release and memory that are here now (so a replay would
/// give the same) and its objects are still in the repository.
fn reusable(git: &Git, state_dir: &StateDir, flow: &Flow, spec: &StackSpec) -> Result<Option<Stopped>> {
    let Some(stopped) = state_dir.load_stopped(&flow.name, &spec.tag)? else { return Ok(None) };
    let head = resolve_branch(git, spec)?;
    let release = git.resolve_commit(&spec.upstream_ref())?;
    let memory = Memory::load(git)?;
    let same = head.as_deref() == Some(stopped.branch_head.as_str())
        && release.as_deref() == Some(stopped.release.as_str())
        && memory.tip() == stopped.memory.as_deref();
    if !same {
        return Ok(None);
    }
    let present = git.read_objects(&[stopped.head.clone(), stopped.tree.clone()])?.iter().all(Option::is_some);
    Ok(present.then_some(stopped))
}

/// Replays the stack (with the memory) up to the patch that stops.
fn replay_to_stop(git: &Git, spec: &StackSpec) -> Result<Result<Stopped, Started>> {
    let prepared = match prepare(git, spec, false)? {
        Precondition::Ready(prepared) => prepared,
        Precondition::UpToDate { .. } => return Ok(Err(Started::UpToDate)),
        Precondition::Blocked(message) => return Ok(Err(Started::Blocked(message))),
    };
    let memory = Memory::load(git)?;
    let replayed = replay_prepared(git, &prepared, &memory)?;
    let quarantine = &prepared.quarantine;
    let Some((stop, merge)) = replayed.stop else {
        return Ok(Err(Started::Applies { recalled: replayed.recalled }));
    };
    quarantine.publish(&[replayed.tip.clone(), merge.tree.clone()])?;
    let commit = &prepared.patches[stop];
    Ok(Ok(Stopped {
        head: replayed.tip,
        tree: merge.tree,
        conflicts: merge.conflicts,
        patch: Patch { sha: commit.id.clone(), subject: commit.subject(), author: commit.author() },
        patch_paths: git.changed_paths(&replay::first_parent(commit), &commit.id)?,
        branch_head: prepared.head.clone(),
        release: prepared.release.clone(),
        memory: memory.tip().map(str::to_string),
    }))
}

/// Checks the person's resolution and records it in the memory. Returns the
/// paused state (now finished) and how many entries were new.
pub fn finish(git: &Git, workspace: &Path, flow: &Flow, tag: &str) -> Result<(Paused, usize)> {
    let state_dir = StateDir::of(workspace);
    let paused = load_paused(&state_dir, &flow.name, tag)?.with_context(|| {
        format!(
            "no resolution of {} for {tag} is in progress; start one with `patchmoi resolve --flow {} --tag {tag}`",
            flow.name, flow.name
        )
    })?;
    let spec = spec_for(flow, tag)?;
    let head = resolve_branch(git, &spec)?;
    let release = git.resolve_commit(&spec.upstream_ref())?;
    if head.as_deref() != Some(paused.branch_head.as_str()) || release.as_deref() != Some(paused.release.as_str()) {
        bail!(
            "the stopped state is stale: {} or {tag} moved since `patchmoi resolve` (was {} on {}); run `patchmoi abort --flow {} --tag {tag}` and resolve again",
            paused.branch,
            stack::short(&paused.branch_head),
            stack::short(&paused.release),
            flow.name
        );
    }
    let worktree = Git::at(&paused.worktree);
    let unmerged = worktree.unmerged_paths()?;
    if !unmerged.is_empty() {
        bail!(
            "these files are still unmerged in {}: {}; edit them, then `git add` them",
            paused.worktree.display(),
            unmerged.join(", ")
        );
    }
    let resolved = worktree.write_tree().context("failed to read the resolution from the worktree index")?;
    let patch_paths = match paused.patch_paths.is_empty() {
        false => paused.patch_paths.clone(),
        true => {
            let commit = git.read_commits(std::slice::from_ref(&paused.patch.sha))?;
            let commit = commit.first().context("the stopped patch is no longer in the repository")?;
            git.changed_paths(&replay::first_parent(commit), &commit.id)?
        }
    };
    if let Err(invalid) = validate(git, &paused.merge_tree, &paused.conflicted_paths(), &patch_paths, &resolved)? {
        bail!("the resolution in {} is not finished: {invalid}", paused.worktree.display());
    }
    let recorded = remember(git, &paused.merge_tree, &paused.conflicts, &paused.patch, &paused.tag, &resolved)?;
    git.remove_worktree(&paused.worktree)?;
    std::fs::remove_file(paused_path(&state_dir, &flow.name, tag))?;
    Ok((paused, recorded))
}

/// Records how the tree `resolved` resolves the conflicted merge
/// `merge_tree` of `patch` on release `tag`; returns how many entries were new.
pub fn remember(
    git: &Git,
    merge_tree: &str,
    conflicts: &[ConflictEntry],
    patch: &Patch,
    tag: &str,
    resolved: &str,
) -> Result<usize> {
    let template = Entry {
        kind: String::new(),
        resolution: None,
        path: String::new(),
        patch_sha: patch.sha.clone(),
        patch_subject: patch.subject.clone(),
        tag: tag.to_string(),
        recorded_at: now(),
        edits: Vec::new(),
    };
    let entries = learn_resolutions(git, merge_tree, conflicts, resolved, &template)?;
    let mut memory = Memory::load(git)?;
    let message = format!("patchmoi: remember the resolution of \"{}\" on {tag}", patch.subject);
    memory.remember(git, entries, &message)
}

/// Removes the worktree and the paused state; true when there was one.
pub fn abort(git: &Git, workspace: &Path, flow: &str, tag: &str) -> Result<bool> {
    let state_dir = StateDir::of(workspace);
    let path = worktrees_dir(workspace).join(format!("{flow}-{tag}"));
    let paused = load_paused(&state_dir, flow, tag)?;
    if paused.is_none() && !path.exists() {
        return Ok(false);
    }
    git.remove_worktree(&path)?;
    if paused.is_some() {
        std::fs::remove_file(paused_path(&state_dir, flow, tag))?;
    }
    Ok(true)
}
