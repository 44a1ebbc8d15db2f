//! Whether a candidate may be promoted: every step the flow ran on it
//! after the rebase passed (or was skipped), on this very candidate.
//! The checkout's state file is the record; on GitHub Actions, where no
//! state survives a run, the Action reads the check runs instead.

use crate::core::status::ResultStatus;
use crate::flow::state::State;

/// What the record says of a candidate's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Every step after the rebase completed or was skipped.
    Passed,
    /// A step did not pass: its name, status and log.
    Failed { step: String, status: ResultStatus, log: Option<String> },
    /// Nothing here says how the checks went, and why.
    Unknown(String),
}

/// The verdict on `candidate_sha`, the candidate of `flow` for `tag`.
pub fn candidate_checks(state: &State, flow: &str, tag: &str, candidate_sha: &str) -> Gate {
    let built = state.events.iter().rev().find_map(|record| {
        if record.event.tag() != Some(tag) {
            return None;
        }
        let runs: Vec<_> = state.runs_of(&record.event.id).into_iter().filter(|run| run.flow_name == flow).collect();
        let builds = runs.iter().any(|run| {
            run.result_payload.artifacts.candidate_refs.iter().any(|candidate| candidate.sha == candidate_sha)
        });
        builds.then_some(runs)
    });
    let Some(runs) = built else {
        return Gate::Unknown(format!(
            "no run of flow {flow} for {tag} that built this candidate ({}) is recorded here",
            &candidate_sha[..candidate_sha.len().min(12)]
        ));
    };
    let checks = runs.iter().filter(|run| run.result_payload.artifacts.candidate_refs.is_empty());
    for run in checks {
        if !matches!(run.status, ResultStatus::Completed | ResultStatus::Skipped | ResultStatus::Changed) {
            return Gate::Failed {
                step: run.step_name.clone(),
                status: run.status,
                log: run.result_payload.artifacts.log.clone(),
            };
        }
    }
    Gate::Passed
}
