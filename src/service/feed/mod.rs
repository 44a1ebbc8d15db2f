//! Release feeds: the sources file ([`config`]), parsing Atom, RSS and
//! GitHub releases ([`parse`]), polling one source ([`poll`]), and the
//! schedule here: each source on its own interval, one poll of a source at
//! a time, a failing source logged and retried without blocking the others.

pub mod config;
pub mod parse;
pub mod poll;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::github::Endpoint;
use crate::service::settings::WatchedSource;
use crate::service::store::Store;
use poll::PollReport;

/// Everything a watcher needs, resolved up front.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The sources file, for messages.
    pub file: PathBuf,
    /// Its sources, each with its target resolved when it was loaded.
    pub sources: Vec<WatchedSource>,
    pub data_dir: PathBuf,
    /// The GitHub API with `GITHUB_TOKEN`, for `github` sources.
    pub api: Endpoint,
}

/// One round over every source.
#[derive(Debug, Serialize)]
pub struct PollSummary {
    pub sources: Vec<PollReport>,
    pub failed: usize,
    /// Sources that answered with no releases at all.
    pub empty: usize,
}

fn poll_logged(store: &mut Store, watched: &WatchedSource, settings: &WatchSettings) -> PollReport {
    let source = &watched.source;
    match poll::poll_source(store, watched, &settings.api) {
        Ok(report) => {
            tracing::info!(
                source = %source.id, new = report.new_events.len(), unchanged = report.unchanged,
                primed = report.primed, "polled"
            );
            report
        }
        Err(err) => {
            tracing::error!(source = %source.id, "poll failed: {err:#}");
            PollReport { source_id: source.id.clone(), error: Some(format!("{err:#}")), ..PollReport::default() }
        }
    }
}

/// Polls every source once, in file order; one failing source does not stop
/// the others.
pub fn poll_all_once(settings: &WatchSettings) -> Result<PollSummary> {
    let mut store = Store::open(&settings.data_dir)?;
    let reports: Vec<PollReport> =
        settings.sources.iter().map(|watched| poll_logged(&mut store, watched, settings)).collect();
    let failed = reports.iter().filter(|report| report.error.is_some()).count();
    let empty = reports.iter().filter(|report| report.empty).count();
    Ok(PollSummary { sources: reports, failed, empty })
}

/// Polls each source on its own thread and interval, forever. A poll of a
/// source never overlaps the previous one: the next starts only after it
/// ended and the interval passed.
pub fn watch_forever(settings: &WatchSettings) -> Result<()> {
    let handles = spawn_watchers(settings)?;
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

/// Starts one polling thread per source (used by `watch` and `serve`).
pub fn spawn_watchers(settings: &WatchSettings) -> Result<Vec<std::thread::JoinHandle<()>>> {
    tracing::info!(sources = settings.sources.len(), file = %settings.file.display(), "watching feeds");
    let mut handles = Vec::new();
    for watched in settings.sources.clone() {
        let settings = settings.clone();
        handles.push(std::thread::spawn(move || {
            let interval = Duration::from_secs(watched.source.poll_interval_seconds.max(config::MIN_INTERVAL));
            loop {
                match Store::open(&settings.data_dir) {
                    Ok(mut store) => {
                        poll_logged(&mut store, &watched, &settings);
                    }
                    Err(err) => tracing::error!(source = %watched.source.id, "cannot open the database: {err:#}"),
                }
                std::thread::sleep(interval);
            }
        }));
    }
    Ok(handles)
}
