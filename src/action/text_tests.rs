//! Snapshots of the text people read: the check-run output of a conflict,
//! the job summary and the step outputs. Built from values, no repository.

use super::*;
use crate::core::status::ResultStatus;
use crate::engine::conflict::{ConflictFile, Culprit, Hunk};
use crate::engine::stack::Patch;
use crate::flow::runner::{Artifacts, RefAt};

fn conflict_run() -> RunResult {
    let patch = Patch { sha: "a".repeat(40), subject: "Read the port from config".into(), author: "Fork Dev".into() };
    let report = ConflictReport {
        patch: patch.clone(),
        applied: Vec::new(),
        remaining: Vec::new(),
        files: vec![ConflictFile {
            path: "config.toml".into(),
            kind: "contents".into(),
            hunks: vec![Hunk {
                start_line: 3,
                end_line: 4,
                upstream: "u\n".into(),
                patch: "p\n".into(),
                base: "b\n".into(),
            }],
            upstream_commits: Vec::new(),
        }],
        culprit: Some(Culprit {
            kind: "upstream".into(),
            sha: "c".repeat(40),
            subject: "Read the port from $PORT".into(),
            carried: None,
        }),
        builds_on: None,
        survey: Vec::new(),
    };
    RunResult {
        id: "run_0123456789ab".into(),
        flow: "fork".into(),
        step: "rebase".into(),
        runner: "rebase".into(),
        status: ResultStatus::NeedsIntervention,
        gated: false,
        message: "patch \"Read the port from config\" does not apply on v2.0.0 (token ghs_secret0000)".into(),
        artifacts: Artifacts {
            upstream: Some(RefAt { name: "v2.0.0".into(), sha: "d".repeat(40) }),
            branch: Some(RefAt { name: "patches".into(), sha: "e".repeat(40) }),
            report: Some("/w/.codex/workspace/actions/flow-client/runs/run_0123456789ab/conflict.json".into()),
            conflict: Some(report),
            ..Artifacts::default()
        },
        error: false,
        started_at: String::new(),
        completed_at: String::new(),
    }
}

fn job() -> JobOutcome {
    let run = conflict_run();
    let flow = FlowOutcome {
        flow: "fork".into(),
        status: Some(ResultStatus::NeedsIntervention),
        report: run.artifacts.report.clone(),
        tracking_issue: Some("https://github.example/o/r/issues/7".into()),
        runs: vec![run],
        ..FlowOutcome::default()
    };
    JobOutcome {
        status: ResultStatus::NeedsIntervention,
        event: Some(FlowEvent::upstream_release("o/up", "v2.0.0", "now".into())),
        flows: vec![flow],
        nothing: None,
    }
}

#[test]
fn conflict_check_output() {
    let output = check_output(&conflict_run(), &["ghs_secret0000".to_string()]);
    assert_eq!(output.annotations.len(), 1);
    assert_eq!((output.annotations[0].start_line, output.annotations[0].end_line), (3, 4));
    insta::assert_snapshot!(format!("title: {}\n\n{}", output.title, output.summary));
}

#[test]
fn job_summary() {
    insta::assert_snapshot!(summary_markdown(&job(), &["ghs_secret0000".to_string()]));
}

#[test]
fn step_outputs() {
    insta::assert_snapshot!(outputs(&job(), "TOKEN"));
}
