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

/// Promotes `tag`'s candidate for every flow with a `stack:` (or `only`).
pub fn promote(git: &Git, flows: &[Flow], only: Option<&str>, repo: &str, tag: &str) -> Result<JobOutcome> {
    let mut outcomes = Vec::new();
    for flow in flows.iter().filter(|flow| only.is_none_or(|name| flow.name == name)) {
        let Some(stack_config) = &flow.stack else { continue };
        let spec = stack_config.spec(tag);
        let (status, message) = match flow.stack_spec(tag).and_then(|checked| promote_flow(git, &checked)) {
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

fn promote_flow(git: &Git, spec: &StackSpec) -> Result<(ResultStatus, String)> {
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
