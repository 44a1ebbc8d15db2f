//! `prune`: retention of old releases' refs, run folders and records.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::shared::{workspace_data_dir, workspace_root, Exit};
use crate::core::env::Env;
use crate::core::error::usage;
use crate::flow::flows;
use crate::flow::prune::{apply, plan};
use crate::service::store::{Store, DB_FILE};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// How many of each flow's newest releases to keep (at least 1).
    #[arg(long, default_value_t = 5)]
    pub keep: usize,
    /// Also delete on the fork's remote (`stack.remote`): old candidate,
    /// `patchmoi/upstream/<tag>` and backup branches.
    #[arg(long)]
    pub push: bool,
    /// Delete; without it, only show what would be deleted.
    #[arg(long)]
    pub apply: bool,
    /// The fork's checkout (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Product state directory (default: DATA_DIR, else `data` at the workspace root).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `prune`.
pub fn cmd_prune(args: PruneArgs, env: &Env) -> Result<Exit> {
    if args.keep == 0 {
        return Err(usage("--keep must be at least 1: the newest release is always kept"));
    }
    let root = workspace_root(args.workspace_root.as_deref())?;
    let flows = flows::discover(&root)?;
    let data = workspace_data_dir(args.data_dir.as_deref(), env, &root);
    let store = Store::open_to_read(&data)?;
    let plan = plan(&root, &flows, &store.all_events()?, args.keep, args.push)?;
    let (events, dispatches, attempts) = store.records_of(&plan.events)?;
    drop(store);
    if args.json {
        let records = json!({"events": events, "dispatches": dispatches, "attempts": attempts});
        println!("{}", json!({"applied": args.apply, "plan": plan, "database": records}));
    } else {
        let verb = if args.apply { "deleted" } else { "would delete" };
        for kept in &plan.kept {
            println!("keep {}: {}", kept.tag, kept.why);
        }
        for tag in &plan.pruned {
            println!("prune {tag}");
        }
        for (refname, sha) in &plan.refs {
            println!("{verb} {refname} ({})", &sha[..sha.len().min(12)]);
        }
        for (remote, refs) in &plan.remote_refs {
            for (refname, sha) in refs {
                println!("{verb} {refname} on {remote} ({})", &sha[..sha.len().min(12)]);
            }
        }
        for path in &plan.files {
            println!("{verb} {}", path.display());
        }
        if !plan.events.is_empty() {
            println!(
                "{verb} the records of {} event(s): {events} stored event(s), {dispatches} dispatch(es), {attempts} attempt(s)",
                plan.events.len()
            );
        }
        if plan.is_empty() {
            println!("nothing to prune (keeping the newest {} release(s) of each flow)", args.keep);
        } else if !args.apply {
            println!("(a dry run: add --apply to delete)");
        }
    }
    if args.apply && !plan.is_empty() {
        apply(&root, &plan)?;
        if events + dispatches + attempts > 0 && data.join(DB_FILE).exists() {
            Store::open(&data)?.forget_events(&plan.events)?;
        }
    }
    Ok(Exit::Done)
}
