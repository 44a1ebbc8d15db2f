//! The maintainer's loop as a person follows it: resolve, continue and
//! abort from where the README says to run them, one history per
//! workspace, flags that do what their help says, and bad input shown
//! safely.

use crate::common::{self, lines, patchmoi, replace_line, Fixture, Repo};

/// A fork whose one patch conflicts with upstream's v1.1.0 on a.txt line 2.
fn conflicting() -> Fixture {
    let a = lines("a", 20);
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &lines("b", 20))]);
    fx.fork.commit("Fork: a line 2", &[("a.txt", &replace_line(&a, 2, "a 2 (fork)"))]);
    fx.upstream.commit("Upstream: a line 2", &[("a.txt", &replace_line(&a, 2, "a 2 (upstream)"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    fx
}

/// `patchmoi` run in `cwd` with no `--workspace-root`.
fn here(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    patchmoi(cwd, args, env)
}

#[test]
fn continue_and_abort_work_from_inside_the_resolve_worktree_without_a_git_identity() {
    let fx = conflicting();
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 1);
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--json"], &[]);
    assert_eq!(started.code, 0, "resolve succeeded: {}", started.stderr);
    let worktree = Repo { dir: started.json()["worktree"].as_str().unwrap().into() };
    worktree.write("a.txt", &replace_line(&lines("a", 20), 2, "a 2 (both)"));
    worktree.git(&["add", "a.txt"]);
    // A fresh CI runner: no user.name anywhere.
    let home = fx.tmp.path().join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    let no_identity =
        [("HOME", home.to_str().unwrap()), ("GIT_CONFIG_NOSYSTEM", "1"), ("XDG_CONFIG_HOME", home.to_str().unwrap())];
    let done = here(&worktree.dir, &["continue", "--flow", "fork", "--tag", "v1.1.0", "--json"], &no_identity);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    assert_eq!(done.json()["report"]["status"], "changed", "{}", done.stdout);
    assert!(!fx.fork.rev("refs/heads/patchmoi/v1.1.0").is_empty());

    // abort, likewise, from a subdirectory of a new resolve worktree.
    let fx = conflicting();
    fx.run_release("v1.1.0", &[]);
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--json"], &[]);
    let worktree = std::path::PathBuf::from(started.json()["worktree"].as_str().unwrap());
    let aborted = here(&worktree, &["abort", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(aborted.code, 0, "{}", aborted.stderr);
    assert!(!worktree.exists());
}

#[test]
fn a_run_from_a_subdirectory_records_in_the_workspaces_history() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    fx.fork.commit("Add a sub dir", &[("sub/keep", "")]);
    let sub = fx.fork.dir.join("sub");
    let run = here(&sub, &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fx.fork.dir.join("data/patchmoi.sqlite3").exists(), "recorded at the workspace root");
    assert!(!sub.join("data").exists(), "no second history in the subdirectory");
}

#[test]
fn workspace_roots_are_normalised_and_bare_repositories_refused() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    fx.fork.commit("Add a sub dir", &[("sub/keep", "")]);
    let sub = fx.fork.dir.join("sub");
    let run = patchmoi(
        fx.tmp.path(),
        &[
            "run",
            "upstream-release",
            "--repo",
            "test/upstream",
            "--tag",
            "v1.1.0",
            "--workspace-root",
            sub.to_str().unwrap(),
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "a subdirectory means its checkout: {}", run.stderr);
    let bare = Repo::init_bare(&fx.tmp.path().join("bare.git"));
    let run = patchmoi(
        fx.tmp.path(),
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--workspace-root", bare.path_str()],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a bare repository"), "{}", run.stderr);
    assert!(!bare.dir.join(".codex").exists(), "nothing was made in it");
}

#[test]
fn a_data_dir_at_a_repository_root_does_not_hide_its_files() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let run =
        fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--data-dir", "."], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!fx.fork.dir.join(".gitignore").exists(), "no `*` .gitignore over the checkout");
}

#[test]
fn every_flag_in_a_help_text_works() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| patchmoi(dir.path(), args, &[]).stdout;
    assert!(!help(&["run", "event", "--help"]).contains("--tag"));
    assert!(help(&["run", "upstream-release", "--help"]).contains("--tag"));
    assert!(!help(&["resolve", "--help"]).contains("--push"));
    assert!(!help(&["abort", "--help"]).contains("--push"));
    assert!(help(&["continue", "--help"]).contains("--push"));

    // An event file without an id gets the deterministic one.
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let event = fx.tmp.path().join("event.json");
    std::fs::write(&event, r#"{"type": "upstream.release", "payload": {"repo": "test/upstream", "tag": "v1.1.0"}}"#)
        .unwrap();
    let run = fx.patchmoi(&["run", "event", "--file", event.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["event"]["id"], "patch:upstream.release:test/upstream:v1.1.0", "{}", run.stdout);
}

#[test]
fn bad_input_is_shown_escaped_and_exits_2() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let run = fx.run_release("v1\u{1b}[31mred\nline", &[]);
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains('\u{1b}'), "no raw escape reaches the terminal: {:?}", run.stderr);
    assert!(run.stderr.contains("v1\\u{1b}[31mred\\nline"), "{}", run.stderr);
    let unknown = fx.patchmoi(&["promote", "--flow", "x\u{1b}]0;t\u{7}", "--tag", "v1.1.0"], &[]);
    assert_eq!(unknown.code, 2);
    assert!(!unknown.stderr.contains('\u{1b}') && !unknown.stderr.contains('\u{7}'), "{:?}", unknown.stderr);
    for file in [fx.tmp.path().to_path_buf(), fx.tmp.path().join("missing.json")] {
        let run = fx.patchmoi(&["run", "event", "--file", file.to_str().unwrap()], &[]);
        assert_eq!(run.code, 2, "{}: {}", file.display(), run.stderr);
        assert!(run.stderr.contains("failed to read event file"), "{}", run.stderr);
    }
    let run = fx.patchmoi(&["run", "upstream-release", "--repo", "../..", "--tag", "v1.1.0"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_blocked_run_is_run_again_once_the_tag_exists() {
    let fx = Fixture::new(&[("a.txt", &lines("a", 10))]);
    fx.fork.commit("Fork patch", &[("a.txt", &replace_line(&lines("a", 10), 2, "fork"))]);
    fx.install_rebase_flow("");
    let early = fx.run_release("v1.1.0", &[]);
    assert_eq!(early.json()["status"], "blocked", "the tag is not out yet: {}", early.stdout);
    fx.upstream.commit("Release", &[("b.txt", "b\n")]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    let later = fx.run_release("v1.1.0", &[]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert_eq!(later.json()["status"], "changed", "a transient outcome is not kept: {}", later.stdout);
    let again = fx.run_release("v1.1.0", &[]);
    assert_eq!(again.json()["status"], "changed", "a content outcome is kept");
}

#[test]
fn retry_always_runs_again() {
    let fx = Fixture::released();
    let counter = fx.tmp.path().join("runs");
    fx.install_rebase_flow(&format!("  - name: count\n    run: echo run >> {}\n", counter.display()));
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 0);
    let count = || std::fs::read_to_string(&counter).unwrap().lines().count();
    assert_eq!(count(), 1);
    let id = "patch:upstream.release:test/upstream:v1.1.0";
    let retry = here(&fx.fork.dir, &["retry", id, "--data-dir", fx.fork.dir.join("data").to_str().unwrap()], &[]);
    assert_eq!(retry.code, 0, "{}\n{}", retry.stdout, retry.stderr);
    assert_eq!(count(), 2, "the retry ran the flow again");
}

#[test]
fn promote_refuses_a_candidate_whose_checks_failed_unless_forced() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: build\n    run: 'echo broken; exit 3'\n");
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 1);
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let old_head = fx.fork.rev("patches");
    let refused = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("step build of flow fork ended failed"), "{}", refused.stderr);
    assert!(refused.stderr.contains("build.log"), "names the log: {}", refused.stderr);
    assert_eq!(fx.fork.rev("patches"), old_head, "nothing moved");
    let forced = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0", "--force"], &[]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stderr.contains("--force"), "says it was forced: {}", forced.stderr);
    assert_eq!(fx.fork.rev("patches"), fx.fork.rev("patchmoi/v1.1.0"));
}

#[test]
fn promote_push_reports_each_move_and_how_to_undo_it() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let origin = fx.with_origin();
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 0);
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let old_head = fx.fork.rev("patches");
    // First the local branch only, then the remote: the second run moves
    // nothing here but moves origin, and must say so.
    assert_eq!(fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]).code, 0);
    let pushed = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0", "--push"], &[]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    let text = &pushed.stdout;
    let candidate = fx.fork.rev("patchmoi/v1.1.0");
    assert!(text.contains("patches is already at"), "{text}");
    assert!(text.contains(&format!("patches on origin: {} -> {}", &old_head[..12], &candidate[..12])), "{text}");
    assert!(text.contains("the remote's old head is kept in refs/heads/patchmoi/backup/patches/"), "{text}");
    assert!(
        text.contains(&format!(
            "undo: git push --force-with-lease=refs/heads/patches:{candidate} origin {old_head}:refs/heads/patches"
        )),
        "{text}"
    );
    assert_eq!(origin.rev("refs/heads/patches"), candidate);
}

#[test]
fn history_shows_the_whole_loop_and_attempts_tell_the_truth() {
    let fx = conflicting();
    fx.install_rebase_flow("  - name: agent\n    runner: code-mode\n    if: needs_intervention\n    run: 'true'\n");
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 1);
    // Asking again is a lookup of the stored result, not a new attempt.
    assert_eq!(fx.run_release("v1.1.0", &[]).code, 1);
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--json"], &[]);
    let worktree = Repo { dir: started.json()["worktree"].as_str().unwrap().into() };
    worktree.write("a.txt", &replace_line(&lines("a", 20), 2, "a 2 (both)"));
    worktree.git(&["add", "a.txt"]);
    assert_eq!(fx.patchmoi(&["continue", "--flow", "fork", "--tag", "v1.1.0"], &[]).code, 0);
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let promoted = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);

    let history = fx.patchmoi(&["history", "--tag", "v1.1.0", "--json"], &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    let releases = history.json()["releases"].as_array().unwrap().clone();
    assert_eq!(releases.len(), 1);
    let kinds: Vec<String> = releases[0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["kind"].as_str().unwrap().to_string())
        .filter(|kind| !kind.starts_with("run "))
        .collect();
    assert_eq!(kinds, ["event", "dispatch", "resolve", "continue", "promote"], "{}", history.stdout);

    let attempts = patchmoi(&fx.fork.dir, &["attempts", "--json", "--data-dir", "data"], &[]);
    let attempts = attempts.json()["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 4, "one attempt each, the lookup none: {attempts:?}");
    for attempt in &attempts {
        if let Some(done) = attempt["completedAt"].as_str() {
            assert!(done >= attempt["createdAt"].as_str().unwrap(), "{attempt}");
        }
    }
    let first = attempts.iter().find(|attempt| attempt["operation"] == "dispatch").unwrap();
    assert!(
        first["message"].as_str().unwrap().contains("does not apply")
            || first["message"].as_str().unwrap().contains("conflict"),
        "the rebase's outcome, not the skipped step's: {first}"
    );
}

#[test]
fn resolve_full_checks_out_every_file_so_a_fix_can_be_built_there() {
    let fx = conflicting();
    fx.run_release("v1.1.0", &[]);
    let sparse = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--json"], &[]);
    let worktree = std::path::PathBuf::from(sparse.json()["worktree"].as_str().unwrap());
    assert!(!worktree.join("b.txt").exists(), "by default only the conflicting file is written");
    assert_eq!(fx.patchmoi(&["abort", "--flow", "fork", "--tag", "v1.1.0"], &[]).code, 0);
    let full = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--full"], &[]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert!(full.stdout.contains("every file is checked out"), "{}", full.stdout);
    assert_eq!(std::fs::read_to_string(worktree.join("b.txt")).unwrap(), lines("b", 20));
    let status = Repo { dir: worktree.clone() }.git(&["status", "--porcelain"]);
    assert_eq!(status, "UU a.txt", "only the conflict is unmerged, nothing else differs");
}

#[test]
fn the_next_run_removes_what_killed_runs_left_but_keeps_a_resolution() {
    let fx = conflicting();
    fx.run_release("v1.1.0", &[]);
    let started = fx.patchmoi(&["resolve", "--flow", "fork", "--tag", "v1.1.0", "--json"], &[]);
    let session = std::path::PathBuf::from(started.json()["worktree"].as_str().unwrap());
    // What `kill -9` of a --replay run leaves: a registered worktree under
    // patchmoi's folder, and a temporary pack of an interrupted fetch.
    let left = fx.fork.dir.join(".codex/workspace/actions/worktrees/run_0123456789ab_replay-x");
    fx.fork.git(&["worktree", "add", "--quiet", "--detach", left.to_str().unwrap(), "HEAD"]);
    let tmp_pack = fx.fork.dir.join(".git/objects/pack/tmp_pack_Ab12Cd");
    std::fs::create_dir_all(tmp_pack.parent().unwrap()).unwrap();
    std::fs::write(&tmp_pack, b"PACK").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&tmp_pack).unwrap().set_modified(two_hours_ago).unwrap();

    let run = fx.run_release("v1.1.0", &["--replay"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!left.exists(), "the dead run's worktree is gone");
    assert!(!fx.fork.git(&["worktree", "list"]).contains("run_0123456789ab"), "and unregistered");
    assert!(!tmp_pack.exists(), "the interrupted fetch's pack is gone");
    assert!(session.exists(), "a resolution in progress is kept");
}

#[test]
fn setup_fork_writes_a_flow_for_the_upstream_and_a_workflow_that_lints_clean() {
    let fx = Fixture::released();
    let url = "https://github.com/openai/codex.git";
    // Offline: git reads the GitHub URL as the local upstream.
    let key = format!("url.{}.insteadOf", fx.upstream.path_str());
    let env = [("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", key.as_str()), ("GIT_CONFIG_VALUE_0", url)];
    let apply = here(
        &fx.fork.dir,
        &["setup", "fork", "--upstream-url", url, "--branch", "patches", "--tags", "v1.*", "--apply", "--json"],
        &env,
    );
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let flow = fx.fork.read(".codex/flows/patches/flow.yml");
    assert!(flow.contains("repo: openai/codex") && flow.contains("tag: \"v1.*\""), "{flow}");
    let workflow = fx.fork.read(".github/workflows/patchmoi.yml");
    assert!(workflow.contains("repo: openai/codex") && workflow.contains("issues: write"), "{workflow}");
    assert!(workflow.contains("peezy-tech/patchmoi/.github/workflows/maintain.yml@"), "{workflow}");
    let dry = fx.patchmoi(&["run", "codex-release", "--tag", "v1.1.0", "--dry-run"], &[]);
    assert!(dry.stdout.contains("patches/rebase-patch-stack"), "the flow follows openai/codex: {}", dry.stdout);
    // The generated workflow passes the Action's own lint where zizmor is
    // installed (.ci/run installs it).
    let zizmor = std::process::Command::new("zizmor")
        .args(["--offline", "--no-progress"])
        .arg(fx.fork.dir.join(".github/workflows/patchmoi.yml"))
        .output();
    match zizmor {
        Ok(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_some() => panic!("zizmor is not installed on CI"),
        Err(_) => eprintln!("zizmor is not installed: the generated workflow was not linted"),
    }
}

#[test]
fn a_dry_run_shows_the_upstream_the_candidate_and_the_patches_it_would_replay() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let before = fx.run_release("v1.1.0", &["--dry-run"]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    let stack = &before.json()["stacks"][0];
    assert_eq!(stack["candidate"], "patchmoi/v1.1.0");
    assert_eq!(stack["upstream"], fx.upstream.path_str());
    assert!(stack["patches"].is_null(), "nothing fetched, nothing known: {stack}");
    assert!(fx.fork.git(&["for-each-ref", "refs/patchmoi"]).is_empty(), "a dry run fetches nothing");
    // Once the release is here (an earlier run fetched it), the patches are listed.
    fx.run_release("v1.1.0", &[]);
    let after =
        fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--dry-run"], &[]);
    assert!(
        after.stdout.contains("patches onto v1.1.0") || after.stdout.contains("patches to replay (1):"),
        "{}",
        after.stdout
    );
    assert!(after.stdout.contains("Fork patch"), "{}", after.stdout);
}
