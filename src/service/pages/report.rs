//! A conflict report as HTML, for a release's page: the patch that stopped,
//! each conflicting file with its hunks (the release's side and the patch's
//! side, and the text both started from), the culprit linked to its
//! upstream commit, and the survey of the stack with each patch's culprit.
//! Every field is hostile input (file names, subjects, hunk text): maud
//! escapes it, and a link is only built from a hex sha and a checked repo.

use maud::{html, Markup};

use crate::engine::conflict::{ConflictReport, Culprit};
use crate::flow::event::{check_repo, FlowEvent};

/// Where the upstream's commits are shown: the host and repository of the
/// event's release URL when it has one (GitHub Enterprise, a mirror), else
/// github.com; None when the event names no usable repository.
pub fn commit_base(event: &FlowEvent) -> Option<String> {
    let repo = event.repo().filter(|repo| check_repo(repo).is_ok())?;
    let from_url = event.payload_str("url").and_then(|url| {
        let rest = url.strip_prefix("https://")?;
        let (host, path) = rest.split_once('/')?;
        let plain_host =
            !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        (plain_host && path.starts_with(&format!("{repo}/"))).then(|| format!("https://{host}/{repo}"))
    });
    Some(from_url.unwrap_or_else(|| format!("https://github.com/{repo}")))
}

/// The commit's page, when its sha is a full or abbreviated hex name.
fn commit_url(base: Option<&str>, sha: &str) -> Option<String> {
    let hex = (7..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit());
    base.filter(|_| hex).map(|base| format!("{base}/commit/{sha}"))
}

/// The first 12 characters of a sha, as the engine shows it; one from the
/// database may be anything, so never cut inside a character.
pub fn short(sha: &str) -> &str {
    sha.char_indices().nth(12).map_or(sha, |(end, _)| &sha[..end])
}

/// A commit as `short subject`, linked when it can be.
fn commit(base: Option<&str>, sha: &str, subject: &str) -> Markup {
    html! {
        @if let Some(url) = commit_url(base, sha) { a href=(url) { code { (short(sha)) } } } @else { code { (short(sha)) } }
        " " (subject)
    }
}

/// A culprit in words: the upstream commit after which the patch stopped
/// applying, or the earlier patch it builds on.
pub fn culprit(base: Option<&str>, culprit: &Culprit) -> Markup {
    html! {
        @if culprit.kind == "patch" {
            "builds on patch " (commit(None, &culprit.sha, &culprit.subject))
        } @else {
            "upstream commit " (commit(base, &culprit.sha, &culprit.subject))
            @if let Some(carried) = &culprit.carried { " " small { "(checked with the patches below " (carried) ")" } }
        }
    }
}

/// The whole report of one run.
pub fn conflict(report: &ConflictReport, base: Option<&str>, label: &str) -> Markup {
    html! {
        section class="report" aria-label={"Conflict report of " (label)} {
            h4 { "Conflict report " small { "(" (label) ")" } }
            dl {
                dt { "Patch" } dd { (commit(None, &report.patch.sha, &report.patch.subject)) }
                dt { "Culprit" } dd {
                    @match &report.culprit { Some(found) => (culprit(base, found)), None => "no single upstream commit explains it" }
                }
                @if let Some(below) = &report.builds_on { dt { "Builds on" } dd { (commit(None, &below.sha, &below.subject)) } }
                dt { "Stack" } dd { (report.applied.len()) " applied before it, " (report.remaining.len()) " after it" }
            }
            @for file in &report.files {
                h5 { "File " code { (file.path) } " " small { "(" (file.kind) ")" } }
                @for hunk in &file.hunks {
                    div class="scroll" { table class="hunk" {
                        caption { "Lines " (hunk.start_line) "–" (hunk.end_line) " of the release's " code { (file.path) } }
                        thead { tr { th scope="col" { "Release (upstream)" } th scope="col" { "Patch" } } }
                        tbody { tr { td { pre { (hunk.upstream) } } td { pre { (hunk.patch) } } } }
                    } }
                    @if !hunk.base.is_empty() {
                        details { summary { "The text both started from" } pre { (hunk.base) } }
                    }
                }
                @if !file.upstream_commits.is_empty() {
                    details {
                        summary {
                            (file.upstream_commits.len())
                            @if file.upstream_commits.len() == 1 { " upstream commit touched " } @else { " upstream commits touched " }
                            code { (file.path) }
                        }
                        ul { @for touched in &file.upstream_commits { li { (commit(base, &touched.sha, &touched.subject)) } } }
                    }
                }
            }
            @if !report.survey.is_empty() {
                div class="scroll" { table {
                    caption { "Survey: every patch of the stack against the release" }
                    thead { tr { th scope="col" { "Patch" } th scope="col" { "Conflicting files" } th scope="col" { "Culprit" } } }
                    tbody { @for entry in &report.survey { tr {
                        td { (commit(None, &entry.sha, &entry.subject)) }
                        td { @for (i, path) in entry.files.iter().enumerate() { @if i > 0 { ", " } code { (path) } } }
                        td {
                            @if let Some(found) = &entry.culprit { (culprit(base, found)) }
                            @else if let Some(below) = &entry.depends_on { "builds on patch " (commit(None, &below.sha, &below.subject)) }
                            @else { "none found" }
                        }
                    } } }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_links_need_a_checked_repo_and_a_hex_sha() {
        let mut event = FlowEvent::upstream_release("openai/codex", "v1", "t".into());
        assert_eq!(commit_base(&event).as_deref(), Some("https://github.com/openai/codex"));
        event.payload.insert("url".into(), "https://ghe.example/openai/codex/releases/tag/v1".into());
        assert_eq!(commit_base(&event).as_deref(), Some("https://ghe.example/openai/codex"));
        event.payload.insert("url".into(), "https://evil.example/other/repo".into());
        assert_eq!(commit_base(&event).as_deref(), Some("https://github.com/openai/codex"));
        let base = Some("https://github.com/o/r");
        assert_eq!(commit_url(base, "0123abcd").as_deref(), Some("https://github.com/o/r/commit/0123abcd"));
        assert_eq!(commit_url(base, "\"><script>"), None);
        assert_eq!(commit_url(None, "0123abcd"), None);
    }
}
