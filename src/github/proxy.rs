//! Proxies, as enterprise networks set them: `HTTPS_PROXY`, `HTTP_PROXY`
//! and `NO_PROXY` (resolved in `cli/`, handed here as [`Proxies`]) decide,
//! per destination, whether a connection goes direct, through an HTTP
//! CONNECT tunnel (https: TLS runs end to end inside it, so the proxy sees
//! only the host), or to the proxy itself with requests in absolute form
//! (plain http). One connector under both clients: octocrab's for the
//! GitHub API and [`super::transport`]'s for feeds and the backend.
//! `NO_PROXY` follows curl: comma-separated hosts (a domain covers its
//! subdomains), IPs and CIDR ranges, or `*`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy settings of the process, as values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `http://` destinations (`HTTP_PROXY`).
    pub http: Option<String>,
    /// For `https://` destinations (`HTTPS_PROXY`).
    pub https: Option<String>,
    /// Destinations that go direct (`NO_PROXY`).
    pub no: Option<String>,
}

impl Proxies {
    fn matcher(&self) -> Matcher {
        let value = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
        Matcher::builder().http(value(&self.http)).https(value(&self.https)).no(value(&self.no)).build()
    }
}

static PROXIES: OnceLock<Proxies> = OnceLock::new();

/// Sets the process's proxies, once, before the first request (`cli/`
/// does, from the environment). Later calls change nothing.
pub fn use_proxies(proxies: Proxies) {
    if PROXIES.set(proxies).is_err() {
        tracing::debug!("proxies were set already");
    }
}

/// The process's proxies (none unless [`use_proxies`] said so).
fn proxies() -> &'static Proxies {
    PROXIES.get_or_init(Proxies::default)
}

/// Where a request to `url` goes: None direct, else the proxy's URL.
pub fn proxy_for(url: &Uri) -> Option<Uri> {
    proxies().matcher().intercept(url).map(|intercept| intercept.uri().clone())
}

/// The `proxy-authorization` a plain-http request to `url` carries when its
/// proxy has `user:password@` (a tunnel sends its own on CONNECT).
pub fn proxy_authorization(url: &Uri) -> Option<HeaderValue> {
    if url.scheme_str() != Some("http") {
        return None;
    }
    proxies().matcher().intercept(url).and_then(|intercept| intercept.basic_auth().cloned())
}

/// A TCP connector that goes through the proxy the destination calls for.
#[derive(Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    matcher: Arc<Matcher>,
}

impl ProxyConnector {
    /// Over `http` (a TCP connector with its timeouts), by the process's proxies.
    pub fn new(http: HttpConnector) -> ProxyConnector {
        ProxyConnector { http, matcher: Arc::new(proxies().matcher()) }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.matcher.intercept(&dst);
        let mut http = self.http.clone();
        Box::pin(async move {
            let Some(proxy) = intercept else {
                return Ok(Conn { io: http.call(dst).await?, proxied: false });
            };
            if proxy.uri().scheme_str() != Some("http") {
                return Err(format!("proxy {} is not an http:// proxy; only those are supported", proxy.uri()).into());
            }
            if dst.scheme_str() == Some("https") {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
                let io = tunnel
                    .call(dst)
                    .await
                    .map_err(|err| format!("proxy {} refused the tunnel: {err:?}", proxy.uri()))?;
                return Ok(Conn { io, proxied: false });
            }
            Ok(Conn { io: http.call(proxy.uri().clone()).await?, proxied: true })
        })
    }
}

/// A connection, direct or by proxy: a plain-http request on one to the
/// proxy itself goes in absolute form (`GET http://host/path`).
pub struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_go_through_the_proxy_their_scheme_names_unless_no_proxy_says() {
        let proxies = Proxies {
            http: Some("http://plain.proxy:3128".into()),
            https: Some("http://user:pw@tls.proxy:3128".into()),
            no: Some("internal.example, 10.0.0.0/8,.corp".into()),
        };
        let matcher = proxies.matcher();
        let via = |url: &str| matcher.intercept(&url.parse().unwrap()).map(|i| i.uri().to_string());
        let cases = [
            ("https://api.github.com/repos", Some("http://tls.proxy:3128/")),
            ("http://feeds.example/a.atom", Some("http://plain.proxy:3128/")),
            ("https://internal.example/x", None),
            ("https://git.internal.example/x", None),
            ("http://10.1.2.3:8080/events", None),
            ("https://build.corp/x", None),
            ("https://notinternal.example/x", Some("http://tls.proxy:3128/")),
        ];
        for (url, want) in cases {
            assert_eq!(via(url).as_deref(), want, "{url}");
        }
        let none = Proxies::default().matcher();
        assert!(none.intercept(&"https://api.github.com".parse().unwrap()).is_none());
    }
}
