//! Runs the matching flows' steps for an event and returns their results:
//! `uses: rebase` through the patch-stack engine, `run:` steps in a worktree
//! of the candidate (or of the stopped state after a conflict), `if:`
//! conditions and the Code Mode gate, and the state file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checks::{run_check, CheckOutcome, CheckSpec};
use crate::error::usage;
use crate::event::{now, FlowEvent};
use crate::flows::{Condition, Flow, Step, StepKind};
use crate::stack::{self, Candidate, Dropped, Patch, RebaseOutcome, StackSpec};
use crate::state::{StateDir, WORKSPACE_DIR};
use crate::status::ResultStatus;
use crate::workspace::{Workspace, Worktree};

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
    /// Environment variables that must never reach a `run:` step.
    pub secret_env: Vec<String>,
    /// Secret values (tokens) that step logs and the state file must not
    /// hold: a step that finds one anyway and prints it is logged as `***`.
    pub secret_values: Vec<String>,
    /// Extra environment for every git command of the run: the action's
    /// credentials for the fork's remote (see `Git::with_http_auth`).
    pub git_env: Vec<(String, String)>,
}

/// The outcome of one event: every run, and their combined status.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub event: FlowEvent,
    pub status: ResultStatus,
    pub runs: Vec<RunResult>,
    /// True when these results were stored by an earlier run of the same
    /// event and nothing ran now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

/// One step of one flow for one event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub id: String,
    pub flow: String,
    pub step: String,
    pub runner: String,
    pub status: ResultStatus,
    pub gated: bool,
    pub message: String,
    pub artifacts: Artifacts,
    /// The step errored (as opposed to reaching a verdict).
    #[serde(skip)]
    pub error: bool,
    #[serde(skip)]
    pub started_at: String,
    #[serde(skip)]
    pub completed_at: String,
}

/// What a run produced, for people and for later steps and commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_refs: Vec<CandidateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<RefAt>,
    /// The maintained branch head the candidate was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<RefAt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<Patch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    /// Patches whose conflicts the memory of resolutions resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_from_memory: Vec<stack::RecalledPatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<crate::conflict::ConflictReport>,
    /// `conflict.json` and `conflict.md` of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_markdown: Option<String>,
    /// The step's whole log, and its last lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRef {
    pub kind: String,
    #[serde(rename = "ref")]
    pub refname: String,
    pub sha: String,
    pub pushed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// A named ref and the commit it pointed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefAt {
    pub name: String,
    pub sha: String,
}

/// `run_` + 12 hex of sha256(eventId NUL flow NUL step [NUL nonce]), with
/// `_replay` after the hex for replays.
pub fn run_id(event_id: &str, flow: &str, step: &str, replay_nonce: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(event_id.as_bytes());
    hasher.update([0]);
    hasher.update(flow.as_bytes());
    hasher.update([0]);
    hasher.update(step.as_bytes());
    if let Some(nonce) = replay_nonce {
        hasher.update([0]);
        hasher.update(nonce.as_bytes());
    }
    let hex = format!("{:x}", hasher.finalize());
    match replay_nonce {
        Some(_) => format!("run_{}_replay", &hex[..12]),
        None => format!("run_{}", &hex[..12]),
    }
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
        return Ok(RunReport { event: event.clone(), status, runs, stored: true });
    }
    let nonce = settings.replay.then(now);
    let mut workspace = Workspace::open(&settings.workspace)?;
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
            return Err(usage(format!("unknown flow `{name}` (flows found: {})", known.join(", "))));
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
pub fn newest_release(git: &crate::git::Git, flows: &[Flow], repo: &str, only: Option<&str>) -> Result<String> {
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
        let rule =
            crate::version::TagRule { pattern: flow.tag_pattern(), prereleases: flow.prereleases, skip: &flow.skip };
        match rule.newest(tags.iter().map(String::as_str)) {
            Some(tag) => answers.push((flow.name.clone(), tag.to_string())),
            None => {
                return Err(usage(format!(
                    "no tag of {} matches `{}` for flow {}; pass --tag",
                    crate::git::redact_url(&stack.upstream),
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
struct FlowRun<'a> {
    settings: &'a RunSettings,
    workspace: &'a Workspace,
    state_dir: &'a StateDir,
    flow: &'a Flow,
    event: &'a FlowEvent,
    /// The worst verdict so far: decides which `if:` steps run.
    verdict: ResultStatus,
    rebase: Option<RebaseOutput>,
    worktree: Option<Worktree>,
    /// A `needs_intervention` step's resolution was validated and remembered.
    repaired: bool,
}

/// What `uses: rebase` left for the steps after it.
struct RebaseOutput {
    candidate: Option<Candidate>,
    /// The commit checks run on: the candidate, the branch (up to date), or the stopped state.
    commit: Option<String>,
    stopped: Option<stack::Stopped>,
    report: Option<PathBuf>,
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
        for step in &flow.steps {
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

impl FlowRun<'_> {
    /// `(status, message, artifacts, Some(errored))`; `None` for the last
    /// field when the step did not run at all.
    fn step(&mut self, id: &str, step: &Step) -> (ResultStatus, String, Artifacts, Option<bool>) {
        let condition = step.condition.unwrap_or(Condition::Success);
        let holds = match condition {
            Condition::Success => self.verdict.is_success(),
            Condition::NeedsIntervention => self.verdict == ResultStatus::NeedsIntervention,
            Condition::Failure => {
                matches!(self.verdict, ResultStatus::Failed | ResultStatus::Blocked)
            }
            Condition::Always => true,
        };
        if !holds {
            let message = format!("not run: `if: {}` does not hold after {}", condition_name(condition), self.verdict);
            return (ResultStatus::Skipped, message, Artifacts::default(), None);
        }
        if step.is_gated() && !self.settings.code_mode {
            let message = format!(
                "gated: Code Mode step {}/{} runs only with CODEX_FLOWS_MODE=code-mode (or CODEX_FLOWS_ENABLE_CODE_MODE=1)",
                self.flow.name, step.name
            );
            return (ResultStatus::Skipped, message, Artifacts::default(), None);
        }
        let outcome = match step.kind() {
            StepKind::Rebase => self.rebase(id),
            StepKind::Run(command) => self.command(id, step, command),
        };
        match outcome {
            Ok((status, message, artifacts)) => (status, message, artifacts, Some(false)),
            Err(err) => (ResultStatus::Failed, format!("{err:#}"), Artifacts::default(), Some(true)),
        }
    }

    fn tag(&self) -> Result<&str> {
        self.event.tag().context("the event has no `payload.tag`")
    }

    fn rebase(&mut self, id: &str) -> Result<(ResultStatus, String, Artifacts)> {
        let stack_config = self.flow.stack.as_ref().context("flow has no `stack:`")?;
        let tag = self.tag()?.to_string();
        let spec = StackSpec {
            upstream: stack_config.upstream.clone(),
            branch: stack_config.branch.clone(),
            remote: stack_config.remote.clone(),
            candidate: stack_config.candidate.replace("{tag}", &tag),
            tag: tag.clone(),
        };
        crate::refname::check_ref_name(&spec.candidate)
            .map_err(|why| usage(format!("candidate branch `{}` {why}", spec.candidate)))?;
        let git = &self.workspace.git;
        let mut artifacts = Artifacts::default();
        let outcome = stack::rebase(git, &spec)?;
        if !matches!(outcome, RebaseOutcome::Conflicted { .. }) {
            self.state_dir.clear_stopped(&self.flow.name, &tag)?;
        }
        let (status, message) = match outcome {
            RebaseOutcome::Blocked(message) => (ResultStatus::Blocked, message),
            RebaseOutcome::UpToDate { head, release } => {
                artifacts.upstream = Some(RefAt { name: tag.clone(), sha: release });
                artifacts.branch = Some(RefAt { name: spec.branch.clone(), sha: head.clone() });
                self.rebase = Some(RebaseOutput { candidate: None, commit: Some(head), stopped: None, report: None });
                (ResultStatus::Completed, format!("{} already contains {tag}; nothing to rebase", spec.branch))
            }
            RebaseOutcome::Clean { candidate, release, head, carried, dropped, recalled } => {
                let (status, pushed, push_note) = match self.settings.push {
                    false => (ResultStatus::Changed, false, String::new()),
                    true => match crate::publish::push_branch(git, &spec.remote, &candidate.refname, &candidate.sha) {
                        Ok(_) => match crate::memory::Memory::load(git)
                            .and_then(|mut memory| memory.push(git, &spec.remote))
                        {
                            Ok(()) => (ResultStatus::Changed, true, format!(", pushed to {}", spec.remote)),
                            Err(err) => (
                                ResultStatus::Failed,
                                true,
                                format!("; pushing the memory of resolutions failed: {err:#}"),
                            ),
                        },
                        Err(err) => (ResultStatus::Failed, false, format!("; push to {} failed: {err:#}", spec.remote)),
                    },
                };
                let memory_note = match recalled.len() {
                    0 => String::new(),
                    n => format!(", {n} resolved from memory"),
                };
                let message = format!(
                    "candidate {} at {}: {} patch(es) carried onto {tag}, {} dropped{memory_note}{push_note}",
                    spec.candidate,
                    stack::short(&candidate.sha),
                    carried.len(),
                    dropped.len(),
                );
                artifacts.resolved_from_memory = recalled;
                artifacts.candidate_refs.push(CandidateRef {
                    kind: "branch".into(),
                    refname: candidate.refname.clone(),
                    sha: candidate.sha.clone(),
                    pushed,
                    remote: pushed.then(|| spec.remote.clone()),
                    backup: candidate.backup.clone(),
                });
                artifacts.upstream = Some(RefAt { name: tag.clone(), sha: release });
                artifacts.branch = Some(RefAt { name: spec.branch.clone(), sha: head });
                artifacts.carried = carried;
                artifacts.dropped = dropped;
                let commit = Some(candidate.sha.clone());
                self.rebase = Some(RebaseOutput { candidate: Some(candidate), commit, stopped: None, report: None });
                (status, message)
            }
            RebaseOutcome::Conflicted { report, stopped, release, head, dropped, recalled } => {
                artifacts.resolved_from_memory = recalled;
                self.state_dir.save_stopped(&self.flow.name, &tag, &stopped)?;
                let dir = self.state_dir.run_dir(id)?;
                let json_path = dir.join("conflict.json");
                let md_path = dir.join("conflict.md");
                crate::state::write_atomic(&json_path, &serde_json::to_vec_pretty(&report)?)?;
                crate::state::write_atomic(&md_path, crate::report::conflict_markdown(&report, &tag).as_bytes())?;
                let message = crate::report::conflict_summary(&report, &tag);
                artifacts.upstream = Some(RefAt { name: tag.clone(), sha: release });
                artifacts.branch = Some(RefAt { name: spec.branch.clone(), sha: head });
                artifacts.carried = report.applied.clone();
                artifacts.dropped = dropped;
                artifacts.report = Some(json_path.display().to_string());
                artifacts.report_markdown = Some(md_path.display().to_string());
                artifacts.conflict = Some(*report);
                self.rebase = Some(RebaseOutput {
                    candidate: None,
                    commit: None,
                    stopped: Some(stopped),
                    report: Some(json_path),
                });
                (ResultStatus::NeedsIntervention, message)
            }
        };
        Ok((status, message, artifacts))
    }

    fn command(&mut self, id: &str, step: &Step, command: &str) -> Result<(ResultStatus, String, Artifacts)> {
        let root = self.checkout(id)?;
        let cwd = match &step.working_directory {
            Some(dir) => root.join(dir),
            None => root.clone(),
        };
        let log_path = self.state_dir.run_dir(id)?.join(format!("{}.log", step.name));
        let mut env: Vec<(String, String)> = vec![
            ("PATCHMOI_EVENT_ID".into(), self.event.id.clone()),
            ("PATCHMOI_RUN_ID".into(), id.to_string()),
            ("PATCHMOI_FLOW".into(), self.flow.name.clone()),
            ("PATCHMOI_STEP".into(), step.name.clone()),
            ("PATCHMOI_STATUS".into(), self.verdict.to_string()),
            ("PATCHMOI_TAG".into(), self.event.tag().unwrap_or_default().to_string()),
            ("PATCHMOI_WORKTREE".into(), root.display().to_string()),
        ];
        if let Some(rebase) = &self.rebase {
            if let Some(candidate) = &rebase.candidate {
                env.push(("PATCHMOI_CANDIDATE_REF".into(), candidate.refname.clone()));
                env.push(("PATCHMOI_CANDIDATE_SHA".into(), candidate.sha.clone()));
            }
            if let Some(report) = &rebase.report {
                env.push(("PATCHMOI_CONFLICT_REPORT".into(), report.display().to_string()));
            }
        }
        env.extend(step.env.iter().map(|(key, value)| (key.clone(), value.clone())));
        let spec = CheckSpec {
            name: step.name.clone(),
            command: command.to_string(),
            cwd,
            env,
            env_remove: self.settings.secret_env.clone(),
            timeout: step.timeout(),
            log_path: log_path.clone(),
        };
        let mut result = run_check(&spec)?;
        if !self.settings.secret_values.is_empty() {
            scrub_log(&log_path, &mut result.log_tail, &self.settings.secret_values)?;
        }
        let artifacts =
            Artifacts { log: Some(log_path.display().to_string()), log_tail: result.log_tail, ..Artifacts::default() };
        let seconds = result.duration.as_secs_f64();
        let (status, message) = match result.outcome {
            CheckOutcome::Passed => (ResultStatus::Completed, format!("step {} passed in {seconds:.1}s", step.name)),
            CheckOutcome::Failed { exit_code: Some(code), .. } => {
                (ResultStatus::Failed, format!("step {} failed with exit code {code} after {seconds:.1}s", step.name))
            }
            CheckOutcome::Failed { signal, .. } => (
                ResultStatus::Failed,
                format!("step {} was killed by signal {} after {seconds:.1}s", step.name, signal.unwrap_or_default()),
            ),
            CheckOutcome::TimedOut => (
                ResultStatus::Failed,
                format!("step {} timed out after {}", step.name, humantime::format_duration(step.timeout())),
            ),
        };
        let stopped = self.rebase.as_ref().and_then(|rebase| rebase.stopped.clone());
        match (status, step.condition, stopped) {
            (ResultStatus::Completed, Some(Condition::NeedsIntervention), Some(stopped)) => {
                let (status, verdict) = self.accept_repair(&root, &stopped)?;
                Ok((status, format!("{message}; {verdict}"), artifacts))
            }
            _ => Ok((status, message, artifacts)),
        }
    }

    /// Checks what a `needs_intervention` step left in the stopped-state
    /// worktree before trusting it: no unmerged paths, no conflict markers
    /// in the conflicted files, no change to any other file (the memory
    /// could not keep it). A valid resolution is remembered and the flow runs
    /// again; anything else keeps the run `needs_intervention` with the reason.
    fn accept_repair(&mut self, worktree: &Path, stopped: &stack::Stopped) -> Result<(ResultStatus, String)> {
        let checkout = crate::git::Git::at(worktree);
        let unmerged = checkout.unmerged_paths()?;
        if !unmerged.is_empty() {
            let message =
                format!("its resolution was rejected: still unmerged (not `git add`ed): {}", unmerged.join(", "));
            return Ok((ResultStatus::NeedsIntervention, message));
        }
        let resolved = checkout.run(&["write-tree"])?;
        let mut conflicted: Vec<String> = stopped.conflicts.iter().map(|entry| entry.path.clone()).collect();
        conflicted.dedup();
        let git = &self.workspace.git;
        if let Err(invalid) = crate::recall::validate(git, &stopped.tree, &conflicted, &resolved)? {
            return Ok((ResultStatus::NeedsIntervention, format!("its resolution was rejected: {invalid}")));
        }
        let tag = self.tag()?.to_string();
        let recorded =
            crate::resolve::remember(git, &stopped.tree, &stopped.conflicts, &stopped.patch, &tag, &resolved)?;
        self.repaired = true;
        Ok((ResultStatus::Completed, format!("its resolution was validated and remembered ({recorded} new entries)")))
    }

    /// Where `run:` steps run: a worktree of the candidate (or of the
    /// stopped state after a conflict), made once per flow; the workspace
    /// itself for a flow without `uses: rebase`.
    fn checkout(&mut self, id: &str) -> Result<PathBuf> {
        if let Some(worktree) = &self.worktree {
            return Ok(worktree.path.clone());
        }
        let Some(rebase) = &self.rebase else {
            return Ok(self.workspace.root.clone());
        };
        let name = format!("{}-{}", self.flow.name, &id[4..]);
        let worktree = match (&rebase.stopped, &rebase.commit) {
            (Some(stopped), _) => {
                self.workspace.conflict_worktree(&name, stopped, self.event.tag().unwrap_or_default())?
            }
            (None, Some(commit)) => self.workspace.worktree(&name, commit)?,
            (None, None) => return Ok(self.workspace.root.clone()),
        };
        let path = worktree.path.clone();
        self.worktree = Some(worktree);
        Ok(path)
    }
}

/// Replaces secret values in a step's log file and its tail.
fn scrub_log(path: &Path, tail: &mut [String], secrets: &[String]) -> Result<()> {
    let text = std::fs::read(path).with_context(|| format!("failed to read log {}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let clean = crate::actions::scrub(&text, secrets);
    if clean != text {
        crate::state::write_atomic(path, clean.as_bytes())?;
    }
    for line in tail.iter_mut() {
        *line = crate::actions::scrub(line, secrets);
    }
    Ok(())
}

fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Success => "success",
        Condition::NeedsIntervention => "needs_intervention",
        Condition::Failure => "failure",
        Condition::Always => "always",
    }
}

/// Where patchmoi's worktrees live inside a workspace.
pub fn worktrees_dir(workspace: &Path) -> PathBuf {
    workspace.join(WORKSPACE_DIR).join("actions/worktrees")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_follow_the_original_scheme() {
        let id =
            run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "rebase-patch-stack", None);
        assert!(id.starts_with("run_") && id.len() == 16, "{id}");
        assert_eq!(
            id,
            run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "rebase-patch-stack", None)
        );
        assert_ne!(id, run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "build", None));
        let replay = run_id("e", "f", "s", Some("2026-01-01T00:00:00.000Z"));
        assert!(replay.starts_with("run_") && replay.ends_with("_replay"), "{replay}");
    }

    #[test]
    fn verdicts_combine_by_precedence() {
        assert_eq!(worse(ResultStatus::Completed, ResultStatus::Changed), ResultStatus::Changed);
        assert_eq!(worse(ResultStatus::Changed, ResultStatus::Failed), ResultStatus::Failed);
        assert_eq!(worse(ResultStatus::NeedsIntervention, ResultStatus::Failed), ResultStatus::NeedsIntervention);
    }
}
