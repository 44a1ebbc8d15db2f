//! The dashboard's checkboxes: an `issues: edited` event on the dashboard
//! is acted on for the boxes that went from `[ ]` to `[x]`, only when the
//! editor may write to the repository (asked of GitHub, not taken from the
//! event); anyone else gets one comment saying why. A `promote` box obeys
//! the same rules as the `promote` input; a `retry` box runs the release
//! again. The issue is rewritten with the boxes cleared and the outcome noted.

use anyhow::Result;

use super::dashboard::{self, Verb};
use super::io::{scrub, DashboardEdit};
use super::outcome::JobOutcome;
use super::promotion;
use crate::core::status::ResultStatus;
use crate::flow::event::FlowEvent;
use crate::flow::flows::Flow;
use crate::git::Git;
use crate::github::GitHub;

/// What the ticks asked for: promotions done, and releases to run again.
pub struct Acted {
    pub promoted: Option<JobOutcome>,
    pub retries: Vec<(FlowEvent, Vec<String>)>,
    /// Why nothing was done, when nothing was.
    pub refused: Option<String>,
}

/// Acts on the boxes `edit` ticked, for upstream `repo`.
pub fn act(
    git: &Git,
    gh: &GitHub,
    flows: &[Flow],
    repo: &str,
    edit: &DashboardEdit,
    now: &str,
    secrets: &[String],
) -> Result<Acted> {
    let ticks = dashboard::ticked(&edit.before, &edit.body);
    if ticks.is_empty() {
        let refused = Some("the edit ticked no box".to_string());
        return Ok(Acted { promoted: None, retries: Vec::new(), refused });
    }
    let mut board = dashboard::parse(&edit.body);
    if !gh.can_write(&edit.sender)? {
        let why = format!(
            "@{} may not write to this repository, so patchmoi did not act on the boxes ticked in this edit; someone with write access can tick them again.",
            edit.sender
        );
        gh.comment(edit.number, &why)?;
        let body = scrub(&dashboard::render(&board), secrets);
        gh.upsert_dashboard(dashboard::TITLE, &|_| body.clone())?;
        return Ok(Acted { promoted: None, retries: Vec::new(), refused: Some(why) });
    }
    let mut outcomes = Vec::new();
    let mut retries: Vec<(FlowEvent, Vec<String>)> = Vec::new();
    for tick in ticks {
        match tick.verb {
            Verb::Promote => {
                let outcome = promotion::promote(git, gh, flows, Some(&tick.flow), repo, &tick.tag)?;
                for flow in &outcome.flows {
                    let message = flow.runs.first().map(|run| run.message.clone()).unwrap_or_default();
                    let status = flow.status.unwrap_or(ResultStatus::Skipped);
                    if let Some(row) = board.row_mut(&tick.flow, &tick.tag) {
                        row.note = Some(format!("promote by @{}: {status}: {message}", edit.sender));
                    }
                }
                outcomes.push(outcome);
            }
            Verb::Retry => {
                if let Some(row) = board.row_mut(&tick.flow, &tick.tag) {
                    row.note = Some(format!("retry asked by @{}", edit.sender));
                }
                let event = FlowEvent::upstream_release(repo, &tick.tag, now.to_string());
                retries.push((event, vec![tick.flow.clone()]));
            }
        }
    }
    let body = scrub(&dashboard::render(&board), secrets);
    gh.upsert_dashboard(dashboard::TITLE, &|_| body.clone())?;
    let promoted = outcomes.into_iter().reduce(|mut all, more| {
        all.flows.extend(more.flows);
        all.status = ResultStatus::aggregate([all.status, more.status]).unwrap_or(all.status);
        all
    });
    Ok(Acted { promoted, retries, refused: None })
}
