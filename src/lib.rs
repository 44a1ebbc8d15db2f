//! patchmoi keeps a fork's patch stack alive across upstream releases.
//!
//! Data moves one way: an event ([`event`]) matches flows ([`flows`]); the
//! runner ([`runner`]) executes their steps: the patch-stack engine
//! ([`stack`]) replays the stack onto the release in memory through the git
//! wrapper ([`git`]), a conflict becomes a report ([`conflict`]), checks run
//! in a worktree ([`checks`]), and results land in the state file ([`state`]).

pub mod actions;
pub mod attempt;
pub mod backend;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod conflict;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod feed;
pub mod flows;
pub mod git;
pub mod github;
pub mod http_client;
pub mod job;
pub mod local;
pub mod markers;
pub mod memory;
pub mod promote;
pub mod publish;
pub mod recall;
pub mod refname;
pub mod replay;
pub mod report;
pub mod resolve;
pub mod results;
pub mod runner;
pub mod server;
pub mod service;
pub mod settings;
pub mod stack;
pub mod state;
pub mod status;
pub mod store;
pub mod upstreamed;
pub mod version;
pub mod webhook;
pub mod workspace;
