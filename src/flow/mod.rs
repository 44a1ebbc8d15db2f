//! Flows: flow files and their discovery, events, the runner that executes
//! a flow's steps (the built-in `uses: rebase` through the engine, `run:`
//! commands in a shell), what runs produce, and the state on disk under
//! `.codex/workspace/actions/flow-client`.

pub mod event;
pub mod flows;
pub mod report;
pub mod resolve;
pub mod results;
pub mod runner;
pub mod shell;
pub mod state;
pub mod steps;
pub mod workspace;
