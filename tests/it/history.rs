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

/// Runs the release v3 and checks the rebase carried the fork's f and g;
/// its step.
fn rebased_f_and_g(fx: &Fixture) -> serde_json::Value {
    let run = fx.run_release("v3", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(subjects(&rebase["artifacts"]["carried"]), ["f", "g"]);
    rebase
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

    let rebase = rebased_f_and_g(&fx);
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

/// Upstream tags v3 on a release branch cut from v1.0.0, and its default
/// branch has W, in no release.
fn unreleased_work_upstream() -> Fixture {
    let fx = Fixture::new(&[("version", "1\n")]);
    fx.upstream.commit("W: unreleased work", &[("w.txt", "w\n")]);
    fx.upstream.git(&["checkout", "--quiet", "-b", "release-3", "v1.0.0"]);
    fx.upstream.commit("Version 3", &[("version", "3\n")]);
    fx.upstream.git(&["tag", "v3"]);
    fx.upstream.git(&["checkout", "--quiet", "main"]);
    fx
}

#[test]
fn upstreams_unreleased_work_is_never_a_patch() {
    // Upstream tags v3 on a release branch; W is on its default branch but
    // in no release, and the fork synced with it. `git rebase v3` would
    // replay W as a patch; patchmoi leaves it (and the merge that brought
    // it) out.
    let fx = unreleased_work_upstream();
    fx.fork.commit("f", &[("f.txt", "f\n")]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    fx.fork.git(&["merge", "--quiet", "--no-edit", "origin/main"]);
    fx.fork.commit("g", &[("g.txt", "g\n")]);
    fx.install_rebase_flow("");

    let rebase = rebased_f_and_g(&fx);
    let dropped = &rebase["artifacts"]["dropped"];
    assert_eq!(dropped.as_array().unwrap().len(), 1, "{dropped}");
    assert_eq!(dropped[0]["reason"], "upstream, not in this release");
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(fx.fork.git(&["ls-tree", "--name-only", sha]), "f.txt\ng.txt\nversion");
}

#[test]
fn unreleased_work_under_the_stack_is_left_out_of_the_replay_started_ahead() {
    // The fork's patches sit on upstream's default branch, past the release
    // (W is in no release). The fork has the release's tag already, so the
    // replay starts ahead, on the whole chain (W, f, g): once W is known to
    // be upstream's, that replay is not the stack's, and is not used.
    let fx = unreleased_work_upstream();
    fx.fork.git(&["fetch", "--quiet", "origin", "main", "refs/tags/v3:refs/tags/v3"]);
    fx.fork.git(&["reset", "--quiet", "--hard", "origin/main"]);
    fx.fork.commit("f", &[("f.txt", "f\n")]);
    fx.fork.commit("g", &[("g.txt", "g\n")]);
    fx.install_rebase_flow("");

    let rebase = rebased_f_and_g(&fx);
    assert_eq!(rebase["artifacts"]["dropped"][0]["reason"], "upstream, not in this release");
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(fx.fork.git(&["ls-tree", "--name-only", sha]), "f.txt\ng.txt\nversion");
    assert_eq!(fx.fork.rev(&format!("{sha}~2")), fx.upstream.rev("v3"));
}

#[test]
fn a_release_the_fork_has_is_read_from_a_local_upstream_and_a_tag_that_is_not_upstreams_is_fetched() {
    // Upstream is a repository on this machine and the fork has its v2 tag
    // already: nothing to transfer, so no fetch runs, and the refs a fetch
    // would write are written.
    let fx = Fixture::released();
    fx.upstream.git(&["tag", "-a", "-m", "v2", "v2", "v1.1.0"]);
    fx.fork.git(&["fetch", "--quiet", "origin", "refs/tags/v2:refs/tags/v2"]);
    fx.install_rebase_flow("");
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    // The debug log names every git command the run starts.
    let fetches: Vec<&str> = run.stderr.lines().filter(|line| line.contains("git fetch")).collect();
    assert!(run.stderr.contains("git update-ref"), "{}", run.stderr);
    assert!(fetches.iter().all(|line| !line.contains("refs/tags/v2")), "{fetches:?}");
    assert_eq!(fx.fork.rev("refs/patchmoi/upstream/tags/v2"), fx.upstream.rev("refs/tags/v2"));
    assert_eq!(fx.fork.rev("refs/patchmoi/upstream/HEAD"), fx.upstream.rev("HEAD"));
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(fx.fork.rev(&format!("{sha}~1")), fx.upstream.rev("v2^{commit}"));

    // The fork's own v3 is not upstream's (upstream tags v3 later, on
    // another commit): fetched.
    fx.fork.git(&["tag", "-a", "-m", "the fork's own", "v3", "v1.0.0"]);
    fx.upstream.commit("Upstream: after v2", &[("c.txt", "c\n")]);
    fx.upstream.git(&["tag", "-a", "-m", "v3", "v3"]);
    let run = fx.run_release("v3", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    assert_eq!(fx.fork.rev(&format!("{sha}~1")), fx.upstream.rev("v3^{commit}"));
    assert_eq!(fx.fork.rev("refs/patchmoi/upstream/tags/v3"), fx.upstream.rev("refs/tags/v3"));
    assert_ne!(fx.fork.rev("refs/tags/v3"), fx.upstream.rev("refs/tags/v3"), "the fork's tag is left alone");

    // The candidate cannot move (a worktree has it checked out): upstream's
    // refs are written all the same, as a fetch's would have been.
    fx.upstream.git(&["tag", "-a", "-m", "v4", "v4"]);
    fx.fork.git(&["fetch", "--quiet", "origin", "refs/tags/v4:refs/tags/v4"]);
    fx.fork.git(&["branch", "patchmoi/v4", "patches"]);
    let worktree = fx.tmp.path().join("candidate-checkout");
    fx.fork.git(&["worktree", "add", "--quiet", worktree.to_str().unwrap(), "patchmoi/v4"]);
    let run = fx.run_release("v4", &[]);
    let rebase = run.step("rebase");
    assert_ne!(rebase["status"], "changed", "{}", run.stderr);
    assert!(run.stderr.contains("checked out"), "{}", run.stderr);
    assert_eq!(fx.fork.rev("refs/patchmoi/upstream/tags/v4"), fx.upstream.rev("refs/tags/v4"));
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

/// Writes `text` at the path named by `name`'s bytes, which need not be UTF-8.
fn write_raw(dir: &std::path::Path, name: &[u8], text: &str) {
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), text).unwrap();
}

/// The content of the file named `name` (bytes) in commit `sha`.
fn file_in(repo: &Repo, sha: &str, name: &[u8]) -> String {
    let listed = repo.git_output(&["ls-tree", "-r", "-z", sha]).stdout;
    let entry = listed
        .split(|byte| *byte == 0)
        .find(|entry| entry.ends_with(name) && entry[entry.len() - name.len() - 1] == b'\t')
        .unwrap_or_else(|| panic!("{} not in {sha}", String::from_utf8_lossy(name)));
    let oid = String::from_utf8_lossy(&entry[12..entry.len() - name.len() - 1]).into_owned();
    repo.git(&["cat-file", "blob", &oid])
}

#[test]
fn paths_that_are_not_utf8_survive_the_whole_loop() {
    // A Latin-1 file name and one with a tab, a newline and quotes, both
    // conflicting: the run reports them with their hunks, `resolve` writes
    // them under their own names, `continue` takes the resolution, and no
    // worktree is left registered.
    let names: [&[u8]; 2] = [b"caf\xe9.txt", b"tab\there\nnewline \"quoted\".txt"];
    let fx = Fixture::new(&[("other.txt", "other\n")]);
    for name in names {
        write_raw(&fx.upstream.dir, name, &lines("x", 6));
    }
    fx.upstream.git(&["add", "--all"]);
    fx.upstream.git(&["commit", "--quiet", "-m", "Odd names"]);
    fx.fork.git(&["pull", "--quiet", "--ff-only", "origin", "main"]);
    for (repo, who) in [(&fx.upstream, "upstream"), (&fx.fork, "fork")] {
        for name in names {
            write_raw(&repo.dir, name, &replace_line(&lines("x", 6), 3, &format!("x 3 ({who})")));
        }
        repo.git(&["commit", "--quiet", "-am", &format!("{who}: odd names line 3")]);
    }
    fx.upstream.git(&["tag", "v2"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{}", run.stderr);
    let files = rebase["artifacts"]["conflict"]["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        assert_eq!(file["hunks"].as_array().unwrap().len(), 1, "{file}");
        assert_eq!(file["hunks"][0]["start_line"], 3, "{file}");
        assert_eq!(file["upstream_commits"][0]["subject"], "upstream: odd names line 3", "{file}");
    }
    assert!(files.iter().any(|file| file["path"] == "tab\there\nnewline \"quoted\".txt"), "{files:?}");

    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v2", "--json"], &[]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let worktree = Repo { dir: started.json()["worktree"].as_str().unwrap().into() };
    let unmerged = worktree.git_output(&["diff", "--name-only", "--diff-filter=U", "-z"]).stdout;
    let unmerged: Vec<&[u8]> = unmerged.split(|byte| *byte == 0).filter(|name| !name.is_empty()).collect();
    assert_eq!(unmerged.len(), 2);
    for name in names {
        assert!(unmerged.contains(&name), "{}", String::from_utf8_lossy(name));
        use std::os::unix::ffi::OsStrExt;
        let marked = std::fs::read_to_string(worktree.dir.join(std::ffi::OsStr::from_bytes(name))).unwrap();
        assert!(marked.contains("<<<<<<<") && marked.contains("x 3 (fork)"), "{marked}");
        write_raw(&worktree.dir, name, &replace_line(&lines("x", 6), 3, "x 3 (both)"));
    }
    worktree.git(&["add", "--all"]);

    let done = fx.patchmoi(&["continue", "--flow", "fork", "--tag", "v2", "--json"], &[]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    let report = &done.json()["report"];
    assert_eq!(report["status"], "changed", "{report}");
    let rebase = report["runs"].as_array().unwrap().iter().find(|run| run["step"] == "rebase").unwrap().clone();
    let sha = rebase["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap();
    for name in names {
        assert_eq!(file_in(&fx.fork, sha, name), replace_line(&lines("x", 6), 3, "x 3 (both)").trim_end());
    }
    let worktrees = fx.fork.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
}
