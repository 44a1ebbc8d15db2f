//! The job's side of a run: pushes a candidate and its base branch as soon
//! as the rebase made them, reports every step as a check run on the commit
//! it is about, and after the flow opens or updates the PR, closes older
//! ones and keeps the tracking issue. Every GitHub call is idempotent, so a
//! second run of the same release reports and updates instead of redoing.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;

use super::dashboard::{self, Board, Row};
use super::outcome::{base_branch, FlowOutcome, JobSettings};
use super::text::{check_output, pr_spec};
use super::tracking;
use crate::action::io;
use crate::action::io::{annotation_command, group, scrub, Annotation, Level, ANNOTATIONS_PER_KIND};
use crate::core::status::ResultStatus;
use crate::core::tag_order;
use crate::engine::memory::Memory;
use crate::engine::publish;
use crate::engine::stack;
use crate::flow::event::FlowEvent;
use crate::flow::flows::{Flow, Step};
use crate::flow::runner::{RunResult, StepObserver};
use crate::flow::state;
use crate::git::Git;
use crate::github::{pr_creation_refused, CheckConclusion, CheckReporter, CheckSpot, GitHub, TrackingIssue};

pub(super) struct Publisher<'a> {
    settings: &'a JobSettings,
    git: Git,
    gh: Option<&'a GitHub>,
    out: &'a mut dyn Write,
    checks: CheckReporter,
    /// The commit each flow's checks sit on.
    heads: HashMap<String, String>,
    secrets: Vec<String>,
    /// `::error` and `::warning` lines printed so far: GitHub shows 10 of each per step.
    printed: HashMap<&'static str, usize>,
}

impl<'a> Publisher<'a> {
    pub fn new(settings: &'a JobSettings, git: Git, gh: Option<&'a GitHub>, out: &'a mut dyn Write) -> Publisher<'a> {
        let secrets = settings.secrets();
        Publisher {
            settings,
            git,
            gh,
            out,
            checks: CheckReporter::linking(settings.run_url.clone()),
            heads: HashMap::new(),
            secrets,
            printed: HashMap::new(),
        }
    }

    fn warn(&mut self, message: &str) {
        tracing::warn!("{message}");
        let note = Annotation {
            level: Level::Warning,
            title: "patchmoi".into(),
            message: scrub(message, &self.secrets),
            file: None,
            line: None,
            end_line: None,
        };
        self.annotate(&[note]);
    }

    /// Prints annotations, at most [`ANNOTATIONS_PER_KIND`] of each level
    /// for the whole step (the check runs carry all of them).
    fn annotate(&mut self, notes: &[Annotation]) {
        for note in notes {
            let kind = match note.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Notice => "notice",
            };
            let count = self.printed.entry(kind).or_default();
            if *count < ANNOTATIONS_PER_KIND {
                *count += 1;
                let _ = write!(self.out, "{}", annotation_command(note));
            }
        }
    }

    /// Pushes the candidate and base branch a clean rebase made; a push
    /// GitHub refuses turns the result `failed`, or `blocked` for workflow files.
    fn publish(&mut self, flow: &Flow, result: &mut RunResult) {
        let (Some(stack), Some(upstream)) = (&flow.stack, result.artifacts.upstream.clone()) else { return };
        let head = match (result.artifacts.candidate_refs.first(), &result.artifacts.branch) {
            (Some(candidate), _) => Some(candidate.sha.clone()),
            (None, Some(branch)) => Some(branch.sha.clone()),
            _ => None,
        };
        let Some(candidate) = result.artifacts.candidate_refs.first_mut() else {
            if let Some(head) = head {
                self.heads.insert(flow.name.clone(), head);
            }
            return;
        };
        if !self.settings.push {
            return;
        }
        // GitHub refuses a push with new commits that touch workflow files
        // unless the token may write workflows: say so before pushing.
        let tips = [candidate.sha.as_str(), upstream.sha.as_str()];
        match self.git.paths_new_to_remote(&tips, &stack.remote, ".github/workflows/") {
            Ok(paths) if !paths.is_empty() => {
                let message = format!(
                    "the candidate changes workflow files ({}): pushing them needs a token allowed to update workflows",
                    paths.join(", ")
                );
                self.warn(&message);
            }
            Ok(_) => {}
            Err(err) => tracing::debug!("{err:#}"),
        }
        let base = format!("refs/heads/{}", base_branch(&upstream.name));
        // The candidate first: the base branch is the mark that a release was
        // handled (the schedule and the service skip releases that have it).
        let pushed = publish::push_branch(&self.git, &stack.remote, &candidate.refname, &candidate.sha)
            .and_then(|_| publish::push_branch(&self.git, &stack.remote, &base, &upstream.sha));
        match pushed {
            Ok(_) => {
                candidate.pushed = true;
                candidate.remote = Some(stack.remote.clone());
                result.message.push_str(&format!(", pushed to {}", stack.remote));
                self.heads.insert(flow.name.clone(), candidate.sha.clone());
                // A resolution an agent step made on this runner is lost with
                // it unless it reaches origin, merged by union as `continue
                // --push` does; the next run fetches it.
                if let Err(err) = Memory::load(&self.git).and_then(|mut memory| memory.push(&self.git, &stack.remote)) {
                    let text = scrub(&format!("{err:#}"), &self.secrets);
                    result.status = ResultStatus::Failed;
                    result.message.push_str(&format!("; pushing the memory of resolutions failed: {text}"));
                }
            }
            Err(err) => {
                let text = scrub(&format!("{err:#}"), &self.secrets);
                match refused_for_workflows(&text) {
                    true => {
                        result.status = ResultStatus::Blocked;
                        result.message = format!(
                            "GitHub refused the push because it changes files under .github/workflows/: use a GitHub App \
                             token with the `workflows` permission (or a token with the `workflow` scope) as the `token` input ({text})"
                        );
                    }
                    false => {
                        result.status = ResultStatus::Failed;
                        result.message.push_str(&format!("; push to {} failed: {text}", stack.remote));
                    }
                }
            }
        }
    }

    fn spot(&self, flow: &Flow, step: &str, run_id: &str) -> Option<CheckSpot> {
        let sha = self.heads.get(&flow.name).or(self.settings.sha.as_ref())?.clone();
        Some(CheckSpot { name: format!("patchmoi / {} / {step}", flow.name), sha, external_id: run_id.to_string() })
    }

    /// Completes the check run of one result (and prints its log in a group).
    fn report_step(&mut self, flow: &Flow, result: &RunResult) {
        if let Some(log) = &result.artifacts.log {
            if let Ok(text) = std::fs::read_to_string(log) {
                let clean = scrub(&text, &self.secrets);
                if clean != text {
                    let _ = state::write_atomic(std::path::Path::new(log), clean.as_bytes());
                }
                let _ = write!(
                    self.out,
                    "{}",
                    group(&format!("{} / {}", flow.name, result.step), &clean, &io::random_token())
                );
            }
        }
        let (Some(gh), Some(spot)) = (self.gh, self.spot(flow, &result.step, &result.id)) else { return };
        let conclusion = match result.status {
            ResultStatus::Changed | ResultStatus::Completed => CheckConclusion::Success,
            ResultStatus::NeedsIntervention => CheckConclusion::ActionRequired,
            ResultStatus::Failed | ResultStatus::Blocked => CheckConclusion::Failure,
            ResultStatus::Skipped => CheckConclusion::Skipped,
        };
        let output = check_output(result, &self.secrets);
        if let Err(err) = self.checks.finish_check(gh, &spot, conclusion, &output) {
            self.warn(&format!("could not report check `{}`: {err:#}", spot.name));
        }
    }

    /// After the flow: the PR, older PRs, the tracking issue, annotations.
    pub fn finish_flow(
        &mut self,
        flow: &Flow,
        event: &FlowEvent,
        mut runs: Vec<RunResult>,
        stored: bool,
    ) -> Result<FlowOutcome> {
        if stored {
            for result in runs.iter_mut() {
                if result.artifacts.upstream.is_some() {
                    self.publish(flow, result);
                }
                self.report_step(flow, result);
            }
        }
        let mut outcome = FlowOutcome { flow: flow.name.clone(), ..FlowOutcome::default() };
        let rebase = runs.iter().position(|run| run.artifacts.upstream.is_some());
        if let Some(index) = rebase {
            let artifacts = &runs[index].artifacts;
            if let Some(candidate) = artifacts.candidate_refs.first() {
                outcome.candidate_ref = Some(candidate.refname.clone());
                outcome.candidate_sha = Some(candidate.sha.clone());
            }
            outcome.report = artifacts.report.clone();
        }
        let tag = event.tag().unwrap_or_default().to_string();
        let pushed = rebase.and_then(|i| runs[i].artifacts.candidate_refs.first()).is_some_and(|c| c.pushed);
        if let (Some(gh), true, true) = (self.gh, pushed, self.settings.pull_request) {
            let spec = pr_spec(&self.git, flow, event, &runs, &self.settings.server_url);
            match gh.open_or_update_pr(&spec) {
                Ok(pr) => {
                    let newer = tag_order::Version::parse_from_tag(&tag);
                    let older = |other: &str| matches!((tag_order::Version::parse_from_tag(other), &newer), (Some(a), Some(b)) if a < *b);
                    match gh.close_superseded_prs(&flow.name, &pr, older) {
                        Ok(closed) if !closed.is_empty() => outcome.notes.push(format!("closed older PRs {closed:?}")),
                        Ok(_) => {}
                        Err(err) => self.warn(&format!("could not close older pull requests: {err:#}")),
                    }
                    outcome.pr_number = Some(pr.number);
                    outcome.pr_url = Some(pr.url);
                }
                Err(err) if pr_creation_refused(&err) => {
                    let index = rebase.expect("a pushed candidate comes from the rebase");
                    runs[index].status = ResultStatus::Blocked;
                    runs[index].message = format!(
                        "GitHub Actions may not create pull requests in this repository: turn on \"Allow GitHub Actions to create and approve pull requests\" \
                         (Settings → Actions → General → Workflow permissions); the candidate {} stays pushed",
                        spec.head
                    );
                }
                Err(err) => {
                    let index = rebase.expect("a pushed candidate comes from the rebase");
                    runs[index].status = ResultStatus::Failed;
                    runs[index].message =
                        scrub(&format!("failed to open the pull request for {}: {err:#}", spec.head), &self.secrets);
                }
            }
        }
        let conflict = rebase.and_then(|i| runs[i].artifacts.conflict.clone());
        if let Some(report) = &conflict {
            let notes: Vec<Annotation> = report
                .files
                .iter()
                .flat_map(|file| file.hunks.iter().map(move |hunk| (file, hunk)))
                .map(|(file, hunk)| Annotation {
                    level: Level::Error,
                    title: format!("patch {} conflicts with {tag}", stack::short(&report.patch.sha)),
                    message: report.patch.subject.clone(),
                    file: Some(file.path.clone()),
                    line: Some(hunk.start_line),
                    end_line: Some(hunk.end_line),
                })
                .collect();
            self.annotate(&notes);
            if let Some(gh) = self.gh {
                match tracking::keep(gh, &flow.name, &tag, report, &runs, &self.secrets) {
                    Ok(TrackingIssue::Created { url, .. } | TrackingIssue::Updated { url, .. }) => outcome.tracking_issue = Some(url),
                    Ok(TrackingIssue::Disabled) => self.warn(
                        "Issues are turned off in this repository (the default for forks), so the conflict report is only in the check run and the job summary; turn them on under Settings → General → Features → Issues",
                    ),
                    Err(err) => self.warn(&format!("could not update the tracking issue: {err:#}")),
                }
            }
        }
        let clean = rebase.is_some_and(|i| matches!(runs[i].status, ResultStatus::Changed | ResultStatus::Completed));
        if let (Some(gh), true) = (self.gh, clean) {
            match tracking::close_if_resolved(gh, &flow.name, &tag) {
                Ok(Some(number)) => outcome.notes.push(format!("closed tracking issue #{number}")),
                Ok(None) => {}
                Err(err) => self.warn(&format!("could not close the tracking issue: {err:#}")),
            }
        }
        outcome.status = ResultStatus::aggregate(runs.iter().map(|run| run.status));
        outcome.runs = runs;
        Ok(outcome)
    }
}

impl Publisher<'_> {
    /// Puts this run's rows and skipped releases into the dashboard issue,
    /// keeping the rows earlier runs wrote there. A failure is a warning:
    /// the check runs and the summary carry the same.
    pub fn update_dashboard(&mut self, rows: Vec<Row>, skipped: Vec<String>, now: &str) {
        let Some(gh) = self.gh else { return };
        let render = |bodies: &[String]| {
            let mut board = Board::from_bodies(bodies);
            rows.iter().for_each(|row| board.put(row.clone()));
            board.skipped = skipped.clone();
            board.last_run = now.to_string();
            board.run_url = self.settings.run_url.clone();
            scrub(&dashboard::render(&board), &self.secrets)
        };
        let written = gh.upsert_dashboard(dashboard::TITLE, &render);
        if let Err(err) = written {
            self.warn(&format!("could not update the dashboard issue: {err:#}"));
        }
    }
}

impl StepObserver for Publisher<'_> {
    fn step_started(&mut self, flow: &Flow, step: &Step, run_id: &str) {
        let (Some(gh), Some(spot)) = (self.gh, self.spot(flow, &step.name, run_id)) else { return };
        if !self.heads.contains_key(&flow.name) {
            return; // the rebase has not pushed anything to sit on yet
        }
        if let Err(err) = self.checks.start_check(gh, &spot) {
            self.warn(&format!("could not start check `{}`: {err:#}", spot.name));
        }
    }

    fn step_finished(&mut self, flow: &Flow, result: &mut RunResult) {
        if result.artifacts.upstream.is_some() {
            self.publish(flow, result);
        }
        self.report_step(flow, result);
    }
}

/// Whether a refused push names workflow files: GitHub says "refusing to
/// allow a GitHub App to create or update workflow `…` without `workflows`
/// permission" (or, for an OAuth token, "… without `workflow` scope").
pub fn refused_for_workflows(git_error: &str) -> bool {
    git_error.contains("create or update workflow")
        || (git_error.contains("refusing to allow") && git_error.contains("workflow"))
}

#[cfg(test)]
mod tests {
    use super::refused_for_workflows;

    #[test]
    fn workflow_refusals_are_recognised() {
        let cases = [
            ("! [remote rejected] patchmoi/v1 -> patchmoi/v1 (refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission)", true),
            ("refusing to allow an OAuth App to create or update workflow `.github/workflows/x.yml` without `workflow` scope", true),
            ("! [remote rejected] main -> main (protected branch hook declined)", false),
            ("fatal: unable to access 'https://github.com/o/r/': The requested URL returned error: 403", false),
        ];
        for (text, want) in cases {
            assert_eq!(refused_for_workflows(text), want, "{text}");
        }
    }
}
