//! What the patch service asks of GitHub: a repository's releases (a
//! conditional request, so an unchanged list costs no rate limit), a
//! `repository_dispatch` to a fork, and whether a fork has a branch.

use anyhow::{Context, Result};
use http::{HeaderName, Method};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{encode, next_link, Call, GitHub};

/// How many pages of releases (100 each) one poll reads at most.
const RELEASE_PAGES: u32 = 10;

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

impl GitHub {
    /// The newest releases, unless they are still what `etag` names. When
    /// they are not, pages on (`Link: rel="next"`, at most
    /// [`RELEASE_PAGES`]) until a page holds a release whose tag `known`
    /// says was seen before: more than a page of releases since the last
    /// poll are all read. The ETag is the first page's.
    /// https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate
    pub fn releases(&self, etag: Option<&str>, known: impl Fn(&str) -> bool) -> Result<Releases> {
        let headers: Vec<(HeaderName, String)> =
            etag.map(|etag| (http::header::IF_NONE_MATCH, etag.to_string())).into_iter().collect();
        let what = format!("list the releases of {}", self.repo);
        let call = Call {
            method: Method::GET,
            path: "/releases?per_page=100",
            body: None,
            headers: &headers,
            what: &what,
            idempotent: true,
            answers: &[304],
        };
        let mut reply = self.send_call(&call)?;
        // Later pages go unconditionally, and only a 2xx answers them.
        let next_page = Call { headers: &[], answers: &[], method: Method::GET, ..call };
        if reply.status == 304 {
            return Ok(Releases::NotModified);
        }
        let etag = reply.headers.get(http::header::ETAG).and_then(|value| value.to_str().ok()).map(str::to_string);
        let mut releases: Vec<Release> = Vec::new();
        for page in 1.. {
            let listed: Vec<Release> = serde_json::from_str(&reply.text)
                .with_context(|| format!("GitHub answered the releases of {} with unexpected JSON", self.repo))?;
            let reached_known = listed.iter().any(|release| known(&release.tag_name));
            releases.extend(listed);
            let link = reply.headers.get(http::header::LINK).and_then(|value| value.to_str().ok());
            let next = link.and_then(next_link).and_then(|next| next.strip_prefix(self.base.as_str()));
            match next {
                Some(next) if !reached_known && page < RELEASE_PAGES && next.starts_with('/') => {
                    reply = self.send_at(&next_page, next.to_string())?;
                }
                _ => break,
            }
        }
        Ok(Releases::Listed { releases, etag })
    }

    /// Sends a `repository_dispatch` event of `event_type`. Not repeated
    /// after a server error: the fork's workflow may have started already.
    pub fn dispatch(&self, event_type: &str, client_payload: &Value) -> Result<()> {
        let body = json!({"event_type": event_type, "client_payload": client_payload});
        self.post("/dispatches", &body, &format!("send {event_type} to {}", self.repo))?;
        Ok(())
    }

    /// Whether the repository has branch `branch`.
    pub fn has_branch(&self, branch: &str) -> Result<bool> {
        let segments: Vec<String> = branch.split('/').map(encode).collect();
        let path = format!("/git/ref/heads/{}", segments.join("/"));
        let what = format!("look up branch {branch} of {}", self.repo);
        let call = Call {
            method: Method::GET,
            path: &path,
            body: None,
            headers: &[],
            what: &what,
            idempotent: true,
            answers: &[404],
        };
        Ok(self.send_call(&call)?.status != 404)
    }
}
