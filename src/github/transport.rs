//! Plain HTTP(S) for everything but the GitHub API (feeds, the workspace
//! backend), on the same hyper/rustls stack, connector and runtime as
//! octocrab: a blocking call with timeouts and a User-Agent, and every
//! status as an answer rather than an error, so callers branch on it.
//! Both go through the process's proxies ([`super::proxy`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::proxy::{proxy_authorization, ProxyConnector};
use crate::core::error::error_chain;
use crate::core::redact::redact_url;
use crate::core::runtime::block_on;

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
    let what = || format!("{} {}", request.method, redact(request.url));
    let method =
        http::Method::from_bytes(request.method.as_bytes()).with_context(|| format!("{} is no method", what()))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(request.url)
        .header(http::header::USER_AGENT, concat!("patchmoi/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.as_str());
    }
    if let Some(auth) = request.url.parse().ok().and_then(|url| proxy_authorization(&url)) {
        builder = builder.header(http::header::PROXY_AUTHORIZATION, auth);
    }
    let body = Full::new(Bytes::from(request.body.unwrap_or_default().to_string()));
    let built = builder.body(body).with_context(|| format!("{} is not a valid request", what()))?;
    let answer = block_on(async {
        let response = tokio::time::timeout(TIMEOUT, client().request(built))
            .await
            .map_err(|_| anyhow!("timed out after {TIMEOUT:?}"))?
            .map_err(|err| anyhow!("{}", error_chain(&err)))?;
        let status = response.status().as_u16();
        let etag = response.headers().get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| anyhow!("timed out reading the answer after {TIMEOUT:?}"))?
            .map_err(|err| anyhow!("failed to read the answer: {err}"))?
            .to_bytes();
        Ok::<_, anyhow::Error>((status, etag, bytes))
    });
    let (status, etag, bytes) = answer.with_context(|| format!("{} got no answer", what()))?;
    let body = String::from_utf8(bytes.to_vec()).with_context(|| format!("the answer of {} is not UTF-8", what()))?;
    Ok(Response { status, etag, body })
}

/// How long a request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(60);

type Client = hyper_util::client::legacy::Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// The process's one client for plain HTTP(S).
fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector()))
}

/// The connector under every client: TCP (10 s to connect) through the
/// process's proxies, then TLS with the same hyper-rustls and ring stack
/// octocrab has, and the same certificate policy (the OS store, or
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` when set).
pub(crate) fn connector() -> HttpsConnector<ProxyConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let tcp = ProxyConnector::new(http);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider) {
        Ok(builder) => builder.https_or_http().enable_http1().wrap_connector(tcp),
        Err(err) => {
            tracing::warn!("no usable certificate store ({err}); HTTPS requests will fail");
            let empty = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(empty).https_or_http().enable_http1().wrap_connector(tcp)
        }
    }
}

/// `url` without `user:password@`, for messages.
pub fn redact(url: &str) -> String {
    redact_url(url)
}
