//! `run` without a workspace backend: the runner runs in-process and the
//! event, dispatch and attempt land in DATA_DIR; `sync` reads the state
//! file; `setup fork` checks a real checkout.

use crate::common;

use common::Fixture;

/// [`Fixture::released`] with the usual rebase flow installed.
fn released_fixture() -> Fixture {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    fx
}

#[test]
fn local_runs_record_an_attempt_with_their_results() {
    let fx = released_fixture();
    let data = fx.tmp.path().join("data");
    let data = data.to_str().unwrap();
    let run = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json"],
        &[("DATA_DIR", data), ("CODEX_WORKSPACE_MODE", "actions")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["status"], "changed", "the run report is unchanged on stdout");
    let attempts = common::patchmoi(&fx.fork.dir, &["attempts", "--json"], &[("DATA_DIR", data)]);
    let attempt = &attempts.json()["attempts"][0];
    assert_eq!(attempt["status"], "changed", "{attempt}");
    assert_eq!(attempt["transport"], "actions-local");
    assert_eq!(attempt["candidateRefs"][0]["ref"], "refs/heads/patchmoi/v1.1.0");
    let id = attempt["id"].as_str().unwrap();
    let synced = common::patchmoi(&fx.fork.dir, &["sync", id, "--json"], &[("DATA_DIR", data)]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert_eq!(synced.json()["attempt"]["status"], "changed");
    // The default DATA_DIR (./data in the checkout) ignores itself.
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fx.fork.dir.join("data/patchmoi.sqlite3").exists());
    assert_eq!(fx.fork.git(&["status", "--porcelain"]), "");
}

#[test]
fn setup_fork_reports_what_is_missing_and_applies_a_starter_flow() {
    let fx = released_fixture();
    let upstream = fx.upstream.path_str();
    let path = fx.fork.path_str();
    let check = common::patchmoi(
        &fx.fork.dir,
        &["setup", "fork", "--path", path, "--upstream-url", upstream, "--branch", "nope", "--json"],
        &[],
    );
    assert_eq!(check.code, 1);
    let report = check.json();
    assert_eq!(report["ready"], false);
    assert!(report["issues"][0].as_str().unwrap().contains("branch nope does not exist"), "{report}");
    let apply = common::patchmoi(
        &fx.fork.dir,
        &["setup", "fork", "--path", path, "--upstream-url", upstream, "--branch", "patches", "--apply", "--json"],
        &[],
    );
    assert_eq!(apply.code, 0, "{}", apply.stdout);
    assert_eq!(apply.json()["ready"], true);
    let flow = fx.fork.read(".codex/flows/patches/flow.yml");
    assert!(flow.contains("branch: patches") && flow.contains("uses: rebase"), "{flow}");
    assert!(fx.fork.dir.join(".github/workflows/patchmoi.yml").exists());
    let dry = fx.patchmoi(&["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--dry-run"], &[]);
    assert!(dry.stdout.contains("patches/rebase-patch-stack"), "{}", dry.stdout);
}
