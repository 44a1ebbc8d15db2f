//! Provenance drops with GitHub's word: a patch that names an upstream pull
//! request the release's history says nothing of (merged by rebase, no
//! `(#n)` subject, no merge commit) is dropped when GitHub says it was
//! merged as a commit the release contains, and carried when it was not.

use serde_json::json;

use crate::common::{lines, replace_line, Fixture};

use super::{Setup, TOKEN};
use crate::fake_github::FakeGitHub;

#[test]
fn a_pull_request_the_history_does_not_name_is_dropped_on_githubs_word() {
    let (a, b) = (lines("a", 10), lines("b", 10));
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &b)]);
    fx.fork.commit("Fork: fix line 4\n\nUpstream-PR: #7", &[("a.txt", &replace_line(&a, 4, "a 4 (fixed)"))]);
    fx.fork.commit(
        "Fork: line 6, proposed upstream\n\nUpstream-PR: test/upstream#8",
        &[("b.txt", &replace_line(&b, 6, "b 6 (fork)"))],
    );
    // Upstream took #7 by a rebase merge, reworked: another patch-id, a conflict for a plain rebase.
    let merged =
        fx.upstream.commit("Fix line 4 the upstream way", &[("a.txt", &replace_line(&a, 4, "a 4 (fixed upstream)"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    let s = Setup::on(fx);
    {
        let mut state = s.gh.state.lock().unwrap();
        state.foreign_pulls.push(json!({"number": 7, "state": "closed", "merged": true,
            "merge_commit_sha": merged, "base": {"repo": {"full_name": "test/upstream"}}}));
        state.foreign_pulls.push(json!({"number": 8, "state": "open", "merged": false,
            "merge_commit_sha": null, "base": {"repo": {"full_name": "test/upstream"}}}));
    }

    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.output("status"), "changed", "{}", s.outputs());
    let log = s.fx.fork.git(&["log", "--format=%s", "refs/patchmoi/upstream/tags/v1.1.0..patchmoi/v1.1.0"]);
    assert_eq!(log, "Fork: line 6, proposed upstream", "#7 dropped, #8 carried");
    let state = s.gh.state.lock().unwrap();
    for asked in ["GET /repos/test/upstream/pulls/7", "GET /repos/test/upstream/pulls/8"] {
        assert!(state.requests.iter().any(|request| request.starts_with(asked)), "{asked}: {:?}", state.requests);
    }
    let pr = state.pulls.iter().find(|pr| pr["head"]["ref"] == "patchmoi/v1.1.0").expect("a candidate PR");
    let body = pr["body"].as_str().unwrap();
    let short = &merged[..12];
    assert!(
        body.contains(&format!("dropped by provenance (`Upstream-PR:` trailer): GitHub says #7 was merged as {short}")),
        "the drop names its rule and the upstream commit: {body}"
    );
}

#[test]
fn a_local_run_asks_github_only_with_a_token() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a)]);
    fx.fork.commit("Fork: fix line 4\n\nUpstream-PR: #7", &[("a.txt", &replace_line(&a, 4, "a 4 (fixed)"))]);
    let merged =
        fx.upstream.commit("Fix line 4 the upstream way", &[("a.txt", &replace_line(&a, 4, "a 4 (fixed upstream)"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    let gh = FakeGitHub::start(TOKEN, fx.upstream.dir.clone());
    gh.state.lock().unwrap().foreign_pulls.push(json!({"number": 7, "state": "closed", "merged": true,
        "merge_commit_sha": merged, "base": {"repo": {"full_name": "test/upstream"}}}));

    // No token: GitHub is not asked, and the patch stops as for `git rebase`.
    let run = fx.run_release("v1.1.0", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Fork: fix line 4");
    assert!(gh.state.lock().unwrap().requests.is_empty());

    let args = ["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--replay"];
    let run = fx.patchmoi(&args, &[("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", gh.url.as_str())]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{rebase}");
    let reason = rebase["artifacts"]["dropped"][0]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{rebase}\n{}", run.stderr))
        .to_string();
    assert!(reason.contains(&format!("GitHub says #7 was merged as {}", &merged[..12])), "{reason}");
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
}
