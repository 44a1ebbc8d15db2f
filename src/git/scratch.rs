//! A scratch checkout of a tree: its files written into a plain directory
//! (no `.git` in it) with a private index, for a command that needs a full
//! checkout of a state that no commit of the repository holds, and the
//! directory read back as a tree afterwards.

use std::path::Path;

use anyhow::Result;

use super::Git;

impl Git {
    /// This git (its objects, e.g. a quarantine's) working on `dir` with
    /// the index `index`.
    fn on_scratch(&self, dir: &Path, index: &Path) -> Result<Git> {
        let git_dir = self.run(&["rev-parse", "--absolute-git-dir"])?;
        let mut scratch = self.with_env("GIT_DIR", git_dir).with_env("GIT_INDEX_FILE", index.as_os_str());
        scratch = scratch.with_env("GIT_WORK_TREE", dir.as_os_str());
        scratch.dir = dir.to_path_buf();
        Ok(scratch)
    }

    /// Writes every file of `tree` into `dir`, recording them in `index`.
    pub fn checkout_scratch(&self, tree: &str, dir: &Path, index: &Path) -> Result<()> {
        let scratch = self.on_scratch(dir, index)?;
        scratch.run(&["read-tree", "--end-of-options", tree])?;
        scratch.run(&["checkout-index", "--all", "--force"])?;
        Ok(())
    }

    /// The tree `dir` holds now (ignored files left out), written with
    /// `index` from [`Git::checkout_scratch`].
    pub fn scratch_tree(&self, dir: &Path, index: &Path) -> Result<String> {
        let scratch = self.on_scratch(dir, index)?;
        scratch.run(&["add", "--all"])?;
        scratch.run(&["write-tree"])
    }
}
