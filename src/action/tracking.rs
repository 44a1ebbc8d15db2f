//! The flow's tracking issue, kept quiet. It stays beside the dashboard
//! because it holds what the dashboard's one line cannot: the whole
//! conflict report (every hunk, the upstream commits per file, the survey)
//! and a thread people can subscribe to per flow. At most one per flow;
//! its body is rewritten in place on every run (an edit notifies no one),
//! and it gets a comment only when its state changes: a different release
//! or patch now blocks, or a newer release applied cleanly, which closes it.
//! The state is a hidden line in the body, read back by the next run.

use anyhow::Result;

use super::dashboard::inert;
use super::io::scrub;
use super::text::tracking_issue_body;
use crate::core::tag_order::Version;
use crate::engine::conflict::ConflictReport;
use crate::engine::stack::short;
use crate::flow::runner::RunResult;
use crate::github::{GitHub, TrackingIssue};

const STATE_OPEN: &str = "<!-- patchmoi:tracking-state ";
const STATE_CLOSE: &str = " -->";

/// What blocks the flow: the release and the patch that stopped on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub tag: String,
    pub patch: String,
}

impl Blocked {
    /// The hidden line that records it (tags and shas hold no space).
    fn line(&self) -> String {
        format!("{STATE_OPEN}tag={} patch={}{STATE_CLOSE}", self.tag, self.patch)
    }
}

/// The state a tracking issue's body records, if any.
pub fn recorded(body: &str) -> Option<Blocked> {
    let start = body.find(STATE_OPEN)? + STATE_OPEN.len();
    let rest = &body[start..];
    let fields = &rest[..rest.find(STATE_CLOSE)?];
    let mut words = fields.split(' ');
    let tag = words.next()?.strip_prefix("tag=")?;
    let patch = words.next()?.strip_prefix("patch=")?;
    Some(Blocked { tag: tag.into(), patch: patch.into() })
}

/// Whether a clean `tag` ends what `blocked` records: the same release or a newer one.
pub fn resolves(blocked: &Blocked, tag: &str) -> bool {
    blocked.tag == tag
        || matches!((Version::parse_from_tag(&blocked.tag), Version::parse_from_tag(tag)), (Some(old), Some(new)) if new >= old)
}

/// Writes the conflict of `report` on `tag` into the flow's tracking issue,
/// and comments when the issue existed with another state.
pub fn keep(
    gh: &GitHub,
    flow: &str,
    tag: &str,
    report: &ConflictReport,
    runs: &[RunResult],
    secrets: &[String],
) -> Result<TrackingIssue> {
    let now = Blocked { tag: tag.into(), patch: report.patch.sha.clone() };
    let title = format!("patchmoi: {flow} needs intervention on {tag}");
    let body = format!("{}\n\n{}\n", scrub(&tracking_issue_body(report, tag, runs), secrets), now.line());
    let before = std::cell::RefCell::new(None);
    let render = |bodies: &[String]| {
        *before.borrow_mut() = bodies.first().map(|body| recorded(body));
        body.clone()
    };
    let kept = gh.upsert_tracking_issue(flow, &title, &render)?;
    // An issue an older patchmoi wrote records no state: no comment for it.
    if let (TrackingIssue::Updated { number, .. }, Some(Some(was))) = (&kept, before.into_inner()) {
        if was != now {
            let culprit = report
                .culprit
                .as_ref()
                .map_or(String::new(), |c| format!("; culprit {} {}", short(&c.sha), inert(&c.subject)));
            let text = format!(
                "Now blocked on {}: patch {} {} does not apply{culprit}. The report above is up to date.",
                inert(tag),
                short(&report.patch.sha),
                inert(&report.patch.subject)
            );
            gh.comment(*number, &scrub(&text, secrets))?;
        }
    }
    Ok(kept)
}

/// Closes the flow's open tracking issue, with one comment, when `tag`
/// (whose rebase applied cleanly) is the release it records or a newer
/// one. Returns the issue's number when it closed one.
pub fn close_if_resolved(gh: &GitHub, flow: &str, tag: &str) -> Result<Option<u64>> {
    let ends = |body: &str| recorded(body).is_some_and(|blocked| resolves(&blocked, tag));
    let text = format!(
        "{} applies cleanly, so the conflict this issue tracked is over; patchmoi opens it again if a release conflicts.",
        inert(tag)
    );
    gh.close_tracking_issue(flow, &ends, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_line_round_trips_and_newer_clean_releases_resolve_it() {
        let blocked = Blocked { tag: "v1.2.0".into(), patch: "abc".into() };
        let body = format!("report\n\n{}\n\n<!-- patchmoi:tracking flow=f -->\n", blocked.line());
        assert_eq!(recorded(&body), Some(blocked.clone()));
        assert_eq!(recorded("no state"), None);
        assert!(resolves(&blocked, "v1.2.0") && resolves(&blocked, "v1.3.0"));
        assert!(!resolves(&blocked, "v1.1.0"), "a retry of an older release ends nothing");
    }
}
