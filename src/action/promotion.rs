//! `promote: <tag>` in a workflow: the candidate of that release on origin
//! becomes the maintained branch. A fresh checkout has no record of what
//! the candidate was built from, so the rebase runs again: it is
//! deterministic, and only when it rebuilds exactly origin's candidate from
//! the branch's current head is that head the lease. The old head goes to
//! `patchmoi/backup/<branch>/<time>` on origin first; a protected branch
//! or a branch that moved ends `blocked`.

use anyhow::Result;

use super::outcome::{FlowOutcome, JobOutcome};
use crate::core::status::ResultStatus;
use crate::engine::promote;
use crate::engine::stack::{self, short, RebaseOutcome, StackSpec};
use crate::flow::event;
use crate::flow::event::FlowEvent;
use crate::flow::flows::Flow;
use crate::flow::runner::{Artifacts, RunResult};
use crate::git::Git;
use crate::github::GitHub;
use serde_json::Value;

/// Promotes `tag`'s candidate for every flow with a `stack:` (or `only`).
pub fn promote(
    git: &Git,
    github: &GitHub,
    flows: &[Flow],
    only: Option<&str>,
    repo: &str,
    tag: &str,
) -> Result<JobOutcome> {
    let mut outcomes = Vec::new();
    for flow in flows.iter().filter(|flow| only.is_none_or(|name| flow.name == name)) {
        let Some(stack_config) = &flow.stack else { continue };
        let spec = stack_config.spec(tag);
        let (status, message) =
            match flow.stack_spec(tag).and_then(|checked| promote_flow(git, github, &flow.name, &checked)) {
                Ok(verdict) => verdict,
                Err(err) => (ResultStatus::Failed, format!("{err:#}")),
            };
        tracing::info!("{}: promote {tag}: {status}: {message}", flow.name);
        let result = RunResult {
            id: format!("promote:{}:{tag}", flow.name),
            flow: flow.name.clone(),
            step: "promote".into(),
            runner: "promote".into(),
            status,
            gated: false,
            message,
            artifacts: Artifacts::default(),
            error: status == ResultStatus::Failed,
            started_at: String::new(),
            completed_at: String::new(),
        };
        outcomes.push(FlowOutcome {
            flow: flow.name.clone(),
            status: Some(status),
            candidate_ref: Some(spec.candidate_ref()),
            runs: vec![result],
            ..FlowOutcome::default()
        });
    }
    let status = ResultStatus::aggregate(outcomes.iter().filter_map(|o| o.status)).unwrap_or(ResultStatus::Skipped);
    let event = FlowEvent::upstream_release(repo, tag, event::now());
    Ok(JobOutcome { status, event: Some(event), flows: outcomes, nothing: None })
}

fn promote_flow(git: &Git, github: &GitHub, flow: &str, spec: &StackSpec) -> Result<(ResultStatus, String)> {
    let on_origin = git.remote_ref(&spec.remote, &spec.candidate_ref())?;
    let Some(on_origin) = on_origin else {
        return Ok((
            ResultStatus::Blocked,
            format!(
                "{} has no candidate {} to promote; run the flow for {} first",
                spec.remote, spec.candidate, spec.tag
            ),
        ));
    };
    let rebuilt = match stack::rebase(git, spec)? {
        RebaseOutcome::Clean { candidate, .. } => candidate.sha,
        RebaseOutcome::UpToDate { .. } => {
            return Ok((ResultStatus::Completed, format!("{} already contains {}", spec.branch, spec.tag)))
        }
        RebaseOutcome::Conflicted { .. } => {
            return Ok((
                ResultStatus::Blocked,
                format!(
                    "{} no longer rebases cleanly onto {}; run the flow for {} again",
                    spec.branch, spec.tag, spec.tag
                ),
            ))
        }
        RebaseOutcome::Blocked(message) => return Ok((ResultStatus::Blocked, message)),
    };
    if rebuilt != on_origin {
        return Ok((
            ResultStatus::Blocked,
            format!(
                "the candidate on {} ({}) is not what {} builds for {} now ({}): the branch moved since; run the flow for {} again and review its pull request",
                spec.remote,
                short(&on_origin),
                spec.branch,
                spec.tag,
                short(&rebuilt),
                spec.tag
            ),
        ));
    }
    // No state survives between workflow runs: the check runs on the
    // candidate are the record that its checks passed.
    if let Some(why) = checks_not_passed(&github.check_runs_on(&on_origin)?, flow) {
        return Ok((
            ResultStatus::Blocked,
            format!("refusing to promote {} ({}): {why}", spec.candidate, short(&on_origin)),
        ));
    }
    match promote::promote(git, spec, true, false) {
        Ok(promotion) => {
            let mut message = format!("{} promoted to {} ({})", spec.branch, spec.candidate, short(&promotion.to));
            if let Some(backup) = &promotion.remote_backup {
                message.push_str(&format!("; the old head {} is kept in {backup}", short(&promotion.from)));
            }
            let status = if promotion.from == promotion.to { ResultStatus::Completed } else { ResultStatus::Changed };
            Ok((status, message))
        }
        Err(err) => Ok((ResultStatus::Blocked, format!("{err:#}"))),
    }
}

/// Why the check runs of `flow` on a candidate do not let it be promoted:
/// every `patchmoi / <flow> / <step>` run must be completed, `success` or
/// `skipped`, and there must be some.
fn checks_not_passed(runs: &[Value], flow: &str) -> Option<String> {
    let prefix = format!("patchmoi / {flow} / ");
    let ours: Vec<&Value> =
        runs.iter().filter(|run| run["name"].as_str().is_some_and(|name| name.starts_with(&prefix))).collect();
    if ours.is_empty() {
        return Some(format!("no `{prefix}…` check run is on it; run the flow for this release first"));
    }
    ours.iter().find_map(|run| {
        let name = run["name"].as_str().unwrap_or_default();
        let link =
            run["details_url"].as_str().or(run["html_url"].as_str()).map(|url| format!(" ({url})")).unwrap_or_default();
        match (run["status"].as_str(), run["conclusion"].as_str()) {
            (Some("completed"), Some("success" | "skipped")) => None,
            (Some("completed"), conclusion) => {
                Some(format!("check run `{name}` concluded {}{link}", conclusion.unwrap_or("without a conclusion")))
            }
            (status, _) => Some(format!("check run `{name}` is still {}{link}", status.unwrap_or("pending"))),
        }
    })
}
