//! What the commands share: the exit outcome and the workspace root a
//! command works in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::core::error::usage;
use crate::git::Git;

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Completed, changed or skipped.
    Done,
    /// Needs intervention, blocked or failed: a person must look.
    Attention,
}

/// `--workspace-root`, or the git top level of the current directory.
pub fn workspace_root(flag: Option<&Path>) -> Result<PathBuf> {
    match flag {
        Some(dir) => {
            let dir = dir.canonicalize().map_err(|err| usage(format!("--workspace-root {}: {err}", dir.display())))?;
            Git::open(&dir).map_err(|err| usage(format!("--workspace-root {}: {err:#}", dir.display())))?;
            Ok(dir)
        }
        None => {
            let cwd = std::env::current_dir().context("failed to read the current directory")?;
            let git = Git::open(&cwd).map_err(|err| usage(format!("{err:#} (use --workspace-root)")))?;
            git.top_level()
        }
    }
}

/// Which flow's work for which release a command is about.
#[derive(Debug, Args)]
pub struct ReleaseTarget {
    /// The flow.
    #[arg(long)]
    pub flow: String,
    /// The release tag.
    #[arg(long, allow_hyphen_values = true)]
    pub tag: String,
    /// The fork's checkout (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
}
