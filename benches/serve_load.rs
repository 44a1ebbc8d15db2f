//! Load benchmark of `patchmoi serve`: 100 keep-alive clients read the API
//! (events, attempts, dispatches, health) while concurrent `patchmoi run`
//! CLI processes write 1,000 events (each with its dispatch and attempt)
//! into the same database. Prints throughput, p50/p99 latency, errors and
//! `PRAGMA integrity_check` afterwards; fails on an error or a bad check.
//!
//! `cargo bench --bench serve_load`. Smaller runs: PATCHMOI_LOAD_CLIENTS,
//! PATCHMOI_LOAD_EVENTS, PATCHMOI_LOAD_WRITERS.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TOKEN: &str = "load-t0ken";
const ROUTES: &[&str] =
    &["/flow-events?limit=50", "/maintenance-attempts?limit=50", "/flow-dispatches?limit=50", "/healthz"];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn patchmoi(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patchmoi"));
    cmd.current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// One GET on a kept-alive connection; the status.
async fn get(reader: &mut BufReader<TcpStream>, path: &str) -> Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\nx-patch-admin-token: {TOKEN}\r\n\r\n");
    reader.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).context("no status line")?.parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(status)
}

fn main() -> Result<()> {
    let clients = setting("PATCHMOI_LOAD_CLIENTS", 100);
    let events = setting("PATCHMOI_LOAD_EVENTS", 1000);
    let writers = setting("PATCHMOI_LOAD_WRITERS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().to_path_buf();

    // A workspace backend that accepts every event.
    let backend = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let backend_url = format!("http://{}", backend.local_addr()?);
    let app = Router::new().route(
        "/events",
        post(|| async { (axum::http::StatusCode::ACCEPTED, Json(json!({"status": "accepted", "runIds": []}))) }),
    );
    runtime.spawn(async move { axum::serve(backend, app).await });

    let mut server = patchmoi(&dir)
        .args(["serve", "--data-dir", "state"])
        .envs([("PORT", "0"), ("PATCH_ADMIN_TOKEN", TOKEN), ("RUST_LOG", "patchmoi=info")])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let stderr = server.stderr.take().context("serve's stderr")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let address = loop {
        let line = lines.next().context("serve exited before listening")??;
        if let Some((_, rest)) = line.split_once("listening on http://") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // Writers: concurrent CLI runs, each recording one event.
    let next = Arc::new(AtomicUsize::new(0));
    let failed_writes = Arc::new(AtomicUsize::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let writer_threads: Vec<_> = (0..writers)
        .map(|_| {
            let (next, failed, dir, backend_url) =
                (next.clone(), failed_writes.clone(), dir.clone(), backend_url.clone());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= events {
                    return;
                }
                let tag = format!("rust-v0.{n}.0");
                let ok = patchmoi(&dir)
                    .args(["run", "codex-release", "--tag", &tag, "--json", "--data-dir", "state"])
                    .env("PATCH_WORKSPACE_BACKEND_URL", &backend_url)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success());
                if !ok {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Readers: keep-alive clients until the writers are done.
    let latencies = runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (address, writing) = (address.clone(), writing.clone());
            tasks.push(tokio::spawn(async move {
                let mut seen: Vec<(Duration, bool)> = Vec::new();
                let mut reader = match TcpStream::connect(&address).await {
                    Ok(stream) => BufReader::new(stream),
                    Err(_) => return vec![(Duration::ZERO, false)],
                };
                let mut n = client;
                while writing.load(Ordering::SeqCst) {
                    let path = ROUTES[n % ROUTES.len()];
                    n += 1;
                    let begin = Instant::now();
                    let ok = matches!(get(&mut reader, path).await, Ok(200));
                    seen.push((begin.elapsed(), ok));
                    if !ok {
                        // Reconnect: the connection may be gone.
                        match TcpStream::connect(&address).await {
                            Ok(stream) => reader = BufReader::new(stream),
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
                seen
            }));
        }
        let waiter = tokio::task::spawn_blocking(move || {
            for thread in writer_threads {
                let _ = thread.join();
            }
            writing.store(false, Ordering::SeqCst);
        });
        let _ = waiter.await;
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap_or_default());
        }
        all
    });
    let elapsed = started.elapsed();
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let stopped = server.wait()?;

    let errors = latencies.iter().filter(|(_, ok)| !ok).count();
    let mut times: Vec<Duration> = latencies.iter().map(|(took, _)| *took).collect();
    times.sort();
    let pct = |p: f64| times.get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1))).copied();
    let store = patchmoi::service::store::Store::open(&dir.join("state"))?;
    let check = store.integrity_check()?;
    let (counts, _) = store.status_counts()?;
    let attempts: i64 = counts.iter().map(|(_, n)| n).sum();
    println!("serve load: {clients} clients, {events} events by {writers} concurrent CLI writers");
    println!("  wall time           {:.1} s", elapsed.as_secs_f64());
    println!("  requests            {}", times.len());
    println!("  throughput          {:.0} req/s", times.len() as f64 / elapsed.as_secs_f64());
    println!("  latency p50         {:.1} ms", pct(0.50).unwrap_or_default().as_secs_f64() * 1e3);
    println!("  latency p99         {:.1} ms", pct(0.99).unwrap_or_default().as_secs_f64() * 1e3);
    println!("  request errors      {errors}");
    println!("  failed CLI writes   {}", failed_writes.load(Ordering::SeqCst));
    println!("  attempts stored     {attempts}");
    println!("  integrity_check     {check}");
    println!("  serve stopped       {stopped}");
    if errors > 0 || failed_writes.load(Ordering::SeqCst) > 0 || check != "ok" || attempts < events as i64 {
        bail!("the load run had errors");
    }
    Ok(())
}
