//! Candidate pull requests: one open PR per candidate branch, found by its
//! head (`owner:branch`) and updated, or created; older patchmoi PRs of the
//! same flow are closed with a comment that links the new one, and their
//! branches deleted. A hidden marker in the body names the flow and tag.

use anyhow::Result;
use serde_json::{json, Value};

use super::{api_error, api_status, encode, GitHub};

/// What the candidate's PR should say.
#[derive(Debug, Clone)]
pub struct PullRequestSpec {
    pub flow: String,
    pub tag: String,
    /// The candidate branch (short name), in the workflow's repository.
    pub head: String,
    /// `patchmoi/upstream/<tag>`: the release commit, so the diff is the stack.
    pub base: String,
    pub title: String,
    /// The body without the marker.
    pub body: String,
}

/// A PR as we report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    /// Whether this run created it (rather than found and updated it).
    pub created: bool,
}

/// An open pull request of the repository, by its branches (short names).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpenPull {
    pub number: u64,
    /// The head branch (in whichever repository it lives).
    pub head: String,
    /// The branch it would merge into, in this repository.
    pub base: String,
}

/// The hidden line that marks a patchmoi PR of `flow` for `tag`.
pub fn pr_marker(flow: &str, tag: &str) -> String {
    format!("<!-- patchmoi:pr flow={flow} tag={tag} -->")
}

/// `(flow, tag)` of a body's marker.
pub fn parse_pr_marker(body: &str) -> Option<(&str, &str)> {
    let rest = &body[body.find("<!-- patchmoi:pr flow=")? + "<!-- patchmoi:pr flow=".len()..];
    let rest = &rest[..rest.find(" -->")?];
    let (flow, tag) = rest.split_once(" tag=")?;
    Some((flow, tag))
}

/// Whether GitHub refused because the repository does not let Actions
/// open PRs ("Allow GitHub Actions to create and approve pull requests").
pub fn pr_creation_refused(err: &anyhow::Error) -> bool {
    api_error(err).is_some_and(|api| {
        matches!(api.status, Some(403 | 422))
            && api.message.contains("not permitted to create or approve pull requests")
    })
}

impl GitHub {
    fn owner(&self) -> &str {
        self.repo.split_once('/').map(|(owner, _)| owner).unwrap_or(&self.repo)
    }

    /// The open PR whose head is `branch` in this repository, if any.
    fn find_pr(&self, branch: &str) -> Result<Option<Value>> {
        let head = format!("{}:{branch}", self.owner());
        let path = format!("/pulls?state=open&head={}&per_page=100", encode(&head));
        let found = self.get(&path, &format!("look up the pull request of {branch}"))?;
        Ok(found.as_array().and_then(|prs| prs.first().cloned()))
    }

    /// The commit pull request `number` of this repository was merged as;
    /// None when it is not merged or there is no such pull request.
    pub fn merge_commit_of(&self, number: u64) -> Result<Option<String>> {
        match self.get(&format!("/pulls/{number}"), &format!("look up pull request #{number}")) {
            Ok(pr) if pr["merged"] == true => Ok(pr["merge_commit_sha"].as_str().map(str::to_string)),
            Ok(_) => Ok(None),
            Err(err) if api_status(&err) == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every open pull request of this repository, page after page.
    pub fn open_pulls(&self) -> Result<Vec<OpenPull>> {
        let open = self.get_all("/pulls?state=open&per_page=100", "list the open pull requests", Value::as_array)?;
        Ok(open
            .iter()
            .map(|pr| OpenPull {
                number: pr["number"].as_u64().unwrap_or_default(),
                head: pr["head"]["ref"].as_str().unwrap_or_default().to_string(),
                base: pr["base"]["ref"].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// The newest PR whose head is `branch` in this repository, in any state.
    pub fn pull_of_branch(&self, branch: &str) -> Result<Option<Value>> {
        let head = format!("{}:{branch}", self.owner());
        let path = format!("/pulls?state=all&head={}", encode(&head));
        let found = self.get(&path, &format!("look up the pull requests of {branch}"))?;
        Ok(found.as_array().and_then(|prs| prs.first().cloned()))
    }

    /// Updates the candidate's open PR, or opens one.
    pub fn open_or_update_pr(&self, spec: &PullRequestSpec) -> Result<PullRequest> {
        let body = format!("{}\n\n{}\n", spec.body.trim_end(), pr_marker(&spec.flow, &spec.tag));
        if let Some(found) = self.find_pr(&spec.head)? {
            let number = found["number"].as_u64().unwrap_or_default();
            let update = json!({"title": spec.title, "body": body, "base": spec.base});
            let pr = self.patch(&format!("/pulls/{number}"), &update, &format!("update pull request #{number}"))?;
            return Ok(PullRequest { number, url: html_url(&pr, &found), created: false });
        }
        let create = json!({"title": spec.title, "head": spec.head, "base": spec.base, "body": body});
        let created = std::cell::Cell::new(false);
        let pr = self.find_or_create(
            || self.find_pr(&spec.head),
            || {
                let made = self.post("/pulls", &create, &format!("open a pull request for {}", spec.head))?;
                created.set(true);
                Ok(made)
            },
        )?;
        Ok(PullRequest {
            number: pr["number"].as_u64().unwrap_or_default(),
            url: html_url(&pr, &pr),
            created: created.get(),
        })
    }

    /// Closes the open patchmoi PRs of `flow` for tags `is_older` says are
    /// older, each with one comment linking `newer`, and deletes their
    /// branches. Returns the numbers it closed.
    pub fn close_superseded_prs(
        &self,
        flow: &str,
        newer: &PullRequest,
        is_older: impl Fn(&str) -> bool,
    ) -> Result<Vec<u64>> {
        let open = self.get_all("/pulls?state=open&per_page=100", "list open pull requests", Value::as_array)?;
        let mut closed = Vec::new();
        for pr in &open {
            let number = pr["number"].as_u64().unwrap_or_default();
            let Some((pr_flow, tag)) = pr["body"].as_str().and_then(parse_pr_marker) else { continue };
            if pr_flow != flow || number == newer.number || !is_older(tag) {
                continue;
            }
            let marker = format!("<!-- patchmoi:superseded-by={} -->", newer.number);
            let comments = self.get_all(
                &format!("/issues/{number}/comments?per_page=100"),
                &format!("read the comments of #{number}"),
                Value::as_array,
            )?;
            let commented = comments.iter().any(|c| c["body"].as_str().is_some_and(|b| b.contains(&marker)));
            if !commented {
                let text = format!("Superseded by #{} ({}), for a newer release.\n\n{marker}", newer.number, newer.url);
                self.post(
                    &format!("/issues/{number}/comments"),
                    &json!({"body": text}),
                    &format!("comment on #{number}"),
                )?;
            }
            self.patch(&format!("/pulls/{number}"), &json!({"state": "closed"}), &format!("close #{number}"))?;
            let same_repo = pr["head"]["repo"]["full_name"].as_str() == Some(self.repo.as_str());
            if let (true, Some(branch)) = (same_repo, pr["head"]["ref"].as_str()) {
                self.delete_branch(branch)?;
            }
            closed.push(number);
        }
        Ok(closed)
    }
}

fn html_url(pr: &Value, fallback: &Value) -> String {
    pr["html_url"].as_str().or_else(|| fallback["html_url"].as_str()).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let body = format!("text\n\n{}\n", pr_marker("fork", "v1.2.0"));
        assert_eq!(parse_pr_marker(&body), Some(("fork", "v1.2.0")));
        assert_eq!(parse_pr_marker("no marker"), None);
    }
}
