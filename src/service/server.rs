//! `patchmoi serve`: the HTTP API over the store (events, dispatches,
//! attempts, retry, replay, sync), GitHub webhooks, and the feed watchers
//! when `FEED_SOURCES_PATH` is set. Every error is JSON; bad input is 400
//! naming the parameter, a failing backend 502.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::core::runtime::block_on;
use crate::flow::event;
use crate::service::attempt::Operation;
use crate::service::backend;
use crate::service::backend::constant_time_eq;
use crate::service::dispatch;
use crate::service::feed;
use crate::service::feed::WatchSettings;
use crate::service::ops::{self, ServiceError};
use crate::service::settings::ServiceSettings;
use crate::service::store::{attempt_status_filter, dispatch_status_filter, Filter, Store, MAX_LIMIT};
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
    /// The feed watchers to start beside the server, when configured.
    pub watch: Option<WatchSettings>,
}

type Shared = Arc<ServerSettings>;

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

/// Runs store and network work off the async threads.
async fn blocking(work: impl FnOnce() -> Answer + Send + 'static) -> Answer {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|err| {
        Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("request handler failed: {err}")))
    })
}

/// The routes, with admin auth on all but `/healthz` and the webhook.
pub fn router(settings: Shared) -> Router {
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
        .merge(admin)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "not_found".into()) })
        .method_not_allowed_fallback(|| async { ApiError(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()) })
        .with_state(settings)
}

/// `Authorization: Bearer <token>` or `X-Patch-Admin-Token: <token>`,
/// compared in constant time, when `PATCH_ADMIN_TOKEN` is set.
async fn require_admin(State(settings): State<Shared>, request: Request, next: Next) -> Response {
    let Some(token) = &settings.admin_token else { return next.run(request).await };
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let bearer = header("authorization").and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let given = bearer.or_else(|| header("x-patch-admin-token").map(str::trim));
    if given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())) {
        next.run(request).await
    } else {
        ApiError(StatusCode::UNAUTHORIZED, "unauthorized".into()).into_response()
    }
}

fn open(settings: &ServerSettings) -> Result<Store, ApiError> {
    Ok(Store::open(&settings.data_dir)?)
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

async fn list_events(State(settings): State<Shared>, Params(query): Params) -> Answer {
    blocking(move || {
        let filter = Filter { kind: query.get("type").cloned(), limit: limit(&query)?, ..Filter::default() };
        let events = open(&settings)?.events(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "events": events }))))
    })
    .await
}

async fn get_event(State(settings): State<Shared>, Id(id): Id) -> Answer {
    blocking(move || {
        let store = open(&settings)?;
        let event = store.event(&id)?.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "flow_event_not_found".into()))?;
        let dispatches = store.dispatches(&Filter { event_id: Some(id), ..Filter::default() })?;
        Ok((StatusCode::OK, Json(json!({"event": event, "dispatches": dispatches}))))
    })
    .await
}

async fn retry(state: State<Shared>, id: Id) -> Answer {
    redispatch(state, id, Operation::Retry).await
}

async fn replay(state: State<Shared>, id: Id) -> Answer {
    redispatch(state, id, Operation::Replay).await
}

async fn redispatch(State(settings): State<Shared>, Id(id): Id, operation: Operation) -> Answer {
    blocking(move || {
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

async fn list_dispatches(State(settings): State<Shared>, Params(query): Params) -> Answer {
    blocking(move || {
        let status = dispatch_status_filter(query.get("status").map(String::as_str), "status").map_err(bad)?;
        let filter = Filter { event_id: query.get("eventId").cloned(), status, limit: limit(&query)?, kind: None };
        let dispatches = open(&settings)?.dispatches(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "dispatches": dispatches }))))
    })
    .await
}

async fn list_attempts(State(settings): State<Shared>, Params(query): Params) -> Answer {
    blocking(move || {
        let status = attempt_status_filter(query.get("status").map(String::as_str), "status").map_err(bad)?;
        let filter = Filter { event_id: query.get("eventId").cloned(), status, limit: limit(&query)?, kind: None };
        let attempts = open(&settings)?.attempts(&filter)?;
        Ok((StatusCode::OK, Json(json!({ "attempts": attempts }))))
    })
    .await
}

async fn get_attempt(State(settings): State<Shared>, Id(id): Id) -> Answer {
    blocking(move || {
        let attempt = ops::find_attempt(&open(&settings)?, &id)?;
        Ok((StatusCode::OK, Json(json!({ "attempt": attempt }))))
    })
    .await
}

async fn sync(State(settings): State<Shared>, Id(id): Id) -> Answer {
    blocking(move || {
        let attempt = ops::sync(&open(&settings)?, &settings.service, &id)?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "attempt": attempt }))))
    })
    .await
}

/// `check_run`, `workflow_run` and `pull_request` deliveries, verified with
/// `X-Hub-Signature-256`; refused while `PATCH_WEBHOOK_SECRET` is unset.
async fn github_webhook(State(settings): State<Shared>, headers: HeaderMap, body: Bytes) -> Answer {
    let Some(secret) = settings.webhook_secret.clone() else {
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
    let payload: Value =
        serde_json::from_slice(&body).map_err(|err| bad(format!("the webhook body is not JSON: {err}")))?;
    blocking(move || {
        let store = open(&settings)?;
        let attempts = store.attempts(&Filter { limit: Some(MAX_LIMIT), ..Filter::default() })?;
        let now = event::now();
        match webhook::apply(kind, &payload, &attempts, &now) {
            Some(matched) => {
                // Apply it again to the row as it is now, in one transaction.
                let next = store.update_attempt(&matched.id, |current| {
                    webhook::apply(kind, &payload, std::slice::from_ref(current), &now)
                        .unwrap_or_else(|| current.clone())
                })?;
                Ok((StatusCode::ACCEPTED, Json(json!({"matched": 1, "attempt": next}))))
            }
            None => Ok((StatusCode::ACCEPTED, Json(json!({"matched": 0})))),
        }
    })
    .await
}

/// Binds `HOST:PORT`, starts the feed watchers when configured, and serves
/// until interrupted.
pub fn serve(settings: ServerSettings) -> Result<()> {
    block_on(async move {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("failed to listen on {address}"))?;
        if let Some(watch) = &settings.watch {
            feed::spawn_watchers(watch)?;
        }
        Store::open(&settings.data_dir)?;
        let local = listener.local_addr()?;
        tracing::info!("listening on http://{local}");
        axum::serve(listener, router(Arc::new(settings)))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server stopped")
    })
}
