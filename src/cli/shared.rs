//! What the commands share: the exit outcome and the workspace root a
//! command works in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::service_settings::{endpoint, local_target};
use crate::core::env::Env;
use crate::core::error::usage;
use crate::flow::event::FlowEvent;
use crate::flow::flows::Flow;
use crate::flow::results::RunReport;
use crate::flow::runner::{run_event, RunSettings};
use crate::git::Git;
use crate::github::Endpoint;
use crate::service::attempt::Operation;
use crate::service::dispatch;
use crate::service::store::Store;

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
    let (dir, named) = match flag {
        Some(dir) => {
            let dir = dir.canonicalize().map_err(|err| usage(format!("--workspace-root {}: {err}", dir.display())))?;
            (dir, "--workspace-root ")
        }
        None => (std::env::current_dir().context("failed to read the current directory")?, ""),
    };
    let shown = |err: anyhow::Error| {
        let hint = if flag.is_none() { " (use --workspace-root)" } else { "" };
        usage(format!("{named}{}: {err:#}{hint}", dir.display()))
    };
    let git = Git::open(&dir).map_err(shown)?;
    if git.is_bare().map_err(shown)? {
        return Err(usage(format!(
            "{named}{} is a bare repository; patchmoi works in a checkout of the fork",
            dir.display()
        )));
    }
    Ok(main_checkout(&git.top_level()?))
}

/// The checkout a worktree patchmoi made belongs to: `resolve` worktrees
/// live in `<checkout>/.codex/workspace/actions/worktrees/<name>`, and the
/// commands run there (`continue`, `abort`) mean the checkout.
fn main_checkout(top: &Path) -> PathBuf {
    let parts: Vec<_> = top.components().collect();
    let marker = [".codex", "workspace", "actions", "worktrees"];
    for at in (0..parts.len().saturating_sub(marker.len())).rev() {
        let here = parts[at..at + marker.len()].iter().map(|part| part.as_os_str());
        if here.eq(marker.iter().map(std::ffi::OsStr::new)) {
            return parts[..at].iter().collect();
        }
    }
    top.to_path_buf()
}

/// The data directory of a command that works inside a workspace (`run`,
/// `resolve`, `continue`, `promote`, `history`): `--data-dir` or `DATA_DIR`
/// as given, else `data` at the workspace root, so running from a
/// subdirectory never starts a second history.
pub fn workspace_data_dir(flag: Option<&Path>, env: &Env, root: &Path) -> PathBuf {
    match flag.map(Path::to_path_buf).or_else(|| env.get("DATA_DIR").map(PathBuf::from)) {
        Some(dir) => dir,
        None => root.join("data"),
    }
}

/// A local run's settings: the step environment, credentials and Code
/// Mode gate come from `env`; no extra git environment (that is the
/// Action's).
pub fn run_settings(
    env: &Env,
    workspace: PathBuf,
    flow: Option<String>,
    push: bool,
    replay: bool,
    echo: bool,
) -> RunSettings {
    RunSettings {
        workspace,
        flow,
        push,
        replay,
        code_mode: env.code_mode(),
        step_env: env.step_env(),
        step_secrets: env.credentials(),
        echo_steps: echo,
        git_env: Vec::new(),
        github: github_endpoint(env),
    }
}

/// GitHub's API (`GITHUB_API_URL`) with `GITHUB_TOKEN`, when a token is set.
pub fn github_endpoint(env: &Env) -> Option<Endpoint> {
    env.get("GITHUB_TOKEN").filter(|token| !token.is_empty()).map(|token| endpoint(env, Some(token)))
}

/// The fork's checkout and patchmoi's data directory of a command that
/// reads the local records.
#[derive(Debug, Args)]
pub struct LocalRecords {
    /// The fork's checkout (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Product state directory (default: DATA_DIR, else `data` at the workspace root).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl LocalRecords {
    /// The checkout's top level and the data directory.
    pub fn resolve(&self, env: &Env) -> Result<(PathBuf, PathBuf)> {
        let root = workspace_root(self.workspace_root.as_deref())?;
        let data = workspace_data_dir(self.data_dir.as_deref(), env, &root);
        Ok((root, data))
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

/// Runs `event`'s flows locally with its event, dispatch and attempt
/// recorded in the store under `data_dir`, the attempt before the work
/// starts: a run that dies, or whose data dir fills up meanwhile, still
/// shows as `started`. Returns the run's outcome and, apart, whether its
/// completion was recorded (the outcome is shown either way).
pub fn run_recorded(
    settings: &RunSettings,
    selected: &[&Flow],
    event: &FlowEvent,
    data_dir: &Path,
    operation: Operation,
    env: &Env,
) -> Result<(Result<RunReport>, Result<()>)> {
    let mut store = Store::open(data_dir)?;
    store.record_event(event)?;
    let local = local_target(env, &settings.workspace, settings.push);
    let started = dispatch::begin_local(&mut store, &local, event, operation)?;
    let attempt_id = started.attempt_id().to_string();
    let report = run_event(settings, selected, event);
    // A lookup of what an earlier run stored is no new attempt.
    let finished = dispatch::finish_local(&mut store, started, &local, event, operation, &report, true)
        .with_context(|| format!("the run ended, but attempt {attempt_id} stays recorded as started"));
    Ok((report, finished.map(|_| ())))
}
