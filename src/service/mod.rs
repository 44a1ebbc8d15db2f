//! The patch service: release feeds, the SQLite store, dispatch (to
//! repository_dispatch, the workspace backend or a local checkout),
//! maintenance attempts, webhooks, and the HTTP server.

pub mod attempt;
pub mod backend;
pub mod dispatch;
pub mod feed;
pub mod http_limits;
pub mod listener;
pub mod local;
pub mod metrics;
pub mod ops;
pub mod pages;
pub mod server;
pub mod settings;
pub mod store;
pub mod target;
pub mod watchers;
pub mod webhook;
