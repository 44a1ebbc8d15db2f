//! `feed-sources.json`: which release feeds to poll and where each new
//! release goes. Typos are refused; defaults are generous.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::error::usage;
use crate::flow::event;

/// The whole file: `{"sources": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSources {
    /// The feeds to poll, each with its own interval.
    #[serde(default)]
    pub sources: Vec<FeedSource>,
}

/// One feed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedSource {
    /// Unique key: cursors and logs use it.
    pub id: String,
    /// `github` polls the REST API by `repo`; anything else (`codeberg`,
    /// `jojo`, ...) reads the Atom/RSS feed at `url`.
    pub provider: String,
    /// The Atom/RSS feed (needed unless the provider is `github`).
    #[serde(default)]
    pub url: Option<String>,
    /// What the feed announces: only `release` for now.
    pub event: FeedEvent,
    /// The upstream repository.
    pub repo: RepoInfo,
    /// Where new releases go (default: stored, nothing dispatched).
    #[serde(default)]
    pub target: Option<TargetConfig>,
    /// Seconds between polls (default 300, at least 30).
    #[serde(default = "default_interval")]
    pub poll_interval_seconds: u64,
    /// true (default): the first poll only records where the feed stands;
    /// false: the first poll emits every entry, oldest first.
    #[serde(default = "default_true")]
    pub prime_only: bool,
    /// Follow prereleases too (default false).
    #[serde(default)]
    pub prereleases: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedEvent {
    Release,
    Push,
}

/// The upstream repository a feed follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoInfo {
    pub owner: String,
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    pub web_url: String,
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// Where a source's new releases go, by `mode`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    /// Store the event; dispatch nothing.
    NotifyOnly {
        #[serde(default)]
        provider: Option<String>,
        #[serde(default, rename = "repoFullName")]
        repo_full_name: Option<String>,
        #[serde(default)]
        branch: Option<String>,
    },
    /// Dispatch to a workspace backend (also spelled `flow_dispatch`).
    #[serde(alias = "flow_dispatch", rename_all = "camelCase")]
    WorkspaceFlow {
        /// The event type to emit, e.g. `upstream.release`.
        event_type: String,
        /// The backend URL itself.
        #[serde(default)]
        workspace_url: Option<String>,
        /// The variable holding the backend URL.
        #[serde(default)]
        workspace_url_env: Option<String>,
        /// The variable holding the signing secret (never the secret itself).
        #[serde(default)]
        workspace_secret_env: Option<String>,
        /// Older names of the three above.
        #[serde(default)]
        dispatch_url: Option<String>,
        #[serde(default)]
        dispatch_url_env: Option<String>,
        #[serde(default)]
        dispatch_secret_env: Option<String>,
        /// Merged into the event payload last.
        #[serde(default)]
        payload: Map<String, Value>,
    },
    /// A `repository_dispatch` to the fork `repo` (`owner/name`).
    #[serde(rename_all = "camelCase")]
    RepositoryDispatch {
        repo: String,
        /// The variable holding a token allowed to dispatch (default GITHUB_TOKEN).
        #[serde(default)]
        token_env: Option<String>,
        #[serde(default)]
        event_type: Option<String>,
        #[serde(default)]
        payload: Map<String, Value>,
    },
    /// Run the flows in-process on `workspaceRoot` (default: the watcher's).
    #[serde(rename_all = "camelCase")]
    Local {
        #[serde(default)]
        workspace_root: Option<String>,
        #[serde(default)]
        event_type: Option<String>,
        #[serde(default)]
        payload: Map<String, Value>,
    },
}

impl TargetConfig {
    /// The event type this target emits (default `upstream.release`).
    pub fn event_type(&self) -> &str {
        match self {
            TargetConfig::WorkspaceFlow { event_type, .. } => event_type,
            TargetConfig::RepositoryDispatch { event_type, .. } | TargetConfig::Local { event_type, .. } => {
                event_type.as_deref().unwrap_or(event::UPSTREAM_RELEASE)
            }
            TargetConfig::NotifyOnly { .. } => event::UPSTREAM_RELEASE,
        }
    }

    /// Extra payload fields, merged last.
    pub fn payload(&self) -> Option<&Map<String, Value>> {
        match self {
            TargetConfig::WorkspaceFlow { payload, .. }
            | TargetConfig::RepositoryDispatch { payload, .. }
            | TargetConfig::Local { payload, .. } => Some(payload),
            TargetConfig::NotifyOnly { .. } => None,
        }
    }
}

fn default_interval() -> u64 {
    300
}

fn default_true() -> bool {
    true
}

/// The smallest interval a source may ask for.
pub const MIN_INTERVAL: u64 = 30;

/// Reads and checks a sources file; every error names the file, and the
/// source and field when it is about one.
pub fn load(path: &Path) -> Result<FeedSources> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read feed sources file {}", path.display()))?;
    parse(&text).map_err(|why| usage(format!("feed sources file {}: {why}", path.display())))
}

pub fn parse(text: &str) -> Result<FeedSources, String> {
    // The path names the field: `sources[0].pollIntervalSeconds: invalid type ...`.
    let mut reader = serde_json::Deserializer::from_str(text);
    let sources: FeedSources = serde_path_to_error::deserialize(&mut reader).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            err.inner().to_string()
        } else {
            format!("{path}: {}", err.inner())
        }
    })?;
    let mut ids = BTreeSet::new();
    for source in &sources.sources {
        let id = &source.id;
        if id.trim().is_empty() {
            return Err("a source has an empty `id`".into());
        }
        if !ids.insert(id.clone()) {
            return Err(format!("source id `{id}` appears twice"));
        }
        if source.event == FeedEvent::Push {
            return Err(format!(
                "source `{id}`: `event: push` is not supported yet; patchmoi polls `release` feeds only"
            ));
        }
        if source.poll_interval_seconds < MIN_INTERVAL {
            return Err(format!(
                "source `{id}`: `pollIntervalSeconds` is {}, the minimum is {MIN_INTERVAL}",
                source.poll_interval_seconds
            ));
        }
        event::check_repo(&source.repo.full_name).map_err(|why| format!("source `{id}`: `repo.fullName`: {why}"))?;
        if source.provider != "github" && source.url.as_deref().is_none_or(|url| url.trim().is_empty()) {
            return Err(format!("source `{id}`: provider `{}` needs a feed `url`", source.provider));
        }
        if let Some(TargetConfig::RepositoryDispatch { repo, .. }) = &source.target {
            event::check_repo(repo).map_err(|why| format!("source `{id}`: `target.repo`: {why}"))?;
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/feed-sources.json");

    #[test]
    fn the_example_loads_with_defaults() {
        let sources = parse(EXAMPLE).unwrap();
        let codex = sources.sources.iter().find(|s| s.id == "github-openai-codex-releases").unwrap();
        assert_eq!(codex.provider, "github");
        assert_eq!(codex.repo.full_name, "openai/codex");
        assert_eq!(codex.poll_interval_seconds, 300);
        assert!(codex.prime_only && !codex.prereleases);
        let target = codex.target.as_ref().unwrap();
        assert_eq!(target.event_type(), "upstream.release");
        assert!(
            matches!(target, TargetConfig::WorkspaceFlow { workspace_url_env: Some(v), .. } if v == "PATCH_WORKSPACE_BACKEND_URL")
        );
    }

    #[test]
    fn bad_files_name_the_source_and_field() {
        let repo = r#""repo": {"owner": "o", "name": "r", "fullName": "o/r", "webUrl": "https://x/o/r"}"#;
        let cases = [
            (
                format!(r#"{{"sources": [{{"id": "a", "provider": "github", "event": "push", {repo}}}]}}"#),
                "`event: push` is not supported",
            ),
            (
                format!(
                    r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", "pollIntervalSeconds": 5, {repo}}}]}}"#
                ),
                "minimum is 30",
            ),
            (
                format!(
                    r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", "typo": 1, {repo}}}]}}"#
                ),
                "unknown field `typo`",
            ),
            (
                format!(r#"{{"sources": [{{"id": "a", "provider": "codeberg", "event": "release", {repo}}}]}}"#),
                "needs a feed `url`",
            ),
            (
                format!(
                    r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", "target": {{"mode": "workspace_flow", "eventType": "x", "secret": "s"}}, {repo}}}]}}"#
                ),
                "unknown field `secret`",
            ),
            (
                format!(
                    r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", {repo}}}, {{"id": "a", "provider": "github", "event": "release", {repo}}}]}}"#
                ),
                "appears twice",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "{text}\n{err}");
        }
        let alias = format!(
            r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", "target": {{"mode": "flow_dispatch", "eventType": "x"}}, {repo}}}]}}"#
        );
        assert!(parse(&alias).is_ok());
        assert!(parse("{}").unwrap().sources.is_empty());
        let wrong_type = format!(
            r#"{{"sources": [{{"id": "a", "provider": "github", "event": "release", "pollIntervalSeconds": "5m", {repo}}}]}}"#
        );
        let err = parse(&wrong_type).unwrap_err();
        assert!(err.starts_with("sources[0].pollIntervalSeconds: invalid type"), "{err}");
    }
}
