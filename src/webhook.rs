//! GitHub webhooks (`check_run`, `workflow_run`, `pull_request`) as
//! updates to maintenance attempts: which attempt a delivery belongs to,
//! and what it changes. Pure: the server verifies and stores.

use serde_json::Value;

use crate::attempt::{apply_observations, Attempt, Link, RunObservation};

/// The webhook events we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    CheckRun,
    WorkflowRun,
    PullRequest,
}

impl WebhookKind {
    /// From `X-GitHub-Event`; None for events we ignore.
    pub fn parse(name: &str) -> Option<WebhookKind> {
        match name {
            "check_run" => Some(WebhookKind::CheckRun),
            "workflow_run" => Some(WebhookKind::WorkflowRun),
            "pull_request" => Some(WebhookKind::PullRequest),
            _ => None,
        }
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str).filter(|text| !text.is_empty())
}

/// The branches an attempt's runs push to: its candidates, and the
/// default candidate name `patchmoi/<tag>`.
fn candidate_branches(attempt: &Attempt) -> Vec<String> {
    let mut branches: Vec<String> = attempt
        .candidate_refs
        .iter()
        .map(|candidate| candidate.refname.strip_prefix("refs/heads/").unwrap_or(&candidate.refname).to_string())
        .collect();
    if let Some(tag) = &attempt.upstream_tag {
        branches.push(format!("patchmoi/{tag}"));
    }
    branches
}

fn matches_branch(attempt: &Attempt, branch: Option<&str>) -> bool {
    branch.is_some_and(|branch| candidate_branches(attempt).iter().any(|have| have == branch))
}

/// A check run's conclusion as a run status; None while it runs.
pub fn conclusion_status(conclusion: Option<&str>) -> Option<&'static str> {
    match conclusion? {
        "success" => Some("completed"),
        "neutral" | "skipped" => Some("skipped"),
        "action_required" => Some("needs_intervention"),
        "failure" | "timed_out" | "cancelled" | "startup_failure" => Some("failed"),
        _ => None,
    }
}

/// The attempt this delivery belongs to (newest first in `attempts`) and
/// its new version, or None when no attempt matches.
pub fn apply(kind: WebhookKind, payload: &Value, attempts: &[Attempt], now: &str) -> Option<Attempt> {
    match kind {
        WebhookKind::CheckRun => {
            let external = text(payload, "/check_run/external_id");
            let branch = text(payload, "/check_run/check_suite/head_branch");
            let attempt = attempts.iter().find(|attempt| {
                external.is_some_and(|id| {
                    id == attempt.id || id == attempt.event_id || attempt.workspace_run_ids.iter().any(|run| run == id)
                }) || matches_branch(attempt, branch)
            })?;
            let name = text(payload, "/check_run/name").unwrap_or("check");
            let url = text(payload, "/check_run/html_url").unwrap_or_default();
            let conclusion = text(payload, "/check_run/conclusion");
            let mut next = attempt.clone();
            upsert_link(
                &mut next.check_runs,
                Link { name: name.into(), url: url.into(), status: conclusion.map(Into::into) },
            );
            let run_id = match external {
                Some(id) if attempt.workspace_run_ids.iter().any(|run| run == id) => id.to_string(),
                _ => format!("check_run:{}", payload.pointer("/check_run/id").unwrap_or(&Value::Null)),
            };
            let known = attempt.workspace_run_statuses.get(&run_id).map(String::as_str);
            let status = match (conclusion_status(conclusion), known) {
                // A success keeps the more telling `changed` a run already reported.
                (Some("completed"), Some("changed")) => "changed",
                (Some(status), _) => status,
                (None, _) => "running",
            };
            let observed = RunObservation { run_id, status: status.into(), ..RunObservation::default() };
            Some(apply_observations(&next, &[observed], now))
        }
        WebhookKind::PullRequest => {
            let branch = text(payload, "/pull_request/head/ref");
            let attempt = attempts.iter().find(|attempt| matches_branch(attempt, branch))?;
            let merged = payload.pointer("/pull_request/merged").and_then(Value::as_bool) == Some(true);
            let state = if merged { "merged" } else { text(payload, "/pull_request/state").unwrap_or("open") };
            let number = payload.pointer("/pull_request/number").and_then(Value::as_u64).unwrap_or_default();
            let mut next = attempt.clone();
            next.pull_request = Some(Link {
                name: format!("#{number} {}", text(payload, "/pull_request/title").unwrap_or_default()),
                url: text(payload, "/pull_request/html_url").unwrap_or_default().into(),
                status: Some(state.into()),
            });
            next.updated_at = now.into();
            Some(next)
        }
        WebhookKind::WorkflowRun => {
            let branch = text(payload, "/workflow_run/head_branch");
            let attempt = attempts.iter().find(|attempt| matches_branch(attempt, branch))?;
            let mut next = attempt.clone();
            let name = format!("workflow: {}", text(payload, "/workflow_run/name").unwrap_or("run"));
            let status = text(payload, "/workflow_run/conclusion").or_else(|| text(payload, "/workflow_run/status"));
            let url = text(payload, "/workflow_run/html_url").unwrap_or_default();
            upsert_link(&mut next.check_runs, Link { name, url: url.into(), status: status.map(Into::into) });
            next.updated_at = now.into();
            Some(next)
        }
    }
}

fn upsert_link(links: &mut Vec<Link>, link: Link) {
    match links.iter_mut().find(|have| have.name == link.name) {
        Some(have) => *have = link,
        None => links.push(link),
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
