//! `patchmoi serve` under hostile or unlucky conditions: no admin token on
//! a public address, slow and greedy clients, replayed and out-of-order
//! webhooks, clients that leave mid-retry, a writer holding the lock, a
//! SIGTERM mid-request, and a database from a newer patchmoi.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{call, fake_backend, seeded, serve, ENCODED, HOOK_SECRET, TOKEN};
use crate::support::patchmoi;

/// A workspace backend that takes `delay` to accept each event.
fn slow_backend(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body its Content-Length announces.
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string)
                            })
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                std::thread::sleep(delay);
                let body = json!({"status": "accepted", "runIds": ["run_slow"], "matched": 1}).to_string();
                let answer = format!(
                    "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    url
}

fn attempts(url: &str) -> Vec<Value> {
    let (status, body) =
        call("GET", &format!("{url}/maintenance-attempts?limit=500"), &[("x-patch-admin-token", TOKEN)], None);
    assert_eq!(status, 200, "{body}");
    body["attempts"].as_array().cloned().unwrap_or_default()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raw bytes to the server; what it answers until it closes (or 5 s pass).
fn raw(url: &str, request: &[u8], pause_after: Option<Duration>) -> (String, Duration) {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    stream.write_all(request).unwrap();
    if let Some(pause) = pause_after {
        std::thread::sleep(pause);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[test]
fn without_a_token_serve_stays_on_loopback_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    for host in ["0.0.0.0", "192.0.2.7", "::"] {
        let run = patchmoi(tmp.path(), &["serve", "--data-dir", "state"], &[("HOST", host), ("PORT", "0")]);
        assert_eq!(run.code, 2, "HOST={host}: {}", run.stderr);
        assert!(run.stderr.contains("PATCH_ADMIN_TOKEN is not set") && run.stderr.contains(host), "{}", run.stderr);
    }
    let server = serve(tmp.path(), &[]);
    let log = server.log.join("\n");
    assert!(log.contains("WARN") && log.contains("admin API is open"), "a warning at start: {log}");
    let (status, _) = call("GET", &format!("{}/flow-events", server.url), &[], None);
    assert_eq!(status, 200, "open on loopback");
    let run = patchmoi(
        tmp.path(),
        &["serve", "--data-dir", "state"],
        &[("HOST", "0.0.0.0"), ("PORT", "0"), ("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_HTTP_MAX_BODY", "none")],
    );
    assert_eq!(run.code, 2, "with a token it gets as far as reading its limits: {}", run.stderr);
    assert!(run.stderr.contains("PATCH_HTTP_MAX_BODY"), "{}", run.stderr);
}

#[test]
fn slow_and_greedy_clients_are_cut_off_with_json() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("PATCH_ADMIN_TOKEN", TOKEN),
        ("PATCH_WEBHOOK_SECRET", HOOK_SECRET),
        ("PATCH_HTTP_HEADER_TIMEOUT", "1s"),
        ("PATCH_HTTP_BODY_TIMEOUT", "1s"),
        ("PATCH_HTTP_MAX_BODY", "1000"),
        ("PATCH_HTTP_MAX_CONNECTIONS", "2"),
    ];
    let server = serve(tmp.path(), &env);
    // Headers that never end: closed after the header timeout.
    let (answer, took) = raw(&server.url, b"GET /healthz HTTP/1.1\r\nhost: x\r\n", None);
    assert!(took < Duration::from_secs(4), "closed after ~1s, not left open: {took:?} {answer:?}");
    // An idle kept-alive connection: closed too.
    let (answer, took) = raw(&server.url, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", None);
    assert!(answer.starts_with("HTTP/1.1 200") && took < Duration::from_secs(4), "{took:?} {answer:?}");
    // A body that stops coming: 408, JSON.
    let (answer, _) = raw(
        &server.url,
        b"POST /webhooks/github HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{\"a\"",
        None,
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"error":"the body did not arrive within 1s"}"#), "{answer}");
    // Too big, announced or streamed: 413, JSON.
    let big = "x".repeat(2000);
    let hook = format!("{}/webhooks/github", server.url);
    let (status, body) = call("POST", &hook, &[("content-type", "application/json")], Some(&big));
    assert_eq!((status, body), (413, json!({"error": "the body is larger than 1000 bytes"})));
    let chunked = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let (answer, _) = raw(&server.url, chunked.as_bytes(), None);
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("larger than 1000 bytes"), "{answer}");
    // 415 and a rejection of axum's own, as JSON.
    let signature = format!("sha256={}", patchmoi::service::backend::sign(HOOK_SECRET, b"a=1"));
    let (status, body) = call(
        "POST",
        &hook,
        &[
            ("x-github-event", "check_run"),
            ("x-hub-signature-256", &signature),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some("a=1"),
    );
    assert_eq!(status, 415, "{body}");
    assert!(body["error"].as_str().unwrap().contains("application/json"), "{body}");
    let (answer, _) = raw(
        &server.url,
        b"GET /flow-events/a%2 HTTP/1.1\r\nhost: x\r\nx-patch-admin-token: admin-t0ken\r\nconnection: close\r\n\r\n",
        None,
    );
    assert!(answer.contains("content-type: application/json"), "{answer}");
    // Two connections at most: a third waits until one is closed.
    let idle: Vec<TcpStream> =
        (0..2).map(|_| TcpStream::connect(server.url.trim_start_matches("http://")).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    // A fresh connection (a pooled client could reuse one it holds).
    let (answer, took) = raw(&server.url, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", None);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took > Duration::from_millis(500), "queued behind the cap until an idle one timed out: {took:?}");
    drop(idle);
}

fn check_run_hook(server_url: &str, delivery: &str, payload: &Value) -> (u16, Value) {
    let body = payload.to_string();
    let signature = format!("sha256={}", patchmoi::service::backend::sign(HOOK_SECRET, body.as_bytes()));
    call(
        "POST",
        &format!("{server_url}/webhooks/github"),
        &[
            ("x-github-event", "check_run"),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &signature),
            ("content-type", "application/json"),
        ],
        Some(&body),
    )
}

#[test]
fn replayed_and_late_webhooks_change_nothing() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WEBHOOK_SECRET", HOOK_SECRET)]);
    let mut failed: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks/check_run.completed.json")).unwrap();
    failed["check_run"]["external_id"] = json!("run_a");
    let (status, answer) = check_run_hook(&server.url, "d-1", &failed);
    assert_eq!((status, &answer["attempt"]["status"]), (202, &json!("failed")), "{answer}");
    let before = attempts(&server.url);

    // GitHub's "Redeliver" button sends the same delivery id.
    let (status, answer) = check_run_hook(&server.url, "d-1", &failed);
    assert_eq!((status, answer), (200, json!({"duplicate": true})));
    assert_eq!(attempts(&server.url), before, "a replay changes nothing");

    // The same check run as it was before it failed, delivered late.
    let mut earlier = failed.clone();
    earlier["check_run"]["conclusion"] = json!("success");
    earlier["check_run"]["completed_at"] = json!("2019-05-15T15:20:00Z");
    let (status, answer) = check_run_hook(&server.url, "d-0", &earlier);
    assert_eq!((status, answer), (200, json!({"stale": true, "matched": 0})));
    assert_eq!(attempts(&server.url), before, "a late delivery never moves the attempt backwards");

    // A re-run that passed later does move it.
    let mut later = earlier.clone();
    later["check_run"]["completed_at"] = json!("2030-01-01T00:00:00Z");
    let (status, answer) = check_run_hook(&server.url, "d-2", &later);
    assert_eq!((status, &answer["attempt"]["checkRuns"][0]["status"]), (202, &json!("success")), "{answer}");
}

#[test]
fn a_webhook_finds_attempts_older_than_the_newest_500() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    {
        let store = patchmoi::service::store::Store::open(&tmp.path().join("state")).unwrap();
        let all = patchmoi::service::store::Filter { limit: Some(500), ..Default::default() };
        let seeded = store.attempts(&all).unwrap().remove(0);
        for n in 0..520 {
            let mut other = seeded.clone();
            other.id = format!("other-{n}");
            other.event_id = format!("patch:upstream.release:other/repo:v{n}");
            other.upstream_tag = Some(format!("v{n}"));
            other.workspace_run_ids = vec![format!("run_other_{n}")];
            other.candidate_refs.clear();
            store.save_attempt(&other).unwrap();
        }
    }
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WEBHOOK_SECRET", HOOK_SECRET)]);
    let mut payload: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks/check_run.completed.json")).unwrap();
    payload["check_run"]["external_id"] = json!("run_a");
    let (status, answer) = check_run_hook(&server.url, "d-old", &payload);
    assert_eq!(status, 202);
    assert_eq!(answer["matched"], 1, "the seeded attempt is 521st newest: {answer}");
    assert!(answer["attempt"]["id"].as_str().unwrap().starts_with("patch:upstream.release:openai/codex"), "{answer}");
}

#[test]
fn reads_do_not_wait_for_a_writer() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let writer = rusqlite::Connection::open(tmp.path().join("state/patchmoi.sqlite3")).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let (status, body) =
        call("GET", &format!("{}/flow-events/{ENCODED}", server.url), &[("x-patch-admin-token", TOKEN)], None);
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "a read waited for the write lock: {:?}", started.elapsed());
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_slow_retry_times_out_but_is_recorded_even_when_the_client_leaves() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let slow = slow_backend(Duration::from_millis(2500));
    let env = [
        ("PATCH_ADMIN_TOKEN", TOKEN),
        ("PATCH_WORKSPACE_BACKEND_URL", slow.as_str()),
        ("PATCH_HTTP_REQUEST_TIMEOUT", "1s"),
    ];
    let server = serve(tmp.path(), &env);
    let before = attempts(&server.url).len();
    let retry = format!("{}/flow-events/{ENCODED}/retry", server.url);
    let (status, body) = call("POST", &retry, &[("x-patch-admin-token", TOKEN)], None);
    assert_eq!(status, 504, "{body}");
    assert!(body["error"].as_str().unwrap().contains("its result is recorded"), "{body}");
    // A client that hangs up right after asking.
    let request = format!(
        "POST /flow-events/{ENCODED}/retry HTTP/1.1\r\nhost: x\r\nx-patch-admin-token: {TOKEN}\r\ncontent-length: 0\r\n\r\n"
    );
    let mut stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    wait_for("both retries recorded", || {
        let now = attempts(&server.url);
        now.len() == before + 2 && now.iter().take(2).all(|attempt| attempt["workspaceRunIds"] == json!(["run_slow"]))
    });
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_stops() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let slow = slow_backend(Duration::from_millis(1500));
    let mut server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WORKSPACE_BACKEND_URL", slow.as_str())]);
    let retry = format!("{}/flow-events/{ENCODED}/retry", server.url);
    let asked = std::thread::spawn(move || call("POST", &retry, &[("x-patch-admin-token", TOKEN)], None));
    std::thread::sleep(Duration::from_millis(400));
    let pid = server.child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (status, body) = asked.join().unwrap();
    assert_eq!(status, 202, "the retry in flight finished: {body}");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "a clean stop: {exit:?}");
    assert!(TcpStream::connect(server.url.trim_start_matches("http://")).is_err(), "no longer accepting");
    let store = patchmoi::service::store::Store::open(&tmp.path().join("state")).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(
        !tmp.path().join("state/patchmoi.sqlite3-wal").exists()
            || std::fs::metadata(tmp.path().join("state/patchmoi.sqlite3-wal")).unwrap().len() == 0
    );
}

#[test]
fn a_database_from_a_newer_patchmoi_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    patchmoi::service::store::Store::open(&tmp.path().join("state")).unwrap();
    let db = rusqlite::Connection::open(tmp.path().join("state/patchmoi.sqlite3")).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let run = patchmoi(tmp.path(), &["status", "--data-dir", "state"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("schema version 99, written by a newer patchmoi"), "{}", run.stderr);
    assert!(run.stderr.contains("upgrade patchmoi"), "{}", run.stderr);
}

#[test]
fn a_version_2_database_is_migrated_and_its_attempts_found_by_webhooks() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    // Back to what version 2 had: no delivery table, no key index (nor
    // version 4's run reports and poll counts).
    let db = rusqlite::Connection::open(tmp.path().join("state/patchmoi.sqlite3")).unwrap();
    db.execute_batch(
        "DROP TABLE webhook_deliveries; DROP TABLE attempt_keys; DROP TABLE run_reports; DROP TABLE feed_polls;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(db);
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WEBHOOK_SECRET", HOOK_SECRET)]);
    let mut payload: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks/check_run.completed.json")).unwrap();
    payload["check_run"]["external_id"] = json!("run_a");
    let (status, answer) = check_run_hook(&server.url, "d-migrated", &payload);
    assert_eq!((status, &answer["matched"]), (202, &json!(1)), "{answer}");
    let db = rusqlite::Connection::open(tmp.path().join("state/patchmoi.sqlite3")).unwrap();
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, 4);
}
