//! The dashboard issue: one per repository, rebuilt by each run from what
//! it did and the rows earlier runs kept in the issue.

use serde_json::Value;

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
