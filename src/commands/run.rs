//! `run`, `promote` and `demo`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::{check_tag, workspace_root, Exit};
use crate::cli::{DemoArgs, PromoteArgs, RunArgs};
use crate::error::usage;
use crate::event::{check_repo, now, FlowEvent};
use crate::flows::{self, Flow};
use crate::git::Git;
use crate::runner::{newest_release, run_event, select_flows, RunSettings};
use crate::settings::Env;

/// `run upstream-release` and `run codex-release`.
pub fn cmd_run_release(repo: &str, args: RunArgs, env: &Env) -> Result<Exit> {
    check_repo(repo).map_err(usage)?;
    if let Some(tag) = &args.tag {
        check_tag(tag)?;
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
    let report = run_event(&settings, &selected, &event)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", crate::report::run_text(&report));
    }
    Ok(if report.status.needs_attention() { Exit::Attention } else { Exit::Done })
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
    let promotion = crate::promote::promote(&Git::open(&root)?, flow, &args.target.tag, args.push)?;
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
