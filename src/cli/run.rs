//! `run`, `promote` and `demo`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::resolve::event_for;
use super::service_settings::{actions_mode, backend, data_dir, BackendSpec};
use super::shared::{run_recorded, run_settings};
use super::shared::{workspace_data_dir, workspace_root, Exit, ReleaseTarget};
use crate::cli::demo;
use crate::core::env::Env;
use crate::core::error::usage;
use crate::core::redact::redact_url;
use crate::core::refname::check_tag;
use crate::core::status::ResultStatus;
use crate::core::text::shown;
use crate::engine::promote;
use crate::engine::stack::short;
use crate::flow::event::{check_repo, now, FlowEvent};
use crate::flow::flows::{self, Flow};
use crate::flow::gate::{candidate_checks, Gate};
use crate::flow::report;
use crate::flow::runner::{newest_release, select_flows};
use crate::flow::state::StateDir;
use crate::git::Git;
use crate::service::attempt::Operation;
use crate::service::backend::Backend;
use crate::service::dispatch::{self, DispatchStatus, Target};
use crate::service::store::{Recorded, Store};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct RunArgs {
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

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: ReleaseTarget,
    /// Also move the branch on the fork's remote (leased, with a remote backup).
    #[arg(long)]
    pub push: bool,
    /// Promote even though the candidate's recorded checks did not pass.
    #[arg(long)]
    pub force: bool,
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

/// `run upstream-release` and `run codex-release`.
pub fn cmd_run_release(repo: &str, tag: Option<String>, args: RunArgs, env: &Env) -> Result<Exit> {
    check_repo(repo).map_err(usage)?;
    if let Some(tag) = &tag {
        check_tag(tag)?;
    }
    if let (Some(tag), Some(backend), false) = (&tag, configured_backend(env), args.dry_run) {
        return run_remote(FlowEvent::upstream_release(repo, tag, now()), backend, &args, env);
    }
    let root = workspace_root(args.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    let tag = match tag {
        Some(tag) => tag,
        None => newest_release(&Git::open(&root)?, &flows, repo, args.flow.as_deref())?,
    };
    let event = FlowEvent::upstream_release(repo, &tag, now());
    run(event, &flows, root, &args, env)
}

/// `run event --file`.
pub fn cmd_run_event(file: &Path, args: RunArgs, env: &Env) -> Result<Exit> {
    let event = FlowEvent::from_file(file, now())?;
    if let Some(tag) = event.tag() {
        check_tag(tag).with_context(|| format!("in event file {}", file.display()))?;
    }
    if let (Some(backend), false) = (configured_backend(env), args.dry_run) {
        return run_remote(event, backend, &args, env);
    }
    let root = workspace_root(args.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    run(event, &flows, root, &args, env)
}

fn run(event: FlowEvent, flows: &[Flow], root: PathBuf, args: &RunArgs, env: &Env) -> Result<Exit> {
    let selected = select_flows(flows, &event, args.flow.as_deref())?;
    let code_mode = env.code_mode();
    if args.dry_run {
        let matches: Vec<_> = selected
            .iter()
            .flat_map(|flow| flow.matching_steps(&event).into_iter().map(move |step| (flow, step)))
            .map(|(flow, step)| {
                json!({"flow": flow.name, "step": step.name, "runner": step.runner_name(),
                       "gated": step.is_gated() && !code_mode})
            })
            .collect();
        let stacks: Vec<Value> = selected.iter().filter_map(|flow| dry_stack(flow, &root, &event)).collect();
        if args.json {
            println!("{}", json!({"event": event, "matches": matches, "stacks": stacks}));
        } else {
            for stack in &stacks {
                println!(
                    "{}: {} onto {} from {} -> candidate {}",
                    stack["flow"].as_str().unwrap_or_default(),
                    stack["branch"].as_str().unwrap_or_default(),
                    stack["tag"].as_str().unwrap_or_default(),
                    stack["upstream"].as_str().unwrap_or_default(),
                    stack["candidate"].as_str().unwrap_or_default()
                );
                match stack["patches"].as_array() {
                    Some(patches) => {
                        println!("  patches to replay ({}):", patches.len());
                        for patch in patches {
                            println!("    {}", patch.as_str().unwrap_or_default());
                        }
                    }
                    None => println!("  (the tag is not fetched yet: the patches are known after the fetch)"),
                }
            }
            println!("{} matches {} step(s)", event.id, matches.len());
            for m in &matches {
                let gated = if m["gated"] == true { "  [gated: set CODEX_FLOWS_MODE=code-mode]" } else { "" };
                println!(
                    "- {}/{} ({}){gated}",
                    m["flow"].as_str().unwrap_or_default(),
                    m["step"].as_str().unwrap_or_default(),
                    m["runner"].as_str().unwrap_or_default()
                );
            }
        }
        return Ok(Exit::Done);
    }
    if let Some(backend) = configured_backend(env) {
        return run_remote(event, backend, args, env);
    }
    let settings = run_settings(env, root, args.flow.clone(), args.push, args.replay, !actions_mode(env));
    let operation = if args.replay { Operation::Replay } else { Operation::Dispatch };
    let data_dir = workspace_data_dir(args.data_dir.as_deref(), env, &settings.workspace);
    let (report, recorded) = run_recorded(&settings, &selected, &event, &data_dir, operation, env)?;
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report::run_text(&report));
    }
    recorded?;
    Ok(if report.status.needs_attention() { Exit::Attention } else { Exit::Done })
}

/// A promotion's attempt, recorded as started before the branch moves.
struct PromotionRecord {
    store: Store,
    event: FlowEvent,
    started: dispatch::Started,
}

/// Records the start of a promotion as an attempt of the release's event.
/// None (with a warning) when no event of the release is known here; a
/// database that cannot be written is an error, before anything moves.
fn begin_promotion(root: &Path, env: &Env, flow: &Flow, tag: &str) -> Result<Option<PromotionRecord>> {
    let event = match event_for(root, flow, tag) {
        Ok(event) => event,
        Err(err) => {
            eprintln!("warning: the promotion is not recorded in the history: {err:#}");
            return Ok(None);
        }
    };
    let mut store = Store::open(&workspace_data_dir(None, env, root))?;
    store.record_event(&event)?;
    let started = dispatch::begin_session(&mut store, root, &event, Operation::Promote)?;
    Ok(Some(PromotionRecord { store, event, started }))
}

/// Completes a promotion's attempt with what it did, or why it failed.
fn finish_promotion(
    record: PromotionRecord,
    root: &Path,
    flow: &Flow,
    tag: &str,
    promotion: &Result<promote::Promotion>,
) -> Result<()> {
    let PromotionRecord { mut store, event, started } = record;
    let (status, message, error) = match promotion {
        Ok(promotion) => {
            let moved = promotion.local_moved || promotion.remote_moved;
            let status = if moved { ResultStatus::Changed } else { ResultStatus::Completed };
            (status, promotion.text().lines().next().unwrap_or_default().to_string(), None)
        }
        Err(err) => (ResultStatus::Failed, format!("promotion failed: {err:#}"), Some(format!("{err:#}"))),
    };
    let run_id = format!("promote:{}:{tag}", flow.name);
    let delivery = dispatch::session_delivery(root, &event, Operation::Promote, &run_id, status, &message);
    dispatch::finish_session(&mut store, started, delivery, error.as_deref())?;
    Ok(())
}

/// What a dry run says of a flow's stack: the upstream (credentials
/// hidden), the branch, the candidate and, when the release is already
/// fetched here, the patches a run would replay (first-parent commits of
/// the branch the release does not contain). Fetches nothing.
fn dry_stack(flow: &Flow, root: &Path, event: &FlowEvent) -> Option<Value> {
    let tag = event.tag()?;
    let spec = flow.stack_spec(tag).ok()?;
    let git = Git::open(root).ok()?;
    let release = git.resolve_commit(&spec.upstream_ref()).ok().flatten();
    let branch = git.resolve_commit(&format!("refs/heads/{}", spec.branch)).ok().flatten();
    let patches = match (release, branch) {
        (Some(release), Some(branch)) => {
            let ids = git.first_parent_commits(&branch, &[release.as_str()]).ok()?;
            let commits = git.read_commits(&ids).ok()?;
            Some(commits.iter().map(|commit| format!("{} {}", short(&commit.id), commit.subject())).collect::<Vec<_>>())
        }
        _ => None,
    };
    Some(json!({
        "flow": flow.name, "upstream": redact_url(&spec.upstream), "branch": spec.branch,
        "tag": tag, "candidate": spec.candidate, "patches": patches,
    }))
}

/// The workspace backend from the environment, if one is configured.
fn configured_backend(env: &Env) -> Option<Backend> {
    backend(&BackendSpec::default(), env)
}

/// Records the event and dispatches it to the workspace backend instead of
/// running it here. A dispatch the backend accepted exits 0 (its attempt
/// is `started` until synced).
fn run_remote(event: FlowEvent, backend: Backend, args: &RunArgs, env: &Env) -> Result<Exit> {
    if args.flow.is_some() || args.push {
        return Err(usage("--flow and --push apply to local runs; the workspace backend decides which flows run"));
    }
    let mut store = Store::open(&data_dir(args.data_dir.as_deref(), env))?;
    let recorded = store.record_event(&event)? == Recorded::New;
    let operation = if args.replay { Operation::Replay } else { Operation::Dispatch };
    let (record, attempt) = dispatch::dispatch(&mut store, &Target::Workspace(backend), &event, operation)?;
    if args.json {
        println!("{}", json!({"event": event, "recorded": recorded, "dispatch": record, "attempt": attempt}));
    } else {
        let again = if recorded { "" } else { " (already recorded)" };
        println!("event: {}{again}", event.id);
        println!(
            "dispatch: {} {} {}",
            record.status.as_str(),
            record.operation.as_str(),
            record.url.as_deref().unwrap_or("")
        );
        if let Some(error) = &record.error {
            println!("error: {error}");
        }
        println!("attempt: {} {}", attempt.status.as_str(), attempt.id);
    }
    Ok(if record.status == DispatchStatus::Failed { Exit::Attention } else { Exit::Done })
}

/// `promote`.
pub fn cmd_promote(args: PromoteArgs, env: &Env) -> Result<Exit> {
    check_tag(&args.target.tag)?;
    let root = workspace_root(args.target.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    let flow = flows
        .iter()
        .find(|flow| flow.name == args.target.flow)
        .ok_or_else(|| usage(format!("unknown flow `{}`", shown(&args.target.flow))))?;
    if flow.stack.is_none() {
        return Err(usage(format!("flow {} has no `stack:`, so it has no candidate to promote", flow.name)));
    }
    let spec = flow.stack_spec(&args.target.tag)?;
    let git = Git::open(&root)?;
    let candidate = git
        .ref_value(&spec.candidate_ref())?
        .with_context(|| format!("there is no candidate {}; run the flow for {} first", spec.candidate, spec.tag))?;
    // Only a candidate whose checks passed becomes the maintained branch.
    let why_not = match candidate_checks(&StateDir::of(&root).load()?, &flow.name, &spec.tag, &candidate) {
        Gate::Passed => None,
        Gate::Failed { step, status, log } => Some(format!(
            "step {step} of flow {} ended {status} on this candidate{}",
            flow.name,
            log.map(|log| format!(" (log: {log})")).unwrap_or_default()
        )),
        Gate::Unknown(why) => Some(why),
    };
    if let Some(why) = why_not {
        if !args.force {
            anyhow::bail!(
                "refusing to promote {}: {why}; fix it and run the flow again, or pass --force",
                spec.candidate
            );
        }
        eprintln!("warning: promoting {} although {why} (--force)", spec.candidate);
    }
    // Recorded as started before the branch moves, as `run` does.
    let record = begin_promotion(&root, env, flow, &spec.tag)?;
    let promotion = promote::promote(&git, &spec, args.push, true);
    if let Some(record) = record {
        let attempt_id = record.started.attempt_id().to_string();
        // A record that cannot be completed is a warning, never a failed
        // promotion: the branch may have moved.
        if let Err(err) = finish_promotion(record, &root, flow, &spec.tag, &promotion) {
            eprintln!("warning: the promotion ended, but attempt {attempt_id} stays recorded as started: {err:#}");
        }
    }
    let promotion = promotion?;
    if args.json {
        println!("{}", serde_json::to_string(&promotion)?);
    } else {
        print!("{}", promotion.text());
    }
    Ok(Exit::Done)
}

/// `demo`.
pub fn cmd_demo(args: DemoArgs, env: &Env) -> Result<Exit> {
    demo::run(args.dir.as_deref(), env)?;
    Ok(Exit::Done)
}
