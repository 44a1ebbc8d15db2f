//! What runs produce: the result of one step of one flow for one event
//! (status, message, artifacts), the report of a whole event, and run ids.
//! The runner makes them, the state file stores them, the Action and the
//! service read them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::status::ResultStatus;
use crate::engine::conflict;
use crate::engine::stack::{self, Dropped, Patch};
use crate::flow::event::FlowEvent;

/// The outcome of one event: every run, and their combined status.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub event: FlowEvent,
    pub status: ResultStatus,
    pub runs: Vec<RunResult>,
    /// True when these results were stored by an earlier run of the same
    /// event and nothing ran now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

/// One step of one flow for one event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub id: String,
    pub flow: String,
    pub step: String,
    pub runner: String,
    pub status: ResultStatus,
    pub gated: bool,
    pub message: String,
    pub artifacts: Artifacts,
    /// The step errored (as opposed to reaching a verdict).
    #[serde(skip)]
    pub error: bool,
    #[serde(skip)]
    pub started_at: String,
    #[serde(skip)]
    pub completed_at: String,
}

/// What a run produced, for people and for later steps and commands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifacts {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_refs: Vec<CandidateRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<RefAt>,
    /// The maintained branch head the candidate was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<RefAt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carried: Vec<Patch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    /// Patches whose conflicts the memory of resolutions resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_from_memory: Vec<stack::RecalledPatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<conflict::ConflictReport>,
    /// `conflict.json` and `conflict.md` of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_markdown: Option<String>,
    /// The step's whole log, and its last lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// What a `flow.toml` step's `FLOW_RESULT` carried, as it carried it.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRef {
    pub kind: String,
    #[serde(rename = "ref")]
    pub refname: String,
    pub sha: String,
    pub pushed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// A named ref and the commit it pointed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefAt {
    pub name: String,
    pub sha: String,
}

/// `run_` + 12 hex of sha256(eventId NUL flow NUL step [NUL nonce]), with
/// `_replay` after the hex for replays.
pub fn run_id(event_id: &str, flow: &str, step: &str, replay_nonce: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(event_id.as_bytes());
    hasher.update([0]);
    hasher.update(flow.as_bytes());
    hasher.update([0]);
    hasher.update(step.as_bytes());
    if let Some(nonce) = replay_nonce {
        hasher.update([0]);
        hasher.update(nonce.as_bytes());
    }
    let hex = format!("{:x}", hasher.finalize());
    match replay_nonce {
        Some(_) => format!("run_{}_replay", &hex[..12]),
        None => format!("run_{}", &hex[..12]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_follow_the_original_scheme() {
        let id =
            run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "rebase-patch-stack", None);
        assert!(id.starts_with("run_") && id.len() == 16, "{id}");
        assert_eq!(
            id,
            run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "rebase-patch-stack", None)
        );
        assert_ne!(id, run_id("patch:upstream.release:openai/codex:rust-v1.2.3", "peezy-codex-fork", "build", None));
        let replay = run_id("e", "f", "s", Some("2026-01-01T00:00:00.000Z"));
        assert!(replay.starts_with("run_") && replay.ends_with("_replay"), "{replay}");
    }
}
