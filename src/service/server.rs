//! `patchmoi serve`: the HTTP API over the store (events, dispatches,
//! attempts, retry, replay, sync), GitHub webhooks, and the feed watchers
//! when `FEED_SOURCES_PATH` is set. Every error is JSON; bad input is 400
//! naming the parameter, a failing backend 502, a handler slower than
//! `PATCH_HTTP_REQUEST_TIMEOUT` 504 (its work goes on and is recorded).
//! Without `PATCH_ADMIN_TOKEN` it serves only on a loopback address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::core::error::usage;
use crate::core::runtime::block_on;
use crate::flow::event;
use crate::service::attempt::Operation;
use crate::service::backend;
use crate::service::dispatch;
use crate::service::feed::WatchSettings;
use crate::service::http_limits::{buffer_body, json_errors, Limits};
use crate::service::listener::{self, Work};
use crate::service::metrics::{self, Metrics, StoreFigures};
use crate::service::ops::{self, ServiceError};
use crate::service::pages::session::token_matches;
use crate::service::pages::{self, Pages};
use crate::service::settings::ServiceSettings;
use crate::service::store::{
    attempt_status_filter, dispatch_status_filter, Delivery, DeliveryOutcome, Filter, Store, MAX_LIMIT,
};
use crate::service::watchers::Watchers;
use crate::service::webhook::{self, WebhookKind};

/// Everything the server needs, resolved from flags and the environment
/// by the CLI (`cli/service_settings.rs`).
#[derive(Clone)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Where retries go, and whom sync asks.
    pub service: ServiceSettings,
    pub admin_token: Option<String>,
    pub webhook_secret: Option<String>,
    /// `PATCH_PUBLIC_BADGES=1`: `/badge/…` needs no token.
    pub public_badges: bool,
    /// `PATCH_METRICS_PUBLIC=1`: `/metrics` needs no token.
    pub metrics_public: bool,
    /// The feed watchers to start beside the server, when configured.
    pub watch: Option<WatchSettings>,
    pub limits: Limits,
}

impl ServerSettings {
    /// Whether the API may be served as configured: without an admin token
    /// only on loopback (with a warning), anywhere with one.
    pub fn check_exposure(&self) -> Result<Option<String>> {
        if self.admin_token.is_some() {
            return Ok(None);
        }
        if !is_loopback(&self.host) {
            return Err(usage(format!(
                "PATCH_ADMIN_TOKEN is not set: serve refuses to open its admin API on {} (not a loopback \
                 address); set PATCH_ADMIN_TOKEN, or HOST=127.0.0.1",
                self.host
            )));
        }
        Ok(Some(format!(
            "PATCH_ADMIN_TOKEN is not set: the admin API is open to every local user of {}; set it to require a token",
            self.host
        )))
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The server's state: its settings and the work in flight.
pub struct App {
    pub settings: Arc<ServerSettings>,
    work: Arc<Work>,
    metrics: Arc<Metrics>,
}

type Shared = Arc<App>;

/// A JSON error answer.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        let status = match &err {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::BadInput(_) => StatusCode::BAD_REQUEST,
            ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, err.to_string())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        ApiError::from(ServiceError::Internal(err))
    }
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// Runs store and network work off the async threads. The work is
/// detached from the request: a client that leaves, or a 504 after
/// `request_timeout`, neither cancels it halfway nor loses its record, and
/// a stop waits for it.
async fn blocking(app: &App, work: impl FnOnce() -> Answer + Send + 'static) -> Answer {
    let guard = app.work.start();
    let task = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        work()
    });
    let timeout = app.settings.limits.request_timeout;
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("request handler failed: {err}"))),
        Err(_) => Err(ApiError(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "still running after {}s (PATCH_HTTP_REQUEST_TIMEOUT); it goes on and its result is recorded",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// The routes, with admin auth on all but `/healthz` and the webhook.
pub fn router(settings: ServerSettings) -> Router {
    routes(Arc::new(App { settings: Arc::new(settings), work: Arc::default(), metrics: Arc::default() }))
}

fn routes(settings: Shared) -> Router {
    let limits = settings.settings.limits;
    let counted = settings.metrics.clone();
    let admin = Router::new()
        .route("/flow-events", get(list_events))
        .route("/flow-events/{id}", get(get_event))
        .route("/flow-events/{id}/retry", post(retry))
        .route("/flow-events/{id}/replay", post(replay))
        .route("/workspace-dispatches", get(list_dispatches))
        .route("/flow-dispatches", get(list_dispatches))
        .route("/maintenance-attempts", get(list_attempts))
        .route("/maintenance-attempts/{id}", get(get_attempt))
        .route("/maintenance-attempts/{id}/sync", post(sync))
        .route_layer(middleware::from_fn_with_state(settings.clone(), require_admin));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route("/webhooks/github", post(github_webhook))
        .route("/metrics", get(prometheus))
        .merge(admin)
        .with_state(settings.clone())
        .merge(pages::router(Pages {
            data_dir: settings.settings.data_dir.clone(),
            token: settings.settings.admin_token.clone(),
            public_badges: settings.settings.public_badges,
        }))
        .route_layer(middleware::from_fn(metrics::tag_route))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "not_found".into()) })
        .method_not_allowed_fallback(|| async { ApiError(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()) })
        .layer(middleware::from_fn(move |request, next| buffer_body(limits, request, next)))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(counted, metrics::count))
}

/// `/metrics`: behind the admin token unless `PATCH_METRICS_PUBLIC=1`.
async fn prometheus(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if !app.settings.metrics_public && !admin_ok(&app, &headers) {
        return ApiError(StatusCode::UNAUTHORIZED, "unauthorized".into()).into_response();
    }
    let settings = app.settings.clone();
    let read = tokio::task::spawn_blocking(move || {
        Store::open_for_reads(&settings.data_dir).and_then(|store| StoreFigures::read(&store))
    });
    match read.await {
        Ok(Ok(figures)) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render(&figures))
                .into_response()
        }
        Ok(Err(err)) => ApiError::from(err).into_response(),
        Err(err) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("metrics failed: {err}")).into_response(),
    }
}

/// `Authorization: Bearer <token>` or `X-Patch-Admin-Token: <token>`,
/// see [`token_matches`], when `PATCH_ADMIN_TOKEN` is set (it must be,
/// except on loopback).
async fn require_admin(State(app): State<Shared>, request: Request, next: Next) -> Response {
    if admin_ok(&app, request.headers()) {
        next.run(request).await
    } else {
        ApiError(StatusCode::UNAUTHORIZED, "unauthorized".into()).into_response()
    }
}

fn admin_ok(app: &App, headers: &HeaderMap) -> bool {
    let Some(token) = &app.settings.admin_token else { return true };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let bearer = header("authorization").and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let given = bearer.or_else(|| header("x-patch-admin-token").map(str::trim));
    given.is_some_and(|given| token_matches(given, token))
}

fn open(settings: &ServerSettings) -> Result<Store, ApiError> {
    Ok(Store::open(&settings.data_dir)?)
}

/// For reads: never waits behind a writer's lock.
fn read(settings: &ServerSettings) -> Result<Store, ApiError> {
    Ok(Store::open_for_reads(&settings.data_dir)?)
}

/// A query naming a parameter the route does not know is a 400 naming it.
fn only(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = query.keys().map(String::as_str).filter(|name| !known.contains(name)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let allowed = if known.is_empty() { "none".to_string() } else { known.join(", ") };
    Err(bad(format!("unknown query parameter(s): {} (this route takes: {allowed})", unknown.join(", "))))
}

fn bad(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

/// An id from the path, percent-decoded; a malformed one is a JSON 400.
struct Id(String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(err) => Err(bad(format!("the id in the path is not valid: {}", err.body_text()))),
        }
    }
}

/// The query parameters; a malformed query is a JSON 400.
struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params, ApiError> {
        match Query::<HashMap<String, String>>::from_request_parts(parts, state).await {
            Ok(Query(query)) => Ok(Params(query)),
            Err(err) => Err(bad(format!("the query is not valid: {}", err.body_text()))),
        }
    }
}

/// `limit`: a whole number from 1 to 500 (default 50).
fn limit(query: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    match query.get("limit") {
        None => Ok(None),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
            _ => Err(bad(format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"))),
        },
    }
}

async fn list_events(State(app): State<Shared>, Params(query): Params) -> Answer {
    only(&query, &["type", "limit"])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let filter = Filter { kind: query.get("type").cloned(), limit: limit(&query)?, ..Filter::default() };
        let events = read(&settings)?.events(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "events": events }))))
    })
    .await
}

async fn get_event(State(app): State<Shared>, Id(id): Id, Params(query): Params) -> Answer {
    only(&query, &[])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let store = read(&settings)?;
        let event = store.event(&id)?.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "flow_event_not_found".into()))?;
        let dispatches = store.dispatches(&Filter { event_id: Some(id), ..Filter::default() })?;
        Ok((StatusCode::OK, Json(json!({"event": event, "dispatches": dispatches}))))
    })
    .await
}

async fn retry(state: State<Shared>, id: Id, query: Params) -> Answer {
    redispatch(state, id, query, Operation::Retry).await
}

async fn replay(state: State<Shared>, id: Id, query: Params) -> Answer {
    redispatch(state, id, query, Operation::Replay).await
}

async fn redispatch(State(app): State<Shared>, Id(id): Id, Params(query): Params, operation: Operation) -> Answer {
    only(&query, &[])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let mut store = open(&settings)?;
        let done = ops::redispatch(&mut store, &settings.service.default_target, &id, operation)?;
        let mut body = serde_json::to_value(&done).context("failed to serialise the answer")?;
        if done.dispatch.status == dispatch::DispatchStatus::Failed {
            body["error"] = json!(done.dispatch.error.as_deref().unwrap_or("dispatch failed"));
            return Ok((StatusCode::BAD_GATEWAY, Json(body)));
        }
        Ok((StatusCode::ACCEPTED, Json(body)))
    })
    .await
}

async fn list_dispatches(State(app): State<Shared>, Params(query): Params) -> Answer {
    only(&query, &["eventId", "status", "limit"])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let status = dispatch_status_filter(query.get("status").map(String::as_str), "status").map_err(bad)?;
        let filter = Filter { event_id: query.get("eventId").cloned(), status, limit: limit(&query)?, kind: None };
        let dispatches = read(&settings)?.dispatches(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "dispatches": dispatches }))))
    })
    .await
}

async fn list_attempts(State(app): State<Shared>, Params(query): Params) -> Answer {
    only(&query, &["eventId", "status", "limit"])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let status = attempt_status_filter(query.get("status").map(String::as_str), "status").map_err(bad)?;
        let filter = Filter { event_id: query.get("eventId").cloned(), status, limit: limit(&query)?, kind: None };
        let attempts = read(&settings)?.attempts(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "attempts": attempts }))))
    })
    .await
}

async fn get_attempt(State(app): State<Shared>, Id(id): Id, Params(query): Params) -> Answer {
    only(&query, &[])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let attempt = ops::find_attempt(&read(&settings)?, &id)?;
        Ok((StatusCode::OK, Json(json!({ "attempt": attempt }))))
    })
    .await
}

async fn sync(State(app): State<Shared>, Id(id): Id, Params(query): Params) -> Answer {
    only(&query, &[])?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let attempt = ops::sync(&open(&settings)?, &settings.service, &id)?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "attempt": attempt }))))
    })
    .await
}

/// `check_run`, `workflow_run` and `pull_request` deliveries, verified with
/// `X-Hub-Signature-256`; refused while `PATCH_WEBHOOK_SECRET` is unset. A
/// delivery id seen before is answered 200 `{"duplicate": true}` and a
/// delivery older than what the attempt already shows 200 `{"stale":
/// true}`, both changing nothing.
async fn github_webhook(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Answer {
    let Some(secret) = app.settings.webhook_secret.clone() else {
        return Err(ApiError(StatusCode::FORBIDDEN, "webhooks are disabled: PATCH_WEBHOOK_SECRET is not set".into()));
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
    if !backend::verify(&secret, &body, header("x-hub-signature-256").as_deref()) {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "invalid signature".into()));
    }
    let name = header("x-github-event").unwrap_or_default();
    let Some(kind) = WebhookKind::parse(&name) else {
        return Ok((StatusCode::ACCEPTED, Json(json!({"ignored": name}))));
    };
    // GitHub can also send form-encoded payloads; only JSON is read.
    // https://docs.github.com/en/webhooks/using-webhooks/creating-webhooks#content-type
    if !header("content-type").is_some_and(|value| value.starts_with("application/json")) {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "webhooks must be sent as application/json (the hook's content type)".into(),
        ));
    }
    let Some(delivery_id) = header("x-github-delivery").filter(|id| !id.trim().is_empty()) else {
        return Err(bad("X-GitHub-Delivery is missing: it is how a redelivery is recognised".into()));
    };
    let payload: Value =
        serde_json::from_slice(&body).map_err(|err| bad(format!("the webhook body is not JSON: {err}")))?;
    let settings = app.settings.clone();
    blocking(&app, move || {
        let store = open(&settings)?;
        let now = event::now();
        let (object_key, object_time) = webhook::delivery_object(kind, &payload);
        let delivery = Delivery {
            id: delivery_id,
            kind: name,
            object_key,
            object_time,
            received_at: now.clone(),
            keys: webhook::lookup_keys(kind, &payload),
        };
        match store.record_delivery(&delivery, |attempts| webhook::apply(kind, &payload, attempts, &now))? {
            DeliveryOutcome::Duplicate => Ok((StatusCode::OK, Json(json!({"duplicate": true})))),
            DeliveryOutcome::Stale => Ok((StatusCode::OK, Json(json!({"stale": true, "matched": 0})))),
            DeliveryOutcome::Applied(Some(next)) => {
                Ok((StatusCode::ACCEPTED, Json(json!({"matched": 1, "attempt": next}))))
            }
            DeliveryOutcome::Applied(None) => Ok((StatusCode::ACCEPTED, Json(json!({"matched": 0})))),
        }
    })
    .await
}

/// Binds `HOST:PORT`, starts the feed watchers when configured, and serves
/// until SIGTERM or Ctrl-C; then stops accepting, lets requests, retries
/// and polls in flight finish (within `PATCH_SHUTDOWN_TIMEOUT`) and closes
/// the database.
pub fn serve(settings: ServerSettings) -> Result<()> {
    if let Some(warning) = settings.check_exposure()? {
        tracing::warn!("{warning}");
    }
    block_on(async move {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("failed to listen on {address}"))?;
        // Held open for the server's life: prepared once, closed last.
        let store = Store::open(&settings.data_dir)?;
        let watchers = match &settings.watch {
            Some(watch) => Some(Watchers::start(watch)?),
            None => None,
        };
        let local = listener.local_addr()?;
        tracing::info!("listening on http://{local}");
        let limits = settings.limits;
        let work: Arc<Work> = Arc::default();
        let app = routes(Arc::new(App { settings: Arc::new(settings), work: work.clone(), metrics: Arc::default() }));
        listener::serve(listener, app, limits, work, listener::stop_signal()).await?;
        if let Some(watchers) = watchers {
            tokio::task::spawn_blocking(move || watchers.stop(limits.shutdown_timeout)).await?;
        }
        store.close()?;
        tracing::info!("stopped");
        Ok(())
    })
}
