//! The secrets test of `crate::secrets` in the Action: the job's
//! credential variables (GITHUB_TOKEN, OPENAI_API_KEY, ACTIONS_RUNTIME_TOKEN,
//! …) reach no step that did not name them, and no output, summary, log,
//! state file or request.

use crate::secrets::{assert_nowhere, SECRETS, STEPS};

use super::Setup;

#[test]
fn job_credentials_reach_only_the_steps_that_name_them_and_nothing_written() {
    let s = Setup::new();
    s.fx.install_rebase_flow(STEPS);
    let run = s.action(&s.dispatch("v1.1.0"), SECRETS);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.output("status"), "changed");
    let state = s.gh.state();
    for step in ["dump", "agent"] {
        let runs = super::runs_named(&state.check_runs, &format!("patchmoi / fork / {step}"));
        assert_eq!(runs[0]["conclusion"], "success", "{step}: {}", runs[0]);
    }
    assert!(run.stdout.contains("the agent prints key=***"), "{}", run.stdout);
    let summary = s.dir.join("summary.md");
    assert_nowhere(&run, &[&s.workspace, &summary, &s.dir.join("output")], SECRETS);
    for (name, value) in SECRETS {
        assert!(!state.seen.contains(value), "{name} reached GitHub");
    }
}
