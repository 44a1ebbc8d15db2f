//! The overview's rows, table-tested over hand-made store contents.

use super::*;
use crate::engine::conflict::Culprit;
use crate::engine::patch::Patch;

fn event(tag: &str) -> FlowEvent {
    FlowEvent::upstream_release("o/r", tag, "t".into())
}

fn attempt(tag: &str, status: AttemptStatus) -> Attempt {
    let event = event(tag);
    serde_json::from_value(serde_json::json!({
        "id": format!("{}:dispatch:1", event.id), "eventId": event.id, "eventType": event.kind,
        "operation": "dispatch", "transport": "local", "status": status, "createdAt": "t", "updatedAt": "t",
        "upstreamTag": tag,
    }))
    .unwrap()
}

pub(crate) fn report(subject: &str) -> ConflictReport {
    let patch = Patch { sha: "a".repeat(40), subject: subject.into(), author: "me".into() };
    ConflictReport {
        patch,
        applied: Vec::new(),
        remaining: Vec::new(),
        files: Vec::new(),
        culprit: Some(Culprit {
            kind: "upstream".into(),
            sha: "b".repeat(40),
            subject: "the cause".into(),
            carried: None,
        }),
        builds_on: None,
        survey: Vec::new(),
    }
}

fn run(tag: &str, flow: &str, status: &str, conflict: Option<&str>) -> RunRecord {
    let attempt = attempt(tag, AttemptStatus::Started);
    RunRecord {
        attempt_id: attempt.id,
        run_id: format!("run_{flow}_{tag}"),
        event_id: attempt.event_id,
        flow: Some(flow.into()),
        step: Some("rebase".into()),
        status: status.into(),
        conflict: conflict.map(report),
    }
}

#[test]
fn rows_per_upstream_and_per_flow() {
    // Newest first, as the store lists them.
    let events = [event("v3"), event("v2"), event("v1")];
    let attempts = [
        attempt("v3", AttemptStatus::NeedsIntervention),
        attempt("v2", AttemptStatus::Failed),
        attempt("v1", AttemptStatus::Changed),
    ];
    let runs = [
        run("v3", "a", "needs_intervention", Some("patch a")),
        run("v3", "b", "changed", None),
        run("v2", "a", "changed", None),
        run("v2", "b", "failed", None),
        run("v1", "a", "changed", None),
        run("v1", "b", "changed", None),
        run("v1", "c", "running", None),
    ];
    let upstream = upstream_rows(&events, &attempts, &runs);
    assert_eq!(upstream.len(), 1);
    let row = &upstream[0];
    assert_eq!((row.repo.as_str(), row.latest.tag()), ("o/r", Some("v3")));
    assert_eq!(row.latest_status, Some(AttemptStatus::NeedsIntervention));
    assert_eq!(row.behind, 2, "v3 and v2 since the last good v1");
    assert_eq!(row.last_good.as_ref().and_then(|a| a.upstream_tag.as_deref()), Some("v1"));
    assert_eq!(row.conflict.as_ref().map(|c| c.patch.subject.as_str()), Some("patch a"));

    let flows = flow_rows(&events, &attempts, &runs);
    let by_name = |name: &str| flows.iter().find(|row| row.flow == name).unwrap();
    assert_eq!(flows.iter().map(|row| row.flow.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    let a = by_name("a");
    assert_eq!((a.latest.tag(), a.latest_status, a.behind), (Some("v3"), AttemptStatus::NeedsIntervention, 1));
    assert_eq!(a.last_good.as_ref().and_then(|x| x.upstream_tag.as_deref()), Some("v2"));
    assert_eq!(a.conflict.as_ref().and_then(|c| c.culprit.as_ref()).map(|c| c.subject.as_str()), Some("the cause"));
    let b = by_name("b");
    assert_eq!((b.latest.tag(), b.latest_status, b.behind), (Some("v3"), AttemptStatus::Changed, 0));
    assert!(b.blocking.is_none() && b.conflict.is_none());
    let c = by_name("c");
    assert_eq!((c.latest.tag(), c.latest_status, c.behind), (Some("v1"), AttemptStatus::Started, 1));
    assert!(c.last_good.is_none());
}
