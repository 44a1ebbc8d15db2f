//! More of `patchmoi action` end to end: shallow checkouts, scheduled runs,
//! a token that cannot create check runs, many conflict hunks, the order
//! of check-run updates.

use std::process::Command;

use super::common::{lines, replace_line, Repo};
use super::fake_github::Fault;
use super::{runs_named, Setup};

#[test]
fn check_runs_go_in_progress_before_the_step_and_complete_after() {
    let s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let state = s.gh.state();
    let writes: Vec<&str> = state
        .requests
        .iter()
        .filter(|r| r.contains("/check-runs") && !r.starts_with("GET"))
        .map(String::as_str)
        .collect();
    // rebase: created completed once pushed; build: created in_progress, then completed.
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(writes[0].starts_with("POST") && writes[1].starts_with("POST") && writes[2].starts_with("PATCH"));
    // The build's check run was created in progress, before the step ran.
    let lines: Vec<&str> = state.seen.lines().collect();
    let created = lines
        .windows(2)
        .find(|pair| {
            pair[0].starts_with("POST ")
                && pair[0].contains("/check-runs")
                && pair[1].contains("patchmoi / fork / build")
        })
        .map(|pair| pair[1])
        .expect("the build's check run was created");
    assert!(created.contains("\"status\":\"in_progress\""), "{created}");
    let build = runs_named(&state.check_runs, "patchmoi / fork / build");
    assert_eq!(build[0]["conclusion"], "success");
}

#[test]
fn a_shallow_checkout_is_deepened() {
    let mut s = Setup::new();
    let clone = s.fx.tmp.path().join("shallow");
    let url = format!("file://{}", s.origin.path_str());
    let out = Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", "--branch", "patches", &url, clone.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let flow = std::fs::read_to_string(s.fx.fork.dir.join(".codex/flows/fork/flow.yml")).unwrap();
    let shallow = Repo { dir: clone.clone() };
    shallow.write(".codex/flows/fork/flow.yml", &flow);
    std::fs::write(clone.join(".git/info/exclude"), ".codex/\n").unwrap();
    assert_eq!(shallow.git(&["rev-parse", "--is-shallow-repository"]), "true");
    s.workspace = clone;
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed");
    assert_eq!(shallow.git(&["rev-parse", "--is-shallow-repository"]), "false");
}

#[test]
fn a_schedule_runs_the_newest_release_once() {
    let s = Setup::new();
    let empty = s.dir.join("schedule.json");
    std::fs::write(&empty, r#"{"schedule": "17 6 * * *"}"#).unwrap();
    let run = s.action(&empty, &[("GITHUB_EVENT_NAME", "schedule")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed");
    assert!(s.origin_branch("patchmoi/upstream/v1.1.0").is_some());
    s.forget_state();
    let again = s.action(&empty, &[("GITHUB_EVENT_NAME", "schedule")]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(s.output("status"), "skipped");
    assert!(again.stderr.contains("already has patchmoi/upstream/v1.1.0"), "{}", again.stderr);
    assert_eq!(s.gh.state().pulls.len(), 1);
}

#[test]
fn a_schedule_resolves_the_newest_release_of_each_flow() {
    let s = Setup::new();
    // A second flow that follows only the 1.0 series: its newest is v1.0.0.
    let yaml = format!(
        "name: lts\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v1.0.*\"}}\n\
         stack:\n  upstream: {}\n  branch: patches\nsteps:\n  - name: rebase\n    uses: rebase\n",
        s.fx.upstream.path_str()
    );
    s.fx.fork.write(".codex/flows/lts/flow.yml", &yaml);
    let empty = s.dir.join("schedule.json");
    std::fs::write(&empty, "{}").unwrap();
    let run = s.action(&empty, &[("GITHUB_EVENT_NAME", "schedule")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results: serde_json::Value = serde_json::from_str(&s.output("results")).unwrap();
    let statuses: Vec<(&str, &str)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["flow"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert!(statuses.contains(&("fork", "changed")), "{statuses:?}");
    assert!(statuses.contains(&("lts", "completed")), "v1.0.0 is already in patches: {statuses:?}");
}

#[test]
fn a_token_that_cannot_create_check_runs_reports_commit_statuses() {
    let s = Setup::new();
    s.gh.fault(Fault {
        method: "post",
        template: "/repos/{owner}/{repo}/check-runs",
        status: Some(403),
        headers: vec![],
        message: "Resource not accessible by personal access token",
        apply: false,
    });
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert!(state.check_runs.is_empty());
    let contexts: Vec<(&str, &str)> = state
        .statuses
        .iter()
        .map(|status| (status["context"].as_str().unwrap(), status["state"].as_str().unwrap()))
        .collect();
    assert!(contexts.contains(&("patchmoi / fork / rebase", "success")), "{contexts:?}");
    assert!(contexts.contains(&("patchmoi / fork / build", "success")), "{contexts:?}");
}

#[test]
fn many_conflicting_hunks_are_annotated_fifty_per_request() {
    let s = Setup::new();
    let run = s.action(&sixty_conflicting_hunks(&s), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout.matches("::error file=c.txt").count(), 10, "at most 10 in the log");
    let state = s.gh.state();
    let rebase = runs_named(&state.check_runs, "patchmoi / fork / rebase");
    assert_eq!(rebase.len(), 1);
    let notes = rebase[0]["annotations"].as_array().unwrap();
    assert_eq!(notes.len(), 60, "all of them on the check run, 50 + 10");
    assert_eq!(notes[59]["start_line"], 600);
    assert_eq!(rebase[0]["conclusion"], "action_required");
}

#[test]
fn annotations_are_not_sent_twice_after_a_server_error() {
    let s = Setup::new();
    let event = sixty_conflicting_hunks(&s);
    // The second batch of annotations lands, then the answer is a 500.
    s.gh.fault(Fault {
        method: "patch",
        template: "/repos/{owner}/{repo}/check-runs/{check_run_id}",
        status: Some(500),
        headers: vec![],
        message: "Server Error",
        apply: true,
    });
    let run = s.action(&event, &[]);
    assert_eq!(run.code, 1, "the conflict, not the annotation glitch, decides: {}", run.stderr);
    let state = s.gh.state();
    let rebase = runs_named(&state.check_runs, "patchmoi / fork / rebase");
    assert_eq!(rebase[0]["annotations"].as_array().unwrap().len(), 60, "a PATCH that appends is not repeated");
    assert_eq!(rebase[0]["conclusion"], "action_required");
}

/// Upstream v1.5.0 and the fork both edit the same 60 lines of c.txt, ten
/// lines apart so git keeps every conflict its own hunk; returns the event.
fn sixty_conflicting_hunks(s: &Setup) -> std::path::PathBuf {
    let base = lines("c", 600);
    let edit = |text: &str, with: &str| {
        (1..=60).fold(text.to_string(), |acc, i| replace_line(&acc, i * 10, &format!("{with} {i}")))
    };
    s.fx.upstream.git(&["checkout", "--quiet", "v1.1.0"]);
    s.fx.upstream.git(&["checkout", "--quiet", "-B", "main"]);
    s.fx.upstream.commit("Add c.txt", &[("c.txt", &base)]);
    s.fx.upstream.git(&["tag", "v1.4.0"]);
    s.fx.fork.git(&["fetch", "--quiet", s.fx.upstream.path_str(), "refs/tags/v1.4.0:refs/tags/up-v1.4.0"]);
    s.fx.fork.git(&["rebase", "--quiet", "up-v1.4.0"]);
    s.fx.fork.commit("Fork edits c", &[("c.txt", &edit(&base, "fork"))]);
    s.fx.fork.git(&["push", "--quiet", "--force", "origin", "patches"]);
    s.fx.upstream.commit("Upstream edits c", &[("c.txt", &edit(&base, "upstream"))]);
    s.fx.upstream.git(&["tag", "v1.5.0"]);
    s.dispatch("v1.5.0")
}

/// A fresh checkout of origin on another branch, as a workflow has it.
fn fresh_checkout(s: &Setup, name: &str) -> std::path::PathBuf {
    let clone = s.fx.tmp.path().join(name);
    let out = Command::new("git")
        .args([
            "clone",
            "--quiet",
            "--branch",
            "patchmoi/upstream/v1.1.0",
            s.origin.path_str(),
            clone.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let flow = std::fs::read_to_string(s.fx.fork.dir.join(".codex/flows/fork/flow.yml")).unwrap();
    Repo { dir: clone.clone() }.write(".codex/flows/fork/flow.yml", &flow);
    std::fs::write(clone.join(".git/info/exclude"), ".codex/\n").unwrap();
    clone
}

#[test]
fn promote_moves_the_branch_to_the_reviewed_candidate_and_keeps_a_backup() {
    let mut s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let old_head = s.origin_branch("patches").unwrap();
    let candidate = s.origin_branch("patchmoi/v1.1.0").unwrap();
    s.workspace = fresh_checkout(&s, "promote-checkout");
    let run = s.action(&s.dispatch("v1.1.0"), &[("INPUT_PROMOTE", "v1.1.0"), ("INPUT_REPO", "test/upstream")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed");
    assert_eq!(s.origin_branch("patches"), Some(candidate));
    let backups = s.origin.git(&["for-each-ref", "--format=%(objectname)", "refs/heads/patchmoi/backup/patches/"]);
    assert_eq!(backups, old_head, "the old head is kept on origin");
}

#[test]
fn promote_is_blocked_when_the_branch_moved_since_the_candidate() {
    let mut s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    s.fx.fork.commit("Another fork patch", &[("c.txt", "new\n")]);
    s.fx.fork.git(&["push", "--quiet", "origin", "patches"]);
    let moved = s.origin_branch("patches");
    s.workspace = fresh_checkout(&s, "promote-moved");
    let run = s.action(&s.dispatch("v1.1.0"), &[("INPUT_PROMOTE", "v1.1.0"), ("INPUT_REPO", "test/upstream")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(s.output("status"), "blocked");
    assert!(run.stderr.contains("the branch moved since"), "{}", run.stderr);
    assert_eq!(s.origin_branch("patches"), moved, "nothing moved");
}

#[test]
fn workflow_file_changes_are_announced_and_step_logs_are_scrubbed() {
    let s = Setup::new();
    s.fx.fork.commit("Fork CI", &[(".github/workflows/fork.yml", "on: push\n")]);
    s.fx.fork.git(&["push", "--quiet", "origin", "patches"]);
    // A step that finds the secret some other way and prints it: the log keeps ***.
    let secret = s.dir.join("secret");
    std::fs::write(&secret, super::TOKEN).unwrap();
    let flow = std::fs::read_to_string(s.fx.fork.dir.join(".codex/flows/fork/flow.yml")).unwrap();
    let flow = format!(
        "{flow}  - name: chatty\n    run: echo \"oops $(cat \"$SECRET_FILE\")\"\n    env: {{SECRET_FILE: {}}}\n",
        secret.display()
    );
    s.fx.install_flow("fork", &flow);
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("::warning title=patchmoi::the candidate changes workflow files (.github/workflows/fork.yml)"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("oops ***"), "{}", run.stdout);
}

#[test]
fn git_gets_the_token_as_an_http_header_from_the_environment_only() {
    let s = Setup::new();
    // origin served over HTTP by the fake, which records how git authenticates.
    let url = format!("{}/forker/fork.git", s.gh.url);
    s.fx.fork.git(&["remote", "set-url", "origin", &url]);
    let run = s.action(&s.dispatch("v1.1.0"), &[("GITHUB_SERVER_URL", &s.gh.url)]);
    assert_eq!(run.code, 1, "the fake refuses the push\n{}", run.stderr);
    assert_eq!(s.output("status"), "failed");
    let state = s.gh.state();
    assert!(!state.git_auth.is_empty(), "git talked to the server");
    let basic = super::BASIC;
    assert!(
        state.git_auth.iter().all(|auth| auth == &format!("basic {basic}")),
        "{:?}\n{}",
        state.git_auth,
        run.stderr
    );
    let config = std::fs::read_to_string(s.fx.fork.dir.join(".git/config")).unwrap();
    assert!(!config.contains(basic) && !config.contains("extraheader"), "{config}");
}

#[test]
fn a_commit_pushed_onto_the_candidate_is_kept_on_origin_before_a_rerun_replaces_it() {
    let s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let review = Repo { dir: s.fx.tmp.path().join("reviewer") };
    let out = Command::new("git")
        .args(["clone", "--quiet", "--branch", "patchmoi/v1.1.0", s.origin.path_str(), review.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    review.commit("Reviewer fix", &[("c.txt", "fix\n")]);
    review.git(&["push", "--quiet", "origin", "patchmoi/v1.1.0"]);
    let fixed = s.origin_branch("patchmoi/v1.1.0").unwrap();
    s.forget_state();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let backups = s.origin.git(&["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/patchmoi/backup/"]);
    assert!(backups.contains(&format!("{fixed} refs/heads/patchmoi/backup/patchmoi/v1.1.0/")), "{backups}");
}

#[test]
fn untrusted_text_cannot_become_a_workflow_command() {
    let s = Setup::new();
    let run = s.action(&s.dispatch("v1\n::warning title=injected::hello from the payload"), &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("hello from the payload"), "{}", run.stderr);
    assert!(!run.stderr.lines().any(|line| line.starts_with("::warning")), "{}", run.stderr);
}

#[test]
fn promotion_on_a_runner_whose_checkout_has_the_branch_checked_out() {
    let mut s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let candidate = s.origin_branch("patchmoi/v1.1.0").unwrap();
    let clone = s.fx.tmp.path().join("on-patches");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--branch", "patches", s.origin.path_str(), clone.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let flow = std::fs::read_to_string(s.fx.fork.dir.join(".codex/flows/fork/flow.yml")).unwrap();
    Repo { dir: clone.clone() }.write(".codex/flows/fork/flow.yml", &flow);
    std::fs::write(clone.join(".git/info/exclude"), ".codex/\n").unwrap();
    s.workspace = clone;
    let run = s.action(&s.dispatch("v1.1.0"), &[("INPUT_PROMOTE", "v1.1.0"), ("INPUT_REPO", "test/upstream")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed");
    assert_eq!(s.origin_branch("patches").unwrap(), candidate);
}

#[test]
fn promotion_respects_push_false() {
    let mut s = Setup::new();
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let old_head = s.origin_branch("patches").unwrap();
    s.workspace = fresh_checkout(&s, "promote-dry");
    let run = s.action(
        &s.dispatch("v1.1.0"),
        &[("INPUT_PROMOTE", "v1.1.0"), ("INPUT_REPO", "test/upstream"), ("INPUT_PUSH", "false")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "skipped");
    assert_eq!(s.origin_branch("patches").unwrap(), old_head, "push: false moves nothing on origin");
}

#[test]
fn a_release_whose_candidate_was_refused_is_retried_by_the_schedule() {
    let s = Setup::new();
    let hook = s.origin.dir.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do case \"$ref\" in refs/heads/patchmoi/v*) echo \"refusing to allow a GitHub App to create or update workflow .github/workflows/x.yml without workflows permission\" >&2; exit 1;; esac; done\n",
    )
    .unwrap();
    Command::new("chmod").args(["+x", hook.to_str().unwrap()]).status().unwrap();
    let schedule = s.dir.join("schedule.json");
    std::fs::write(&schedule, r#"{"schedule": "17 6 * * *"}"#).unwrap();
    let run = s.action(&schedule, &[("GITHUB_EVENT_NAME", "schedule")]);
    assert_ne!(run.code, 0);
    assert_eq!(s.origin_branch("patchmoi/upstream/v1.1.0"), None, "no mark without a candidate");
    std::fs::remove_file(&hook).unwrap();
    s.forget_state();
    let run = s.action(&schedule, &[("GITHUB_EVENT_NAME", "schedule")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(s.origin_branch("patchmoi/v1.1.0").is_some());
}

#[test]
fn a_run_step_cannot_read_the_token_from_its_parent() {
    let s = Setup::new();
    let flow = std::fs::read_to_string(s.fx.fork.dir.join(".codex/flows/fork/flow.yml")).unwrap();
    // The step fails if its parent (patchmoi) has the token in its environment.
    let flow = format!(
        "{flow}  - name: thief\n    run: \"! tr '\\\\0' '\\\\n' < /proc/$PPID/environ | grep -q '^INPUT_TOKEN='\"\n"
    );
    s.fx.install_flow("fork", &flow);
    let run = s.action(&s.dispatch("v1.1.0"), &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.output("status"), "changed");
    let state = s.gh.state();
    let thief = super::runs_named(&state.check_runs, "patchmoi / fork / thief");
    assert_eq!(thief.len(), 1);
    assert_eq!(thief[0]["conclusion"], "success", "the step found the token in its parent's environment");
}

#[test]
fn promote_is_blocked_when_a_check_run_of_the_candidate_failed() {
    let mut s = Setup::new();
    s.fx.install_rebase_flow("  - name: build\n    run: 'exit 3'\n");
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 1);
    let old_head = s.origin_branch("patches");
    assert!(s.origin_branch("patchmoi/v1.1.0").is_some(), "the candidate was pushed");
    s.workspace = fresh_checkout(&s, "promote-failed");
    let run = s.action(&s.dispatch("v1.1.0"), &[("INPUT_PROMOTE", "v1.1.0"), ("INPUT_REPO", "test/upstream")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(s.output("status"), "blocked");
    assert!(run.stderr.contains("check run `patchmoi / fork / build` concluded failure"), "{}", run.stderr);
    assert_eq!(s.origin_branch("patches"), old_head, "nothing moved");
}
