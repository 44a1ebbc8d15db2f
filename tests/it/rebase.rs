//! The patch-stack engine through `patchmoi run`, against real repositories:
//! clean replays equal to `git rebase`, dropped patches, conflicts with their
//! culprit, dependencies, the survey, determinism, and the user's checkout
//! left alone.

use crate::common;

use common::{lines, replace_line, Fixture, Repo};

/// Upstream with three files; the fork carries three patches on v1.0.0.
fn busy_fixture() -> Fixture {
    let fx = Fixture::new(&[("a.txt", &lines("a", 20)), ("b.txt", &lines("b", 20)), ("c.txt", &lines("c", 20))]);
    fx.fork.commit("Patch A: change a line 2", &[("a.txt", &replace_line(&lines("a", 20), 2, "a two (fork)"))]);
    fx.fork.commit("Patch B: add a fork file", &[("fork.txt", "only in the fork\n")]);
    fx.fork.commit("Patch C: change b line 18", &[("b.txt", &replace_line(&lines("b", 20), 18, "b eighteen (fork)"))]);
    fx
}

#[test]
fn clean_rebase_matches_git_rebase_and_keeps_authorship() {
    let fx = busy_fixture();
    let a = lines("a", 20);
    fx.upstream.commit("Upstream: change a line 15", &[("a.txt", &replace_line(&a, 15, "a fifteen (upstream)"))]);
    fx.upstream.commit("Upstream: new file", &[("d.txt", "upstream d\n")]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The fast path carried all three patches (`git replay`, see src/git/replay.rs).
    assert!(run.stderr.contains("chained=3"), "{}", run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed");
    let candidate = &rebase["artifacts"]["candidateRefs"][0];
    assert_eq!(candidate["ref"], "refs/heads/patchmoi/v1.1.0");
    assert_eq!(candidate["pushed"], false);
    let sha = candidate["sha"].as_str().unwrap();
    assert_eq!(fx.fork.rev("patchmoi/v1.1.0"), sha);

    // Plain git does the same rebase in a throwaway clone.
    let check = Repo { dir: fx.tmp.path().join("check") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
    check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
    check.git(&["rebase", "--quiet", "--onto", "v1.1.0", "v1.0.0", "patches"]);
    assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));

    // Same subjects, authors and author dates as the originals, on the release.
    let log = |repo: &Repo, range: &str| repo.git(&["log", "--format=%s|%an|%ae|%ad|%cn|%cd", range]);
    assert_eq!(log(&fx.fork, "refs/patchmoi/upstream/tags/v1.1.0..patchmoi/v1.1.0"), log(&fx.fork, "v1.0.0..patches"));
    assert_eq!(fx.fork.rev(&format!("{sha}~3")), fx.upstream.rev("v1.1.0"));
    // The replay's objects arrived whole: fsck fails on any missing or corrupt one.
    fx.fork.git(&["fsck", "--strict", "--no-dangling", "--no-progress"]);
}

#[test]
fn upstreamed_patches_are_dropped_by_patch_id_or_when_empty() {
    let fx = busy_fixture();
    // Upstream takes patch A as is (same patch-id) and patch C inside a larger commit.
    fx.upstream.commit("Take the fork's a fix", &[("a.txt", &replace_line(&lines("a", 20), 2, "a two (fork)"))]);
    let b = replace_line(&lines("b", 20), 18, "b eighteen (fork)");
    fx.upstream.commit("Take the fork's b fix and more", &[("b.txt", &b), ("e.txt", "e\n")]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "changed");
    let dropped = rebase["artifacts"]["dropped"].as_array().unwrap();
    let subjects: Vec<&str> = dropped.iter().map(|d| d["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["Patch A: change a line 2", "Patch C: change b line 18"]);
    // It names upstream's commit, not the patch (git marks both sides alike).
    let upstream = fx.upstream.rev("v1.1.0~1");
    assert_eq!(dropped[0]["reason"], format!("upstream has the same change as {}", &upstream[..12]));
    assert!(dropped[1]["reason"].as_str().unwrap().starts_with("empty after replay"));
    let carried: Vec<&str> =
        rebase["artifacts"]["carried"].as_array().unwrap().iter().map(|p| p["subject"].as_str().unwrap()).collect();
    assert_eq!(carried, ["Patch B: add a fork file"]);
    assert_eq!(fx.fork.git(&["rev-list", "--count", "refs/patchmoi/upstream/tags/v1.1.0..patchmoi/v1.1.0"]), "1");
}

#[test]
fn conflict_names_patch_files_hunks_and_upstream_culprit() {
    let fx = busy_fixture();
    let b = lines("b", 20);
    fx.upstream.commit("Upstream: touch b line 3", &[("b.txt", &replace_line(&b, 3, "b three (upstream)"))]);
    let b = replace_line(&b, 3, "b three (upstream)");
    fx.upstream.commit("Upstream: unrelated", &[("x.txt", "x\n")]);
    let culprit =
        fx.upstream.commit("Upstream: rewrite b line 18", &[("b.txt", &replace_line(&b, 18, "b 18 (upstream)"))]);
    fx.upstream.commit("Upstream: more unrelated", &[("y.txt", "y\n")]);
    fx.upstream.git(&["tag", "v2.0.0"]);
    fx.install_rebase_flow("");
    let status_before = fx.fork.git(&["status", "--porcelain=v2", "--branch"]);

    let run = fx.run_release("v2.0.0", &[]);
    assert_eq!(run.code, 1, "needs_intervention exits 1");
    assert_eq!(run.json()["status"], "needs_intervention");
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention");
    let report = &rebase["artifacts"]["conflict"];
    assert_eq!(report["patch"]["subject"], "Patch C: change b line 18");
    assert_eq!(report["patch"]["author"], "Test Author <author@example.com>");
    assert_eq!(report["applied"].as_array().unwrap().len(), 2);
    assert_eq!(report["remaining"].as_array().unwrap().len(), 0);
    let file = &report["files"][0];
    assert_eq!(file["path"], "b.txt");
    assert_eq!(file["kind"], "contents");
    assert_eq!(file["hunks"][0]["start_line"], 18);
    assert_eq!(file["hunks"][0]["upstream"], "b 18 (upstream)\n");
    assert_eq!(file["hunks"][0]["patch"], "b eighteen (fork)\n");
    let touching: Vec<&str> =
        file["upstream_commits"].as_array().unwrap().iter().map(|c| c["subject"].as_str().unwrap()).collect();
    assert_eq!(touching, ["Upstream: rewrite b line 18", "Upstream: touch b line 3"]);
    assert_eq!(report["culprit"]["kind"], "upstream");
    assert_eq!(report["culprit"]["sha"], culprit.as_str());
    assert_eq!(report["culprit"]["subject"], "Upstream: rewrite b line 18");

    // The report is on disk too, and nothing is left half-done.
    let json_path = rebase["artifacts"]["report"].as_str().unwrap();
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    assert_eq!(&on_disk, report);
    let markdown = std::fs::read_to_string(rebase["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("Upstream: rewrite b line 18"), "{markdown}");
    assert_eq!(fx.fork.git(&["status", "--porcelain=v2", "--branch"]), status_before);
    assert!(
        fx.fork.git(&["worktree", "list", "--porcelain"]).lines().filter(|l| l.starts_with("worktree ")).count() == 1
    );
    assert!(fx.fork.git_output(&["rev-parse", "--verify", "--quiet", "patchmoi/v2.0.0"]).stdout.is_empty());
}

#[test]
fn a_patch_that_builds_on_an_earlier_one() {
    let f = lines("f", 10);
    let fx = Fixture::new(&[("f.txt", &f)]);
    // Patch 1 adds a block; patch 2 edits that block and also line 9.
    let with_block = f.replacen("f 2\n", "f 2\nn1\nn2\nn3\nn4\nn5\n", 1);
    let p1 = fx.fork.commit("Add the block", &[("f.txt", &with_block)]);
    let edited = with_block.replace("n4\n", "N4\n").replace("f 9\n", "f nine (fork)\n");
    fx.fork.commit("Tune the block and line 9", &[("f.txt", &edited)]);
    let culprit = fx.upstream.commit("Upstream: line 9", &[("f.txt", &f.replace("f 9\n", "f nine (upstream)\n"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let report = fx.run_release("v1.1.0", &[]).step("rebase")["artifacts"]["conflict"].clone();
    assert_eq!(report["patch"]["subject"], "Tune the block and line 9");
    assert_eq!(report["builds_on"]["sha"], p1.as_str());
    assert_eq!(report["culprit"]["kind"], "upstream");
    assert_eq!(report["culprit"]["sha"], culprit.as_str());
    let survey = report["survey"].as_array().unwrap();
    assert_eq!(survey.len(), 1);
    assert_eq!(survey[0]["subject"], "Tune the block and line 9");
    assert_eq!(survey[0]["depends_on"]["sha"], p1.as_str());
}

#[test]
fn survey_lists_every_patch_that_conflicts_alone() {
    let fx = busy_fixture();
    fx.upstream.commit(
        "Upstream: rewrite a and b",
        &[
            ("a.txt", &replace_line(&lines("a", 20), 2, "a 2 upstream")),
            ("b.txt", &replace_line(&lines("b", 20), 18, "b 18 upstream")),
        ],
    );
    fx.upstream.git(&["tag", "v2.0.0"]);
    fx.install_rebase_flow("");
    let report = fx.run_release("v2.0.0", &[]).step("rebase")["artifacts"]["conflict"].clone();
    assert_eq!(report["patch"]["subject"], "Patch A: change a line 2");
    let survey: Vec<(String, String)> = report["survey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["subject"].as_str().unwrap().to_string(), e["files"][0].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        survey,
        [
            ("Patch A: change a line 2".to_string(), "a.txt".to_string()),
            ("Patch C: change b line 18".to_string(), "b.txt".to_string())
        ]
    );
    assert!(report["survey"][0]["depends_on"].is_null());
}

#[test]
fn replays_are_deterministic_and_stored_results_are_reused() {
    let fx = busy_fixture();
    fx.upstream.commit("Upstream change", &[("c.txt", &replace_line(&lines("c", 20), 5, "c5"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let first = fx.run_release("v1.1.0", &[]);
    let sha = first.step("rebase")["artifacts"]["candidateRefs"][0]["sha"].clone();
    // Same event again: the stored result, nothing runs.
    let again = fx.run_release("v1.1.0", &[]);
    assert_eq!(again.json()["stored"], true);
    assert_eq!(again.step("rebase")["artifacts"]["candidateRefs"][0]["sha"], sha);
    // A replay recomputes the same commits, so the candidate does not move and no backup is made.
    let replay = fx.run_release("v1.1.0", &["--replay"]);
    assert!(replay.json().get("stored").is_none());
    let replayed = replay.step("rebase");
    assert!(replayed["id"].as_str().unwrap().ends_with("_replay"));
    assert_eq!(replayed["artifacts"]["candidateRefs"][0]["sha"], sha);
    assert!(replayed["artifacts"]["candidateRefs"][0].get("backup").is_none());
    assert_eq!(fx.fork.git(&["for-each-ref", "refs/patchmoi/backup"]), "");

    // Another clone of the fork computes the very same SHA.
    let other = Repo { dir: fx.tmp.path().join("other") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), other.dir.to_str().unwrap()]);
    std::fs::create_dir_all(other.dir.join(".codex")).unwrap();
    let flows = fx.fork.dir.join(".codex/flows");
    let copy = std::process::Command::new("cp")
        .args(["-r", flows.to_str().unwrap(), other.dir.join(".codex").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copy.success());
    let run = common::patchmoi(
        &other.dir,
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[],
    );
    assert_eq!(run.step("rebase")["artifacts"]["candidateRefs"][0]["sha"], sha, "{}", run.stderr);
}

#[test]
fn a_moved_candidate_is_backed_up_before_it_moves() {
    let fx = busy_fixture();
    fx.upstream.commit("Upstream change", &[("c.txt", &replace_line(&lines("c", 20), 5, "c5"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    let first = fx.run_release("v1.1.0", &[]).step("rebase")["artifacts"]["candidateRefs"][0]["sha"].clone();
    fx.fork.commit("Patch D", &[("d-fork.txt", "d\n")]);
    let second = fx.run_release("v1.1.0", &["--replay"]).step("rebase");
    let candidate = &second["artifacts"]["candidateRefs"][0];
    assert_ne!(candidate["sha"], first);
    let backup = candidate["backup"].as_str().unwrap();
    assert!(backup.starts_with("refs/patchmoi/backup/heads/patchmoi/v1.1.0/"), "{backup}");
    assert_eq!(fx.fork.rev(backup), first.as_str().unwrap());
}

#[test]
fn the_users_checkout_is_left_exactly_as_it_was() {
    let fx = busy_fixture();
    fx.upstream.commit("Upstream change", &[("c.txt", &replace_line(&lines("c", 20), 5, "c5"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    // The fork tags its own builds with upstream's names.
    fx.fork.git(&["tag", "v1.1.0", "HEAD~1"]);
    fx.install_rebase_flow("");
    // A rebase in progress, a dirty file and a staged file in the user's checkout.
    fx.fork.git(&["checkout", "--quiet", "-b", "wip", "v1.0.0"]);
    fx.fork.commit("wip", &[("a.txt", "conflicting\n")]);
    let paused = fx.fork.git_output(&["rebase", "patches"]);
    assert!(!paused.status.success(), "the user's rebase stops on a conflict");
    fx.fork.write("untracked.txt", "mine\n");
    let before = (
        fx.fork.git(&["status", "--porcelain=v2", "--branch"]),
        fx.fork.git(&["for-each-ref", "refs/heads", "refs/tags"]),
        fx.fork.read("a.txt"),
        std::fs::read(fx.fork.dir.join(".git/index")).unwrap(),
    );

    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.step("rebase")["status"], "changed", "{}", run.stderr);

    let after = (
        fx.fork.git(&["status", "--porcelain=v2", "--branch"]),
        fx.fork.git(&["for-each-ref", "refs/heads", "refs/tags"]),
        fx.fork.read("a.txt"),
        std::fs::read(fx.fork.dir.join(".git/index")).unwrap(),
    );
    assert_eq!(before.0, after.0);
    assert_eq!(before.2, after.2);
    assert_eq!(before.3, after.3, "the index is byte for byte the same");
    let new_refs: Vec<&str> = after.1.lines().filter(|line| !before.1.contains(line)).collect();
    assert_eq!(new_refs.len(), 1, "only the candidate branch is new: {new_refs:?}");
    assert!(new_refs[0].ends_with("refs/heads/patchmoi/v1.1.0"));
    assert!(fx.fork.dir.join(".git/rebase-merge").exists(), "the paused rebase is still there");
    assert_eq!(fx.fork.rev("refs/tags/v1.1.0"), fx.fork.rev("patches~1"), "the fork's own tag is untouched");
}

#[test]
fn long_stacks_cross_replay_windows_exactly() {
    // 40 patches (several replay windows), each editing its own file; upstream
    // changes every fifth file elsewhere, and with `conflict` also the line patch 35 edits.
    for conflict in [false, true] {
        let files: Vec<(String, String)> =
            (1..=40).map(|i| (format!("f{i:02}.txt"), lines(&format!("f{i}"), 10))).collect();
        let initial: Vec<(&str, &str)> = files.iter().map(|(path, text)| (path.as_str(), text.as_str())).collect();
        let fx = Fixture::new(&initial);
        for (i, (path, text)) in files.iter().enumerate() {
            fx.fork.commit(&format!("Patch {:02}", i + 1), &[(path, &replace_line(text, 2, "fork"))]);
        }
        let mut upstream: Vec<(String, String)> =
            files.iter().step_by(5).map(|(path, text)| (path.clone(), replace_line(text, 9, "upstream"))).collect();
        if conflict {
            upstream.push(("f35.txt".into(), replace_line(&files[34].1, 2, "upstream")));
        }
        let changed: Vec<(&str, &str)> = upstream.iter().map(|(path, text)| (path.as_str(), text.as_str())).collect();
        fx.upstream.commit("Upstream: many files", &changed);
        fx.upstream.git(&["tag", "v1.1.0"]);
        fx.install_rebase_flow("");
        let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
        if conflict {
            let report = &rebase["artifacts"]["conflict"];
            assert_eq!(report["patch"]["subject"], "Patch 35");
            assert_eq!(report["applied"].as_array().unwrap().len(), 34);
            assert_eq!(report["remaining"].as_array().unwrap().len(), 5);
            // The stopped state was published for `resolve` to show.
            let stopped = std::fs::read_to_string(fx.state_dir().join("stopped/fork-v1.1.0.json")).unwrap();
            let stopped: serde_json::Value = serde_json::from_str(&stopped).unwrap();
            let (head, tree) = (stopped["head"].as_str().unwrap(), stopped["tree"].as_str().unwrap());
            assert_eq!(fx.fork.git(&["rev-list", "--count", &format!("v1.0.0..{head}")]), "35");
            assert!(fx.fork.git(&["show", &format!("{tree}:f35.txt")]).contains("<<<<<<<"));
            fx.fork.git(&["fsck", "--strict", "--no-progress"]);
            continue;
        }
        let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
        let check = Repo { dir: fx.tmp.path().join("check") };
        fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
        check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
        check.git(&["rebase", "--quiet", "--onto", "v1.1.0", "v1.0.0", "patches"]);
        assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));
        // Every intermediate commit matches git's too.
        for back in [1, 15, 16, 17, 33] {
            assert_eq!(
                fx.fork.rev(&format!("{sha}~{back}^{{tree}}")),
                check.rev(&format!("HEAD~{back}^{{tree}}")),
                "~{back}"
            );
        }
    }
}

#[test]
fn sha256_repositories_replay_drop_and_stop_like_sha1_ones() {
    // Patch 2 is upstreamed (dropped by patch-id, splitting the stack in two
    // runs); patch 4 conflicts with upstream; patch 5 comes after it.
    let files: Vec<(String, String)> = (1..=5).map(|i| (format!("f{i}.txt"), lines(&format!("f{i}"), 10))).collect();
    let initial: Vec<(&str, &str)> = files.iter().map(|(path, text)| (path.as_str(), text.as_str())).collect();
    for conflict in [false, true] {
        let fx = Fixture::new_in_format(&initial, "sha256");
        for (i, (path, text)) in files.iter().enumerate() {
            fx.fork.commit(&format!("Patch {}", i + 1), &[(path, &replace_line(text, 2, "fork"))]);
        }
        let mut upstream = vec![("f2.txt", replace_line(&files[1].1, 2, "fork"))];
        upstream.push(("f3.txt", replace_line(&files[2].1, 8, "upstream")));
        if conflict {
            upstream.push(("f4.txt", replace_line(&files[3].1, 2, "upstream")));
        }
        let changed: Vec<(&str, &str)> = upstream.iter().map(|(path, text)| (*path, text.as_str())).collect();
        fx.upstream.commit("Upstream: take patch 2 and more", &changed);
        fx.upstream.git(&["tag", "v1.1.0"]);
        fx.install_rebase_flow("");
        let run = fx.run_release("v1.1.0", &[]);
        let rebase = run.step("rebase");
        let dropped: Vec<&str> =
            rebase["artifacts"]["dropped"].as_array().unwrap().iter().map(|d| d["subject"].as_str().unwrap()).collect();
        assert_eq!(dropped, ["Patch 2"], "{}", run.stderr);
        if conflict {
            let report = &rebase["artifacts"]["conflict"];
            assert_eq!(report["patch"]["subject"], "Patch 4");
            let applied: Vec<&str> =
                report["applied"].as_array().unwrap().iter().map(|p| p["subject"].as_str().unwrap()).collect();
            assert_eq!(applied, ["Patch 1", "Patch 3"]);
            assert_eq!(report["files"][0]["hunks"][0]["upstream"], "upstream\n");
            fx.fork.git(&["fsck", "--strict", "--no-progress"]);
            continue;
        }
        let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
        assert_eq!(sha.len(), 64, "a sha256 id");
        let check = Repo { dir: fx.tmp.path().join("check") };
        fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
        check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
        check.git(&["rebase", "--quiet", "--onto", "v1.1.0", "v1.0.0", "patches"]);
        assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));
        assert_eq!(
            fx.fork.git(&["log", "--format=%s", &format!("v1.0.0..{sha}")]),
            check.git(&["log", "--format=%s", "v1.0.0..HEAD"])
        );
        fx.fork.git(&["fsck", "--strict", "--no-dangling", "--no-progress"]);
    }
}

#[test]
fn merge_settings_of_the_repository_count_as_in_git_rebase() {
    // Upstream moves directory a/ to b/; the fork adds a/new.txt. By default
    // git calls that a conflict (where does the new file go?); with
    // merge.directoryRenames=true it moves the file along. patchmoi must
    // agree with `git rebase` under both settings.
    let fx = Fixture::new(&[("a/x.txt", &lines("x", 5)), ("a/y.txt", &lines("y", 5))]);
    fx.fork.commit("Patch: add a/new.txt", &[("a/new.txt", "new\n")]);
    fx.upstream.git(&["mv", "a", "b"]);
    fx.upstream.git(&["commit", "--quiet", "-m", "Upstream: move a/ to b/"]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    for setting in [None, Some("true")] {
        let check = Repo { dir: fx.tmp.path().join(format!("check-{setting:?}")) };
        fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
        if let Some(value) = setting {
            fx.fork.git(&["config", "merge.directoryRenames", value]);
            check.git(&["config", "merge.directoryRenames", value]);
        }
        check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
        let git_rebase = check.git_output(&["rebase", "--quiet", "--onto", "v1.1.0", "v1.0.0", "patches"]);
        let run = fx.run_release("v1.1.0", &["--replay"]);
        let rebase = run.step("rebase");
        if setting.is_none() {
            assert!(!git_rebase.status.success());
            assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
            assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Patch: add a/new.txt");
        } else {
            assert!(git_rebase.status.success());
            assert_eq!(rebase["status"], "changed", "{}", run.stderr);
            let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
            assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));
            assert_eq!(fx.fork.git(&["ls-tree", "-r", "--name-only", &sha]), "b/new.txt\nb/x.txt\nb/y.txt");
        }
    }
}

#[test]
fn a_patch_upstream_took_and_then_reverted_stays_dropped() {
    // Upstream took patch 2 (same patch-id), then reverted it. `git rebase
    // v1.1.0` drops patch 2 by patch-id (`--onto` with the old base would
    // not look); replaying it would bring the change back.
    let files: Vec<(String, String)> = (1..=3).map(|i| (format!("f{i}.txt"), lines(&format!("f{i}"), 10))).collect();
    let initial: Vec<(&str, &str)> = files.iter().map(|(path, text)| (path.as_str(), text.as_str())).collect();
    let fx = Fixture::new(&initial);
    for (i, (path, text)) in files.iter().enumerate() {
        fx.fork.commit(&format!("Patch {}", i + 1), &[(path, &replace_line(text, 2, "fork"))]);
    }
    fx.upstream.commit("Upstream: take patch 2", &[("f2.txt", &replace_line(&files[1].1, 2, "fork"))]);
    fx.upstream.commit("Upstream: revert it", &[("f2.txt", &files[1].1)]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "changed");
    let dropped = &rebase["artifacts"]["dropped"];
    assert_eq!(dropped.as_array().unwrap().len(), 1);
    assert_eq!(dropped[0]["subject"], "Patch 2");
    assert!(dropped[0]["reason"].as_str().unwrap().starts_with("upstream has the same change as"));
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
    let check = Repo { dir: fx.tmp.path().join("check") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
    check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
    check.git(&["rebase", "--quiet", "v1.1.0", "patches"]);
    assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));
    assert_eq!(fx.fork.git(&["show", &format!("{sha}:f2.txt")]), files[1].1.trim_end());
}

#[test]
fn merge_attributes_and_conditional_config_count_as_in_git_rebase() {
    // The fork edits line 8 of f.txt and g.txt, upstream line 2: a clean
    // text merge, unless the repository's own attributes say otherwise:
    // `merge=binary` from .git/info/attributes (git rebase stops), or a merge
    // driver defined in a config file that only an `includeIf "gitdir:"`
    // brings in (it keeps upstream's side, so the patch comes out empty).
    let (f, g) = (lines("f", 10), lines("g", 10));
    let fx = Fixture::new(&[("f.txt", &f), ("g.txt", &g)]);
    fx.fork.commit("Patch: f line 8", &[("f.txt", &replace_line(&f, 8, "fork"))]);
    fx.fork.commit("Patch: g line 8", &[("g.txt", &replace_line(&g, 8, "fork"))]);
    fx.upstream
        .commit("Upstream: line 2", &[("f.txt", &replace_line(&f, 2, "up")), ("g.txt", &replace_line(&g, 2, "up"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    for case in ["binary", "driver"] {
        let setup = |repo: &Repo| {
            let git_dir = repo.dir.join(".git");
            let attributes = if case == "binary" { "f.txt merge=binary\n" } else { "g.txt merge=keepours\n" };
            std::fs::write(git_dir.join("info/attributes"), attributes).unwrap();
            if case == "driver" {
                std::fs::write(git_dir.join("driver.inc"), "[merge \"keepours\"]\n\tdriver = true\n").unwrap();
                // As people write it for a folder of repositories: `gitdir:~/work/`.
                let condition = format!("includeIf.gitdir:{}/.path", repo.dir.display());
                repo.git(&["config", &condition, "driver.inc"]);
            }
        };
        let check = Repo { dir: fx.tmp.path().join(format!("check-{case}")) };
        fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
        setup(&fx.fork);
        setup(&check);
        check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
        let git_rebase = check.git_output(&["rebase", "--quiet", "v1.1.0", "patches"]);
        let run = fx.run_release("v1.1.0", &["--replay"]);
        let rebase = run.step("rebase");
        if case == "binary" {
            assert!(!git_rebase.status.success());
            assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
            assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Patch: f line 8");
        } else {
            assert!(git_rebase.status.success(), "{}", String::from_utf8_lossy(&git_rebase.stderr));
            assert_eq!(rebase["status"], "changed", "{}", run.stderr);
            let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
            assert_eq!(fx.fork.rev(&format!("{sha}^{{tree}}")), check.rev("HEAD^{tree}"));
            assert_eq!(
                fx.fork.git(&["show", &format!("{sha}:g.txt")]),
                replace_line(&g, 2, "up").trim_end(),
                "{}",
                run.stderr
            );
        }
        std::fs::remove_file(fx.fork.dir.join(".git/info/attributes")).unwrap();
    }
}

#[test]
fn the_candidates_objects_arrive_as_one_pack_unless_a_setting_asks_git_to_store_them() {
    // patchmoi writes the pack and its index itself (no git process); a
    // setting that asks git for more than its defaults when it stores
    // objects (here, syncing loose objects) leaves it to git, which stores
    // so few objects loose.
    for setting in [None, Some("core.fsync=loose-object")] {
        let fx = busy_fixture();
        if let Some(setting) = setting {
            let (key, value) = setting.split_once('=').unwrap();
            fx.fork.git(&["config", key, value]);
        }
        fx.upstream.commit("Upstream: change a line 15", &[("a.txt", &replace_line(&lines("a", 20), 15, "upstream"))]);
        fx.upstream.git(&["tag", "v1.1.0"]);
        fx.install_rebase_flow("");
        fx.fork.git(&["repack", "-adq"]);
        let packs = |repo: &Repo| {
            let dir = repo.dir.join(".git/objects/pack");
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".idx"))
                .collect();
            names.sort();
            names
        };
        let before = packs(&fx.fork);
        let run = fx.run_release("v1.1.0", &[]);
        let sha = run.step("rebase")["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
        let new: Vec<String> = packs(&fx.fork).into_iter().filter(|name| !before.contains(name)).collect();
        // Which pack holds the candidate, as git finds it.
        let holding: Vec<String> = new
            .iter()
            .filter(|name| {
                let idx = std::fs::File::open(fx.fork.dir.join(".git/objects/pack").join(name)).unwrap();
                let listed = std::process::Command::new("git").arg("show-index").stdin(idx).output().unwrap();
                String::from_utf8_lossy(&listed.stdout).contains(&sha)
            })
            .cloned()
            .collect();
        match setting {
            None => assert_eq!(holding.len(), 1, "one new pack holds the candidate: {new:?}"),
            Some(_) => {
                assert!(holding.is_empty(), "git stored them: {new:?}");
                let loose = fx.fork.dir.join(".git/objects").join(&sha[..2]).join(&sha[2..]);
                assert!(loose.exists(), "the candidate commit is a loose object");
            }
        }
        fx.fork.git(&["fsck", "--strict", "--no-dangling", "--no-progress"]);
        // And a clone reads them.
        let check = Repo { dir: fx.tmp.path().join("check") };
        fx.fork.git(&["clone", "--quiet", "--no-local", fx.fork.path_str(), check.dir.to_str().unwrap()]);
        check.git(&["cat-file", "-e", "origin/patchmoi/v1.1.0^{tree}"]);
    }
}

#[test]
fn a_fork_tag_of_the_releases_name_is_only_a_guess() {
    // The cherry-pick walk starts before the fetch on the release it guesses
    // (a tag of the same name in the fork); its result counts only when the
    // fetched release is that commit. Upstream takes patch A: against the
    // real release it is upstreamed (same patch-id), against the fork's own
    // v1.1.0 (its branch head) nothing would be.
    for fork_tag in [Some("patches"), None, Some("upstream")] {
        let fx = busy_fixture();
        fx.upstream.commit("Take the fork's a fix", &[("a.txt", &replace_line(&lines("a", 20), 2, "a two (fork)"))]);
        fx.upstream.git(&["tag", "v1.1.0"]);
        match fork_tag {
            Some("patches") => fx.fork.git(&["tag", "v1.1.0", "patches"]),
            Some(_) => {
                // The right guess: the fork has upstream's tag already.
                fx.fork.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"])
            }
            None => String::new(),
        };
        fx.install_rebase_flow("");
        let run = fx.run_release("v1.1.0", &[]);
        let rebase = run.step("rebase");
        let dropped = rebase["artifacts"]["dropped"].as_array().unwrap();
        let upstream = fx.upstream.rev("v1.1.0");
        assert_eq!(dropped.len(), 1, "{fork_tag:?}: {}", run.stderr);
        assert_eq!(dropped[0]["subject"], "Patch A: change a line 2");
        assert_eq!(
            dropped[0]["reason"],
            format!("upstream has the same change as {}", &upstream[..12]),
            "{fork_tag:?}"
        );
        assert_eq!(fx.fork.rev("refs/patchmoi/upstream/tags/v1.1.0"), upstream);
        assert_eq!(fx.fork.rev("patchmoi/v1.1.0~2"), upstream, "{fork_tag:?}: two patches on the release");
    }
}

#[test]
fn each_upstreamed_patch_is_named_by_its_own_upstream_commit() {
    // Upstream takes patches C and A as two commits, in the other order:
    // each dropped patch names the upstream commit with its patch-id.
    let fx = busy_fixture();
    let b = replace_line(&lines("b", 20), 18, "b eighteen (fork)");
    fx.upstream.commit("Take the fork's b fix", &[("b.txt", &b)]);
    fx.upstream.commit("Take the fork's a fix", &[("a.txt", &replace_line(&lines("a", 20), 2, "a two (fork)"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    let dropped: Vec<(&str, &str)> = rebase["artifacts"]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["subject"].as_str().unwrap(), d["reason"].as_str().unwrap()))
        .collect();
    let named = |rev: &str| format!("upstream has the same change as {}", &fx.upstream.rev(rev)[..12]);
    assert_eq!(
        dropped,
        [
            ("Patch A: change a line 2", named("v1.1.0").as_str()),
            ("Patch C: change b line 18", named("v1.1.0~1").as_str())
        ]
    );
}
