//! `patchmoi action` against a GitHub that misbehaves: faults are retried
//! within bounds or end with a clear status, and never make a duplicate;
//! and the fake itself refuses what GitHub's OpenAPI description refuses.

use serde_json::json;

use super::fake_github::{self, Fault};
use super::{runs_named, Setup};

#[test]
fn api_faults_are_retried_within_bounds_and_never_duplicate() {
    let s = Setup::new();
    let fault =
        |method, template, status, headers, apply| Fault { method, template, status, headers, message: "fault", apply };
    // A check run created, but the answer is a 500: found again, not made twice.
    s.gh.fault(fault("post", "/repos/{owner}/{repo}/check-runs", Some(500), vec![], true));
    // The next create (the build step's, in progress) lands but the connection drops: found again too.
    s.gh.fault(fault("post", "/repos/{owner}/{repo}/check-runs", None, vec![], true));
    // A secondary rate limit on opening the PR: waited out, then sent again.
    s.gh.fault(fault("post", "/repos/{owner}/{repo}/pulls", Some(403), vec![("retry-after", "1")], false));
    // A dropped connection on a read: read again.
    s.gh.fault(fault("get", "/repos/{owner}/{repo}/pulls", None, vec![], false));
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert_eq!(state.pulls.len(), 1);
    assert_eq!(runs_named(&state.check_runs, "patchmoi / fork / rebase").len(), 1);
    assert_eq!(runs_named(&state.check_runs, "patchmoi / fork / build").len(), 1);
    assert!(state.faults.is_empty(), "every fault was hit: {:?}", state.faults);
    let count = |request: &str| state.requests.iter().filter(|r| *r == request).count();
    assert_eq!(count("POST /repos/forker/fork/pulls"), 2, "one refused by the rate limit, one accepted");
    assert!(count("GET /repos/forker/fork/pulls") >= 2, "the dropped read was sent again");
}

#[test]
fn a_refused_pr_is_blocked_with_the_setting_named_and_the_candidate_kept() {
    let s = Setup::new();
    let message = "GitHub Actions is not permitted to create or approve pull requests.";
    s.gh.fault(Fault {
        method: "post",
        template: "/repos/{owner}/{repo}/pulls",
        status: Some(403),
        headers: vec![],
        message,
        apply: false,
    });
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(s.output("status"), "blocked");
    assert!(run.stderr.contains("Allow GitHub Actions to create and approve pull requests"), "{}", run.stderr);
    assert!(s.origin_branch("patchmoi/v1.1.0").is_some(), "the candidate stays pushed");
    assert!(s.gh.state().pulls.is_empty());
}

#[test]
fn a_validation_error_on_create_is_a_clear_failure() {
    let s = Setup::new();
    for _ in 0..2 {
        s.gh.fault(Fault {
            method: "post",
            template: "/repos/{owner}/{repo}/pulls",
            status: Some(422),
            headers: vec![],
            message: "Validation Failed",
            apply: false,
        });
    }
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 1);
    assert_eq!(s.output("status"), "failed");
    assert!(run.stderr.contains("GitHub answered 422 to open a pull request for patchmoi/v1.1.0"), "{}", run.stderr);
    assert!(s.gh.state().pulls.is_empty());
}

#[test]
fn the_fake_refuses_bodies_githubs_openapi_description_refuses() {
    let spec = fake_github::Spec::load();
    let check_runs = "/repos/{owner}/{repo}/check-runs";
    let cases = [
        (json!({"name": "n", "head_sha": "abc", "status": "in_progress"}), None),
        (json!({"name": "n"}), Some("missing required property `head_sha`")),
        (json!({"name": "n", "head_sha": "abc", "status": "running"}), Some("is not one of")),
        (json!({"name": "n", "head_sha": "abc", "colour": "red"}), Some("`colour` is not in the schema")),
        (json!({"name": "n", "head_sha": "abc", "output": {"title": "t"}}), Some("`summary`")),
        (json!({"name": 3, "head_sha": "abc"}), Some("expected string")),
    ];
    for (body, want) in cases {
        let result = spec.validate_body("post", check_runs, &body);
        match want {
            None => assert!(result.is_ok(), "{body}: {result:?}"),
            Some(want) => assert!(result.as_ref().is_err_and(|err| err.contains(want)), "{body}: {result:?}"),
        }
    }
    let issues = "/repos/{owner}/{repo}/issues";
    assert!(spec.validate_body("post", issues, &json!({"title": 7})).is_ok(), "title is oneOf string, integer");
    assert!(spec.validate_body("post", issues, &json!({"title": null})).is_err());
    let (template, params) = spec.operation("delete", "/repos/o/r/git/refs/heads/patchmoi/v1.0.0").unwrap();
    assert_eq!(template, "/repos/{owner}/{repo}/git/refs/{ref}");
    assert!(params.contains(&("ref".to_string(), "heads/patchmoi/v1.0.0".to_string())));
    assert!(spec.operation("put", "/repos/o/r/pulls").is_none());
}
