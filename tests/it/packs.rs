//! codex-flows `flow.toml` flows and packs, as a user meets them: the
//! fixture pack `tests/fixtures/packs/codex-flows` is shaped like the
//! codex-flows repository (`openai-codex-bindings`, a Bun step, and
//! `peezy-codex-fork`, a Code Mode step, both for `upstream.release` of
//! `openai/codex`). `bun` and `codex app-server` are stand-in scripts on
//! PATH that record what they were given.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{self, Repo, Run};

mod install;
mod plugins_hooks;
mod real_bun;
mod update;

/// The fixture pack.
fn fixture_pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packs/codex-flows")
}

/// A repository to install into, with one commit, and a folder for the
/// stand-ins' records.
struct Workspace {
    tmp: tempfile::TempDir,
    repo: Repo,
}

impl Workspace {
    fn new() -> Workspace {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("workspace"));
        repo.commit("Initial import", &[("README.md", "workspace\n")]);
        std::fs::create_dir_all(tmp.path().join("seen")).unwrap();
        std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
        Workspace { tmp, repo }
    }

    fn root(&self) -> &Path {
        &self.repo.dir
    }

    /// Where the stand-ins write what they saw.
    fn seen(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join("seen").join(name)).unwrap_or_default()
    }

    /// Copies a flow of the fixture pack to `.codex/flows/<name>`, as
    /// `pack add` would.
    fn install_by_hand(&self, name: &str) {
        copy_dir(&fixture_pack().join("flows").join(name), &self.root().join(".codex/flows").join(name));
    }

    /// A PATH with the stand-ins first, then the test's own.
    fn path(&self) -> String {
        format!("{}:{}", self.tmp.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// An executable stand-in in the `bin` folder.
    fn stand_in(&self, name: &str, script: &str) {
        let path = self.tmp.path().join("bin").join(name);
        let script = script.replace("SEEN", &self.tmp.path().join("seen").display().to_string());
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn patchmoi(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut full = args.to_vec();
        full.extend(["--workspace-root", self.repo.path_str()]);
        let data = self.tmp.path().join("data");
        let mut env = env.to_vec();
        env.push(("DATA_DIR", data.to_str().unwrap()));
        common::patchmoi(self.root(), &full, &env)
    }

    fn codex_release(&self, tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec!["run", "codex-release", "--tag", tag, "--json"];
        args.extend_from_slice(extra);
        self.patchmoi(&args, env)
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A stand-in `bun` that records its arguments, directory, environment and
/// stdin, then prints the answer the test left in `seen/answer` and exits
/// with the code in `seen/exit` (0 without one).
const BUN: &str = r#"#!/bin/bash
cat > SEEN/stdin.json
printf '%s\n' "$@" > SEEN/args
pwd > SEEN/cwd
env | sort > SEEN/env
echo "bun stand-in ran"
cat SEEN/answer 2>/dev/null
exit "$(cat SEEN/exit 2>/dev/null || echo 0)"
"#;

#[test]
fn codex_release_selects_both_installed_steps_and_gates_code_mode() {
    let ws = Workspace::new();
    ws.install_by_hand("openai-codex-bindings");
    ws.install_by_hand("peezy-codex-fork");
    let want =
        ["openai-codex-bindings/regenerate-bindings:bun:false", "peezy-codex-fork/rebase-patch-stack:code-mode:true"];
    assert_eq!(ws.codex_release("rust-v0.130.0", &["--dry-run"], &[]).matches(), want);
    let open = ws.codex_release("rust-v0.130.0", &["--dry-run"], &[("CODEX_FLOWS_MODE", "code-mode")]);
    assert_eq!(open.matches()[1], "peezy-codex-fork/rebase-patch-stack:code-mode:false");
    // The schema's enum: another repository's release selects nothing.
    let other = ws.patchmoi(
        &["run", "upstream-release", "--repo", "other/codex", "--tag", "rust-v0.130.0", "--dry-run", "--json"],
        &[],
    );
    assert!(other.matches().is_empty());
    // A stored event, as the feed records it (more payload keys), selects both.
    let event = json!({"id": "patch:github-openai-codex-releases:tag:github.com,2008:Repository/965415649/rust-v0.130.0:upstream.release",
        "type": "upstream.release", "source": "patch", "receivedAt": "2026-05-18T00:00:00.000Z",
        "payload": {"provider": "github", "repo": "openai/codex", "tag": "rust-v0.130.0", "url": "https://github.com/openai/codex/releases/tag/rust-v0.130.0"}});
    let file = ws.tmp.path().join("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let stored = ws.patchmoi(&["run", "event", "--file", file.to_str().unwrap(), "--dry-run", "--json"], &[]);
    assert_eq!(stored.matches(), want);
}

#[test]
fn a_name_shadows_across_formats_installed_first() {
    let ws = Workspace::new();
    // An installed flow.yml named like a repository flow.toml shadows it.
    ws.repo.write(
        ".codex/flows/bindings/flow.yml",
        "name: openai-codex-bindings\non: {type: upstream.release, payload: {repo: openai/codex}}\nsteps: [{name: from-yml, run: 'true'}]\n",
    );
    copy_dir(&fixture_pack().join("flows/openai-codex-bindings"), &ws.root().join("flows/openai-codex-bindings"));
    copy_dir(&fixture_pack().join("flows/peezy-codex-fork"), &ws.root().join("flows/peezy-codex-fork"));
    let run = ws.codex_release("rust-v0.130.0", &["--dry-run"], &[]);
    assert_eq!(
        run.matches(),
        ["openai-codex-bindings/from-yml:default:false", "peezy-codex-fork/rebase-patch-stack:code-mode:true"]
    );
    // Both formats in one directory is a mistake, named.
    ws.repo.write("flows/peezy-codex-fork/flow.yml", "name: x\non: {type: t}\nsteps: [{name: s, run: 'true'}]\n");
    let run = ws.codex_release("rust-v0.130.0", &["--dry-run"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("both flow.yml and flow.toml"), "{}", run.stderr);
}

#[test]
fn bun_steps_get_the_context_the_runtime_variables_and_no_credentials() {
    let ws = Workspace::new();
    ws.install_by_hand("openai-codex-bindings");
    ws.stand_in("bun", BUN);
    std::fs::write(
        ws.tmp.path().join("seen/answer"),
        "FLOW_RESULT {\"status\":\"completed\"}\nFLOW_RESULT {\"status\":\"changed\",\"message\":\"bindings regenerated for 0.130.0\",\"artifacts\":{\"version\":\"0.130.0\"}}\n",
    )
    .unwrap();
    let path = ws.path();
    let env = [
        ("PATH", path.as_str()),
        ("GITHUB_TOKEN", "ghs_supersecret"),
        ("OPENAI_API_KEY", "sk-forwarded-secret"),
        ("CODEX_HOME", "/codex-home"),
        ("CODEX_FLOW_BACKEND_FORWARD_ENV", "MY_SETTING,OPENAI_API_KEY"),
        ("MY_SETTING", "on"),
        ("NOT_FORWARDED", "x"),
    ];
    let run = ws.codex_release("rust-v0.130.0", &[], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let step = run.step("regenerate-bindings");
    assert_eq!(step["status"], "changed", "{step}");
    assert_eq!(step["runner"], "bun");
    assert_eq!(step["message"], "bindings regenerated for 0.130.0");
    assert_eq!(step["artifacts"]["version"], "0.130.0");
    let run_id = step["id"].as_str().unwrap();

    // `bun <script>` in the workspace root: cwd = "../.." from flows/<name>.
    let script = ws.root().join(".codex/flows/openai-codex-bindings/exec/regenerate-bindings.ts");
    assert_eq!(ws.seen("args").trim(), script.to_str().unwrap());
    assert_eq!(ws.seen("cwd").trim(), ws.root().canonicalize().unwrap().to_str().unwrap());
    let context: Value = serde_json::from_str(&ws.seen("stdin.json")).unwrap();
    assert_eq!(context["flow"]["name"], "openai-codex-bindings");
    assert_eq!(context["flow"]["version"], 1);
    assert_eq!(context["flow"]["step"], "regenerate-bindings");
    assert_eq!(context["flow"]["config"]["package_name"], "@peezy.tech/codex-flows");
    assert_eq!(context["flow"]["event"]["payload"]["tag"], "rust-v0.130.0");
    assert_eq!(context["runtime"]["eventId"], "patch:upstream.release:openai/codex:rust-v0.130.0");
    assert_eq!(context["runtime"]["runId"], run_id);
    assert_eq!(context["runtime"]["replay"], false);

    let seen_env = ws.seen("env");
    for line in [
        "CODEX_FLOW_EVENT_ID=patch:upstream.release:openai/codex:rust-v0.130.0".to_string(),
        format!("CODEX_FLOW_RUN_ID={run_id}"),
        format!("CODEX_FLOW_ATTEMPT_ID={run_id}:attempt:1"),
        "CODEX_FLOW_REPLAY=0".into(),
        "CODEX_HOME=/codex-home".into(),
        "MY_SETTING=on".into(),
        "OPENAI_API_KEY=sk-forwarded-secret".into(),
    ] {
        assert!(seen_env.lines().any(|seen| seen == line), "{line} missing from\n{seen_env}");
    }
    assert!(!seen_env.contains("GITHUB_TOKEN") && !seen_env.contains("NOT_FORWARDED"), "{seen_env}");
    // The log keeps the output; secret values never reach it or stdout.
    let log = std::fs::read_to_string(step["artifacts"]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("bun stand-in ran"), "{log}");
    assert!(!run.stdout.contains("sk-forwarded-secret") && !log.contains("sk-forwarded-secret"));
    // The state file has the run like any other.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.root().join(".codex/workspace/actions/flow-client/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["runs"][0]["flowName"], "openai-codex-bindings");
    assert_eq!(state["runs"][0]["status"], "changed");
}

#[test]
fn bun_steps_fail_without_flow_result_and_block_without_bun() {
    let ws = Workspace::new();
    ws.install_by_hand("openai-codex-bindings");
    ws.stand_in("bun", BUN);
    let path = ws.path();
    let run = ws.codex_release("rust-v0.130.0", &[], &[("PATH", &path)]);
    assert_eq!(run.code, 1);
    let step = run.step("regenerate-bindings");
    assert_eq!(step["status"], "failed");
    assert!(step["message"].as_str().unwrap().contains("did not emit FLOW_RESULT"), "{step}");

    std::fs::write(ws.tmp.path().join("seen/exit"), "7").unwrap();
    let run = ws.codex_release("rust-v0.130.0", &["--replay"], &[("PATH", &path)]);
    let step = run.step("regenerate-bindings");
    assert!(step["message"].as_str().unwrap().contains("failed with exit code 7"), "{step}");

    if which("bun").is_ok() {
        eprintln!("skipping the missing-bun case: a real bun is on PATH");
        return;
    }
    let run = ws.codex_release("rust-v0.130.0", &["--replay"], &[]);
    assert_eq!(run.code, 1);
    let step = run.step("regenerate-bindings");
    assert_eq!(step["status"], "blocked", "{step}");
    assert!(step["message"].as_str().unwrap().contains("runner bun is not installed"), "{step}");
}

#[test]
fn module_style_bun_flows_go_through_the_module_runner() {
    let ws = Workspace::new();
    ws.install_by_hand("Release-Notes");
    let event = json!({"id": "e1", "type": "downstream.release", "payload": {"version": "1.0.0"}});
    let file = ws.tmp.path().join("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    // With a stand-in: the module runner comes first, then the script.
    ws.stand_in("bun", BUN);
    let path = ws.path();
    let run = ws.patchmoi(&["run", "event", "--file", file.to_str().unwrap(), "--json"], &[("PATH", &path)]);
    let args: Vec<String> = ws.seen("args").lines().map(str::to_string).collect();
    assert!(args[0].ends_with("bun-module-runner.mjs"), "{args:?}\n{}", run.stderr);
    assert!(args[1].ends_with("flows/Release-Notes/exec/draft.ts"), "{args:?}");
    // With node standing in for bun, the runner really imports the module
    // and prints its result (node runs `export default` modules too).
    let Ok(node) = which("node") else {
        eprintln!("skipping the module runner's real run: node is not on PATH");
        return;
    };
    std::fs::copy(
        fixture_pack().join("flows/Release-Notes/exec/draft.ts"),
        ws.root().join(".codex/flows/Release-Notes/exec/draft.mjs"),
    )
    .unwrap();
    let manifest = ws.root().join(".codex/flows/Release-Notes/flow.toml");
    std::fs::write(&manifest, std::fs::read_to_string(&manifest).unwrap().replace("draft.ts", "draft.mjs")).unwrap();
    ws.stand_in("bun", &format!("#!/bin/sh\nexec {} \"$@\"\n", node.display()));
    let run =
        ws.patchmoi(&["run", "event", "--file", file.to_str().unwrap(), "--json", "--replay"], &[("PATH", &path)]);
    let step = run.step("draft");
    assert_eq!(step["status"], "skipped", "{step}");
    assert_eq!(step["message"], "nothing to draft");
}

pub(crate) fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .ok_or(())
}

/// A stand-in `codex app-server`: checks that `initialize` comes first and
/// `initialized` second, answers the rest of the sequence, asks the client
/// one request of its own, and records every line it read.
const APP_SERVER: &str = r#"#!/bin/bash
printf '%s\n' "$@" > SEEN/app-server-args
pwd > SEEN/app-server-cwd
id_of() { sed -E 's/.*"id":([0-9]+).*/\1/' <<<"$1"; }
read -r line; echo "$line" >> SEEN/rpc
case "$line" in
  *'"method":"initialize"'*) echo "{\"id\":$(id_of "$line"),\"result\":{\"userAgent\":\"stand-in\"}}" ;;
  *) echo "first message was not initialize" >&2; exit 3 ;;
esac
read -r line; echo "$line" >> SEEN/rpc
case "$line" in *'"method":"initialized"'*) ;; *) echo "no initialized notification" >&2; exit 4 ;; esac
read -r line; echo "$line" >> SEEN/rpc
echo '{"id":"server-1","method":"item/tool/requestUserInput","params":{}}'
echo "{\"id\":$(id_of "$line"),\"result\":{\"thread\":{\"id\":\"thr_1\"}}}"
read -r line; echo "$line" >> SEEN/rpc
read -r line; echo "$line" >> SEEN/rpc
echo "{\"id\":$(id_of "$line"),\"result\":{}}"
echo '{"method":"item/agentMessage/delta","params":{"delta":"rebasing"}}'
echo '{"method":"turn/completed","params":{"threadId":"thr_1","turn":{"status":"completed"}}}'
read -r line; echo "$line" >> SEEN/rpc
echo "{\"id\":$(id_of "$line"),\"result\":{\"thread\":{\"turns\":[{\"items\":[{\"type\":\"agentMessage\",\"text\":\"rebased\\nFLOW_RESULT {\\\"status\\\":\\\"changed\\\",\\\"message\\\":\\\"fork rebased onto rust-v0.130.0\\\"}\"}]}]}}}"
cat > /dev/null
"#;

#[test]
fn code_mode_steps_run_through_the_app_server_when_the_gate_is_open() {
    let ws = Workspace::new();
    ws.install_by_hand("peezy-codex-fork");
    ws.stand_in("codex", APP_SERVER);
    let path = ws.path();
    let gated = ws.codex_release("rust-v0.130.0", &[], &[("PATH", &path)]);
    let step = gated.step("rebase-patch-stack");
    assert_eq!(step["status"], "skipped");
    assert_eq!(step["gated"], true);
    assert!(step["message"].as_str().unwrap().contains("CODEX_FLOWS_ENABLE_CODE_MODE=1"), "{step}");
    assert_eq!(ws.seen("rpc"), "", "a gated step starts nothing");

    let run = ws.codex_release("rust-v0.130.0", &["--replay"], &[("PATH", &path), ("CODEX_FLOWS_MODE", "code-mode")]);
    let step = run.step("rebase-patch-stack");
    assert_eq!(step["status"], "changed", "{step}\n{}", run.stderr);
    assert_eq!(step["message"], "fork rebased onto rust-v0.130.0");
    assert_eq!(ws.seen("app-server-args").lines().collect::<Vec<_>>()[..3], ["app-server", "--listen", "stdio://"]);
    let rpc: Vec<Value> = ws.seen("rpc").lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let methods: Vec<&str> = rpc.iter().map(|m| m["method"].as_str().unwrap_or("<response>")).collect();
    assert_eq!(
        methods,
        ["initialize", "initialized", "thread/start", "<response>", "thread/codeMode/execute", "thread/read"]
    );
    assert_eq!(rpc[3]["id"], "server-1");
    assert_eq!(rpc[3]["error"]["code"], -32603);
    assert_eq!(rpc[2]["params"]["approvalPolicy"], "never");
    assert_eq!(rpc[2]["params"]["cwd"], ws.root().join(".codex/flows/peezy-codex-fork").to_str().unwrap());
    let source = rpc[4]["params"]["source"].as_str().unwrap();
    assert!(source.starts_with("const flow = {"), "{source}");
    assert!(
        source.contains("\"target_branch\": \"code-mode-exec-hooks\"") && source.contains("FLOW_RESULT "),
        "{source}"
    );
    assert!(source.ends_with("result({ status: \"completed\", message: `fork is up to date with ${tag}` });\n"));
    assert_eq!(rpc[5]["params"], json!({"threadId": "thr_1", "includeTurns": true}));
}
