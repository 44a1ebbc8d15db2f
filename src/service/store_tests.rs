//! Store tests: events stored once, dispatch + attempt together, prefixes,
//! filters, cursors, schema version.

use super::*;
use crate::service::attempt::{Operation, RunObservation, Transport};

fn event(tag: &str) -> FlowEvent {
    FlowEvent::upstream_release("openai/codex", tag, "2026-01-01T00:00:00.000Z".into())
}

fn record(event: &FlowEvent, status: DispatchStatus) -> DispatchRecord {
    DispatchRecord {
        event_id: event.id.clone(),
        event_type: event.kind.clone(),
        operation: Operation::Dispatch,
        transport: Transport::WorkspaceHttp,
        workspace_backend_url: None,
        url: None,
        status,
        run_ids: Vec::new(),
        matched: None,
        idempotent: false,
        http_status: None,
        error: None,
        created_at: "t".into(),
    }
}

fn attempt(id: &str, event: &FlowEvent, status: AttemptStatus) -> Attempt {
    serde_json::from_value(serde_json::json!({
        "id": id, "eventId": event.id, "eventType": event.kind, "operation": "dispatch",
        "transport": "workspace-http", "status": status, "createdAt": "t", "updatedAt": "t"
    }))
    .unwrap()
}

#[test]
fn events_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.record_event(&event("v1")).unwrap(), Recorded::New);
    assert_eq!(store.record_event(&event("v1")).unwrap(), Recorded::Duplicate);
    store.record_event(&event("v2")).unwrap();
    let listed = store.events(&Filter::default()).unwrap();
    assert_eq!(listed.iter().map(|e| e.tag().unwrap()).collect::<Vec<_>>(), ["v2", "v1"]);
    let only_one = Filter { limit: Some(1), ..Filter::default() };
    assert_eq!(store.events(&only_one).unwrap().len(), 1);
    let other_type = Filter { kind: Some("x".into()), ..Filter::default() };
    assert!(store.events(&other_type).unwrap().is_empty());
    assert_eq!(store.event(&event("v1").id).unwrap(), Some(event("v1")));
    // A second handle (another process) sees the same data.
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.record_event(&event("v2")).unwrap(), Recorded::Duplicate);
    assert_eq!(again.integrity_check().unwrap(), "ok");
}

#[test]
fn dispatches_and_attempts_filter_and_prefixes_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let (one, two) = (event("v1"), event("v2"));
    store
        .record_dispatch(&record(&one, DispatchStatus::Dispatched), &attempt("a-long-1", &one, AttemptStatus::Started))
        .unwrap();
    store
        .record_dispatch(&record(&two, DispatchStatus::Failed), &attempt("a-long-2", &two, AttemptStatus::Failed))
        .unwrap();
    let failed = Filter { status: Some("failed".into()), ..Filter::default() };
    assert_eq!(store.dispatches(&failed).unwrap().len(), 1);
    assert_eq!(store.attempts(&failed).unwrap()[0].id, "a-long-2");
    let by_event = Filter { event_id: Some(one.id.clone()), ..Filter::default() };
    assert_eq!(store.attempts(&by_event).unwrap()[0].id, "a-long-1");
    assert!(matches!(store.attempt("a-long-1").unwrap(), Lookup::Found(a) if a.id == "a-long-1"));
    assert!(matches!(store.attempt("a-long-2").unwrap(), Lookup::Found(_)));
    assert!(matches!(store.attempt("a-long").unwrap(), Lookup::Ambiguous(ids) if ids.len() == 2));
    assert!(matches!(store.attempt("zzz").unwrap(), Lookup::NotFound));
    // The same id twice (two dispatches in one millisecond) keeps both.
    let twin = store
        .record_dispatch(&record(&one, DispatchStatus::Dispatched), &attempt("a-long-1", &one, AttemptStatus::Started))
        .unwrap();
    assert_eq!(twin.id, "a-long-1-2");
    let all = Filter { event_id: Some(one.id.clone()), ..Filter::default() };
    assert_eq!(store.attempts(&all).unwrap().len(), 2);
    let mut synced = attempt("a-long-1", &one, AttemptStatus::Changed);
    synced.updated_at = "t2".into();
    store.save_attempt(&synced).unwrap();
    let changed = Filter { status: Some("changed".into()), ..Filter::default() };
    assert_eq!(store.attempts(&changed).unwrap().len(), 1);
    let (attempts, dispatches) = store.status_counts().unwrap();
    assert_eq!(attempts, [("changed".to_string(), 1), ("failed".to_string(), 1), ("started".to_string(), 1)]);
    assert_eq!(dispatches, [("dispatched".to_string(), 2), ("failed".to_string(), 1)]);
}

#[test]
fn cursors_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.cursor("s").unwrap(), None);
    let cursor = Cursor { seen: vec!["a".into()], etag: Some("\"e\"".into()), last_checked_at: None };
    store.save_cursor("s", &cursor).unwrap();
    store.save_cursor("s", &cursor).unwrap();
    assert_eq!(store.cursor("s").unwrap(), Some(cursor));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(dir.path()).err().unwrap();
    assert!(format!("{err:#}").contains("schema version 99"), "{err:#}");
}

#[test]
fn status_filters_name_the_parameter() {
    assert_eq!(attempt_status_filter(Some("changed"), "--status").unwrap().as_deref(), Some("changed"));
    assert!(attempt_status_filter(Some("done"), "--status").unwrap_err().starts_with("--status must be one of"));
    assert!(dispatch_status_filter(Some("x"), "status").unwrap_err().contains("dispatched, failed, skipped"));
}

#[test]
fn one_claim_per_event_unless_stale_or_dispatched() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let other = Store::open(dir.path()).unwrap();
    let (first, second) = (event("rust-v1"), event("rust-v2"));
    store.record_event(&first).unwrap();
    assert!(store.claim_dispatch(&first.id).unwrap(), "the first poller claims it");
    assert!(!other.claim_dispatch(&first.id).unwrap(), "a second process does not");
    // A claim left by a poll that died long ago is taken over.
    store.conn.execute("UPDATE dispatch_claims SET claimed_at = 0 WHERE event_id = ?1", params![first.id]).unwrap();
    assert!(other.claim_dispatch(&first.id).unwrap());
    // An event that already has a dispatch (from `run`, say) is never claimed.
    store.record_event(&second).unwrap();
    let attempt = attempt("a2", &second, AttemptStatus::Started);
    store.record_dispatch(&record(&second, DispatchStatus::Dispatched), &attempt).unwrap();
    assert!(!store.claim_dispatch(&second.id).unwrap());
}

#[test]
fn attempt_updates_apply_to_the_row_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let ev = event("rust-v1");
    store.record_event(&ev).unwrap();
    let started = store
        .record_dispatch(&record(&ev, DispatchStatus::Dispatched), &attempt("a1", &ev, AttemptStatus::Started))
        .unwrap();
    // A webhook lands while a sync is talking to the network…
    let mut landed = started.clone();
    landed.message = Some("check run completed".into());
    store.save_attempt(&landed).unwrap();
    // …and the sync's change is applied to what is there now, not to its stale copy.
    let next = store
        .update_attempt(&started.id, |current| {
            let mut next = current.clone();
            next.error = Some("from sync".into());
            next
        })
        .unwrap();
    assert_eq!(next.message.as_deref(), Some("check run completed"));
    assert_eq!(next.error.as_deref(), Some("from sync"));
    assert!(store.update_attempt("nope", |current| current.clone()).is_err());
}

fn observed(run_id: &str, status: &str, conflict: Option<&str>) -> RunObservation {
    let report = conflict.map(|subject| {
        serde_json::from_value(serde_json::json!({
            "patch": {"sha": "a".repeat(40), "subject": subject, "author": "me"},
            "applied": [], "remaining": [], "files": [], "culprit": null, "builds_on": null, "survey": []
        }))
        .unwrap()
    });
    RunObservation {
        run_id: run_id.into(),
        status: status.into(),
        flow: Some("fork".into()),
        step: Some("rebase".into()),
        conflict: report.map(Box::new),
        ..RunObservation::default()
    }
}

#[test]
fn runs_keep_their_flow_and_conflict_report_until_a_result_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let ev = event("rust-v1");
    store.record_event(&ev).unwrap();
    let first = store
        .record_dispatch(&record(&ev, DispatchStatus::Dispatched), &attempt("a1", &ev, AttemptStatus::Started))
        .unwrap();
    store.record_runs(&first.id, &ev.id, &[observed("run_a", "needs_intervention", Some("the patch"))], "t1").unwrap();
    // A sync that only sees the run running (a webhook's view) keeps the report…
    let running = RunObservation { flow: None, step: None, ..observed("run_a", "running", None) };
    store.record_runs(&first.id, &ev.id, &[running], "t2").unwrap();
    let runs = store.runs_of_event(&ev.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].flow.as_deref(), runs[0].status.as_str()), (Some("fork"), "running"));
    assert_eq!(runs[0].conflict.as_ref().map(|c| c.patch.subject.as_str()), Some("the patch"));
    // …a result without one clears it.
    store.record_runs(&first.id, &ev.id, &[observed("run_a", "changed", None)], "t3").unwrap();
    assert_eq!(store.runs_of_event(&ev.id).unwrap()[0].conflict, None);
    // A second attempt's runs come first.
    let second = store
        .record_dispatch(&record(&ev, DispatchStatus::Dispatched), &attempt("a2", &ev, AttemptStatus::Started))
        .unwrap();
    store.record_runs(&second.id, &ev.id, &[observed("run_a", "failed", None)], "t4").unwrap();
    let attempts: Vec<String> = store.flow_runs(10).unwrap().into_iter().map(|run| run.attempt_id).collect();
    assert_eq!(attempts, ["a2", "a1"]);
}

#[test]
fn polls_are_counted_per_source_with_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.record_poll("codex", "t1", None).unwrap();
    store.record_poll("codex", "t2", Some("feed https://example/atom returned 500")).unwrap();
    store.record_poll("other", "t2", None).unwrap();
    let polls = store.polls().unwrap();
    assert_eq!(polls.len(), 2);
    assert_eq!((polls[0].runs, polls[0].failures, polls[0].failing()), (2, 1, true));
    store.record_poll("codex", "t3", None).unwrap();
    let codex = store.polls().unwrap().remove(0);
    assert_eq!((codex.runs, codex.failures, codex.failing()), (3, 1, false));
    assert_eq!(codex.last_error.as_deref(), Some("feed https://example/atom returned 500"));
    assert_eq!((codex.last_poll_at.as_str(), codex.last_error_at.as_deref()), ("t3", Some("t2")));
}

/// A database as version 3 wrote it, holding an attempt, is brought to
/// this version in place: nothing lost, the new tables there and used.
#[test]
fn a_version_3_database_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let ev = event("rust-v1");
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        conn.execute_batch(SCHEMA_V3).unwrap();
        conn.execute(
            "INSERT INTO events (id, type, received_at, json) VALUES (?1, ?2, 't', ?3)",
            params![ev.id, ev.kind, serde_json::to_string(&ev).unwrap()],
        )
        .unwrap();
        let old = attempt("a1", &ev, AttemptStatus::NeedsIntervention);
        conn.execute(
            "INSERT INTO attempts (id, event_id, status, updated_at, json) VALUES ('a1', ?1, 'needs_intervention', 't', ?2)",
            params![ev.id, serde_json::to_string(&old).unwrap()],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let version: i64 = store.conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(store.attempts(&Filter::default()).unwrap()[0].id, "a1");
    assert!(store.runs_of_event(&ev.id).unwrap().is_empty(), "no reports until a sync reads the runs");
    store.record_runs("a1", &ev.id, &[observed("run_a", "needs_intervention", Some("p"))], "t").unwrap();
    assert_eq!(store.runs_of_event(&ev.id).unwrap().len(), 1);
    store.record_poll("s", "t", None).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    // Opening again changes nothing.
    assert_eq!(Store::open(dir.path()).unwrap().runs_of_event(&ev.id).unwrap().len(), 1);
}

/// `prune` forgets an event: what its attempts' runs reported goes with
/// them, so the pages' flow rows no longer list a pruned release.
#[test]
fn forgetting_an_event_forgets_its_runs_reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let (old, new) = (event("rust-v1"), event("rust-v2"));
    for (id, ev) in [("a1", &old), ("a2", &new)] {
        store.record_event(ev).unwrap();
        let made =
            store.record_dispatch(&record(ev, DispatchStatus::Dispatched), &attempt(id, ev, AttemptStatus::Started));
        store
            .record_runs(&made.unwrap().id, &ev.id, &[observed("run_a", "needs_intervention", Some("p"))], "t")
            .unwrap();
    }
    store.forget_events(std::slice::from_ref(&old.id)).unwrap();
    assert!(store.runs_of_event(&old.id).unwrap().is_empty());
    let left: Vec<String> = store.flow_runs(10).unwrap().into_iter().map(|run| run.event_id).collect();
    assert_eq!(left, [new.id.as_str()]);
    // A dispatch forgotten (a lookup of a stored result) takes its runs' reports too.
    let (seq, third) = store
        .begin_dispatch(&record(&new, DispatchStatus::Dispatched), &attempt("a3", &new, AttemptStatus::Started))
        .unwrap();
    store.record_runs(&third.id, &new.id, &[observed("run_b", "changed", None)], "t").unwrap();
    store.forget_dispatch(seq, &third.id).unwrap();
    let attempts: Vec<String> = store.runs_of_event(&new.id).unwrap().into_iter().map(|run| run.attempt_id).collect();
    assert_eq!(attempts, ["a2"]);
}
