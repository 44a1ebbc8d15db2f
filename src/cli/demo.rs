//! `patchmoi demo`: a small upstream with three releases and a fork carrying
//! four patches, built with real git in a temporary directory. The flow runs
//! for two releases: one where upstream adopted a patch (dropped) and the
//! rest carry over, and one where a patch conflicts with an upstream change
//! (report with culprit). No network, no GitHub account.

use std::path::Path;

use anyhow::{Context, Result};

use super::shared::{run_recorded, run_settings, workspace_data_dir};
use crate::core::env::Env;
use crate::core::error;
use crate::flow::event::{now, FlowEvent};
use crate::flow::flows;
use crate::flow::report::{conflict_markdown, run_text};
use crate::flow::state::StateDir;
use crate::git::fixture::{FixtureRepo, Person};
use crate::service::attempt::Operation;

const GREET_V1: &str = "#!/bin/sh\n# greet: print a greeting\nname=\"${1:-world}\"\necho \"Hello, $name!\"\n";
const GREET_SHOUT: &str =
    "#!/bin/sh\n# greet: print a greeting\nshout=\nif [ \"$1\" = \"--shout\" ]; then shout=1; shift; fi\n\
name=\"${1:-world}\"\nmessage=\"Hello, $name!\"\n\
if [ -n \"$shout\" ]; then message=$(echo \"$message\" | tr '[:lower:]' '[:upper:]'); fi\necho \"$message\"\n";
const README_V1: &str = "# greeter\n\nA tiny greeter. Say helo with `sh greet.sh NAME`.\n";
const README_FIXED: &str = "# greeter\n\nA tiny greeter. Say hello with `sh greet.sh NAME`.\n";
const CONFIG_V1: &str = "[server]\nhost = \"127.0.0.1\"\nport = 3000\n";

/// Builds the demo in `dir` (or a new temporary directory), runs it, prints it.
pub fn run(dir: Option<&Path>, env: &Env) -> Result<()> {
    let root = match dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                return Err(error::usage(format!("--dir {} is not empty", dir.display())));
            }
            // Absolute: the fork's git runs in its own directory, where a
            // relative path to the upstream would point elsewhere.
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create --dir {}", dir.display()))?;
            dir.canonicalize().with_context(|| format!("failed to resolve --dir {}", dir.display()))?
        }
        None => tempfile::Builder::new().prefix("patchmoi-demo-").tempdir()?.keep(),
    };
    let upstream_dir = root.join("upstream");
    let fork_dir = root.join("fork");

    let upstream = FixtureRepo::init(&upstream_dir)?;
    let (ursula, fiona) = (Person::example("Ursula Upstream"), Person::example("Fiona Fork"));
    upstream.commit_as(
        &ursula,
        &[("README.md", README_V1), ("greet.sh", GREET_V1), ("config.toml", CONFIG_V1)],
        "Initial greeter",
    )?;
    upstream.tag("v1.0.0")?;

    let fork = FixtureRepo::init(&fork_dir)?;
    let upstream_path = upstream_dir.to_str().context("demo path is not UTF-8")?;
    fork.fetch_tag(upstream_path, "v1.0.0")?;
    fork.branch_at("patches", "v1.0.0")?;
    fork.commit_as(&fiona, &[("greet.sh", GREET_SHOUT)], "Add a --shout option")?;
    fork.commit_as(&fiona, &[("README.md", README_FIXED)], "Fix typo in README")?;
    fork.commit_as(&fiona, &[("config.toml", &CONFIG_V1.replace("3000", "8080"))], "Listen on port 8080 by default")?;
    let documented = format!("{README_FIXED}\nPass `--shout` to shout.\n");
    fork.commit_as(&fiona, &[("README.md", &documented)], "Document --shout")?;

    upstream.commit_as(&ursula, &[("README.md", README_FIXED)], "Fix typo in README")?;
    upstream.commit_as(&ursula, &[("CHANGELOG.md", "# Changes\n\n## 1.1.0\n- Typo fixes.\n")], "Add a changelog")?;
    upstream.tag("v1.1.0")?;
    let config_v2 = "[server]\nhost = \"127.0.0.1\"\nport = 3000 # overridden by $PORT\n";
    upstream.commit_as(&ursula, &[("config.toml", config_v2)], "Read the port from $PORT")?;
    upstream.commit_as(
        &ursula,
        &[("CHANGELOG.md", "# Changes\n\n## 2.0.0\n- The port comes from $PORT.\n\n## 1.1.0\n- Typo fixes.\n")],
        "Changelog for 2.0.0",
    )?;
    upstream.tag("v2.0.0")?;

    let flow_dir = fork_dir.join(".codex/flows/demo-fork");
    std::fs::create_dir_all(&flow_dir).with_context(|| format!("failed to create {}", flow_dir.display()))?;
    let flow_file = flow_dir.join("flow.yml");
    std::fs::write(&flow_file, flow_yaml(upstream_path))
        .with_context(|| format!("failed to write {}", flow_file.display()))?;
    // The flow file is installed, not part of the patch stack.
    let exclude = fork_dir.join(".git/info/exclude");
    std::fs::write(&exclude, ".codex/\n").with_context(|| format!("failed to write {}", exclude.display()))?;

    println!("patchmoi demo in {}\n", root.display());
    println!("upstream  {}  releases v1.0.0, v1.1.0, v2.0.0", upstream_dir.display());
    println!("fork      {}  branch `patches` = v1.0.0 + 4 patches:", fork_dir.display());
    println!("{}\n", indent(&fork.oneline_log("v1.0.0..patches", true)?));

    let flows = flows::discover(&fork_dir)?;
    let selected: Vec<&flows::Flow> = flows.iter().collect();
    let settings = run_settings(env, fork_dir.clone(), None, false, true, true);
    let data_dir = workspace_data_dir(None, env, &fork_dir);
    for tag in ["v1.1.0", "v2.0.0"] {
        println!("== upstream releases {tag}: patchmoi run upstream-release --repo demo/greeter --tag {tag}\n");
        let event = FlowEvent::upstream_release("demo/greeter", tag, now());
        // Recorded as `run` records it, so `patchmoi history` in the fork
        // shows the whole loop, this first run included.
        let (report, recorded) = run_recorded(&settings, &selected, &event, &data_dir, Operation::Dispatch, env)?;
        let report = report?;
        recorded?;
        println!("{}", run_text(&report));
        for run in &report.runs {
            if let Some(conflict) = &run.artifacts.conflict {
                println!("{}", conflict_markdown(conflict, tag));
            }
        }
    }
    let candidate_log = fork.oneline_log("refs/patchmoi/upstream/tags/v1.1.0..patchmoi/v1.1.0", false)?;
    println!(
        "The candidate for v1.1.0 carries 3 patches (the typo fix is upstream now):\n{}\n",
        indent(&candidate_log)
    );
    println!("Files:");
    println!("  state      {}", StateDir::of(&fork_dir).state_file().display());
    println!("  reports    {}", StateDir::of(&fork_dir).dir.join("runs").display());
    println!("  flow       {}", flow_dir.join("flow.yml").display());
    println!("Look around: cd {} && git log --oneline --graph patches patchmoi/v1.1.0", fork_dir.display());
    println!(
        "Resolve the v2.0.0 conflict once: cd {} && patchmoi resolve --flow demo-fork --tag v2.0.0",
        fork_dir.display()
    );
    Ok(())
}

fn flow_yaml(upstream: &str) -> String {
    format!(
        r#"name: demo-fork
description: Rebase the demo fork's patches onto each greeter release
on:
  type: upstream.release
  payload:
    repo: demo/greeter
    tag: "v*"
stack:
  upstream: {upstream}
  branch: patches
steps:
  - name: rebase-patch-stack
    uses: rebase
  - name: test
    run: sh greet.sh --shout demo | grep 'HELLO, DEMO!'
    timeout: 1m
  - name: agent-repair
    runner: code-mode
    if: needs_intervention
    run: echo "an agent would resolve $PATCHMOI_CONFLICT_REPORT in $PATCHMOI_WORKTREE"
"#
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}
