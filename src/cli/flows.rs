//! `flows`: the flows discovered in a workspace, with their format, where
//! each came from (installed from which pack at which commit, or owned by
//! the repository), what it triggers on, and its steps.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::shared::{workspace_root, Exit};
use crate::flow::flows::{self, Flow};
use crate::flow::pack::lock::Lock;

#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// The fork's checkout (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    format: &'static str,
    path: String,
    origin: String,
    trigger: Value,
    steps: Vec<Value>,
}

/// `flows`.
pub fn cmd_flows(args: FlowsArgs) -> Result<Exit> {
    let root = workspace_root(args.workspace_root.as_deref())?;
    let lock = Lock::read(&root)?;
    let listed: Vec<Listed> = flows::discover(&root)?.iter().map(|flow| listed(flow, &root, lock.as_ref())).collect();
    if args.json {
        println!("{}", serde_json::json!({ "flows": listed }));
        return Ok(Exit::Done);
    }
    if listed.is_empty() {
        println!("no flows in {} (.codex/flows/*/ or flows/*/)", root.display());
    }
    for flow in &listed {
        println!("{} ({}, {})", flow.name, flow.format, flow.origin);
        println!("  on: {}", flow.trigger);
        for step in &flow.steps {
            println!(
                "  - {} [{}]",
                step["name"].as_str().unwrap_or_default(),
                step["runner"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(Exit::Done)
}

fn listed(flow: &Flow, root: &Path, lock: Option<&Lock>) -> Listed {
    let relative = flow.path.strip_prefix(root).unwrap_or(&flow.path);
    let dir = relative.parent().map(|dir| dir.to_string_lossy().into_owned()).unwrap_or_default();
    let format = if flow.path.extension().is_some_and(|ext| ext == "toml") { "flow.toml" } else { "flow.yml" };
    let installed =
        lock.and_then(|lock| lock.items.iter().find(|item| item.kind == "flow" && item.destination_path == dir));
    let origin = match installed {
        Some(item) => {
            let at = item.source.commit.as_deref().map(|commit| format!(" at {}", &commit[..commit.len().min(12)]));
            format!("installed from {}{}", item.source.input, at.unwrap_or_default())
        }
        None if dir.starts_with(".codex/flows") => "installed by hand".into(),
        None => "owned by the repository".into(),
    };
    let steps = flow
        .steps
        .iter()
        .map(|step| serde_json::json!({"name": step.name, "runner": step.runner_name(), "gated": step.is_gated()}))
        .collect();
    Listed {
        name: flow.name.clone(),
        format,
        path: relative.display().to_string(),
        origin,
        trigger: serde_json::json!({"type": flow.on.kind, "payload": flow.on.payload}),
        steps,
    }
}
