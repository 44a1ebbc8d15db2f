//! Culprits as a maintainer reads them: the upstream commit after which a
//! patch stops applying, with the patches below it carried as the replay
//! left them (resolutions included) or as the fork committed them, and
//! named only when that claim holds; one for every patch of the survey.

use crate::common;

use common::{lines, replace_line, Fixture, Repo};

/// Runs `resolve`, writes `text` into `path` in its worktree and runs
/// `continue`: the resolution is in the memory, and the flow ran again.
fn resolve_by_hand(fx: &Fixture, tag: &str, path: &str, text: &str) -> serde_json::Value {
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", tag, "--json"], &[]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let worktree = Repo { dir: started.json()["worktree"].as_str().unwrap().into() };
    assert!(worktree.read(path).contains("<<<<<<<"), "{}", worktree.read(path));
    worktree.write(path, text);
    worktree.git(&["add", path]);
    let done = fx.patchmoi(&["continue", "--flow", "fork", "--tag", tag, "--json"], &[]);
    assert!(done.code <= 1, "{}\n{}", done.stdout, done.stderr);
    let report = &done.json()["report"];
    report["runs"].as_array().unwrap().iter().find(|run| run["step"] == "rebase").unwrap().clone()
}

fn commit_of(fx: &Fixture, subject: &str) -> String {
    fx.upstream.git(&["log", "--format=%H", "--grep", subject, "-F", "v2"])
}

#[test]
fn a_resolved_lower_patch_does_not_move_the_culprit() {
    // The lower patch collides with "low line 3" and is resolved by hand;
    // the stopped patch collides with "top line 8". Between the two,
    // upstream touches top.txt harmlessly: carrying the lower patch as it
    // was committed fails from "low line 3" on, which a search that needs
    // the whole stack to merge blames on that harmless commit.
    let (low, top) = (lines("l", 10), lines("t", 10));
    let fx = Fixture::new(&[("low.txt", &low), ("top.txt", &top)]);
    fx.fork.commit("Patch: low line 3", &[("low.txt", &replace_line(&low, 3, "l 3 (fork)"))]);
    fx.fork.commit("Patch: top line 8", &[("top.txt", &replace_line(&top, 8, "t 8 (fork)"))]);
    fx.upstream.commit("Upstream: low line 3", &[("low.txt", &replace_line(&low, 3, "l 3 (upstream)"))]);
    let top_2 = replace_line(&top, 2, "t 2 (upstream)");
    fx.upstream.commit("Upstream: top line 2", &[("top.txt", &top_2)]);
    fx.upstream.commit("Upstream: top line 8", &[("top.txt", &replace_line(&top_2, 8, "t 8 (upstream)"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let first = fx.run_release("v2", &[]).step("rebase");
    assert_eq!(first["artifacts"]["conflict"]["patch"]["subject"], "Patch: low line 3");
    let rebase = resolve_by_hand(&fx, "v2", "low.txt", &replace_line(&low, 3, "l 3 (upstream and fork)"));
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    let conflict = &rebase["artifacts"]["conflict"];
    assert_eq!(conflict["patch"]["subject"], "Patch: top line 8");
    let culprit = &conflict["culprit"];
    assert_eq!(culprit["kind"], "upstream", "{conflict}");
    assert_eq!(culprit["subject"], "Upstream: top line 8", "{conflict}");
    assert_eq!(culprit["sha"], commit_of(&fx, "Upstream: top line 8"));
    assert_eq!(culprit["carried"], "replayed", "{conflict}");
    let markdown = std::fs::read_to_string(rebase["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("**Culprit:** upstream commit"), "{markdown}");
    assert!(markdown.contains("Upstream: top line 8"), "{markdown}");
}

#[test]
fn no_culprit_is_named_when_no_single_upstream_commit_explains_the_conflict() {
    // The lower patch collides with upstream on line 3 and its resolution
    // also rewrites line 4, the line the stopped patch changes: the stopped
    // patch conflicts because of the resolution, not because of an upstream
    // commit. "Upstream: line 3" is where the search lands, but the claim
    // does not hold there with the lower patch carried either way.
    let f = lines("f", 10);
    let fx = Fixture::new(&[("f.txt", &f)]);
    fx.fork.commit("Patch: line 3", &[("f.txt", &replace_line(&f, 3, "f 3 (fork)"))]);
    let fork_3 = replace_line(&f, 3, "f 3 (fork)");
    fx.fork.commit("Patch: line 6", &[("f.txt", &replace_line(&fork_3, 6, "f 6 (fork)"))]);
    fx.upstream.commit("Upstream: line 3", &[("f.txt", &replace_line(&f, 3, "f 3 (upstream)"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let first = fx.run_release("v2", &[]).step("rebase");
    assert_eq!(first["artifacts"]["conflict"]["patch"]["subject"], "Patch: line 3");
    let resolved = replace_line(&replace_line(&f, 3, "f 3 (both)"), 5, "f 5 (rewritten by the resolution)");
    let resolved = replace_line(&resolved, 6, "f 6 (rewritten by the resolution)");
    let rebase = resolve_by_hand(&fx, "v2", "f.txt", &resolved);
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    let conflict = &rebase["artifacts"]["conflict"];
    assert_eq!(conflict["patch"]["subject"], "Patch: line 6");
    assert!(conflict["culprit"].is_null(), "{conflict}");
    let markdown = std::fs::read_to_string(rebase["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("no single upstream commit explains the conflict"), "{markdown}");
}

#[test]
fn the_culprit_range_starts_where_the_branch_left_upstream() {
    // The fork patched line 3 on v1, then merged upstream's "line 3" commit
    // and a later one ("Sync fork", resolved in the merge, left out of the
    // stack). Replayed on v2 the patch collides with "line 3", which is
    // older than the merge base of the branch and the release.
    let (f, g) = (lines("f", 10), lines("g", 10));
    let fx = Fixture::new(&[("f.txt", &f), ("g.txt", &g)]);
    fx.upstream.commit("Upstream: line 3", &[("f.txt", &replace_line(&f, 3, "f 3 (upstream)"))]);
    let synced = fx.upstream.commit("Upstream: g", &[("g.txt", &replace_line(&g, 1, "g 1 (upstream)"))]);
    fx.upstream.commit("Upstream: more g", &[("g.txt", &replace_line(&g, 1, "g 1 (upstream, again)"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.fork.commit("Patch: line 3", &[("f.txt", &replace_line(&f, 3, "f 3 (fork)"))]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    let merged = fx.fork.git_output(&["merge", "--quiet", "--no-edit", &synced]);
    assert!(!merged.status.success(), "the sync merge conflicts");
    fx.fork.write("f.txt", &replace_line(&f, 3, "f 3 (fork, synced)"));
    fx.fork.git(&["commit", "--quiet", "-am", "Sync fork"]);
    fx.fork.commit("Patch: own file", &[("own.txt", "own\n")]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
    let conflict = &rebase["artifacts"]["conflict"];
    assert_eq!(conflict["patch"]["subject"], "Patch: line 3");
    assert_eq!(conflict["culprit"]["subject"], "Upstream: line 3", "{conflict}");
    assert!(conflict["culprit"].get("carried").is_none(), "nothing below the first patch: {conflict}");
    let listed = &conflict["files"][0]["upstream_commits"];
    assert_eq!(listed[0]["subject"], "Upstream: line 3", "{listed}");
}

#[test]
fn every_patch_of_the_survey_gets_its_own_culprit() {
    // Three patches collide with three upstream commits; the run stops at
    // the first, the survey explains all three, each with its own commit,
    // and a fourth patch that builds on the third is said to.
    let (a, b, c) = (lines("a", 10), lines("b", 10), lines("c", 10));
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &b), ("c.txt", &c)]);
    fx.fork.commit("Patch: a", &[("a.txt", &replace_line(&a, 5, "a 5 (fork)"))]);
    fx.fork.commit("Patch: b", &[("b.txt", &replace_line(&b, 5, "b 5 (fork)"))]);
    let c_fork = replace_line(&c, 5, "c 5 (fork)");
    fx.fork.commit("Patch: c", &[("c.txt", &c_fork)]);
    fx.fork.commit("Patch: c again", &[("c.txt", &replace_line(&c_fork, 5, "c 5 (fork, again)"))]);
    fx.upstream.commit("Upstream: c", &[("c.txt", &replace_line(&c, 5, "c 5 (upstream)"))]);
    fx.upstream.commit("Upstream: a", &[("a.txt", &replace_line(&a, 5, "a 5 (upstream)"))]);
    fx.upstream.commit("Upstream: b", &[("b.txt", &replace_line(&b, 5, "b 5 (upstream)"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v2", &[]);
    let conflict = &run.step("rebase")["artifacts"]["conflict"];
    assert_eq!(conflict["culprit"]["subject"], "Upstream: a", "{conflict}");
    let survey: Vec<(String, String, String)> = conflict["survey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
            (text(&entry["subject"]), text(&entry["culprit"]["kind"]), text(&entry["culprit"]["subject"]))
        })
        .collect();
    let expected = [
        ("Patch: a", "upstream", "Upstream: a"),
        ("Patch: b", "upstream", "Upstream: b"),
        ("Patch: c", "upstream", "Upstream: c"),
        ("Patch: c again", "patch", "Patch: c"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(survey, expected, "{conflict}");
    // conflict.md shows each entry's culprit in the survey table.
    let markdown =
        std::fs::read_to_string(run.step("rebase")["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    for (patch, culprit) in [("Patch: b |", "Upstream: b |"), ("Patch: c |", "Upstream: c |")] {
        let row = markdown.lines().find(|row| row.contains(patch)).unwrap_or_else(|| panic!("{markdown}"));
        assert!(row.ends_with(culprit), "{row}");
    }
}
