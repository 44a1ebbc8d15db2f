//! patchmoi keeps a fork's patch stack alive across upstream releases.
//!
//! The crate is built in layers; each folder owns one, and imports only
//! point down this list (`tests/it/layers.rs` fails on a cycle or an upward
//! edge; docs/architecture.md says where a new feature goes):
//!
//! - [`cli`]: the command line, the only reader of the environment; it
//!   resolves one settings value per face and calls the faces below.
//! - [`action`]: the GitHub Actions face (one job: run, publish, report).
//! - [`service`]: the patch service (feeds, store, dispatch, HTTP server).
//! - [`flow`]: flows, events, the runner and its steps, state on disk.
//! - [`engine`]: the patch-stack engine: replay, conflicts, memory, publish.
//! - [`github`]: the one HTTP stack (GitHub through octocrab, the backend).
//! - [`git`]: the one wrapper around the git CLI.
//! - [`core`]: small shared types (errors, ref names, tag order, statuses).
//!
//! Data moves one way: event → plan → git → report.

pub mod action;
pub mod cli;
pub mod core;
pub mod engine;
pub mod flow;
pub mod git;
pub mod github;
pub mod service;
