//! A fake GitHub REST API for tests: an HTTP server on 127.0.0.1 (ephemeral
//! port) that keeps state (check runs, statuses, PRs, comments, issues) and
//! reads refs from the test's bare `origin` repository, so it refuses a
//! check run on a commit that was never pushed, as GitHub does. Every
//! request must carry the token and the API version, name an operation of
//! the trimmed OpenAPI description, and send a body that validates against
//! it; anything else is answered 400 and recorded as a violation.
//! Faults (a status with headers, or a dropped connection, optionally
//! after the request took effect) can be queued per operation.
//!
//! The patch service's calls live beside the Action's: releases with ETags
//! (`releases`), `repository_dispatch`, branch lookups, renamed repositories
//! answered with a redirect, and reads without a token for public
//! repositories.

mod openapi;
mod releases;
mod routes;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::support::Seen;

pub use openapi::Spec;
pub use releases::ReleaseList;

/// A queued misbehaviour for the next request to one operation.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    /// The OpenAPI path template, e.g. `/repos/{owner}/{repo}/pulls`.
    pub template: &'static str,
    /// None: drop the connection without an answer.
    pub status: Option<u16>,
    pub headers: Vec<(&'static str, &'static str)>,
    pub message: &'static str,
    /// Apply the request before misbehaving (the "did it happen?" case).
    pub apply: bool,
}

#[derive(Default)]
pub struct State {
    pub next_number: u64,
    pub next_id: u64,
    pub check_runs: Vec<Value>,
    pub statuses: Vec<Value>,
    pub pulls: Vec<Value>,
    /// Pull requests of other repositories (an upstream's), each with its
    /// `base.repo.full_name`, `merged` and `merge_commit_sha`.
    pub foreign_pulls: Vec<Value>,
    pub issues: Vec<Value>,
    pub comments: Vec<Value>,
    pub requests: Vec<String>,
    /// When each of `requests` came.
    pub stamps: Vec<std::time::Instant>,
    pub violations: Vec<String>,
    pub faults: VecDeque<Fault>,
    pub issues_disabled: bool,
    /// An issue another client opens just before the next issue is created
    /// (a run racing this one).
    pub issue_opened_meanwhile: Option<Value>,
    /// An issue another client opens just after the next issue is created.
    pub issue_opened_after: Option<Value>,
    /// Answer 422 to closing an issue as a duplicate (as an older GitHub
    /// Enterprise without that reason would).
    pub no_duplicate_reason: bool,
    /// Users with write permission (everyone else may read).
    pub writers: Vec<String>,
    /// Everything any request carried, to look for leaked secrets.
    pub seen: String,
    /// Authorization headers git sent to the smart-HTTP endpoint.
    pub git_auth: Vec<String>,
    /// Every request with the status it was answered (0: dropped).
    pub log: Vec<Seen>,
    /// Answer reads without a token, as GitHub does for public repositories.
    pub public_reads: bool,
    /// Releases by `owner/repo`, newest first.
    pub releases: std::collections::HashMap<String, ReleaseList>,
    /// ETags handed out so far (the next list gets `"e<n+1>"`).
    pub etags: u64,
    /// `repository_dispatch` events received: `{"repo", "event_type", "client_payload"}`.
    pub dispatches: Vec<Value>,
    /// `owner/repo` → where its requests are redirected (301), as for a
    /// renamed or transferred repository.
    pub redirects: Vec<(String, String)>,
    /// `/repositories/<id>/…` serves `/repos/<owner/repo>/…`.
    pub repository_ids: Vec<(u64, String)>,
}

pub struct FakeGitHub {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

pub(crate) struct Ctx {
    state: Arc<Mutex<State>>,
    spec: Spec,
    token: String,
    origin: PathBuf,
}

impl FakeGitHub {
    /// Starts the server for repository `owner/name` whose git remote is `origin`.
    pub fn start(token: &str, origin: PathBuf) -> FakeGitHub {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let state = Arc::new(Mutex::new(State { next_number: 1, next_id: 1000, ..State::default() }));
        let ctx = Arc::new(Ctx { state: state.clone(), spec: Spec::load(), token: token.to_string(), origin });
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let ctx = ctx.clone();
            async move {
                let index = log(&ctx, &method, &uri, &headers, &body);
                let response = handle(&ctx, method, uri, headers, body);
                let mut state = ctx.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                state.log[index].status = response.status().as_u16();
                response
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGitHub { url, state, _runtime: runtime }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Every request so far, as [`crate::support::FakeServer::seen`] lists them.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().log.clone()
    }

    /// The requests with `method` whose path (and query) starts with `path_prefix`.
    pub fn seen_at(&self, method: &str, path_prefix: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == method && s.path.starts_with(path_prefix)).collect()
    }
}

/// Records a request before it is handled; its index in the log.
fn log(ctx: &Ctx, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> usize {
    let headers = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), value.to_str().unwrap_or_default().to_string()))
        .collect();
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let body = String::from_utf8_lossy(body).into_owned();
    let mut state = ctx.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    state.log.push(Seen { method: method.to_string(), path, headers, body, status: 0 });
    state.log.len() - 1
}

pub(crate) fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// One page of a listing, as GitHub serves it: `per_page` (default 30, at
/// most 100) items of page `page`, and a `Link` header with `rel="next"`
/// (the same query, the next page) while more remain.
pub(crate) type Page = (Vec<Value>, Option<String>);

fn paged(list: Vec<Value>, query: &[(String, String)], here: &str) -> Page {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse::<usize>().ok());
    let per_page = get("per_page").unwrap_or(30).clamp(1, 100);
    let page = get("page").unwrap_or(1).max(1);
    let more = list.len() > page * per_page;
    let items = list.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let link = more.then(|| {
        let mut pairs: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace('&', "%26").replace(' ', "%20")))
            .collect();
        pairs.push(format!("page={}", page + 1));
        format!("<{here}?{}>; rel=\"next\"", pairs.join("&"))
    });
    (items, link)
}

/// A page as a response, with its `Link` header.
pub(crate) fn reply_page(body: Value, link: Option<String>) -> Response {
    let mut response = reply(200, body);
    if let Some(link) = link {
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

fn handle(ctx: &Ctx, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let method_name = method.as_str().to_ascii_lowercase();
    // GitHub Enterprise serves the API under /api/v3: accept both.
    let path = uri.path().strip_prefix("/api/v3").unwrap_or(uri.path()).to_string();
    let query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let mut state = ctx.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    state.seen.push_str(&format!("{} {}\n{}\n", method, uri, String::from_utf8_lossy(&body)));
    state.requests.push(format!("{} {}", method, uri.path()));
    state.stamps.push(std::time::Instant::now());
    let violation = |state: &mut State, text: String| {
        state.violations.push(text.clone());
        reply(400, json!({"message": text}))
    };
    // git over smart HTTP (`<owner>/<repo>.git/info/refs`): record how it
    // authenticated, then refuse, as a repository without push access would.
    if path.ends_with("/info/refs") {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        state.git_auth.push(auth);
        return (StatusCode::FORBIDDEN, "denied by the fake").into_response();
    }
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let public_read = authorization.is_none() && method == Method::GET && state.public_reads;
    if authorization != Some(&format!("Bearer {}", ctx.token)) && !public_read {
        return reply(401, json!({"message": "Bad credentials"}));
    }
    // Exactly one: a repeated header reads as "2022-11-28, 2022-11-28".
    let versions: Vec<&str> = headers.get_all("x-github-api-version").iter().filter_map(|v| v.to_str().ok()).collect();
    if versions != ["2022-11-28"] {
        return violation(
            &mut state,
            format!("{method} {path}: X-GitHub-Api-Version is {versions:?}, not 2022-11-28 once"),
        );
    }
    if let Some(moved) = releases::redirect(&state, &path, uri.query()) {
        return moved;
    }
    let path = releases::by_id(&state, &path).unwrap_or(path);
    let Some((template, params)) = ctx.spec.operation(&method_name, &path) else {
        return violation(&mut state, format!("{method} {path}: not an operation of the trimmed OpenAPI description"));
    };
    let json_body: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    if let Err(err) = ctx.spec.validate_body(&method_name, &template, &json_body) {
        return violation(&mut state, format!("{method} {path}: {err}"));
    }
    let fault = match state.faults.iter().position(|f| f.method == method_name && f.template == template) {
        Some(index) => state.faults.remove(index),
        None => None,
    };
    if let Some(fault) = &fault {
        if !fault.apply {
            return misbehave(state, fault);
        }
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let repo = format!("{}/{}", param("owner"), param("repo"));
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    let here = format!("http://{host}{}", uri.path());
    let page = |list: Vec<Value>| paged(list, &query, &here);
    let if_none_match = headers.get("if-none-match").and_then(|v| v.to_str().ok());
    let answer =
        match releases::route(&mut state, ctx, &method_name, &template, &param, if_none_match, &repo, &json_body) {
            Some(answer) => answer,
            None => routes::route(&mut state, ctx, &method_name, &template, &param, &q, &page, &repo, json_body),
        };
    match fault {
        Some(fault) => misbehave(state, &fault),
        None => answer,
    }
}

fn misbehave(state: std::sync::MutexGuard<'_, State>, fault: &Fault) -> Response {
    drop(state);
    match fault.status {
        Some(status) => {
            let mut response = reply(status, json!({"message": fault.message}));
            for (key, value) in &fault.headers {
                response.headers_mut().insert(*key, value.parse().unwrap());
            }
            response
        }
        // A panicking handler makes hyper drop the connection: the client sees no answer.
        None => panic!("fake GitHub drops this connection on purpose"),
    }
}

/// Whether the bare origin has `sha` as a commit.
pub(crate) fn has_commit(ctx: &Ctx, sha: &str) -> bool {
    Command::new("git")
        .current_dir(&ctx.origin)
        .args(["cat-file", "-e", &format!("{sha}^{{commit}}")])
        .status()
        .is_ok_and(|status| status.success())
}

/// The commit `name` stands for: itself when it is an object id, else the
/// head of the origin's branch of that name.
pub(crate) fn commit_of(ctx: &Ctx, name: &str) -> String {
    let name = decode(name);
    if name.len() >= 40 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return name;
    }
    branch(ctx, &name).unwrap_or(name)
}

/// The origin's value of `refs/heads/<branch>`.
pub(crate) fn branch(ctx: &Ctx, name: &str) -> Option<String> {
    let out = Command::new("git")
        .current_dir(&ctx.origin)
        .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{name}")])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(crate) fn delete_branch(ctx: &Ctx, name: &str) -> bool {
    Command::new("git")
        .current_dir(&ctx.origin)
        .args(["update-ref", "-d", &format!("refs/heads/{name}")])
        .status()
        .is_ok_and(|status| status.success())
        && branch(ctx, name).is_none()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
