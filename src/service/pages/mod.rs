//! The status pages at `/`: server-rendered HTML that works without
//! JavaScript. Overview (one row per watched upstream), a release's page
//! (its attempts, candidates, PR, check runs, dispatches), and the attempts
//! list, filterable by status and event. Behind the admin token like the
//! API: `Authorization: Bearer` opens every page; a browser signs in once
//! through a form and gets a signed session cookie. Reads never write.
//! `/badge/<owner>/<name>.svg` is the upstream's status badge and
//! `/badge/<flow>.svg` the flow's: open to all with `PATCH_PUBLIC_BADGES=1`,
//! else behind the same token or session.

pub mod badge;
pub mod overview;
pub mod report;
pub mod session;
pub mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use crate::service::attempt::AttemptStatus;
use crate::service::store::{attempt_status_filter, Filter, Store, MAX_LIMIT};
use overview::{flow_rows, upstream_rows, FlowRow, UpstreamRow};
use session::{cookie, token_matches, Keys, FORM_COOKIE, SESSION_COOKIE};

/// What the pages need from the server's settings.
pub struct Pages {
    pub data_dir: PathBuf,
    /// The admin token; None serves the pages openly (loopback only).
    pub token: Option<String>,
    /// Badges need no token (`PATCH_PUBLIC_BADGES=1`).
    pub public_badges: bool,
}

struct PageState {
    data_dir: PathBuf,
    token: Option<String>,
    keys: Option<Keys>,
    public_badges: bool,
}

type Shared = Arc<PageState>;

pub fn router(pages: Pages) -> Router {
    let keys = pages.token.as_deref().map(Keys::from_token);
    let state =
        Arc::new(PageState { data_dir: pages.data_dir, token: pages.token, keys, public_badges: pages.public_badges });
    let private = Router::new()
        .route("/", get(overview))
        .route("/releases/{id}", get(release))
        .route("/attempts", get(attempts))
        .route("/sign-out", post(sign_out))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_viewer));
    Router::new()
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/badge/{owner}/{file}", get(status_badge))
        .route("/badge/{file}", get(flow_badge))
        .merge(private)
        .with_state(state)
}

fn secure(headers: &HeaderMap) -> bool {
    // Behind a TLS-terminating proxy; it only ever adds `Secure`.
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|h| cookie(h, name))
}

/// The session cookie's value, when valid; `Some("")` when pages are open.
fn session_of(state: &PageState, headers: &HeaderMap) -> Option<String> {
    let Some(keys) = &state.keys else { return Some(String::new()) };
    cookie_of(headers, SESSION_COOKIE).filter(|value| keys.valid_session(value)).map(str::to_string)
}

fn bearer_ok(state: &PageState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else { return true };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let bearer = header("authorization").and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer.or_else(|| header("x-patch-admin-token").map(str::trim)).is_some_and(|given| token_matches(given, token))
}

/// A signed-in browser, or a Bearer token; else to the sign-in form.
async fn require_viewer(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if bearer_ok(&state, request.headers()) || session_of(&state, request.headers()).is_some() {
        return next.run(request).await;
    }
    if request.method() == Method::GET {
        let path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let next = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC);
        return Redirect::to(&format!("/sign-in?next={next}")).into_response();
    }
    html_error(StatusCode::UNAUTHORIZED, "Sign in first.")
}

/// The CSRF token for the sign-out form of this request's session.
fn csrf_of(state: &PageState, headers: &HeaderMap) -> Option<String> {
    let keys = state.keys.as_ref()?;
    let session = cookie_of(headers, SESSION_COOKIE).filter(|value| keys.valid_session(value))?;
    Some(keys.csrf(session))
}

fn html_page(markup: Markup) -> Response {
    let mut response = Html(markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("a valid header"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("a valid header"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, "nosniff".parse().expect("a valid header"));
    response
}

fn html_error(status: StatusCode, text: &str) -> Response {
    let mut response = html_page(view::message(status.canonical_reason().unwrap_or("Error"), text));
    *response.status_mut() = status;
    response
}

/// Store reads off the async threads.
async fn read<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let dir = state.data_dir.clone();
    let done = tokio::task::spawn_blocking(move || Store::open_for_reads(&dir).and_then(|store| work(&store))).await;
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::error!("a status page failed: {err:#}");
            Err(html_error(StatusCode::INTERNAL_SERVER_ERROR, "The database could not be read; see the server log."))
        }
        Err(_) => Err(html_error(StatusCode::INTERNAL_SERVER_ERROR, "The page failed.")),
    }
}

/// Runs read for the overview: enough for every flow's recent releases.
const FLOW_RUNS: usize = MAX_LIMIT * 4;

/// The overview's rows, read from the store.
fn rows(store: &Store) -> anyhow::Result<(Vec<UpstreamRow>, Vec<FlowRow>)> {
    let all = Filter { limit: Some(MAX_LIMIT), ..Filter::default() };
    let (events, attempts, runs) = (store.events(&all)?, store.attempts(&all)?, store.flow_runs(FLOW_RUNS)?);
    Ok((upstream_rows(&events, &attempts, &runs), flow_rows(&events, &attempts, &runs)))
}

async fn overview(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let found = read(&state, move |store| Ok((rows(store)?, store.polls()?))).await;
    match found {
        Ok(((upstreams, flows), polls)) => {
            html_page(view::overview(&upstreams, &flows, &polls, csrf_of(&state, &headers).as_deref()))
        }
        Err(response) => response,
    }
}

async fn release(State(state): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let found = read(&state, move |store| {
        let Some(event) = store.event(&id)? else { return Ok(None) };
        let by_event = Filter { event_id: Some(id), limit: Some(MAX_LIMIT), ..Filter::default() };
        let runs = store.runs_of_event(&event.id)?;
        Ok(Some((event, store.dispatches(&by_event)?, store.attempts(&by_event)?, runs)))
    })
    .await;
    match found {
        Ok(Some((event, dispatches, attempts, runs))) => {
            html_page(view::release(&event, &dispatches, &attempts, &runs, csrf_of(&state, &headers).as_deref()))
        }
        Ok(None) => html_error(StatusCode::NOT_FOUND, "No such release event."),
        Err(response) => response,
    }
}

async fn attempts(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let status = query.get("status").filter(|s| !s.is_empty()).cloned();
    let event = query.get("eventId").filter(|s| !s.is_empty()).cloned();
    let status = match attempt_status_filter(status.as_deref(), "status") {
        Ok(status) => status,
        Err(message) => return html_error(StatusCode::BAD_REQUEST, &message),
    };
    let filter = Filter { event_id: event.clone(), status: status.clone(), limit: Some(MAX_LIMIT), kind: None };
    match read(&state, move |store| store.attempts(&filter)).await {
        Ok(found) => {
            html_page(view::attempts(&found, status.as_deref(), event.as_deref(), csrf_of(&state, &headers).as_deref()))
        }
        Err(response) => response,
    }
}

/// The badge of `<owner>/<name>`: the status of the latest attempt of its
/// newest release event (as the overview's Status column), `unknown` when
/// there is none. Without `PATCH_PUBLIC_BADGES=1` a viewer must show the
/// token or a session, and is answered 401 (an image cannot sign in).
async fn status_badge(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((owner, file)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = badge_refused(&state, &headers) {
        return refused;
    }
    let Some(name) = file.strip_suffix(".svg") else {
        return html_error(StatusCode::NOT_FOUND, "Badges end in .svg.");
    };
    let repo = format!("{owner}/{name}");
    let wanted = repo.clone();
    let found = read(&state, move |store| {
        let (upstreams, _) = rows(store)?;
        Ok(upstreams.into_iter().find(|row| row.repo == wanted).and_then(|row| row.latest_status))
    })
    .await;
    match found {
        Ok(status) => badge_response(&repo, status),
        Err(response) => response,
    }
}

/// The badge of flow `<flow>`: its runs' status in the newest attempt of
/// its latest release (as the overview's Flows table), `unknown` when no
/// run named it.
async fn flow_badge(State(state): State<Shared>, headers: HeaderMap, Path(file): Path<String>) -> Response {
    if let Some(refused) = badge_refused(&state, &headers) {
        return refused;
    }
    let Some(flow) = file.strip_suffix(".svg").map(str::to_string) else {
        return html_error(StatusCode::NOT_FOUND, "Badges end in .svg.");
    };
    let wanted = flow.clone();
    let found = read(&state, move |store| {
        let (_, flows) = rows(store)?;
        Ok(flows.into_iter().find(|row| row.flow == wanted).map(|row| row.latest_status))
    })
    .await;
    match found {
        Ok(status) => badge_response(&flow, status),
        Err(response) => response,
    }
}

/// A 401 for a badge asked without the token or a session, unless badges are public.
fn badge_refused(state: &PageState, headers: &HeaderMap) -> Option<Response> {
    if state.public_badges || bearer_ok(state, headers) || session_of(state, headers).is_some() {
        return None;
    }
    Some((StatusCode::UNAUTHORIZED, "unauthorized: set PATCH_PUBLIC_BADGES=1 to serve badges openly\n").into_response())
}

fn badge_response(name: &str, status: Option<AttemptStatus>) -> Response {
    let mut response = badge::svg(name, status).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8".parse().expect("a valid header"));
    // README renderers (GitHub's camo) cache images; a badge must follow the status.
    headers.insert(header::CACHE_CONTROL, "no-cache, max-age=0".parse().expect("a valid header"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'".parse().expect("a valid header"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, "nosniff".parse().expect("a valid header"));
    response
}

/// Only a path on this site: no `//host` or scheme.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_string(),
        _ => "/".to_string(),
    }
}

async fn sign_in_form(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(keys) = &state.keys else { return Redirect::to("/").into_response() };
    let binding = session::random_token();
    let mut response =
        html_page(view::sign_in(&keys.csrf(&binding), &local_path(query.get("next").map(String::as_str)), false));
    let cookie = session::set_cookie(FORM_COOKIE, &binding, secure(&headers), 3600);
    response.headers_mut().append(header::SET_COOKIE, cookie.parse().expect("a valid cookie"));
    response
}

/// `application/x-www-form-urlencoded` fields.
fn form(body: &[u8]) -> HashMap<String, String> {
    let decode =
        |text: &str| percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned();
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .collect()
}

async fn sign_in(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (Some(keys), Some(token)) = (&state.keys, &state.token) else { return Redirect::to("/").into_response() };
    let fields = form(&body);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let binding = cookie_of(&headers, FORM_COOKIE).unwrap_or_default();
    if binding.is_empty() || !keys.valid_csrf(binding, field("csrf")) {
        return html_error(
            StatusCode::FORBIDDEN,
            "The form expired or came from another site: reload the sign-in page.",
        );
    }
    let next = local_path(fields.get("next").map(String::as_str));
    if !token_matches(field("token"), token) {
        let mut response = html_page(view::sign_in(&keys.csrf(binding), &next, true));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let mut response = Redirect::to(&next).into_response();
    let cookie = session::session_cookie(&keys.new_session(), secure(&headers));
    response.headers_mut().append(header::SET_COOKIE, cookie.parse().expect("a valid cookie"));
    response
}

async fn sign_out(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(keys) = &state.keys else { return Redirect::to("/").into_response() };
    let session = cookie_of(&headers, SESSION_COOKIE).unwrap_or_default();
    if !keys.valid_csrf(session, form(&body).get("csrf").map(String::as_str).unwrap_or_default()) {
        return html_error(StatusCode::FORBIDDEN, "The form expired or came from another site.");
    }
    let mut response = Redirect::to("/sign-in").into_response();
    let cookie = session::set_cookie(SESSION_COOKIE, "", secure(&headers), 0);
    response.headers_mut().append(header::SET_COOKIE, cookie.parse().expect("a valid cookie"));
    response
}
