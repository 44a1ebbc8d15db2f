//! `resolve`, `continue` and `abort`: fixing a conflict once, by hand.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::service_settings::local_target;
use super::shared::run_settings;
use super::shared::{workspace_data_dir, workspace_root, Exit, ReleaseTarget};
use crate::core::env::Env;
use crate::core::error::usage;
use crate::core::refname::check_tag;
use crate::core::status::ResultStatus;
use crate::core::text::shown;
use crate::engine::stack;
use crate::flow::event::{now, FlowEvent, UPSTREAM_RELEASE};
use crate::flow::flows::{self, Flow};
use crate::flow::report;
use crate::flow::resolve::{abort, finish, start, Paused, Started};
use crate::flow::runner::run_event;
use crate::flow::state::StateDir;
use crate::git::Git;
use crate::service::attempt::Operation;
use crate::service::dispatch;
use crate::service::store::Store;

#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub target: ReleaseTarget,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Check out every file of the stopped state, not only the conflicting
    /// ones: for a fix that must be built or tested in the worktree.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct ContinueArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Push the candidate and the memory of resolutions.
    #[arg(long)]
    pub push: bool,
}

/// The flow named by `--flow`, the workspace and its git.
fn open(args: &SessionArgs) -> Result<(std::path::PathBuf, Git, Flow)> {
    check_tag(&args.target.tag)?;
    let root = workspace_root(args.target.workspace_root.as_deref())?;
    let flow = flows::discover(&root)?
        .into_iter()
        .find(|flow| flow.name == args.target.flow)
        .ok_or_else(|| usage(format!("unknown flow `{}`", shown(&args.target.flow))))?;
    let git = Git::open(&root)?;
    Ok((root, git, flow))
}

/// The event this flow ran for with this tag: the newest one in the state,
/// else the release event of the repository the flow names.
pub(super) fn event_for(root: &Path, flow: &Flow, tag: &str) -> Result<FlowEvent> {
    let state = StateDir::of(root).load()?;
    let stored = state.events.iter().rev().find(|record| {
        record.event.tag() == Some(tag) && state.runs_of(&record.event.id).iter().any(|run| run.flow_name == flow.name)
    });
    if let Some(record) = stored {
        return Ok(record.event.clone());
    }
    match flow.on.payload.get("repo").and_then(|repo| repo.as_str()) {
        Some(repo) if flow.on.kind == UPSTREAM_RELEASE && !repo.contains(['*', '?', '[']) => {
            Ok(FlowEvent::upstream_release(repo, tag, now()))
        }
        _ => Err(usage(format!(
            "no run of flow {} for {tag} is recorded here; run it first with `patchmoi run … --tag {tag}`",
            flow.name
        ))),
    }
}

/// `resolve`.
pub fn cmd_resolve(resolve: ResolveArgs, env: &Env) -> Result<Exit> {
    let (args, full) = (resolve.session, resolve.full);
    let (root, git, flow) = open(&args)?;
    let event = event_for(&root, &flow, &args.target.tag)?;
    let tag = &args.target.tag;
    // Recorded as started before the worktree is made, as `run` does.
    let mut store = Store::open(&workspace_data_dir(None, env, &root))?;
    store.record_event(&event)?;
    let begun = dispatch::begin_session(&mut store, &root, &event, Operation::Resolve)?;
    let attempt_id = begun.attempt_id().to_string();
    let outcome = start(&git, &root, &flow, &event, tag, full);
    let (status, message) = match &outcome {
        Ok(Started::Ready(paused)) => (
            ResultStatus::NeedsIntervention,
            format!("resolving patch \"{}\" in {}", paused.patch.subject, paused.worktree.display()),
        ),
        Ok(Started::Applies { .. }) => {
            (ResultStatus::Skipped, format!("nothing to resolve: the stack applies on {tag}"))
        }
        Ok(Started::UpToDate) => {
            (ResultStatus::Skipped, format!("nothing to resolve: the branch already contains {tag}"))
        }
        Ok(Started::Blocked(message)) => (ResultStatus::Blocked, message.clone()),
        Err(err) => (ResultStatus::Failed, format!("resolve failed: {err:#}")),
    };
    let error = outcome.as_ref().err().map(|err| format!("{err:#}"));
    let run_id = format!("{}:{}:{tag}", Operation::Resolve.as_str(), flow.name);
    let delivery = dispatch::session_delivery(&root, &event, Operation::Resolve, &run_id, status, &message);
    let finished = dispatch::finish_session(&mut store, begun, delivery, error.as_deref())
        .with_context(|| format!("resolve ended, but attempt {attempt_id} stays recorded as started"));
    let exit = show_resolve(&args, &flow, outcome?)?;
    finished?;
    Ok(exit)
}

/// What `resolve` prints for its outcome, and how it exits.
fn show_resolve(args: &SessionArgs, flow: &Flow, outcome: Started) -> Result<Exit> {
    match outcome {
        Started::Ready(paused) => {
            if args.json {
                println!("{}", serde_json::to_string(&*paused)?);
            } else {
                print!("{}", ready_text(&paused));
            }
            // The worktree is ready: `resolve` did what it was asked.
            Ok(Exit::Done)
        }
        Started::Applies { recalled } => {
            let note = if recalled.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = recalled.iter().map(|patch| format!("\"{}\"", patch.subject)).collect();
                format!(" ({} resolved from memory: {})", recalled.len(), names.join(", "))
            };
            emit(args, json!({"status": "applies", "recalled": recalled}), &format!(
                "nothing to resolve: the stack of {} applies on {}{note}; build the candidate with `patchmoi run … --tag {} --replay`\n",
                flow.name, args.target.tag, args.target.tag
            ));
            Ok(Exit::Done)
        }
        Started::UpToDate => {
            emit(
                args,
                json!({"status": "up_to_date"}),
                &format!("nothing to resolve: the branch already contains {}\n", args.target.tag),
            );
            Ok(Exit::Done)
        }
        Started::Blocked(message) => {
            emit(args, json!({"status": "blocked", "message": message}), &format!("blocked: {message}\n"));
            Ok(Exit::Attention)
        }
    }
}

/// `continue`: record the resolution, then run the flow again (which now
/// gets past the conflict) and, at a next conflict, prepare it in turn.
pub fn cmd_continue(continued: ContinueArgs, env: &Env) -> Result<Exit> {
    let (args, push) = (continued.session, continued.push);
    let (root, git, flow) = open(&args)?;
    let (paused, recorded) = finish(&git, &root, &flow, &args.target.tag)?;
    eprintln!("recorded {recorded} resolution(s) for \"{}\" in the memory", paused.patch.subject);
    let settings = run_settings(env, root.clone(), Some(flow.name.clone()), push, true, true);
    // Recorded as started before the flow runs again, as `run` does.
    let mut store = Store::open(&workspace_data_dir(None, env, &root))?;
    store.record_event(&paused.event)?;
    let local = local_target(env, &root, push);
    let started = dispatch::begin_local(&mut store, &local, &paused.event, Operation::Continue)?;
    let report = run_event(&settings, &[&flow], &paused.event);
    dispatch::finish_local(&mut store, started, &local, &paused.event, Operation::Continue, &report, false)?;
    let report = report?;
    let next = match report.status {
        ResultStatus::NeedsIntervention => {
            match start(&git, &root, &flow, &paused.event, &args.target.tag, paused.full)? {
                Started::Ready(next) => Some(next),
                _ => None,
            }
        }
        _ => None,
    };
    if args.json {
        println!("{}", json!({"report": report, "next": next}));
    } else {
        print!("{}", report::run_text(&report));
        if let Some(next) = &next {
            println!("\nthe next patch stops too:");
            print!("{}", ready_text(next));
        }
    }
    Ok(if report.status.needs_attention() { Exit::Attention } else { Exit::Done })
}

/// `abort`.
pub fn cmd_abort(args: SessionArgs, _env: &Env) -> Result<Exit> {
    let (root, git, flow) = open(&args)?;
    let removed = abort(&git, &root, &flow.name, &args.target.tag)?;
    let text = if removed {
        format!("dropped the resolution of {} for {}; nothing else changed\n", flow.name, args.target.tag)
    } else {
        format!("no resolution of {} for {} was in progress\n", flow.name, args.target.tag)
    };
    emit(&args, json!({"aborted": removed}), &text);
    Ok(Exit::Done)
}

fn emit(args: &SessionArgs, value: serde_json::Value, text: &str) {
    if args.json {
        println!("{value}");
    } else {
        print!("{text}");
    }
}

fn ready_text(paused: &Paused) -> String {
    let mut out = format!(
        "patch {} \"{}\" does not apply on {}\nworktree: {}\nconflicting files{}:\n",
        stack::short(&paused.patch.sha),
        paused.patch.subject,
        paused.tag,
        paused.worktree.display(),
        if paused.full {
            " (every file is checked out)"
        } else {
            " (they and the patch's other files are the only ones written there; --full checks out all)"
        }
    );
    let conflicted = paused.conflicted_paths();
    for path in &conflicted {
        out.push_str(&format!("  {path}\n"));
    }
    let others: Vec<&String> = paused.patch_paths.iter().filter(|path| !conflicted.contains(path)).collect();
    if !others.is_empty() {
        out.push_str("the patch's other files (an edit to them is remembered with the resolution):\n");
        for path in others {
            out.push_str(&format!("  {path}\n"));
        }
    }
    out.push_str(&format!(
        "next:\n  cd {}\n  edit the files (`git diff` shows the conflicts), then `git add` them\n  patchmoi continue --flow {} --tag {} [--push]\n  (or drop it: patchmoi abort --flow {} --tag {})\n",
        paused.worktree.display(),
        paused.flow,
        paused.tag,
        paused.flow,
        paused.tag
    ));
    out
}
