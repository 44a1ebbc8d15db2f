//! The status pages' HTML, compiled in with maud: every value from the
//! database is escaped (tags, commit subjects, messages are hostile input),
//! links are only ever `http(s)` URLs, and status is text beside colour.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::overview::{FlowRow, UpstreamRow};
use super::report::{self, commit_base};
use crate::engine::conflict::ConflictReport;
use crate::flow::event::FlowEvent;
use crate::service::attempt::{Attempt, AttemptStatus, Link};
use crate::service::store::{PollRecord, RunRecord};
use crate::service::target::DispatchRecord;

const STYLE: &str = "
body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1b1f23;background:#fff}
header{background:#24292f;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;flex-wrap:wrap;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{padding:1rem;max-width:72rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
.scroll{overflow-x:auto}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.85rem;font-weight:600;border:1px solid}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}.warn{background:#fff8c5;color:#7d4e00}.info{background:#ddf4ff;color:#0550ae}
code,pre{font-family:ui-monospace,monospace;font-size:.9rem}pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}
label{display:block;margin:.5rem 0}input,select,button{font:inherit;padding:.3rem}
.report{border-left:4px solid #a40e26;padding-left:.75rem;margin:1rem 0}
.hunk td{width:50%}.hunk pre{margin:0}details{margin:.25rem 0}
";

/// A page around `body`; `csrf` shows the sign-out button.
pub fn page(title: &str, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · patchmoi" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "patchmoi" }
                    nav aria-label="Pages" { a href="/" { "Overview" } " · " a href="/attempts" { "Attempts" } }
                    @if let Some(csrf) = csrf {
                        form method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A status as a badge: its word, coloured.
pub fn badge(status: &str) -> Markup {
    let class = match status {
        "completed" | "changed" | "success" | "merged" | "dispatched" => "ok",
        "failed" | "failure" | "needs_intervention" | "blocked" | "timed_out" => "bad",
        "started" | "running" | "queued" | "in_progress" | "open" => "info",
        _ => "warn",
    };
    html! { span class={"badge " (class)} { (status) } }
}

/// A link to a URL from the database, or just its text when it is not http(s).
fn link(link: &Link) -> Markup {
    html! {
        @if link.url.starts_with("https://") || link.url.starts_with("http://") {
            a href=(link.url) { (link.name) }
        } @else { (link.name) }
        @if let Some(status) = &link.status { " " (badge(status)) }
    }
}

fn release_href(event_id: &str) -> String {
    format!("/releases/{}", percent_encoding::utf8_percent_encode(event_id, percent_encoding::NON_ALPHANUMERIC))
}

/// The last good candidate of a row: its release, PR and check runs.
fn last_good(good: Option<&Attempt>) -> Markup {
    html! {
        @if let Some(good) = good {
            a href=(release_href(&good.event_id)) { (good.upstream_tag.as_deref().unwrap_or(&good.event_id)) }
            @if let Some(pull) = &good.pull_request { br; (link(pull)) }
            @for check in &good.check_runs { br; (link(check)) }
        } @else { "none yet" }
    }
}

/// What blocks a row: the status, the patch that stopped and its culprit
/// (linked to the upstream commit), else the attempt's message.
fn blocking(attempt: Option<&Attempt>, conflict: Option<&ConflictReport>, event: &FlowEvent) -> Markup {
    html! {
        @if let Some(blocking) = attempt {
            (badge(blocking.status.as_str())) " "
            @if let Some(conflict) = conflict {
                "patch " code { (report::short(&conflict.patch.sha)) } " " (conflict.patch.subject)
                @if let Some(culprit) = &conflict.culprit { br; "culprit: " (report::culprit(commit_base(event).as_deref(), culprit)) }
            } @else {
                (blocking.message.as_deref().or(blocking.error.as_deref()).unwrap_or(""))
            }
        } @else { "nothing" }
    }
}

fn latest(event: &FlowEvent) -> Markup {
    html! { a href=(release_href(&event.id)) { (event.tag().unwrap_or(&event.id)) } br; small { (event.received_at) } }
}

pub fn overview(upstreams: &[UpstreamRow], flows: &[FlowRow], polls: &[PollRecord], csrf: Option<&str>) -> Markup {
    page(
        "Overview",
        csrf,
        html! {
            @if upstreams.is_empty() { p { "No release events yet." } }
            @else {
                div class="scroll" { table {
                    caption { "Watched upstreams, newest release first" }
                    thead { tr {
                        th scope="col" { "Upstream" } th scope="col" { "Latest release" } th scope="col" { "Status" }
                        th scope="col" { "Releases behind" } th scope="col" { "Last good candidate" }
                        th scope="col" { "Blocking" }
                    } }
                    tbody { @for row in upstreams { tr {
                        th scope="row" { (row.repo) }
                        td { (latest(&row.latest)) }
                        td { @match &row.latest_status { Some(status) => (badge(status.as_str())), None => (badge("not dispatched")) } }
                        td { (row.behind) }
                        td { (last_good(row.last_good.as_ref())) }
                        td { (blocking(row.blocking.as_ref(), row.conflict.as_ref(), &row.latest)) }
                    } } }
                } }
            }
            @if !flows.is_empty() {
                h2 { "Flows" }
                div class="scroll" { table {
                    caption { "Flows, most recently run first" }
                    thead { tr {
                        th scope="col" { "Flow" } th scope="col" { "Upstream" } th scope="col" { "Latest release" }
                        th scope="col" { "Status" } th scope="col" { "Releases behind" }
                        th scope="col" { "Last good candidate" } th scope="col" { "Blocking" }
                    } }
                    tbody { @for row in flows { tr {
                        th scope="row" { (row.flow) }
                        td { (row.latest.repo().unwrap_or("")) }
                        td { (latest(&row.latest)) }
                        td { (badge(row.latest_status.as_str())) }
                        td { (row.behind) }
                        td { (last_good(row.last_good.as_ref())) }
                        td { (blocking(row.blocking.as_ref(), row.conflict.as_ref(), &row.latest)) }
                    } } }
                } }
            }
            @if !polls.is_empty() {
                h2 { "Feed sources" }
                div class="scroll" { table {
                    caption { "Polls of each feed source, by every poller of this database" }
                    thead { tr {
                        th scope="col" { "Source" } th scope="col" { "Last poll" } th scope="col" { "Polls" }
                        th scope="col" { "Failures" } th scope="col" { "Last error" }
                    } }
                    tbody { @for poll in polls { tr {
                        th scope="row" { (poll.source_id) }
                        td { (poll.last_poll_at) " " @if poll.failing() { (badge("failed")) } @else { (badge("ok")) } }
                        td { (poll.runs) } td { (poll.failures) }
                        td { @if let Some(error) = &poll.last_error {
                            (error) br; small { (poll.last_error_at.as_deref().unwrap_or("")) }
                        } @else { "none" } }
                    } } }
                } }
            }
        },
    )
}

pub fn release(
    event: &FlowEvent,
    dispatches: &[DispatchRecord],
    attempts: &[Attempt],
    runs: &[RunRecord],
    csrf: Option<&str>,
) -> Markup {
    let base = commit_base(event);
    let title = format!("{} {}", event.repo().unwrap_or("release"), event.tag().unwrap_or(&event.id));
    page(
        &title,
        csrf,
        html! {
            p { "Event " code { (event.id) } ", received " (event.received_at) "." }
            h2 { "Attempts" }
            @if attempts.is_empty() { p { "No attempt recorded." } }
            @for attempt in attempts {
                section aria-label={"Attempt " (attempt.id)} {
                    h3 { (attempt.operation.as_str()) " " (badge(attempt.status.as_str())) }
                    dl {
                        dt { "Attempt" } dd { code { (attempt.id) } }
                        dt { "Updated" } dd { (attempt.updated_at) }
                        @for candidate in &attempt.candidate_refs {
                            dt { "Candidate" } dd { code { (candidate.refname) } " " code { (candidate.sha.as_deref().unwrap_or("")) } }
                        }
                        @if let Some(pull) = &attempt.pull_request { dt { "Pull request" } dd { (link(pull)) } }
                        @for check in &attempt.check_runs { dt { "Check run" } dd { (link(check)) } }
                        @for (run, status) in &attempt.workspace_run_statuses {
                            dt { "Run " code { (run) } }
                            dd {
                                (badge(status))
                                @if let Some(record) = runs.iter().find(|r| r.attempt_id == attempt.id && &r.run_id == run) {
                                    @if let Some(flow) = &record.flow { " flow " code { (flow) } }
                                    @if let Some(step) = &record.step { " step " code { (step) } }
                                }
                            }
                        }
                        @if let Some(message) = &attempt.message { dt { "Message" } dd { pre { (message) } } }
                        @if let Some(error) = &attempt.error { dt { "Error" } dd { pre { (error) } } }
                    }
                    @for record in runs.iter().filter(|r| r.attempt_id == attempt.id) {
                        @if let Some(conflict) = &record.conflict {
                            (report::conflict(conflict, base.as_deref(), &run_label(record)))
                        }
                    }
                }
            }
            h2 { "Dispatches" }
            div class="scroll" { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Operation" } th scope="col" { "Status" } th scope="col" { "Runs" } th scope="col" { "Error" } } }
                tbody { @for record in dispatches { tr {
                    td { (record.created_at) } td { (record.operation.as_str()) } td { (badge(record.status.as_str())) }
                    td { (record.run_ids.join(", ")) } td { (record.error.as_deref().unwrap_or("")) }
                } } }
            } }
        },
    )
}

fn run_label(record: &RunRecord) -> String {
    match (&record.flow, &record.step) {
        (Some(flow), Some(step)) => format!("flow {flow}, step {step}"),
        (Some(flow), None) => format!("flow {flow}"),
        _ => format!("run {}", record.run_id),
    }
}

pub fn attempts(attempts: &[Attempt], status: Option<&str>, event: Option<&str>, csrf: Option<&str>) -> Markup {
    page(
        "Attempts",
        csrf,
        html! {
            form method="get" action="/attempts" {
                label { "Status " select name="status" {
                    option value="" { "any" }
                    @for choice in AttemptStatus::ALL { option value=(choice.as_str()) selected[status == Some(choice.as_str())] { (choice.as_str()) } }
                } }
                label { "Event id " input type="text" name="eventId" value=(event.unwrap_or("")); }
                button type="submit" { "Filter" }
            }
            div class="scroll" { table {
                caption { (attempts.len()) " attempts, newest first" }
                thead { tr { th scope="col" { "Updated" } th scope="col" { "Release" } th scope="col" { "Operation" } th scope="col" { "Status" } th scope="col" { "Message" } } }
                tbody { @for attempt in attempts { tr {
                    td { (attempt.updated_at) }
                    td { a href=(release_href(&attempt.event_id)) { (attempt.upstream_repo.as_deref().unwrap_or("")) " " (attempt.upstream_tag.as_deref().unwrap_or(&attempt.event_id)) } }
                    td { (attempt.operation.as_str()) } td { (badge(attempt.status.as_str())) }
                    td { (attempt.message.as_deref().or(attempt.error.as_deref()).unwrap_or("")) }
                } } }
            } }
        },
    )
}

pub fn sign_in(csrf: &str, next: &str, failed: bool) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if failed { p role="alert" { strong { "That token is not the admin token." } } }
            form method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label { "Admin token " input type="password" name="token" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn message(title: &str, text: &str) -> Markup {
    page(title, None, html! { p { (text) } })
}
