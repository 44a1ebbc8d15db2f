//! One module per group of commands; each `cmd_*` turns flags into settings,
//! calls the library and prints the result (JSON on stdout with `--json`,
//! text otherwise). Shared here: the exit outcome and flag checks.

mod action;
mod resolve;
mod run;
mod service;
mod setup;

pub use action::{cmd_action, job_settings};
pub use resolve::{cmd_abort, cmd_continue, cmd_resolve};
pub use run::{cmd_demo, cmd_promote, cmd_run_event, cmd_run_release};
pub use service::{
    cmd_attempts, cmd_dispatches, cmd_events, cmd_redispatch, cmd_serve, cmd_status, cmd_sync, cmd_watch,
};
pub use setup::cmd_setup_fork;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::usage;
use crate::git::Git;

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Completed, changed or skipped.
    Done,
    /// Needs intervention, blocked or failed: a person must look.
    Attention,
}

/// A tag from the user: a valid ref name that git cannot read as an option.
pub fn check_tag(tag: &str) -> Result<()> {
    crate::refname::check_ref_name(tag).map_err(|why| usage(format!("tag `{tag}` is not a valid tag name: it {why}")))
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
