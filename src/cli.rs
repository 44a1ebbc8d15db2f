//! The command line: clap types (their doc comments are the help text) and
//! the one `match` that sends each command to its `cmd_*` function.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

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
