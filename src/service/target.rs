//! Where an event is sent and what was recorded of sending it: the
//! dispatch targets (repository_dispatch, the workspace backend, a local
//! checkout) and the dispatch record the store keeps for each attempt.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::secrets::Credentials;
use crate::github::Endpoint;
use crate::service::attempt::{Operation, Transport};
use crate::service::backend::Backend;

/// What became of a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    Dispatched,
    Failed,
    /// Nothing was sent: the target had already handled the event.
    Skipped,
}

impl DispatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Dispatched => "dispatched",
            DispatchStatus::Failed => "failed",
            DispatchStatus::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<DispatchStatus> {
        [DispatchStatus::Dispatched, DispatchStatus::Failed, DispatchStatus::Skipped]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One delivery of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchRecord {
    pub event_id: String,
    pub event_type: String,
    pub operation: Operation,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_backend_url: Option<String>,
    /// The URL the request went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub status: DispatchStatus,
    #[serde(default)]
    pub run_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
}

/// Where an event goes, resolved from flags, a feed target and the environment.
#[derive(Debug, Clone)]
pub enum Target {
    Workspace(Backend),
    /// A `repository_dispatch` to `repo`, unless its `patchmoi/upstream/<tag>`
    /// branch shows it already handled the release.
    RepositoryDispatch {
        api: Endpoint,
        repo: String,
    },
    /// The runner in-process on a checkout.
    Local(LocalTarget),
    /// A target that cannot be reached as configured; recorded as a failed
    /// dispatch with this reason, so `retry` can send it later.
    Missing(String),
}

/// In-process runs: the checkout, and the runner's knobs.
#[derive(Debug, Clone)]
pub struct LocalTarget {
    pub workspace: PathBuf,
    /// The Actions/local surface (`CODEX_WORKSPACE_MODE=actions` or `GITHUB_ACTIONS=true`).
    pub actions: bool,
    pub code_mode: bool,
    /// What its `run:` steps start from, and the credentials they may name.
    pub step_env: Vec<(String, String)>,
    pub step_secrets: Credentials,
    pub push: bool,
}
