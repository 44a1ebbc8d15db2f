//! `patchmoi action` end to end, with the environment a runner gives it:
//! an event file (GitHub's own example payloads), output and summary
//! files, a token, and GITHUB_API_URL pointing at a fake GitHub that keeps
//! state and validates every request body against GitHub's OpenAPI
//! description. The git remote is a local bare repository.

use crate::common;
use crate::fake_github;
mod dashboard;
mod faults;
mod github_api;
mod injection;
mod memory;
mod more;
mod provenance;
mod secrets;

use std::path::{Path, PathBuf};

use common::{lines, patchmoi, replace_line, Fixture, Repo, Run};
use fake_github::FakeGitHub;
use serde_json::{json, Value};

const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefSECRET";
/// base64("x-access-token:" + TOKEN): what git sends.
const BASIC: &str = "eC1hY2Nlc3MtdG9rZW46Z2hzX0ZBS0V0b2tlbjAxMjM0NTY3ODlhYmNkZWZTRUNSRVQ=";

struct Setup {
    fx: Fixture,
    origin: Repo,
    gh: FakeGitHub,
    dir: PathBuf,
    /// The checkout patchmoi runs in (the fork, unless a test makes another).
    workspace: PathBuf,
}

impl Setup {
    /// Upstream v1.0.0 → v1.1.0 (clean for the fork's patch) and the fork's
    /// `patches` on a bare origin; a flow with a rebase and a build step.
    fn new() -> Setup {
        let fx = Fixture::new(&[("a.txt", &lines("a", 10)), ("b.txt", &lines("b", 10))]);
        fx.fork.commit("Fork patch", &[("a.txt", &replace_line(&lines("a", 10), 2, "fork"))]);
        fx.upstream.commit("Upstream change", &[("b.txt", &replace_line(&lines("b", 10), 2, "upstream"))]);
        fx.upstream.git(&["tag", "v1.1.0"]);
        fx.install_rebase_flow(
            "  - name: build\n    run: echo \"token=${GITHUB_TOKEN:-none} input=${INPUT_TOKEN:-none}\"\n",
        );
        Setup::on(fx)
    }

    /// The fork of `fx` with its `patches` on a bare origin, and a fake
    /// GitHub in front of it.
    fn on(fx: Fixture) -> Setup {
        let origin = Repo::init_bare(&fx.tmp.path().join("origin.git"));
        fx.fork.git(&["remote", "set-url", "origin", origin.path_str()]);
        fx.fork.git(&["push", "--quiet", "origin", "patches"]);
        let gh = FakeGitHub::start(TOKEN, origin.dir.clone());
        let dir = fx.tmp.path().join("runner");
        std::fs::create_dir_all(&dir).unwrap();
        let workspace = fx.fork.dir.clone();
        Setup { fx, origin, gh, dir, workspace }
    }

    /// A repository_dispatch of `upstream.release` for `tag`, built from
    /// GitHub's example payload.
    fn dispatch(&self, tag: &str) -> PathBuf {
        let mut event: Value =
            serde_json::from_str(include_str!("../fixtures/webhook-repository_dispatch.json")).unwrap();
        event["action"] = json!("upstream.release");
        event["client_payload"] = json!({"repo": "test/upstream", "tag": tag});
        let path = self.dir.join(format!("event-{tag}.json"));
        std::fs::write(&path, event.to_string()).unwrap();
        path
    }

    fn action(&self, event: &Path, extra: &[(&str, &str)]) -> Run {
        let output = self.dir.join("output");
        let summary = self.dir.join("summary.md");
        let _ = std::fs::remove_file(&output);
        let _ = std::fs::remove_file(&summary);
        let head = Repo { dir: self.workspace.clone() }.rev("HEAD");
        let mut env = vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "repository_dispatch"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_API_URL", self.gh.url.as_str()),
            ("GITHUB_SERVER_URL", "https://github.example"),
            ("GITHUB_REPOSITORY", "forker/fork"),
            ("GITHUB_WORKSPACE", self.workspace.to_str().unwrap()),
            ("GITHUB_SHA", head.as_str()),
            ("GITHUB_TOKEN", TOKEN),
            ("INPUT_TOKEN", TOKEN),
            ("PATCHMOI_API_BACKOFF_MS", "20"),
        ];
        env.extend_from_slice(extra);
        let run = patchmoi(&self.workspace, &["action"], &env);
        self.assert_no_leak(&run);
        run
    }

    /// Runner state does not survive between workflow runs.
    fn forget_state(&self) {
        std::fs::remove_dir_all(self.workspace.join(".codex/workspace/actions/flow-client")).unwrap();
    }

    fn outputs(&self) -> String {
        std::fs::read_to_string(self.dir.join("output")).unwrap_or_default()
    }

    fn output(&self, name: &str) -> String {
        let text = self.outputs();
        let start = text.find(&format!("{name}<<")).unwrap_or_else(|| panic!("no output {name} in {text}"));
        let rest = &text[start..];
        let (header, body) = rest.split_once('\n').unwrap();
        let delimiter = header.split_once("<<").unwrap().1;
        body[..body.find(&format!("\n{delimiter}\n")).unwrap()].to_string()
    }

    fn origin_branch(&self, name: &str) -> Option<String> {
        let out = self.origin.git_output(&["rev-parse", "--verify", "--quiet", &format!("refs/heads/{name}")]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The token is in no output, log, summary or file patchmoi wrote.
    fn assert_no_leak(&self, run: &Run) {
        // `::add-mask::` is the one line that must carry it: the runner reads it and never shows it.
        let stdout: String = run.stdout.lines().filter(|line| !line.starts_with("::add-mask::")).collect();
        assert!(run.stdout.contains(&format!("::add-mask::{BASIC}")), "git's credential is masked too");
        assert!(run.stdout.contains(&format!("::add-mask::{TOKEN}")), "the token is masked");
        let mut texts = vec![stdout, run.stderr.clone(), self.outputs()];
        texts.push(std::fs::read_to_string(self.dir.join("summary.md")).unwrap_or_default());
        texts.push(std::fs::read_to_string(self.workspace.join(".git/config")).unwrap());
        texts.extend(files_under(&self.workspace.join(".codex/workspace")));
        for text in texts {
            assert!(!text.contains(TOKEN) && !text.contains(BASIC), "the token leaked:\n{text}");
        }
        let state = self.gh.state();
        assert!(!state.seen.contains(TOKEN), "the token leaked into a request body or URL");
        assert!(state.violations.is_empty(), "requests GitHub's OpenAPI description refuses: {:?}", state.violations);
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut texts = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return texts };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            texts.extend(files_under(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            texts.push(text);
        }
    }
    texts
}

/// The issues that are not the dashboard: the flows' tracking issues.
fn tracking(issues: &[Value]) -> Vec<&Value> {
    let dashboard = |issue: &&Value| issue["body"].as_str().is_some_and(|b| b.contains("<!-- patchmoi:dashboard -->"));
    issues.iter().filter(|issue| !dashboard(issue)).collect()
}

fn runs_named<'a>(runs: &'a [Value], name: &str) -> Vec<&'a Value> {
    runs.iter().filter(|run| run["name"] == name).collect()
}

#[test]
fn clean_release_pushes_reports_checks_and_opens_one_pr_even_when_run_twice() {
    let s = Setup::new();
    let event = s.dispatch("v1.1.0");
    let run = s.action(&event, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let candidate = s.origin_branch("patchmoi/v1.1.0").expect("candidate pushed");
    assert_eq!(s.origin_branch("patchmoi/upstream/v1.1.0"), Some(s.fx.upstream.rev("v1.1.0")), "base branch pushed");
    assert_eq!(s.output("status"), "changed");
    assert_eq!(s.output("candidate-ref"), "refs/heads/patchmoi/v1.1.0");
    assert_eq!(s.output("candidate-sha"), candidate);
    assert_eq!(s.output("pr-number"), "1");
    let results: Value = serde_json::from_str(&s.output("results")).unwrap();
    assert_eq!(results[0]["flow"], "fork");
    let summary = std::fs::read_to_string(s.dir.join("summary.md")).unwrap();
    assert!(summary.contains("Flow `fork`: changed") && summary.contains("[#1]"), "{summary}");
    // The build step's log is printed inside a stop-commands block.
    assert!(run.stdout.contains("::group::fork / build\n::stop-commands::"), "{}", run.stdout);
    assert!(run.stdout.contains("token=none input=none"), "run: steps never see the token:\n{}", run.stdout);

    {
        let state = s.gh.state();
        assert_eq!(state.pulls.len(), 1);
        let pr = &state.pulls[0];
        assert_eq!(pr["head"]["ref"], "patchmoi/v1.1.0");
        assert_eq!(pr["base"]["ref"], "patchmoi/upstream/v1.1.0");
        let body = pr["body"].as_str().unwrap();
        assert!(body.contains("Fork patch") && body.contains("v1.1.0") && body.contains("promote"), "{body}");
        assert!(body.contains("Range-diff") && body.contains("<!-- patchmoi:pr flow=fork tag=v1.1.0 -->"), "{body}");
        for step in ["rebase", "build"] {
            let runs = runs_named(&state.check_runs, &format!("patchmoi / fork / {step}"));
            assert_eq!(runs.len(), 1, "{step}");
            assert_eq!(runs[0]["head_sha"], candidate.as_str());
            assert_eq!(runs[0]["status"], "completed");
            assert_eq!(runs[0]["conclusion"], "success");
        }
    }

    // Again, in a fresh job (state gone): same SHA, same PR, same check runs.
    s.forget_state();
    let again = s.action(&event, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(s.origin_branch("patchmoi/v1.1.0"), Some(candidate));
    assert_eq!(s.output("pr-number"), "1");
    {
        let state = s.gh.state();
        assert_eq!(state.pulls.len(), 1, "still one PR");
        assert_eq!(state.check_runs.len(), 2, "check runs found again, not duplicated");
        assert!(tracking(&state.issues).is_empty());
    }

    // And once more on the same runner, where the stored results are reported.
    let stored = s.action(&event, &[]);
    assert_eq!(stored.code, 0, "{}", stored.stderr);
    assert_eq!(s.output("pr-number"), "1");
    let state = s.gh.state();
    assert_eq!((state.pulls.len(), state.check_runs.len()), (1, 2));
}

/// A fork whose patch conflicts with upstream's v1.1.0 on line 2 of a.txt.
fn conflicting() -> Setup {
    let s = Setup::new();
    s.fx.upstream.commit("Upstream rewrites line 2", &[("a.txt", &replace_line(&lines("a", 10), 2, "upstream"))]);
    s.fx.upstream.git(&["tag", "v1.2.0"]);
    s
}

#[test]
fn conflict_is_action_required_with_annotations_and_one_tracking_issue() {
    let s = conflicting();
    let event = s.dispatch("v1.2.0");
    let run = s.action(&event, &[]);
    assert_eq!(run.code, 1, "needs_intervention fails the step by default\n{}", run.stderr);
    assert_eq!(s.output("status"), "needs_intervention");
    assert!(s.output("report").ends_with("conflict.json"));
    assert!(run.stdout.contains("::error file=a.txt,line=2,endLine=2"), "{}", run.stdout);
    let head = s.fx.fork.rev("patches");
    {
        let state = s.gh.state();
        let rebase = runs_named(&state.check_runs, "patchmoi / fork / rebase");
        assert_eq!(rebase.len(), 1);
        assert_eq!(rebase[0]["head_sha"], head.as_str(), "on the maintained branch's head");
        assert_eq!(rebase[0]["conclusion"], "action_required");
        let notes = rebase[0]["annotations"].as_array().unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!((notes[0]["path"].as_str(), notes[0]["start_line"].as_u64()), (Some("a.txt"), Some(2)));
        assert!(rebase[0]["output"]["summary"].as_str().unwrap().contains("does not apply"));
        assert_eq!(tracking(&state.issues).len(), 1);
        assert!(state.pulls.is_empty());
    }
    s.forget_state();
    let again = s.action(&event, &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(again.code, 0, "fail-on-conflict: false\n{}", again.stderr);
    let state = s.gh.state();
    assert_eq!(tracking(&state.issues).len(), 1, "the tracking issue is reused");
    assert_eq!(runs_named(&state.check_runs, "patchmoi / fork / rebase").len(), 1);
}

#[test]
fn tracking_issues_opened_by_racing_runs_become_one() {
    // Two runs for different releases both found no tracking issue and both
    // opened one. The next run keeps the oldest and closes the other.
    let s = conflicting();
    {
        let mut state = s.gh.state();
        for title in ["from the run for v1.1.0", "from the run for v1.2.0"] {
            let (number, id) = (state.next_number, state.next_id);
            state.next_number += 1;
            state.next_id += 1;
            state.issues.push(json!({"id": id, "number": number, "state": "open", "title": title,
                "body": format!("{title}\n\n<!-- patchmoi:tracking flow=fork -->\n"), "html_url": "x",
                "labels": [{"name": "patchmoi"}]}));
        }
    }
    let run = s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    let (older, newer) = (&state.issues[0], &state.issues[1]);
    assert_eq!(older["state"], "open");
    assert!(older["body"].as_str().unwrap().contains("v1.2.0"), "the oldest carries the report: {older}");
    assert_eq!(newer["state"], "closed");
    assert_eq!(newer["state_reason"], "duplicate");
    assert_eq!(newer["duplicate_issue_id"], older["id"]);
    let comments: Vec<&Value> = state.comments.iter().filter(|c| c["issue"] == newer["number"]).collect();
    assert_eq!(comments.len(), 1);
    assert!(comments[0]["body"].as_str().unwrap().contains(&format!("Duplicate of #{}", older["number"])));
    let duplicate = newer["number"].clone();
    drop(state);
    // The next run finds one open issue to update and closes nothing more.
    s.forget_state();
    s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(s.gh.state().comments.iter().filter(|c| c["issue"] == duplicate).count(), 1);
}

#[test]
fn a_tracking_issue_opened_meanwhile_by_another_run_is_kept_and_ours_closed() {
    let s = conflicting();
    s.gh.state().issue_opened_meanwhile = Some(json!({"state": "open", "title": "from the run for v1.1.0",
        "body": "v1.1.0 report\n\n<!-- patchmoi:tracking flow=fork -->\n", "html_url": "x",
        "labels": [{"name": "patchmoi"}]}));
    let run = s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    let issues = tracking(&state.issues);
    assert_eq!(issues.len(), 2);
    let (theirs, ours) = (issues[0], issues[1]);
    assert_eq!(theirs["state"], "open");
    assert!(theirs["body"].as_str().unwrap().contains("v1.2.0"), "the kept issue carries this run's report");
    assert_eq!((ours["state"].as_str(), ours["state_reason"].as_str()), (Some("closed"), Some("duplicate")));
}

/// Marked tracking issues of flow `fork` in the fake, in order: (title, state).
fn marked_issues(s: &Setup, issues: &[(&str, &str)]) {
    let mut state = s.gh.state();
    for (title, issue_state) in issues {
        let (number, id) = (state.next_number, state.next_id);
        state.next_number += 1;
        state.next_id += 1;
        state.issues.push(json!({"id": id, "number": number, "state": issue_state, "title": title,
            "body": format!("{title}\n\n<!-- patchmoi:tracking flow=fork -->\n"), "html_url": "x",
            "labels": [{"name": "patchmoi"}]}));
    }
}

#[test]
fn an_open_tracking_issue_wins_over_an_older_closed_one() {
    // An old closed marked issue (from before, or closed by hand) stays closed.
    let s = conflicting();
    marked_issues(&s, &[("old and closed", "closed"), ("the live one", "open")]);
    let run = s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert_eq!(state.issues[0]["state"], "closed");
    assert_eq!(state.issues[0]["title"], "old and closed");
    assert_eq!(state.issues[1]["state"], "open");
    assert!(state.issues[1]["body"].as_str().unwrap().contains("v1.2.0"));
    assert!(state.comments.is_empty(), "{:?}", state.comments);
}

#[test]
fn where_github_refuses_the_duplicate_reason_the_copy_is_closed_as_not_planned() {
    let s = conflicting();
    marked_issues(&s, &[("first", "open"), ("second", "open")]);
    s.gh.state().no_duplicate_reason = true;
    let run = s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = s.gh.state();
    assert!(state.issues[0]["body"].as_str().unwrap().contains("v1.2.0"));
    assert_eq!(
        (state.issues[1]["state"].as_str(), state.issues[1]["state_reason"].as_str()),
        (Some("closed"), Some("not_planned"))
    );
    assert_eq!(state.comments.len(), 1);
}

#[test]
fn issues_disabled_is_a_warning_not_a_failure() {
    let s = conflicting();
    s.gh.state().issues_disabled = true;
    // Also: a GitHub Enterprise API URL, with its /api/v3 path.
    let ghes = format!("{}/api/v3", s.gh.url);
    let run = s.action(&s.dispatch("v1.2.0"), &[("INPUT_FAIL_ON_CONFLICT", "false"), ("GITHUB_API_URL", &ghes)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("::warning") && run.stdout.contains("Issues are turned off"), "{}", run.stdout);
    let state = s.gh.state();
    assert!(state.requests.iter().all(|r| r.contains(" /api/v3/repos/")), "{:?}", state.requests);
    assert_eq!(runs_named(&state.check_runs, "patchmoi / fork / rebase")[0]["conclusion"], "action_required");
}

#[test]
fn a_newer_release_closes_the_older_pr_and_deletes_its_branch() {
    let s = Setup::new();
    s.fx.upstream.commit("Another upstream change", &[("b.txt", &replace_line(&lines("b", 10), 5, "newer"))]);
    s.fx.upstream.git(&["tag", "v1.3.0"]);
    assert_eq!(s.action(&s.dispatch("v1.1.0"), &[]).code, 0);
    let run = s.action(&s.dispatch("v1.3.0"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("pr-number"), "3", "the dashboard issue took #2");
    let state = s.gh.state();
    assert_eq!(state.pulls[0]["state"], "closed");
    assert_eq!(state.pulls[1]["state"], "open");
    assert_eq!(state.comments.len(), 1);
    assert!(state.comments[0]["body"].as_str().unwrap().contains("#3"));
    drop(state);
    assert_eq!(s.origin_branch("patchmoi/v1.1.0"), None, "the older candidate branch is deleted");
    assert!(s.origin_branch("patchmoi/v1.3.0").is_some());
}

#[test]
fn without_push_nothing_reaches_github_and_the_outputs_carry_the_result() {
    let s = Setup::new();
    let run = s.action(&s.dispatch("v1.1.0"), &[("INPUT_PUSH", "false")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.output("status"), "changed");
    assert!(!s.output("candidate-sha").is_empty());
    assert_eq!(s.output("pr-number"), "");
    assert!(s.gh.state().requests.is_empty(), "{:?}", s.gh.state().requests);
    assert_eq!(s.origin_branch("patchmoi/v1.1.0"), None);
}

#[test]
fn bad_events_and_inputs_exit_2_and_change_nothing() {
    let s = Setup::new();
    let refs = s.fx.fork.git(&["for-each-ref"]);
    let push_event = s.dir.join("push.json");
    std::fs::write(&push_event, "{}").unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("GITHUB_EVENT_NAME", "push")], "event `push` is not one patchmoi action handles"),
        (vec![("INPUT_PUSH", "yes")], "input `push` must be `true` or `false`"),
        (vec![("INPUT_TAG", "v1.1.0")], "input `repo`"),
        (vec![("INPUT_TAG", "-x"), ("INPUT_REPO", "test/upstream")], "input `tag`"),
    ];
    for (extra, want) in cases {
        let run = s.action(&push_event, &extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{extra:?}: {}", run.stderr);
    }
    assert_eq!(s.fx.fork.git(&["for-each-ref"]), refs);
    assert!(s.gh.state().requests.is_empty());
}

#[test]
fn a_rerun_does_not_repeat_annotations() {
    let s = conflicting();
    let event = s.dispatch("v1.2.0");
    s.action(&event, &[]);
    let first =
        runs_named(&s.gh.state().check_runs, "patchmoi / fork / rebase")[0]["annotations"].as_array().unwrap().len();
    assert!(first > 0);
    s.forget_state();
    s.action(&event, &[]);
    let state = s.gh.state();
    let rebase = runs_named(&state.check_runs, "patchmoi / fork / rebase");
    assert_eq!(rebase.len(), 1);
    assert_eq!(rebase[0]["annotations"].as_array().unwrap().len(), first, "GitHub appends: a re-run must not resend");
}
