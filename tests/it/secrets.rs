//! Secrets never reach a step that did not ask for them, and never land in
//! anything patchmoi writes or prints: run mode here, the Action in
//! `action::secrets`. Each step dumps its parent's environment
//! (`/proc/$PPID/environ`: the step's supervisor), its grandparent's
//! (patchmoi's) and its own into its log, and every file patchmoi
//! wrote is searched for each secret value.

use std::path::Path;

use crate::common::{Fixture, Run};
use crate::server::{call, serve};

/// Credentials as a job or a shell would have them, by name and pattern.
pub const SECRETS: &[(&str, &str)] = &[
    ("GITHUB_TOKEN", "ghp_runModeToken0123456789abcdef"),
    ("OPENAI_API_KEY", "sk-test-openai-key-0123456789"),
    ("FORK_DEPLOY_KEY", "deploy-key-value-0123456789"),
    ("MY_DB_PASSWORD", "hunter2-but-longer-0123"),
    ("ACTIONS_RUNTIME_TOKEN", "actions-runtime-token-0123456789"),
];

/// Steps that print their parent's environment and their own, and one that
/// names the secret it needs.
pub const STEPS: &str = "  - name: dump\n    run: |\n      \
     tr '\\0' '\\n' < /proc/$PPID/environ\n      env\n      \
     if tr '\\0' '\\n' < /proc/$PPID/environ | grep -E '^(GITHUB_TOKEN|OPENAI_API_KEY|FORK_DEPLOY_KEY|MY_DB_PASSWORD|ACTIONS_RUNTIME_TOKEN|INPUT_TOKEN)='; then exit 1; fi\n      \
     GP=$(cut -d' ' -f4 /proc/$PPID/stat)\n      tr '\\0' '\\n' < /proc/$GP/environ\n      \
     if tr '\\0' '\\n' < /proc/$GP/environ | grep -E '^(GITHUB_TOKEN|OPENAI_API_KEY|FORK_DEPLOY_KEY|MY_DB_PASSWORD|ACTIONS_RUNTIME_TOKEN|INPUT_TOKEN)='; then exit 1; fi\n      \
     if env | grep -E '^(GITHUB_TOKEN|OPENAI_API_KEY|FORK_DEPLOY_KEY|MY_DB_PASSWORD|ACTIONS_RUNTIME_TOKEN|INPUT_TOKEN|SSH_AUTH_SOCK)='; then exit 1; fi\n      \
     test -n \"$PATH\" && test -n \"$HOME\"\n\
     \x20 - name: agent\n    secrets: [OPENAI_API_KEY]\n    run: |\n      \
     test \"${#OPENAI_API_KEY}\" = 29 && test \"${OPENAI_API_KEY#sk-test-}\" != \"$OPENAI_API_KEY\"\n      \
     echo \"the agent prints key=$OPENAI_API_KEY\"\n      test -z \"${GITHUB_TOKEN:-}\"\n";

/// Every file below `dir` (or `dir` itself when it is a file; git's object
/// store left out: compressed), with its path, as lossy text.
pub fn files_below(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if dir.is_file() {
        let text = String::from_utf8_lossy(&std::fs::read(dir).unwrap()).into_owned();
        return vec![(dir.display().to_string(), text)];
    }
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.ends_with(".git/objects") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    found
}

/// No secret value in the run's output or in any file below `dirs`.
pub fn assert_nowhere(run: &Run, dirs: &[&Path], secrets: &[(&str, &str)]) {
    let mut texts = vec![("stdout".to_string(), run.stdout.clone()), ("stderr".to_string(), run.stderr.clone())];
    for dir in dirs {
        texts.extend(files_below(dir));
    }
    for (name, value) in secrets {
        for (place, text) in &texts {
            assert!(!text.contains(value), "{name} leaked into {place}:\n{text}");
        }
    }
}

#[test]
fn run_steps_get_the_allowlist_and_the_secrets_they_name_and_nothing_is_written_in_clear() {
    let fx = Fixture::released();
    fx.install_rebase_flow(STEPS);
    let mut env = SECRETS.to_vec();
    env.push(("SSH_AUTH_SOCK", "/tmp/patchmoi-test-agent.sock"));
    let run = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--data-dir", "data"],
        &env,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.step("dump")["status"], "completed", "{}", run.stdout);
    assert_eq!(run.step("agent")["status"], "completed", "{}", run.stdout);
    let agent_log = std::fs::read_to_string(run.step("agent")["artifacts"]["log"].as_str().unwrap()).unwrap();
    assert!(agent_log.contains("the agent prints key=***"), "{agent_log}");
    let dump_log = std::fs::read_to_string(run.step("dump")["artifacts"]["log"].as_str().unwrap()).unwrap();
    assert!(dump_log.contains("PATCHMOI_TAG=v1.1.0"), "the step's own variables are there: {dump_log}");
    assert_nowhere(&run, &[&fx.fork.dir], SECRETS);
}

#[test]
fn a_step_that_names_a_secret_nobody_set_is_blocked_and_says_which() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: agent\n    secrets: [OPENAI_API_KEY]\n    run: 'true'\n");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let agent = run.step("agent");
    assert_eq!(agent["status"], "blocked");
    assert!(agent["message"].as_str().unwrap().contains("needs the secret OPENAI_API_KEY"), "{agent}");
}

#[test]
fn secrets_are_named_like_variables_and_only_on_run_steps() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: agent\n    secrets: [\"OPENAI API KEY\"]\n    run: 'true'\n");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("steps[1].secrets: `OPENAI API KEY` is not an environment variable name"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_replay_over_http_runs_steps_without_the_services_secrets_and_stores_none() {
    let fx = Fixture::released();
    fx.install_rebase_flow(STEPS);
    let service_secrets =
        [("PATCH_ADMIN_TOKEN", "admin-token-for-secrets-0123"), ("PATCH_WEBHOOK_SECRET", "webhook-secret-0123456")];
    let mut env: Vec<(&str, &str)> = SECRETS.iter().chain(&service_secrets).copied().collect();
    env.push(("SSH_AUTH_SOCK", "/tmp/patchmoi-test-agent.sock"));
    let first = fx.patchmoi(
        &["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0", "--json", "--data-dir", "state"],
        &env,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let server = serve(&fx.fork.dir, &env);
    let id = "patch%3Aupstream.release%3Atest%2Fupstream%3Av1.1.0";
    let auth = [("authorization", "Bearer admin-token-for-secrets-0123")];
    let (status, body) = call("POST", &format!("{}/flow-events/{id}/replay", server.url), &auth, None);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["attempt"]["status"], "changed", "{body}");
    let everything: Vec<(&str, &str)> = SECRETS.iter().chain(&service_secrets).copied().collect();
    let answer = Run { code: 0, stdout: body.to_string(), stderr: first.stderr.clone() };
    assert_nowhere(&answer, &[&fx.fork.dir], &everything);
}
