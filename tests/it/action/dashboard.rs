//! The dashboard issue: one per repository, rebuilt by each run from what
//! it did and the rows earlier runs kept in the issue.

use serde_json::{json, Value};

use super::{conflicting, Setup};

/// The issues carrying the dashboard's marker.
pub(super) fn dashboards(s: &Setup) -> Vec<Value> {
    let state = s.gh.state();
    let marked = |issue: &&Value| issue["body"].as_str().is_some_and(|b| b.contains("<!-- patchmoi:dashboard -->"));
    state.issues.iter().filter(marked).cloned().collect()
}

#[test]
fn one_dashboard_issue_across_runs_keeps_every_release() {
    let s = conflicting();
    let clean = s.dispatch("v1.1.0");
    assert_eq!(s.action(&clean, &[]).code, 0);
    s.forget_state();
    assert_eq!(s.action(&clean, &[]).code, 0);
    let board = dashboards(&s);
    assert_eq!(board.len(), 1, "one dashboard after two runs");
    assert_eq!(board[0]["title"], "patchmoi dashboard");
    assert_eq!(board[0]["labels"][0], "patchmoi");

    s.forget_state();
    let conflict = s.dispatch("v1.2.0");
    assert_eq!(s.action(&conflict, &[("INPUT_FAIL_ON_CONFLICT", "false")]).code, 0);
    let board = dashboards(&s);
    assert_eq!(board.len(), 1, "still one dashboard");
    let body = board[0]["body"].as_str().unwrap();
    // The row of v1.1.0 came from the issue itself: this run did not see it.
    assert!(body.contains("| v1.1.0 | changed | [pull request](https://github.example/forker/fork/pull/1)"), "{body}");
    assert!(body.contains("| v1.2.0 | needs\\_intervention |") && body.contains("in a.txt"), "{body}");
    assert!(body.contains("- [ ] promote v1.1.0 in flow fork"), "{body}");
    assert!(body.contains("- [ ] retry v1.2.0 in flow fork"), "{body}");
}

/// An `issues: edited` event (GitHub's example) on the dashboard: `tick`
/// ticked by `sender`.
fn tick(s: &Setup, tick: &str, sender: &str) -> std::path::PathBuf {
    let board = &dashboards(s)[0];
    let before = board["body"].as_str().unwrap().to_string();
    let after = before.replace(&format!("- [ ] {tick}"), &format!("- [x] {tick}"));
    assert_ne!(before, after, "the box `{tick}` is there:\n{before}");
    let mut event: Value = serde_json::from_str(include_str!("../../fixtures/webhook-issues.json")).unwrap();
    event["issue"]["number"] = board["number"].clone();
    event["issue"]["body"] = json!(after);
    event["changes"] = json!({"body": {"from": before}});
    event["sender"]["login"] = json!(sender);
    let path = s.dir.join("event-issues.json");
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[test]
fn a_writers_tick_promotes_the_candidate() {
    let s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let candidate = s.origin_branch("patchmoi/v1.1.0").unwrap();
    s.gh.state().writers.push("maintainer".into());
    let event = tick(&s, "promote v1.1.0 in flow fork", "maintainer");
    let run = s.action(&event, &[("GITHUB_EVENT_NAME", "issues")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.origin_branch("patches"), Some(candidate), "promoted");
    let body = dashboards(&s)[0]["body"].as_str().unwrap().to_string();
    assert!(body.contains("promote by &#64;maintainer\\: changed"), "{body}");
    assert!(!body.contains("- [x]"), "the box is cleared:\n{body}");
    assert!(s.gh.state().comments.is_empty());
}

#[test]
fn a_non_writers_tick_does_nothing_but_one_comment() {
    let s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let head = s.origin_branch("patches");
    let event = tick(&s, "promote v1.1.0 in flow fork", "stranger");
    let run = s.action(&event, &[("GITHUB_EVENT_NAME", "issues")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.origin_branch("patches"), head, "not promoted");
    let state = s.gh.state();
    assert_eq!(state.comments.len(), 1);
    assert!(state.comments[0]["body"].as_str().unwrap().contains("@stranger may not write"));
    let body = state.issues.iter().find(|i| i["title"] == "patchmoi dashboard").unwrap()["body"].as_str().unwrap();
    assert!(!body.contains("- [x]"), "the box is cleared:\n{body}");
}
