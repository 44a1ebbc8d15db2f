//! Resolving a conflict once: `resolve`, `continue`, `abort`, the memory of
//! resolutions across releases and clones, and validated agent repairs.

use crate::common;

use common::{lines, patchmoi, replace_line, Fixture, Repo};

const RESOLVED_A: &str = "a 2 (upstream and fork)";

/// a.txt line 2 is changed by the fork's first patch and by upstream in
/// v1.1.0; with `two`, the fork's third patch and upstream also collide on b.txt.
fn conflicting(two: bool) -> Fixture {
    let (a, b) = (lines("a", 30), lines("b", 30));
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &b), ("c.txt", &lines("c", 30))]);
    fx.fork.commit("Fork: a line 2", &[("a.txt", &replace_line(&a, 2, "a 2 (fork)"))]);
    fx.fork.commit("Fork: c line 9", &[("c.txt", &replace_line(&lines("c", 30), 9, "c 9 (fork)"))]);
    if two {
        fx.fork.commit("Fork: b line 20", &[("b.txt", &replace_line(&b, 20, "b 20 (fork)"))]);
    }
    let mut files = vec![("a.txt", replace_line(&a, 2, "a 2 (upstream)"))];
    if two {
        files.push(("b.txt", replace_line(&b, 20, "b 20 (upstream)")));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(path, text)| (*path, text.as_str())).collect();
    fx.upstream.commit("Upstream: a line 2 (and b line 20)", &files);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx
}

fn session(fx: &Fixture, command: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![command, "--flow", "fork", "--tag", "v1.1.0"];
    args.extend_from_slice(extra);
    fx.patchmoi(&args, &[])
}

/// Resolves a.txt in the worktree the way a person would.
fn resolve_a_by_hand(worktree: &Repo) {
    let text = worktree.read("a.txt");
    assert!(text.contains("<<<<<<<") && text.contains("a 2 (fork)"), "{text}");
    worktree.write("a.txt", &replace_line(&lines("a", 30), 2, RESOLVED_A));
    worktree.git(&["add", "a.txt"]);
}

#[test]
fn a_human_resolution_gives_the_candidate_git_rebase_gives() {
    let fx = conflicting(false);
    fx.install_rebase_flow("  - name: check\n    run: grep -q 'a 2 (upstream and fork)' a.txt\n");
    assert_eq!(fx.run_release("v1.1.0", &[]).json()["status"], "needs_intervention");

    let started = session(&fx, "resolve", &["--json"]);
    assert_eq!(started.code, 0, "a ready worktree is success: {}", started.stderr);
    let paused = started.json();
    let worktree = Repo { dir: paused["worktree"].as_str().unwrap().into() };
    assert!(worktree.dir.ends_with(".codex/workspace/actions/worktrees/fork-v1.1.0"));
    // Sparse: only the conflicting file is written, but git sees the whole tree.
    let mut written: Vec<String> = std::fs::read_dir(&worktree.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, [".git", "a.txt"]);
    assert_eq!(worktree.git(&["diff", "--name-only", "--diff-filter=U"]), "a.txt");
    let mut tracked: Vec<String> = worktree.git(&["ls-files"]).lines().map(str::to_string).collect();
    tracked.dedup();
    assert_eq!(tracked, ["a.txt", "b.txt", "c.txt"]);
    assert_eq!(worktree.rev("HEAD"), fx.fork.rev("refs/patchmoi/upstream/tags/v1.1.0"), "no patch applied before it");
    let marked = worktree.read("a.txt");
    assert!(marked.contains("<<<<<<< upstream v1.1.0\n") && marked.contains(">>>>>>> patch "), "{marked}");
    assert!(marked.contains("\"Fork: a line 2\"\n"), "{marked}");

    resolve_a_by_hand(&worktree);
    let done = session(&fx, "continue", &["--json"]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    let report = &done.json()["report"];
    assert_eq!(report["status"], "changed");
    let rebase = report["runs"].as_array().unwrap().iter().find(|run| run["step"] == "rebase").unwrap().clone();
    assert_eq!(rebase["artifacts"]["resolvedFromMemory"][0]["files"][0]["firstResolvedIn"], "v1.1.0");
    let check = report["runs"].as_array().unwrap().iter().find(|run| run["step"] == "check").unwrap().clone();
    assert_eq!(check["status"], "completed", "the candidate went through the checks");
    // The stored result of the event is now the resolved one.
    let stored = fx.run_release("v1.1.0", &[]);
    assert_eq!(stored.code, 0, "{}", stored.stdout);
    assert_eq!(stored.json()["stored"], true);
    assert_eq!(stored.json()["status"], "changed");
    assert_eq!(stored.json()["runs"].as_array().unwrap().len(), 2);
    assert!(!worktree.dir.exists(), "the worktree is gone");

    // The same resolution made during a plain `git rebase`.
    let by_hand = Repo { dir: fx.tmp.path().join("by-hand") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), by_hand.dir.to_str().unwrap()]);
    by_hand.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v1.1.0:refs/tags/v1.1.0"]);
    assert!(!by_hand.git_output(&["rebase", "--onto", "v1.1.0", "v1.0.0", "patches"]).status.success());
    resolve_a_by_hand(&by_hand);
    by_hand.git(&["-c", "core.editor=true", "rebase", "--continue"]);
    let candidate = fx.fork.rev("patchmoi/v1.1.0");
    assert_eq!(fx.fork.rev(&format!("{candidate}^{{tree}}")), by_hand.rev("HEAD^{tree}"));
    let subjects = |repo: &Repo, range: &str| repo.git(&["log", "--format=%s %an", range]);
    assert_eq!(
        subjects(&fx.fork, "refs/patchmoi/upstream/tags/v1.1.0..patchmoi/v1.1.0"),
        subjects(&by_hand, "v1.1.0..HEAD")
    );
}

#[test]
fn two_conflicts_stop_twice_and_the_memory_serves_the_next_release() {
    let fx = conflicting(true);
    fx.install_rebase_flow("");
    fx.run_release("v1.1.0", &[]);
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    resolve_a_by_hand(&worktree);

    let first = session(&fx, "continue", &["--json"]);
    assert_eq!(first.code, 1);
    let next = &first.json()["next"];
    assert_eq!(next["patch"]["subject"], "Fork: b line 20");
    let worktree = Repo { dir: next["worktree"].as_str().unwrap().into() };
    assert_eq!(worktree.git(&["diff", "--name-only", "--diff-filter=U"]), "b.txt");
    worktree.write("b.txt", &replace_line(&lines("b", 30), 20, "b 20 (both)"));
    worktree.git(&["add", "b.txt"]);
    let second = session(&fx, "continue", &["--json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.json()["report"]["status"], "changed");

    // The next release moves the files on elsewhere; the same conflicts resolve themselves.
    let a = replace_line(&replace_line(&lines("a", 30), 2, "a 2 (upstream)"), 28, "a 28 (v1.2)");
    let b = replace_line(&replace_line(&lines("b", 30), 20, "b 20 (upstream)"), 3, "b 3 (v1.2)");
    fx.upstream.commit("Upstream: v1.2 changes", &[("a.txt", &a), ("b.txt", &b)]);
    fx.upstream.git(&["tag", "v1.2.0"]);
    // Also: git packs the recalled files' blobs itself (they are above
    // core.bigFileThreshold), and no git identity is configured, as on CI.
    fx.fork.git(&["config", "core.bigFileThreshold", "100"]);
    let no_identity = [
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "user.useConfigOnly"),
        ("GIT_CONFIG_VALUE_0", "true"),
    ];
    let args = ["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.2.0", "--json"];
    let run = fx.patchmoi(&args, &no_identity);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed");
    let recalled: Vec<&str> = rebase["artifacts"]["resolvedFromMemory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|patch| patch["subject"].as_str().unwrap())
        .collect();
    assert_eq!(recalled, ["Fork: a line 2", "Fork: b line 20"]);
    let message = rebase["message"].as_str().unwrap();
    assert!(
        message.contains("2 resolved from memory (\"Fork: a line 2\", \"Fork: b line 20\")"),
        "the message names the patches: {message}"
    );
    assert_eq!(rebase["artifacts"]["resolvedFromMemory"][0]["files"][0]["firstResolvedIn"], "v1.1.0");
    let candidate = fx.fork.git(&["show", "patchmoi/v1.2.0:a.txt"]);
    assert!(candidate.contains(RESOLVED_A) && candidate.contains("a 28 (v1.2)"), "{candidate}");
    fx.fork.git(&["fsck", "--strict", "--no-dangling", "--no-progress"]);
}

#[test]
fn the_memory_travels_to_another_clone_through_the_remote() {
    let fx = conflicting(false);
    fx.install_rebase_flow("");
    let origin = fx.with_origin();
    fx.run_release("v1.1.0", &[]);
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    resolve_a_by_hand(&worktree);
    let done = session(&fx, "continue", &["--push", "--json"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let sha = fx.fork.rev("patchmoi/v1.1.0");
    assert_eq!(origin.rev("refs/heads/patchmoi/v1.1.0"), sha);
    assert_eq!(origin.rev("refs/patchmoi/resolutions"), fx.fork.rev("refs/patchmoi/resolutions"));

    // A fresh clone, as an Actions runner would have: it fetches the memory and builds the same candidate.
    let runner = Repo { dir: fx.tmp.path().join("runner") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", origin.path_str(), runner.dir.to_str().unwrap()]);
    let flow = fx.fork.read(".codex/flows/fork/flow.yml");
    runner.write(".codex/flows/fork/flow.yml", &flow);
    let run = patchmoi(
        &runner.dir,
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.step("rebase")["artifacts"]["candidateRefs"][0]["sha"], sha.as_str());
}

#[test]
fn a_stale_continue_is_refused_and_abort_leaves_nothing_behind() {
    let fx = conflicting(false);
    fx.install_rebase_flow("");
    fx.run_release("v1.1.0", &[]);
    let refs_before = fx.fork.git(&["for-each-ref"]);
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    let again = session(&fx, "resolve", &[]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already in progress"), "{}", again.stderr);

    resolve_a_by_hand(&worktree);
    fx.fork.commit("A late patch", &[("late.txt", "late\n")]);
    let stale = session(&fx, "continue", &[]);
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);
    assert!(worktree.dir.exists(), "a refused continue keeps the person's work");

    let aborted = session(&fx, "abort", &[]);
    assert_eq!(aborted.code, 0, "{}", aborted.stderr);
    assert!(!worktree.dir.exists());
    assert_eq!(fx.fork.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    assert!(!fx.state_dir().join("paused/fork-v1.1.0.json").exists());
    let refs_after: Vec<String> = fx
        .fork
        .git(&["for-each-ref"])
        .lines()
        .filter(|line| !line.ends_with("refs/heads/patches"))
        .map(str::to_string)
        .collect();
    let refs_before: Vec<String> =
        refs_before.lines().filter(|line| !line.ends_with("refs/heads/patches")).map(str::to_string).collect();
    assert_eq!(refs_after, refs_before);
    let nothing = session(&fx, "continue", &[]);
    assert_eq!(nothing.code, 1);
    assert!(nothing.stderr.contains("no resolution of fork for v1.1.0 is in progress"), "{}", nothing.stderr);

    // Without the run's record of the stopped state, resolve replays to it: the same state.
    fx.fork.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    let reused = session(&fx, "resolve", &["--json"]).json();
    let reused_file = Repo { dir: reused["worktree"].as_str().unwrap().into() }.read("a.txt");
    session(&fx, "abort", &[]);
    std::fs::remove_file(fx.state_dir().join("stopped/fork-v1.1.0.json")).unwrap();
    let replayed = session(&fx, "resolve", &["--json"]).json();
    assert_eq!(reused["mergeTree"], replayed["mergeTree"]);
    assert_eq!(reused["conflicts"], replayed["conflicts"]);
    assert_eq!(Repo { dir: replayed["worktree"].as_str().unwrap().into() }.read("a.txt"), reused_file);
    assert!(reused_file.contains("<<<<<<< upstream v1.1.0"), "{reused_file}");
}

/// A flow whose gated agent step runs `script` in the stopped state, then a check.
fn agent_flow(fx: &Fixture, script: &str) -> common::Run {
    fx.install_rebase_flow(&format!(
        "  - name: build\n    run: 'test -f a.txt'\n  - name: agent\n    runner: code-mode\n    if: needs_intervention\n    run: |\n{}",
        script.lines().map(|line| format!("      {line}\n")).collect::<String>()
    ));
    fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--replay"],
        &[("CODEX_FLOWS_MODE", "code-mode")],
    )
}

#[test]
fn an_agent_resolution_is_validated_remembered_and_checked() {
    let fx = conflicting(false);
    let resolved = replace_line(&lines("a", 30), 2, RESOLVED_A);
    let run = agent_flow(&fx, &format!("grep -q '^<<<<<<<' a.txt\ncat > a.txt <<'EOF'\n{resolved}EOF\ngit add a.txt"));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["status"], "changed");
    let agent = run.step("agent");
    assert_eq!(agent["status"], "completed");
    assert!(agent["message"].as_str().unwrap().contains("validated and remembered"), "{agent}");
    assert_eq!(run.step("build")["status"], "completed", "the repaired candidate was checked");
    assert_eq!(run.step("rebase")["artifacts"]["resolvedFromMemory"][0]["subject"], "Fork: a line 2");
    assert!(fx.fork.git(&["show", "patchmoi/v1.1.0:a.txt"]).contains(RESOLVED_A));
}

#[test]
fn agent_resolutions_with_markers_unrelated_changes_or_unstaged_files_are_rejected() {
    let cases = [
        ("git add a.txt", "conflict markers are left in a.txt"),
        (
            "sed -i '/^[<=>|]\\{7\\}/d' a.txt\necho extra >> b.txt\ngit add a.txt b.txt",
            "files that the patch does not touch changed (b.txt)",
        ),
        ("sed -i '/^[<=>|]\\{7\\}/d' a.txt", "still unmerged"),
    ];
    for (script, want) in cases {
        let fx = conflicting(false);
        let run = agent_flow(&fx, script);
        assert_eq!(run.code, 1, "{script}");
        assert_eq!(run.json()["status"], "needs_intervention", "{script}");
        let agent = run.step("agent");
        assert_eq!(agent["status"], "needs_intervention", "{script}");
        assert!(agent["message"].as_str().unwrap().contains(want), "{script}: {agent}");
        assert!(fx
            .fork
            .git_output(&["rev-parse", "--verify", "--quiet", "refs/patchmoi/resolutions"])
            .stdout
            .is_empty());
    }
}

#[test]
fn a_modify_delete_resolution_is_remembered_whole_and_binary_files_are_not_remembered() {
    let fx = Fixture::new(&[("keep.txt", &lines("k", 5)), ("gone.txt", &lines("g", 5)), ("logo.bin", "\u{0}\u{1}v1")]);
    fx.fork.commit("Fork: edit gone.txt", &[("gone.txt", &replace_line(&lines("g", 5), 3, "g 3 (fork)"))]);
    fx.upstream.git(&["rm", "--quiet", "gone.txt"]);
    fx.upstream.commit("Upstream: remove gone.txt", &[]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.step("rebase")["artifacts"]["conflict"]["files"][0]["kind"], "modify/delete");

    // Keep the fork's version of the file.
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    assert!(worktree.read("gone.txt").contains("g 3 (fork)"));
    worktree.git(&["add", "gone.txt"]);
    assert_eq!(session(&fx, "continue", &[]).code, 0);
    assert!(fx.fork.git(&["show", "patchmoi/v1.1.0:gone.txt"]).contains("g 3 (fork)"));

    // The next release still lacks the file: the same stages, resolved from memory.
    fx.upstream.commit("Upstream: more", &[("keep.txt", &lines("k2", 5))]);
    fx.upstream.git(&["tag", "v1.2.0"]);
    let next = fx.run_release("v1.2.0", &[]).step("rebase");
    assert_eq!(next["status"], "changed", "{next}");
    assert_eq!(next["artifacts"]["resolvedFromMemory"][0]["files"][0]["path"], "gone.txt");

    // A binary conflict is resolved by hand but never remembered (its bytes would not survive as text).
    std::fs::write(fx.fork.dir.join("logo.bin"), b"\xff\xfe\x00fork").unwrap();
    fx.fork.commit("Fork: new logo", &[]);
    std::fs::write(fx.upstream.dir.join("logo.bin"), b"\xff\xfe\x00upstream").unwrap();
    fx.upstream.commit("Upstream: new logo", &[]);
    fx.upstream.git(&["tag", "v1.3.0"]);
    fx.run_release("v1.3.0", &[]);
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.3.0", "--json"], &[]);
    let worktree = Repo { dir: started.json()["worktree"].as_str().unwrap().into() };
    worktree.git(&["checkout", "--theirs", "logo.bin"]);
    worktree.git(&["add", "logo.bin"]);
    let memory_before = fx.fork.rev("refs/patchmoi/resolutions");
    let done = fx.patchmoi(&["continue", "--flow", "fork", "--tag", "v1.3.0"], &[]);
    assert_eq!(done.code, 1, "without a memory entry the replay stops again: {}", done.stdout);
    assert_eq!(fx.fork.rev("refs/patchmoi/resolutions"), memory_before);
    assert!(done.stderr.contains("logo.bin is not text"), "{}", done.stderr);
}

#[test]
fn continue_refuses_changes_it_could_not_keep() {
    let fx = conflicting(false);
    fx.install_rebase_flow("");
    fx.run_release("v1.1.0", &[]);
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    resolve_a_by_hand(&worktree);
    worktree.write("NOTES.md", "porting notes\n");
    worktree.git(&["add", "NOTES.md"]);
    let refused = session(&fx, "continue", &[]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("files that the patch does not touch changed (NOTES.md)"), "{}", refused.stderr);
    assert!(worktree.dir.join("NOTES.md").exists(), "nothing the person wrote is lost");
    worktree.git(&["rm", "--quiet", "--cached", "NOTES.md"]);
    std::fs::remove_file(worktree.dir.join("NOTES.md")).unwrap();
    assert_eq!(session(&fx, "continue", &[]).code, 0);
}

#[test]
fn a_deletion_of_a_path_with_a_space_resolves_and_is_remembered() {
    let fx = Fixture::new(&[("my file.txt", &lines("m", 5)), ("other.txt", "o\n")]);
    fx.fork.commit("Fork: edit my file", &[("my file.txt", &replace_line(&lines("m", 5), 2, "fork"))]);
    fx.upstream.git(&["rm", "--quiet", "my file.txt"]);
    fx.upstream.commit("Upstream: drop my file", &[]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    fx.run_release("v1.1.0", &[]);
    let worktree = Repo { dir: session(&fx, "resolve", &["--json"]).json()["worktree"].as_str().unwrap().into() };
    worktree.git(&["rm", "--quiet", "my file.txt"]);
    let done = session(&fx, "continue", &[]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    assert!(fx.fork.git_output(&["cat-file", "-e", "patchmoi/v1.1.0:my file.txt"]).status.code() != Some(0));
}
