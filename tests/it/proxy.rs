//! Enterprise networks: `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (either
//! case) carry every request patchmoi makes, to the GitHub API (octocrab)
//! and to feeds and backends alike. A tiny proxy on 127.0.0.1 records what
//! goes through it: plain http in absolute form (forwarded), https as a
//! CONNECT tunnel (refused here: the test needs no TLS server to see that
//! patchmoi asked the proxy, not DNS, for the host).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::{patchmoi, Canned, FakeServer};

/// A proxy that records each connection's request line and
/// `proxy-authorization`.
struct Proxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(client, &log));
            }
        });
        Proxy { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(client: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let first = head.lines().next().unwrap_or_default().to_string();
    let auth = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("proxy-authorization: ").map(str::to_string))
        .map(|auth| format!(" [{auth}]"))
        .unwrap_or_default();
    log.lock().unwrap().push(format!("{first}{auth}"));
    let mut client = client;
    if first.starts_with("CONNECT ") {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        return;
    }
    // `GET http://host:port/path HTTP/1.1`: forward to host:port, then pipe both ways.
    let target = first.split_whitespace().nth(1).unwrap_or_default();
    let authority = target.strip_prefix("http://").and_then(|rest| rest.split('/').next()).unwrap_or_default();
    let Ok(mut upstream) = TcpStream::connect(authority) else { return };
    upstream.write_all(head.as_bytes()).unwrap();
    let buffered = reader.buffer().to_vec();
    upstream.write_all(&buffered).unwrap();
    let mut from_upstream = upstream.try_clone().unwrap();
    let mut to_client = client.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
    });
    let mut rest = reader.into_inner();
    let mut buf = [0; 8192];
    while let Ok(n) = rest.read(&mut buf) {
        if n == 0 || upstream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn repo(full: &str) -> serde_json::Value {
    let (owner, name) = full.split_once('/').unwrap();
    json!({"owner": owner, "name": name, "fullName": full, "webUrl": format!("https://github.com/{full}")})
}

/// A sources file with a GitHub releases source and an Atom source.
fn sources(dir: &std::path::Path, feed_url: &str) -> String {
    let path = dir.join("feed-sources.json");
    let sources = json!({"sources": [
        {"id": "api", "provider": "github", "event": "release", "repo": repo("openai/codex"), "target": {"mode": "notify_only"}},
        {"id": "atom", "provider": "atom", "event": "release", "repo": repo("openai/codex"), "url": feed_url,
         "target": {"mode": "notify_only"}},
    ]});
    std::fs::write(&path, sources.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn watch(dir: &std::path::Path, sources: &str, env: &[(&str, &str)]) -> crate::support::Output {
    patchmoi(dir, &["watch", "--once", "--json", "--sources", sources, "--data-dir", "state"], env)
}

fn upstream() -> FakeServer {
    let server = FakeServer::start();
    server.route("GET", "/repos/openai/codex/releases", Canned::json(200, json!([{"tag_name": "rust-v1.0.0"}])));
    server.route("GET", "/feed.atom", Canned::xml(include_str!("../fixtures/feeds/codex-releases.atom")));
    server
}

#[test]
fn plain_http_goes_through_http_proxy_in_absolute_form_for_github_and_feeds() {
    for name in ["HTTP_PROXY", "http_proxy"] {
        let (server, proxy, tmp) = (upstream(), Proxy::start(), tempfile::tempdir().unwrap());
        let file = sources(tmp.path(), &format!("{}/feed.atom", server.url));
        let run =
            watch(tmp.path(), &file, &[("GITHUB_API_URL", &server.url), ("GITHUB_TOKEN", "t"), (name, &proxy.url)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json()["failed"], 0, "{}", run.stdout);
        let seen = proxy.seen();
        let api = format!("GET {}/repos/openai/codex/releases?per_page=100 HTTP/1.1", server.url);
        let feed = format!("GET {}/feed.atom HTTP/1.1", server.url);
        assert!(seen.contains(&api) && seen.contains(&feed), "{name}: {seen:?}");
        assert_eq!(server.seen().len(), 2, "both reached the server, through the proxy");
    }
}

#[test]
fn no_proxy_sends_matching_hosts_direct() {
    for (name, value) in [("NO_PROXY", "127.0.0.1"), ("no_proxy", "localhost, 127.0.0.0/8")] {
        let (server, proxy, tmp) = (upstream(), Proxy::start(), tempfile::tempdir().unwrap());
        let file = sources(tmp.path(), &format!("{}/feed.atom", server.url));
        let env = [("GITHUB_API_URL", server.url.as_str()), ("HTTP_PROXY", &proxy.url), (name, value)];
        let run = watch(tmp.path(), &file, &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(proxy.seen().is_empty(), "{name}={value}: {:?}", proxy.seen());
        assert_eq!(server.seen().len(), 2);
    }
}

#[test]
fn https_asks_https_proxy_for_a_tunnel_with_its_credentials() {
    let (proxy, tmp) = (Proxy::start(), tempfile::tempdir().unwrap());
    // Hosts no resolver knows: only the proxy can reach them.
    let file = sources(tmp.path(), "https://feeds.invalid/feed.atom");
    let with_user = proxy.url.replace("http://", "http://me:s3cret@");
    let env = [
        ("GITHUB_API_URL", "https://api.github.invalid"),
        ("https_proxy", with_user.as_str()),
        ("PATCHMOI_API_BACKOFF_MS", "1"),
    ];
    let run = watch(tmp.path(), &file, &env);
    let report = run.json();
    assert_eq!(report["failed"], 2, "{}", run.stdout);
    let mut seen = proxy.seen();
    seen.sort();
    // A read that got no answer is sent again: each attempt asks for its tunnel.
    seen.dedup();
    // base64("me:s3cret")
    let auth = "[basic bwu6cznjcmv0]";
    assert_eq!(
        seen,
        [
            format!("CONNECT api.github.invalid:443 HTTP/1.1 {auth}"),
            format!("CONNECT feeds.invalid:443 HTTP/1.1 {auth}")
        ],
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refused the tunnel"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret"), "the proxy's password stays out of messages:\n{}", run.stderr);
}
