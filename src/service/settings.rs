//! What the service is given: plain values the CLI resolved from flags,
//! files and the environment once, at its entry (`cli/service_settings.rs`).
//! Nothing below reads the environment.

use std::path::PathBuf;

use crate::github::Endpoint;
use crate::service::backend::Backend;
use crate::service::feed::config::FeedSource;
use crate::service::target::Target;

/// Where events go and whom the service asks about them.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The checkout local targets without their own root run in.
    pub workspace: PathBuf,
    /// Where an event goes when nothing else says: the workspace backend
    /// when one is configured, otherwise the runner in-process on
    /// `workspace`.
    pub default_target: Target,
    /// The configured workspace backend: syncing an attempt whose stored
    /// URL hid its credentials asks it.
    pub backend: Option<Backend>,
    /// The GitHub API with `GITHUB_TOKEN`: releases, sync.
    pub api: Endpoint,
}

/// A feed source and where its events go, resolved when the sources file
/// was loaded (None: `notify_only`, or no target).
#[derive(Debug, Clone)]
pub struct WatchedSource {
    pub source: FeedSource,
    pub target: Option<Target>,
}
