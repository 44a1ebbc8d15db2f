//! The feed watchers of `serve`: one thread per source, as `watch` runs
//! them, but stoppable: a stop ends the wait between polls at once, and a
//! poll in flight finishes (its events and dispatches are recorded) before
//! its thread ends.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::service::feed::{config, poll, WatchSettings};
use crate::service::store::Store;

/// A flag the watcher threads sleep on.
#[derive(Default)]
struct Flag {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Flag {
    /// Sleeps up to `period`; true when stopped meanwhile.
    fn sleep(&self, period: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(|poison| poison.into_inner());
        let (stopped, _) =
            self.wake.wait_timeout_while(stopped, period, |stopped| !*stopped).unwrap_or_else(|p| p.into_inner());
        *stopped
    }
}

/// The running watchers.
pub struct Watchers {
    flag: Arc<Flag>,
    threads: Vec<JoinHandle<()>>,
}

impl Watchers {
    /// Starts one thread per source of `settings.sources`.
    pub fn start(settings: &WatchSettings) -> Result<Watchers> {
        tracing::info!(sources = settings.sources.len(), file = %settings.file.display(), "watching feeds");
        let flag = Arc::new(Flag::default());
        let mut threads = Vec::new();
        for watched in settings.sources.clone() {
            let (settings, flag) = (settings.clone(), flag.clone());
            let source = watched.source.clone();
            threads.push(std::thread::spawn(move || {
                let interval = Duration::from_secs(source.poll_interval_seconds.max(config::MIN_INTERVAL));
                loop {
                    match Store::open(&settings.data_dir) {
                        Ok(mut store) => match poll::poll_source(&mut store, &watched, &settings.api) {
                            Ok(report) => tracing::info!(
                                source = %source.id, new = report.new_events.len(), unchanged = report.unchanged,
                                primed = report.primed, "polled"
                            ),
                            Err(err) => tracing::error!(source = %source.id, "poll failed: {err:#}"),
                        },
                        Err(err) => tracing::error!(source = %source.id, "cannot open the database: {err:#}"),
                    }
                    if flag.sleep(interval) {
                        return;
                    }
                }
            }));
        }
        Ok(Watchers { flag, threads })
    }

    /// Wakes every watcher and waits up to `bound` for polls in flight.
    pub fn stop(self, bound: Duration) {
        *self.flag.stopped.lock().unwrap_or_else(|poison| poison.into_inner()) = true;
        self.flag.wake.notify_all();
        let deadline = Instant::now() + bound;
        for thread in self.threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("a feed poll was still running at the stop");
            }
        }
    }
}
