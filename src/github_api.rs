//! The few GitHub REST calls the patch service makes: list a repository's
//! releases (conditional on an ETag), send a `repository_dispatch`, and ask
//! whether a fork has a branch. Plain blocking HTTP, so the service has no
//! async client of its own; these fold into `src/github/` later.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::http_client::{self, Request};
use crate::settings::Env;

/// A GitHub API endpoint and the token to use there.
#[derive(Clone)]
pub struct GitHubApi {
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for GitHubApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApi").field("base", &self.base).field("token", &self.token.is_some()).finish()
    }
}

/// A release as the REST API lists it (the fields we read).
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    pub tag_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default)]
    pub published_at: Option<String>,
}

/// The answer to a conditional request for releases.
#[derive(Debug)]
pub enum Releases {
    /// 304: nothing changed since the ETag we sent.
    NotModified,
    /// Newest first, as GitHub lists them.
    Listed { releases: Vec<Release>, etag: Option<String> },
}

impl GitHubApi {
    pub fn new(base: &str, token: Option<String>) -> GitHubApi {
        GitHubApi { base: base.trim_end_matches('/').to_string(), token }
    }

    /// `GITHUB_API_URL` (default `https://api.github.com`) and `token`.
    pub fn from_env(env: &Env, token: Option<String>) -> GitHubApi {
        GitHubApi::new(env.get("GITHUB_API_URL").unwrap_or("https://api.github.com"), token)
    }

    fn request<'a>(&self, request: Request<'a>) -> Request<'a> {
        let request =
            request.header("accept", "application/vnd.github+json").header("x-github-api-version", "2022-11-28");
        match &self.token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// `GET /repos/{repo}/releases`, with `If-None-Match` when we have an ETag.
    pub fn releases(&self, repo: &str, etag: Option<&str>) -> Result<Releases> {
        let url = format!("{}/repos/{repo}/releases?per_page=30", self.base);
        let mut request = self.request(Request::get(&url));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        let response = http_client::send(&request)?;
        match response.status {
            304 => Ok(Releases::NotModified),
            200 => {
                let releases = serde_json::from_str(&response.body)
                    .with_context(|| format!("GitHub answered the releases of {repo} with unexpected JSON"))?;
                Ok(Releases::Listed { releases, etag: response.etag })
            }
            status => bail!("GitHub answered GET /repos/{repo}/releases with {status}"),
        }
    }

    /// `POST /repos/{repo}/dispatches`.
    pub fn repository_dispatch(&self, repo: &str, event_type: &str, client_payload: &Value) -> Result<()> {
        let url = format!("{}/repos/{repo}/dispatches", self.base);
        let body = serde_json::json!({"event_type": event_type, "client_payload": client_payload}).to_string();
        let response = http_client::send(&self.request(Request::post(&url, &body)))?;
        if !response.is_success() {
            bail!("GitHub answered POST /repos/{repo}/dispatches with {}", response.status);
        }
        Ok(())
    }

    /// The check runs on the head of `branch` (`GET /repos/{repo}/commits/{ref}/check-runs`).
    pub fn check_runs(&self, repo: &str, branch: &str) -> Result<Vec<Value>> {
        let path = format!("/repos/{repo}/commits/{}/check-runs", crate::backend::encode(branch));
        let body = self.get_json(&format!("{path}?per_page=100"), &path)?;
        Ok(body["check_runs"].as_array().cloned().unwrap_or_default())
    }

    /// The newest pull request whose head is `branch` of `repo`, in any state.
    pub fn pull_for_branch(&self, repo: &str, branch: &str) -> Result<Option<Value>> {
        let owner = repo.split('/').next().unwrap_or_default();
        let path = format!("/repos/{repo}/pulls");
        let query = format!("{path}?state=all&head={}", crate::backend::encode(&format!("{owner}:{branch}")));
        let body = self.get_json(&query, &path)?;
        Ok(body.as_array().and_then(|pulls| pulls.first().cloned()))
    }

    fn get_json(&self, path_and_query: &str, path: &str) -> Result<Value> {
        let url = format!("{}{path_and_query}", self.base);
        let response = http_client::send(&self.request(Request::get(&url)))?;
        if !response.is_success() {
            bail!("GitHub answered GET {path} with {}", response.status);
        }
        serde_json::from_str(&response.body).with_context(|| format!("GitHub answered GET {path} with invalid JSON"))
    }

    /// Whether `repo` has branch `branch` (`GET /repos/{repo}/git/ref/heads/{branch}`).
    pub fn has_branch(&self, repo: &str, branch: &str) -> Result<bool> {
        let url = format!("{}/repos/{repo}/git/ref/heads/{branch}", self.base);
        let response = http_client::send(&self.request(Request::get(&url)))?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            status => bail!("GitHub answered GET /repos/{repo}/git/ref/heads/{branch} with {status}"),
        }
    }
}
