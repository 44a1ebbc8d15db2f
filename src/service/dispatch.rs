//! Dispatch: hands an event to where the fork is maintained (a workspace
//! backend over HTTP, a `repository_dispatch` to the fork, or the runner
//! in-process) and turns what happened into a dispatch record and a
//! maintenance attempt, stored together.

use anyhow::Result;
use serde_json::{json, Value};

use crate::core::status::ResultStatus;
use crate::flow::event;
use crate::flow::event::FlowEvent;
use crate::flow::runner;
use crate::github::transport;
use crate::github::Endpoint;
use crate::service::attempt::{apply_observations, Attempt, AttemptStatus, Operation, RunObservation, Transport};
use crate::service::local;
use crate::service::store::Store;
pub use crate::service::target::{DispatchRecord, DispatchStatus, LocalTarget, Target};

/// What a delivery produced before it is stored.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub record: DispatchRecord,
    pub runs: Vec<RunObservation>,
    pub workspace_root: Option<String>,
}

/// Delivers `event` and stores the record and the attempt.
pub fn dispatch(
    store: &mut Store,
    target: &Target,
    event: &FlowEvent,
    operation: Operation,
) -> Result<(DispatchRecord, Attempt)> {
    if let Target::Local(local) = target {
        // Recorded before the work starts, so a run that dies (or cannot
        // record its end) still shows, as `started`.
        let started = begin_local(store, local, event, operation)?;
        // A retry or a replay always runs again; only a first dispatch
        // reports what an earlier run of the same event stored.
        let report = local::run(local, event, operation != Operation::Dispatch);
        let (record, attempt) = finish_local(store, started, local, event, operation, &report, false)?;
        return Ok((record, attempt.expect("kept unless asked to forget")));
    }
    let delivery = deliver(target, event, operation);
    record(store, event, delivery)
}

/// An in-process run whose start is recorded: its dispatch row and attempt.
#[derive(Debug)]
pub struct Started {
    seq: i64,
    attempt_id: String,
    created_at: String,
}

impl Started {
    pub fn attempt_id(&self) -> &str {
        &self.attempt_id
    }
}

/// Records the start of an in-process run of `event` before any of its
/// work: a dispatch and an attempt `started`.
pub fn begin_local(store: &mut Store, local: &LocalTarget, event: &FlowEvent, operation: Operation) -> Result<Started> {
    let transport = if local.actions { Transport::ActionsLocal } else { Transport::Local };
    begin(store, transport, &local.workspace, event, operation)
}

fn begin(
    store: &mut Store,
    transport: Transport,
    workspace: &std::path::Path,
    event: &FlowEvent,
    operation: Operation,
) -> Result<Started> {
    let mut record = blank_record(event, operation);
    record.transport = transport;
    let created_at = record.created_at.clone();
    let delivery = Delivery { record, runs: Vec::new(), workspace_root: Some(workspace.display().to_string()) };
    let (seq, attempt) = store.begin_dispatch(&delivery.record, &new_attempt(event, &delivery))?;
    Ok(Started { seq, attempt_id: attempt.id, created_at })
}

/// Completes what `begin_local` recorded with what the run did. With
/// `forget_stored`, a run that only reported an earlier run's stored
/// result is no attempt: its records are removed (`None`).
pub fn finish_local(
    store: &mut Store,
    started: Started,
    local: &LocalTarget,
    event: &FlowEvent,
    operation: Operation,
    report: &Result<runner::RunReport>,
    forget_stored: bool,
) -> Result<(DispatchRecord, Option<Attempt>)> {
    let mut delivery = local_delivery(local, event, operation, report);
    delivery.record.created_at = started.created_at.clone();
    if forget_stored && report.as_ref().is_ok_and(|report| report.stored) {
        store.forget_dispatch(started.seq, &started.attempt_id)?;
        return Ok((delivery.record, None));
    }
    let attempt = complete(store, &started, &delivery)?;
    Ok((delivery.record, Some(attempt)))
}

/// Records the start of a step a person takes in the checkout (`resolve`,
/// `promote`) before it acts: a dispatch and an attempt `started`.
pub fn begin_session(
    store: &mut Store,
    workspace: &std::path::Path,
    event: &FlowEvent,
    operation: Operation,
) -> Result<Started> {
    begin(store, Transport::Local, workspace, event, operation)
}

/// Completes what `begin_session` recorded with the step's verdict (a
/// [`session_delivery`]); `error` says why it failed, if it did.
pub fn finish_session(
    store: &mut Store,
    started: Started,
    mut delivery: Delivery,
    error: Option<&str>,
) -> Result<Attempt> {
    delivery.record.created_at = started.created_at.clone();
    if let Some(error) = error {
        delivery.record.error = Some(error.to_string());
        for run in &mut delivery.runs {
            run.error = Some(error.to_string());
        }
    }
    complete(store, &started, &delivery)
}

/// Writes the end of a started attempt: the delivery's record and runs.
fn complete(store: &mut Store, started: &Started, delivery: &Delivery) -> Result<Attempt> {
    let now = event::now();
    let (status, message) = initial_status(&delivery.record);
    let record = &delivery.record;
    let attempt = store.finish_dispatch(started.seq, record, &started.attempt_id, |current| {
        let mut next = current.clone();
        for id in &record.run_ids {
            if !next.workspace_run_ids.contains(id) {
                next.workspace_run_ids.push(id.clone());
            }
        }
        next.error = record.error.clone().or(next.error);
        if status.is_finished() {
            next.status = status;
            next.message = message.map(str::to_string).or(next.message);
            next.completed_at = Some(now.clone().max(next.created_at.clone()));
        }
        let mut next = apply_observations(&next, &delivery.runs, &now);
        next.updated_at = now.clone();
        next
    })?;
    store_runs(store, &attempt, delivery);
    Ok(attempt)
}

/// Stores a delivery: its record and a new attempt, in one transaction.
pub fn record(store: &mut Store, event: &FlowEvent, delivery: Delivery) -> Result<(DispatchRecord, Attempt)> {
    let attempt = new_attempt(event, &delivery);
    let attempt = store.record_dispatch(&delivery.record, &attempt)?;
    store_runs(store, &attempt, &delivery);
    Ok((delivery.record, attempt))
}

/// What the runs reported (flows, conflict reports) for the pages; the
/// attempt is whole without it, and a sync writes it again.
fn store_runs(store: &Store, attempt: &Attempt, delivery: &Delivery) {
    if let Err(err) = store.record_runs(&attempt.id, &attempt.event_id, &delivery.runs, &delivery.record.created_at) {
        tracing::warn!(attempt = %attempt.id, "could not store the runs' reports: {err:#}");
    }
}

/// The delivery of an in-process run that already happened.
pub fn local_delivery(
    local: &LocalTarget,
    event: &FlowEvent,
    operation: Operation,
    report: &Result<runner::RunReport>,
) -> Delivery {
    let mut record = blank_record(event, operation);
    record.transport = if local.actions { Transport::ActionsLocal } else { Transport::Local };
    let mut runs = Vec::new();
    match report {
        Ok(report) => {
            runs = local::observations(report);
            record.run_ids = runs.iter().map(|run| run.run_id.clone()).collect();
            record.matched = Some(runs.len() as u64);
            record.idempotent = report.stored;
        }
        Err(err) => {
            record.status = DispatchStatus::Failed;
            record.error = Some(format!("{err:#}"));
        }
    }
    Delivery { record, runs, workspace_root: Some(local.workspace.display().to_string()) }
}

/// The delivery of a step a person took in the checkout (`resolve`,
/// `promote`): one run of `run_id` with its verdict, so the release's
/// history shows it beside the runs of the flow.
pub fn session_delivery(
    workspace: &std::path::Path,
    event: &FlowEvent,
    operation: Operation,
    run_id: &str,
    status: ResultStatus,
    message: &str,
) -> Delivery {
    let mut record = blank_record(event, operation);
    record.transport = Transport::Local;
    record.run_ids = vec![run_id.to_string()];
    record.matched = Some(1);
    let run = RunObservation {
        run_id: run_id.to_string(),
        status: status.to_string(),
        message: Some(message.to_string()),
        error: None,
        candidate_refs: Vec::new(),
        completed_at: Some(record.created_at.clone()),
        ..RunObservation::default()
    };
    Delivery { record, runs: vec![run], workspace_root: Some(workspace.display().to_string()) }
}

fn blank_record(event: &FlowEvent, operation: Operation) -> DispatchRecord {
    DispatchRecord {
        event_id: event.id.clone(),
        event_type: event.kind.clone(),
        operation,
        transport: Transport::Local,
        workspace_backend_url: None,
        url: None,
        status: DispatchStatus::Dispatched,
        run_ids: Vec::new(),
        matched: None,
        idempotent: false,
        http_status: None,
        error: None,
        created_at: event::now(),
    }
}

fn deliver(target: &Target, event: &FlowEvent, operation: Operation) -> Delivery {
    let mut record = blank_record(event, operation);
    match target {
        Target::Workspace(backend) => {
            record.transport = Transport::WorkspaceHttp;
            record.workspace_backend_url = Some(transport::redact(&backend.base));
            let (url, answer) = match operation {
                Operation::Replay => (backend.replay_url(&event.id), backend.replay(&event.id)),
                _ => (backend.events_url(), backend.dispatch(event)),
            };
            record.url = Some(transport::redact(&url));
            match answer {
                Ok(response) if response.is_success() => {
                    let body: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
                    record.run_ids = body["runIds"]
                        .as_array()
                        .map(|ids| ids.iter().filter_map(|id| id.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    record.matched = body["matched"].as_u64();
                    record.idempotent = body["status"] == "duplicate";
                    record.http_status = Some(response.status);
                }
                Ok(response) => {
                    record.status = DispatchStatus::Failed;
                    record.http_status = Some(response.status);
                    record.error = Some(format!("workspace backend answered {}", response.status));
                }
                Err(err) => {
                    record.status = DispatchStatus::Failed;
                    record.error = Some(format!("{err:#}"));
                }
            }
        }
        Target::RepositoryDispatch { api, repo } => {
            record.transport = Transport::RepositoryDispatch;
            record.workspace_backend_url = Some(format!("github:{repo}"));
            match repository_dispatch(api, repo, event, operation) {
                Ok(true) => {}
                Ok(false) => record.status = DispatchStatus::Skipped,
                Err(err) => {
                    record.status = DispatchStatus::Failed;
                    record.error = Some(format!("{err:#}"));
                }
            }
        }
        Target::Missing(reason) => {
            record.status = DispatchStatus::Failed;
            record.error = Some(reason.clone());
        }
        Target::Local(local) => {
            let report = local::run(local, event, operation != Operation::Dispatch);
            return local_delivery(local, event, operation, &report);
        }
    }
    Delivery { record, runs: Vec::new(), workspace_root: None }
}

/// Sends the release to the fork unless the fork's `patchmoi/upstream/<tag>`
/// branch shows it handled it already (a scheduled workflow keeps no
/// `DATA_DIR` between runs, so the fork is the memory). True when sent.
fn repository_dispatch(api: &Endpoint, repo: &str, event: &FlowEvent, operation: Operation) -> Result<bool> {
    let github = api.connect(repo)?;
    let tag = event.tag().unwrap_or_default();
    if operation == Operation::Dispatch && !tag.is_empty() && github.has_branch(&format!("patchmoi/upstream/{tag}"))? {
        return Ok(false);
    }
    let payload = json!({"event": event, "repo": event.repo(), "tag": event.tag()});
    github.dispatch(&event.kind, &payload)?;
    Ok(true)
}

/// An attempt's status right after its dispatch, and why when it is
/// already final: sent → `started`; refused → `failed`; nothing sent, or
/// nothing matched the event → `skipped`.
pub fn initial_status(record: &DispatchRecord) -> (AttemptStatus, Option<&'static str>) {
    match record.status {
        DispatchStatus::Failed => (AttemptStatus::Failed, None),
        DispatchStatus::Skipped => {
            (AttemptStatus::Skipped, Some("the fork already has this release's patchmoi/upstream branch"))
        }
        DispatchStatus::Dispatched if record.matched == Some(0) && record.run_ids.is_empty() => {
            (AttemptStatus::Skipped, Some("no flow matched the event"))
        }
        DispatchStatus::Dispatched => (AttemptStatus::Started, None),
    }
}

/// The attempt for a stored delivery: `started` once sent, then whatever
/// runs the delivery already returned.
fn new_attempt(event: &FlowEvent, delivery: &Delivery) -> Attempt {
    let record = &delivery.record;
    let id = format!("{}:{}:{}", event.id, record.operation.as_str(), record.created_at);
    let (status, message) = initial_status(record);
    let attempt = Attempt {
        id,
        event_id: event.id.clone(),
        event_type: event.kind.clone(),
        operation: record.operation,
        transport: record.transport,
        status,
        upstream_repo: event.repo().map(str::to_string),
        upstream_tag: event.tag().map(str::to_string),
        workspace_backend_url: record.workspace_backend_url.clone(),
        workspace_root: delivery.workspace_root.clone(),
        workspace_run_ids: record.run_ids.clone(),
        workspace_run_statuses: Default::default(),
        candidate_refs: Vec::new(),
        pull_request: None,
        check_runs: Vec::new(),
        message: message.map(str::to_string),
        error: record.error.clone(),
        created_at: record.created_at.clone(),
        updated_at: record.created_at.clone(),
        completed_at: (status.is_finished()).then(|| record.created_at.clone()),
    };
    if delivery.runs.is_empty() {
        return attempt;
    }
    apply_observations(&attempt, &delivery.runs, &record.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_status_table() {
        let event = FlowEvent::upstream_release("o/r", "v1", "t".into());
        let record = |status, matched: Option<u64>, runs: &[&str]| {
            let mut record = blank_record(&event, Operation::Dispatch);
            record.status = status;
            record.matched = matched;
            record.run_ids = runs.iter().map(|id| id.to_string()).collect();
            record
        };
        let cases = [
            (record(DispatchStatus::Dispatched, None, &[]), AttemptStatus::Started),
            (record(DispatchStatus::Dispatched, Some(1), &["r"]), AttemptStatus::Started),
            (record(DispatchStatus::Dispatched, Some(0), &[]), AttemptStatus::Skipped),
            // A duplicate answers matched 0 with the runs it already has.
            (record(DispatchStatus::Dispatched, Some(0), &["r"]), AttemptStatus::Started),
            (record(DispatchStatus::Failed, None, &[]), AttemptStatus::Failed),
            (record(DispatchStatus::Skipped, None, &[]), AttemptStatus::Skipped),
        ];
        for (record, want) in cases {
            assert_eq!(initial_status(&record).0, want, "{record:?}");
        }
    }
}
