//! `/badge/<owner>/<name>.svg` and `/metrics` on a served database filled
//! by a real run: behind the token unless opened by their settings, and
//! moving with what happens.

use crate::pages::http;
use crate::server::{call, fake_backend, seeded, serve, ENCODED, TOKEN};

/// Status, content type and body of a GET of `url` (`http://host:port/path`).
pub(crate) fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let (status, head, body) = http(host, "GET", path, headers, "");
    let kind = head.lines().find_map(|l| l.strip_prefix("content-type: ")).unwrap_or_default().to_string();
    (status, kind, body)
}

#[test]
fn a_badge_shows_the_upstreams_latest_status_and_is_public_only_when_asked() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let bearer = format!("Bearer {TOKEN}");
    let env = [("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_WORKSPACE_BACKEND_URL", backend.url.as_str())];
    let server = serve(tmp.path(), &env);
    let badge = format!("{}/badge/openai/codex.svg", server.url);
    let (status, _, _) = get(&badge, &[]);
    assert_eq!(status, 401, "private by default");
    let (status, kind, svg) = get(&badge, &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{svg}");
    assert_eq!(kind, "image/svg+xml; charset=utf-8");
    assert!(svg.contains(">started</text>") && svg.contains("fill=\"#007ec6\""), "dispatched, no result yet: {svg}");
    drop(server);

    let env = [
        ("PATCH_ADMIN_TOKEN", TOKEN),
        ("PATCH_WORKSPACE_BACKEND_URL", backend.url.as_str()),
        ("PATCH_PUBLIC_BADGES", "1"),
    ];
    let server = serve(tmp.path(), &env);
    let badge = format!("{}/badge/openai/codex.svg", server.url);
    let sync = format!("{}/maintenance-attempts/{ENCODED}%3Adispatch/sync", server.url);
    assert_eq!(call("POST", &sync, &[("authorization", &bearer)], None).0, 202);
    let (status, _, svg) = get(&badge, &[]);
    assert_eq!(status, 200, "public with PATCH_PUBLIC_BADGES=1: {svg}");
    assert!(svg.contains(">changed</text>") && svg.contains("fill=\"#4c1\""), "after the run's result: {svg}");
    let (_, _, svg) = get(&format!("{}/badge/nobody/%3Cb%3E.svg", server.url), &[]);
    assert!(svg.contains(">unknown</text>") && svg.contains("nobody/&lt;b&gt;: unknown"), "escaped: {svg}");
    assert_eq!(get(&format!("{}/badge/openai/codex.png", server.url), &[]).0, 404);
    // The pages themselves stay private.
    assert_eq!(get(&format!("{}/attempts", server.url), &[]).0, 303);
}

#[test]
fn metrics_speak_prometheus_and_count_requests() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    let bearer = format!("Bearer {TOKEN}");
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let metrics = format!("{}/metrics", server.url);
    assert_eq!(get(&metrics, &[]).0, 401, "private by default");
    let (status, kind, text) = get(&metrics, &[("authorization", &bearer)]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        "# HELP patchmoi_events_total Release events recorded.",
        "# TYPE patchmoi_events_total counter",
        "patchmoi_events_total 1",
        "# TYPE patchmoi_dispatches gauge",
        "patchmoi_dispatches{status=\"dispatched\"} 1",
        "patchmoi_attempts{status=\"started\"} 1",
        "patchmoi_webhook_deliveries_total 0",
        "# TYPE patchmoi_http_requests_total counter",
        "# TYPE patchmoi_http_request_duration_seconds histogram",
        "patchmoi_http_requests_total{route=\"/metrics\",status=\"401\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    let events = format!("{}/flow-events/{ENCODED}", server.url);
    let counted = |text: &str| {
        let prefix = "patchmoi_http_requests_total{route=\"/flow-events/{id}\",status=\"200\"} ";
        text.lines().find_map(|l| l.strip_prefix(prefix)).map(|n| n.parse::<u64>().unwrap()).unwrap_or(0)
    };
    assert_eq!(counted(&text), 0);
    assert_eq!(call("GET", &events, &[("authorization", &bearer)], None).0, 200);
    assert_eq!(call("GET", &events, &[("authorization", &bearer)], None).0, 200);
    let (_, _, text) = get(&metrics, &[("x-patch-admin-token", TOKEN)]);
    assert_eq!(counted(&text), 2, "{text}");
    let count = "patchmoi_http_request_duration_seconds_count{route=\"/flow-events/{id}\"} 2";
    assert!(text.lines().any(|l| l == count), "{text}");
    get(&format!("{}/nowhere/42", server.url), &[]);
    let (_, _, text) = get(&metrics, &[("authorization", &bearer)]);
    assert!(text.contains("patchmoi_http_requests_total{route=\"unmatched\",status=\"404\"} 1"), "{text}");
    drop(server);

    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN), ("PATCH_METRICS_PUBLIC", "1")]);
    assert_eq!(get(&format!("{}/metrics", server.url), &[]).0, 200, "public with PATCH_METRICS_PUBLIC=1");
}
