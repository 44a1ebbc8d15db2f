//! `history`: one release's timeline, from the records of the checkout:
//! the event, each dispatch and attempt (runs, resolve, continue, promote),
//! and the runs of each flow with their conflicts and culprits.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::shared::{Exit, LocalRecords};
use crate::core::env::Env;
use crate::core::refname::check_tag;
use crate::flow::event::UPSTREAM_RELEASE;
use crate::flow::state::StateDir;
use crate::service::store::{Filter, Store, MAX_LIMIT};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this flow's runs.
    #[arg(long)]
    pub flow: Option<String>,
    /// Only this release (default: every release, newest first).
    #[arg(long, allow_hyphen_values = true)]
    pub tag: Option<String>,
    #[command(flatten)]
    pub records: LocalRecords,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One line of a timeline.
#[derive(Debug, Serialize)]
struct Entry {
    at: String,
    kind: String,
    status: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct Release {
    event: String,
    tag: String,
    timeline: Vec<Entry>,
}

/// `history`.
pub fn cmd_history(args: HistoryArgs, env: &Env) -> Result<Exit> {
    if let Some(tag) = &args.tag {
        check_tag(tag)?;
    }
    let (root, data) = args.records.resolve(env)?;
    // Read-only: works on a read-only data directory too.
    let store = Store::open_to_read(&data)?;
    let state = StateDir::of(&root).load()?;
    let all = Filter { kind: Some(UPSTREAM_RELEASE.into()), limit: Some(MAX_LIMIT), ..Filter::default() };
    let mut releases = Vec::new();
    for event in store.events(&all)? {
        let tag = event.tag().unwrap_or_default().to_string();
        if args.tag.as_deref().is_some_and(|wanted| wanted != tag) {
            continue;
        }
        let mut timeline = vec![Entry {
            at: event.received_at.clone(),
            kind: "event".into(),
            status: String::new(),
            message: format!(
                "{} released {tag} (via {})",
                event.repo().unwrap_or_default(),
                event.source.as_deref().unwrap_or("the command line")
            ),
        }];
        let of_event = Filter { event_id: Some(event.id.clone()), limit: Some(MAX_LIMIT), ..Filter::default() };
        for attempt in store.attempts(&of_event)? {
            let message = attempt.message.clone().or(attempt.error.clone()).unwrap_or_default();
            timeline.push(Entry {
                at: attempt.created_at.clone(),
                kind: attempt.operation.as_str().into(),
                status: attempt.status.as_str().into(),
                message,
            });
        }
        for run in state.runs_of(&event.id) {
            if args.flow.as_deref().is_some_and(|flow| flow != run.flow_name) {
                continue;
            }
            let mut message = run.result_payload.message.clone();
            if let Some(conflict) = &run.result_payload.artifacts.conflict {
                message.push_str(&format!("; stopped at \"{}\"", conflict.patch.subject));
                if let Some(culprit) = &conflict.culprit {
                    message.push_str(&format!(
                        ", culprit {} \"{}\"",
                        &culprit.sha[..culprit.sha.len().min(12)],
                        culprit.subject
                    ));
                }
            }
            timeline.push(Entry {
                at: run.completed_at.clone(),
                kind: format!("run {} / {}", run.flow_name, run.step_name),
                status: run.status.to_string(),
                message,
            });
        }
        if args.flow.is_some() && timeline.iter().all(|entry| !entry.kind.starts_with("run ")) {
            continue;
        }
        timeline.sort_by(|a, b| a.at.cmp(&b.at));
        releases.push(Release { event: event.id.clone(), tag, timeline });
    }
    if args.json {
        println!("{}", serde_json::json!({ "releases": releases }));
        return Ok(Exit::Done);
    }
    if releases.is_empty() {
        println!("no releases recorded here");
    }
    for release in &releases {
        println!("{} ({})", release.tag, release.event);
        for entry in &release.timeline {
            let status = if entry.status.is_empty() { String::new() } else { format!(" {}", entry.status) };
            println!("  {}  {}{status}  {}", entry.at, entry.kind, entry.message);
        }
    }
    Ok(Exit::Done)
}
