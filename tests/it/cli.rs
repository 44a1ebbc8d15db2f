//! The command line's contract: bad input gets a clear error and exit 2 with
//! nothing on stdout and nothing changed; preconditions give `blocked`;
//! pushes and promotions lease and keep backups; the demo runs.

use crate::common;

use common::{patchmoi, Fixture, Repo};

/// [`Fixture::released`] with the usual rebase flow installed.
fn released_fixture() -> Fixture {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    fx
}

#[test]
fn bad_input_exits_2_with_a_clear_error_and_changes_nothing() {
    let fx = released_fixture();
    let refs_before = fx.fork.git(&["for-each-ref"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "upstream-release", "--repo", "test/upstream", "--tag", "-x"],
            "tag `-x` is not a valid tag name: it starts with '-'",
        ),
        (vec!["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1..2"], "contains '..'"),
        (vec!["run", "upstream-release", "--repo", "not-a-repo", "--tag", "v1.1.0"], "not of the form owner/name"),
        (
            vec!["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--flow", "nope"],
            "unknown flow `nope`",
        ),
        (vec!["promote", "--flow", "nope", "--tag", "v1.1.0"], "unknown flow `nope`"),
        (vec!["run", "event", "--file", "missing.json"], "failed to read event file"),
    ];
    for (args, want) in cases {
        let run = fx.patchmoi(&args, &[]);
        // An unreadable event file is bad input too (issue 11): exit 2.
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
    }
    fx.fork.write("event.json", r#"{"id": "x", "type": "upstream.release", "payload": {"repo": "test/upstream"}}"#);
    let run = fx.patchmoi(&["run", "event", "--file", "event.json"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("event file") && run.stderr.contains("payload.tag"), "{}", run.stderr);
    fx.fork.write(
        "event.json",
        r#"{"id": "x", "type": "upstream.release", "payload": {"repo": "test/upstream", "tag": "--upload-pack=x"}}"#,
    );
    let run = fx.patchmoi(&["run", "event", "--file", "event.json"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    // A malformed flow names the file and the field.
    fx.fork.write(
        "flows/broken/flow.yml",
        "name: broken\non: {type: upstream.release}\nsteps: [{name: s, run: x, timeout: soon}]\n",
    );
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("flows/broken/flow.yml") && run.stderr.contains("steps[0].timeout"), "{}", run.stderr);
    fx.fork.write("flows/broken/flow.yml", "name: broken\non: {type: upstream.release}\nstepz: []\n");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown field `stepz`"), "{}", run.stderr);
    assert_eq!(fx.fork.git(&["for-each-ref"]), refs_before);
    assert!(!fx.state_dir().join("state.json").exists());
}

#[test]
fn missing_tag_or_branch_is_blocked_and_an_unreachable_upstream_failed() {
    let fx = released_fixture();
    let run = fx.run_release("v9.9.9", &[]);
    assert_eq!(run.code, 1);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "blocked");
    assert!(rebase["message"].as_str().unwrap().contains("tag v9.9.9 does not exist upstream"), "{rebase}");

    fx.install_flow(
        "fork",
        &format!(
            "name: fork\non: {{type: upstream.release}}\nstack: {{upstream: {}, branch: no-such-branch}}\nsteps: [{{name: rebase, uses: rebase}}]\n",
            fx.upstream.path_str()
        ),
    );
    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "blocked");
    assert!(
        rebase["message"].as_str().unwrap().contains("no-such-branch was found neither locally nor on origin"),
        "{rebase}"
    );

    fx.install_flow(
        "fork",
        "name: fork\non: {type: upstream.release}\nstack: {upstream: 'https://user:hunter2@127.0.0.1:9/nowhere.git', branch: patches}\nsteps: [{name: rebase, uses: rebase}]\n",
    );
    let run = fx.run_release("v1.1.0", &["--replay"]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "failed");
    assert!(rebase["message"].as_str().unwrap().contains("failed to fetch tag v1.1.0 from upstream"), "{rebase}");
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"), "credentials leaked");
}

#[test]
fn a_shallow_clone_is_blocked_with_the_fix() {
    let fx = released_fixture();
    let shallow = Repo { dir: fx.tmp.path().join("shallow") };
    let url = format!("file://{}", fx.fork.path_str());
    fx.fork.git(&["clone", "--quiet", "--depth", "1", "--branch", "patches", &url, shallow.dir.to_str().unwrap()]);
    std::fs::create_dir_all(shallow.dir.join(".codex/flows")).unwrap();
    std::fs::copy(fx.fork.dir.join(".codex/flows/fork/flow.yml"), shallow.dir.join(".codex/flows/fork-flow.yml"))
        .unwrap();
    std::fs::create_dir_all(shallow.dir.join(".codex/flows/fork")).unwrap();
    std::fs::rename(shallow.dir.join(".codex/flows/fork-flow.yml"), shallow.dir.join(".codex/flows/fork/flow.yml"))
        .unwrap();
    let run = patchmoi(
        &shallow.dir,
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[],
    );
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "blocked", "{}", run.stderr);
    assert!(rebase["message"].as_str().unwrap().contains("fetch-depth: 0"), "{rebase}");
}

#[test]
fn push_leases_and_keeps_the_remote_value() {
    let fx = released_fixture();
    let origin = fx.with_origin();
    let first = fx.run_release("v1.1.0", &["--push"]).step("rebase");
    assert_eq!(first["status"], "changed", "{first}");
    let candidate = &first["artifacts"]["candidateRefs"][0];
    assert_eq!(candidate["pushed"], true);
    assert_eq!(candidate["remote"], "origin");
    assert_eq!(origin.rev("refs/heads/patchmoi/v1.1.0"), candidate["sha"].as_str().unwrap());

    // The stack grows; the new candidate replaces the old one on the remote,
    // and the remote's old value is kept locally.
    fx.fork.commit("Another patch", &[("new.txt", "new\n")]);
    let second = fx.run_release("v1.1.0", &["--push", "--replay"]).step("rebase");
    let sha = second["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
    assert_eq!(origin.rev("refs/heads/patchmoi/v1.1.0"), sha);
    let backups =
        fx.fork.git(&["for-each-ref", "--format=%(refname) %(objectname)", "refs/patchmoi/backup/remotes/origin"]);
    assert!(backups.ends_with(candidate["sha"].as_str().unwrap()), "{backups}");
    assert_eq!(origin.rev("refs/heads/patches"), fx.fork.rev("patches~1"), "the maintained branch is never pushed");
}

#[test]
fn promote_leases_on_the_built_head_and_keeps_a_backup() {
    let fx = released_fixture();
    let origin = fx.with_origin();
    let old_head = fx.fork.rev("patches");
    let candidate = fx.run_release("v1.1.0", &[]).step("rebase")["artifacts"]["candidateRefs"][0]["sha"]
        .as_str()
        .unwrap()
        .to_string();

    // `patches` is checked out in the user's checkout: refuse.
    let run = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is checked out in"), "{}", run.stderr);
    assert_eq!(fx.fork.rev("patches"), old_head);

    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let run = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0", "--push", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let promotion = run.json();
    assert_eq!(fx.fork.rev("patches"), candidate);
    assert_eq!(fx.fork.rev(promotion["backup"].as_str().unwrap()), old_head);
    assert_eq!(origin.rev("refs/heads/patches"), candidate);
    assert_eq!(origin.rev(promotion["remote_backup"].as_str().unwrap()), old_head);

    // Promoting again changes nothing.
    let again = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("already at"), "{}", again.stdout);
}

#[test]
fn promote_refuses_a_branch_that_moved_since_the_build() {
    let fx = released_fixture();
    fx.run_release("v1.1.0", &[]);
    fx.fork.commit("A late patch", &[("late.txt", "late\n")]);
    let moved = fx.fork.rev("patches");
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let run = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("moved since the candidate was built"), "{}", run.stderr);
    assert_eq!(fx.fork.rev("patches"), moved);
}

#[test]
fn demo_runs_both_releases_and_shows_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let run = patchmoi(tmp.path(), &["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for want in [
        "dropped",
        "Fix typo in README (upstream has the same change as",
        "candidate refs/heads/patchmoi/v1.1.0",
        "culprit: upstream commit",
        "Read the port from $PORT",
        "needs_intervention",
        "CODEX_FLOWS_MODE=code-mode",
        "state.json",
    ] {
        assert!(run.stdout.contains(want), "missing {want:?} in:\n{}", run.stdout);
    }
    let again = patchmoi(tmp.path(), &["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("is not empty"));
}

#[test]
fn demo_takes_a_relative_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let run = patchmoi(tmp.path(), &["demo", "--dir", "./relative/demo"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("needs_intervention"), "{}", run.stdout);
    assert!(tmp.path().join("relative/demo/fork/.git").exists());
}

#[test]
fn an_old_git_is_named_with_its_version() {
    let fx = released_fixture();
    let fake = fx.tmp.path().join("old-git");
    std::fs::create_dir_all(&fake).unwrap();
    let script = fake.join("git");
    std::fs::write(&script, "#!/bin/sh\necho 'git version 2.39.2'\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let run =
        fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0"], &[("PATH", &path)]);
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("needs git 2.44 or newer") && run.stderr.contains("git version 2.39.2"),
        "{}",
        run.stderr
    );
}

#[test]
fn looking_at_an_empty_data_dir_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for args in
        [vec!["status", "--json"], vec!["events", "--json"], vec!["attempts", "--json"], vec!["dispatches", "--json"]]
    {
        let run = patchmoi(tmp.path(), &args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stdout.starts_with('{'), "{args:?}: {}", run.stdout);
    }
    assert!(!tmp.path().join("data").exists(), "a read-only command created the data directory");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `patchmoi events --json | head -0`: stdout is closed before patchmoi writes.
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_patchmoi"))
        .current_dir(tmp.path())
        .args(["events", "--json", "--data-dir", "state"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn completions_man_page_and_colours_follow_the_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let bash = patchmoi(dir.path(), &["completions", "bash"], &[]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    assert!(
        bash.stdout.contains("_patchmoi") && bash.stdout.contains("resolve"),
        "a bash completion for every command"
    );
    let man = patchmoi(dir.path(), &["man"], &[]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH patchmoi"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    // The log lines of a run, coloured only when asked.
    let repo = Repo::init(&dir.path().join("repo"));
    let args =
        ["run", "upstream-release", "--repo", "o/r", "--tag", "v1", "--dry-run", "--workspace-root", repo.path_str()];
    let always = patchmoi(dir.path(), &[&["--color", "always"][..], &args].concat(), &[("RUST_LOG", "patchmoi=debug")]);
    let never = patchmoi(dir.path(), &[&["--color", "never"][..], &args].concat(), &[("RUST_LOG", "patchmoi=debug")]);
    let auto_no_color = patchmoi(dir.path(), &args, &[("NO_COLOR", "1")]);
    assert!(always.stderr.contains('\u{1b}'), "--color always colours: {:?}", always.stderr);
    assert!(!never.stderr.contains('\u{1b}') && !auto_no_color.stderr.contains('\u{1b}'));
}

/// The README's "Resolve a conflict once", followed word for word in the
/// demo, ends with a promoted candidate, and `history` shows the whole loop
/// from the demo's own conflicted run on.
#[test]
fn the_readmes_resolve_section_followed_in_the_demo_ends_with_a_promotion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let demo = patchmoi(tmp.path(), &["demo", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    let fork = dir.join("fork");
    let git = |cwd: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git").current_dir(cwd).args(args).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };

    let resolve = patchmoi(&fork, &["resolve", "--flow", "demo-fork", "--tag", "v2.0.0"], &[]);
    assert_eq!(resolve.code, 0, "{}", resolve.stderr);
    let worktree = fork.join(".codex/workspace/actions/worktrees/demo-fork-v2.0.0");
    assert!(resolve.stdout.contains(worktree.to_str().unwrap()), "{}", resolve.stdout);
    let config = std::fs::read_to_string(worktree.join("config.toml")).unwrap();
    assert!(config.contains("<<<<<<<"), "{config}");
    std::fs::write(worktree.join("config.toml"), "[server]\nhost = \"127.0.0.1\"\nport = 8080\n").unwrap();
    git(&worktree, &["add", "config.toml"]);
    let cont = patchmoi(&worktree, &["continue", "--flow", "demo-fork", "--tag", "v2.0.0"], &[]);
    assert_eq!(cont.code, 0, "{}\n{}", cont.stdout, cont.stderr);
    assert!(cont.stdout.contains("resolved from memory"), "{}", cont.stdout);

    git(&fork, &["switch", "--detach"]);
    let promote = patchmoi(&fork, &["promote", "--flow", "demo-fork", "--tag", "v2.0.0"], &[]);
    assert_eq!(promote.code, 0, "{}\n{}", promote.stdout, promote.stderr);
    assert_eq!(git(&fork, &["rev-parse", "patches"]), git(&fork, &["rev-parse", "patchmoi/v2.0.0"]));
    assert_eq!(git(&fork, &["show", "patches:config.toml"]), "[server]\nhost = \"127.0.0.1\"\nport = 8080");

    let history = patchmoi(&fork, &["history", "--tag", "v2.0.0"], &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    let lines: Vec<&str> = history.stdout.lines().collect();
    let at = |want: &[&str]| {
        lines
            .iter()
            .position(|line| want.iter().all(|w| line.contains(w)))
            .unwrap_or_else(|| panic!("no line with {want:?} in:\n{}", history.stdout))
    };
    // The demo's own run, its conflict and culprit, then the loop in order.
    let conflicted = at(&["dispatch needs_intervention", "culprit: upstream commit", "Read the port from $PORT"]);
    let resolved = at(&["resolve needs_intervention"]);
    let continued = at(&["continue changed"]);
    let rerun = at(&["run demo-fork / rebase-patch-stack changed", "1 resolved from memory"]);
    let promoted = at(&["promote changed"]);
    assert!(conflicted < resolved && resolved < continued && continued < promoted, "{}", history.stdout);
    assert!(rerun < promoted, "{}", history.stdout);
}
