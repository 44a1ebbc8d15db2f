//! `watch --once` against local servers: the fake GitHub (releases with
//! ETags, repository_dispatch with the fork-mark skip, faults, a renamed
//! repository; every request checked against GitHub's OpenAPI description),
//! an Atom feed and a failing source. Each `watch --once` is a new process,
//! so every second poll is also a restart.

use crate::common::Repo;
use crate::fake_github::{FakeGitHub, Fault};
use crate::support;

use std::path::Path;

use serde_json::{json, Value};
use support::{patchmoi, Canned, FakeServer};

/// The fake GitHub for `token`, answering public reads without one; the
/// fork's branches live in `<dir>/fork.git`, one commit on `main`.
fn fake_github(token: &str, dir: &Path) -> (FakeGitHub, Repo) {
    let fork = Repo::init(&dir.join("fork"));
    fork.commit("Fork", &[("README.md", "the fork\n")]);
    let github = FakeGitHub::start(token, fork.dir.clone());
    github.allow_public_reads();
    (github, fork)
}

/// Every request the fake GitHub saw was an operation of the OpenAPI
/// description, with a body it accepts.
fn assert_valid(github: &FakeGitHub) {
    let violations = github.state().violations.clone();
    assert!(violations.is_empty(), "requests GitHub's OpenAPI description refuses: {violations:?}");
}

fn repo(full: &str) -> Value {
    let (owner, name) = full.split_once('/').unwrap();
    json!({"owner": owner, "name": name, "fullName": full, "webUrl": format!("https://github.com/{full}")})
}

fn write_sources(dir: &Path, sources: Value) -> String {
    let path = dir.join("feed-sources.json");
    std::fs::write(&path, json!({ "sources": sources }).to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn release(tag: &str, draft: bool, prerelease: bool) -> Value {
    json!({"tag_name": tag, "name": tag.trim_start_matches("rust-v"), "draft": draft, "prerelease": prerelease,
           "html_url": format!("https://github.com/openai/codex/releases/tag/{tag}")})
}

fn watch_once(dir: &Path, sources: &str, env: &[(&str, &str)]) -> support::Output {
    patchmoi(dir, &["watch", "--once", "--json", "--sources", sources, "--data-dir", "state"], env)
}

fn events(dir: &Path) -> Vec<String> {
    let out = patchmoi(dir, &["events", "--json", "--data-dir", "state"], &[]).json();
    out["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn github_releases_prime_then_emit_each_release_once_with_etags() {
    let tmp = tempfile::tempdir().unwrap();
    let (github, _fork) = fake_github("tok", tmp.path());
    let backend = FakeServer::start();
    backend.route("POST", "/events", Canned::json(202, json!({"status": "accepted", "runIds": ["r1"], "matched": 1})));
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"),
                "target": {"mode": "workspace_flow", "eventType": "upstream.release", "workspaceUrlEnv": "MY_BACKEND"}}]),
    );
    let env = [("GITHUB_API_URL", github.url.as_str()), ("MY_BACKEND", backend.url.as_str()), ("GITHUB_TOKEN", "tok")];
    github.set_releases("openai/codex", vec![release("rust-v0.130.0", false, false)]);

    let first = watch_once(tmp.path(), &sources, &env);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["sources"][0]["primed"], true);
    assert!(events(tmp.path()).is_empty(), "priming emits nothing");
    assert_eq!(github.seen()[0].headers.get("authorization").map(String::as_str), Some("Bearer tok"));

    let unchanged = watch_once(tmp.path(), &sources, &env);
    assert_eq!(unchanged.json()["sources"][0]["unchanged"], true);
    let last = github.seen().pop().unwrap();
    assert_eq!((last.headers.get("if-none-match").map(String::as_str), last.status), (Some("\"e1\""), 304));

    github.set_releases(
        "openai/codex",
        vec![
            release("rust-v0.132.0-alpha.1", false, true),
            release("rust-v0.133.0", true, false),
            release("rust-v0.131.0", false, false),
            release("rust-v0.130.0", false, false),
        ],
    );
    let second = watch_once(tmp.path(), &sources, &env);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(events(tmp.path()), ["patch:upstream.release:openai/codex:rust-v0.131.0"], "no draft, no prerelease");
    assert_eq!(backend.seen_at("POST", "/events").len(), 1);
    let third = watch_once(tmp.path(), &sources, &env);
    assert_eq!(third.json()["sources"][0]["unchanged"], true);
    assert_eq!(backend.seen_at("POST", "/events").len(), 1, "emitted once and only once");
    let attempts = patchmoi(tmp.path(), &["attempts", "--json", "--data-dir", "state"], &[]).json();
    assert_eq!(attempts["attempts"][0]["status"], "started");
    assert_valid(&github);
}

#[test]
fn atom_tags_come_from_links_and_a_failing_source_blocks_nothing() {
    let feeds = FakeServer::start();
    feeds.route(
        "GET",
        "/codex.atom",
        Canned::xml(include_str!("../fixtures/feeds/codex-releases.atom")).with_etag("\"a\""),
    );
    feeds.route("GET", "/broken.atom", Canned::json(500, json!({})));
    let tmp = tempfile::tempdir().unwrap();
    let sources = write_sources(
        tmp.path(),
        json!([
            {"id": "broken", "provider": "codeberg", "event": "release", "url": format!("{}/broken.atom", feeds.url),
             "repo": repo("forgejo/forgejo"), "primeOnly": false},
            {"id": "codex-atom", "provider": "gitea", "event": "release", "url": format!("{}/codex.atom", feeds.url),
             "repo": repo("openai/codex"), "primeOnly": false, "target": {"mode": "notify_only"}},
        ]),
    );
    let run = watch_once(tmp.path(), &sources, &[]);
    assert_eq!(run.code, 1, "a failed source makes the round exit 1: {}", run.stderr);
    let out = run.json();
    assert!(out["sources"][0]["error"].as_str().unwrap().contains("returned 500"), "{out}");
    assert_eq!(out["failed"], 1);
    assert_eq!(
        events(tmp.path()),
        ["patch:upstream.release:openai/codex:rust-v0.131.0", "patch:upstream.release:openai/codex:rust-v0.130.0"],
        "oldest emitted first (listed newest first), tags from links, not titles"
    );
    // The broken source recovers: its first successful poll still emits (no cursor was lost or faked).
    feeds.route(
        "GET",
        "/broken.atom",
        Canned::xml(&include_str!("../fixtures/feeds/codex-releases.atom").replace("openai/codex", "forgejo/forgejo")),
    );
    let run = watch_once(tmp.path(), &sources, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["sources"][0]["newEvents"].as_array().unwrap().len(), 2);
    assert_eq!(run.json()["sources"][1]["unchanged"], true);
}

#[test]
fn repository_dispatch_skips_releases_the_fork_already_has() {
    let tmp = tempfile::tempdir().unwrap();
    let (github, fork) = fake_github("ft", tmp.path());
    github.set_releases("openai/codex", vec![release("rust-v2", false, false), release("rust-v1", false, false)]);
    // The fork's mark: it has rebased onto rust-v1 already.
    fork.git(&["branch", "patchmoi/upstream/rust-v1"]);
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"), "primeOnly": false,
                "target": {"mode": "repository_dispatch", "repo": "me/codex", "tokenEnv": "FORK_TOKEN"}}]),
    );
    let run = watch_once(tmp.path(), &sources, &[("GITHUB_API_URL", github.url.as_str()), ("FORK_TOKEN", "ft")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dispatches = github.seen_at("POST", "/repos/me/codex/dispatches");
    assert_eq!(dispatches.len(), 1);
    assert_eq!(dispatches[0].headers.get("authorization").map(String::as_str), Some("Bearer ft"));
    let body: Value = serde_json::from_str(&dispatches[0].body).unwrap();
    assert_eq!(body["event_type"], "upstream.release");
    assert_eq!(body["client_payload"]["tag"], "rust-v2");
    assert_eq!(body["client_payload"]["repo"], "openai/codex");
    assert_eq!(body["client_payload"]["event"]["id"], "patch:upstream.release:openai/codex:rust-v2");
    let listed = patchmoi(tmp.path(), &["dispatches", "--json", "--data-dir", "state"], &[]).json();
    let statuses: Vec<&str> =
        listed["dispatches"].as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["dispatched", "skipped"]);

    // Sync asks GitHub for the check runs and the PR on the candidate branch,
    // which the fork's workflow pushed meanwhile.
    fork.git(&["branch", "patchmoi/rust-v2"]);
    let head = fork.rev("patchmoi/rust-v2");
    let check = |id: u64, name: &str, conclusion: Value| {
        json!({"id": id, "name": name, "head_sha": head, "external_id": format!("run_{id}"), "status": "completed",
               "conclusion": conclusion, "html_url": format!("https://github.com/me/codex/runs/{id}")})
    };
    github.state().check_runs =
        vec![check(1, "patchmoi / fork / rebase", json!("success")), check(2, "patchmoi / fork / build", Value::Null)];
    github.state().pulls.push(json!({"number": 7, "title": "patchmoi: rust-v2", "state": "open",
        "html_url": "https://github.com/me/codex/pull/7", "head": {"ref": "patchmoi/rust-v2"}, "base": {"ref": "main"}}));
    let attempts =
        patchmoi(tmp.path(), &["attempts", "--json", "--data-dir", "state", "--status", "started"], &[]).json();
    let id = attempts["attempts"][0]["id"].as_str().unwrap().to_string();
    let env = [("GITHUB_API_URL", github.url.as_str())];
    let synced = patchmoi(tmp.path(), &["sync", &id, "--json", "--data-dir", "state"], &env);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    let attempt = &synced.json()["attempt"];
    assert_eq!(attempt["status"], "started", "one check still runs: {attempt}");
    assert_eq!(attempt["pullRequest"]["url"], "https://github.com/me/codex/pull/7");
    let pulls = github.seen_at("GET", "/repos/me/codex/pulls");
    assert!(pulls[0].path.contains("head=me%3Apatchmoi%2Frust-v2"), "{}", pulls[0].path);
    github.state().check_runs[1]["conclusion"] = json!("failure");
    let synced = patchmoi(tmp.path(), &["sync", &id, "--json", "--data-dir", "state"], &env);
    assert_eq!(synced.code, 1, "a failed attempt needs attention");
    assert_eq!(synced.json()["attempt"]["status"], "failed");
    assert_eq!(synced.json()["attempt"]["checkRuns"].as_array().unwrap().len(), 2);
    assert_valid(&github);
}

#[test]
fn bad_sources_files_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sources =
        write_sources(tmp.path(), json!([{"id": "x", "provider": "github", "event": "push", "repo": repo("o/r")}]));
    let run = watch_once(tmp.path(), &sources, &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("feed-sources.json") && run.stderr.contains("`event: push` is not supported"),
        "{}",
        run.stderr
    );
    let run = patchmoi(tmp.path(), &["watch", "--once"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("FEED_SOURCES_PATH"), "{}", run.stderr);
}

#[test]
fn an_event_stored_without_its_dispatch_is_dispatched_by_the_next_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let (github, _fork) = fake_github("unused", tmp.path());
    let backend = FakeServer::start();
    backend.route("POST", "/events", Canned::json(202, json!({"status": "accepted", "runIds": [], "matched": 0})));
    github.set_releases("openai/codex", vec![release("rust-v1", false, false)]);
    // A poll that died between storing the event and dispatching it.
    let store = patchmoi::service::store::Store::open(&tmp.path().join("state")).unwrap();
    store
        .record_event(&patchmoi::flow::event::FlowEvent::upstream_release("openai/codex", "rust-v1", "t".into()))
        .unwrap();
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"), "primeOnly": false,
                "target": {"mode": "workspace_flow", "eventType": "upstream.release", "workspaceUrl": backend.url}}]),
    );
    let run = watch_once(tmp.path(), &sources, &[("GITHUB_API_URL", github.url.as_str())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["sources"][0]["duplicates"], json!(["patch:upstream.release:openai/codex:rust-v1"]));
    assert_eq!(backend.seen_at("POST", "/events").len(), 1, "the owed dispatch happened");
    let again = watch_once(tmp.path(), &sources, &[("GITHUB_API_URL", github.url.as_str())]);
    assert_eq!(again.code, 0);
    assert_eq!(backend.seen_at("POST", "/events").len(), 1, "and only once");
    assert_valid(&github);
}

#[test]
fn github_calls_ride_out_a_server_error_but_never_send_a_dispatch_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (github, _fork) = fake_github("t", tmp.path());
    let releases = "/repos/openai/codex/releases";
    let server_error = |method, template, apply| Fault {
        method,
        template,
        status: Some(502),
        headers: vec![],
        message: "Server Error",
        apply,
    };
    github.fault(server_error("get", "/repos/{owner}/{repo}/releases", false));
    github.set_releases("openai/codex", vec![release("rust-v1", false, false)]);
    // The dispatch reached the fork, but its answer was lost: the unknown state.
    github.fault(server_error("post", "/repos/{owner}/{repo}/dispatches", true));
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"), "primeOnly": false,
                "target": {"mode": "repository_dispatch", "repo": "me/codex"}}]),
    );
    let env = [("GITHUB_API_URL", github.url.as_str()), ("GITHUB_TOKEN", "t"), ("PATCHMOI_API_BACKOFF_MS", "1")];
    let run = watch_once(tmp.path(), &sources, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The list was asked again after the 502, and the release went out.
    let statuses: Vec<u16> = github.seen_at("GET", releases).iter().map(|seen| seen.status).collect();
    assert_eq!(statuses, [502, 200]);
    assert_eq!(events(tmp.path()).len(), 1);
    // A dispatch that failed in an unknown state is not sent again by this
    // poll (the fork may be running already); it is recorded for `retry`.
    assert_eq!(github.seen_at("POST", "/repos/me/codex/dispatches").len(), 1);
    let listed = patchmoi(tmp.path(), &["dispatches", "--json", "--data-dir", "state"], &[]).json();
    assert_eq!(listed["dispatches"][0]["status"], "failed");
    let error = listed["dispatches"][0]["error"].as_str().unwrap();
    assert!(error.contains("502") && error.contains("me/codex"), "{error}");
    assert_eq!(github.state().dispatches.len(), 1);
    assert_valid(&github);
}

#[test]
fn a_renamed_upstream_is_followed_to_its_new_place_within_the_api() {
    // GitHub answers a renamed or transferred repository with a 301 to
    // /repositories/<id>/...; a redirect elsewhere is not followed (the token
    // would go along).
    let tmp = tempfile::tempdir().unwrap();
    let (github, _fork) = fake_github("secret-token", tmp.path());
    let elsewhere = FakeServer::start();
    github.rename("openai/codex", "openai/codex-rs", 42);
    github.set_releases("openai/codex-rs", vec![release("rust-v1", false, false)]);
    github.redirect_repo("other/tool", &format!("{}/steal", elsewhere.url));
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"), "primeOnly": false,
                "target": {"mode": "notify_only"}},
               {"id": "tool", "provider": "github", "event": "release", "repo": repo("other/tool"), "primeOnly": false,
                "target": {"mode": "notify_only"}}]),
    );
    let env = [("GITHUB_API_URL", github.url.as_str()), ("GITHUB_TOKEN", "secret-token")];
    let run = watch_once(tmp.path(), &sources, &env);
    assert_eq!(events(tmp.path()), ["patch:upstream.release:openai/codex:rust-v1"], "{}", run.stderr);
    assert_eq!(github.seen_at("GET", "/repositories/42/releases").len(), 1);
    assert!(run.stdout.contains("301") || run.stderr.contains("301"), "{}\n{}", run.stdout, run.stderr);
    assert!(elsewhere.seen().is_empty(), "the token must not leave the API");
    assert_valid(&github);
}

#[test]
fn more_than_a_page_of_new_releases_are_all_read_and_emitted() {
    let github = FakeServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "codex", "provider": "github", "event": "release", "repo": repo("openai/codex"),
                "target": {"mode": "notify_only"}}]),
    );
    let env = [("GITHUB_API_URL", github.url.as_str())];
    let releases = "/repos/openai/codex/releases";
    github.route("GET", releases, Canned::json(200, json!([release("rust-v0.1.0", false, false)])).with_etag("\"e1\""));
    assert_eq!(watch_once(tmp.path(), &sources, &env).code, 0, "primed at rust-v0.1.0");

    // 150 releases since: page 1 holds the newest 100, page 2 (GitHub's
    // `Link` goes to /repositories/<id>/...) the rest and the one seen before.
    let tags: Vec<String> = (1..=150).rev().map(|n| format!("rust-v0.{}.0", n + 1)).collect();
    let page = |tags: &[String]| json!(tags.iter().map(|tag| release(tag, false, false)).collect::<Vec<_>>());
    let second = format!("{}/repositories/42/releases?per_page=100&page=2", github.url);
    github.route("GET", releases, Canned::json(200, page(&tags[..100])).with_etag("\"e2\"").with_next(&second));
    let mut rest = page(&tags[100..]);
    rest.as_array_mut().unwrap().push(release("rust-v0.1.0", false, false));
    let third = format!("{}/repositories/42/releases?per_page=100&page=3", github.url);
    github.route("GET", "/repositories/42/releases", Canned::json(200, rest).with_next(&third));

    let run = watch_once(tmp.path(), &sources, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["sources"][0]["newEvents"].as_array().unwrap().len(), 150, "{}", run.stdout);
    let pages: Vec<String> = github.seen_at("GET", "/repositories/42/releases").into_iter().map(|s| s.path).collect();
    assert_eq!(pages, ["/repositories/42/releases?per_page=100&page=2"], "stops at the page with a known release");
}

#[test]
fn a_gitlab_releases_atom_feed_emits_its_releases_by_tag() {
    let feeds = FakeServer::start();
    feeds.route(
        "GET",
        "/gitlab-org/gitlab-runner/-/releases.atom",
        Canned::xml(include_str!("../fixtures/feeds/gitlab-releases.atom")),
    );
    let tmp = tempfile::tempdir().unwrap();
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "runner", "provider": "gitlab", "event": "release", "repo": repo("gitlab-org/gitlab-runner"),
                "url": format!("{}/gitlab-org/gitlab-runner/-/releases.atom", feeds.url), "primeOnly": false,
                "target": {"mode": "notify_only"}}]),
    );
    let run = watch_once(tmp.path(), &sources, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["sources"][0]["empty"], false);
    assert_eq!(
        events(tmp.path()),
        [
            "patch:upstream.release:gitlab-org/gitlab-runner:v18.0.0",
            "patch:upstream.release:gitlab-org/gitlab-runner:release/v17.11.1",
            "patch:upstream.release:gitlab-org/gitlab-runner:v17.11.0",
        ],
        "tags from GitLab's /-/releases/<tag> links (percent-decoded), not from titles"
    );
}

#[test]
fn a_feed_without_entries_is_reported_empty_not_fine() {
    let feeds = FakeServer::start();
    let empty =
        r#"<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>"#;
    feeds.route("GET", "/empty.atom", Canned::xml(empty));
    let tmp = tempfile::tempdir().unwrap();
    let sources = write_sources(
        tmp.path(),
        json!([{"id": "nothing", "provider": "gitlab", "event": "release", "repo": repo("a/b"),
                "url": format!("{}/empty.atom", feeds.url), "primeOnly": false, "target": {"mode": "notify_only"}}]),
    );
    let run = watch_once(tmp.path(), &sources, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!((out["sources"][0]["empty"].clone(), out["empty"].clone()), (json!(true), json!(1)), "{out}");
    assert!(run.stderr.contains("the feed lists no releases"), "{}", run.stderr);
    let text = patchmoi(tmp.path(), &["watch", "--once", "--sources", &sources, "--data-dir", "state"], &[]);
    assert!(text.stdout.contains("nothing: empty: the feed lists no releases"), "{}", text.stdout);
}
