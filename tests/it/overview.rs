//! What the status pages show beyond one attempt: each conflict report
//! (escaped, field by field), a row per flow, each feed source's polls
//! (and `/metrics` counting them), per-flow badges, and a database from
//! the previous schema version migrated in place.

use serde_json::json;

use crate::badges::get;
use crate::browser::two_releases;
use crate::server::{serve, TOKEN};
use crate::support::{patchmoi, Canned, FakeServer};
use patchmoi::engine::conflict::ConflictReport;
use patchmoi::service::attempt::RunObservation;
use patchmoi::service::store::{Filter, Store};

const HOSTILE: &str = "<script>alert(1)</script>";

/// A conflict report whose every text field is hostile.
fn hostile_report() -> ConflictReport {
    let commit = |sha: &str| json!({"sha": sha, "subject": format!("subject {HOSTILE}")});
    serde_json::from_value(json!({
        "patch": {"sha": "\"><img src=x onerror=alert(2)>", "subject": format!("patch {HOSTILE}"), "author": HOSTILE},
        "applied": [], "remaining": [],
        "files": [{"path": format!("src/{HOSTILE}.rs"), "kind": "contents",
                   "hunks": [{"start_line": 1, "end_line": 2, "upstream": format!("up {HOSTILE}"),
                              "patch": "</pre><b>patch side</b>", "base": "base"}],
                   "upstream_commits": [commit("cafe0123cafe0123")]}],
        "culprit": {"kind": "upstream", "sha": "javascript:alert(3)", "subject": format!("culprit {HOSTILE}")},
        "builds_on": null,
        "survey": [{"sha": "0123456789ab", "subject": format!("survey {HOSTILE}"), "files": [HOSTILE],
                    "depends_on": null,
                    "culprit": {"kind": "upstream", "sha": "feedfacefeedface", "subject": "a fine subject"}}]
    }))
    .unwrap()
}

#[test]
fn a_conflict_report_is_shown_whole_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("state");
    let _fx = two_releases(&data);
    {
        let store = Store::open(&data).unwrap();
        let attempt = store.attempts(&Filter::default()).unwrap().remove(0);
        assert_eq!(attempt.upstream_tag.as_deref(), Some("v2.0.0"));
        let run = RunObservation {
            run_id: attempt.workspace_run_ids[0].clone(),
            status: "needs_intervention".into(),
            flow: Some("fork".into()),
            conflict: Some(Box::new(hostile_report())),
            ..RunObservation::default()
        };
        store.record_runs(&attempt.id, &attempt.event_id, &[run], "t").unwrap();
    }
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let bearer = format!("Bearer {TOKEN}");
    let release = "/releases/patch%3Aupstream.release%3Atest%2Fupstream%3Av2.0.0";
    let (status, _, page) = get(&format!("{}{release}", server.url), &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>patch side"), "{page}");
    for shown in [
        "patch &lt;script&gt;alert(1)&lt;/script&gt;",
        "src/&lt;script&gt;alert(1)&lt;/script&gt;.rs",
        "up &lt;script&gt;",
        "&lt;/pre&gt;&lt;b&gt;patch side&lt;/b&gt;",
        "culprit &lt;script&gt;",
        "survey &lt;script&gt;",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(!page.contains("href=\"javascript") && !page.contains("commit/javascript"), "no link from a bad sha");
    assert!(page.contains("href=\"https://github.com/test/upstream/commit/feedfacefeedface\""), "{page}");
    let (_, _, overview) = get(&format!("{}/", server.url), &[("authorization", &bearer)]);
    assert!(overview.contains("patch &lt;script&gt;") && !overview.contains("<script>"), "{overview}");
}

#[test]
fn the_overview_shows_each_feed_sources_polls_and_metrics_count_them() {
    let feeds = FakeServer::start();
    feeds.route("GET", "/codex.atom", Canned::xml(include_str!("../fixtures/feeds/codex-releases.atom")));
    feeds.route("GET", "/broken.atom", Canned::json(500, json!({})));
    let tmp = tempfile::tempdir().unwrap();
    let repo = |full: &str| {
        let (owner, name) = full.split_once('/').unwrap();
        json!({"owner": owner, "name": name, "fullName": full, "webUrl": format!("https://github.com/{full}")})
    };
    let sources = json!([
        {"id": "broken", "provider": "codeberg", "event": "release", "url": format!("{}/broken.atom", feeds.url),
         "repo": repo("forgejo/forgejo"), "primeOnly": false},
        {"id": "codex-atom", "provider": "gitea", "event": "release", "url": format!("{}/codex.atom", feeds.url),
         "repo": repo("openai/codex"), "primeOnly": false, "target": {"mode": "notify_only"}},
    ]);
    let file = tmp.path().join("sources.json");
    std::fs::write(&file, json!({ "sources": sources }).to_string()).unwrap();
    for _ in 0..2 {
        let args = ["watch", "--once", "--sources", file.to_str().unwrap(), "--data-dir", "state"];
        let run = patchmoi(tmp.path(), &args, &[]);
        assert_eq!(run.code, 1, "the broken source fails the round: {}", run.stderr);
    }
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let bearer = format!("Bearer {TOKEN}");
    let (_, _, page) = get(&format!("{}/", server.url), &[("authorization", &bearer)]);
    assert!(page.contains("<h2>Feed sources</h2>"), "{page}");
    let row = |id: &str| {
        let start = page.find(&format!("<th scope=\"row\">{id}</th>")).unwrap_or_else(|| panic!("{id}: {page}"));
        page[start..].split("</tr>").next().unwrap().to_string()
    };
    let broken = row("broken");
    assert!(broken.contains(">failed<") && broken.contains("returned 500"), "{broken}");
    let codex = row("codex-atom");
    assert!(codex.contains(">ok<") && codex.contains("none"), "{codex}");
    let (_, _, metrics) = get(&format!("{}/metrics", server.url), &[("authorization", &bearer)]);
    for line in [
        "patchmoi_feed_polls_total{source=\"broken\"} 2",
        "patchmoi_feed_poll_failures_total{source=\"broken\"} 2",
        "patchmoi_feed_polls_total{source=\"codex-atom\"} 2",
        "patchmoi_feed_poll_failures_total{source=\"codex-atom\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in:\n{metrics}");
    }
}

#[test]
fn a_version_3_database_is_migrated_and_a_sync_brings_back_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("state");
    let fx = two_releases(&data);
    // Back to what version 3 had: no run reports, no poll counts.
    let db = rusqlite::Connection::open(data.join("patchmoi.sqlite3")).unwrap();
    db.execute_batch("DROP TABLE run_reports; DROP TABLE feed_polls; PRAGMA user_version = 3;").unwrap();
    drop(db);
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let bearer = format!("Bearer {TOKEN}");
    let release = format!("{}/releases/patch%3Aupstream.release%3Atest%2Fupstream%3Av2.0.0", server.url);
    let (status, _, page) = get(&release, &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("needs_intervention") && !page.contains("Conflict report"), "nothing stored yet: {page}");
    let (_, _, svg) = get(&format!("{}/badge/fork.svg", server.url), &[("authorization", &bearer)]);
    assert!(svg.contains(">unknown</text>"), "no run named the flow yet: {svg}");
    // A sync reads the run from the checkout's state file again.
    let attempt = "patch:upstream.release:test/upstream:v2.0.0:dispatch";
    let sync = patchmoi(&fx.fork.dir, &["sync", attempt, "--data-dir", data.to_str().unwrap()], &[]);
    assert!(sync.stdout.contains("needs_intervention"), "{}{}", sync.stdout, sync.stderr);
    let (_, _, page) = get(&release, &[("authorization", &bearer)]);
    assert!(page.contains("Conflict report") && page.contains("Rewrite a.txt"), "{page}");
    let (status, kind, svg) = get(&format!("{}/badge/fork.svg", server.url), &[("authorization", &bearer)]);
    assert_eq!((status, kind.as_str()), (200, "image/svg+xml; charset=utf-8"));
    assert!(svg.contains(">needs_intervention</text>") && svg.contains("patchmoi fork"), "{svg}");
    let version: i64 = rusqlite::Connection::open(data.join("patchmoi.sqlite3"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
}
