//! A programmable local HTTP server for the service's servers that are not
//! GitHub (the workspace backend, Atom feeds; GitHub is `fake_github`): it
//! records every request, answers from a table of canned responses (with
//! ETags and 304s), and, given a secret, verifies `x-flow-signature-256`
//! like a workspace backend does. Binds 127.0.0.1 on an ephemeral port.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent (percent-encoding kept).
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The status we answered.
    pub status: u16,
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
    pub content_type: &'static str,
    /// A `location` header (for redirects).
    pub location: Option<String>,
    /// A `link` header (for the pages of a listing).
    pub link: Option<String>,
}

impl Canned {
    pub fn json(status: u16, body: serde_json::Value) -> Canned {
        Canned {
            status,
            body: body.to_string(),
            etag: None,
            content_type: "application/json",
            location: None,
            link: None,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Canned {
        Canned { location: Some(location.to_string()), ..Canned::json(status, serde_json::json!({"message": "Moved"})) }
    }

    pub fn with_etag(mut self, etag: &str) -> Canned {
        self.etag = Some(etag.to_string());
        self
    }

    /// With `link: <next>; rel="next"`, as a page of a GitHub listing.
    pub fn with_next(mut self, next: &str) -> Canned {
        self.link = Some(format!("<{next}>; rel=\"next\""));
        self
    }

    pub fn xml(body: &str) -> Canned {
        Canned { content_type: "application/atom+xml", ..Canned::json(200, serde_json::Value::Null) }.with_body(body)
    }

    fn with_body(mut self, body: &str) -> Canned {
        self.body = body.to_string();
        self
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// "METHOD /path" (path without query) → answer.
    routes: HashMap<String, Canned>,
    /// Answers given once each, before `routes`, in order.
    once: HashMap<String, std::collections::VecDeque<Canned>>,
    secret: Option<String>,
}

pub struct FakeServer {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeServer { url, inner, _runtime: runtime }
    }

    /// Answer `METHOD /path` with `canned` from now on.
    pub fn route(&self, method: &str, path: &str, canned: Canned) {
        self.inner.lock().unwrap().routes.insert(format!("{method} {path}"), canned);
    }

    /// Answer the next `METHOD /path` with `canned`, once, before the route.
    pub fn route_once(&self, method: &str, path: &str, canned: Canned) {
        self.inner.lock().unwrap().once.entry(format!("{method} {path}")).or_default().push_back(canned);
    }

    /// Verify `x-flow-signature-256` on POSTs with this secret (401 otherwise).
    pub fn require_signature(&self, secret: &str) {
        self.inner.lock().unwrap().secret = Some(secret.to_string());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, method: &str, path_prefix: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == method && s.path.starts_with(path_prefix)).collect()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().seen.clear();
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), value.to_str().unwrap_or_default().to_string()))
        .collect();
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let key = format!("{method} {}", uri.path());
    let once = inner.once.get_mut(&key).and_then(std::collections::VecDeque::pop_front);
    let mut answer = once
        .or_else(|| inner.routes.get(&key).cloned())
        .unwrap_or(Canned::json(404, serde_json::json!({"error": "not found"})));
    if method == Method::POST {
        if let Some(secret) = &inner.secret {
            let want = format!("sha256={}", patchmoi::service::backend::sign(secret, body.as_bytes()));
            if headers.get("x-flow-signature-256") != Some(&want) {
                answer = Canned::json(401, serde_json::json!({"error": "invalid signature"}));
            }
        }
    }
    if let (Some(etag), Some(sent)) = (&answer.etag, headers.get("if-none-match")) {
        if etag == sent {
            answer = Canned {
                status: 304,
                body: String::new(),
                etag: Some(etag.clone()),
                content_type: "text/plain",
                location: None,
                link: None,
            };
        }
    }
    inner.seen.push(Seen { method: method.to_string(), path, headers, body, status: answer.status });
    let mut response =
        (StatusCode::from_u16(answer.status).unwrap(), [("content-type", answer.content_type)], answer.body)
            .into_response();
    if let Some(etag) = answer.etag {
        response.headers_mut().insert("etag", etag.parse().unwrap());
    }
    if let Some(link) = answer.link {
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    if let Some(location) = answer.location {
        response.headers_mut().insert("location", location.parse().unwrap());
    }
    response
}

/// Runs the binary in `cwd` with a clean service environment plus `env`.
pub fn patchmoi(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = service_command(cwd, args, env);
    let output = cmd.output().expect("patchmoi runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The command, without running it: the service variables of the calling
/// environment removed so tests see only what they set.
pub fn service_command(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patchmoi"));
    cmd.current_dir(cwd).args(args).env("RUST_LOG", "patchmoi=debug");
    for name in [
        "DATA_DIR",
        "FEED_SOURCES_PATH",
        "PATCH_ADMIN_TOKEN",
        "PATCH_WORKSPACE_BACKEND_URL",
        "PATCH_WORKSPACE_BACKEND_SECRET",
        "PATCH_FLOW_BACKEND_URL",
        "PATCH_FLOW_DISPATCH_URL",
        "PATCH_FLOW_DISPATCH_SECRET",
        "PATCH_WEBHOOK_SECRET",
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
        "CODEX_WORKSPACE_MODE",
        "GITHUB_ACTIONS",
        "HOST",
        "PORT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(name);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}
