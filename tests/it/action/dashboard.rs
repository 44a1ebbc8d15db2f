//! The dashboard issue: one per repository, rebuilt by each run from what
//! it did and the rows earlier runs kept in the issue.

use serde_json::{json, Value};

use super::{conflicting, lines, replace_line, Setup};

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
    assert_eq!(board[0]["labels"][0]["name"], "patchmoi");

    s.forget_state();
    let conflict = s.dispatch("v1.2.0");
    assert_eq!(s.action(&conflict, &[("INPUT_FAIL_ON_CONFLICT", "false")]).code, 0);
    let board = dashboards(&s);
    assert_eq!(board.len(), 1, "still one dashboard");
    let body = board[0]["body"].as_str().unwrap();
    // The row of v1.1.0 came from the issue itself: this run did not see it.
    assert!(body.contains("| v1.1.0 | changed | [pull request](https://github.example/forker/fork/pull/1)"), "{body}");
    assert!(body.contains("| v1.2.0 | needs\\_intervention |") && body.contains("in a.txt"), "{body}");
    // The tracking issue holds the whole report; the row links to it.
    assert!(body.contains("([whole report](https://github.example/forker/fork/issues/"), "{body}");
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
    event["issue"]["labels"] = board["labels"].clone();
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

/// The open issues carrying the dashboard's marker.
fn open_dashboards(s: &Setup) -> Vec<Value> {
    dashboards(s).into_iter().filter(|issue| issue["state"] == "open").collect()
}

/// Runs v1.2.0 (a conflict) and takes its dashboard back out of the fake,
/// as if that run were still about to open it: what a racing run will write.
fn a_racing_runs_dashboard(s: &Setup) -> Value {
    assert_eq!(s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]).code, 0);
    s.forget_state();
    let mut state = s.gh.state();
    let index = state.issues.iter().position(|i| i["title"] == "patchmoi dashboard").unwrap();
    let mut theirs = state.issues.remove(index);
    theirs.as_object_mut().unwrap().remove("number");
    theirs
}

#[test]
fn racing_runs_end_with_one_dashboard_holding_both_releases() {
    // The other run opens its dashboard just before ours, then just after.
    for before in [true, false] {
        let s = conflicting();
        let theirs = a_racing_runs_dashboard(&s);
        match before {
            true => s.gh.state().issue_opened_meanwhile = Some(theirs),
            false => s.gh.state().issue_opened_after = Some(theirs),
        }
        // Ours, for v1.1.0 (clean: the dashboard is the only issue it opens).
        let run = s.action(&s.dispatch("v1.1.0"), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let all = dashboards(&s);
        assert_eq!(all.len(), 2, "both runs opened one");
        let open = open_dashboards(&s);
        assert_eq!(open.len(), 1, "one is left open (before: {before}): {all:?}");
        assert_eq!(open[0]["number"], all[0]["number"], "the oldest");
        let closed = &all[1];
        assert_eq!((closed["state"].as_str(), closed["state_reason"].as_str()), (Some("closed"), Some("duplicate")));
        let body = open[0]["body"].as_str().unwrap();
        assert!(body.contains("| v1.1.0 | changed |"), "the other run's row is kept: {body}");
        assert!(body.contains("| v1.2.0 | needs\\_intervention |"), "and ours: {body}");
    }
}

#[test]
fn a_forged_dashboard_marker_is_not_taken_for_the_dashboard() {
    let s = Setup::new();
    let quoted = "report quoting <!-- patchmoi:dashboard --> in a commit subject";
    let forged = [
        // A tracking issue whose report quotes the marker.
        json!({"id": 900, "number": 90, "state": "open", "title": "tracking", "html_url": "x",
               "labels": [{"name": "patchmoi"}],
               "body": format!("{quoted}\n\n<!-- patchmoi:tracking flow=other -->\n")}),
        // Someone without triage access cannot label an issue.
        json!({"id": 901, "number": 91, "state": "open", "title": "patchmoi dashboard", "html_url": "x",
               "labels": [], "body": "- [ ] promote v1.1.0 in flow fork\n\n<!-- patchmoi:dashboard -->\n"}),
    ];
    s.gh.state().issues.extend(forged.iter().cloned());
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let state = s.gh.state();
    assert_eq!(&state.issues[..2], &forged[..], "the forged issues are untouched");
    let ours: Vec<&Value> = state.issues[2..].iter().filter(|i| i["title"] == "patchmoi dashboard").collect();
    assert_eq!(ours.len(), 1, "{:?}", state.issues);
    assert!(ours[0]["body"].as_str().unwrap().contains("| v1.1.0 | changed |"));
}

#[test]
fn a_writers_retry_runs_the_release_again_end_to_end() {
    // On a hosted runner (no state kept) and on a self-hosted one whose
    // checkout kept the first run's results.
    for keep_state in [false, true] {
        retry_runs_again(keep_state);
    }
}

fn retry_runs_again(keep_state: bool) {
    let s = conflicting();
    assert_eq!(s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]).code, 0);
    assert_eq!(s.origin_branch("patchmoi/v1.2.0"), None, "no candidate for a conflict");
    // The maintainer rewrites the patch so it applies to v1.2.0, then ticks retry.
    let fork = &s.fx.fork;
    fork.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    fork.commit("Fork patch, on line 5", &[("a.txt", &replace_line(&lines("a", 10), 5, "fork"))]);
    fork.git(&["push", "--quiet", "--force", "origin", "patches"]);
    if !keep_state {
        s.forget_state();
    }
    s.gh.state().writers.push("maintainer".into());
    let event = tick(&s, "retry v1.2.0 in flow fork", "maintainer");
    let run = s.action(&event, &[("GITHUB_EVENT_NAME", "issues")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed", "state kept: {keep_state}");
    let candidate = s.origin_branch("patchmoi/v1.2.0").expect("the retry pushed a candidate");
    assert_eq!(s.fx.fork.git(&["show", &format!("{candidate}:a.txt")]).lines().nth(4), Some("fork"));
    let state = s.gh.state();
    assert_eq!(state.pulls.len(), 1, "and opened its pull request");
    // The conflict is over: its tracking issue is closed, saying why.
    let tracking = &state.issues[0];
    assert_eq!((tracking["state"].as_str(), tracking["state_reason"].as_str()), (Some("closed"), Some("completed")));
    assert_eq!(state.comments.len(), 1);
    assert!(state.comments[0]["body"].as_str().unwrap().starts_with("v1.2.0 applies cleanly"));
    drop(state);
    let body = open_dashboards(&s)[0]["body"].as_str().unwrap().to_string();
    assert!(body.contains("| v1.2.0 | changed | [pull request]"), "{body}");
    assert!(body.contains("- [ ] promote v1.2.0 in flow fork") && !body.contains("- [x]"), "{body}");
}

#[test]
fn the_tracking_issue_comments_only_when_its_state_changes() {
    let s = conflicting();
    let quiet = [("INPUT_FAIL_ON_CONFLICT", "false")];
    // The same conflict, run after run, and an older clean release: no comment.
    for _ in 0..3 {
        assert_eq!(s.action(&s.dispatch("v1.2.0"), &quiet).code, 0);
        s.forget_state();
    }
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    s.forget_state();
    {
        let state = s.gh.state();
        assert!(state.comments.is_empty(), "{:?}", state.comments);
        let titles: Vec<&str> = state.issues.iter().map(|i| i["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["patchmoi: fork needs intervention on v1.2.0", "patchmoi dashboard"], "one per flow");
        assert_eq!(state.issues[0]["state"], "open", "an older release ends nothing");
    }
    // A newer release blocks now: one comment says so.
    s.fx.upstream.commit("Upstream again", &[("c.txt", "c\n")]);
    s.fx.upstream.git(&["tag", "v1.3.0"]);
    for _ in 0..2 {
        assert_eq!(s.action(&s.dispatch("v1.3.0"), &quiet).code, 0);
        s.forget_state();
    }
    let tracking_number = s.gh.state().issues[0]["number"].clone();
    let comments = |s: &Setup| -> Vec<String> {
        let state = s.gh.state();
        let on_it = state.comments.iter().filter(|c| c["issue"] == tracking_number);
        on_it.map(|c| c["body"].as_str().unwrap().to_string()).collect()
    };
    let said = comments(&s);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("Now blocked on v1.3.0: patch") && said[0].contains("Fork patch"), "{said:?}");
    // The patch is fixed and v1.3.0 applies: the issue is closed with one comment, once.
    let fork = &s.fx.fork;
    fork.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    fork.commit("Fork patch, on line 5", &[("a.txt", &replace_line(&lines("a", 10), 5, "fork"))]);
    fork.git(&["push", "--quiet", "--force", "origin", "patches"]);
    for _ in 0..2 {
        assert_eq!(s.action(&s.dispatch("v1.3.0"), &[]).code, 0);
        s.forget_state();
    }
    let said = comments(&s);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[1].starts_with("v1.3.0 applies cleanly"), "{said:?}");
    let state = s.gh.state();
    let tracking = &state.issues[0];
    assert_eq!((tracking["state"].as_str(), tracking["state_reason"].as_str()), (Some("closed"), Some("completed")));
    assert_eq!(state.issues.len(), 2, "still one per flow and the dashboard");
}
