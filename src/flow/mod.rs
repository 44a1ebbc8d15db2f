//! Flows: flow files (`flow.yml`, and codex-flows' `flow.toml`) and their discovery, events, the runner that executes
//! a flow's steps (the built-in `uses: rebase` through the engine, `run:`
//! commands in a shell), what runs produce, and the state on disk under
//! `.codex/workspace/actions/flow-client`.

mod app_server;
pub mod event;
pub mod flows;
pub mod gate;
pub mod manifest;
pub mod pack;
pub mod prune;
pub mod pulls;
pub mod regenerate;
pub mod report;
pub mod resolve;
pub mod results;
pub mod runner;
pub mod schema;
mod script;
pub mod shell;
pub mod state;
pub mod steps;
pub mod supervise;
pub mod workspace;
