//! The one integration test binary. Each module tests one face of patchmoi
//! as a user meets it: real git repositories in temp dirs, the real
//! `patchmoi` binary, a fake GitHub that checks every request against
//! GitHub's OpenAPI description, local feed and backend servers on
//! 127.0.0.1. `layers` checks the crate's architecture.

mod common;
mod fake_github;
mod support;

mod action;
mod action_yml;
mod badges;
mod browser;
mod cli;
mod culprits;
mod differential;
mod dispatch;
mod feed;
mod fewer;
mod flows;
mod history;
mod install;
mod layers;
mod local_dispatch;
mod maintainer;
mod memory;
mod overview;
mod packs;
mod pages;
mod proxy;
mod prune;
mod rebase;
mod records;
mod resolve;
mod secrets;
mod serve_limits;
mod server;
mod steps_end;
