//! The workspace backend's HTTP interface (codex-flows flow backend):
//! where its URL comes from, `/events` normalisation, HMAC signing of
//! bodies, dispatch, replay and reading a run back for sync.

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use sha2::Sha256;

use crate::flow::event::FlowEvent;
use crate::github::transport::{self, Request};
use crate::service::attempt;
use crate::service::attempt::{CandidateRef, RunObservation};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-flow-signature-256";

/// A workspace backend: its base URL and the signing secret, if any.
#[derive(Clone)]
pub struct Backend {
    pub base: String,
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("Backend").field("base", &self.base).field("signed", &self.secret.is_some()).finish()
    }
}

impl Backend {
    pub fn new(url: &str, secret: Option<String>) -> Backend {
        Backend { base: normalize_base(url), secret }
    }

    pub fn events_url(&self) -> String {
        format!("{}/events", self.base)
    }

    pub fn replay_url(&self, event_id: &str) -> String {
        format!("{}/events/{}/replay", self.base, encode(event_id))
    }

    fn post(&self, url: &str, body: &str) -> Result<transport::Response> {
        let mut request = Request::post(url, body);
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, format!("sha256={}", sign(secret, body.as_bytes())));
        }
        transport::send(&request)
    }

    /// POSTs the compact event JSON to `<base>/events`.
    pub fn dispatch(&self, event: &FlowEvent) -> Result<transport::Response> {
        let body = serde_json::to_string(event)?;
        self.post(&self.events_url(), &body)
    }

    /// POSTs `{"wait":false}` to `<base>/events/<id>/replay`.
    pub fn replay(&self, event_id: &str) -> Result<transport::Response> {
        self.post(&self.replay_url(event_id), r#"{"wait":false}"#)
    }

    /// `GET <base>/runs/<id>`, read as an observation.
    pub fn run(&self, run_id: &str) -> Result<RunObservation> {
        let url = format!("{}/runs/{}", self.base, encode(run_id));
        let response = transport::send(&Request::get(&url))?;
        if !response.is_success() {
            anyhow::bail!("workspace backend GET /runs/{run_id} failed with {}", response.status);
        }
        let value: Value = serde_json::from_str(&response.body)
            .with_context(|| format!("workspace backend answered GET /runs/{run_id} with invalid JSON"))?;
        Ok(observe_run(run_id, value.get("run").unwrap_or(&value)))
    }
}

/// The base URL: one trailing `/events` or `/flow-events` and any trailing
/// slashes removed.
pub fn normalize_base(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let base = trimmed.strip_suffix("/flow-events").or_else(|| trimmed.strip_suffix("/events")).unwrap_or(trimmed);
    base.trim_end_matches('/').to_string()
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `header` (`sha256=<hex>`) is the signature of `body`, compared in
/// constant time.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let want = format!("sha256={}", sign(secret, body));
    constant_time_eq(want.as_bytes(), header.trim().as_bytes())
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// What JavaScript's `encodeURIComponent` leaves alone, so ids encode the
/// way the original backend's clients encode them.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A path segment, percent-encoded like `encodeURIComponent` (ids contain `:` and `/`).
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, COMPONENT).to_string()
}

/// A backend run record as an observation: the result payload's status,
/// else `effectiveStatus`, else `status`; candidates from the artifacts.
pub fn observe_run(run_id: &str, run: &Value) -> RunObservation {
    let result = ["resultJson", "result_json"]
        .iter()
        .find_map(|key| run.get(*key).and_then(Value::as_str))
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .or_else(|| run.get("resultPayload").cloned())
        .or_else(|| run.get("result").cloned())
        .unwrap_or(Value::Null);
    let payload = if result.get("status").and_then(Value::as_str).is_some() {
        result
    } else {
        result.get("result").cloned().unwrap_or(Value::Null)
    };
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let status = text(&payload, "status")
        .or_else(|| text(run, "effectiveStatus"))
        .or_else(|| text(run, "status"))
        .unwrap_or_else(|| "running".into());
    let mut error = text(run, "error");
    let message = text(&payload, "message");
    if error.is_none() && matches!(status.as_str(), "failed" | "blocked" | "needs_intervention") {
        error = message.clone();
    }
    let artifacts = payload.get("artifacts").unwrap_or(&Value::Null);
    RunObservation {
        run_id: text(run, "id").unwrap_or_else(|| run_id.to_string()),
        status,
        message,
        error,
        candidate_refs: candidates(artifacts),
        completed_at: text(run, "completedAt"),
        flow: text(run, "flowName"),
        step: text(run, "stepName"),
        // A backend running patchmoi's own runner carries the report as
        // the runner wrote it; anything else is not one.
        conflict: artifacts.get("conflict").and_then(|value| serde_json::from_value(value.clone()).ok()).map(Box::new),
    }
}

/// `candidateRefs[]`, `candidates[]` and `candidateRef`; a bare string is a ref.
pub fn candidates(artifacts: &Value) -> Vec<CandidateRef> {
    let mut values: Vec<&Value> = Vec::new();
    for key in ["candidateRefs", "candidates"] {
        if let Some(list) = artifacts.get(key).and_then(Value::as_array) {
            values.extend(list);
        }
    }
    values.extend(artifacts.get("candidateRef"));
    let mut out = Vec::new();
    for value in values {
        let candidate = match value {
            Value::String(refname) => Some(CandidateRef {
                kind: "ref".into(),
                refname: refname.clone(),
                repo: None,
                remote: None,
                sha: None,
                url: None,
                pushed: None,
            }),
            other => serde_json::from_value(other.clone()).ok(),
        };
        if let Some(candidate) = candidate {
            attempt::merge_candidates(&mut out, &[candidate]);
        }
    }
    out
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
