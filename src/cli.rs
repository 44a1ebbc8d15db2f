//! The command line: clap types (their doc comments are the help text) and
//! the one `match` that sends each command to its `cmd_*` function.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::attempt::Operation;
use crate::commands::{self, Exit};
use crate::settings::Env;

/// Keeps a fork's patch stack alive across upstream releases.
#[derive(Debug, Parser)]
#[command(name = "patchmoi", version, about, max_term_width = 100)]
pub struct Cli {
    /// More detail on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the flows that match an event: rebase the patch stack, run checks.
    #[command(subcommand)]
    Run(RunCommand),
    /// Move the maintained branch to a release's candidate (keeps a backup).
    Promote(PromoteArgs),
    /// The GitHub Action: read the workflow's event and `INPUT_*` variables,
    /// run the flows, push the candidate, report check runs, open the PR.
    Action,
    /// Recreate a release's conflict in a worktree, to resolve it by hand.
    Resolve(SessionArgs),
    /// Record the resolution made after `resolve`, then run the flow again.
    Continue(SessionArgs),
    /// Drop a resolution in progress (its worktree and paused state).
    Abort(SessionArgs),
    /// Build a small upstream and fork in a temporary directory and run the
    /// flow for two releases: a clean one and one with a conflict.
    Demo(DemoArgs),
    /// Poll release feeds and dispatch new releases (FEED_SOURCES_PATH).
    Watch(WatchArgs),
    /// Serve the HTTP API (HOST, PORT; default 127.0.0.1:3000) and poll feeds.
    Serve(ServeArgs),
    /// Counts and the latest events, dispatches and attempts.
    Status(ListArgs),
    /// Stored events, newest first.
    Events {
        #[command(flatten)]
        list: ListArgs,
        /// Only events of this type (e.g. upstream.release).
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// Dispatch records, newest first.
    Dispatches {
        #[command(flatten)]
        list: ListArgs,
        /// Only dispatches of this event.
        #[arg(long)]
        event_id: Option<String>,
        /// Only dispatches with this status: dispatched, failed or skipped.
        #[arg(long)]
        status: Option<String>,
    },
    /// Maintenance attempts, newest first.
    Attempts {
        #[command(flatten)]
        list: ListArgs,
        /// Only attempts of this event.
        #[arg(long)]
        event_id: Option<String>,
        /// Only attempts with this status (started, skipped, completed,
        /// changed, needs_intervention, blocked, failed).
        #[arg(long)]
        status: Option<String>,
    },
    /// Dispatch a stored event again, as a new attempt.
    Retry(RedispatchArgs),
    /// Ask the target to run a stored event again (a replay), as a new attempt.
    Replay(RedispatchArgs),
    /// Pull an attempt's run results from the backend or the local state file.
    Sync {
        /// The attempt id, or any prefix only it has.
        attempt_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Check (and with --apply, prepare) a checkout for patchmoi.
    #[command(subcommand)]
    Setup(SetupCommand),
}

/// Where product state lives and how to print.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Product state directory (default: DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// At most this many rows, newest first (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub limit: u16,
}

#[derive(Debug, Args)]
pub struct RedispatchArgs {
    /// The stored event's id.
    pub event_id: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// The checkout to run in when no workspace backend is configured
    /// (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Poll every source once and exit.
    #[arg(long)]
    pub once: bool,
    /// The feed sources file (default: FEED_SOURCES_PATH).
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// Product state directory (default: DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where `local` targets without workspaceRoot run (default: the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// With --once: print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Product state directory (default: DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where retries run when no workspace backend is configured (default: the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Check a fork's checkout: git version, branch, origin, upstream, history.
    Fork(SetupForkArgs),
}

#[derive(Debug, Args)]
pub struct SetupForkArgs {
    /// The fork's checkout (default: the current directory).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The upstream repository's URL.
    #[arg(long)]
    pub upstream_url: String,
    /// The maintained patch branch.
    #[arg(long)]
    pub branch: String,
    /// Write a starter flow and workflow for this fork.
    #[arg(long)]
    pub apply: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// An upstream release of any repository.
    UpstreamRelease {
        /// The upstream repository, `owner/name`.
        #[arg(long)]
        repo: String,
        #[command(flatten)]
        common: RunArgs,
    },
    /// An upstream release of openai/codex.
    CodexRelease {
        /// The upstream repository, `owner/name`.
        #[arg(long, default_value = "openai/codex")]
        repo: String,
        #[command(flatten)]
        common: RunArgs,
    },
    /// Any FlowEvent, read from a JSON file.
    Event {
        /// The event file.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        common: RunArgs,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The release tag; without it, the newest upstream tag the flows follow.
    #[arg(long, allow_hyphen_values = true)]
    pub tag: Option<String>,
    /// The fork's checkout (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Only this flow.
    #[arg(long)]
    pub flow: Option<String>,
    /// Show which flows and steps would run; change nothing, fetch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Push the candidate branch to the fork's remote.
    #[arg(long)]
    pub push: bool,
    /// Run again even if this event already has results.
    #[arg(long)]
    pub replay: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Product state directory where the event, dispatch and attempt are
    /// recorded (default: DATA_DIR, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
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

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: ReleaseTarget,
    /// Also move the branch on the fork's remote (leased, with a remote backup).
    #[arg(long)]
    pub push: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub target: ReleaseTarget,
    /// With `continue`: push the candidate and the memory of resolutions.
    #[arg(long)]
    pub push: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the demo (default: a new temporary directory, kept).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Sends the parsed command to its implementation.
pub fn dispatch(cli: Cli, env: &Env) -> Result<Exit> {
    match cli.command {
        Command::Run(RunCommand::UpstreamRelease { repo, common }) => commands::cmd_run_release(&repo, common, env),
        Command::Run(RunCommand::CodexRelease { repo, common }) => commands::cmd_run_release(&repo, common, env),
        Command::Run(RunCommand::Event { file, common }) => commands::cmd_run_event(&file, common, env),
        Command::Promote(args) => commands::cmd_promote(args, env),
        Command::Action => commands::cmd_action(env),
        Command::Resolve(args) => commands::cmd_resolve(args, env),
        Command::Continue(args) => commands::cmd_continue(args, env),
        Command::Abort(args) => commands::cmd_abort(args, env),
        Command::Demo(args) => commands::cmd_demo(args, env),
        Command::Watch(args) => commands::cmd_watch(args, env),
        Command::Serve(args) => commands::cmd_serve(args, env),
        Command::Status(args) => commands::cmd_status(args, env),
        Command::Events { list, kind } => commands::cmd_events(list, kind, env),
        Command::Dispatches { list, event_id, status } => commands::cmd_dispatches(list, event_id, status, env),
        Command::Attempts { list, event_id, status } => commands::cmd_attempts(list, event_id, status, env),
        Command::Retry(args) => commands::cmd_redispatch(args, Operation::Retry, env),
        Command::Replay(args) => commands::cmd_redispatch(args, Operation::Replay, env),
        Command::Sync { attempt_id, data } => commands::cmd_sync(&attempt_id, data, env),
        Command::Setup(SetupCommand::Fork(args)) => commands::cmd_setup_fork(args, env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
