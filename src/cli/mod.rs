//! The command line: clap types (their doc comments are the help text) and
//! the one `match` that sends each command to its `cmd_*` function.

mod action;
pub mod demo;
mod docs;
mod flows;
mod history;
mod pack;
mod prune;
mod resolve;
mod run;
mod service;
pub mod service_settings;
pub mod settings;
mod setup;
mod shared;

pub use shared::Exit;

use docs::CompletionsArgs;
use flows::FlowsArgs;
use history::HistoryArgs;
use pack::{PackAddArgs, PackDoctorArgs, PackUpdateArgs};
use prune::PruneArgs;
use resolve::{ContinueArgs, ResolveArgs, SessionArgs};
use run::{DemoArgs, PromoteArgs, RunArgs};
use service::{DataArgs, ListArgs, RedispatchArgs, ServeArgs, WatchArgs};
use setup::SetupForkArgs;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::flow::supervise::{supervise, supervise_steps_with, SUBCOMMAND};
use crate::github::proxy::use_proxies;
use crate::service::attempt::Operation;
use settings::Env;

/// When the log on stderr is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to colour: `auto` colours a terminal unless `NO_COLOR` is set
    /// to anything (https://no-color.org).
    pub fn enabled(self, terminal: bool, no_color: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && !no_color,
        }
    }
}

/// Keeps a fork's patch stack alive across upstream releases.
#[derive(Debug, Parser)]
#[command(name = "patchmoi", version, about, max_term_width = 100)]
pub struct Cli {
    /// More detail on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Colours in the log on stderr: auto (on a terminal, unless NO_COLOR
    /// is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

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
    Resolve(ResolveArgs),
    /// Record the resolution made after `resolve`, then run the flow again.
    Continue(ContinueArgs),
    /// Drop a resolution in progress (its worktree and paused state).
    Abort(SessionArgs),
    /// The flows discovered here: format, origin (which pack, which commit),
    /// trigger and steps.
    Flows(FlowsArgs),
    /// Shell completions on stdout (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// The man page (roff) on stdout.
    Man,
    /// One release's timeline (newest release first without --tag): events,
    /// dispatches, runs, conflicts and culprits, resolutions, promotion.
    History(HistoryArgs),
    /// Delete old releases' refs, run folders and records, keeping the
    /// newest --keep of each flow, the promoted one, any being resolved and
    /// any an open pull request uses (a dry run without --apply).
    Prune(PruneArgs),
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
    /// Install shared flows (and skills, plugins, hooks) from a pack, and
    /// check what is installed.
    #[command(subcommand)]
    Pack(PackCommand),
    /// Internal: runs a step's program and ends its process group when the
    /// program exits or patchmoi does (see `flow::supervise`).
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
}

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// The read end of the pipe whose end of file means patchmoi is gone.
    #[arg(long)]
    watch_fd: i32,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

/// When this process is a step's supervisor (`patchmoi __supervise …`),
/// runs it and never returns. Called first thing in `main`, before the
/// credentials hand-over or anything else reads or changes the
/// environment: the step gets the environment it was given, unchanged.
pub fn supervise_if_asked() {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(SUBCOMMAND)) {
        return;
    }
    if let Command::Supervise(args) = Cli::parse().command {
        cmd_supervise(args);
    }
}

fn cmd_supervise(args: SuperviseArgs) -> ! {
    supervise(args.watch_fd, &args.command[0], &args.command[1..])
}

/// Runs every step of this process under a supervisor: this binary,
/// re-executed. `/proc/self/exe` stays valid when the file is replaced
/// or deleted while patchmoi runs.
pub fn supervise_steps() {
    let proc_exe = PathBuf::from("/proc/self/exe");
    let program = if proc_exe.exists() { Some(proc_exe) } else { std::env::current_exe().ok() };
    if let Some(program) = program {
        supervise_steps_with(program);
    }
}

#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// Plan (and with --apply, make) the install of a pack's items.
    Add(PackAddArgs),
    /// Check the installed items against .codex/pack-lock.json.
    Doctor(PackDoctorArgs),
    /// Re-resolve each locked item's source at its ref and show what would
    /// change (with --apply, install it).
    Update(PackUpdateArgs),
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Check a fork's checkout: git version, branch, origin, upstream, history.
    Fork(SetupForkArgs),
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// An upstream release of any repository.
    UpstreamRelease {
        /// The upstream repository, `owner/name`.
        #[arg(long)]
        repo: String,
        /// The release tag; without it, the newest upstream tag the flows follow.
        #[arg(long, allow_hyphen_values = true)]
        tag: Option<String>,
        #[command(flatten)]
        common: RunArgs,
    },
    /// An upstream release of openai/codex.
    CodexRelease {
        /// The upstream repository, `owner/name`.
        #[arg(long, default_value = "openai/codex")]
        repo: String,
        /// The release tag; without it, the newest upstream tag the flows follow.
        #[arg(long, allow_hyphen_values = true)]
        tag: Option<String>,
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

/// Sends the parsed command to its implementation.
pub fn dispatch(cli: Cli, env: &Env) -> Result<Exit> {
    use_proxies(service_settings::proxies(env));
    match cli.command {
        Command::Run(RunCommand::UpstreamRelease { repo, tag, common }) => {
            run::cmd_run_release(&repo, tag, common, env)
        }
        Command::Run(RunCommand::CodexRelease { repo, tag, common }) => run::cmd_run_release(&repo, tag, common, env),
        Command::Run(RunCommand::Event { file, common }) => run::cmd_run_event(&file, common, env),
        Command::Promote(args) => run::cmd_promote(args, env),
        Command::Action => action::cmd_action(env),
        Command::Resolve(args) => resolve::cmd_resolve(args, env),
        Command::Continue(args) => resolve::cmd_continue(args, env),
        Command::Abort(args) => resolve::cmd_abort(args, env),
        Command::History(args) => history::cmd_history(args, env),
        Command::Prune(args) => prune::cmd_prune(args, env),
        Command::Flows(args) => flows::cmd_flows(args),
        Command::Completions(args) => docs::cmd_completions(args),
        Command::Man => docs::cmd_man(),
        Command::Demo(args) => run::cmd_demo(args, env),
        Command::Watch(args) => service::cmd_watch(args, env),
        Command::Serve(args) => service::cmd_serve(args, env),
        Command::Status(args) => service::cmd_status(args, env),
        Command::Events { list, kind } => service::cmd_events(list, kind, env),
        Command::Dispatches { list, event_id, status } => service::cmd_dispatches(list, event_id, status, env),
        Command::Attempts { list, event_id, status } => service::cmd_attempts(list, event_id, status, env),
        Command::Retry(args) => service::cmd_redispatch(args, Operation::Retry, env),
        Command::Replay(args) => service::cmd_redispatch(args, Operation::Replay, env),
        Command::Sync { attempt_id, data } => service::cmd_sync(&attempt_id, data, env),
        Command::Setup(SetupCommand::Fork(args)) => setup::cmd_setup_fork(args, env),
        Command::Pack(PackCommand::Add(args)) => pack::cmd_pack_add(args, env),
        Command::Pack(PackCommand::Doctor(args)) => pack::cmd_pack_doctor(args, env),
        Command::Pack(PackCommand::Update(args)) => pack::cmd_pack_update(args, env),
        Command::Supervise(args) => cmd_supervise(args),
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
