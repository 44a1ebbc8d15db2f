//! Maintenance attempts: the service's record of one dispatch of one event
//! and of what its runs produced, and the pure rules that derive an
//! attempt's status from its runs and merge later observations into it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::status::ResultStatus;
use crate::engine::conflict::ConflictReport;

/// Why an attempt exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Dispatch,
    Retry,
    Replay,
    /// A person (or agent) prepared a resolve worktree.
    Resolve,
    /// A resolution was recorded and the flow ran again.
    Continue,
    /// The maintained branch moved to a candidate.
    Promote,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Dispatch => "dispatch",
            Operation::Retry => "retry",
            Operation::Replay => "replay",
            Operation::Resolve => "resolve",
            Operation::Continue => "continue",
            Operation::Promote => "promote",
        }
    }
}

/// How an event reached a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// POST to a workspace backend's `/events`.
    WorkspaceHttp,
    /// A `repository_dispatch` to the fork on GitHub.
    RepositoryDispatch,
    /// In-process, Actions/local surface (state in the flow-client folder).
    ActionsLocal,
    /// In-process.
    Local,
}

/// An attempt's status: a result status, or `started` while no run has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Started,
    Skipped,
    Completed,
    Changed,
    NeedsIntervention,
    Blocked,
    Failed,
}

impl AttemptStatus {
    pub const ALL: [AttemptStatus; 7] = [
        AttemptStatus::Started,
        AttemptStatus::Skipped,
        AttemptStatus::Completed,
        AttemptStatus::Changed,
        AttemptStatus::NeedsIntervention,
        AttemptStatus::Blocked,
        AttemptStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Started => "started",
            AttemptStatus::Skipped => "skipped",
            AttemptStatus::Completed => "completed",
            AttemptStatus::Changed => "changed",
            AttemptStatus::NeedsIntervention => "needs_intervention",
            AttemptStatus::Blocked => "blocked",
            AttemptStatus::Failed => "failed",
        }
    }

    /// Parses a status given by a user (flag or query parameter).
    pub fn parse(text: &str) -> Option<AttemptStatus> {
        AttemptStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        self != AttemptStatus::Started
    }

    /// Whether a maintainer must look (the CLI exits 1).
    pub fn needs_attention(self) -> bool {
        matches!(self, AttemptStatus::NeedsIntervention | AttemptStatus::Blocked | AttemptStatus::Failed)
    }
}

impl From<ResultStatus> for AttemptStatus {
    fn from(status: ResultStatus) -> AttemptStatus {
        match status {
            ResultStatus::Skipped => AttemptStatus::Skipped,
            ResultStatus::Completed => AttemptStatus::Completed,
            ResultStatus::Changed => AttemptStatus::Changed,
            ResultStatus::NeedsIntervention => AttemptStatus::NeedsIntervention,
            ResultStatus::Blocked => AttemptStatus::Blocked,
            ResultStatus::Failed => AttemptStatus::Failed,
        }
    }
}

/// A result status from a run record; anything else (`queued`, `running`,
/// unknown) means the run has no result yet.
pub fn parse_result_status(text: &str) -> Option<ResultStatus> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

/// A candidate ref some run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRef {
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(rename = "ref")]
    pub refname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<bool>,
}

fn default_kind() -> String {
    "ref".into()
}

impl CandidateRef {
    fn key(&self) -> (String, Option<String>, Option<String>, String, Option<String>) {
        (self.kind.clone(), self.repo.clone(), self.remote.clone(), self.refname.clone(), self.sha.clone())
    }
}

/// A link to something on GitHub the runs produced (a check run, a PR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One maintenance attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// `<eventId>:<operation>:<createdAt>`.
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub operation: Operation,
    pub transport: Transport,
    pub status: AttemptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tag: Option<String>,
    /// Base URL of the workspace backend, or the fork for repository_dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_backend_url: Option<String>,
    /// The checkout an in-process run used (sync reads its state file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<String>,
    #[serde(default)]
    pub workspace_run_ids: Vec<String>,
    /// Run id → its status as last seen (`queued`, `running` or a result status).
    #[serde(default)]
    pub workspace_run_statuses: BTreeMap<String, String>,
    #[serde(default)]
    pub candidate_refs: Vec<CandidateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_runs: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// What a sync learned about one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunObservation {
    pub run_id: String,
    /// `queued`, `running`, or a result status.
    pub status: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub candidate_refs: Vec<CandidateRef>,
    pub completed_at: Option<String>,
    /// The flow and step the run belongs to, when the source says.
    pub flow: Option<String>,
    pub step: Option<String>,
    /// The conflict report of a run that stopped on a conflict.
    pub conflict: Option<Box<ConflictReport>>,
}

/// The status of an attempt whose runs have these statuses (`None`: no
/// result yet). First rule that matches: no runs → started; any
/// needs_intervention, any blocked, any failed, any changed; all skipped →
/// skipped; all completed or skipped → completed; otherwise started.
pub fn derive_status(runs: &[Option<ResultStatus>]) -> AttemptStatus {
    // The one precedence rule lives in ResultStatus::aggregate; an attempt
    // only adds that a run without a result yet keeps it `started` unless a
    // decisive status (attention needed, or changed) is already known.
    let known: Vec<ResultStatus> = runs.iter().flatten().copied().collect();
    match ResultStatus::aggregate(known.iter().copied()) {
        None => AttemptStatus::Started,
        Some(status) if status.needs_attention() || status == ResultStatus::Changed => status.into(),
        Some(_) if known.len() < runs.len() => AttemptStatus::Started,
        Some(status) => status.into(),
    }
}

/// Adds `more` to `into`, skipping refs already there (same kind, repo,
/// remote, ref and sha).
pub fn merge_candidates(into: &mut Vec<CandidateRef>, more: &[CandidateRef]) {
    for candidate in more {
        if !into.iter().any(|have| have.key() == candidate.key()) {
            into.push(candidate.clone());
        }
    }
}

/// The attempt after observing `runs`: run ids and statuses merged,
/// candidates deduplicated, status derived, and never moved from a finished
/// status back to `started`.
pub fn apply_observations(attempt: &Attempt, runs: &[RunObservation], now: &str) -> Attempt {
    let mut next = attempt.clone();
    for run in runs {
        if !next.workspace_run_ids.contains(&run.run_id) {
            next.workspace_run_ids.push(run.run_id.clone());
        }
        next.workspace_run_statuses.insert(run.run_id.clone(), run.status.clone());
        merge_candidates(&mut next.candidate_refs, &run.candidate_refs);
        if let Some(error) = run.error.as_ref().filter(|text| !text.is_empty()) {
            next.error = Some(error.clone());
        }
    }
    // The message people see is the most important run's (the rebase's
    // outcome over a skipped `if:` step after it): the first run of the
    // highest-precedence status.
    let verdict = ResultStatus::aggregate(runs.iter().filter_map(|run| parse_result_status(&run.status)));
    let telling = runs.iter().find(|run| parse_result_status(&run.status) == verdict && verdict.is_some());
    if let Some(message) = telling.or(runs.last()).and_then(|run| run.message.as_ref()).filter(|text| !text.is_empty())
    {
        next.message = Some(message.clone());
    }
    let statuses: Vec<Option<ResultStatus>> =
        next.workspace_run_statuses.values().map(|status| parse_result_status(status)).collect();
    let derived = derive_status(&statuses);
    next.status = if attempt.status.is_finished() && !derived.is_finished() { attempt.status } else { derived };
    if next.status.is_finished() && next.completed_at.is_none() {
        // Never before the attempt was created: a run that finished before
        // its record was written finished, for the record, when it was written.
        let newest = runs.iter().filter_map(|run| run.completed_at.clone()).max();
        let completed = newest.unwrap_or_else(|| now.to_string()).max(next.created_at.clone());
        next.completed_at = Some(completed);
    }
    if next != *attempt {
        next.updated_at = now.to_string();
    }
    next
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
