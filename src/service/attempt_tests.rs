//! Table tests for attempt status derivation and sync merging.

use super::*;
use crate::core::status::ResultStatus::*;

fn attempt(status: AttemptStatus) -> Attempt {
    Attempt {
        id: "e:dispatch:t0".into(),
        event_id: "e".into(),
        event_type: "upstream.release".into(),
        operation: Operation::Dispatch,
        transport: Transport::WorkspaceHttp,
        status,
        upstream_repo: None,
        upstream_tag: None,
        workspace_backend_url: None,
        workspace_root: None,
        workspace_run_ids: vec!["run-1".into()],
        workspace_run_statuses: BTreeMap::new(),
        candidate_refs: Vec::new(),
        pull_request: None,
        check_runs: Vec::new(),
        message: None,
        error: None,
        created_at: "t0".into(),
        updated_at: "t0".into(),
        completed_at: None,
    }
}

fn observe(run_id: &str, status: &str) -> RunObservation {
    RunObservation { run_id: run_id.into(), status: status.into(), ..RunObservation::default() }
}

#[test]
fn status_precedence_table() {
    use AttemptStatus as A;
    let cases: &[(&[Option<ResultStatus>], AttemptStatus)] = &[
        (&[], A::Started),
        (&[None], A::Started),
        (&[Some(Completed), Some(Skipped)], A::Completed),
        (&[Some(Skipped), Some(Skipped)], A::Skipped),
        (&[Some(Completed), Some(Changed)], A::Changed),
        (&[Some(Changed), Some(Failed)], A::Failed),
        (&[Some(Failed), Some(Blocked)], A::Blocked),
        (&[Some(Blocked), Some(NeedsIntervention)], A::NeedsIntervention),
        (&[Some(Completed), None], A::Started),
        (&[Some(Skipped), None], A::Started),
        (&[Some(Changed), None], A::Changed),
        (&[None, Some(Failed)], A::Failed),
        (&[Some(Completed)], A::Completed),
    ];
    for (runs, want) in cases {
        assert_eq!(derive_status(runs), *want, "{runs:?}");
    }
}

#[test]
fn statuses_parse_and_print() {
    for status in AttemptStatus::ALL {
        assert_eq!(AttemptStatus::parse(status.as_str()), Some(status));
        assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
    }
    assert_eq!(AttemptStatus::parse("done"), None);
    assert_eq!(parse_result_status("needs_intervention"), Some(NeedsIntervention));
    assert_eq!(parse_result_status("running"), None);
}

#[test]
fn sync_derives_and_records_completion() {
    let mut run = observe("run-1", "changed");
    run.message = Some("rebased".into());
    run.candidate_refs = vec![CandidateRef {
        kind: "branch".into(),
        refname: "refs/heads/patchmoi/v2".into(),
        repo: None,
        remote: None,
        sha: Some("abc".into()),
        url: None,
        pushed: Some(true),
    }];
    let next = apply_observations(&attempt(AttemptStatus::Started), &[run.clone(), run], "t1");
    assert_eq!(next.status, AttemptStatus::Changed);
    assert_eq!(next.candidate_refs.len(), 1, "duplicates merge");
    assert_eq!(next.message.as_deref(), Some("rebased"));
    assert_eq!(next.completed_at.as_deref(), Some("t1"));
    assert_eq!(next.updated_at, "t1");
    assert_eq!(next.workspace_run_statuses["run-1"], "changed");
}

#[test]
fn sync_never_moves_a_finished_attempt_back_to_started() {
    let mut done = attempt(AttemptStatus::Completed);
    done.completed_at = Some("t0".into());
    let next = apply_observations(&done, &[observe("run-1", "running")], "t1");
    assert_eq!(next.status, AttemptStatus::Completed);
    assert_eq!(next.completed_at.as_deref(), Some("t0"));
    let failed = attempt(AttemptStatus::Failed);
    assert_eq!(apply_observations(&failed, &[observe("run-2", "queued")], "t1").status, AttemptStatus::Failed);
    // A finished attempt can still move to another finished status.
    let next = apply_observations(&done, &[observe("run-1", "failed")], "t1");
    assert_eq!(next.status, AttemptStatus::Failed);
}

#[test]
fn an_unchanged_sync_keeps_updated_at() {
    let started = attempt(AttemptStatus::Started);
    let once = apply_observations(&started, &[observe("run-1", "running")], "t1");
    let twice = apply_observations(&once, &[observe("run-1", "running")], "t2");
    assert_eq!(twice.updated_at, "t1");
    assert_eq!(twice.status, AttemptStatus::Started);
}
