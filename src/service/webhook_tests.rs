//! Webhook matching with GitHub's own example payloads.

use super::*;
use crate::service::attempt::AttemptStatus;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/webhooks/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn attempt(status: AttemptStatus) -> Attempt {
    serde_json::from_value(serde_json::json!({
        "id": "patch:upstream.release:o/r:v2:dispatch:t0", "eventId": "patch:upstream.release:o/r:v2",
        "eventType": "upstream.release", "operation": "dispatch", "transport": "repository-dispatch",
        "status": status, "upstreamTag": "v2", "createdAt": "t0", "updatedAt": "t0"
    }))
    .unwrap()
}

#[test]
fn a_failed_check_run_fails_its_attempt() {
    let mut payload = fixture("check_run.completed");
    payload["check_run"]["external_id"] = "patch:upstream.release:o/r:v2".into();
    let next = apply(WebhookKind::CheckRun, &payload, &[attempt(AttemptStatus::Started)], "t1").unwrap();
    assert_eq!(next.status, AttemptStatus::Failed);
    assert_eq!(next.check_runs[0].name, "Octocoders-linter");
    assert_eq!(next.check_runs[0].url, "https://github.com/Codertocat/Hello-World/runs/128620228");
    // GitHub's example as published matches nothing of ours.
    assert!(apply(WebhookKind::CheckRun, &fixture("check_run.completed"), &[attempt(AttemptStatus::Started)], "t1")
        .is_none());
}

#[test]
fn a_successful_check_run_completes_and_keeps_changed() {
    let mut payload = fixture("check_run.completed");
    payload["check_run"]["conclusion"] = "success".into();
    payload["check_run"]["check_suite"]["head_branch"] = "patchmoi/v2".into();
    let next = apply(WebhookKind::CheckRun, &payload, &[attempt(AttemptStatus::Started)], "t1").unwrap();
    assert_eq!(next.status, AttemptStatus::Completed);
    let mut changed = attempt(AttemptStatus::Changed);
    changed.workspace_run_statuses.insert("check_run:128620228".into(), "changed".into());
    assert_eq!(apply(WebhookKind::CheckRun, &payload, &[changed], "t1").unwrap().status, AttemptStatus::Changed);
}

#[test]
fn pull_requests_and_workflow_runs_link_by_candidate_branch() {
    let mut payload = fixture("pull_request.opened");
    payload["pull_request"]["head"]["ref"] = "patchmoi/v2".into();
    let next = apply(WebhookKind::PullRequest, &payload, &[attempt(AttemptStatus::Changed)], "t1").unwrap();
    let pr = next.pull_request.unwrap();
    assert_eq!(pr.url, "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(pr.status.as_deref(), Some("open"));
    assert_eq!(next.status, AttemptStatus::Changed);
    let mut payload = fixture("workflow_run.completed");
    payload["workflow_run"]["head_branch"] = "patchmoi/v2".into();
    let next = apply(WebhookKind::WorkflowRun, &payload, &[attempt(AttemptStatus::Started)], "t1").unwrap();
    assert_eq!(next.check_runs[0].name, "workflow: Manually triggered workflow");
    assert_eq!(WebhookKind::parse("push"), None);
}
