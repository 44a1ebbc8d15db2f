//! Text for people: the conflict report in Markdown, one-line summaries, and
//! the result of a run as a terminal shows it.

use std::fmt::Write;

use crate::core::status;
use crate::engine::conflict::ConflictReport;
use crate::engine::patch::Dropped;
use crate::engine::stack::short;
use crate::flow::runner::RunReport;

/// One line: which patch stopped, where, and why.
pub fn conflict_summary(report: &ConflictReport, tag: &str) -> String {
    let files: Vec<&str> = report.files.iter().map(|file| file.path.as_str()).collect();
    let mut line = format!(
        "patch \"{}\" ({}) does not apply on {tag}: conflicts in {}",
        report.patch.subject,
        short(&report.patch.sha),
        files.join(", ")
    );
    if let Some(culprit) = &report.culprit {
        let what = if culprit.kind == "patch" { "builds on patch" } else { "culprit: upstream commit" };
        let _ = write!(line, "; {what} {} \"{}\"", short(&culprit.sha), culprit.subject);
    }
    line
}

/// The whole report, as the job summary, the check run and `conflict.md` show it.
pub fn conflict_markdown(report: &ConflictReport, tag: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Patch `{}` does not apply on `{tag}`\n", short(&report.patch.sha));
    let _ = writeln!(md, "**{}** by {}\n", report.patch.subject, report.patch.author);
    match &report.culprit {
        Some(culprit) if culprit.kind == "patch" => {
            let _ = writeln!(
                md,
                "**Why:** it builds on the earlier patch `{}` \"{}\" of this stack, which does not apply as it was.\n",
                short(&culprit.sha),
                culprit.subject
            );
        }
        Some(culprit) => {
            let carried = match culprit.carried.as_deref() {
                Some("replayed") => " (the patches below it carried as replayed)",
                Some("committed") => " (the patches below it carried as the fork committed them)",
                _ => "",
            };
            let _ = writeln!(
                md,
                "**Culprit:** upstream commit `{}` \"{}\": the patch applies before it and not after{carried}.\n",
                short(&culprit.sha),
                culprit.subject
            );
        }
        None => md.push_str("**Culprit:** not found (no single upstream commit explains the conflict).\n\n"),
    }
    if let (Some(earlier), Some(culprit)) = (&report.builds_on, &report.culprit) {
        if culprit.kind == "upstream" {
            let _ = writeln!(md, "It builds on the earlier patch `{}` \"{}\".\n", short(&earlier.sha), earlier.subject);
        }
    }
    let _ = writeln!(
        md,
        "{} patch(es) applied before it, {} after it not tried.\n",
        report.applied.len(),
        report.remaining.len()
    );
    for file in &report.files {
        let _ = writeln!(md, "### `{}` ({})\n", file.path, file.kind);
        if !file.upstream_commits.is_empty() {
            md.push_str("Upstream commits touching it since the old base:\n\n");
            for commit in &file.upstream_commits {
                let _ = writeln!(md, "- `{}` {}", short(&commit.sha), commit.subject);
            }
            md.push('\n');
        }
        for hunk in &file.hunks {
            let _ = writeln!(md, "Lines {}–{} of the release:\n", hunk.start_line, hunk.end_line);
            let _ = writeln!(
                md,
                "```diff\n<<<<<<< upstream {tag}\n{}||||||| base\n{}=======\n{}>>>>>>> patch {}\n```\n",
                hunk.upstream,
                hunk.base,
                hunk.patch,
                short(&report.patch.sha)
            );
        }
    }
    if !report.survey.is_empty() {
        md.push_str(
            "### Survey: patches that conflict alone on the release\n\n| patch | files | builds on | culprit |\n|---|---|---|---|\n",
        );
        for entry in &report.survey {
            let depends = entry
                .depends_on
                .as_ref()
                .map(|earlier| format!("`{}` {}", short(&earlier.sha), earlier.subject))
                .unwrap_or_default();
            let culprit = entry
                .culprit
                .as_ref()
                .filter(|culprit| culprit.kind == "upstream")
                .map(|culprit| format!("`{}` {}", short(&culprit.sha), culprit.subject))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| `{}` {} | {} | {depends} | {culprit} |",
                short(&entry.sha),
                entry.subject,
                entry.files.join(", ")
            );
        }
        md.push('\n');
    }
    md
}

/// The stack summary `conflict.md` ends with: the patches left out before
/// the stop and why (by patch-id, by provenance, upstream's own work).
pub fn dropped_markdown(dropped: &[Dropped]) -> String {
    let mut md = String::new();
    if !dropped.is_empty() {
        let _ = writeln!(md, "\n### Patches dropped ({})\n", dropped.len());
        for drop in dropped {
            let _ = writeln!(md, "- `{}` {}: {}", short(&drop.sha), drop.subject, drop.reason);
        }
    }
    md
}

/// A run's results as a terminal shows them.
pub fn run_text(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "event {}", report.event.id);
    if report.stored {
        out.push_str("  (already ran: these are the stored results; pass --replay to run again)\n");
    }
    if report.runs.is_empty() {
        out.push_str("  no flow matches this event\n");
    }
    for run in &report.runs {
        let _ = writeln!(out, "  {} / {}  {}  {}", run.flow, run.step, run.status, run.message);
        for candidate in &run.artifacts.candidate_refs {
            let _ = writeln!(out, "      candidate {} {}", candidate.refname, candidate.sha);
        }
        for dropped in &run.artifacts.dropped {
            let _ = writeln!(out, "      dropped {} {} ({})", short(&dropped.sha), dropped.subject, dropped.reason);
        }
        if let Some(path) = &run.artifacts.report_markdown {
            let _ = writeln!(out, "      conflict report {path}");
        }
        if run.status == status::ResultStatus::Failed && !run.artifacts.log_tail.is_empty() {
            for line in run.artifacts.log_tail.iter().rev().take(10).rev() {
                let _ = writeln!(out, "      | {line}");
            }
        }
    }
    let _ = writeln!(out, "status: {}", report.status);
    out
}
