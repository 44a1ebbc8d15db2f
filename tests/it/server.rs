//! `patchmoi serve` as a child process on an ephemeral port: every route
//! with and without the admin token, JSON errors, webhooks, and a kill -9
//! mid-write leaving a consistent database.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use patchmoi::github::transport::{send, Request};
use serde_json::{json, Value};
use support::{patchmoi, service_command, Canned, FakeServer};

pub(crate) const TOKEN: &str = "admin-t0ken";
pub(crate) const HOOK_SECRET: &str = "hook-s3cret";
const EVENT_ID: &str = "patch:upstream.release:openai/codex:rust-v0.131.0";
pub(crate) const ENCODED: &str = "patch%3Aupstream.release%3Aopenai%2Fcodex%3Arust-v0.131.0";

pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// What it logged before it listened.
    pub(crate) log: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` on port 0 and reads the bound address from its log.
pub(crate) fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    let mut env = env.to_vec();
    env.push(("PORT", "0"));
    let mut cmd = service_command(dir, &["serve", "--data-dir", "state"], &env);
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let url = loop {
        let line = lines.next().expect("serve logs its address").unwrap();
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.trim().to_string();
        }
        log.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Served { child, url, log }
}

/// A request; returns the status and the JSON body (Null when not JSON).
pub(crate) fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
    let mut request = match body {
        Some(body) => Request { body: Some(body), ..Request::get(url) },
        None => Request::get(url),
    };
    request.method = method;
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = send(&request).unwrap_or_else(|err| panic!("{method} {url}: {err:#}"));
    (response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null))
}

pub(crate) fn seeded(dir: &Path, backend: &FakeServer) {
    let run = patchmoi(
        dir,
        &["run", "codex-release", "--tag", "rust-v0.131.0", "--json", "--data-dir", "state"],
        &[("PATCH_WORKSPACE_BACKEND_URL", backend.url.as_str())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

pub(crate) fn fake_backend() -> FakeServer {
    let backend = FakeServer::start();
    backend.route(
        "POST",
        "/events",
        Canned::json(202, json!({"status": "accepted", "runIds": ["run_a"], "matched": 1})),
    );
    backend.route("POST", &format!("/events/{ENCODED}/replay"), Canned::json(202, json!({"runIds": ["run_a_replay"]})));
    backend.route(
        "GET",
        "/runs/run_a",
        Canned::json(
            200,
            json!({"run": {"id": "run_a", "status": "completed",
        "resultJson": "{\"status\":\"changed\",\"message\":\"ok\"}"}}),
        ),
    );
    backend
}

#[test]
fn every_route_needs_the_token_and_answers_json() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let env = [("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WORKSPACE_BACKEND_URL", backend.url.as_str())];
    let server = serve(tmp.path(), &env);
    let url = |path: &str| format!("{}{path}", server.url);
    let bearer = format!("Bearer {TOKEN}");
    let routes: Vec<(&str, String, u16)> = vec![
        ("GET", "/flow-events".into(), 200),
        ("GET", format!("/flow-events/{ENCODED}"), 200),
        ("POST", format!("/flow-events/{ENCODED}/retry"), 202),
        ("POST", format!("/flow-events/{ENCODED}/replay"), 202),
        ("GET", "/workspace-dispatches".into(), 200),
        ("GET", "/flow-dispatches?status=dispatched".into(), 200),
        ("GET", "/maintenance-attempts".into(), 200),
        // Any unique prefix of an attempt id works.
        ("GET", format!("/maintenance-attempts/{ENCODED}%3Adispatch"), 200),
        ("POST", format!("/maintenance-attempts/{ENCODED}%3Adispatch/sync"), 202),
    ];
    for (method, path, want) in &routes {
        let (status, body) = call(method, &url(path), &[], None);
        assert_eq!((status, body), (401, json!({"error": "unauthorized"})), "{method} {path} without a token");
        let (status, _) = call(method, &url(path), &[("authorization", "Bearer wrong")], None);
        assert_eq!(status, 401, "{method} {path} with a wrong token");
        let (status, body) = call(method, &url(path), &[("authorization", &bearer)], None);
        assert_eq!(status, *want, "{method} {path}: {body}");
        let (status, _) = call(method, &url(path), &[("x-patch-admin-token", TOKEN)], None);
        assert!(status == *want || *want == 202, "{method} {path} with X-Patch-Admin-Token: {status}");
    }
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(call("GET", &url("/healthz"), &[], None), (200, json!({"ok": true})));

    let (_, body) = call("GET", &url(&format!("/flow-events/{ENCODED}")), &auth, None);
    assert_eq!(body["event"]["id"], EVENT_ID);
    let (_, body) = call("POST", &url(&format!("/flow-events/{ENCODED}/replay")), &auth, None);
    assert_eq!(body["attempt"]["operation"], "replay");
    assert_eq!(body["dispatch"]["status"], "dispatched");
    assert!(body["event"].is_object());
    let (_, changed) = call("GET", &url("/maintenance-attempts?status=changed"), &auth, None);
    assert_eq!(changed["attempts"].as_array().unwrap().len(), 1, "the synced dispatch attempt: {changed}");
    assert_eq!(changed["attempts"][0]["operation"], "dispatch");
    assert_eq!(changed["attempts"][0]["message"], "ok");
    let (status, body) = call("GET", &url(&format!("/maintenance-attempts/{ENCODED}")), &auth, None);
    assert_eq!(status, 400, "an ambiguous prefix names the attempts: {body}");

    let errors: Vec<(&str, &str, u16, &str)> = vec![
        ("GET", "/maintenance-attempts?status=done", 400, "status must be one of"),
        ("GET", "/workspace-dispatches?status=done", 400, "status must be one of"),
        ("GET", "/flow-events?limit=abc", 400, "limit must be"),
        ("GET", "/flow-events/nope", 404, "flow_event_not_found"),
        ("GET", "/flow-events/%FF", 400, "the id in the path is not valid"),
        ("GET", "/maintenance-attempts/nope", 404, "maintenance attempt not found"),
        ("POST", "/flow-events/nope/retry", 404, "flow event not found"),
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/flow-events", 405, "method_not_allowed"),
        ("GET", "/flow-events?colour=red&limit=2", 400, "unknown query parameter(s): colour"),
        ("GET", "/maintenance-attempts?eventid=x", 400, "eventid (this route takes: eventId, status, limit)"),
        ("POST", "/flow-events/nope/retry?force=1", 400, "force"),
    ];
    for (method, path, want, text) in errors {
        let (status, body) = call(method, &url(path), &auth, None);
        assert_eq!(status, want, "{method} {path}: {body}");
        assert!(body["error"].as_str().unwrap_or_default().contains(text), "{method} {path}: {body}");
    }
    backend.route("POST", "/events", Canned::json(500, json!({})));
    let (status, body) = call("POST", &url(&format!("/flow-events/{ENCODED}/retry")), &auth, None);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["dispatch"]["status"], "failed");
}

#[test]
fn webhooks_need_a_valid_signature_and_update_attempts() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let mut payload: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks/check_run.completed.json")).unwrap();
    payload["check_run"]["external_id"] = json!("run_a");
    let body = payload.to_string();
    let signature = format!("sha256={}", patchmoi::service::backend::sign(HOOK_SECRET, body.as_bytes()));
    let hook = |server: &Served, signature: &str| {
        call(
            "POST",
            &format!("{}/webhooks/github", server.url),
            &[
                ("x-github-event", "check_run"),
                ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("x-hub-signature-256", signature),
                ("content-type", "application/json"),
            ],
            Some(&body),
        )
    };
    {
        let closed = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
        let (status, answer) = hook(&closed, &signature);
        assert_eq!(status, 403, "refused while PATCH_WEBHOOK_SECRET is unset: {answer}");
    }
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WEBHOOK_SECRET", HOOK_SECRET)]);
    let (status, answer) = hook(&server, "sha256=0000");
    assert_eq!((status, answer), (401, json!({"error": "invalid signature"})));
    let (status, answer) = hook(&server, &signature);
    assert_eq!(status, 202, "no admin token needed for webhooks: {answer}");
    assert_eq!(answer["matched"], 1);
    assert_eq!(answer["attempt"]["status"], "failed", "the example's conclusion is failure");
    assert_eq!(answer["attempt"]["checkRuns"][0]["name"], "Octocoders-linter");
}

#[test]
fn a_killed_server_leaves_a_consistent_database() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let mut server = serve(tmp.path(), &[("PATCH_WORKSPACE_BACKEND_URL", backend.url.as_str())]);
    let retry = format!("{}/flow-events/{ENCODED}/retry", server.url);
    let landed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = landed.clone();
    let writer = std::thread::spawn(move || {
        for _ in 0..500 {
            if !send(&Request::post(&retry, "")).is_ok_and(|answer| answer.is_success()) {
                break;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // Kill while retries are still being written, after a few landed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while landed.load(std::sync::atomic::Ordering::SeqCst) < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    writer.join().unwrap();
    let store = patchmoi::service::store::Store::open(&tmp.path().join("state")).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let all = patchmoi::service::store::Filter { limit: Some(500), ..Default::default() };
    let dispatches = store.dispatches(&all).unwrap();
    let attempts = store.attempts(&all).unwrap();
    assert!(dispatches.len() > 1, "some retries landed before the kill");
    assert_eq!(dispatches.len(), attempts.len(), "every dispatch record has its attempt");
}

#[test]
fn serve_polls_the_feeds_in_feed_sources_path() {
    let feeds = FakeServer::start();
    feeds.route("GET", "/codex.atom", Canned::xml(include_str!("../fixtures/feeds/codex-releases.atom")));
    let tmp = tempfile::tempdir().unwrap();
    let sources = json!({"sources": [{"id": "codex", "provider": "gitea", "event": "release",
        "url": format!("{}/codex.atom", feeds.url), "primeOnly": false, "target": {"mode": "notify_only"},
        "repo": {"owner": "openai", "name": "codex", "fullName": "openai/codex", "webUrl": "https://github.com/openai/codex"}}]});
    let path = tmp.path().join("feed-sources.json");
    std::fs::write(&path, sources.to_string()).unwrap();
    let server = serve(tmp.path(), &[("FEED_SOURCES_PATH", path.to_str().unwrap())]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let (_, body) = call("GET", &format!("{}/flow-events", server.url), &[], None);
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.len() == 2 || std::time::Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["patch:upstream.release:openai/codex:rust-v0.131.0", "patch:upstream.release:openai/codex:rust-v0.130.0"]
    );
}

#[test]
fn a_bad_port_or_sources_file_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = patchmoi(tmp.path(), &["serve", "--data-dir", "state"], &[("PORT", "http")]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("PORT must be a port number"), "{}", run.stderr);
    std::fs::write(tmp.path().join("bad.json"), r#"{"sources": [{"id": 1}]}"#).unwrap();
    let run =
        patchmoi(tmp.path(), &["serve", "--data-dir", "state"], &[("PORT", "0"), ("FEED_SOURCES_PATH", "bad.json")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bad.json") && run.stderr.contains("sources[0].id"), "{}", run.stderr);
}
