//! Flows and steps as a user sees them: `run:` steps in the candidate's
//! worktree with their variables, failures, timeouts, the Code Mode gate,
//! `if:` conditions, dry runs with shadowing, tag selection, and state.

use crate::common;

use common::{lines, replace_line, Fixture};

#[test]
fn run_steps_see_the_candidate_and_never_the_token() {
    let fx = Fixture::released();
    fx.install_rebase_flow(
        "  - name: inspect\n    working-directory: sub\n    env: {EXTRA: yes}\n    run: |\n      \
         test \"$(git rev-parse HEAD)\" = \"$PATCHMOI_CANDIDATE_SHA\"\n      \
         test \"$PATCHMOI_CANDIDATE_REF\" = refs/heads/patchmoi/v1.1.0\n      \
         test \"$PATCHMOI_TAG\" = v1.1.0\n      test \"$(basename \"$PWD\")\" = sub\n      \
         test \"$EXTRA\" = yes\n      test -z \"${GITHUB_TOKEN:-}\"\n      grep -q fork ../a.txt\n      \
         echo \"event=$PATCHMOI_EVENT_ID worktree=$PATCHMOI_WORKTREE\"\n",
    );
    fx.fork.commit("Add sub dir", &[("sub/keep", "")]);
    let run = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[("GITHUB_TOKEN", "ghs_supersecret")],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let inspect = run.step("inspect");
    assert_eq!(inspect["status"], "completed", "{inspect}");
    let tail = inspect["artifacts"]["logTail"].as_array().unwrap();
    assert!(tail[0].as_str().unwrap().starts_with("event=patch:upstream.release:test/upstream:v1.1.0 worktree="));
    assert!(!run.stdout.contains("supersecret") && !run.stderr.contains("supersecret"));
    // The worktree is gone afterwards.
    assert_eq!(fx.fork.git(&["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    assert!(std::fs::read_dir(fx.fork.dir.join(".codex/workspace/actions/worktrees")).unwrap().next().is_none());
}

#[test]
fn failing_and_timed_out_steps_fail_the_run_and_keep_their_logs() {
    let fx = Fixture::released();
    fx.install_rebase_flow(
        "  - name: build\n    run: 'for i in $(seq 1 80); do echo line $i; done; exit 3'\n\
         \x20 - name: never\n    run: 'true'\n\
         \x20 - name: report\n    if: failure\n    run: 'echo reporting after $PATCHMOI_STATUS'\n",
    );
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["status"], "failed");
    let build = run.step("build");
    assert_eq!(build["status"], "failed");
    assert!(build["message"].as_str().unwrap().contains("exit code 3"), "{build}");
    let tail = build["artifacts"]["logTail"].as_array().unwrap();
    assert_eq!(tail.len(), 50);
    assert_eq!(tail[48], "line 80");
    let log = std::fs::read_to_string(build["artifacts"]["log"].as_str().unwrap()).unwrap();
    assert!(log.starts_with("line 1\n"), "the whole log is kept");
    assert_eq!(run.step("never")["status"], "skipped");
    let report = run.step("report");
    assert_eq!(report["status"], "completed");
    assert!(report["artifacts"]["logTail"][0].as_str().unwrap().contains("reporting after failed"));

    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: slow\n    timeout: 1s\n    run: 'sleep 30 & sleep 30'\n");
    let started = std::time::Instant::now();
    let run = fx.run_release("v1.1.0", &[]);
    assert!(started.elapsed().as_secs() < 20, "the step was killed on time");
    let slow = run.step("slow");
    assert_eq!(slow["status"], "failed");
    assert!(slow["message"].as_str().unwrap().contains("timed out after 1s"), "{slow}");
}

#[test]
fn code_mode_steps_are_gated_until_the_variable_is_set() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: agent\n    runner: code-mode\n    run: 'echo agent ran'\n");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 0);
    let agent = run.step("agent");
    assert_eq!(agent["status"], "skipped");
    assert_eq!(agent["gated"], true);
    assert_eq!(agent["runner"], "code-mode");
    assert!(agent["message"].as_str().unwrap().contains("CODEX_FLOWS_MODE=code-mode"));

    let open = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--replay"],
        &[("CODEX_FLOWS_MODE", "code-mode")],
    );
    let agent = open.step("agent");
    assert_eq!(agent["status"], "completed", "{agent}");
    assert_eq!(agent["gated"], false);
}

#[test]
fn a_conflict_runs_needs_intervention_steps_in_the_stopped_state() {
    let fx = Fixture::new(&[("a.txt", &lines("a", 10))]);
    fx.fork.commit("Fork patch", &[("a.txt", &replace_line(&lines("a", 10), 2, "fork"))]);
    fx.upstream.commit("Upstream patch", &[("a.txt", &replace_line(&lines("a", 10), 2, "upstream"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow(
        "  - name: build\n    run: 'true'\n  - name: repair\n    if: needs_intervention\n    run: |\n      \
         test \"$(git diff --name-only --diff-filter=U)\" = a.txt\n      grep -q '^<<<<<<<' a.txt\n      \
         test -f \"$PATCHMOI_CONFLICT_REPORT\"\n      test \"$(git rev-parse HEAD)\" = \"$(git rev-parse refs/patchmoi/upstream/tags/v1.1.0)\"\n",
    );
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.json()["status"], "needs_intervention");
    assert_eq!(run.step("build")["status"], "skipped");
    // Its checks of the stopped state passed (else it would have failed), but
    // it resolved nothing, so its resolution is rejected.
    let repair = run.step("repair");
    assert_eq!(repair["status"], "needs_intervention", "{repair}");
    let message = repair["message"].as_str().unwrap();
    assert!(message.contains("passed") && message.contains("still unmerged (not `git add`ed): a.txt"), "{message}");
}

#[test]
fn dry_run_matches_with_shadowing_and_writes_nothing() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: agent\n    runner: code-mode\n    if: needs_intervention\n    run: 'true'\n");
    // A repository flow with the same name is shadowed by the installed one;
    // another repository flow is listed after it.
    fx.fork.write(
        "flows/fork/flow.yml",
        "name: fork\non: {type: upstream.release}\nsteps: [{name: shadowed, run: 'true'}]\n",
    );
    fx.fork.write(
        "flows/bindings/flow.yml",
        "name: bindings\non: {type: upstream.release, payload: {repo: test/upstream}}\nsteps: [{name: regenerate, run: 'true'}]\n",
    );
    fx.fork.write(
        "flows/other/flow.yml",
        "name: other\non: {type: upstream.release, payload: {repo: x/y}}\nsteps: [{name: s, run: 'true'}]\n",
    );
    let refs_before = fx.fork.git(&["for-each-ref"]);

    let run = fx.run_release("v1.1.0", &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["event"]["id"], "patch:upstream.release:test/upstream:v1.1.0");
    let matches = run.matches();
    assert_eq!(
        matches,
        ["fork/rebase:default:false", "fork/agent:code-mode:true", "bindings/regenerate:default:false"]
    );
    assert_eq!(fx.fork.git(&["for-each-ref"]), refs_before, "no fetch, no refs");
    assert!(!fx.fork.dir.join(".codex/workspace").exists(), "no state");

    let open = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--dry-run"],
        &[("CODEX_FLOWS_ENABLE_CODE_MODE", "1")],
    );
    assert_eq!(open.json()["matches"][1]["gated"], false);
}

#[test]
fn newest_tag_follows_prerelease_and_skip_rules() {
    let fx = Fixture::released();
    for tag in ["v1.2.0", "v1.10.0-rc.1", "v1.9.0", "v1.9.1", "other-v9.0.0"] {
        fx.upstream.git(&["tag", tag]);
    }
    let flow = |extra: &str| {
        fx.install_flow(
            "fork",
            &format!(
                "name: fork\non: {{type: upstream.release, payload: {{repo: test/upstream, tag: 'v*'}}}}\n{extra}\
                 stack: {{upstream: {}, branch: patches}}\nsteps: [{{name: rebase, uses: rebase}}]\n",
                fx.upstream.path_str()
            ),
        )
    };
    let newest = || {
        let run = fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--dry-run", "--json"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()["event"]["payload"]["tag"].as_str().unwrap().to_string()
    };
    flow("");
    assert_eq!(newest(), "v1.9.1");
    flow("prereleases: true\n");
    assert_eq!(newest(), "v1.10.0-rc.1");
    flow("skip: ['v1.9.1']\n");
    assert_eq!(newest(), "v1.9.0");
    flow("skip: ['v1.9.*']\n");
    assert_eq!(newest(), "v1.2.0");
    // A second flow that follows other tags: the flows disagree.
    fx.fork.write(
        "flows/second/flow.yml",
        &format!(
            "name: second\non: {{type: upstream.release, payload: {{repo: test/upstream, tag: 'other-v*'}}}}\n\
             stack: {{upstream: {}, branch: patches}}\nsteps: [{{name: rebase, uses: rebase}}]\n",
            fx.upstream.path_str()
        ),
    );
    let run = fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--dry-run"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("disagree") && run.stderr.contains("--tag"), "{}", run.stderr);
}

#[test]
fn state_file_records_events_and_runs() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: check\n    run: 'true'\n");
    let run = fx.run_release("v1.1.0", &[]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.state_dir().join("state.json")).unwrap()).unwrap();
    let event = &state["events"][0];
    assert_eq!(event["event"]["id"], "patch:upstream.release:test/upstream:v1.1.0");
    let output = run.json();
    let ids: Vec<&str> = output["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(event["runIds"], serde_json::json!(ids));
    let view = &state["runs"][0];
    assert_eq!(view["flowName"], "fork");
    assert_eq!(view["stepName"], "rebase");
    assert_eq!(view["status"], "changed");
    assert_eq!(view["effectiveStatus"], "changed");
    assert_eq!(view["needsAttention"], false);
    assert_eq!(view["resultPayload"]["artifacts"]["candidateRefs"][0]["ref"], "refs/heads/patchmoi/v1.1.0");
    // run_ + sha256("<event>\0fork\0rebase")[..12]
    assert_eq!(
        ids[0],
        "run_".to_string() + &sha256_hex("patch:upstream.release:test/upstream:v1.1.0\0fork\0rebase")[..12]
    );
    // The runtime folder ignores itself, so the user's status stays clean.
    assert_eq!(fx.fork.git(&["status", "--porcelain"]), "");
}

fn sha256_hex(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_candidate_never_names_the_maintained_branch() {
    // The maintained branch is named like the release's candidate: the run
    // refuses and leaves the branch where it was.
    let fx = Fixture::released();
    fx.fork.git(&["branch", "patchmoi/v1.1.0", "patches"]);
    let yaml = format!(
        "name: fork\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v*\"}}\n\
         stack:\n  upstream: {}\n  branch: patchmoi/v1.1.0\nsteps:\n  - name: rebase\n    uses: rebase\n",
        fx.upstream.path_str()
    );
    fx.install_flow("fork", &yaml);
    let before = fx.fork.rev("patchmoi/v1.1.0");
    let run = fx.run_release("v1.1.0", &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains(".codex/flows/fork/flow.yml: stack.candidate `patchmoi/{tag}`"), "{all}");
    assert!(all.contains("which is the maintained branch"), "{all}");
    assert_eq!(fx.fork.rev("patchmoi/v1.1.0"), before);

    // A template without a namespace of its own is refused when the flow loads.
    fx.install_flow("fork", &yaml.replace("branch: patchmoi/v1.1.0", "branch: patches\n  candidate: \"{tag}\""));
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains(".codex/flows/fork/flow.yml: stack.candidate: `{tag}` has no namespace"),
        "{}",
        run.stderr
    );
    assert!(fx.fork.git_output(&["rev-parse", "--verify", "--quiet", "refs/heads/v1.1.0"]).stdout.is_empty());
}

#[test]
fn a_long_step_is_not_silent_its_output_streams_to_stderr_with_its_name() {
    let fx = Fixture::released();
    fx.install_rebase_flow(
        "  - name: build\n    run: |\n      echo compiling one\n      sleep 0.3\n      printf 'compiling two'\n",
    );
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("step build: running, log "), "{}", run.stderr);
    assert!(run.stderr.contains("build | compiling one"), "{}", run.stderr);
    assert!(run.stderr.contains("build | compiling two"), "the last line without a newline too: {}", run.stderr);
}
