//! What the fake GitHub does for the patch service: a repository's releases
//! (with ETags and 304s, as GitHub's conditional requests), repository
//! dispatches, branch lookups, and renamed repositories (a 301 to
//! `/repositories/<id>/…`, which then serves the repository under its new
//! name).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{branch, decode, reply, Ctx, FakeGitHub, State};

/// A repository's releases, newest first, and the ETag of the list.
#[derive(Debug, Clone)]
pub struct ReleaseList {
    pub etag: String,
    pub items: Vec<Value>,
}

impl FakeGitHub {
    /// Publishes `releases` (newest first) as `repo`'s list, under a new
    /// ETag: `"e1"` for the first list the fake hands out, `"e2"` next …
    pub fn set_releases(&self, repo: &str, releases: Vec<Value>) {
        let mut state = self.state();
        state.etags += 1;
        let etag = format!("\"e{}\"", state.etags);
        state.releases.insert(repo.to_string(), ReleaseList { etag, items: releases });
    }

    /// Answers reads without a token, as GitHub does for public repositories.
    pub fn allow_public_reads(&self) {
        self.state().public_reads = true;
    }

    /// `from` was renamed to `to`: requests for `from` are answered with a
    /// 301 to `/repositories/<id>/…`, which serves `to`.
    pub fn rename(&self, from: &str, to: &str, id: u64) {
        let location = format!("{}/repositories/{id}", self.url);
        let mut state = self.state();
        state.repository_ids.push((id, to.to_string()));
        state.redirects.push((from.to_string(), location));
    }

    /// Requests for `repo` are answered with a 301 to `location` + the rest
    /// of the path (a redirect out of the API, which must not be followed).
    pub fn redirect_repo(&self, repo: &str, location: &str) {
        self.state().redirects.push((repo.to_string(), location.to_string()));
    }
}

/// A 301 for a request under a redirected `/repos/<owner>/<repo>`.
pub(crate) fn redirect(state: &State, path: &str, query: Option<&str>) -> Option<Response> {
    let rest = path.strip_prefix("/repos/")?;
    state.redirects.iter().find_map(|(repo, location)| {
        let tail = rest.strip_prefix(repo.as_str())?;
        if !(tail.is_empty() || tail.starts_with('/')) {
            return None;
        }
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let mut response = reply(301, json!({"message": "Moved Permanently", "url": format!("{location}{tail}")}));
        response.headers_mut().insert("location", format!("{location}{tail}{query}").parse().ok()?);
        Some(response)
    })
}

/// `/repositories/<id>/rest` as the `/repos/<owner>/<repo>/rest` it stands for.
pub(crate) fn by_id(state: &State, path: &str) -> Option<String> {
    let (id, tail) = path.strip_prefix("/repositories/")?.split_once('/')?;
    let id: u64 = id.parse().ok()?;
    let repo = state.repository_ids.iter().find(|(known, _)| *known == id)?;
    Some(format!("/repos/{}/{tail}", repo.1))
}

/// The service's operations; None for the others (see `routes`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    state: &mut State,
    ctx: &Ctx,
    method: &str,
    template: &str,
    param: &dyn Fn(&str) -> String,
    if_none_match: Option<&str>,
    repo: &str,
    body: &Value,
) -> Option<Response> {
    Some(match (method, template) {
        ("get", "/repos/{owner}/{repo}/releases") => {
            let Some(list) = state.releases.get(repo) else {
                return Some(reply(404, json!({"message": "Not Found"})));
            };
            // https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate
            if if_none_match == Some(list.etag.as_str()) {
                return Some((StatusCode::NOT_MODIFIED, [("etag", list.etag.clone())]).into_response());
            }
            let mut response = reply(200, json!(list.items));
            response.headers_mut().insert("etag", list.etag.parse().unwrap());
            response
        }
        ("post", "/repos/{owner}/{repo}/dispatches") => {
            state.dispatches.push(json!({"repo": repo, "event_type": body["event_type"],
                                         "client_payload": body["client_payload"]}));
            StatusCode::NO_CONTENT.into_response()
        }
        ("get", "/repos/{owner}/{repo}/git/ref/{ref}") => {
            let name = param("ref");
            let name = decode(&name);
            match name.strip_prefix("heads/").and_then(|name| branch(ctx, name)) {
                Some(sha) => {
                    reply(200, json!({"ref": format!("refs/{name}"), "object": {"type": "commit", "sha": sha}}))
                }
                None => reply(404, json!({"message": "Not Found"})),
            }
        }
        _ => return None,
    })
}
