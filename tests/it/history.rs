//! Real fork histories against `git rebase <tag>`: forks that merged
//! upstream into their branch, patch-ids as git computes them, commits that
//! start empty, and a fast path that fails without failing the run.

use crate::common;

use common::{lines, replace_line, Fixture, Repo};

/// `git rebase <tag> patches` in a fresh clone of the fork: the clone.
fn git_rebase(fx: &Fixture, tag: &str, name: &str) -> (Repo, bool) {
    let check = Repo { dir: fx.tmp.path().join(name) };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
    check.git(&["fetch", "--quiet", fx.upstream.path_str(), &format!("refs/tags/{tag}:refs/tags/{tag}")]);
    let rebased = check.git_output(&["rebase", "--quiet", tag, "patches"]).status.success();
    (check, rebased)
}

/// The subjects of a list of patches; an absent list is an empty one.
fn subjects(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| item["subject"].as_str().unwrap().to_string())
        .collect()
}

fn candidate_tree(fx: &Fixture, rebase: &serde_json::Value) -> String {
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    fx.fork.rev(&format!("{sha}^{{tree}}"))
}

#[test]
fn a_fork_that_merged_upstream_replays_only_its_own_commits() {
    // Upstream v1 → U (version 2) → v3 (version 3); the fork branches at v1,
    // commits f, merges U (GitHub's "Sync fork"), commits g.
    let fx = Fixture::new(&[("version", "1\n")]);
    let u = fx.upstream.commit("U: version 2", &[("version", "2\n")]);
    fx.upstream.commit("Version 3", &[("version", "3\n")]);
    fx.upstream.git(&["tag", "v3"]);
    fx.fork.commit("f", &[("f.txt", "f\n")]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    fx.fork.git(&["merge", "--quiet", "--no-edit", &u]);
    fx.fork.commit("g", &[("g.txt", "g\n")]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v3", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(subjects(&rebase["artifacts"]["carried"]), ["f", "g"]);
    let dropped = &rebase["artifacts"]["dropped"];
    assert_eq!(dropped.as_array().unwrap().len(), 1);
    assert!(dropped[0]["subject"].as_str().unwrap().starts_with("Merge commit"), "{dropped}");
    assert_eq!(dropped[0]["reason"], "merged upstream, left out");

    let (check, rebased) = git_rebase(&fx, "v3", "check");
    assert!(rebased);
    assert_eq!(candidate_tree(&fx, &rebase), check.rev("HEAD^{tree}"));
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(
        fx.fork.git(&["log", "--format=%s", &format!("v1.0.0..{sha}"), "^refs/patchmoi/upstream/tags/v3"]),
        "g\nf"
    );
    assert_eq!(check.git(&["log", "--format=%s", "v3..HEAD"]), "g\nf");
}

#[test]
fn upstreams_unreleased_work_is_never_a_patch() {
    // Upstream tags v3 on a release branch; W is on its default branch but
    // in no release, and the fork synced with it. `git rebase v3` would
    // replay W as a patch; patchmoi leaves it (and the merge that brought
    // it) out.
    let fx = Fixture::new(&[("version", "1\n")]);
    fx.upstream.commit("W: unreleased work", &[("w.txt", "w\n")]);
    fx.upstream.git(&["checkout", "--quiet", "-b", "release-3", "v1.0.0"]);
    fx.upstream.commit("Version 3", &[("version", "3\n")]);
    fx.upstream.git(&["tag", "v3"]);
    fx.upstream.git(&["checkout", "--quiet", "main"]);
    fx.fork.commit("f", &[("f.txt", "f\n")]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    fx.fork.git(&["merge", "--quiet", "--no-edit", "origin/main"]);
    fx.fork.commit("g", &[("g.txt", "g\n")]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v3", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(subjects(&rebase["artifacts"]["carried"]), ["f", "g"]);
    let dropped = &rebase["artifacts"]["dropped"];
    assert_eq!(dropped.as_array().unwrap().len(), 1, "{dropped}");
    assert_eq!(dropped[0]["reason"], "upstream, not in this release");
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(fx.fork.git(&["ls-tree", "--name-only", sha]), "f.txt\ng.txt\nversion");
}

#[test]
fn a_topic_merge_in_the_stack_is_one_patch_with_git_rebases_tree() {
    // The fork merges its own topic branch (two commits): carried as one
    // patch, the tree `git rebase` (which flattens the topic) gives.
    let fx = Fixture::new(&[("a.txt", &lines("a", 10))]);
    fx.fork.commit("Fork: a line 2", &[("a.txt", &replace_line(&lines("a", 10), 2, "fork"))]);
    fx.fork.git(&["checkout", "--quiet", "-b", "topic"]);
    fx.fork.commit("Topic 1", &[("t1.txt", "t1\n")]);
    fx.fork.commit("Topic 2", &[("t2.txt", "t2\n")]);
    fx.fork.git(&["checkout", "--quiet", "patches"]);
    fx.fork.commit("Fork: own file", &[("own.txt", "own\n")]);
    fx.fork.git(&["merge", "--quiet", "--no-ff", "--no-edit", "topic"]);
    fx.upstream.commit("Upstream: a line 9", &[("a.txt", &replace_line(&lines("a", 10), 9, "up"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    let carried = subjects(&rebase["artifacts"]["carried"]);
    assert_eq!(carried.len(), 3, "{carried:?}");
    assert!(carried[2].starts_with("Merge branch 'topic'"), "{carried:?}");
    let (check, rebased) = git_rebase(&fx, "v2", "check");
    assert!(rebased);
    assert_eq!(candidate_tree(&fx, &rebase), check.rev("HEAD^{tree}"));
}

#[test]
fn upstreamed_patches_are_found_with_gits_own_patch_ids() {
    // The same insertion, placed differently by the indent heuristic in the
    // patch and in upstream's commit (upstream's file differs nearby), then
    // reverted upstream. git's patch-ids (no indent heuristic) call them the
    // same change, so `git rebase` drops the patch and the block stays out.
    let base = ["fn a() {", "{", "  y", "{", "", "  x", "  x", "  y", "{", "fn a() {"];
    let block = ["fn a() {", "  x", ""];
    let text = |lines: &[&str]| lines.iter().map(|line| format!("{line}\n")).collect::<String>();
    let inserted = |lines: &[&'static str]| -> Vec<&'static str> { [&lines[..9], &block[..], &lines[9..]].concat() };
    let mut other = base.to_vec();
    other[6] = "other";
    let fx = Fixture::new(&[("f.rs", &text(&base)), ("g.txt", "g\n")]);
    fx.fork.commit("Patch: insert the block", &[("f.rs", &text(&inserted(&base)))]);
    fx.fork.commit("Patch: g", &[("g.txt", "g fork\n")]);
    fx.upstream.commit("Upstream: other line", &[("f.rs", &text(&other))]);
    fx.upstream.commit("Upstream: insert the block", &[("f.rs", &text(&inserted(&other)))]);
    fx.upstream.commit("Upstream: take the block out again", &[("f.rs", &text(&other))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let (check, rebased) = git_rebase(&fx, "v2", "check");
    assert!(rebased);
    assert_eq!(check.git(&["log", "--format=%s", "v2..HEAD"]), "Patch: g", "git drops the patch");
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(subjects(&rebase["artifacts"]["dropped"]), ["Patch: insert the block"]);
    assert!(rebase["artifacts"]["dropped"][0]["reason"].as_str().unwrap().starts_with("upstream has the same change"));
    assert_eq!(candidate_tree(&fx, &rebase), check.rev("HEAD^{tree}"));
}

#[test]
fn different_binary_changes_to_one_file_are_different_patches() {
    // A text diff says only "Binary files differ" for both; git compares
    // the blobs, keeps the patch, and stops on the conflict.
    let fx = Fixture::new(&[("logo.bin", "\0logo 1\n")]);
    fx.fork.commit("Patch: our logo", &[("logo.bin", "\0logo fork\n")]);
    fx.upstream.commit("Upstream: new logo", &[("logo.bin", "\0logo 2\n")]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let (_, rebased) = git_rebase(&fx, "v2", "check");
    assert!(!rebased, "git rebase stops on the binary conflict");
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
    assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Patch: our logo");
    assert!(subjects(&rebase["artifacts"]["dropped"]).is_empty());
}

#[test]
fn commits_that_start_empty_are_kept_as_git_rebase_keeps_them() {
    let fx = Fixture::released();
    fx.fork.git(&["commit", "--quiet", "--allow-empty", "-m", "Empty: mark the fork"]);
    fx.fork.commit("Fork: c", &[("c.txt", "c\n")]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v1.1.0", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert!(subjects(&rebase["artifacts"]["dropped"]).is_empty(), "{}", rebase["artifacts"]["dropped"]);
    assert_eq!(subjects(&rebase["artifacts"]["carried"]), ["Fork patch", "Empty: mark the fork", "Fork: c"]);
    let (check, rebased) = git_rebase(&fx, "v1.1.0", "check");
    assert!(rebased);
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    let log = |repo: &Repo, range: &str| repo.git(&["log", "--format=%s %T", range]);
    assert_eq!(log(&fx.fork, &format!("refs/patchmoi/upstream/tags/v1.1.0..{sha}")), log(&check, "v1.1.0..HEAD"));
}

#[test]
fn a_git_replay_that_fails_falls_back_to_merge_tree() {
    // A `git` on PATH whose `replay` dies as no conflict would: the run
    // still gives git rebase's result, and says it fell back.
    let fx = Fixture::released();
    fx.fork.commit("Fork: c", &[("c.txt", "c\n")]);
    fx.install_rebase_flow("");
    let real =
        String::from_utf8(std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap().stdout)
            .unwrap();
    let shim = fx.tmp.path().join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let script = format!(
        "#!/bin/sh\nfor arg; do [ \"$arg\" = replay ] && {{ echo 'fatal: simulated' >&2; exit 128; }}; done\nexec {} \"$@\"\n",
        real.trim()
    );
    std::fs::write(shim.join("git"), script).unwrap();
    std::process::Command::new("chmod").args(["755", shim.join("git").to_str().unwrap()]).status().unwrap();
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());

    let run = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[("PATH", &path)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("git replay failed, replaying with git merge-tree instead"), "{}", run.stderr);
    assert!(run.stderr.contains("simulated"), "{}", run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed");
    let (check, rebased) = git_rebase(&fx, "v1.1.0", "check");
    assert!(rebased);
    assert_eq!(candidate_tree(&fx, &rebase), check.rev("HEAD^{tree}"));
}

#[test]
fn hunk_lines_are_the_releases_lines() {
    // The patch adds two lines at the top of b.txt and edits line 18;
    // upstream edits line 18 too. The conflict is at line 18 of the
    // release's b.txt, in the report, conflict.md and the annotations alike.
    let b = lines("b", 20);
    let fx = Fixture::new(&[("b.txt", &b)]);
    let patched = format!("fork header 1\nfork header 2\n{}", replace_line(&b, 18, "b eighteen (fork)"));
    fx.fork.commit("Patch: header and line 18", &[("b.txt", &patched)]);
    fx.upstream.commit("Upstream: line 18", &[("b.txt", &replace_line(&b, 18, "b 18 (upstream)"))]);
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
    let hunk = &rebase["artifacts"]["conflict"]["files"][0]["hunks"][0];
    assert_eq!((hunk["start_line"].as_u64(), hunk["end_line"].as_u64()), (Some(18), Some(18)), "{hunk}");
    assert_eq!(fx.upstream.git(&["show", "v2:b.txt"]).lines().nth(17), Some("b 18 (upstream)"));
    let markdown = std::fs::read_to_string(rebase["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("Lines 18–18 of the release"), "{markdown}");
}

#[test]
fn attributes_come_from_the_tree_each_patch_lands_on() {
    // `git rebase` merges each patch with the attributes of the state it
    // lands on: the release's `.gitattributes`, then as the patches below
    // change it. The maintainer's checkout (here: before any of it) has
    // none of them.
    let fx = Fixture::new(&[("CHANGES.md", "# Changes\n- one\n"), ("docs/NOTES.md", "# Notes\n- one\n")]);
    fx.upstream.commit("Union merges for the changelog", &[(".gitattributes", "CHANGES.md merge=union\n")]);
    fx.upstream.commit(
        "Upstream: changes and notes",
        &[
            ("CHANGES.md", "# Changes\n- one\n- two (upstream)\n"),
            ("docs/NOTES.md", "# Notes\n- one\n- two (upstream)\n"),
        ],
    );
    fx.upstream.git(&["tag", "v2"]);
    fx.fork.commit("Patch: changelog entry", &[("CHANGES.md", "# Changes\n- one\n- fork\n")]);
    fx.fork.commit("Patch: union merges for the notes", &[("docs/.gitattributes", "NOTES.md merge=union\n")]);
    fx.fork.commit("Patch: notes entry", &[("docs/NOTES.md", "# Notes\n- one\n- fork\n")]);
    fx.fork.git(&["checkout", "--quiet", "--detach", "v1.0.0"]);
    fx.install_rebase_flow("");

    let (check, rebased) = git_rebase(&fx, "v2", "check");
    assert!(rebased, "git rebase union-merges both files");
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(candidate_tree(&fx, &rebase), check.rev("HEAD^{tree}"));
    // git replay did it all, in runs split where the attributes change.
    assert!(run.stderr.contains("chained=3 sequential_merges=0"), "{}", run.stderr);
}

#[test]
fn attributes_only_the_checkout_has_are_not_used() {
    // The maintainer's checkout says `merge=union` (a patch above the
    // conflicting one adds it); the state the conflicting patch lands on
    // does not, so `git rebase` stops there, and so must patchmoi.
    let fx = Fixture::new(&[("CHANGES.md", "# Changes\n- one\n")]);
    fx.upstream.commit("Upstream: changelog", &[("CHANGES.md", "# Changes\n- one\n- two (upstream)\n")]);
    fx.upstream.git(&["tag", "v2"]);
    fx.fork.commit("Patch: changelog entry", &[("CHANGES.md", "# Changes\n- one\n- fork\n")]);
    fx.fork.commit("Patch: union merges", &[(".gitattributes", "CHANGES.md merge=union\n")]);
    fx.install_rebase_flow("");
    assert_eq!(fx.fork.read(".gitattributes"), "CHANGES.md merge=union\n");

    let (_, rebased) = git_rebase(&fx, "v2", "check");
    assert!(!rebased, "git rebase stops on the changelog");
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
    assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Patch: changelog entry");
    assert_eq!(rebase["artifacts"]["conflict"]["files"][0]["path"], "CHANGES.md");
}
