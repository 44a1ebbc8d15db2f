//! `run` with a workspace backend, the three URL variables, signatures,
//! retry, replay and sync, against a fake backend on 127.0.0.1.

use crate::support;

use serde_json::json;
use support::{patchmoi, Canned, FakeServer};

const EVENT_ID: &str = "patch:upstream.release:openai/codex:rust-v0.131.0";

fn backend() -> FakeServer {
    let server = FakeServer::start();
    server.require_signature("s3cret");
    let accepted = json!({"status": "accepted", "eventId": EVENT_ID, "runIds": ["run_a"], "matched": 1});
    server.route("POST", "/events", Canned::json(202, accepted));
    server.route(
        "POST",
        "/events/patch%3Aupstream.release%3Aopenai%2Fcodex%3Arust-v0.131.0/replay",
        Canned::json(202, json!({"status": "accepted", "runIds": ["run_a_replay"], "matched": 1})),
    );
    server
}

fn run_release(dir: &std::path::Path, env: &[(&str, &str)]) -> support::Output {
    let args = ["run", "codex-release", "--tag", "rust-v0.131.0", "--json", "--data-dir", "state"];
    patchmoi(dir, &args, env)
}

#[test]
fn run_dispatches_signed_events_and_records_them_once() {
    let server = backend();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/events", server.url);
    let env = [("PATCH_WORKSPACE_BACKEND_URL", url.as_str()), ("PATCH_WORKSPACE_BACKEND_SECRET", "s3cret")];
    let first = run_release(tmp.path(), &env);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let out = first.json();
    assert_eq!(out["recorded"], true);
    assert_eq!(out["dispatch"]["status"], "dispatched");
    assert_eq!(out["dispatch"]["transport"], "workspace-http");
    assert_eq!(out["attempt"]["status"], "started");
    assert_eq!(out["attempt"]["workspaceRunIds"], json!(["run_a"]));
    let posts = server.seen_at("POST", "/events");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].status, 202, "the fake backend verified the signature");
    let body: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(body["id"], EVENT_ID);
    assert!(!posts[0].body.contains('\n'), "compact JSON");
    assert!(!first.stderr.contains("s3cret") && !first.stdout.contains("s3cret"));

    let second = run_release(tmp.path(), &env);
    assert_eq!(second.json()["recorded"], false, "a second arrival is a duplicate");
    let events = patchmoi(tmp.path(), &["events", "--json", "--data-dir", "state"], &[]).json();
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    let attempts = patchmoi(tmp.path(), &["attempts", "--json", "--data-dir", "state", "--status", "started"], &[]);
    assert_eq!(attempts.json()["attempts"].as_array().unwrap().len(), 2);

    // A wrong secret: the backend refuses, the dispatch is recorded as failed, exit 1.
    let bad = run_release(
        tmp.path(),
        &[("PATCH_WORKSPACE_BACKEND_URL", url.as_str()), ("PATCH_WORKSPACE_BACKEND_SECRET", "nope")],
    );
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert_eq!(bad.json()["dispatch"]["httpStatus"], 401);
    assert_eq!(bad.json()["attempt"]["status"], "failed");
    let failed = patchmoi(tmp.path(), &["dispatches", "--json", "--data-dir", "state", "--status", "failed"], &[]);
    assert_eq!(failed.json()["dispatches"].as_array().unwrap().len(), 1);
}

#[test]
fn all_three_url_variables_normalise_to_events() {
    let server = backend();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("PATCH_WORKSPACE_BACKEND_URL", server.url.clone()),
        ("PATCH_FLOW_BACKEND_URL", format!("{}/", server.url)),
        ("PATCH_FLOW_DISPATCH_URL", format!("{}/events", server.url)),
    ];
    for (name, url) in &cases {
        server.clear();
        let run = run_release(tmp.path(), &[(name, url.as_str()), ("PATCH_FLOW_DISPATCH_SECRET", "s3cret")]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{name}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str(), seen[0].status),
            ("POST", "/events", 202),
            "{name}"
        );
    }
}

#[test]
fn replay_retry_and_sync_without_regressing() {
    let server = backend();
    let tmp = tempfile::tempdir().unwrap();
    let env = [("PATCH_WORKSPACE_BACKEND_URL", server.url.as_str()), ("PATCH_WORKSPACE_BACKEND_SECRET", "s3cret")];
    let first = run_release(tmp.path(), &env).json();
    let attempt_id = first["attempt"]["id"].as_str().unwrap().to_string();

    let replay = patchmoi(tmp.path(), &["replay", EVENT_ID, "--json", "--data-dir", "state"], &env);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(replay.json()["attempt"]["operation"], "replay");
    let replays = server.seen_at("POST", "/events/patch%3A");
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].body, r#"{"wait":false}"#);
    assert_eq!(replays[0].status, 202);
    let retry = patchmoi(tmp.path(), &["retry", EVENT_ID, "--json", "--data-dir", "state"], &env);
    assert_eq!(retry.json()["attempt"]["operation"], "retry");
    let missing = patchmoi(tmp.path(), &["retry", "nope", "--data-dir", "state"], &env);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("flow event not found: nope"), "{}", missing.stderr);

    let result = json!({"status": "changed", "message": "rebased onto rust-v0.131.0",
        "artifacts": {"candidateRefs": [{"kind": "branch", "ref": "refs/heads/patchmoi/rust-v0.131.0", "sha": "abc"}]}});
    server.route(
        "GET",
        "/runs/run_a",
        Canned::json(200, json!({"run": {"id": "run_a", "status": "completed", "resultJson": result.to_string()}})),
    );
    // Any unique prefix works: the dispatch attempt's id ends with its own timestamp.
    let prefix = &attempt_id[..attempt_id.len() - 3];
    let synced = patchmoi(tmp.path(), &["sync", prefix, "--json", "--data-dir", "state"], &env);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    let attempt = &synced.json()["attempt"];
    assert_eq!(attempt["status"], "changed");
    assert_eq!(attempt["candidateRefs"][0]["ref"], "refs/heads/patchmoi/rust-v0.131.0");
    assert_eq!(attempt["message"], "rebased onto rust-v0.131.0");

    server.route("GET", "/runs/run_a", Canned::json(200, json!({"run": {"id": "run_a", "status": "running"}})));
    let again = patchmoi(tmp.path(), &["sync", &attempt_id, "--json", "--data-dir", "state"], &env);
    assert_eq!(again.json()["attempt"]["status"], "changed", "sync never goes back to started");

    let ambiguous = patchmoi(tmp.path(), &["sync", "patch:", "--data-dir", "state"], &env);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
    assert!(ambiguous.stderr.contains("matches several attempts"), "{}", ambiguous.stderr);

    server.route("GET", "/runs/run_a", Canned::json(500, json!({})));
    let broken = patchmoi(tmp.path(), &["sync", &attempt_id, "--data-dir", "state"], &env);
    assert_eq!(broken.code, 1);
    assert!(broken.stderr.contains("failed with 500"), "{}", broken.stderr);

    let status = patchmoi(tmp.path(), &["status", "--data-dir", "state"], &[]);
    assert!(status.stdout.contains("attempt statuses: changed=1 started=2"), "{}", status.stdout);
}

#[test]
fn bad_filters_exit_2_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let run = patchmoi(tmp.path(), &["attempts", "--status", "done", "--data-dir", "state"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--status must be one of started"), "{}", run.stderr);
    let run = patchmoi(tmp.path(), &["dispatches", "--limit", "0", "--data-dir", "state"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--limit"), "{}", run.stderr);
}
