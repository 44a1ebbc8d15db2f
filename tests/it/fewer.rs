//! Fewer conflicts than a plain `git rebase` (issue 16): patches dropped by
//! provenance, releases landed with a merge so promotion fast-forwards,
//! generated files regenerated instead of stopping.

use crate::common;

use common::{lines, replace_line, Fixture};

/// `text` with each `(line, new text)` replaced (1-based).
fn edit(text: &str, changes: &[(usize, &str)]) -> String {
    changes.iter().fold(text.to_string(), |text, (line, with)| replace_line(&text, *line, with))
}

/// The reasons of the rebase step's drops, by subject.
fn drops(rebase: &serde_json::Value) -> Vec<(String, String)> {
    rebase["artifacts"]["dropped"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|drop| (drop["subject"].as_str().unwrap().to_string(), drop["reason"].as_str().unwrap().to_string()))
        .collect()
}

fn carried(rebase: &serde_json::Value) -> Vec<String> {
    rebase["artifacts"]["carried"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|patch| patch["subject"].as_str().unwrap().to_string())
        .collect()
}

/// The rebase flow with `stack:` options added.
fn install_flow_with(fx: &Fixture, stack_options: &str, extra: &str) {
    let yaml = format!(
        "name: fork\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v*\"}}\n\
         stack:\n  upstream: {}\n  branch: patches\n{stack_options}steps:\n  - name: rebase\n    uses: rebase\n{extra}",
        fx.upstream.path_str()
    );
    fx.install_flow("fork", &yaml);
}

#[test]
fn fewer_cherry_pick_x_is_dropped_by_provenance_though_its_patch_id_differs() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a)]);
    let fix = fx.upstream.commit("Upstream fix", &[("a.txt", &edit(&a, &[(4, "a four (fixed)")]))]);
    fx.fork.commit("Fork: line 2", &[("a.txt", &edit(&a, &[(2, "a two (fork)")]))]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    // The pick's context holds the fork's line 2: another patch-id than upstream's.
    fx.fork.git(&["cherry-pick", "-x", &fix]);
    // Upstream reworks the fix before releasing: the pick no longer applies.
    let reworked = edit(&a, &[(4, "a four (fixed twice)")]);
    fx.upstream.commit("Upstream: rework the fix", &[("a.txt", &reworked)]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let run = fx.run_release("v1.1.0", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{}", run.stderr);
    assert_eq!(carried(&rebase), ["Fork: line 2"]);
    let drops = drops(&rebase);
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(drops[0].0, "Upstream fix");
    let rule =
        format!("dropped by provenance (`(cherry picked from commit …)` line): the release contains {}", &fix[..12]);
    assert!(drops[0].1.starts_with(&rule), "{}", drops[0].1);
    // The pick's own line is not what the release has: said, not lost.
    assert!(drops[0].1.ends_with("dropped by provenance; 2 lines of it are not in the release"), "{}", drops[0].1);
    assert_eq!(fx.fork.git(&["show", "patchmoi/v1.1.0:a.txt"]) + "\n", edit(&reworked, &[(2, "a two (fork)")]));
}

#[test]
fn fewer_upstream_commit_trailer_drop_is_silent_when_the_release_has_it_all() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a)]);
    let fix = fx.upstream.commit("Upstream fix", &[("a.txt", &edit(&a, &[(4, "a four (fixed)"), (8, "a eight")]))]);
    // The fork took the same change under its own words and context.
    fx.fork.commit("Fork: line 2", &[("a.txt", &edit(&a, &[(2, "a two (fork)")]))]);
    let message = format!("Backport the fix\n\nUpstream-Commit: {}\n", &fix[..10]);
    fx.fork.commit(&message, &[("a.txt", &edit(&a, &[(2, "a two (fork)"), (4, "a four (fixed)")]))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.install_rebase_flow("");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "changed");
    let drops = drops(&rebase);
    assert_eq!(
        drops,
        [(
            "Backport the fix".to_string(),
            format!("dropped by provenance (`Upstream-Commit:` trailer): the release contains {}", &fix[..12])
        )]
    );
}

#[test]
fn fewer_pull_request_trailers_and_rebasebot_subjects_follow_the_release() {
    let a = lines("a", 20);
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &lines("b", 10))]);
    // Upstream squash-merges #12 and merges #34 with a merge commit.
    fx.upstream.commit("Parser fix (#12)", &[("a.txt", &edit(&a, &[(2, "a two (pr 12, final)")]))]);
    fx.upstream.git(&["checkout", "--quiet", "-b", "topic"]);
    let merged = edit(&a, &[(2, "a two (pr 12, final)"), (10, "a ten (pr 34, final)")]);
    fx.upstream.commit("Topic work", &[("a.txt", &merged)]);
    fx.upstream.git(&["checkout", "--quiet", "main"]);
    fx.upstream.git(&["merge", "--quiet", "--no-ff", "-m", "Merge pull request #34 from someone/topic", "topic"]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    // The fork carried early versions of both, which would now conflict.
    fx.fork.commit(
        "Parser fix, early\n\nUpstream-PR: test/upstream#12\n",
        &[("a.txt", &edit(&a, &[(2, "a two (early)")]))],
    );
    let early = edit(&a, &[(2, "a two (early)"), (10, "a ten (early)")]);
    fx.fork.commit("UPSTREAM: 34: topic, early", &[("a.txt", &early)]);
    fx.fork.commit("UPSTREAM: <drop>: debug logging", &[("b.txt", &edit(&lines("b", 10), &[(1, "debug")]))]);
    let ours = edit(&lines("b", 10), &[(1, "debug"), (5, "ours")]);
    fx.fork.commit("UPSTREAM: <carry>: our change\n\nUpstream-PR: 12\n", &[("b.txt", &ours)]);
    fx.fork.commit("UPSTREAM: 99: not merged yet", &[("c.txt", "c\n")]);
    fx.install_rebase_flow("");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "changed", "{rebase}");
    assert_eq!(carried(&rebase), ["UPSTREAM: <carry>: our change", "UPSTREAM: 99: not merged yet"]);
    let drops = drops(&rebase);
    let subjects: Vec<&str> = drops.iter().map(|(subject, _)| subject.as_str()).collect();
    assert_eq!(subjects, ["Parser fix, early", "UPSTREAM: 34: topic, early", "UPSTREAM: <drop>: debug logging"]);
    let squash = fx.upstream.rev("main^1");
    let merge = fx.upstream.rev("main");
    assert!(
        drops[0].1.starts_with(&format!(
            "dropped by provenance (`Upstream-PR:` trailer): the release merged #12 as {}",
            &squash[..12]
        )),
        "{}",
        drops[0].1
    );
    assert!(
        drops[1].1.starts_with(&format!(
            "dropped by provenance (`UPSTREAM: <n>:` subject): the release merged #34 as {}",
            &merge[..12]
        )),
        "{}",
        drops[1].1
    );
    assert_eq!(drops[2].1, "dropped by provenance (`UPSTREAM: <drop>:` subject)");
}

#[test]
fn fewer_provenance_off_replays_what_git_rebase_would() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a)]);
    fx.upstream.commit("Upstream: line 4 (#5)", &[("a.txt", &edit(&a, &[(4, "a four (upstream)")]))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.fork.commit("UPSTREAM: 5: line 4, early", &[("a.txt", &edit(&a, &[(4, "a four (early)")]))]);
    install_flow_with(&fx, "  provenance: false\n", "");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
}

#[test]
fn fewer_conflict_report_lists_the_drops_before_the_stop() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a)]);
    fx.upstream.commit("Upstream: line 4", &[("a.txt", &edit(&a, &[(4, "a four (upstream)")]))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.fork.commit("UPSTREAM: <drop>: scaffolding", &[("s.txt", "s\n")]);
    fx.fork.commit("Fork: line 4", &[("a.txt", &edit(&a, &[(4, "a four (fork)")]))]);
    fx.install_rebase_flow("");

    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    let markdown = std::fs::read_to_string(rebase["artifacts"]["reportMarkdown"].as_str().unwrap()).unwrap();
    assert!(markdown.contains("### Patches dropped (1)"), "{markdown}");
    assert!(
        markdown.contains("UPSTREAM: <drop>: scaffolding: dropped by provenance (`UPSTREAM: <drop>:` subject)"),
        "{markdown}"
    );
}

/// The released fixture with a second fork patch, a bare `origin` that
/// refuses non-fast-forward pushes, and two flows: `fork` (the default,
/// `land: rebase`) and `landed` (`land: merge`, candidates `landed/<tag>`).
fn landing_fixture() -> (Fixture, common::Repo) {
    let fx = Fixture::released();
    fx.fork.commit("Fork patch 2", &[("c.txt", "fork c\n")]);
    let origin = common::Repo::init_bare(&fx.tmp.path().join("origin.git"));
    origin.git(&["config", "receive.denyNonFastForwards", "true"]);
    fx.fork.git(&["remote", "set-url", "origin", origin.path_str()]);
    fx.fork.git(&["push", "--quiet", "origin", "patches"]);
    fx.install_rebase_flow("");
    let yaml = format!(
        "name: landed\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v*\"}}\n\
         stack:\n  upstream: {}\n  branch: patches\n  candidate: \"landed/{{tag}}\"\n  land: merge\n\
         steps:\n  - name: rebase\n    uses: rebase\n",
        fx.upstream.path_str()
    );
    fx.fork.write(".codex/flows/landed/flow.yml", &yaml);
    (fx, origin)
}

/// The rebase step of flow `flow` in a run.
fn rebase_of(run: &common::Run, flow: &str) -> serde_json::Value {
    run.json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["flow"] == flow && step["step"] == "rebase")
        .cloned()
        .unwrap_or_else(|| panic!("no rebase of {flow}:\n{}", run.stdout))
}

#[test]
fn fewer_land_merge_candidate_promotes_by_fast_forward_with_the_default_tree() {
    let (fx, origin) = landing_fixture();
    let old_head = fx.fork.rev("patches");
    let run = fx.run_release("v1.1.0", &[]);
    let (rebased, landed) = (rebase_of(&run, "fork"), rebase_of(&run, "landed"));
    assert_eq!(landed["status"], "changed", "{}", run.stderr);
    assert_eq!(carried(&landed), carried(&rebased));
    let candidate = landed["artifacts"]["candidateRefs"][0]["sha"].as_str().unwrap().to_string();
    // The same tree as the default candidate, reached from the old head.
    assert_eq!(fx.fork.rev("landed/v1.1.0^{tree}"), fx.fork.rev("patchmoi/v1.1.0^{tree}"));
    assert!(fx.fork.git_output(&["merge-base", "--is-ancestor", &old_head, &candidate]).status.success());
    // Below the patches: the land merge, old head first, the release's tree.
    let merge = fx.fork.rev("landed/v1.1.0~2");
    assert_eq!(
        fx.fork.git(&["show", "-s", "--format=%P", &merge]),
        format!("{old_head} {}", fx.upstream.rev("v1.1.0"))
    );
    assert_eq!(fx.fork.rev(&format!("{merge}^{{tree}}")), fx.upstream.rev("v1.1.0^{tree}"));
    assert_eq!(
        fx.fork.git(&["show", "-s", "--format=%an <%ae> %ad", "--date=raw", &merge]),
        format!(
            "patchmoi <patchmoi@users.noreply.github.com> {}",
            fx.upstream.git(&["show", "-s", "--format=%cd", "--date=raw", "v1.1.0"])
        )
    );
    assert_eq!(fx.fork.git(&["show", "-s", "--format=%(trailers:key=Patchmoi-Land,valueonly)", &merge]), "v1.1.0");
    // A second run writes the same commits.
    let again = rebase_of(&fx.run_release("v1.1.0", &["--replay"]), "landed");
    assert_eq!(again["artifacts"]["candidateRefs"][0]["sha"], candidate.as_str());

    // Promotion: a plain push the non-fast-forward-refusing remote takes.
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let run = fx.patchmoi(&["promote", "--flow", "landed", "--tag", "v1.1.0", "--push", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let promotion = run.json();
    assert_eq!(promotion["fast_forward"], true);
    assert_eq!(promotion["remote_backup"], serde_json::Value::Null);
    assert_eq!(promotion["backup"], serde_json::Value::Null);
    assert_eq!(fx.fork.rev("patches"), candidate);
    assert_eq!(origin.rev("refs/heads/patches"), candidate);
}

#[test]
fn fewer_second_release_after_landing_replays_only_the_fork_patches() {
    let (fx, _origin) = landing_fixture();
    fx.run_release("v1.1.0", &[]);
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let run = fx.patchmoi(&["promote", "--flow", "landed", "--tag", "v1.1.0"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    fx.fork.git(&["checkout", "--quiet", "patches"]);
    fx.fork.commit("Late patch", &[("late.txt", "late\n")]);
    let head = fx.fork.rev("patches");
    fx.upstream.commit("Upstream: more", &[("d.txt", "d\n")]);
    fx.upstream.git(&["tag", "v1.2.0"]);

    let run = fx.run_release("v1.2.0", &[]);
    for flow in ["landed", "fork"] {
        let rebase = rebase_of(&run, flow);
        assert_eq!(rebase["status"], "changed", "{flow}: {}", run.stderr);
        // The patches above the land merge, once; nothing below it again.
        assert_eq!(carried(&rebase), ["Fork patch", "Fork patch 2", "Late patch"], "{flow}");
        assert_eq!(drops(&rebase), [], "{flow}");
    }
    assert_eq!(fx.fork.rev("landed/v1.2.0^{tree}"), fx.fork.rev("patchmoi/v1.2.0^{tree}"));
    assert!(fx.fork.git_output(&["merge-base", "--is-ancestor", &head, "landed/v1.2.0"]).status.success());
    assert_eq!(fx.fork.git(&["rev-list", "--count", "--merges", "patches..landed/v1.2.0"]), "1");
}

/// A Cargo workspace (path dependencies only, so cargo needs no network)
/// whose `Cargo.lock` the fork and upstream both change: upstream bumps
/// `dep`, the fork adds a crate `extra`. Only `Cargo.lock` conflicts.
fn cargo_fixture(rule: &str) -> Fixture {
    let manifest = |name: &str, version: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n")
    };
    let lock = |packages: &[(&str, &str)]| {
        let mut text = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n".to_string();
        for (name, version) in packages {
            text.push_str(&format!("\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n"));
        }
        text
    };
    let fx = Fixture::new(&[
        ("Cargo.toml", "[workspace]\nmembers = [\"dep\"]\nresolver = \"2\"\n"),
        ("dep/Cargo.toml", &manifest("dep", "0.1.0")),
        ("dep/src/lib.rs", ""),
        ("Cargo.lock", &lock(&[("dep", "0.1.0")])),
        (".gitignore", "target/\n"),
    ]);
    fx.upstream.commit(
        "Bump dep",
        &[("dep/Cargo.toml", &manifest("dep", "0.2.0")), ("Cargo.lock", &lock(&[("dep", "0.2.0")]))],
    );
    fx.upstream.git(&["tag", "v1.1.0"]);
    fx.fork.commit(
        "Add extra",
        &[
            ("Cargo.toml", "[workspace]\nmembers = [\"dep\", \"extra\"]\nresolver = \"2\"\n"),
            ("extra/Cargo.toml", &manifest("extra", "0.1.0")),
            ("extra/src/lib.rs", ""),
            ("Cargo.lock", &lock(&[("dep", "0.1.0"), ("extra", "0.1.0")])),
        ],
    );
    fx.fork.commit("Fork: readme", &[("README", "fork\n")]);
    install_flow_with(&fx, rule, "");
    fx
}

#[test]
fn fewer_cargo_lock_conflict_is_regenerated_and_the_replay_goes_on() {
    let fx = cargo_fixture("  regenerate:\n    - paths: [\"Cargo.lock\", \"**/Cargo.lock\"]\n      run: cargo update --workspace --offline\n");
    let run = fx.run_release("v1.1.0", &[]);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "changed", "{rebase}\n{}", run.stderr);
    assert_eq!(carried(&rebase), ["Add extra", "Fork: readme"]);
    let message = rebase["message"].as_str().unwrap();
    assert!(
        message.contains("regenerated `Cargo.lock` in patch \"Add extra\" with `cargo update --workspace --offline`"),
        "{message}"
    );
    let lock = fx.fork.git(&["show", "patchmoi/v1.1.0:Cargo.lock"]);
    assert!(lock.contains("name = \"dep\"\nversion = \"0.2.0\"") && lock.contains("name = \"extra\""), "{lock}");
    assert!(!lock.contains("<<<<<<<"), "{lock}");
    // The regenerated commit keeps its author and message, with a trailer.
    let commit = fx.fork.git(&["show", "-s", "--format=%an%n%B", "patchmoi/v1.1.0~1"]);
    assert!(commit.starts_with("Test Author\nAdd extra\n"), "{commit}");
    assert!(commit.contains("Patchmoi-Regenerated: Cargo.lock (`cargo update --workspace --offline`)"), "{commit}");
}

#[test]
fn fewer_failing_regeneration_falls_back_to_the_conflict_report_with_its_log() {
    let fx = cargo_fixture("  regenerate:\n    - paths: [Cargo.lock]\n      run: echo cannot regenerate; exit 3\n");
    let rebase = fx.run_release("v1.1.0", &[]).step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Add extra");
    let message = rebase["message"].as_str().unwrap();
    assert!(
        message.contains("regeneration refused: `echo cannot regenerate; exit 3` failed with exit code 3"),
        "{message}"
    );
    let log = std::fs::read_to_string(rebase["artifacts"]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("cannot regenerate"), "{log}");
}

#[test]
fn fewer_regeneration_that_changes_files_outside_its_paths_is_refused() {
    let command = "cargo update --workspace --offline && echo '// stray' >> dep/src/lib.rs";
    let fx = cargo_fixture(&format!("  regenerate:\n    - paths: [Cargo.lock]\n      run: \"{command}\"\n"));
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rebase = run.step("rebase");
    assert_eq!(rebase["status"], "needs_intervention", "{rebase}");
    // The normal conflict report, for the patch whose Cargo.lock conflicts.
    assert_eq!(rebase["artifacts"]["conflict"]["patch"]["subject"], "Add extra");
    assert_eq!(rebase["artifacts"]["conflict"]["files"][0]["path"], "Cargo.lock");
    let message = rebase["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "regeneration refused: `{command}` changed files its rule does not cover: dep/src/lib.rs"
        )),
        "the rule and the stray file are named: {message}"
    );
    assert!(
        fx.fork.git_output(&["rev-parse", "--verify", "--quiet", "refs/heads/patchmoi/v1.1.0"]).stdout.is_empty(),
        "no candidate"
    );
    let log = rebase["artifacts"]["log"].as_str().unwrap();
    assert!(log.ends_with("regenerate-1.log") && std::path::Path::new(log).is_file(), "the rule's log: {log}");
}
