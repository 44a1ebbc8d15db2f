//! The workspace: the user's checkout that flows are discovered in, and the
//! worktrees patchmoi makes inside it (under `.codex/workspace/actions/worktrees/`)
//! and always removes again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::engine::markers::{relabel, Labels};
use crate::engine::stack::{short, Patch, Stopped};
use crate::flow::state::worktrees_dir;
use crate::git;
use crate::git::{ConflictEntry, Git};

pub struct Workspace {
    pub root: PathBuf,
    pub git: Git,
}

/// A worktree patchmoi made; hand it back to [`Workspace::remove_worktree`].
#[derive(Debug)]
pub struct Worktree {
    pub path: PathBuf,
}

impl Workspace {
    pub fn open(root: &Path) -> Result<Workspace> {
        let git = Git::open(root)?;
        Ok(Workspace { root: root.to_path_buf(), git })
    }

    fn fresh_path(&self, name: &str) -> Result<PathBuf> {
        let path = worktrees_dir(&self.root).join(name);
        if path.exists() {
            // Left behind by a run that was killed: it is ours to remove.
            self.git.remove_worktree(&path)?;
        }
        std::fs::create_dir_all(path.parent().context("worktree path has no parent")?)?;
        Ok(path)
    }

    /// A detached checkout of `commit`.
    pub fn worktree(&self, name: &str, commit: &str) -> Result<Worktree> {
        let path = self.fresh_path(name)?;
        self.git.add_worktree(&path, commit)?;
        Ok(Worktree { path })
    }

    /// A checkout of a stopped replay, conflicts marked and unmerged in the index.
    pub fn conflict_worktree(&self, name: &str, stopped: &Stopped, tag: &str) -> Result<Worktree> {
        let path = self.fresh_path(name)?;
        self.git.add_conflict_worktree(&path, &stopped.head, &stopped.tree, &stopped.conflicts)?;
        relabel_conflicts(&path, &stopped.conflicts, &labels(tag, &stopped.patch))?;
        Ok(Worktree { path })
    }

    /// Removes what runs that were killed left behind: their worktrees
    /// (every worktree here but the resolve sessions in `keep`; runs hold
    /// the state lock, so no other run is using one) and the temporary
    /// packs of interrupted fetches. Failures are logged, not fatal.
    pub fn remove_leftovers(&self, keep: &[PathBuf]) {
        if let Ok(entries) = std::fs::read_dir(worktrees_dir(&self.root)) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && !keep.contains(&path) {
                    tracing::info!("removing {}, left by a run that did not finish", path.display());
                    self.remove_worktree(Worktree { path });
                }
            }
        }
        match self.git.remove_stale_temporary_packs(std::time::Duration::from_secs(3600)) {
            Ok(0) => {}
            Ok(removed) => tracing::info!("removed {removed} temporary pack(s) of interrupted fetches"),
            Err(err) => tracing::debug!("temporary packs: {err:#}"),
        }
    }

    /// Removes a worktree; a failure is logged, not fatal: the run's result
    /// matters more, and the next run clears leftovers.
    pub fn remove_worktree(&self, worktree: Worktree) {
        if let Err(err) = self.git.remove_worktree(&worktree.path) {
            tracing::warn!("failed to remove worktree {}: {err:#}", worktree.path.display());
        }
    }
}

/// How the sides of a patch's conflict on release `tag` are labelled.
pub fn labels(tag: &str, patch: &Patch) -> Labels {
    Labels {
        upstream: format!("upstream {tag}"),
        base: "base (before the patch)".into(),
        patch: format!("patch {} \"{}\"", short(&patch.sha), patch.subject),
    }
}

/// Rewrites the marker lines of the conflicted files in a worktree so a
/// person sees which side is which. Only the working files change: the
/// index keeps git's stages.
pub fn relabel_conflicts(dir: &Path, conflicts: &[ConflictEntry], labels: &Labels) -> Result<()> {
    for path in git::conflicted_paths(conflicts) {
        // The name as bytes: a path that is not UTF-8 is relabelled too.
        let file = dir.join(git::path_os(&path));
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        std::fs::write(&file, relabel(&text, labels)).with_context(|| format!("failed to write {}", file.display()))?;
    }
    Ok(())
}
