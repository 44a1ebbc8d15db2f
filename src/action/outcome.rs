//! What a job is given and what it ends with: the settings resolved from
//! the inputs and the runner's environment, and each flow's outcome as the
//! outputs, the summary, the check runs and the PR show it.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::action::io::EventInputs;
use crate::core::secrets::Credentials;
use crate::core::status::ResultStatus;
use crate::flow::event::FlowEvent;
use crate::flow::runner::RunResult;
use crate::git::basic_credential;
use crate::github::Endpoint;

/// Everything the job needs, resolved from inputs and the runner's environment.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub workspace: PathBuf,
    /// `GITHUB_API_URL`, the `token` input, `PATCHMOI_API_BACKOFF_MS`.
    pub api: Endpoint,
    pub flow: Option<String>,
    pub inputs: EventInputs,
    pub event_name: Option<String>,
    pub event_payload: Option<Value>,
    pub push: bool,
    pub pull_request: bool,
    /// A tag whose candidate becomes the maintained branch (instead of a run).
    pub promote: Option<String>,
    /// `GITHUB_SERVER_URL`.
    pub server_url: String,
    /// `GITHUB_REPOSITORY`: the fork.
    pub repository: Option<String>,
    /// `GITHUB_SHA`: where checks of a run without a candidate sit.
    pub sha: Option<String>,
    /// This workflow run's page (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`):
    /// where check runs and commit statuses link.
    pub run_url: Option<String>,
    pub code_mode: bool,
    /// What `run:` steps start from, and the credentials they may name.
    pub step_env: Vec<(String, String)>,
    pub step_secrets: Credentials,
}

/// What one flow ended with, as outputs and the summary show it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowOutcome {
    pub flow: String,
    pub status: Option<ResultStatus>,
    pub candidate_ref: Option<String>,
    pub candidate_sha: Option<String>,
    pub pr_number: Option<u64>,
    pub pr_url: Option<String>,
    pub report: Option<String>,
    pub tracking_issue: Option<String>,
    #[serde(skip)]
    pub runs: Vec<RunResult>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The whole job.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub status: ResultStatus,
    pub event: Option<FlowEvent>,
    pub flows: Vec<FlowOutcome>,
    /// Why nothing ran, when nothing did.
    pub nothing: Option<String>,
}

impl JobSettings {
    /// The token and the credential git derives from it: never printed, never stored.
    pub fn secrets(&self) -> Vec<String> {
        self.api.token().iter().flat_map(|token| [token.to_string(), basic_credential(token)]).collect()
    }
}

/// `patchmoi/upstream/<tag>`: the release commit as a branch, the PR's base.
pub fn base_branch(tag: &str) -> String {
    format!("patchmoi/upstream/{tag}")
}
