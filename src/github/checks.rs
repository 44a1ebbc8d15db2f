//! Check runs, one per flow step (`patchmoi / <flow> / <step>`, its
//! `external_id` the run id), found again on their commit before one is
//! created; annotations go 50 per request, as GitHub takes them. A token
//! that may not create check runs (a personal token) makes the reporter
//! fall back to commit statuses for the rest of the run.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::{api_error, encode, GitHub};

/// GitHub takes at most 50 annotations per create or update request.
const ANNOTATIONS_PER_REQUEST: usize = 50;

/// Where a check sits: its name, commit and our run id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpot {
    pub name: String,
    pub sha: String,
    pub external_id: String,
}

/// A completed check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckConclusion {
    Success,
    ActionRequired,
    Failure,
    Skipped,
}

impl CheckConclusion {
    fn check_run(self) -> &'static str {
        match self {
            CheckConclusion::Success => "success",
            CheckConclusion::ActionRequired => "action_required",
            CheckConclusion::Failure => "failure",
            CheckConclusion::Skipped => "skipped",
        }
    }

    /// Commit statuses know only success, failure, error and pending.
    fn status_state(self) -> &'static str {
        match self {
            CheckConclusion::Success | CheckConclusion::Skipped => "success",
            CheckConclusion::ActionRequired | CheckConclusion::Failure => "failure",
        }
    }
}

/// An annotation on a file's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnnotation {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
    pub title: String,
    pub message: String,
}

/// What a completed check shows. Text is already cut to GitHub's limits.
#[derive(Debug, Clone, Default)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    pub annotations: Vec<CheckAnnotation>,
}

/// Reports checks of one workflow run: remembers the check runs it made
/// and whether the token can make them at all.
#[derive(Debug, Default)]
pub struct CheckReporter {
    ids: HashMap<(String, String), u64>,
    /// Check runs an earlier job made (found on the commit, not created
    /// here): GitHub appends annotations on every update, and theirs are
    /// already there (same commit, same release: the same conflict).
    inherited: std::collections::HashSet<(String, String)>,
    /// Set once GitHub refused a check run: statuses from then on.
    pub statuses_only: bool,
    /// Where check runs (`details_url`) and statuses (`target_url`) link:
    /// the workflow run.
    link: Option<String>,
}

impl CheckReporter {
    /// A reporter whose checks and statuses link to `url` (the workflow run).
    pub fn linking(url: Option<String>) -> CheckReporter {
        CheckReporter { link: url, ..CheckReporter::default() }
    }

    /// `body` with the link to the workflow run, under `field`.
    fn with_link(&self, mut body: Value, field: &str) -> Value {
        if let (Some(url), Some(fields)) = (&self.link, body.as_object_mut()) {
            fields.insert(field.to_string(), json!(url));
        }
        body
    }

    /// Marks the check `in_progress` on its commit (which must be on GitHub).
    pub fn start_check(&mut self, gh: &GitHub, spot: &CheckSpot) -> Result<()> {
        if self.statuses_only {
            return self.status(gh, spot, "pending", "running");
        }
        let body = self.with_link(
            json!({"name": spot.name, "head_sha": spot.sha, "external_id": spot.external_id, "status": "in_progress"}),
            "details_url",
        );
        match self.upsert(gh, spot, &body) {
            Err(err) if refused(&err) => self.fall_back(gh, spot, "pending", "running", err),
            other => other,
        }
    }

    /// Completes the check with its conclusion and output; further
    /// annotations follow in updates of 50.
    pub fn finish_check(
        &mut self,
        gh: &GitHub,
        spot: &CheckSpot,
        conclusion: CheckConclusion,
        output: &CheckOutput,
    ) -> Result<()> {
        if self.statuses_only {
            return self.status(gh, spot, conclusion.status_state(), &output.title);
        }
        self.discover(gh, spot)?;
        let annotations: &[CheckAnnotation] =
            if self.inherited.contains(&key(spot)) { &[] } else { &output.annotations };
        let mut chunks = annotations.chunks(ANNOTATIONS_PER_REQUEST);
        let first = chunks.next().unwrap_or_default();
        let body = self.with_link(
            json!({
                "name": spot.name, "head_sha": spot.sha, "external_id": spot.external_id,
                "status": "completed", "conclusion": conclusion.check_run(),
                "output": output_json(output, first),
            }),
            "details_url",
        );
        let id = match self.upsert(gh, spot, &body) {
            Err(err) if refused(&err) => {
                return self.fall_back(gh, spot, conclusion.status_state(), &output.title, err)
            }
            Err(err) => return Err(err),
            Ok(()) => self.ids[&key(spot)],
        };
        for chunk in chunks {
            let update = json!({"output": output_json(output, chunk)});
            let what = format!("add annotations to check run {}", spot.name);
            if let Err(err) = gh.patch_appending(&format!("/check-runs/{id}"), &update, &what) {
                // The check run is complete; only some annotations may be missing.
                tracing::warn!("{err:#}; the check run may miss some annotations (the report has them all)");
                break;
            }
        }
        Ok(())
    }

    /// Finds a check run an earlier job left on the commit, once.
    fn discover(&mut self, gh: &GitHub, spot: &CheckSpot) -> Result<()> {
        if self.ids.contains_key(&key(spot)) {
            return Ok(());
        }
        let what = format!("check run `{}` on {}", spot.name, &spot.sha[..spot.sha.len().min(12)]);
        if let Some(id) = find(gh, spot, &what)? {
            self.ids.insert(key(spot), id);
            self.inherited.insert(key(spot));
        }
        Ok(())
    }

    /// Updates the check run we know or find on the commit, else creates it.
    fn upsert(&mut self, gh: &GitHub, spot: &CheckSpot, body: &Value) -> Result<()> {
        let what = format!("check run `{}` on {}", spot.name, &spot.sha[..spot.sha.len().min(12)]);
        let known = match self.ids.get(&key(spot)) {
            Some(id) => Some(*id),
            None => {
                let found = find(gh, spot, &what)?;
                if found.is_some() {
                    self.inherited.insert(key(spot));
                }
                found
            }
        };
        let id = match known {
            Some(id) => {
                let mut update = body.clone();
                if let Some(fields) = update.as_object_mut() {
                    fields.remove("head_sha");
                }
                gh.patch(&format!("/check-runs/{id}"), &update, &format!("update {what}"))?;
                id
            }
            None => gh.find_or_create(
                || find(gh, spot, &what),
                || {
                    let made = gh.post("/check-runs", body, &format!("create {what}"))?;
                    Ok(made["id"].as_u64().unwrap_or_default())
                },
            )?,
        };
        self.ids.insert(key(spot), id);
        Ok(())
    }

    fn fall_back(&mut self, gh: &GitHub, spot: &CheckSpot, state: &str, text: &str, err: anyhow::Error) -> Result<()> {
        tracing::warn!("{err:#}; this token cannot create check runs, so results go to commit statuses instead");
        self.statuses_only = true;
        self.status(gh, spot, state, text)
    }

    fn status(&self, gh: &GitHub, spot: &CheckSpot, state: &str, description: &str) -> Result<()> {
        // A status description holds at most 140 characters.
        let description: String = description.chars().take(140).collect();
        let body =
            self.with_link(json!({"state": state, "context": spot.name, "description": description}), "target_url");
        gh.post(&format!("/statuses/{}", spot.sha), &body, &format!("set commit status `{}`", spot.name))?;
        Ok(())
    }
}

fn key(spot: &CheckSpot) -> (String, String) {
    (spot.name.clone(), spot.sha.clone())
}

/// A 403 that is not a rate limit: the token may not create check runs. A
/// rate limit that outlasted our waits is an error, never a reason to
/// switch to statuses for the rest of the run.
fn refused(err: &anyhow::Error) -> bool {
    api_error(err).is_some_and(|api| api.status == Some(403) && !api.rate_limited)
}

/// Our check run on the commit: same name, same external id.
fn find(gh: &GitHub, spot: &CheckSpot, what: &str) -> Result<Option<u64>> {
    let path = format!("/commits/{}/check-runs?check_name={}&filter=all&per_page=100", spot.sha, encode(&spot.name));
    let found = gh.get_all(&path, &format!("look up {what}"), check_runs)?;
    Ok(found.iter().find_map(|run| {
        (run["name"] == spot.name.as_str() && run["external_id"] == spot.external_id.as_str())
            .then(|| run["id"].as_u64())
            .flatten()
    }))
}

impl GitHub {
    /// Every check run on the head of `branch`, whoever made it (what the
    /// patch service reads to sync an attempt).
    pub fn check_runs_on(&self, branch: &str) -> Result<Vec<Value>> {
        let path = format!("/commits/{}/check-runs?per_page=100", encode(branch));
        self.get_all(&path, &format!("list the check runs on {branch}"), check_runs)
    }
}

/// The list in a page of check runs.
fn check_runs(page: &Value) -> Option<&Vec<Value>> {
    page["check_runs"].as_array()
}

fn output_json(output: &CheckOutput, annotations: &[CheckAnnotation]) -> Value {
    let annotations: Vec<Value> = annotations
        .iter()
        .map(|note| {
            json!({"path": note.path, "start_line": note.start_line, "end_line": note.end_line,
                   "annotation_level": "failure", "title": note.title, "message": note.message})
        })
        .collect();
    json!({"title": output.title, "summary": output.summary, "annotations": annotations})
}
