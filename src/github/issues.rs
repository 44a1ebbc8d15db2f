//! The tracking issue (one per flow) and the dashboard (one per repository),
//! each found again by the `patchmoi` label and a hidden marker that is the
//! last line of its body (a marker quoted inside a body, say from a commit
//! subject in a conflict report, does not count), and edited (reopened if
//! closed), never one per run. Two runs may both find none and both open
//! one; the oldest open marked issue is the one (the oldest of all when none
//! is open), and the others are closed as its duplicates by whichever run
//! sees them. The new body is made from the bodies of the kept issue and
//! its open duplicates, so racing dashboard runs lose no rows. Issues are
//! off by default on forks; that is an outcome, not an error.

use anyhow::Result;
use serde_json::{json, Value};

use super::{api_status, encode, GitHub};

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

/// The hidden line that marks the dashboard issue, one per repository.
pub const DASHBOARD_MARKER: &str = "<!-- patchmoi:dashboard -->";

/// The hidden line that marks the tracking issue of `flow`.
pub fn issue_marker(flow: &str) -> String {
    format!("<!-- patchmoi:tracking flow={flow} -->")
}

/// Whether `issue` carries the `patchmoi` label (which only people with
/// triage access can set), as GitHub lists labels: objects with a name.
fn labelled(issue: &Value) -> bool {
    issue["labels"].as_array().is_some_and(|labels| {
        labels.iter().any(|label| label["name"].as_str().or(label.as_str()) == Some(TRACKING_LABEL))
    })
}

/// Whether `issue` (as the API or a webhook shows it) is the dashboard:
/// labelled `patchmoi`, its marker the last line of its body.
pub fn is_dashboard(issue: &Value) -> bool {
    labelled(issue) && marked(issue, DASHBOARD_MARKER)
}

/// Whether `marker` is the last line of the issue's body, where patchmoi
/// writes it (GitHub may turn the line ends into CRLF when a person edits it).
fn marked(issue: &Value, marker: &str) -> bool {
    let body = issue["body"].as_str().unwrap_or_default().trim_end();
    body.strip_suffix(marker).is_some_and(|before| before.is_empty() || before.ends_with('\n'))
}

/// The bodies of the issue kept and its open duplicates, kept one first.
fn bodies(found: &[Value]) -> Vec<String> {
    let open = |(index, issue): &(usize, &Value)| *index == 0 || issue["state"] != "closed";
    found.iter().enumerate().filter(open).map(|(_, issue)| issue["body"].as_str().unwrap_or_default().into()).collect()
}

impl GitHub {
    /// The issues carrying `marker`, each once, the tracking issue first: the
    /// oldest open one, else the oldest. Looks among issues
    /// labelled `patchmoi` only: the repository's other issues and pull
    /// requests (newest first) would push an old tracking issue beyond the
    /// pages we read.
    fn find_issues(&self, marker: &str) -> Result<Vec<Value>> {
        let path = format!("/issues?state=all&labels={TRACKING_LABEL}&per_page=100");
        let mut found: Vec<Value> = self
            .get_all(&path, "list issues", Value::as_array)?
            .into_iter()
            .filter(|issue| issue.get("pull_request").is_none() && labelled(issue) && marked(issue, marker))
            .collect();
        // A page can shift while we read (an issue opened meanwhile), so an
        // issue may come twice.
        found.sort_by_key(|issue| (issue["state"] == "closed", issue["number"].as_u64().unwrap_or(u64::MAX)));
        found.dedup_by(|a, b| a["number"] == b["number"]);
        Ok(found)
    }

    /// Closes `duplicates` of the tracking issue `keep`, each with a comment
    /// that points at it once it is closed. One that cannot be closed is
    /// left for the next run (and said so): the tracking issue itself is up
    /// to date either way.
    fn close_duplicates(&self, keep: &Value, duplicates: &[Value]) {
        let number = keep["number"].as_u64().unwrap_or_default();
        let open = duplicates.iter().filter(|issue| issue["state"] != "closed" && issue["number"] != keep["number"]);
        for duplicate in open {
            let other = duplicate["number"].as_u64().unwrap_or_default();
            if let Err(err) = self.close_as_duplicate(other, keep) {
                tracing::warn!("could not close issue #{other}, a duplicate of tracking issue #{number}: {err:#}");
                continue;
            }
            let comment =
                json!({"body": format!("Duplicate of #{number}: patchmoi keeps one tracking issue per flow.")});
            let what = format!("comment on duplicate issue #{other}");
            if let Err(err) = self.post(&format!("/issues/{other}/comments"), &comment, &what) {
                tracing::warn!("{err:#}");
            }
        }
    }

    /// Closes issue `number` as a duplicate of `keep`; where GitHub does not
    /// take that reason (older GitHub Enterprise), as not planned.
    fn close_as_duplicate(&self, number: u64, keep: &Value) -> Result<()> {
        let what = format!("close duplicate issue #{number}");
        let mut close = json!({"state": "closed", "state_reason": "duplicate"});
        if let Some(id) = keep["id"].as_u64() {
            close["duplicate_issue_id"] = json!(id);
        }
        match self.patch(&format!("/issues/{number}"), &close, &what) {
            Err(err) if api_status(&err) == Some(422) => {
                let close = json!({"state": "closed", "state_reason": "not_planned"});
                self.patch(&format!("/issues/{number}"), &close, &what).map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Puts `title` and `body` into the existing tracking issue `issue`.
    fn update_issue(&self, issue: &Value, title: &str, body: &str) -> Result<TrackingIssue> {
        let number = issue["number"].as_u64().unwrap_or_default();
        let update = json!({"title": title, "body": body, "state": "open"});
        self.patch(&format!("/issues/{number}"), &update, &format!("update tracking issue #{number}"))?;
        Ok(TrackingIssue::Updated { number, url: issue["html_url"].as_str().unwrap_or_default().into() })
    }

    /// Writes `title` and `body(bodies)` into the flow's tracking issue
    /// (`bodies`: those of the issues found, the one kept first).
    pub fn upsert_tracking_issue(
        &self,
        flow: &str,
        title: &str,
        body: &dyn Fn(&[String]) -> String,
    ) -> Result<TrackingIssue> {
        let what = format!("the tracking issue of flow {flow}");
        self.upsert_marked_issue(&issue_marker(flow), title, body, &what)
    }

    /// Closes the flow's tracking issue as completed, after commenting
    /// `comment`, when it is open and `ends(body)`; its number when it did.
    pub fn close_tracking_issue(&self, flow: &str, ends: &dyn Fn(&str) -> bool, comment: &str) -> Result<Option<u64>> {
        let found = match self.find_issues(&issue_marker(flow)) {
            Err(err) if api_status(&err) == Some(410) => return Ok(None),
            other => other?,
        };
        let Some(issue) = found.first().filter(|issue| issue["state"] == "open") else { return Ok(None) };
        if !ends(issue["body"].as_str().unwrap_or_default()) {
            return Ok(None);
        }
        let number = issue["number"].as_u64().unwrap_or_default();
        self.comment(number, comment)?;
        let close = json!({"state": "closed", "state_reason": "completed"});
        self.patch(&format!("/issues/{number}"), &close, &format!("close tracking issue #{number}"))?;
        Ok(Some(number))
    }

    /// Writes the repository's one dashboard issue: `body` is given the
    /// bodies of the dashboard issues found (the one kept first, then open
    /// duplicates a racing run opened; none for a new one) and returns the
    /// new body, so it can keep what they hold.
    pub fn upsert_dashboard(&self, title: &str, body: &dyn Fn(&[String]) -> String) -> Result<TrackingIssue> {
        self.upsert_marked_issue(DASHBOARD_MARKER, title, body, "the dashboard issue")
    }

    /// Comments `body` on issue `number`.
    pub fn comment(&self, number: u64, body: &str) -> Result<()> {
        let what = format!("comment on issue #{number}");
        self.post(&format!("/issues/{number}/comments"), &json!({ "body": body }), &what).map(|_| ())
    }

    /// Whether `user` may write to the repository (admin, maintain or write).
    /// <https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user>
    pub fn can_write(&self, user: &str) -> Result<bool> {
        let path = format!("/collaborators/{}/permission", encode(user));
        let answer = match self.get(&path, &format!("read the permission of {user}")) {
            // Not a collaborator at all.
            Err(err) if api_status(&err) == Some(404) => return Ok(false),
            other => other?,
        };
        let role = answer["role_name"].as_str().unwrap_or_default();
        let permission = answer["permission"].as_str().unwrap_or_default();
        Ok(matches!(permission, "admin" | "write") || matches!(role, "admin" | "maintain" | "write"))
    }

    /// Writes `title` and `render(bodies)` into the issue carrying `marker`,
    /// or opens it.
    fn upsert_marked_issue(
        &self,
        marker: &str,
        title: &str,
        render: &dyn Fn(&[String]) -> String,
        what: &str,
    ) -> Result<TrackingIssue> {
        let body = |bodies: &[String]| format!("{}\n\n{marker}\n", render(bodies).trim_end());
        let found = match self.find_issues(marker) {
            Err(err) if api_status(&err) == Some(410) => return Ok(TrackingIssue::Disabled),
            other => other?,
        };
        if let Some((keep, duplicates)) = found.split_first() {
            let updated = self.update_issue(keep, title, &body(&bodies(&found)))?;
            self.close_duplicates(keep, duplicates);
            return Ok(updated);
        }
        let create = json!({"title": title, "body": body(&[]), "labels": [TRACKING_LABEL]});
        let made = self.find_or_create(
            || Ok(self.find_issues(marker)?.into_iter().next()),
            || self.post("/issues", &create, &format!("open {what}")),
        );
        let made = match made {
            Ok(issue) => issue,
            Err(err) if api_status(&err) == Some(410) => return Ok(TrackingIssue::Disabled),
            Err(err) => return Err(err),
        };
        // Another run may have opened one at the same time, before ours or
        // after: the oldest stays, with what every open copy holds.
        let found = self.find_issues(marker)?;
        match found.split_first() {
            Some((keep, duplicates)) if found.len() > 1 => {
                let updated = self.update_issue(keep, title, &body(&bodies(&found)))?;
                self.close_duplicates(keep, duplicates);
                if keep["number"] == made["number"] {
                    return Ok(TrackingIssue::Created {
                        number: made["number"].as_u64().unwrap_or_default(),
                        url: made["html_url"].as_str().unwrap_or_default().into(),
                    });
                }
                Ok(updated)
            }
            Some((keep, _)) if keep["number"] != made["number"] => {
                self.update_issue(keep, title, &body(&bodies(&found)))
            }
            _ => Ok(TrackingIssue::Created {
                number: made["number"].as_u64().unwrap_or_default(),
                url: made["html_url"].as_str().unwrap_or_default().into(),
            }),
        }
    }
}
