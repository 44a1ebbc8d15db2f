//! The patch service's commands: `status`, `events`, `dispatches`,
//! `attempts`, `retry`, `replay`, `sync`, `watch` and `serve`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::service_settings::{data_dir, server_settings, service_settings, watch_settings};
use super::shared::workspace_root;
use super::shared::Exit;
use crate::core::env::Env;
use crate::core::error::usage;
use crate::service::attempt::{Attempt, Operation};
use crate::service::dispatch::{DispatchRecord, DispatchStatus};
use crate::service::feed;
use crate::service::feed::poll;
use crate::service::ops::{self, ServiceError};
use crate::service::server;
use crate::service::store::{attempt_status_filter, dispatch_status_filter, Filter, Store};

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

fn open(data: &DataArgs, env: &Env) -> Result<Store> {
    Store::open(&data_dir(data.data_dir.as_deref(), env))
}

/// For the listings: nothing is created where there is nothing to list.
fn open_to_read(data: &DataArgs, env: &Env) -> Result<Store> {
    Store::open_to_read(&data_dir(data.data_dir.as_deref(), env))
}

fn cli_error(err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::BadInput(message) => usage(message),
        ServiceError::NotFound(message) => anyhow::anyhow!(message),
        ServiceError::Upstream(err) | ServiceError::Internal(err) => err,
    }
}

/// `status`.
pub fn cmd_status(args: ListArgs, env: &Env) -> Result<Exit> {
    let dir = data_dir(args.data.data_dir.as_deref(), env);
    let store = Store::open_to_read(&dir)?;
    let filter = Filter { limit: Some(args.limit.into()), ..Filter::default() };
    let (events, dispatches, attempts) = (store.events(&filter)?, store.dispatches(&filter)?, store.attempts(&filter)?);
    let (attempt_counts, dispatch_counts) = store.status_counts()?;
    if args.data.json {
        let counts = |pairs: &[(String, i64)]| {
            pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>()
        };
        println!(
            "{}",
            json!({"dataDir": dir, "latest": {"events": events, "dispatches": dispatches, "attempts": attempts},
                   "attemptStatusCounts": counts(&attempt_counts), "dispatchStatusCounts": counts(&dispatch_counts)})
        );
        return Ok(Exit::Done);
    }
    let join = |pairs: &[(String, i64)]| {
        if pairs.is_empty() {
            "none".to_string()
        } else {
            pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        }
    };
    println!("data dir: {}", dir.display());
    println!("events shown: {}", events.len());
    println!("dispatches shown: {}", dispatches.len());
    println!("attempts shown: {}", attempts.len());
    println!("attempt statuses: {}", join(&attempt_counts));
    println!("dispatch statuses: {}", join(&dispatch_counts));
    if let Some(latest) = attempts.first() {
        println!("latest attempt: {} {}", latest.status.as_str(), latest.id);
    }
    Ok(Exit::Done)
}

/// `events`.
pub fn cmd_events(args: ListArgs, kind: Option<String>, env: &Env) -> Result<Exit> {
    let store = open_to_read(&args.data, env)?;
    let events = store.events(&Filter { kind, limit: Some(args.limit.into()), ..Filter::default() })?;
    if args.data.json {
        println!("{}", json!({ "events": events }));
    } else {
        for event in &events {
            println!("{} {} {}", event.received_at, event.kind, event.id);
        }
    }
    Ok(Exit::Done)
}

/// `dispatches`.
pub fn cmd_dispatches(args: ListArgs, event_id: Option<String>, status: Option<String>, env: &Env) -> Result<Exit> {
    let status = dispatch_status_filter(status.as_deref(), "--status").map_err(usage)?;
    let store = open_to_read(&args.data, env)?;
    let dispatches = store.dispatches(&Filter { event_id, status, limit: Some(args.limit.into()), kind: None })?;
    if args.data.json {
        println!("{}", json!({ "dispatches": dispatches }));
    } else {
        for record in &dispatches {
            println!("{}", dispatch_line(record));
        }
    }
    Ok(Exit::Done)
}

/// `attempts`.
pub fn cmd_attempts(args: ListArgs, event_id: Option<String>, status: Option<String>, env: &Env) -> Result<Exit> {
    let status = attempt_status_filter(status.as_deref(), "--status").map_err(usage)?;
    let store = open_to_read(&args.data, env)?;
    let attempts = store.attempts(&Filter { event_id, status, limit: Some(args.limit.into()), kind: None })?;
    if args.data.json {
        println!("{}", json!({ "attempts": attempts }));
    } else {
        for attempt in &attempts {
            println!(
                "{} {} {} {}",
                attempt.updated_at,
                attempt.status.as_str(),
                attempt.operation.as_str(),
                attempt.id
            );
        }
    }
    Ok(Exit::Done)
}

fn dispatch_line(record: &DispatchRecord) -> String {
    let transport = serde_json::to_value(record.transport).unwrap_or_default();
    format!(
        "{} {} {} {} {}",
        record.created_at,
        record.status.as_str(),
        record.operation.as_str(),
        transport.as_str().unwrap_or_default(),
        record.event_id
    )
}

/// `retry` and `replay`.
pub fn cmd_redispatch(args: RedispatchArgs, operation: Operation, env: &Env) -> Result<Exit> {
    let mut store = open(&args.data, env)?;
    // As its help says: the git top level of the current directory (outside
    // a checkout, the directory itself: a workspace backend needs none).
    let workspace = match workspace_root(args.workspace_root.as_deref()) {
        Ok(root) => root,
        Err(_) if args.workspace_root.is_none() => std::env::current_dir()?,
        Err(err) => return Err(err),
    };
    let settings = service_settings(env, &workspace);
    let done = ops::redispatch(&mut store, &settings.default_target, &args.event_id, operation).map_err(cli_error)?;
    if args.data.json {
        println!("{}", serde_json::to_string(&done)?);
    } else {
        println!("event: {}", done.event.id);
        println!("dispatch: {}", dispatch_line(&done.dispatch));
        print_attempt(&done.attempt);
    }
    let failed = done.dispatch.status == DispatchStatus::Failed || done.attempt.status.needs_attention();
    Ok(if failed { Exit::Attention } else { Exit::Done })
}

/// `sync`.
pub fn cmd_sync(attempt_id: &str, data: DataArgs, env: &Env) -> Result<Exit> {
    let store = open(&data, env)?;
    let workspace = std::env::current_dir()?;
    let attempt = ops::sync(&store, &service_settings(env, &workspace), attempt_id).map_err(cli_error)?;
    if data.json {
        println!("{}", json!({ "attempt": attempt }));
    } else {
        print_attempt(&attempt);
    }
    Ok(if attempt.status.needs_attention() { Exit::Attention } else { Exit::Done })
}

fn print_attempt(attempt: &Attempt) {
    if let Some(error) = &attempt.error {
        println!("error: {error}");
    }
    if let Some(message) = &attempt.message {
        println!("message: {message}");
    }
    for candidate in &attempt.candidate_refs {
        println!("candidate: {} {}", candidate.refname, candidate.sha.as_deref().unwrap_or(""));
    }
    println!("attempt: {} {}", attempt.status.as_str(), attempt.id);
}

/// `watch`.
pub fn cmd_watch(args: WatchArgs, env: &Env) -> Result<Exit> {
    let sources = match args.sources.or_else(|| env.get("FEED_SOURCES_PATH").map(PathBuf::from)) {
        Some(path) => path,
        None => return Err(usage("no feed sources: pass --sources FILE or set FEED_SOURCES_PATH")),
    };
    let workspace = match args.workspace_root {
        Some(root) => root,
        None => std::env::current_dir()?,
    };
    let settings = watch_settings(&sources, data_dir(args.data_dir.as_deref(), env), env, &workspace)?;
    if args.once {
        let summary = feed::poll_all_once(&settings)?;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            for report in &summary.sources {
                println!("{}", poll_line(report));
            }
        }
        return Ok(if summary.failed > 0 { Exit::Attention } else { Exit::Done });
    }
    feed::watch_forever(&settings)?;
    Ok(Exit::Done)
}

fn poll_line(report: &poll::PollReport) -> String {
    let what = if let Some(error) = &report.error {
        format!("error: {error}")
    } else if report.unchanged {
        "unchanged".into()
    } else if report.empty {
        "empty: the feed lists no releases (is its URL right?)".into()
    } else if report.primed {
        "primed (nothing emitted on a first poll)".into()
    } else {
        let mut text = format!("{} new", report.new_events.len());
        for id in &report.new_events {
            text.push_str(&format!("\n  {id}"));
        }
        if report.dispatch_failures > 0 {
            text.push_str(&format!(
                "\n  {} dispatch(es) failed: see `patchmoi dispatches --status failed`",
                report.dispatch_failures
            ));
        }
        text
    };
    format!("{}: {what}", report.source_id)
}

/// `serve`.
pub fn cmd_serve(args: ServeArgs, env: &Env) -> Result<Exit> {
    let workspace = match args.workspace_root {
        Some(root) => root,
        None => std::env::current_dir()?,
    };
    let data_dir = data_dir(args.data_dir.as_deref(), env);
    server::serve(server_settings(env, data_dir, &workspace)?)?;
    Ok(Exit::Done)
}
