//! GitHub's word on upstream pull requests, for the provenance drops the
//! release's history cannot decide (a rebase merge, a squash whose subject
//! lost its `(#n)`). The engine asks through [`PullLookup`]; only here does
//! that become a GitHub call, and only when a token is at hand.

use anyhow::Result;

use crate::engine::provenance::PullLookup;
use crate::github::Endpoint;

/// Looks pull requests up on GitHub: in the repository a message names, or
/// else in the upstream's (the event's `repo`).
#[derive(Debug)]
pub struct GitHubPulls {
    pub endpoint: Endpoint,
    pub upstream: String,
}

impl PullLookup for GitHubPulls {
    fn merge_commit(&self, repo: Option<&str>, number: u64) -> Result<Option<String>> {
        let repo = repo.unwrap_or(&self.upstream);
        self.endpoint.connect(repo)?.merge_commit_of(number)
    }
}
