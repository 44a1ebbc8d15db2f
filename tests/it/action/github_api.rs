//! `patchmoi action` as a good API citizen: secondary rate limits waited
//! out (a minute, then longer), writes paced a second apart, every listing
//! read past its first page, and checks that link to the workflow run.
//! Waits run on a clock `PATCHMOI_API_BACKOFF_MS` shortens: one nominal
//! second lasts that many milliseconds.

use std::time::Duration;

use serde_json::{json, Value};

use super::fake_github::Fault;
use super::{runs_named, Setup};

const SECONDARY: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";

fn is_write(request: &str) -> bool {
    !request.starts_with("GET ")
}

#[test]
fn a_secondary_rate_limit_without_retry_after_waits_a_minute_then_sends_again() {
    let s = Setup::new();
    s.gh.fault(Fault {
        method: "post",
        template: "/repos/{owner}/{repo}/pulls",
        status: Some(403),
        headers: vec![("x-ratelimit-remaining", "4990")],
        message: SECONDARY,
        apply: false,
    });
    // One nominal second lasts 20 ms (the Setup's PATCHMOI_API_BACKOFF_MS): the minute is 1.2 s.
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("secondary rate limit") && run.stderr.contains("trying again in 60s"),
        "{}",
        run.stderr
    );
    let state = s.gh.state();
    assert_eq!(state.pulls.len(), 1);
    let posts: Vec<usize> =
        (0..state.requests.len()).filter(|&i| state.requests[i] == "POST /repos/forker/fork/pulls").collect();
    assert_eq!(posts.len(), 2, "refused once, then accepted: {:?}", state.requests);
    let waited = state.stamps[posts[1]] - state.stamps[posts[0]];
    assert!(waited >= Duration::from_millis(1200), "waited only {waited:?}");
}

#[test]
fn writes_to_github_go_a_second_apart() {
    let s = Setup::new();
    // A nominal second of 150 ms keeps the test short and the gaps measurable.
    let run = s.action(&s.dispatch("v1.1.0"), &[("PATCHMOI_API_BACKOFF_MS", "150")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    let writes: Vec<_> =
        (0..state.requests.len()).filter(|&i| is_write(&state.requests[i])).map(|i| state.stamps[i]).collect();
    assert!(writes.len() >= 4, "{:?}", state.requests);
    for pair in writes.windows(2) {
        let gap = pair[1] - pair[0];
        // Stamped on arrival, so one request's slower trip (a new connection
        // on a loaded machine) can eat into the gap: half the nominal second
        // still tells paced writes (150 ms) from unpaced ones (a few ms).
        assert!(gap >= Duration::from_millis(75), "two writes {gap:?} apart: {:?}", state.requests);
    }
}

#[test]
fn a_rate_limited_check_run_is_a_warning_never_a_switch_to_statuses() {
    let s = Setup::new();
    // Longer than patchmoi waits: the limit outlasts the run.
    s.gh.fault(Fault {
        method: "post",
        template: "/repos/{owner}/{repo}/check-runs",
        status: Some(403),
        headers: vec![("retry-after", "3600")],
        message: SECONDARY,
        apply: false,
    });
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert!(run.stderr.contains("secondary rate limit"), "{}", run.stderr);
    assert!(!run.stderr.contains("cannot create check runs"), "{}", run.stderr);
    let state = s.gh.state();
    assert!(state.statuses.is_empty(), "a rate limit is no reason for statuses: {:?}", state.statuses);
    assert_eq!(runs_named(&state.check_runs, "patchmoi / fork / build").len(), 1, "later checks are check runs still");
}

#[test]
fn a_token_that_cannot_create_check_runs_falls_back_to_statuses_linking_the_run() {
    let s = Setup::new();
    for _ in 0..4 {
        s.gh.fault(Fault {
            method: "post",
            template: "/repos/{owner}/{repo}/check-runs",
            status: Some(403),
            headers: vec![],
            message: "Resource not accessible by personal access token",
            apply: false,
        });
    }
    let run = s.action(&s.dispatch("v1.1.0"), &[("GITHUB_RUN_ID", "4242")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert!(!state.statuses.is_empty());
    for status in &state.statuses {
        assert_eq!(status["target_url"], "https://github.example/forker/fork/actions/runs/4242", "{status}");
    }
}

#[test]
fn check_runs_link_to_the_workflow_run() {
    let s = Setup::new();
    let run = s.action(&s.dispatch("v1.1.0"), &[("GITHUB_RUN_ID", "4242")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert_eq!(state.check_runs.len(), 2);
    for check in &state.check_runs {
        assert_eq!(check["details_url"], "https://github.example/forker/fork/actions/runs/4242", "{check}");
    }
}

#[test]
fn listings_are_read_past_the_first_hundred() {
    let s = Setup::new();
    let event = s.dispatch("v1.1.0");
    assert_eq!(s.action(&event, &[]).code, 0);
    let sha = s.origin_branch("patchmoi/v1.1.0").unwrap();
    {
        let mut state = s.gh.state();
        // 150 check runs of another job with our name come first on the commit.
        let others: Vec<Value> = (0..150)
            .map(|i| json!({"id": 1 + i, "name": "patchmoi / fork / rebase", "head_sha": sha, "external_id": format!("other-{i}"),
                            "status": "completed", "annotations": []}))
            .collect();
        state.check_runs.splice(0..0, others);
        // 150 open PRs of other branches before an older patchmoi PR of the flow.
        let mut pulls: Vec<Value> = (0..150)
            .map(|i| json!({"number": 500 + i, "state": "open", "title": "t", "body": "other",
                            "html_url": "https://github.example/x", "head": {"ref": format!("feature-{i}"), "repo": {"full_name": "forker/fork"}},
                            "base": {"ref": "main"}}))
            .collect();
        pulls.push(json!({"number": 900, "state": "open", "title": "old", "body": "<!-- patchmoi:pr flow=fork tag=v1.0.0 -->",
                          "html_url": "https://github.example/forker/fork/pull/900",
                          "head": {"ref": "patchmoi/v1.0.0", "repo": {"full_name": "forker/fork"}}, "base": {"ref": "main"}}));
        state.pulls.splice(0..0, pulls);
        // 120 comments on it, the superseded note among the last.
        for i in 0..120 {
            let body = if i == 110 { "Superseded by #1\n\n<!-- patchmoi:superseded-by=1 -->" } else { "chatter" };
            state.comments.push(json!({"id": 5000 + i, "issue": 900, "body": body}));
        }
    }
    s.forget_state();
    let run = s.action(&event, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    let ours: Vec<&Value> = runs_named(&state.check_runs, "patchmoi / fork / rebase")
        .into_iter()
        .filter(|run| run["external_id"].as_str().is_some_and(|id| !id.starts_with("other-")))
        .collect();
    assert_eq!(ours.len(), 1, "our check run was found on page 2, not made again");
    let old = state.pulls.iter().find(|pr| pr["number"] == 900).unwrap();
    assert_eq!(old["state"], "closed", "the older PR on page 2 was closed");
    assert_eq!(state.comments.iter().filter(|c| c["issue"] == 900).count(), 120, "its note on page 2 was seen");
    assert!(state.requests.iter().any(|r| r.contains("/pulls") && r.starts_with("GET")));
}
