//! GitHub webhooks (`check_run`, `workflow_run`, `pull_request`) as
//! updates to maintenance attempts: which attempt a delivery belongs to,
//! and what it changes. Pure: the server verifies and stores.

use serde_json::Value;

use crate::service::attempt::{apply_observations, Attempt, Link, RunObservation};

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

/// The keys the store finds `attempt` by: its id, its event's id, its
/// runs' ids and its candidate branches.
pub fn index_keys(attempt: &Attempt) -> Vec<String> {
    let mut keys = vec![format!("id:{}", attempt.id), format!("event:{}", attempt.event_id)];
    keys.extend(attempt.workspace_run_ids.iter().map(|run| format!("run:{run}")));
    keys.extend(candidate_branches(attempt).into_iter().map(|branch| format!("branch:{branch}")));
    keys
}

/// The keys a delivery may match (see [`index_keys`]); [`apply`] then
/// decides among the attempts found.
pub fn lookup_keys(kind: WebhookKind, payload: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    let branch = match kind {
        WebhookKind::CheckRun => {
            if let Some(id) = text(payload, "/check_run/external_id") {
                keys.extend([format!("id:{id}"), format!("event:{id}"), format!("run:{id}")]);
            }
            text(payload, "/check_run/check_suite/head_branch")
        }
        WebhookKind::PullRequest => text(payload, "/pull_request/head/ref"),
        WebhookKind::WorkflowRun => text(payload, "/workflow_run/head_branch"),
    };
    keys.extend(branch.map(|branch| format!("branch:{branch}")));
    keys
}

/// The object a delivery describes and that object's own timestamp
/// (GitHub's UTC `…Z` form, so text order is time order): a delivery
/// stamped before one already applied to the same object is stale.
pub fn delivery_object(kind: WebhookKind, payload: &Value) -> (Option<String>, Option<String>) {
    let (object, times): (&str, &[&str]) = match kind {
        WebhookKind::CheckRun => ("check_run", &["/check_run/completed_at", "/check_run/started_at"]),
        WebhookKind::PullRequest => ("pull_request", &["/pull_request/updated_at"]),
        WebhookKind::WorkflowRun => ("workflow_run", &["/workflow_run/updated_at"]),
    };
    let id = payload.pointer(&format!("/{object}/id")).filter(|id| !id.is_null()).map(|id| format!("{object}:{id}"));
    let time = times.iter().find_map(|pointer| text(payload, pointer)).map(str::to_string);
    (id, time)
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
            Some(apply_check_run(attempt, payload.get("check_run").unwrap_or(&Value::Null), now))
        }
        WebhookKind::PullRequest => {
            let branch = text(payload, "/pull_request/head/ref");
            let attempt = attempts.iter().find(|attempt| matches_branch(attempt, branch))?;
            Some(apply_pull_request(attempt, payload.get("pull_request").unwrap_or(&Value::Null), now))
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

/// A check run (webhook or API shape) as a run of `attempt`: its link, and
/// its conclusion as the status of run `external_id` (the runner's run id).
pub fn apply_check_run(attempt: &Attempt, check_run: &Value, now: &str) -> Attempt {
    apply_check_runs(attempt, std::slice::from_ref(check_run), now)
}

/// Several check runs at once, so runs still in progress count together
/// with the finished ones.
pub fn apply_check_runs(attempt: &Attempt, check_runs: &[Value], now: &str) -> Attempt {
    let mut next = attempt.clone();
    let mut observed = Vec::new();
    for check_run in check_runs {
        let name = text(check_run, "/name").unwrap_or("check");
        let url = text(check_run, "/html_url").unwrap_or_default();
        let conclusion = text(check_run, "/conclusion");
        upsert_link(
            &mut next.check_runs,
            Link { name: name.into(), url: url.into(), status: conclusion.map(Into::into) },
        );
        let run_id = match text(check_run, "/external_id") {
            Some(id) if id.starts_with("run_") || attempt.workspace_run_ids.iter().any(|run| run == id) => {
                id.to_string()
            }
            _ => format!("check_run:{}", check_run.get("id").unwrap_or(&Value::Null)),
        };
        let known = attempt.workspace_run_statuses.get(&run_id).map(String::as_str);
        let status = match (conclusion_status(conclusion), known) {
            // A success keeps the more telling `changed` a run already reported.
            (Some("completed"), Some("changed")) => "changed",
            (Some(status), _) => status,
            (None, _) => "running",
        };
        observed.push(RunObservation { run_id, status: status.into(), ..RunObservation::default() });
    }
    apply_observations(&next, &observed, now)
}

/// A pull request (webhook or API shape) as the attempt's PR link.
pub fn apply_pull_request(attempt: &Attempt, pull: &Value, now: &str) -> Attempt {
    let merged = pull.get("merged").and_then(Value::as_bool) == Some(true) || text(pull, "/merged_at").is_some();
    let state = if merged { "merged" } else { text(pull, "/state").unwrap_or("open") };
    let number = pull.get("number").and_then(Value::as_u64).unwrap_or_default();
    let link = Link {
        name: format!("#{number} {}", text(pull, "/title").unwrap_or_default()),
        url: text(pull, "/html_url").unwrap_or_default().into(),
        status: Some(state.into()),
    };
    let mut next = attempt.clone();
    if next.pull_request.as_ref() != Some(&link) {
        next.pull_request = Some(link);
        next.updated_at = now.into();
    }
    next
}

/// The candidate branch of a repository_dispatch attempt: `patchmoi/<tag>`.
pub fn default_candidate(attempt: &Attempt) -> Option<String> {
    attempt.upstream_tag.as_ref().map(|tag| format!("patchmoi/{tag}"))
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
