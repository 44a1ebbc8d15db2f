//! The workspace: the user's checkout that flows are discovered in, and the
//! worktrees patchmoi makes inside it (under `.codex/workspace/actions/worktrees/`)
//! and always removes again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::git::Git;
use crate::runner::worktrees_dir;
use crate::stack::Stopped;

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
    pub fn conflict_worktree(&self, name: &str, stopped: &Stopped) -> Result<Worktree> {
        let path = self.fresh_path(name)?;
        self.git.add_conflict_worktree(&path, &stopped.head, &stopped.tree, &stopped.conflicts)?;
        Ok(Worktree { path })
    }

    /// Removes a worktree; a failure is logged, not fatal: the run's result
    /// matters more, and the next run clears leftovers.
    pub fn remove_worktree(&self, worktree: Worktree) {
        if let Err(err) = self.git.remove_worktree(&worktree.path) {
            tracing::warn!("failed to remove worktree {}: {err:#}", worktree.path.display());
        }
    }
}
