//! The one blocking HTTP client the service uses for everything but the
//! GitHub API (feeds, the workspace backend): timeouts, a User-Agent, and
//! every status as an answer rather than an error, so callers branch on it.

use std::time::Duration;

use crate::core::redact;
use anyhow::{Context, Result};

/// An HTTP answer of any status.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<&'a str>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Request<'a> {
        Request { method: "GET", url, headers: Vec::new(), body: None }
    }

    pub fn post(url: &'a str, body: &'a str) -> Request<'a> {
        Request { method: "POST", url, headers: vec![("content-type", "application/json".into())], body: Some(body) }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// Sends `request`; an error means no answer came (connection, timeout).
/// The error names the URL without any credentials in it.
pub fn send(request: &Request<'_>) -> Result<Response> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("patchmoi/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut req = agent.request(request.method, request.url);
    for (name, value) in &request.headers {
        req = req.set(name, value);
    }
    let result = match request.body {
        Some(body) => req.send_string(body),
        None => req.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(err)) => {
            let kind = err.kind();
            return Err(anyhow::anyhow!("{kind}"))
                .with_context(|| format!("{} {} got no answer", request.method, redact(request.url)));
        }
    };
    let status = response.status();
    let etag = response.header("etag").map(str::to_string);
    let body = response
        .into_string()
        .with_context(|| format!("failed to read the answer of {} {}", request.method, redact(request.url)))?;
    Ok(Response { status, etag, body })
}

/// `url` without `user:password@`, for messages.
pub fn redact(url: &str) -> String {
    redact::redact_url(url)
}
