//! The job's text for people and for later steps: check-run output, the PR
//! title and body, the tracking issue, the job summary and the step outputs.
//! Everything untrusted is scrubbed of secrets and cut to GitHub's limits.

use std::fmt::Write;

use serde_json::json;

use super::outcome::{base_branch, FlowOutcome, JobOutcome};
use crate::action::io::{output_entry, scrub, truncate_to, SUMMARY_LIMIT};
use crate::engine::conflict::ConflictReport;
use crate::engine::stack::short;
use crate::flow::event::FlowEvent;
use crate::flow::flows::Flow;
use crate::flow::report;
use crate::flow::runner::RunResult;
use crate::git::Git;
use crate::github::{CheckAnnotation, CheckOutput, PullRequestSpec};

/// Where people find what a truncated text left out.
const ARTIFACT_POINTER: &str = "the whole report is in the job's patchmoi artifact (conflict.md)";

/// How much of a range-diff a PR body holds.
const RANGE_DIFF_LIMIT: usize = 20_000;

/// A check run's output for one step's result: the conflict report with one
/// annotation per hunk, or the message and the end of the log.
pub fn check_output(result: &RunResult, secrets: &[String]) -> CheckOutput {
    let mut summary = format!("**{}**: {}\n", result.status, result.message);
    let mut annotations = Vec::new();
    if let Some(report) = &result.artifacts.conflict {
        let tag = result.artifacts.upstream.as_ref().map(|upstream| upstream.name.as_str()).unwrap_or("the release");
        summary.push('\n');
        summary.push_str(&report::conflict_markdown(report, tag));
        for file in &report.files {
            for hunk in &file.hunks {
                annotations.push(CheckAnnotation {
                    path: file.path.clone(),
                    start_line: hunk.start_line,
                    end_line: hunk.end_line,
                    title: format!("patch {} does not apply here", short(&report.patch.sha)),
                    message: format!("\"{}\" conflicts with the release on these lines", report.patch.subject),
                });
            }
        }
    }
    if !result.artifacts.log_tail.is_empty() {
        summary.push_str("\n```\n");
        for line in &result.artifacts.log_tail {
            summary.push_str(line);
            summary.push('\n');
        }
        summary.push_str("```\n");
    }
    CheckOutput {
        title: truncate_to(&scrub(&format!("{}: {}", result.status, result.message), secrets), 250, "…"),
        summary: truncate_to(&scrub(&summary, secrets), SUMMARY_LIMIT, ARTIFACT_POINTER),
        annotations,
    }
}

/// The candidate's PR: upstream tag and link, patches carried and dropped,
/// the range-diff of the old stack against the new, the checks, promotion.
pub fn pr_spec(git: &Git, flow: &Flow, event: &FlowEvent, runs: &[RunResult], server_url: &str) -> PullRequestSpec {
    let tag = event.tag().unwrap_or_default();
    let repo = event.repo().unwrap_or_default();
    let rebase = runs.iter().find(|run| run.artifacts.upstream.is_some());
    let artifacts = rebase.map(|run| run.artifacts.clone()).unwrap_or_default();
    let candidate = artifacts.candidate_refs.first();
    let head = candidate.map(|c| c.refname.trim_start_matches("refs/heads/").to_string()).unwrap_or_default();
    let mut body = String::new();
    let _ = writeln!(body, "Upstream release [`{tag}`]({server_url}/{repo}/releases/tag/{tag}) of `{repo}`, with the patch stack of `{}` replayed onto it by flow `{}`.\n", artifacts.branch.as_ref().map(|b| b.name.as_str()).unwrap_or("?"), flow.name);
    let _ = writeln!(body, "### Patches carried ({})\n", artifacts.carried.len());
    for patch in &artifacts.carried {
        let _ = writeln!(body, "- `{}` {}", short(&patch.sha), patch.subject);
    }
    if !artifacts.dropped.is_empty() {
        let _ = writeln!(body, "\n### Patches dropped ({})\n", artifacts.dropped.len());
        for dropped in &artifacts.dropped {
            let _ = writeln!(body, "- `{}` {}: {}", short(&dropped.sha), dropped.subject, dropped.reason);
        }
    }
    if let (Some(branch), Some(upstream), Some(candidate)) = (&artifacts.branch, &artifacts.upstream, candidate) {
        let diff = git
            .merge_base(&branch.sha, &upstream.sha)
            .ok()
            .flatten()
            .and_then(|base| git.range_diff(&base, &branch.sha, &upstream.sha, &candidate.sha).ok());
        if let Some(diff) = diff.filter(|d| !d.is_empty()) {
            let diff = truncate_to(&diff, RANGE_DIFF_LIMIT, "run `git range-diff` locally for the rest");
            let _ = writeln!(body, "\n<details><summary>Range-diff of the old stack against the new one</summary>\n\n```\n{diff}\n```\n</details>");
        }
    }
    body.push_str("\n### Checks\n\n| step | status | |\n|---|---|---|\n");
    for run in runs {
        let _ = writeln!(
            body,
            "| {} | {} | {} |",
            run.step,
            run.status,
            run.message.replace('|', "\\|").replace('\n', " ")
        );
    }
    let _ = writeln!(
        body,
        "\n### Promote\n\nRun the workflow with `promote: {tag}` (or `patchmoi promote --flow {} --tag {tag} --push`) to move `{}` to this candidate; the old head is kept in a backup branch.",
        flow.name,
        artifacts.branch.as_ref().map(|b| b.name.as_str()).unwrap_or("the maintained branch")
    );
    PullRequestSpec {
        flow: flow.name.clone(),
        tag: tag.to_string(),
        head,
        base: base_branch(tag),
        title: format!("patchmoi: {} on {tag}", flow.name),
        body: truncate_to(&body, SUMMARY_LIMIT, ARTIFACT_POINTER),
    }
}

/// The tracking issue's body: the conflict report and where to look.
pub fn tracking_issue_body(report: &ConflictReport, tag: &str, runs: &[RunResult]) -> String {
    let mut body = report::conflict_markdown(report, tag);
    body.push_str("\n### Steps\n\n");
    for run in runs {
        let _ = writeln!(body, "- {}: {} ({})", run.step, run.status, run.message.replace('\n', " "));
    }
    truncate_to(&body, SUMMARY_LIMIT, ARTIFACT_POINTER)
}

/// The job summary.
pub fn summary_markdown(job: &JobOutcome, secrets: &[String]) -> String {
    let mut md = String::from("# patchmoi\n\n");
    if let Some(reason) = &job.nothing {
        let _ = writeln!(md, "Nothing to do: {reason}");
        return md;
    }
    if let Some(event) = &job.event {
        let _ = writeln!(md, "Event `{}`: **{}**\n", event.id, job.status);
    }
    for flow in &job.flows {
        let _ = writeln!(md, "## Flow `{}`: {}\n", flow.flow, flow.status.map(|s| s.as_str()).unwrap_or("skipped"));
        if let (Some(number), Some(url)) = (flow.pr_number, &flow.pr_url) {
            let _ = writeln!(md, "Pull request [#{number}]({url})\n");
        }
        if let Some(issue) = &flow.tracking_issue {
            let _ = writeln!(md, "Tracking issue: {issue}\n");
        }
        md.push_str("| step | status | message |\n|---|---|---|\n");
        for run in &flow.runs {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                run.step,
                run.status,
                run.message.replace('|', "\\|").replace('\n', " ")
            );
        }
        md.push('\n');
        for run in &flow.runs {
            if let Some(report) = &run.artifacts.conflict {
                let tag =
                    run.artifacts.upstream.as_ref().map(|upstream| upstream.name.as_str()).unwrap_or("the release");
                md.push_str(&report::conflict_markdown(report, tag));
                md.push('\n');
            }
        }
    }
    truncate_to(&scrub(&md, secrets), SUMMARY_LIMIT, ARTIFACT_POINTER)
}

/// The `$GITHUB_OUTPUT` text: single values of the first flow, and every
/// flow's result as JSON in `results`.
pub fn outputs(job: &JobOutcome, delimiter_token: &str) -> String {
    let first = job.flows.first().cloned().unwrap_or_else(FlowOutcome::default);
    let results = serde_json::to_string(&json!(job.flows)).unwrap_or_else(|_| "[]".into());
    let values = [
        ("status", job.status.as_str().to_string()),
        ("candidate-ref", first.candidate_ref.unwrap_or_default()),
        ("candidate-sha", first.candidate_sha.unwrap_or_default()),
        ("pr-number", first.pr_number.map(|n| n.to_string()).unwrap_or_default()),
        ("pr-url", first.pr_url.unwrap_or_default()),
        ("report", first.report.unwrap_or_default()),
        ("results", results),
        ("artifact-name", artifact_name(job)),
    ];
    values.iter().map(|(name, value)| output_entry(name, value, delimiter_token)).collect()
}

/// `patchmoi-<flows>-<tag>`, with the characters artifact names may not
/// hold (`"` `:` `<` `>` `|` `*` `?` `\\` `/`, and controls) replaced; action.yml
/// appends the run id and attempt.
pub fn artifact_name(job: &JobOutcome) -> String {
    let flows: Vec<&str> = job.flows.iter().map(|flow| flow.flow.as_str()).collect();
    let flows = if flows.is_empty() { "none".to_string() } else { flows.join("+") };
    let tag = job.event.as_ref().and_then(|event| event.tag()).unwrap_or("event");
    format!("patchmoi-{flows}-{tag}")
        .chars()
        .map(|c| if c.is_control() || "\"\\:<>|*?/".contains(c) { '_' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
