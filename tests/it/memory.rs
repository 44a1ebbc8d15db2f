//! The memory of resolutions beyond the conflicting files: edits to the
//! patch's other files kept with a resolution and replayed on the next
//! release, the `Patchmoi-Resolution:` trailer, and the memory's format
//! versions (an old memory read and upgraded, a newer one refused).

use crate::common;

use common::{lines, replace_line, Fixture, Repo};

const RESOLVED_A: &str = "a 2 (upstream and fork)";
const CALL_SITE: &str = "b 11 (call site follows the resolution)";

/// The fork's first patch changes a.txt line 2 and b.txt line 10 (its call
/// site); the second changes c.txt. Upstream v1.1.0 changes a.txt line 2.
fn with_a_call_site() -> Fixture {
    let (a, b, c) = (lines("a", 30), lines("b", 30), lines("c", 30));
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &b), ("c.txt", &c), ("d.txt", "d\n")]);
    fx.fork.commit(
        "Fork: a line 2 and its caller",
        &[("a.txt", &replace_line(&a, 2, "a 2 (fork)")), ("b.txt", &replace_line(&b, 10, "b 10 (fork)"))],
    );
    fx.fork.commit("Fork: c line 9", &[("c.txt", &replace_line(&c, 9, "c 9 (fork)"))]);
    fx.upstream.commit("Upstream: a line 2", &[("a.txt", &replace_line(&a, 2, "a 2 (upstream)"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");
    fx
}

fn session(fx: &Fixture, command: &str, tag: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![command, "--flow", "fork", "--tag", tag];
    args.extend_from_slice(extra);
    fx.patchmoi(&args, &[])
}

fn resolve_worktree(fx: &Fixture, tag: &str) -> Repo {
    let started = session(fx, "resolve", tag, &["--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    Repo { dir: started.json()["worktree"].as_str().unwrap().into() }
}

/// The message of the candidate's commit with `subject`.
fn message_of(fx: &Fixture, candidate: &str, subject: &str) -> String {
    let log = fx.fork.git(&["log", "--format=%H %s", candidate]);
    let sha = log.lines().find(|line| line.ends_with(subject)).unwrap().split(' ').next().unwrap().to_string();
    fx.fork.git(&["log", "-1", "--format=%an <%ae>%n%B", &sha])
}

#[test]
fn a_resolution_with_a_related_edit_is_kept_and_reused_on_the_next_release() {
    let fx = with_a_call_site();
    assert_eq!(fx.run_release("v1.1.0", &[]).json()["status"], "needs_intervention");
    let worktree = resolve_worktree(&fx, "v1.1.0");
    // The sparse worktree also writes the patch's other files, ready to edit.
    assert!(worktree.dir.join("b.txt").exists() && !worktree.dir.join("c.txt").exists());
    worktree.write("a.txt", &replace_line(&lines("a", 30), 2, RESOLVED_A));
    let b = worktree.read("b.txt");
    assert!(b.contains("b 10 (fork)"), "{b}");
    worktree.write("b.txt", &replace_line(&b, 11, CALL_SITE));

    // A file that another patch (not this one) changes is still refused, and named.
    worktree.git(&["update-index", "--no-skip-worktree", "c.txt"]);
    worktree.write("c.txt", &replace_line(&lines("c", 30), 20, "c 20 (stray)"));
    worktree.git(&["add", "a.txt", "b.txt", "c.txt"]);
    let refused = session(&fx, "continue", "v1.1.0", &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("files that the patch does not touch changed (c.txt)"), "{}", refused.stderr);
    assert!(worktree.read("b.txt").contains(CALL_SITE), "nothing the person wrote is lost");
    worktree.git(&["checkout", "HEAD", "--", "c.txt"]);

    let done = session(&fx, "continue", "v1.1.0", &["--json"]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, done.stderr);
    assert_eq!(done.json()["report"]["status"], "changed");
    let b = fx.fork.git(&["show", "patchmoi/v1.1.0:b.txt"]);
    assert!(b.contains(CALL_SITE) && b.contains("b 10 (fork)"), "{b}");
    // The memory is in format 2 and holds the related edit.
    assert_eq!(fx.fork.git(&["cat-file", "-p", "refs/patchmoi/resolutions:format"]), "2");

    // The next release changes b.txt elsewhere and keeps the same conflict in a.txt.
    let a = replace_line(&replace_line(&lines("a", 30), 2, "a 2 (upstream)"), 28, "a 28 (v1.2)");
    let b = replace_line(&lines("b", 30), 25, "b 25 (v1.2)");
    fx.upstream.commit("Upstream: v1.2 changes", &[("a.txt", &a), ("b.txt", &b)]);
    fx.upstream.git(&["tag", "v1.2.0"]);
    let run = fx.run_release("v1.2.0", &[]);
    assert_eq!(run.code, 0, "no person needed: {}\n{}", run.stdout, run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{rebase}");
    let files = &rebase["artifacts"]["resolvedFromMemory"][0]["files"];
    assert_eq!(files[0]["path"], "a.txt");
    assert_eq!(files[1]["path"], "b.txt");
    assert_eq!(files[1]["related"], true);
    assert_eq!(files[1]["firstResolvedIn"], "v1.1.0");
    let b = fx.fork.git(&["show", "patchmoi/v1.2.0:b.txt"]);
    assert!(b.contains(CALL_SITE) && b.contains("b 10 (fork)") && b.contains("b 25 (v1.2)"), "{b}");
    let a = fx.fork.git(&["show", "patchmoi/v1.2.0:a.txt"]);
    assert!(a.contains(RESOLVED_A) && a.contains("a 28 (v1.2)"), "{a}");
}

#[test]
fn a_commit_resolved_from_memory_says_where_its_resolution_came_from() {
    let fx = with_a_call_site();
    fx.run_release("v1.1.0", &[]);
    let started = session(&fx, "resolve", "v1.1.0", &[]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    assert!(
        started.stdout.contains(
            "  a.txt\nthe patch's other files (an edit to them is remembered with the resolution):\n  b.txt\n"
        ),
        "{}",
        started.stdout
    );
    let path = started.stdout.lines().find_map(|line| line.strip_prefix("worktree: ")).unwrap();
    let worktree = Repo { dir: path.into() };
    worktree.write("a.txt", &replace_line(&lines("a", 30), 2, RESOLVED_A));
    worktree.git(&["add", "a.txt"]);
    assert_eq!(session(&fx, "continue", "v1.1.0", &[]).code, 0);

    let message = message_of(&fx, "patchmoi/v1.1.0", "Fork: a line 2 and its caller");
    let key = fx
        .fork
        .git(&["ls-tree", "--name-only", "refs/patchmoi/resolutions"])
        .lines()
        .find(|name| *name != "format")
        .unwrap()
        .to_string();
    let original = fx.fork.git(&["log", "-1", "--format=%an <%ae>%n%B", "patches~1"]);
    assert_eq!(
        message.trim_end(),
        format!("{}\n\nPatchmoi-Resolution: {key} (recorded for v1.1.0, resolves a.txt)", original.trim_end()),
        "author and message kept, one trailer added"
    );
    assert!(fx.fork.git(&["cat-file", "-p", &format!("refs/patchmoi/resolutions:{key}")]).contains(RESOLVED_A));
    // The patch that applied by itself carries no such trailer.
    assert!(!message_of(&fx, "patchmoi/v1.1.0", "Fork: c line 9").contains("Patchmoi-Resolution"));
}

/// git in `repo` with `input` on stdin.
fn git_with_input(repo: &Repo, args: &[&str], input: &str) -> String {
    let mut child = std::process::Command::new("git")
        .current_dir(&repo.dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "git {args:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A commit of the memory whose `format` blob is `version` (None: removed,
/// as a patchmoi of format 1 wrote it).
fn set_format(repo: &Repo, version: Option<&str>) {
    let listed = repo.git(&["ls-tree", "refs/patchmoi/resolutions"]);
    let mut tree: String =
        listed.lines().filter(|line| !line.ends_with("\tformat")).map(|line| format!("{line}\n")).collect();
    if let Some(version) = version {
        let blob = git_with_input(repo, &["hash-object", "-w", "--stdin"], &format!("{version}\n"));
        tree.push_str(&format!("100644 blob {blob}\tformat\n"));
    }
    let tree = git_with_input(repo, &["mktree"], &tree);
    let message = format!("by hand in {}", repo.dir.display());
    let commit = repo.git(&["commit-tree", &tree, "-p", "refs/patchmoi/resolutions", "-m", &message]);
    repo.git(&["update-ref", "refs/patchmoi/resolutions", &commit]);
}

#[test]
fn an_old_memory_is_read_and_upgraded_and_a_newer_one_is_refused() {
    let fx = with_a_call_site();
    fx.run_release("v1.1.0", &[]);
    let worktree = resolve_worktree(&fx, "v1.1.0");
    worktree.write("a.txt", &replace_line(&lines("a", 30), 2, RESOLVED_A));
    worktree.git(&["add", "a.txt"]);
    assert_eq!(session(&fx, "continue", "v1.1.0", &[]).code, 0);

    // As a patchmoi of format 1 left it: no `format` blob. It is still read.
    set_format(&fx.fork, None);
    let replayed = fx.run_release("v1.1.0", &["--replay"]);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert_eq!(replayed.step("rebase")["artifacts"]["resolvedFromMemory"][0]["files"][0]["path"], "a.txt");

    // The next write (a union merge with a diverged remote copy) upgrades it in place.
    let origin = Repo::init_bare(&fx.tmp.path().join("origin.git"));
    fx.fork.git(&["remote", "set-url", "origin", origin.path_str()]);
    fx.fork.git(&["push", "--quiet", "origin", "patches", "refs/patchmoi/resolutions"]);
    set_format(&origin, None);
    set_format(&fx.fork, None);
    let pushed = fx.run_release("v1.1.0", &["--replay", "--push"]);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    for repo in [&fx.fork, &origin] {
        assert_eq!(repo.git(&["cat-file", "-p", "refs/patchmoi/resolutions:format"]), "2");
        assert_eq!(repo.git(&["rev-list", "--count", "--merges", "refs/patchmoi/resolutions"]), "1");
    }

    // A memory written by a newer patchmoi is refused with a clear message.
    set_format(&fx.fork, Some("3"));
    let refused = fx.run_release("v1.1.0", &["--replay"]);
    assert_eq!(refused.code, 1);
    let message = refused.step("rebase")["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("the memory of resolutions (refs/patchmoi/resolutions at ")
            && message.contains("is in format 3, newer than format 2 that this patchmoi")
            && message.contains("upgrade patchmoi"),
        "{message}"
    );
    let resolve = session(&fx, "resolve", "v1.1.0", &[]);
    assert_eq!(resolve.code, 1);
    assert!(resolve.stderr.contains("is in format 3"), "{}", resolve.stderr);
}

#[test]
fn a_run_with_nothing_to_replay_leaves_the_memory_as_it_was() {
    // The fork's remote has a memory; the local repository has none. A
    // release the branch already contains (nothing to replay) takes nothing
    // from the remote; a release with a stack to replay brings it in. (The
    // memory's read runs beside the stack's preparation; its fetch, which
    // may move the ref, must wait for a stack.)
    let fx = with_a_call_site();
    let origin = fx.with_origin();
    let blob = git_with_input(&fx.fork, &["hash-object", "-w", "--stdin"], "2\n");
    let tree = git_with_input(&fx.fork, &["mktree"], &format!("100644 blob {blob}\tformat\n"));
    let commit = fx.fork.git(&["commit-tree", &tree, "-m", "memory on the remote"]);
    fx.fork.git(&["push", "--quiet", "origin", &format!("{commit}:refs/patchmoi/resolutions")]);
    assert_eq!(origin.rev("refs/patchmoi/resolutions"), commit);
    let has_memory = || fx.fork.git(&["for-each-ref", "refs/patchmoi/resolutions"]);

    fx.upstream.git(&["tag", "v1.0.1", "v1.0.0"]);
    let up_to_date = fx.run_release("v1.0.1", &[]);
    assert_eq!(up_to_date.code, 0, "{}", up_to_date.stderr);
    assert_eq!(up_to_date.step("rebase")["status"], "completed", "{}", up_to_date.stderr);
    assert_eq!(has_memory(), "", "a run with nothing to replay fetched the memory");

    // v1.1.0 has a stack to replay (it stops on a conflict the memory does
    // not know): the memory is fetched before the replay.
    let replayed = fx.run_release("v1.1.0", &[]);
    assert_eq!(replayed.step("rebase")["status"], "needs_intervention", "{}", replayed.stderr);
    assert_eq!(fx.fork.rev("refs/patchmoi/resolutions"), commit);
}
