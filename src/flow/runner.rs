//! Runs the matching flows' steps for an event and returns their results:
//! `uses: rebase` through the patch-stack engine, `run:` steps in a worktree
//! of the candidate (or of the stopped state after a conflict), `if:`
//! conditions and the Code Mode gate, and the state file.

pub use crate::flow::results::{run_id, Artifacts, CandidateRef, RefAt, RunReport, RunResult};

use std::path::PathBuf;

use anyhow::Result;

use crate::core::error::usage;
use crate::core::redact;
use crate::core::secrets::Credentials;
use crate::core::status::ResultStatus;
use crate::core::tag_order;
use crate::core::text::shown;
use crate::engine::stack::{self, Candidate};
use crate::flow::event::{now, FlowEvent};
use crate::flow::flows::{Flow, Step};
use crate::flow::resolve::session_worktrees;
use crate::flow::state::StateDir;
use crate::flow::workspace::{Workspace, Worktree};
use crate::git;
use crate::github::Endpoint;

/// Everything a run needs to know besides the event, resolved up front.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub workspace: PathBuf,
    /// Only this flow (by name), when set.
    pub flow: Option<String>,
    pub push: bool,
    /// Run again even if the event already has results.
    pub replay: bool,
    /// Whether `runner: code-mode` steps may run.
    pub code_mode: bool,
    /// The environment every `run:` step starts from: the allowlisted
    /// variables of patchmoi's own environment, never a credential.
    pub step_env: Vec<(String, String)>,
    /// The credentials a step may ask for by name (`secrets:`), held in
    /// memory; their values are also held for scrubbing.
    pub step_secrets: Credentials,
    /// Show `run:` steps' output on stderr as it comes (not on Actions,
    /// where the job prints each step's log in a group of its own).
    pub echo_steps: bool,
    /// Extra environment for every git command of the run: the action's
    /// credentials for the fork's remote (see `Git::with_http_auth`).
    pub git_env: Vec<(String, String)>,
    /// GitHub's API with a token, when one is at hand: asked about upstream
    /// pull requests a patch names and the release's history says nothing of.
    pub github: Option<Endpoint>,
}

/// Told about steps as they run, e.g. to report them on GitHub while the
/// run goes on. `step_finished` may amend the result (a failed push makes a
/// clean rebase `failed`); the amended status decides the next `if:`.
pub trait StepObserver {
    fn step_started(&mut self, _flow: &Flow, _step: &Step, _run_id: &str) {}
    fn step_finished(&mut self, _flow: &Flow, _result: &mut RunResult) {}
}

/// Observes nothing.
pub struct NoObserver;

impl StepObserver for NoObserver {}

/// Runs every matching flow for `event`, or reports the stored results of
/// an event that already ran (unless `settings.replay`).
pub fn run_event(settings: &RunSettings, flows: &[&Flow], event: &FlowEvent) -> Result<RunReport> {
    run_event_observed(settings, flows, event, &mut NoObserver)
}

/// [`run_event`], telling `observer` about each step.
pub fn run_event_observed(
    settings: &RunSettings,
    flows: &[&Flow],
    event: &FlowEvent,
    observer: &mut dyn StepObserver,
) -> Result<RunReport> {
    let state_dir = StateDir::of(&settings.workspace);
    let _lock = state_dir.lock()?;
    let mut state = state_dir.load()?;
    if !settings.replay && state.event(&event.id).is_some() {
        let runs: Vec<RunResult> = state.runs_of(&event.id).into_iter().map(|view| view.to_result()).collect();
        let status = ResultStatus::aggregate(runs.iter().map(|run| run.status)).unwrap_or(ResultStatus::Skipped);
        // A blocked or failed run may be transient (the tag was not out
        // yet, upstream or the network was down): it is never final, and
        // the next run runs again. What depends on content alone is kept.
        if !matches!(status, ResultStatus::Blocked | ResultStatus::Failed) {
            return Ok(RunReport { event: event.clone(), status, runs, stored: true });
        }
        tracing::info!("{} ended {status} before; running it again", event.id);
    }
    let nonce = settings.replay.then(now);
    let mut workspace = Workspace::open(&settings.workspace)?;
    // We hold the state lock: any worktree here but a resolution's is a
    // leftover of a run that was killed.
    workspace.remove_leftovers(&session_worktrees(&state_dir));
    for (key, value) in &settings.git_env {
        workspace.git = workspace.git.with_env(key, value.clone());
    }
    let mut runs = Vec::new();
    for flow in flows {
        runs.extend(run_flow(settings, &workspace, &state_dir, flow, event, nonce.as_deref(), observer)?);
    }
    state.record(event, &runs, &now());
    state_dir.save(&state)?;
    let status = ResultStatus::aggregate(runs.iter().map(|run| run.status)).unwrap_or(ResultStatus::Skipped);
    Ok(RunReport { event: event.clone(), status, runs, stored: false })
}

/// The matching flows, in discovery order, optionally only the named one.
pub fn select_flows<'a>(flows: &'a [Flow], event: &FlowEvent, only: Option<&str>) -> Result<Vec<&'a Flow>> {
    if let Some(name) = only {
        if !flows.iter().any(|flow| flow.name == name) {
            let known: Vec<&str> = flows.iter().map(|flow| flow.name.as_str()).collect();
            return Err(usage(format!("unknown flow `{}` (flows found: {})", shown(name), known.join(", "))));
        }
    }
    Ok(flows
        .iter()
        .filter(|flow| only.is_none_or(|name| flow.name == name))
        .filter(|flow| flow.matches(event, false))
        .collect())
}

/// The newest release tag that the flows handling `repo`'s releases follow,
/// read from their upstreams with `git ls-remote` (nothing is fetched).
/// Flows that disagree make the caller choose with `--tag`.
pub fn newest_release(git: &git::Git, flows: &[Flow], repo: &str, only: Option<&str>) -> Result<String> {
    let probe = FlowEvent::upstream_release(repo, "", String::new());
    let mut answers: Vec<(String, String)> = Vec::new();
    let mut listed: Vec<(String, Vec<String>)> = Vec::new();
    for flow in flows.iter().filter(|flow| only.is_none_or(|name| flow.name == name)) {
        let (true, Some(stack)) = (flow.matches(&probe, true), &flow.stack) else {
            continue;
        };
        if !listed.iter().any(|(url, _)| *url == stack.upstream) {
            listed.push((stack.upstream.clone(), git.ls_remote_tags(&stack.upstream)?));
        }
        let tags = &listed.iter().find(|(url, _)| *url == stack.upstream).expect("just listed").1;
        let rule = tag_order::TagRule { pattern: flow.tag_pattern(), prereleases: flow.prereleases, skip: &flow.skip };
        match rule.newest(tags.iter().map(String::as_str)) {
            Some(tag) => answers.push((flow.name.clone(), tag.to_string())),
            None => {
                return Err(usage(format!(
                    "no tag of {} matches `{}` for flow {}; pass --tag",
                    redact::redact_url(&stack.upstream),
                    flow.tag_pattern(),
                    flow.name
                )))
            }
        }
    }
    match answers.first() {
        None => Err(usage(format!("no flow with a `stack:` handles releases of {repo}; pass --tag"))),
        Some((_, tag)) if answers.iter().all(|(_, other)| other == tag) => Ok(tag.clone()),
        Some(_) => {
            let listing: Vec<String> = answers.iter().map(|(flow, tag)| format!("{flow}: {tag}")).collect();
            Err(usage(format!("the matching flows disagree on the newest tag ({}); pass --tag", listing.join(", "))))
        }
    }
}

/// What the steps of one flow share as they run.
pub(super) struct FlowRun<'a> {
    pub(super) settings: &'a RunSettings,
    pub(super) workspace: &'a Workspace,
    pub(super) state_dir: &'a StateDir,
    pub(super) flow: &'a Flow,
    pub(super) event: &'a FlowEvent,
    /// The worst verdict so far: decides which `if:` steps run.
    pub(super) verdict: ResultStatus,
    pub(super) rebase: Option<RebaseOutput>,
    pub(super) worktree: Option<Worktree>,
    /// A `needs_intervention` step's resolution was validated and remembered.
    pub(super) repaired: bool,
}

/// What `uses: rebase` left for the steps after it.
pub(super) struct RebaseOutput {
    pub(super) candidate: Option<Candidate>,
    /// The commit checks run on: the candidate, the branch (up to date), or the stopped state.
    pub(super) commit: Option<String>,
    pub(super) stopped: Option<stack::Stopped>,
    pub(super) report: Option<PathBuf>,
}

fn run_flow(
    settings: &RunSettings,
    workspace: &Workspace,
    state_dir: &StateDir,
    flow: &Flow,
    event: &FlowEvent,
    nonce: Option<&str>,
    observer: &mut dyn StepObserver,
) -> Result<Vec<RunResult>> {
    let mut results: Vec<RunResult> = Vec::new();
    // A validated repair is remembered; running the flow again then gets
    // past that conflict and puts the candidate through the flow's checks.
    for pass in 0..=MAX_REPAIR_PASSES {
        if pass > 0 {
            tracing::info!("{}: a repair was validated and remembered; running the flow again", flow.name);
        }
        let mut run = FlowRun {
            settings,
            workspace,
            state_dir,
            flow,
            event,
            verdict: ResultStatus::Completed,
            rebase: None,
            worktree: None,
            repaired: false,
        };
        for step in flow.matching_steps(event) {
            let id = run_id(&event.id, &flow.name, &step.name, nonce);
            let started_at = now();
            tracing::info!("{} / {}: {}", flow.name, step.name, event.id);
            observer.step_started(flow, step, &id);
            let (status, message, artifacts, error) = run.step(&id, step);
            tracing::debug!(status = %status, "{message}");
            let mut result = RunResult {
                id,
                flow: flow.name.clone(),
                step: step.name.clone(),
                runner: step.runner_name().to_string(),
                status,
                gated: error.is_none() && status == ResultStatus::Skipped && step.is_gated() && !settings.code_mode,
                message,
                artifacts,
                error: error.unwrap_or(false),
                started_at,
                completed_at: now(),
            };
            observer.step_finished(flow, &mut result);
            if result.status != ResultStatus::Skipped {
                run.verdict = worse(run.verdict, result.status);
            }
            match results.iter_mut().find(|earlier| earlier.step == result.step) {
                // A step a later pass skips keeps what it did in the pass it ran.
                Some(earlier) if result.status == ResultStatus::Skipped && earlier.status != ResultStatus::Skipped => {}
                Some(earlier) => *earlier = result,
                None => results.push(result),
            }
        }
        if let Some(worktree) = run.worktree.take() {
            workspace.remove_worktree(worktree);
        }
        if !run.repaired {
            break;
        }
    }
    Ok(results)
}

/// How many times a flow runs again after validated repairs: each repair
/// gets it past one conflict.
const MAX_REPAIR_PASSES: usize = 5;

/// The verdict that decides `if:` after two results.
fn worse(a: ResultStatus, b: ResultStatus) -> ResultStatus {
    ResultStatus::aggregate([a, b]).unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_combine_by_precedence() {
        assert_eq!(worse(ResultStatus::Completed, ResultStatus::Changed), ResultStatus::Changed);
        assert_eq!(worse(ResultStatus::Changed, ResultStatus::Failed), ResultStatus::Failed);
        assert_eq!(worse(ResultStatus::NeedsIntervention, ResultStatus::Failed), ResultStatus::NeedsIntervention);
    }
}
