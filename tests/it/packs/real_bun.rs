//! A `flow.toml` flow run by the real Bun, not a stand-in: the pinned
//! release from npm that `scripts/test-bun.sh` installs (`.ci/run` and the
//! GitHub workflow call it) and names in `PATCHMOI_TEST_BUN`. TypeScript
//! scripts in both forms codex-flows runs (plain `bun <script>`, and the
//! module form through the module runner) read the `FlowRunContext` from
//! stdin and answer `FLOW_RESULT`, which becomes the run's status, message
//! and artifacts in the JSON output and the state file. Without that Bun
//! the test is skipped with a note, and fails when `CI` is set.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::Workspace;

/// The real Bun, or None (after saying why) when it is not installed here.
fn real_bun() -> Option<PathBuf> {
    let why = match std::env::var_os("PATCHMOI_TEST_BUN") {
        Some(path) if Path::new(&path).is_file() => return Some(PathBuf::from(path)),
        Some(path) => panic!("PATCHMOI_TEST_BUN={} is not a file (run scripts/test-bun.sh)", path.to_string_lossy()),
        None => "PATCHMOI_TEST_BUN is not set (PATCHMOI_TEST_BUN=\"$(scripts/test-bun.sh)\" installs Bun from npm)",
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}: CI runs the real Bun test");
    }
    eprintln!("skipping the real Bun test: {why}");
    None
}

const FLOW: &str = r#"name = "bun-release"
version = 2
description = "Each form of Bun step codex-flows runs"

[config]
channel = "stable"

[[steps]]
name = "plain"
runner = "bun"
script = "exec/plain.ts"
cwd = "../.."

[steps.trigger]
type = "upstream.release"
schema = "schemas/release.json"

[[steps]]
name = "module"
runner = "bun"
script = "exec/module.ts"

[steps.trigger]
type = "upstream.release"
schema = "schemas/release.json"

[[steps]]
name = "renamed"
runner = "bun"
script = "exec/renamed.ts"

[steps.trigger]
type = "upstream.release"
"#;

const SCHEMA: &str = r#"{"type": "object", "required": ["repo", "tag"],
 "properties": {"repo": {"enum": ["openai/codex"]}, "tag": {"type": "string"}}}"#;

/// `bun <script>`: reads stdin itself. (Its comments say "has default" on
/// purpose: only `export default`, `as default` and `defineBunFlow(` as
/// words make a script a module, as in codex-flows.)
const PLAIN: &str = r#"// A raw Bun step. Every release event has default payload fields
// (repo, tag); the schema checks them before this runs.
interface FlowRunContext {
  flow: {
    name: string;
    version: number;
    root: string;
    step: string;
    config?: { channel?: string };
    event: { id: string; type: string; payload: { repo: string; tag: string } };
  };
  runtime: { eventId: string; runId?: string; attemptId?: string; replay: boolean; launchedBy?: string };
}

const context: FlowRunContext = JSON.parse(await Bun.stdin.text());
const version: string = context.flow.event.payload.tag.replace(/^rust-v/, "");
await Bun.write("bindings.txt", `${context.flow.name} ${version}\n`);
console.log(`regenerating bindings for ${version}`);
console.error("a line on stderr");
console.log(`FLOW_RESULT ${JSON.stringify({ status: "completed", message: "a first answer, replaced by the last" })}`);
const result = {
  status: "changed",
  message: `bindings regenerated for ${version}`,
  artifacts: {
    version,
    bun: Bun.version,
    flow: `${context.flow.name}@${context.flow.version}/${context.flow.step}`,
    eventId: context.runtime.eventId,
    runId: context.runtime.runId,
    envRunId: process.env.CODEX_FLOW_RUN_ID,
    envReplay: process.env.CODEX_FLOW_REPLAY,
    launchedBy: process.env.CODEX_FLOW_LAUNCHED_BY,
    cwd: process.cwd(),
  },
};
console.log(`FLOW_RESULT ${JSON.stringify(result)}`);
"#;

/// The module form codex-flows recommends: `export default
/// defineBunFlow(async (context) => result)`.
const MODULE: &str = r#"type FlowResult = {
  status: "completed" | "changed" | "skipped" | "blocked" | "failed" | "needs_intervention";
  message?: string;
  artifacts?: Record<string, unknown>;
};
type Context = {
  flow: { name: string; root: string; step: string; config?: { channel?: string }; event: { payload: { tag: string } } };
  runtime: { runId?: string; attemptId?: string; replay: boolean };
};

// As @peezy.tech/codex-flows/flow-runtime/bun defines it.
function defineBunFlow(handler: (context: Context) => FlowResult | Promise<FlowResult>) {
  return handler;
}

export default defineBunFlow(async (context) => {
  await Bun.sleep(1);
  return {
    status: "completed",
    message: `${context.flow.step} saw ${context.flow.event.payload.tag} on ${context.flow.config?.channel}`,
    artifacts: { attemptId: context.runtime.attemptId, replay: context.runtime.replay, cwd: process.cwd() },
  };
});
"#;

/// A default export by another name (`as default`), an object with `run`.
const RENAMED: &str = r#"const flow = {
  run(context: { flow: { event: { payload: { tag: string } } } }) {
    return { status: "skipped", message: `nothing to do for ${context.flow.event.payload.tag}` };
  },
};
export { flow as default };
"#;

#[test]
fn a_real_bun_step_answers_flow_result_in_both_forms() {
    let Some(bun) = real_bun() else { return };
    let bun_version = String::from_utf8(std::process::Command::new(&bun).arg("--version").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let ws = Workspace::new();
    for (path, text) in [
        ("flow.toml", FLOW),
        ("schemas/release.json", SCHEMA),
        ("exec/plain.ts", PLAIN),
        ("exec/module.ts", MODULE),
        ("exec/renamed.ts", RENAMED),
    ] {
        ws.repo.write(&format!("flows/bun-release/{path}"), text);
    }
    // The real Bun, under the name the runner looks for, first on PATH.
    std::os::unix::fs::symlink(&bun, ws.tmp.path().join("bin/bun")).unwrap();
    let path = ws.path();

    let run = ws.codex_release("rust-v0.130.0", &[], &[("PATH", &path)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = run.json();
    assert_eq!(out["status"], "changed", "{out}");
    let root = ws.root().canonicalize().unwrap();
    let flow_root = root.join("flows/bun-release");

    // Plain `bun <script>`: the last FLOW_RESULT wins; it ran in `cwd`.
    let plain = run.step("plain");
    let run_id = plain["id"].as_str().unwrap();
    assert_eq!(plain["runner"], "bun");
    assert_eq!(plain["status"], "changed", "{plain}");
    assert_eq!(plain["message"], "bindings regenerated for 0.130.0");
    let artifacts = &plain["artifacts"];
    assert_eq!(artifacts["version"], "0.130.0");
    assert_eq!(artifacts["bun"], bun_version.as_str(), "the real Bun ran: {artifacts}");
    assert_eq!(artifacts["flow"], "bun-release@2/plain");
    assert_eq!(artifacts["eventId"], "patch:upstream.release:openai/codex:rust-v0.130.0");
    assert_eq!(artifacts["runId"], run_id);
    assert_eq!(artifacts["envRunId"], run_id);
    assert_eq!(artifacts["envReplay"], "0");
    assert_eq!(artifacts["launchedBy"], "patchmoi");
    assert_eq!(artifacts["cwd"], root.to_str().unwrap());
    assert_eq!(std::fs::read_to_string(root.join("bindings.txt")).unwrap(), "bun-release 0.130.0\n");
    let log = std::fs::read_to_string(artifacts["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("regenerating bindings for 0.130.0") && log.contains("a line on stderr"), "{log}");

    // The module form: the runner imports the TypeScript module and calls it.
    let module = run.step("module");
    assert_eq!(module["status"], "completed", "{module}");
    assert_eq!(module["message"], "module saw rust-v0.130.0 on stable");
    let module_id = module["id"].as_str().unwrap();
    assert_eq!(module["artifacts"]["attemptId"], format!("{module_id}:attempt:1"));
    assert_eq!(module["artifacts"]["replay"], false);
    assert_eq!(module["artifacts"]["cwd"], flow_root.to_str().unwrap());
    let renamed = run.step("renamed");
    assert_eq!(renamed["status"], "skipped", "{renamed}");
    assert_eq!(renamed["message"], "nothing to do for rust-v0.130.0");

    // The state file records each run with its result, as for any step.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.root().join(".codex/workspace/actions/flow-client/state.json")).unwrap(),
    )
    .unwrap();
    let record = |id: &str| {
        state["runs"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap_or_else(|| panic!("{state}"))
    };
    let plain_record = record(run_id);
    assert_eq!(plain_record["flowName"], "bun-release");
    assert_eq!(plain_record["stepName"], "plain");
    assert_eq!(plain_record["runner"], "bun");
    assert_eq!(plain_record["processStatus"], "completed");
    assert_eq!(plain_record["status"], "changed");
    assert_eq!(plain_record["resultPayload"]["message"], "bindings regenerated for 0.130.0");
    assert_eq!(plain_record["resultPayload"]["artifacts"]["bun"], bun_version.as_str());
    assert_eq!(plain_record["resultPayload"]["artifacts"]["version"], "0.130.0");
    let module_record = record(module_id);
    assert_eq!(module_record["status"], "completed");
    assert_eq!(module_record["resultPayload"]["artifacts"]["attemptId"], format!("{module_id}:attempt:1"));
    let event = &state["events"][0];
    assert_eq!(event["event"]["id"], "patch:upstream.release:openai/codex:rust-v0.130.0");
    assert_eq!(event["runIds"].as_array().unwrap().len(), 3, "{event}");

    // Replayed, the runtime says so in the context and the environment.
    let again = ws.codex_release("rust-v0.130.0", &["--replay"], &[("PATH", &path)]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(again.step("plain")["artifacts"]["envReplay"], "1");
    assert_eq!(again.step("module")["artifacts"]["replay"], json!(true));
}
