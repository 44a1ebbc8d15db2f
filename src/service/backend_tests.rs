//! Unit tests for URL normalisation, resolution order, signing and run reading.

use super::*;
use serde_json::json;

#[test]
fn signature_vector() {
    assert_eq!(sign("secret", b"payload"), "b82fcb791acec57859b989b430a826488ce2e479fdf92326bd0a2e8375a42ba4");
    let header = "sha256=b82fcb791acec57859b989b430a826488ce2e479fdf92326bd0a2e8375a42ba4";
    assert!(verify("secret", b"payload", Some(header)));
    assert!(!verify("secret", b"payload\n", Some(header)));
    assert!(!verify("other", b"payload", Some(header)));
    assert!(!verify("secret", b"payload", None));
}

#[test]
fn events_urls_normalise() {
    for url in [
        "http://h:3586",
        "http://h:3586/",
        "http://h:3586/events",
        "http://h:3586/events/",
        "http://h:3586/flow-events",
    ] {
        assert_eq!(Backend::new(url, None).events_url(), "http://h:3586/events", "{url}");
    }
    assert_eq!(
        Backend::new("https://flow.example/base/", None).replay_url("patch:upstream.release:o/r:v1"),
        "https://flow.example/base/events/patch%3Aupstream.release%3Ao%2Fr%3Av1/replay"
    );
}

#[test]
fn backend_runs_read_as_observations() {
    let run = json!({"id": "run-1", "status": "completed", "completedAt": "t9",
        "resultJson": "{\"status\":\"changed\",\"message\":\"rebased\",\"artifacts\":{\"candidateRefs\":[{\"kind\":\"branch\",\"ref\":\"refs/heads/patchmoi/v2\",\"sha\":\"abc\"}],\"candidateRef\":\"refs/heads/x\"}}"});
    let seen = observe_run("run-1", &run);
    assert_eq!(seen.status, "changed");
    assert_eq!(seen.message.as_deref(), Some("rebased"));
    assert_eq!(seen.candidate_refs.len(), 2);
    assert_eq!(seen.completed_at.as_deref(), Some("t9"));
    let nested =
        json!({"status": "completed", "result": {"flow": "f", "result": {"status": "blocked", "message": "no tag"}}});
    let seen = observe_run("run-2", &nested);
    assert_eq!((seen.status.as_str(), seen.error.as_deref()), ("blocked", Some("no tag")));
    assert_eq!(observe_run("run-3", &json!({"status": "running"})).status, "running");
}

#[test]
fn a_backend_run_names_its_flow_and_carries_its_conflict_report() {
    let report = json!({
        "patch": {"sha": "abc", "subject": "Our patch", "author": "me"}, "applied": [], "remaining": [],
        "files": [{"path": "a.txt", "kind": "contents", "upstream_commits": [],
                   "hunks": [{"start_line": 2, "end_line": 2, "upstream": "u\n", "patch": "p\n", "base": "b\n"}]}],
        "culprit": {"kind": "upstream", "sha": "def", "subject": "Upstream rewrite"}, "builds_on": null, "survey": []
    });
    // As patchmoi's own state file shows a run (RunView).
    let run = json!({"id": "run_1", "flowName": "fork", "stepName": "rebase", "status": "needs_intervention",
        "resultPayload": {"status": "needs_intervention", "message": "conflict", "artifacts": {"conflict": report}}});
    let seen = observe_run("run_1", &run);
    assert_eq!((seen.flow.as_deref(), seen.step.as_deref()), (Some("fork"), Some("rebase")));
    let conflict = seen.conflict.expect("the report");
    assert_eq!(conflict.files[0].hunks[0].patch, "p\n");
    assert_eq!(conflict.culprit.unwrap().subject, "Upstream rewrite");
    // Anything else under `conflict` is not taken for a report.
    let odd = json!({"resultPayload": {"status": "failed", "artifacts": {"conflict": "yes"}}});
    assert!(observe_run("run_2", &odd).conflict.is_none());
}
