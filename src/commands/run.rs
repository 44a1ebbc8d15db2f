//! `run`, `promote` and `demo`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::{check_tag, workspace_root, Exit};
use crate::attempt::Operation;
use crate::backend::{Backend, BackendSpec};
use crate::cli::{DemoArgs, PromoteArgs, RunArgs};
use crate::dispatch::{self, DispatchStatus, Target};
use crate::error::usage;
use crate::event::{check_repo, now, FlowEvent};
use crate::flows::{self, Flow};
use crate::git::Git;
use crate::runner::{newest_release, run_event, select_flows, RunSettings};
use crate::service;
use crate::settings::Env;
use crate::store::{Recorded, Store};

/// `run upstream-release` and `run codex-release`.
pub fn cmd_run_release(repo: &str, args: RunArgs, env: &Env) -> Result<Exit> {
    check_repo(repo).map_err(usage)?;
    if let Some(tag) = &args.tag {
        check_tag(tag)?;
    }
    if let (Some(tag), Some(backend), false) = (&args.tag, configured_backend(env), args.dry_run) {
        return run_remote(FlowEvent::upstream_release(repo, tag, now()), backend, &args, env);
    }
    let root = workspace_root(args.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    let tag = match &args.tag {
        Some(tag) => tag.clone(),
        None => newest_release(&Git::open(&root)?, &flows, repo, args.flow.as_deref())?,
    };
    let event = FlowEvent::upstream_release(repo, &tag, now());
    run(event, &flows, root, &args, env)
}

/// `run event --file`.
pub fn cmd_run_event(file: &Path, args: RunArgs, env: &Env) -> Result<Exit> {
    if args.tag.is_some() {
        return Err(usage("--tag does not apply to `run event`: the event file says which tag"));
    }
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
            .flat_map(|flow| flow.steps.iter().map(move |step| (flow, step)))
            .map(|(flow, step)| {
                json!({"flow": flow.name, "step": step.name, "runner": step.runner_name(),
                       "gated": step.is_gated() && !code_mode})
            })
            .collect();
        if args.json {
            println!("{}", json!({"event": event, "matches": matches}));
        } else {
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
    let settings = RunSettings {
        workspace: root,
        flow: args.flow.clone(),
        push: args.push,
        replay: args.replay,
        code_mode,
        secret_env: env.secret_names(),
        secret_values: env.secret_values(),
        git_env: Vec::new(),
    };
    let operation = if args.replay { Operation::Replay } else { Operation::Dispatch };
    let mut store = Store::open(&service::data_dir(args.data_dir.as_deref(), env))?;
    store.record_event(&event)?;
    let report = run_event(&settings, &selected, &event);
    let local = service::local_target(env, &settings.workspace, settings.push);
    dispatch::record(&mut store, &event, dispatch::local_delivery(&local, &event, operation, &report))?;
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", crate::report::run_text(&report));
    }
    Ok(if report.status.needs_attention() { Exit::Attention } else { Exit::Done })
}

/// The workspace backend from the environment, if one is configured.
fn configured_backend(env: &Env) -> Option<Backend> {
    Backend::resolve(&BackendSpec::default(), env)
}

/// Records the event and dispatches it to the workspace backend instead of
/// running it here. A dispatch the backend accepted exits 0 (its attempt
/// is `started` until synced).
fn run_remote(event: FlowEvent, backend: Backend, args: &RunArgs, env: &Env) -> Result<Exit> {
    if args.flow.is_some() || args.push {
        return Err(usage("--flow and --push apply to local runs; the workspace backend decides which flows run"));
    }
    let mut store = Store::open(&service::data_dir(args.data_dir.as_deref(), env))?;
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
pub fn cmd_promote(args: PromoteArgs, _env: &Env) -> Result<Exit> {
    check_tag(&args.target.tag)?;
    let root = workspace_root(args.target.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    let flow = flows
        .iter()
        .find(|flow| flow.name == args.target.flow)
        .ok_or_else(|| usage(format!("unknown flow `{}`", args.target.flow)))?;
    let promotion = crate::promote::promote(&Git::open(&root)?, flow, &args.target.tag, args.push, true)?;
    if args.json {
        println!("{}", serde_json::to_string(&promotion)?);
    } else {
        print!("{}", promotion.text());
    }
    Ok(Exit::Done)
}

/// `demo`.
pub fn cmd_demo(args: DemoArgs, env: &Env) -> Result<Exit> {
    crate::demo::run(args.dir.as_deref(), env)?;
    Ok(Exit::Done)
}
