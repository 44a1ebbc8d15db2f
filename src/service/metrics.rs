//! `/metrics` in Prometheus' text format (version 0.0.4): what the store
//! holds (events, dispatches and attempts by status, webhook deliveries,
//! feed polls and poll failures per source),
//! read when scraped, and the HTTP requests this process answered, by
//! route and status, with a latency histogram, counted by a middleware.
//! https://prometheus.io/docs/instrumenting/exposition_formats/

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::service::store::{PollRecord, StatusCounts, Store};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The route label of a request that matched none (a 404, or an answer
/// from a layer before routing such as a 413).
pub const UNMATCHED: &str = "unmatched";

#[derive(Default, Clone)]
struct Latency {
    /// Counts per bucket, not cumulative; the exposition sums them.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The HTTP figures of this process, since it started.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<Http>,
}

#[derive(Default, Clone)]
struct Http {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Latency>,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *http.requests.entry((route.to_string(), status)).or_default() += 1;
        let latency = http.latency.entry(route.to_string()).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            latency.buckets[bucket] += 1;
        }
        latency.count += 1;
        latency.sum += seconds;
    }

    /// The whole exposition: the store's figures, then this process's.
    pub fn render(&self, store: &StoreFigures) -> String {
        let http = self.http.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let mut out = String::new();
        header(&mut out, "patchmoi_events_total", "counter", "Release events recorded.");
        let _ = writeln!(out, "patchmoi_events_total {}", store.events);
        by_status(&mut out, "patchmoi_dispatches", "Dispatch records in the store, by status.", &store.dispatches);
        by_status(&mut out, "patchmoi_attempts", "Maintenance attempts in the store, by status.", &store.attempts);
        header(&mut out, "patchmoi_webhook_deliveries_total", "counter", "GitHub webhook deliveries recorded.");
        let _ = writeln!(out, "patchmoi_webhook_deliveries_total {}", store.deliveries);
        let name = "patchmoi_feed_polls_total";
        header(&mut out, name, "counter", "Feed polls by every poller of the store, by source.");
        for poll in &store.polls {
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {}", label(&poll.source_id), poll.runs);
        }
        let name = "patchmoi_feed_poll_failures_total";
        header(&mut out, name, "counter", "Feed polls that failed, by source.");
        for poll in &store.polls {
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {}", label(&poll.source_id), poll.failures);
        }
        let name = "patchmoi_http_requests_total";
        header(&mut out, name, "counter", "HTTP requests answered since start, by route and status.");
        for ((route, status), count) in &http.requests {
            let _ = writeln!(out, "{name}{{route=\"{}\",status=\"{status}\"}} {count}", label(route));
        }
        let name = "patchmoi_http_request_duration_seconds";
        header(&mut out, name, "histogram", "Time to answer an HTTP request, by route.");
        for (route, latency) in &http.latency {
            let route = label(route);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(latency.buckets) {
                cumulative += count;
                let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", latency.count);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", latency.sum);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", latency.count);
        }
        out
    }
}

/// What `/metrics` reads from the store when scraped.
#[derive(Debug, Default)]
pub struct StoreFigures {
    pub events: i64,
    pub deliveries: i64,
    pub dispatches: StatusCounts,
    pub attempts: StatusCounts,
    pub polls: Vec<PollRecord>,
}

impl StoreFigures {
    pub fn read(store: &Store) -> anyhow::Result<StoreFigures> {
        let (attempts, dispatches) = store.status_counts()?;
        let (events, deliveries) = store.totals()?;
        Ok(StoreFigures { events, deliveries, dispatches, attempts, polls: store.polls()? })
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn by_status(out: &mut String, name: &str, help: &str, counts: &StatusCounts) {
    header(out, name, "gauge", help);
    for (status, count) in counts {
        let _ = writeln!(out, "{name}{{status=\"{}\"}} {count}", label(status));
    }
}

/// A label value: `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Remembers the route a request matched, for [`count`] outside the router.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Counts every request by its route template (never its raw path, so ids
/// do not make new series) and status, and times it.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or(UNMATCHED);
    metrics.observe(route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_help_type_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("/flow-events/{id}", 200, 0.003);
        metrics.observe("/flow-events/{id}", 200, 0.2);
        metrics.observe("/flow-events/{id}", 404, 20.0);
        let store = StoreFigures {
            events: 2,
            deliveries: 1,
            dispatches: vec![("dispatched".into(), 2)],
            attempts: vec![("changed".into(), 1), ("needs_intervention".into(), 1)],
            polls: vec![PollRecord {
                source_id: "codex \"gh\"".into(),
                runs: 3,
                failures: 1,
                last_poll_at: "t".into(),
                last_error: None,
                last_error_at: None,
            }],
        };
        let text = metrics.render(&store);
        for line in [
            "# TYPE patchmoi_events_total counter",
            "patchmoi_events_total 2",
            "patchmoi_dispatches{status=\"dispatched\"} 2",
            "patchmoi_attempts{status=\"needs_intervention\"} 1",
            "patchmoi_webhook_deliveries_total 1",
            "# TYPE patchmoi_feed_polls_total counter",
            "patchmoi_feed_polls_total{source=\"codex \\\"gh\\\"\"} 3",
            "patchmoi_feed_poll_failures_total{source=\"codex \\\"gh\\\"\"} 1",
            "patchmoi_http_requests_total{route=\"/flow-events/{id}\",status=\"200\"} 2",
            "patchmoi_http_requests_total{route=\"/flow-events/{id}\",status=\"404\"} 1",
            "# TYPE patchmoi_http_request_duration_seconds histogram",
            "patchmoi_http_request_duration_seconds_bucket{route=\"/flow-events/{id}\",le=\"0.005\"} 1",
            "patchmoi_http_request_duration_seconds_bucket{route=\"/flow-events/{id}\",le=\"0.25\"} 2",
            "patchmoi_http_request_duration_seconds_bucket{route=\"/flow-events/{id}\",le=\"10\"} 2",
            "patchmoi_http_request_duration_seconds_bucket{route=\"/flow-events/{id}\",le=\"+Inf\"} 3",
            "patchmoi_http_request_duration_seconds_count{route=\"/flow-events/{id}\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
