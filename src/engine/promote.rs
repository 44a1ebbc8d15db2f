//! Promotion: the explicit, reversible step that moves the maintained branch
//! to a release's candidate. It leases on the head the candidate was built
//! from (a branch that moved since is never overwritten) and keeps the old
//! head under a backup ref, locally and, with `--push`, on the remote.

use std::fmt::Write;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::engine::publish;
use crate::engine::publish::{backup_ref, built_from_ref};
use crate::engine::stack::short;
use crate::engine::stack::StackSpec;
use crate::git::{Git, RefUpdate};

#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    pub branch: String,
    /// The fork's remote, for the remote half.
    pub remote: String,
    pub from: String,
    pub to: String,
    /// Whether the local branch moved.
    pub local_moved: bool,
    /// The local backup of the old head (none when nothing moved).
    pub backup: Option<String>,
    /// With `--push`: the remote branch's head before, and whether it moved.
    pub remote_from: Option<String>,
    pub remote_moved: bool,
    /// The backup branch on the remote, with `--push`.
    pub remote_backup: Option<String>,
    pub pushed: bool,
    /// Whether the candidate descends from the head it replaces (`land:
    /// merge`): then nothing is lost, so no backup is kept and the remote
    /// gets a plain push, no force, no lease.
    pub fast_forward: bool,
}

impl Promotion {
    /// Each thing done, and how to undo it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let (branch, to) = (&self.branch, short(&self.to));
        match (&self.backup, self.local_moved) {
            (None, true) => {
                let _ = writeln!(out, "{branch}: {} -> {to} (local, fast-forward)", short(&self.from));
                let _ = writeln!(out, "  undo: git update-ref refs/heads/{branch} {} {}", self.from, self.to);
            }
            (Some(backup), true) => {
                let _ = writeln!(out, "{branch}: {} -> {to} (local)", short(&self.from));
                let _ = writeln!(out, "  old head kept in {backup}");
                let _ = writeln!(out, "  undo: git update-ref refs/heads/{branch} {} {}", self.from, self.to);
            }
            // The local branch was looked at and already there.
            _ if self.from == self.to => {
                let _ = writeln!(out, "{branch} is already at {to}");
            }
            _ => {}
        }
        if self.pushed {
            let remote = &self.remote;
            match (&self.remote_from, self.remote_moved) {
                (Some(old), true) => {
                    let how = if self.fast_forward { " (fast-forward)" } else { "" };
                    let _ = writeln!(out, "{branch} on {remote}: {} -> {to}{how}", short(old));
                    if let Some(backup) = &self.remote_backup {
                        let _ = writeln!(out, "  the remote's old head is kept in {backup}");
                    }
                    let _ = writeln!(
                        out,
                        "  undo: git push --force-with-lease=refs/heads/{branch}:{} {remote} {old}:refs/heads/{branch}",
                        self.to
                    );
                }
                (None, true) => {
                    let _ = writeln!(out, "{branch} on {remote}: created at {to}");
                    let _ = writeln!(out, "  undo: git push --delete {remote} refs/heads/{branch}");
                }
                (_, false) => {
                    let _ = writeln!(out, "{branch} on {remote} is already at {to}");
                }
            }
        }
        out
    }
}

/// Promotes the candidate of `stack` (its release tag's). With `local`, the
/// local branch moves (and must not be checked out); without it (a CI
/// runner, whose checkout usually has the branch checked out and is thrown
/// away) only the remote branch moves, which needs `push`.
pub fn promote(git: &Git, stack: &StackSpec, push: bool, local: bool) -> Result<Promotion> {
    let tag = &stack.tag;
    let candidate_ref = stack.candidate_ref();
    let candidate = git
        .ref_value(&candidate_ref)?
        .with_context(|| format!("there is no candidate {candidate_ref}; run the flow for {tag} first"))?;
    let built_from = git.ref_value(&built_from_ref(&candidate_ref))?.with_context(|| {
        format!("patchmoi has no record of what {candidate_ref} was built from; run the flow for {tag} again")
    })?;
    let branch_ref = format!("refs/heads/{}", stack.branch);
    let current = if local { git.ref_value(&branch_ref)? } else { None };

    let mut promotion = Promotion {
        branch: stack.branch.clone(),
        remote: stack.remote.clone(),
        from: built_from.clone(),
        to: candidate.clone(),
        local_moved: false,
        backup: None,
        remote_from: None,
        remote_moved: false,
        remote_backup: None,
        pushed: false,
        fast_forward: git.is_ancestor(&built_from, &candidate)?,
    };
    match &current {
        Some(head) if *head == candidate => promotion.from = candidate.clone(),
        Some(head) if *head != built_from => bail!(
            "{} moved since the candidate was built (built from {}, now at {}); run the flow for {tag} again with --replay",
            stack.branch,
            short(&built_from),
            short(head)
        ),
        Some(head) if promotion.fast_forward => {
            refuse_checked_out(git, &branch_ref, &stack.branch)?;
            git.update_refs(&[RefUpdate::Set {
                refname: branch_ref.clone(),
                new: candidate.clone(),
                old: Some(head.clone()),
            }])?;
            promotion.local_moved = true;
        }
        Some(head) => {
            refuse_checked_out(git, &branch_ref, &stack.branch)?;
            let backup = backup_ref(git, &branch_ref)?;
            git.update_refs(&[
                RefUpdate::Set { refname: backup.clone(), new: head.clone(), old: None },
                RefUpdate::Set { refname: branch_ref.clone(), new: candidate.clone(), old: Some(head.clone()) },
            ])?;
            promotion.backup = Some(backup);
            promotion.local_moved = true;
        }
        None if !push => bail!("there is no local branch {}; pass --push to promote it on {}", stack.branch, stack.remote),
        None if !local => {}
        None => {}
    }

    if push {
        let remote_head = git.remote_ref(&stack.remote, &branch_ref)?;
        promotion.remote_from = remote_head.clone();
        match remote_head.as_deref() {
            Some(head) if head == candidate => {}
            Some(head) if head != built_from => bail!(
                "{} on {} moved since the candidate was built (built from {}, now at {})",
                stack.branch,
                stack.remote,
                short(&built_from),
                short(head)
            ),
            // The candidate contains the remote's head: a plain push, which
            // the remote takes only as a fast-forward.
            Some(_) if promotion.fast_forward => {
                git.push_fast_forward(&stack.remote, &candidate, &branch_ref).with_context(|| {
                    format!("failed to promote {} on {} by fast-forward", stack.branch, stack.remote)
                })?;
                promotion.remote_moved = true;
            }
            _ => {
                if let Some(head) = &remote_head {
                    let remote_backup = format!("refs/heads/patchmoi/backup/{}/{}", stack.branch, publish::stamp());
                    git.push_with_lease(&stack.remote, head, &remote_backup, None)?;
                    promotion.remote_backup = Some(remote_backup);
                }
                git.push_with_lease(&stack.remote, &candidate, &branch_ref, remote_head.as_deref()).with_context(
                    || {
                        format!(
                            "failed to promote {} on {} (a protected branch refuses this push)",
                            stack.branch, stack.remote
                        )
                    },
                )?;
                promotion.remote_moved = true;
            }
        }
        promotion.pushed = true;
    }
    Ok(promotion)
}

/// patchmoi never moves a branch that a worktree has checked out.
fn refuse_checked_out(git: &Git, branch_ref: &str, branch: &str) -> Result<()> {
    if let Some((_, path)) = git.checked_out_branches()?.into_iter().find(|(checked, _)| checked == branch_ref) {
        bail!(
            "{branch} is checked out in {}; switch that worktree to another branch first (patchmoi never moves a checked-out branch)",
            path.display()
        );
    }
    Ok(())
}
