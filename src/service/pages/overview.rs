//! What the overview shows, as pure functions of what the store holds: one
//! row per watched upstream (from its release events and their attempts)
//! and one per flow (from the runs that name it): the latest release seen,
//! its status, how many releases behind the fork is, the last good
//! candidate, and what blocks it (the conflict report's patch and culprit).

use crate::core::status::ResultStatus;
use crate::engine::conflict::ConflictReport;
use crate::flow::event::FlowEvent;
use crate::service::attempt::{derive_status, parse_result_status, Attempt, AttemptStatus};
use crate::service::store::RunRecord;

/// One row of the overview: an upstream and where its fork stands.
#[derive(Debug, Clone)]
pub struct UpstreamRow {
    pub repo: String,
    pub latest: FlowEvent,
    pub latest_status: Option<AttemptStatus>,
    pub behind: usize,
    pub last_good: Option<Attempt>,
    pub blocking: Option<Attempt>,
    /// The conflict that blocks, when a run of the blocking attempt reported one.
    pub conflict: Option<ConflictReport>,
}

/// One flow and where it stands.
#[derive(Debug, Clone)]
pub struct FlowRow {
    pub flow: String,
    pub latest: FlowEvent,
    /// The flow's runs in the newest attempt of its latest release.
    pub latest_status: AttemptStatus,
    pub behind: usize,
    pub last_good: Option<Attempt>,
    /// The attempt whose runs of this flow need a maintainer.
    pub blocking: Option<Attempt>,
    pub conflict: Option<ConflictReport>,
}

fn good(status: AttemptStatus) -> bool {
    matches!(status, AttemptStatus::Changed | AttemptStatus::Completed)
}

/// The first conflict report among `runs` of attempt `attempt_id` (of `flow`
/// when given).
fn conflict_of(runs: &[RunRecord], attempt_id: &str, flow: Option<&str>) -> Option<ConflictReport> {
    runs.iter()
        .filter(|run| run.attempt_id == attempt_id && (flow.is_none() || run.flow.as_deref() == flow))
        .find_map(|run| run.conflict.clone())
}

/// One row per upstream repository, from events (newest first), attempts
/// (newest first) and the runs they reported.
pub fn upstream_rows(events: &[FlowEvent], attempts: &[Attempt], runs: &[RunRecord]) -> Vec<UpstreamRow> {
    let mut rows: Vec<UpstreamRow> = Vec::new();
    for event in events {
        let Some(repo) = event.repo() else { continue };
        if rows.iter().any(|row| row.repo == repo) {
            continue;
        }
        let of_repo: Vec<&FlowEvent> = events.iter().filter(|e| e.repo() == Some(repo)).collect();
        let last_good = attempts.iter().filter(|a| of_repo.iter().any(|e| e.id == a.event_id)).find(|a| good(a.status));
        let behind = match last_good {
            Some(good) => of_repo.iter().take_while(|e| e.id != good.event_id).count(),
            None => of_repo.len(),
        };
        let latest_attempt = attempts.iter().find(|a| a.event_id == event.id);
        let blocking = latest_attempt.filter(|a| a.status.needs_attention()).cloned();
        rows.push(UpstreamRow {
            repo: repo.to_string(),
            latest: event.clone(),
            latest_status: latest_attempt.map(|a| a.status),
            behind,
            last_good: last_good.cloned(),
            conflict: blocking.as_ref().and_then(|a| conflict_of(runs, &a.id, None)),
            blocking,
        });
    }
    rows
}

/// The status of `flow`'s runs in the newest attempt of `event` that ran it,
/// and that attempt.
fn flow_status<'a>(
    flow: &str,
    event: &FlowEvent,
    attempts: &'a [Attempt],
    runs: &[RunRecord],
) -> Option<(AttemptStatus, &'a Attempt)> {
    attempts.iter().filter(|a| a.event_id == event.id).find_map(|attempt| {
        let statuses: Vec<Option<ResultStatus>> = runs
            .iter()
            .filter(|run| run.attempt_id == attempt.id && run.flow.as_deref() == Some(flow))
            .map(|run| parse_result_status(&run.status))
            .collect();
        (!statuses.is_empty()).then(|| (derive_status(&statuses), attempt))
    })
}

/// One row per flow named by a run, the flow seen most recently first.
pub fn flow_rows(events: &[FlowEvent], attempts: &[Attempt], runs: &[RunRecord]) -> Vec<FlowRow> {
    let mut flows: Vec<&str> = Vec::new();
    for run in runs {
        if let Some(flow) = run.flow.as_deref().filter(|flow| !flows.contains(flow)) {
            flows.push(flow);
        }
    }
    let mut rows = Vec::new();
    for flow in flows {
        let of_flow: Vec<(&FlowEvent, AttemptStatus, &Attempt)> = events
            .iter()
            .filter_map(|event| {
                flow_status(flow, event, attempts, runs).map(|(status, attempt)| (event, status, attempt))
            })
            .collect();
        let Some(&(latest, latest_status, latest_attempt)) = of_flow.first() else { continue };
        let last_good = of_flow.iter().position(|(_, status, _)| good(*status));
        let blocking = latest_status.needs_attention().then(|| latest_attempt.clone());
        rows.push(FlowRow {
            flow: flow.to_string(),
            latest: latest.clone(),
            latest_status,
            behind: last_good.unwrap_or(of_flow.len()),
            last_good: last_good.map(|index| of_flow[index].2.clone()),
            conflict: blocking.as_ref().and_then(|a| conflict_of(runs, &a.id, Some(flow))),
            blocking,
        });
    }
    rows
}

#[cfg(test)]
#[path = "overview_tests.rs"]
mod tests;
