//! In-process dispatch: runs the matching flows on a checkout with the
//! runner, and reads run results back from that checkout's state file for
//! sync.

use std::path::Path;

use anyhow::Result;

use crate::flow::event::FlowEvent;
use crate::flow::flows;
use crate::flow::runner::{run_event, select_flows, RunReport, RunResult, RunSettings};
use crate::flow::state::StateDir;
use crate::service::attempt::{CandidateRef, RunObservation};
use crate::service::target::LocalTarget;

/// Runs the flows of `local.workspace` that match `event`.
pub fn run(local: &LocalTarget, event: &FlowEvent, replay: bool) -> Result<RunReport> {
    let flows = flows::discover(&local.workspace)?;
    let selected = select_flows(&flows, event, None)?;
    let settings = RunSettings {
        workspace: local.workspace.clone(),
        flow: None,
        push: local.push,
        replay,
        code_mode: local.code_mode,
        step_env: local.step_env.clone(),
        step_secrets: local.step_secrets.clone(),
        echo_steps: false,
        git_env: Vec::new(),
        github: None,
    };
    run_event(&settings, &selected, event)
}

/// The runs of a report as attempt observations.
pub fn observations(report: &RunReport) -> Vec<RunObservation> {
    report.runs.iter().map(observe).collect()
}

/// What the state file of `workspace` says about `run_ids` (all runs of the
/// event when `run_ids` is empty).
pub fn sync(workspace: &Path, event_id: &str, run_ids: &[String]) -> Result<Vec<RunObservation>> {
    let state = StateDir::of(workspace).load()?;
    Ok(state
        .runs_of(event_id)
        .into_iter()
        .filter(|view| run_ids.is_empty() || run_ids.contains(&view.id))
        .map(|view| observe(&view.to_result()))
        .collect())
}

fn observe(run: &RunResult) -> RunObservation {
    let candidate_refs = run
        .artifacts
        .candidate_refs
        .iter()
        .map(|candidate| CandidateRef {
            kind: candidate.kind.clone(),
            refname: candidate.refname.clone(),
            repo: None,
            remote: candidate.remote.clone(),
            sha: Some(candidate.sha.clone()),
            url: None,
            pushed: Some(candidate.pushed),
        })
        .collect();
    let attention = run.error || run.status.needs_attention();
    RunObservation {
        run_id: run.id.clone(),
        status: run.status.as_str().to_string(),
        message: Some(run.message.clone()).filter(|text| !text.is_empty()),
        error: Some(run.message.clone()).filter(|text| attention && !text.is_empty()),
        candidate_refs,
        completed_at: Some(run.completed_at.clone()).filter(|text| !text.is_empty()),
        flow: Some(run.flow.clone()).filter(|text| !text.is_empty()),
        step: Some(run.step.clone()).filter(|text| !text.is_empty()),
        conflict: run.artifacts.conflict.clone().map(Box::new),
    }
}
