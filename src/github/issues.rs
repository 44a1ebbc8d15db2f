//! The tracking issue: one per flow, found again by a hidden marker in its
//! body and edited (reopened if closed), never one per run. Issues are off
//! by default on forks; that is an outcome, not an error.

use anyhow::Result;
use serde_json::{json, Value};

use super::{api_status, GitHub};

/// How many pages of issues we look through for the marker.
const PAGES: u32 = 5;

/// What became of the tracking issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingIssue {
    Created {
        number: u64,
        url: String,
    },
    Updated {
        number: u64,
        url: String,
    },
    /// The repository has Issues turned off (GitHub answers 410).
    Disabled,
}

/// The label of tracking issues (GitHub creates it on first use).
const TRACKING_LABEL: &str = "patchmoi";

/// The hidden line that marks the tracking issue of `flow`.
pub fn issue_marker(flow: &str) -> String {
    format!("<!-- patchmoi:tracking flow={flow} -->")
}

impl GitHub {
    /// Looks among issues labelled `patchmoi` only: the repository's other
    /// issues and pull requests (newest first) would push an old tracking
    /// issue beyond the pages we read.
    fn find_issue(&self, marker: &str) -> Result<Option<Value>> {
        for page in 1..=PAGES {
            let path = format!("/issues?state=all&labels={TRACKING_LABEL}&per_page=100&page={page}");
            let issues = self.get(&path, "list issues")?;
            let Some(list) = issues.as_array() else { return Ok(None) };
            let found = list.iter().find(|issue| {
                issue.get("pull_request").is_none() && issue["body"].as_str().is_some_and(|body| body.contains(marker))
            });
            if found.is_some() || list.len() < 100 {
                return Ok(found.cloned());
            }
        }
        Ok(None)
    }

    /// Writes `title` and `body` into the flow's tracking issue.
    pub fn upsert_tracking_issue(&self, flow: &str, title: &str, body: &str) -> Result<TrackingIssue> {
        let marker = issue_marker(flow);
        let body = format!("{}\n\n{marker}\n", body.trim_end());
        let found = match self.find_issue(&marker) {
            Err(err) if api_status(&err) == Some(410) => return Ok(TrackingIssue::Disabled),
            other => other?,
        };
        if let Some(issue) = found {
            let number = issue["number"].as_u64().unwrap_or_default();
            let update = json!({"title": title, "body": body, "state": "open"});
            self.patch(&format!("/issues/{number}"), &update, &format!("update tracking issue #{number}"))?;
            return Ok(TrackingIssue::Updated { number, url: issue["html_url"].as_str().unwrap_or_default().into() });
        }
        let create = json!({"title": title, "body": body, "labels": [TRACKING_LABEL]});
        let made = self.find_or_create(
            || self.find_issue(&marker),
            || self.post("/issues", &create, &format!("open the tracking issue of flow {flow}")),
        );
        match made {
            Ok(issue) => Ok(TrackingIssue::Created {
                number: issue["number"].as_u64().unwrap_or_default(),
                url: issue["html_url"].as_str().unwrap_or_default().into(),
            }),
            Err(err) if api_status(&err) == Some(410) => Ok(TrackingIssue::Disabled),
            Err(err) => Err(err),
        }
    }
}
