//! The accept loop of `serve`: hyper's HTTP/1 connections with a header
//! timeout, at most `max_connections` at once, and a graceful stop on
//! SIGTERM or Ctrl-C: stop accepting, let each connection finish the
//! request it is serving, wait for detached work (a retry whose client left)
//! within `shutdown_timeout`, then return.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::service::http_limits::Limits;

/// Work that outlives its request (a handler's blocking part goes on when
/// the client leaves): a stop waits until none is left.
#[derive(Default)]
pub struct Work {
    running: AtomicUsize,
    idle: Notify,
}

/// Held while one piece of work runs.
pub struct WorkGuard(Arc<Work>);

impl Work {
    pub fn start(self: &Arc<Work>) -> WorkGuard {
        self.running.fetch_add(1, Ordering::SeqCst);
        WorkGuard(self.clone())
    }

    /// Resolves once no work runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// SIGTERM (what systemd, docker and Kubernetes send) or Ctrl-C.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
        _ = terminated => tracing::info!("SIGTERM: stopping"),
    }
}

/// Resolves when the stop is announced (the guard `wait_for` returns is
/// not `Send`, so it must not live across the select).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// Serves `app` on `listener` until `stop` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    work: Arc<Work>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Taking the permit first leaves connections over the cap in the
        // kernel's listen queue instead of accepting and dropping them.
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => permit?,
        };
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: pause, don't spin.
                    tracing::warn!("failed to accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop_seen = stop_seen.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stopped(&mut stop_seen) => {
                    // Finishes the request in flight, then closes.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!("connection ended: {err}");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = async {
        while connections.join_next().await.is_some() {}
        work.idle().await;
    };
    if tokio::time::timeout(limits.shutdown_timeout, drained).await.is_err() {
        tracing::warn!(
            "stopped with work still in flight after {}s (PATCH_SHUTDOWN_TIMEOUT)",
            limits.shutdown_timeout.as_secs_f64()
        );
        connections.abort_all();
    }
    Ok(())
}
