//! `patchmoi prune`: old releases' refs, here and on the fork's remote,
//! their run folders and records go; the newest --keep, the promoted one
//! and the maintained branch's newest backups stay, and so does a release
//! an open pull request on the fork uses (its head or its base branch).
//! Dry by default; without a way to list the open PRs, `--push --apply`
//! refuses to delete the remote's candidate and base branches.

use std::path::Path;

use serde_json::json;

use crate::common::{Fixture, Repo};
use crate::fake_github::FakeGitHub;

fn refs(repo: &Repo, prefix: &str) -> Vec<String> {
    repo.git(&["for-each-ref", "--format=%(refname)", prefix]).lines().map(str::to_string).collect()
}

fn run_dirs(fx: &Fixture) -> usize {
    std::fs::read_dir(fx.state_dir().join("runs")).map_or(0, |dir| dir.count())
}

fn attempts_of(fx: &Fixture, tag: &str) -> usize {
    let event = format!("patch:upstream.release:test/upstream:{tag}");
    let data = fx.fork.dir.join("data");
    let listed = crate::common::patchmoi(
        Path::new(&fx.fork.dir),
        &["attempts", "--event-id", &event, "--data-dir", data.to_str().unwrap(), "--json"],
        &[],
    );
    listed.json()["attempts"].as_array().unwrap().len()
}

/// The rebase flow, an `origin` holding `patches` (the fork detached, so
/// prune may delete any branch), and upstream releases v1.1.0 to v1.4.0.
fn four_releases() -> (Fixture, Repo) {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let origin = fx.with_origin();
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    for (n, tag) in ["v1.2.0", "v1.3.0", "v1.4.0"].iter().enumerate() {
        fx.upstream.commit(&format!("Upstream {tag}"), &[("c.txt", &format!("{n}\n"))]);
        fx.upstream.git(&["tag", tag]);
    }
    (fx, origin)
}

#[test]
fn prune_keeps_the_newest_and_the_promoted_and_deletes_the_rest_here_and_on_the_remote() {
    let (fx, origin) = four_releases();
    // v1.1.0 and v1.2.0 are promoted in turn (two backups of `patches`,
    // here and on origin); v1.3.0 and v1.4.0 only built.
    for tag in ["v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"] {
        let run = fx.run_release(tag, &["--push"]);
        assert_eq!(run.code, 0, "{tag}: {}", run.stderr);
        if tag <= "v1.2.0" {
            let promoted = fx.patchmoi(&["promote", "--flow", "fork", "--tag", tag, "--push"], &[]);
            assert_eq!(promoted.code, 0, "{tag}: {}", promoted.stderr);
            // Backups are named by the second.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        // The Action's base branch for the PR.
        let base = format!("refs/patchmoi/upstream/tags/{tag}:refs/heads/patchmoi/upstream/{tag}");
        fx.fork.git(&["push", "--quiet", "origin", &base]);
    }
    assert_eq!(refs(&fx.fork, "refs/patchmoi/backup/heads/patches/").len(), 2);
    assert_eq!(refs(&origin, "refs/heads/patchmoi/backup/").len(), 2);
    assert_eq!(attempts_of(&fx, "v1.1.0"), 2, "the run and the promotion");
    let runs_before = run_dirs(&fx);
    assert!(runs_before >= 4, "{runs_before}");

    let dry = fx.patchmoi(&["prune", "--keep", "1", "--push"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("keep v1.4.0: fork: one of the newest 1"), "{}", dry.stdout);
    assert!(dry.stdout.contains("keep v1.2.0: fork: its candidate is patches's tip"), "{}", dry.stdout);
    assert!(dry.stdout.contains("would delete refs/heads/patchmoi/v1.3.0 "), "{}", dry.stdout);
    assert!(dry.stdout.contains("would delete refs/heads/patchmoi/v1.1.0 on origin"), "{}", dry.stdout);
    assert!(dry.stdout.contains("add --apply"), "{}", dry.stdout);
    assert!(dry.stdout.contains("open pull requests on origin not checked: GITHUB_TOKEN is not set"), "{}", dry.stdout);
    assert_eq!(refs(&fx.fork, "refs/heads/patchmoi/").len(), 4, "a dry run deletes nothing");
    assert_eq!(run_dirs(&fx), runs_before);

    // Open PRs cannot be listed without a token: the remote's candidate
    // and base branches stay unless told.
    let refused = fx.patchmoi(&["prune", "--keep", "1", "--push", "--apply"], &[]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("refs/heads/patchmoi/v1.1.0 on origin"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--ignore-prs") && refused.stderr.contains("nothing was deleted"));
    assert_eq!(refs(&fx.fork, "refs/heads/patchmoi/").len(), 4, "a refusal deletes nothing");
    let applied = fx.patchmoi(&["prune", "--keep", "1", "--push", "--apply", "--ignore-prs"], &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let candidates = ["refs/heads/patchmoi/v1.2.0", "refs/heads/patchmoi/v1.4.0"];
    assert_eq!(refs(&fx.fork, "refs/heads/patchmoi/"), candidates);
    assert_eq!(
        refs(&fx.fork, "refs/patchmoi/upstream/tags/"),
        ["refs/patchmoi/upstream/tags/v1.2.0", "refs/patchmoi/upstream/tags/v1.4.0"]
    );
    assert_eq!(refs(&fx.fork, "refs/patchmoi/built-from/").len(), 2);
    assert_eq!(refs(&fx.fork, "refs/patchmoi/backup/heads/patches/").len(), 1, "the newest backup stays");
    assert_eq!(refs(&fx.fork, "refs/patchmoi/resolutions").len(), 0, "no memory was made; none touched");
    let on_origin = refs(&origin, "refs/heads/");
    let want: Vec<String> = ["patches", "patchmoi/upstream/v1.2.0", "patchmoi/upstream/v1.4.0", "patchmoi/v1.2.0"]
        .iter()
        .chain(&["patchmoi/v1.4.0"])
        .map(|name| format!("refs/heads/{name}"))
        .collect();
    let backups: Vec<&String> = on_origin.iter().filter(|name| name.contains("/backup/")).collect();
    assert_eq!(backups.len(), 1, "{on_origin:?}");
    let others: Vec<String> = on_origin.iter().filter(|name| !name.contains("/backup/")).cloned().collect();
    assert_eq!(others, want);
    assert_eq!(attempts_of(&fx, "v1.1.0"), 0);
    assert_eq!(attempts_of(&fx, "v1.3.0"), 0);
    assert!(attempts_of(&fx, "v1.4.0") > 0);
    assert_eq!(run_dirs(&fx), runs_before / 2, "the run folders of two releases of four");
    let history = fx.patchmoi(&["history", "--json"], &[]);
    let text = history.stdout;
    assert!(!text.contains("v1.1.0") && !text.contains("v1.3.0") && text.contains("v1.4.0"), "{text}");

    let again = fx.patchmoi(&["prune", "--keep", "1", "--push", "--apply", "--ignore-prs"], &[]);
    assert!(again.stdout.contains("nothing to prune"), "{}", again.stdout);
    assert_eq!(fx.patchmoi(&["prune", "--keep", "0"], &[]).code, 2);
}

const TOKEN: &str = "ghs_prune0123456789abcdef";

#[test]
fn prune_keeps_the_releases_that_open_pull_requests_use() {
    let (fx, origin) = four_releases();
    for tag in ["v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"] {
        let run = fx.run_release(tag, &["--push"]);
        assert_eq!(run.code, 0, "{tag}: {}", run.stderr);
        let base = format!("refs/patchmoi/upstream/tags/{tag}:refs/heads/patchmoi/upstream/{tag}");
        fx.fork.git(&["push", "--quiet", "origin", &base]);
    }
    let gh = FakeGitHub::start(TOKEN, origin.dir.clone());
    {
        let mut state = gh.state();
        // A first page of PRs that use no release, so the ones that do are
        // on the second page.
        for number in 1..=100u64 {
            state.pulls.push(json!({"number": number, "state": "open",
                "head": {"ref": format!("topic-{number}")}, "base": {"ref": "patches"}}));
        }
        // v1.2.0's candidate is the head of an open PR; v1.1.0's base
        // branch is the base of another; v1.3.0's PR is closed.
        state.pulls.push(json!({"number": 101, "state": "open",
            "head": {"ref": "patchmoi/v1.2.0"}, "base": {"ref": "patchmoi/upstream/v1.2.0"}}));
        state.pulls.push(json!({"number": 102, "state": "open",
            "head": {"ref": "someone/v1.1.0-fix"}, "base": {"ref": "patchmoi/upstream/v1.1.0"}}));
        state.pulls.push(json!({"number": 103, "state": "closed",
            "head": {"ref": "patchmoi/v1.3.0"}, "base": {"ref": "patchmoi/upstream/v1.3.0"}}));
    }
    let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_API_URL", gh.url.as_str())];

    let dry = fx.patchmoi(&["prune", "--keep", "1", "--push", "--repo", "test/fork"], &env);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("keep v1.2.0: fork: open PR #101 (head patchmoi/v1.2.0)"), "{}", dry.stdout);
    assert!(dry.stdout.contains("keep v1.1.0: fork: open PR #102 (base patchmoi/upstream/v1.1.0)"), "{}", dry.stdout);
    assert!(dry.stdout.contains("would delete refs/heads/patchmoi/v1.3.0 on origin"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("not checked"), "{}", dry.stdout);

    let applied = fx.patchmoi(&["prune", "--keep", "1", "--push", "--apply", "--repo", "test/fork"], &env);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let kept = ["v1.1.0", "v1.2.0", "v1.4.0"];
    let want = |prefix: &str| -> Vec<String> { kept.iter().map(|tag| format!("{prefix}{tag}")).collect() };
    assert_eq!(refs(&origin, "refs/heads/patchmoi/upstream/"), want("refs/heads/patchmoi/upstream/"));
    let candidates: Vec<String> =
        refs(&origin, "refs/heads/patchmoi/").into_iter().filter(|name| !name.contains("/upstream/")).collect();
    assert_eq!(candidates, want("refs/heads/patchmoi/"));
    assert_eq!(refs(&fx.fork, "refs/heads/patchmoi/"), want("refs/heads/patchmoi/"));
    assert_eq!(attempts_of(&fx, "v1.3.0"), 0);
    assert!(attempts_of(&fx, "v1.1.0") > 0);

    let state = gh.state();
    assert!(state.violations.is_empty(), "{:?}", state.violations);
    let listed: Vec<&String> = state.requests.iter().filter(|request| request.ends_with("/pulls")).collect();
    assert_eq!(listed.len(), 4, "two pages, each run: {:?}", state.requests);
    assert!(state.requests.iter().all(|request| request.starts_with("GET /repos/test/fork/")), "{:?}", state.requests);
}

/// Two flows with the default candidate template (`patchmoi/{tag}`) share
/// one branch namespace: each flow's newest releases are its own (its
/// events, the candidate branches its tag pattern takes), so one flow's
/// newer tags never push the other's only release out of its --keep.
#[test]
fn each_flow_keeps_its_own_newest_releases_when_flows_share_the_candidate_namespace() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let other = format!(
        "name: other\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"r*\"}}\n\
         stack:\n  upstream: {}\n  branch: patches\nsteps:\n  - name: rebase\n    uses: rebase\n",
        fx.upstream.path_str()
    );
    fx.install_flow("other", &other);
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    fx.upstream.git(&["tag", "r1.0", "v1.1.0"]);
    for (n, tag) in ["v1.2.0", "v1.3.0"].iter().enumerate() {
        fx.upstream.commit(&format!("Upstream {tag}"), &[("c.txt", &format!("{n}\n"))]);
        fx.upstream.git(&["tag", tag]);
    }
    for tag in ["r1.0", "v1.1.0", "v1.2.0", "v1.3.0"] {
        let run = fx.run_release(tag, &[]);
        assert_eq!(run.code, 0, "{tag}: {}", run.stderr);
    }
    assert!(fx.fork.git(&["branch", "--list", "patchmoi/r1.0"]).contains("r1.0"));

    let applied = fx.patchmoi(&["prune", "--keep", "1", "--apply"], &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stdout.contains("keep r1.0: other: one of the newest 1"), "{}", applied.stdout);
    assert!(applied.stdout.contains("keep v1.3.0: fork: one of the newest 1"), "{}", applied.stdout);
    assert_eq!(refs(&fx.fork, "refs/heads/patchmoi/"), ["refs/heads/patchmoi/r1.0", "refs/heads/patchmoi/v1.3.0"]);
    assert!(attempts_of(&fx, "r1.0") > 0, "the other flow's release keeps its records");
}
