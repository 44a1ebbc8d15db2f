//! What one client may take from `serve`: how long it may wait to send a
//! request's headers (also how long a kept-alive connection may idle) and
//! its body, how big the body may be, how long a handler may run before the
//! client gets an answer, how many connections are open at once, and how
//! long a stop waits for work in flight. Also the two middlewares that
//! enforce the body limits and keep every API error JSON.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::{BodyExt, Limited};
use serde_json::json;

/// The server's limits; every one can be set in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `PATCH_HTTP_HEADER_TIMEOUT` (10s): to send a request's headers,
    /// counted from when the server waits for them, so it is also the
    /// idle timeout of a kept-alive connection (hyper starts the clock there).
    pub header_timeout: Duration,
    /// `PATCH_HTTP_BODY_TIMEOUT` (30s): to send the body once the headers are in.
    pub body_timeout: Duration,
    /// `PATCH_HTTP_REQUEST_TIMEOUT` (120s): for retry, replay, sync and
    /// webhooks to answer; the work itself goes on and is recorded.
    pub request_timeout: Duration,
    /// `PATCH_HTTP_MAX_BODY` (1048576): bytes; more is a JSON 413.
    pub max_body: usize,
    /// `PATCH_HTTP_MAX_CONNECTIONS` (256): connections open at once; more
    /// wait in the listen queue.
    pub max_connections: usize,
    /// `PATCH_SHUTDOWN_TIMEOUT` (30s): how long a stop waits for requests,
    /// retries and polls in flight.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_body: 1 << 20,
            max_connections: 256,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Reads the whole body within `body_timeout` and `max_body` bytes before
/// the handler runs: too big is 413 (told by `Content-Length` before a byte
/// is read), too slow 408, both JSON.
pub async fn buffer_body(limits: Limits, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    let too_big = || error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} bytes", limits.max_body));
    if declared.is_some_and(|length| length > limits.max_body as u64) {
        return too_big();
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(limits.body_timeout, Limited::new(body, limits.max_body).collect()).await;
    let bytes: Bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => return too_big(),
        Ok(Err(err)) => return error(StatusCode::BAD_REQUEST, format!("failed to read the body: {err}")),
        Err(_) => {
            let seconds = limits.body_timeout.as_secs_f64();
            return error(StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {seconds}s"));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Any error answer that is not JSON yet (a rejection of axum's own, a
/// 404 or 405 of the router) becomes `{"error": …}` with its text; the
/// status pages' own HTML errors stay HTML.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json") || value.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let body = json!({ "error": message }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
