//! A patch of the stack and what became of it: kept and replayed, dropped
//! because upstream has it, or landed on the candidate branch.

use serde::{Deserialize, Serialize};

use crate::git::RawCommit;

/// A patch of the stack, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    pub sha: String,
    pub subject: String,
    pub author: String,
}

impl Patch {
    pub(crate) fn of(commit: &RawCommit) -> Patch {
        Patch { sha: commit.id.clone(), subject: commit.subject(), author: commit.author() }
    }
}

/// A commit of the branch left out of the candidate, and why: upstream
/// already contains its change, or it is upstream's own work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub sha: String,
    pub subject: String,
    pub reason: String,
}

impl Dropped {
    pub(crate) fn of(commit: &RawCommit, reason: String) -> Dropped {
        Dropped { sha: commit.id.clone(), subject: commit.subject(), reason }
    }
}

/// The new candidate branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Full ref, `refs/heads/patchmoi/<tag>`.
    pub refname: String,
    pub sha: String,
    /// Where the previous value of the branch was kept, when it moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}
