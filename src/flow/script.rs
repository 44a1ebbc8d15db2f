//! Runs `flow.toml` steps as codex-flows runs them. `runner = "bun"`:
//! `bun <script>` (or, for a module that `export default`s its flow,
//! patchmoi's module runner), the `FlowRunContext` on stdin, the result on
//! the last stdout line `FLOW_RESULT {json}`. `runner = "code-mode"`: the
//! script with codex-flows' prelude, executed through `codex app-server`
//! (see `app_server`). Both get the allowlisted step environment plus the
//! runtime variables, a log, and a place in the state file like any step.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::runner::{Artifacts, FlowRun};
use crate::core::secrets::is_credential_name;
use crate::core::status::ResultStatus;
use crate::flow::app_server::{self, AppServerSpec};
use crate::flow::flows::Step;
use crate::flow::manifest::{ScriptRunner, ScriptStep};
use crate::flow::shell::{run_check, tail_lines, CheckOutcome, CheckSpec};
use crate::flow::state;
use crate::flow::steps::scrub_log;
use crate::flow::supervise::find_program;

/// Names more variables a `flow.toml` step gets from patchmoi's
/// environment; a credential named there reaches it as a `secrets:` entry
/// would (see `core::env::Env::step_env`).
pub const FORWARD_ENV: &str = "CODEX_FLOW_BACKEND_FORWARD_ENV";

/// What makes a Bun script a module run through the module runner, as
/// codex-flows tests it: `/\bexport\s+default\b/`, `/\bas\s+default\b/`,
/// `/\bdefineBunFlow\s*\(/` (first word, whether at least one space must
/// follow, what comes next, whether that must end a word).
const MODULE_MARKERS: [(&str, bool, &str, bool); 3] =
    [("export", true, "default", true), ("as", true, "default", true), ("defineBunFlow", false, "(", false)];

/// Imports a module-style flow, calls its default export with the context
/// read from stdin, prints `FLOW_RESULT`.
const MODULE_RUNNER: &str = include_str!("bun_module_runner.mjs");

/// A step's `FLOW_RESULT`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowResult {
    pub status: ResultStatus,
    pub message: Option<String>,
    pub artifacts: Map<String, Value>,
}

/// The last line with `FLOW_RESULT ` followed by a JSON object with one of
/// the six statuses, as codex-flows reads it.
pub fn parse_flow_result(output: &str) -> Result<FlowResult, String> {
    let Some(line) = output.lines().rev().find(|line| line.contains("FLOW_RESULT ")) else {
        return Err("step did not emit FLOW_RESULT".into());
    };
    let text = line[line.find("FLOW_RESULT ").unwrap_or(0) + "FLOW_RESULT ".len()..].trim();
    let value: Value = serde_json::from_str(text).map_err(|err| format!("FLOW_RESULT is not JSON: {err}"))?;
    let Value::Object(mut object) = value else {
        return Err("FLOW_RESULT must be a JSON object".into());
    };
    let status = object
        .get("status")
        .cloned()
        .and_then(|status| serde_json::from_value::<ResultStatus>(status).ok())
        .ok_or("FLOW_RESULT status is invalid")?;
    let message = object.get("message").and_then(Value::as_str).map(str::to_string);
    let artifacts = match object.remove("artifacts") {
        Some(Value::Object(artifacts)) => artifacts,
        _ => Map::new(),
    };
    Ok(FlowResult { status, message, artifacts })
}

impl FlowRun<'_> {
    pub(super) fn script(
        &mut self,
        id: &str,
        step: &Step,
        script: &ScriptStep,
    ) -> Result<(ResultStatus, String, Artifacts)> {
        let toml = self.flow.toml.as_ref().context("not a flow.toml flow")?;
        let failed = |message: String| Ok((ResultStatus::Failed, message, Artifacts::default()));
        let cwd = match self.flow.script_cwd(script) {
            Ok(dir) if dir.is_dir() => dir,
            Ok(dir) => {
                return failed(format!("step {}: working directory {} does not exist", step.name, dir.display()))
            }
            Err(why) => return failed(why),
        };
        let script_path = toml.root.join(&script.script);
        let source = match std::fs::read_to_string(&script_path) {
            Ok(source) => source,
            Err(err) => return failed(format!("step {}: cannot read {}: {err}", step.name, script_path.display())),
        };
        let run_dir = self.state_dir.run_dir(id)?;
        let log_path = run_dir.join(format!("{}.log", step.name));
        let Some((env, secrets)) = self.script_env(id, step) else {
            let message = format!("step {} needs a credential named in {FORWARD_ENV} that is not set", step.name);
            return Ok((ResultStatus::Blocked, message, Artifacts::default()));
        };
        let flow = self.context_flow(step, &toml.root, &toml.version, toml.config.as_ref());
        let outcome = match script.runner {
            ScriptRunner::Bun => {
                let context = json!({
                    "flow": flow,
                    "runtime": {"eventId": self.event.id, "runId": id, "attemptId": attempt_id(id),
                                "replay": self.settings.replay, "launchedBy": "patchmoi"},
                });
                let paths = ScriptPaths { cwd: &cwd, script: &script_path, run_dir: &run_dir, log: &log_path };
                self.bun(step, script, &paths, &source, &context, env)?
            }
            ScriptRunner::CodeMode => {
                let spec = AppServerSpec {
                    command: env
                        .iter()
                        .find(|(name, _)| name == "CODEX_APP_SERVER_CODEX_COMMAND")
                        .map(|(_, value)| value.clone())
                        .unwrap_or_else(|| "codex".into()),
                    cwd: cwd.clone(),
                    env,
                    source: code_mode_source(&flow, &source),
                    timeout: script.timeout,
                    log_path: log_path.clone(),
                };
                let label = format!("{}/{}", self.flow.name, step.name);
                match app_server::execute(&spec) {
                    Ok(text) => Outcome::Output(text),
                    Err(err) if not_found(&err) => Outcome::Blocked(format!(
                        "runner code-mode needs `{}` (codex app-server), which could not be started: {err:#}",
                        spec.command
                    )),
                    Err(err) => Outcome::Failed(format!("Code Mode flow step {label} failed: {err:#}")),
                }
            }
        };
        let mut tail = Vec::new();
        if log_path.is_file() {
            scrub_log(&log_path, &mut tail, &secrets)?;
            tail = tail_lines(&log_path, 50).unwrap_or_default();
        }
        let mut artifacts =
            Artifacts { log: Some(log_path.display().to_string()), log_tail: tail, ..Artifacts::default() };
        let (status, message) = match outcome {
            Outcome::Blocked(message) => (ResultStatus::Blocked, message),
            Outcome::Failed(message) => (ResultStatus::Failed, message),
            Outcome::Output(text) => match parse_flow_result(&text) {
                Ok(result) => {
                    let (log, log_tail) = (artifacts.log.take(), std::mem::take(&mut artifacts.log_tail));
                    // Keys patchmoi knows (candidateRefs, …) are read as such when they
                    // have its shape; otherwise the whole object is kept as it came.
                    artifacts = serde_json::from_value(Value::Object(result.artifacts.clone())).unwrap_or_else(|_| {
                        let mut extra = Map::new();
                        extra.insert("flowResult".into(), Value::Object(result.artifacts));
                        Artifacts { extra, ..Artifacts::default() }
                    });
                    artifacts.log = log;
                    artifacts.log_tail = log_tail;
                    let message =
                        result.message.unwrap_or_else(|| format!("step {} ended {}", step.name, result.status));
                    (result.status, message)
                }
                Err(why) => (ResultStatus::Failed, format!("step {}: {why}", step.name)),
            },
        };
        Ok((status, message, artifacts))
    }

    /// The step environment, the runtime variables and the credentials
    /// named in `CODEX_FLOW_BACKEND_FORWARD_ENV`; None when one of those
    /// is not set. Also returns the credentials' values, to scrub.
    fn script_env(&self, id: &str, step: &Step) -> Option<(Env, Vec<String>)> {
        let mut env = self.settings.step_env.clone();
        let forward: Vec<String> = env
            .iter()
            .find(|(name, _)| name == FORWARD_ENV)
            .map(|(_, value)| value.split([',', ' ', '\n']).filter(|n| !n.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        env.extend([
            ("CODEX_FLOW_EVENT_ID".into(), self.event.id.clone()),
            ("CODEX_FLOW_RUN_ID".into(), id.to_string()),
            ("CODEX_FLOW_ATTEMPT_ID".into(), attempt_id(id)),
            ("CODEX_FLOW_REPLAY".into(), if self.settings.replay { "1" } else { "0" }.into()),
            ("CODEX_FLOW_LAUNCHED_BY".into(), "patchmoi".into()),
        ]);
        env.extend(self.run_variables(id, step));
        let mut secrets = Vec::new();
        for name in forward.iter().filter(|name| is_credential_name(name)) {
            let value = self.settings.step_secrets.get(name)?;
            env.push((name.clone(), value.to_string()));
            secrets.push(value.to_string());
        }
        Some((env, secrets))
    }

    /// `FlowRunContext.flow`: what codex-flows hands a step.
    fn context_flow(&self, step: &Step, root: &Path, version: &Value, config: Option<&Value>) -> Value {
        let mut flow = json!({"name": self.flow.name, "version": version, "root": root, "step": step.name});
        if let Some(config) = config {
            flow["config"] = config.clone();
        }
        flow["event"] = serde_json::to_value(self.event).unwrap_or(Value::Null);
        flow
    }

    fn bun(
        &self,
        step: &Step,
        script: &ScriptStep,
        paths: &ScriptPaths,
        source: &str,
        context: &Value,
        env: Vec<(String, String)>,
    ) -> Result<Outcome> {
        let path_var = env.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.as_str()).unwrap_or("");
        let Some(bun) = find_program("bun", path_var) else {
            return Ok(Outcome::Blocked(format!(
                "runner bun is not installed: no `bun` on PATH for flow.toml step {}/{} (install Bun, https://bun.sh)",
                self.flow.name, step.name
            )));
        };
        let context_path = paths.run_dir.join(format!("{}.context.json", step.name));
        let stdout_path = paths.run_dir.join(format!("{}.stdout", step.name));
        state::write_atomic(&context_path, format!("{}\n", serde_json::to_string_pretty(context)?).as_bytes())?;
        let mut program = vec![bun.display().to_string()];
        if is_module_style(source) {
            let runner = paths.run_dir.join("bun-module-runner.mjs");
            state::write_atomic(&runner, MODULE_RUNNER.as_bytes())?;
            program.push(runner.display().to_string());
        }
        program.push(paths.script.display().to_string());
        let quoted: Vec<String> = program.iter().map(|arg| quote(arg)).collect();
        // stdout goes to the log too, through tee; pipefail keeps bun's exit status.
        let command = format!(
            "{} < {} | tee {}",
            quoted.join(" "),
            quote(&context_path.display().to_string()),
            quote(&stdout_path.display().to_string())
        );
        let spec = CheckSpec {
            name: step.name.clone(),
            command,
            cwd: paths.cwd.to_path_buf(),
            env,
            env_remove: Vec::new(),
            inherit_env: false,
            timeout: script.timeout,
            log_path: paths.log.to_path_buf(),
            echo: self.settings.echo_steps,
        };
        let result = run_check(&spec)?;
        let label = format!("{}/{}", self.flow.name, step.name);
        Ok(match result.outcome {
            CheckOutcome::Passed => {
                let output = std::fs::read_to_string(&stdout_path).unwrap_or_default();
                // The log has it too, scrubbed; this copy was only for FLOW_RESULT.
                let _ = std::fs::remove_file(&stdout_path);
                Outcome::Output(output)
            }
            CheckOutcome::Failed { exit_code: Some(code), .. } => {
                Outcome::Failed(format!("Bun flow step {label} failed with exit code {code}"))
            }
            CheckOutcome::Failed { signal, .. } => {
                Outcome::Failed(format!("Bun flow step {label} was killed by signal {}", signal.unwrap_or_default()))
            }
            CheckOutcome::TimedOut => Outcome::Failed(format!(
                "Bun flow step {label} timed out after {}",
                humantime::format_duration(script.timeout)
            )),
        })
    }
}

/// A child's whole environment.
type Env = Vec<(String, String)>;

struct ScriptPaths<'a> {
    cwd: &'a Path,
    script: &'a Path,
    run_dir: &'a Path,
    log: &'a Path,
}

enum Outcome {
    /// What the step printed, to read `FLOW_RESULT` from.
    Output(String),
    Blocked(String),
    Failed(String),
}

/// The program could not be started because it does not exist.
fn not_found(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound))
}

fn attempt_id(run_id: &str) -> String {
    format!("{run_id}:attempt:1")
}

/// codex-flows' Code Mode prelude: `flow`, and `result(v)` that prints
/// `FLOW_RESULT` and ends the script.
fn code_mode_source(flow: &Value, body: &str) -> String {
    let flow = serde_json::to_string_pretty(flow).unwrap_or_else(|_| "{}".into());
    [
        format!("const flow = {flow};"),
        "function result(value) {".into(),
        "  text('\\nFLOW_RESULT ' + JSON.stringify(value) + '\\n');".into(),
        "  exit();".into(),
        "}".into(),
        body.to_string(),
    ]
    .join("\n")
}

/// Whether `source` matches one of [`MODULE_MARKERS`], with JavaScript's
/// `\b` (between a word character, `[A-Za-z0-9_]`, and another) and `\s`:
/// "export default" and "defineBunFlow (" do, "has default" in a comment
/// does not.
fn is_module_style(source: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    MODULE_MARKERS.iter().any(|&(first, spaced, next, word_end)| {
        source.match_indices(first).any(|(at, _)| {
            if source[..at].chars().next_back().is_some_and(word) {
                return false;
            }
            let after = &source[at + first.len()..];
            let rest = after.trim_start();
            (!spaced || rest.len() < after.len())
                && rest.strip_prefix(next).is_some_and(|tail| !word_end || !tail.starts_with(word))
        })
    })
}

/// `text` as one shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_result_is_the_last_marked_line() {
        let out = "log\nFLOW_RESULT {\"status\":\"completed\"}\nmore\n  FLOW_RESULT {\"status\":\"changed\",\"message\":\"m\",\"artifacts\":{\"x\":1}}\n";
        let result = parse_flow_result(out).unwrap();
        assert_eq!(result.status, ResultStatus::Changed);
        assert_eq!(result.message.as_deref(), Some("m"));
        assert_eq!(result.artifacts["x"], 1);
        let cases = [
            ("nothing here\n", "step did not emit FLOW_RESULT"),
            ("FLOW_RESULT [1]\n", "must be a JSON object"),
            ("FLOW_RESULT {\"status\":\"done\"}\n", "status is invalid"),
            ("FLOW_RESULT {oops\n", "not JSON"),
        ];
        for (text, want) in cases {
            let err = parse_flow_result(text).unwrap_err();
            assert!(err.contains(want), "{text:?} => {err}");
        }
    }

    #[test]
    fn prelude_defines_flow_and_result() {
        let source = code_mode_source(&json!({"name": "f"}), "result({status: 'completed'});");
        assert!(source.starts_with("const flow = {\n  \"name\": \"f\"\n};\nfunction result(value) {"));
        assert!(source.ends_with("}\nresult({status: 'completed'});"));
    }

    #[test]
    fn module_style_is_told_by_whole_words_as_codex_flows_tells_it() {
        for module in [
            "export default async function run() {}",
            "export\n  default {}",
            "const f = 1;\nexport { f as default };",
            "export default defineBunFlow(async () => ({}));",
            "module.exports = defineBunFlow (x);",
        ] {
            assert!(is_module_style(module), "{module:?}");
        }
        for plain in [
            "// the event has default fields\nconsole.log('FLOW_RESULT {}');",
            "const exportdefault = 1;",
            "reexport default",
            "export defaults;",
            "mydefineBunFlow(x)",
            "defineBunFlowLater(x)",
            "export;default",
        ] {
            assert!(!is_module_style(plain), "{plain:?}");
        }
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("a b'c"), r"'a b'\''c'");
    }
}
