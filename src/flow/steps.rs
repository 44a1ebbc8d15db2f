//! The steps themselves: `uses: rebase` through the patch-stack engine,
//! `run:` commands in a worktree of the candidate or of the stopped state,
//! and the validation of a repair that a `needs_intervention` step made.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::runner::{Artifacts, CandidateRef, FlowRun, RebaseOutput, RefAt};
use crate::core::error::usage;
use crate::core::refname;
use crate::core::secrets::{holds_any, scrub};
use crate::core::status::ResultStatus;
use crate::engine::memory;
use crate::engine::publish;
use crate::engine::recall;
use crate::engine::stack::{self, RebaseOutcome};
use crate::flow::flows::{Condition, Step, StepKind};
use crate::flow::pulls::GitHubPulls;
use crate::flow::regenerate::StepRegenerator;
use crate::flow::report;
use crate::flow::resolve;
use crate::flow::shell::{run_check, CheckOutcome, CheckSpec};
use crate::flow::state;
use crate::git;

impl FlowRun<'_> {
    /// `(status, message, artifacts, Some(errored))`; `None` for the last
    /// field when the step did not run at all.
    pub(super) fn step(&mut self, id: &str, step: &Step) -> (ResultStatus, String, Artifacts, Option<bool>) {
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
            StepKind::Script(script) => self.script(id, step, script),
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
        let tag = self.tag()?.to_string();
        let mut spec = self.flow.stack_spec(&tag)?;
        // With a token, GitHub decides the pull requests the history cannot.
        if let (Some(endpoint), Some(upstream)) = (&self.settings.github, self.event.repo()) {
            let lookup = GitHubPulls { endpoint: endpoint.clone(), upstream: upstream.to_string() };
            spec.options.pulls = Some(Arc::new(lookup));
        }
        refname::check_ref_name(&spec.candidate)
            .map_err(|why| usage(format!("candidate branch `{}` {why}", spec.candidate)))?;
        let git = &self.workspace.git;
        let mut artifacts = Artifacts::default();
        let regenerator = StepRegenerator {
            env: self.settings.step_env.clone(),
            log_dir: self.state_dir.run_dir(id)?,
            logs: RefCell::new(Vec::new()),
        };
        let outcome = stack::rebase_with(git, &spec, Some(&regenerator))?;
        // A rule that did not resolve a stop leaves its log with the report.
        if let Some((log, tail)) = regenerator.logs.into_inner().pop() {
            artifacts.log = Some(log.display().to_string());
            artifacts.log_tail = tail;
        }
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
            RebaseOutcome::Clean { candidate, release, head, carried, dropped, recalled, regenerated } => {
                let (status, pushed, push_note) = match self.settings.push {
                    false => (ResultStatus::Changed, false, String::new()),
                    true => match publish::push_branch(git, &spec.remote, &candidate.refname, &candidate.sha) {
                        Ok(_) => {
                            match memory::Memory::load(git).and_then(|mut memory| memory.push(git, &spec.remote)) {
                                Ok(()) => (ResultStatus::Changed, true, format!(", pushed to {}", spec.remote)),
                                Err(err) => (
                                    ResultStatus::Failed,
                                    true,
                                    format!("; pushing the memory of resolutions failed: {err:#}"),
                                ),
                            }
                        }
                        Err(err) => (ResultStatus::Failed, false, format!("; push to {} failed: {err:#}", spec.remote)),
                    },
                };
                let memory_note = match recalled.len() {
                    0 => String::new(),
                    n => {
                        let names: Vec<String> =
                            recalled.iter().map(|patch| format!("\"{}\"", patch.subject)).collect();
                        format!(", {n} resolved from memory ({})", names.join(", "))
                    }
                };
                let regenerated_note: String = regenerated.iter().map(|done| format!("; {}", done.text())).collect();
                artifacts.extra.insert("regenerated".into(), serde_json::to_value(&regenerated)?);
                let message = format!(
                    "candidate {} at {}: {} patch(es) carried onto {tag}, {} dropped{memory_note}{regenerated_note}{push_note}",
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
            RebaseOutcome::Conflicted {
                report,
                stopped,
                release,
                head,
                dropped,
                recalled,
                regenerated,
                regeneration,
            } => {
                if !regenerated.is_empty() {
                    artifacts.extra.insert("regenerated".into(), serde_json::to_value(&regenerated)?);
                }
                artifacts.resolved_from_memory = recalled;
                self.state_dir.save_stopped(&self.flow.name, &tag, &stopped)?;
                let dir = self.state_dir.run_dir(id)?;
                let json_path = dir.join("conflict.json");
                let md_path = dir.join("conflict.md");
                state::write_atomic(&json_path, &serde_json::to_vec_pretty(&report)?)?;
                let markdown = report::conflict_markdown(&report, &tag) + &report::dropped_markdown(&dropped);
                state::write_atomic(&md_path, markdown.as_bytes())?;
                let mut message = report::conflict_summary(&report, &tag);
                if let Some(why) = &regeneration {
                    message.push_str(&format!("; regeneration refused: {why}"));
                }
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

    /// What every step learns of its run: the event, run, flow, step, the
    /// verdict so far and the tag (`run:` and `bun` steps alike).
    pub(super) fn run_variables(&self, id: &str, step: &Step) -> [(String, String); 6] {
        [
            ("PATCHMOI_EVENT_ID".into(), self.event.id.clone()),
            ("PATCHMOI_RUN_ID".into(), id.to_string()),
            ("PATCHMOI_FLOW".into(), self.flow.name.clone()),
            ("PATCHMOI_STEP".into(), step.name.clone()),
            ("PATCHMOI_STATUS".into(), self.verdict.to_string()),
            ("PATCHMOI_TAG".into(), self.event.tag().unwrap_or_default().to_string()),
        ]
    }

    fn command(&mut self, id: &str, step: &Step, command: &str) -> Result<(ResultStatus, String, Artifacts)> {
        let root = self.checkout(id)?;
        let cwd = match &step.working_directory {
            Some(dir) => root.join(dir),
            None => root.clone(),
        };
        let log_path = self.state_dir.run_dir(id)?.join(format!("{}.log", step.name));
        let mut env: Vec<(String, String)> = self.settings.step_env.clone();
        env.extend(self.run_variables(id, step));
        env.push(("PATCHMOI_WORKTREE".into(), root.display().to_string()));
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
        for name in &step.secrets {
            match self.settings.step_secrets.get(name) {
                Some(value) => env.push((name.clone(), value.to_string())),
                None => {
                    return Ok((
                        ResultStatus::Blocked,
                        format!("step {} needs the secret {name}, which is not set", step.name),
                        Artifacts::default(),
                    ))
                }
            }
        }
        let spec = CheckSpec {
            name: step.name.clone(),
            command: command.to_string(),
            cwd,
            env,
            env_remove: Vec::new(),
            inherit_env: false,
            timeout: step.timeout(),
            log_path: log_path.clone(),
            echo: self.settings.echo_steps,
        };
        let mut result = run_check(&spec)?;
        scrub_log(&log_path, &mut result.log_tail, &[])?;
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
    /// in the conflicted files, no change to a file the patch does not touch
    /// (the memory could not keep it). A valid resolution is remembered and the flow runs
    /// again; anything else keeps the run `needs_intervention` with the reason.
    fn accept_repair(&mut self, worktree: &Path, stopped: &stack::Stopped) -> Result<(ResultStatus, String)> {
        let checkout = git::Git::at(worktree);
        let unmerged = checkout.unmerged_paths()?;
        if !unmerged.is_empty() {
            let message =
                format!("its resolution was rejected: still unmerged (not `git add`ed): {}", unmerged.join(", "));
            return Ok((ResultStatus::NeedsIntervention, message));
        }
        let resolved = checkout.write_tree()?;
        let conflicted = git::conflicted_paths(&stopped.conflicts);
        let git = &self.workspace.git;
        if let Err(invalid) = recall::validate(git, &stopped.tree, &conflicted, &stopped.patch_paths, &resolved)? {
            return Ok((ResultStatus::NeedsIntervention, format!("its resolution was rejected: {invalid}")));
        }
        let tag = self.tag()?.to_string();
        let recorded = resolve::remember(git, &stopped.tree, &stopped.conflicts, &stopped.patch, &tag, &resolved)?;
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
pub(super) fn scrub_log(path: &Path, tail: &mut [String], secrets: &[String]) -> Result<()> {
    // Most runs hold no secret at all: then there is no log to read again.
    if secrets.is_empty() && !holds_any() {
        return Ok(());
    }
    let text = std::fs::read(path).with_context(|| format!("failed to read log {}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let clean = scrub(&text, secrets);
    if clean != text {
        state::write_atomic(path, clean.as_bytes())?;
    }
    for line in tail.iter_mut() {
        *line = scrub(line, secrets);
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
