//! codex-flows `flow.toml` packages, read so that flows installed from
//! codex-flows packs run beside patchmoi's own `flow.yml`:
//!
//! ```toml
//! name = "openai-codex-bindings"
//! version = 1
//! description = "Regenerate the app-server bindings on each Codex release"
//! [config]                 # any table; handed to the step as `flow.config`
//! [guidance]
//! skills = ["jojo-development-flow"]
//! [[steps]]
//! name = "regenerate-bindings"
//! runner = "bun"           # or "code-mode" (gated like `runner: code-mode`)
//! script = "exec/regenerate.ts"   # relative to the flow's directory
//! timeout_ms = 300000      # default
//! cwd = "../.."            # relative to the flow's directory
//! [steps.trigger]
//! type = "upstream.release"
//! schema = "schemas/release.json" # a JSON schema the payload must satisfy
//! ```
//!
//! Keys codex-flows does not know are errors naming the file and the key.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::core::error::usage;
use crate::flow::event::FlowEvent;
use crate::flow::schema;

/// A step's time limit when `timeout_ms` is not given, as in codex-flows.
pub const DEFAULT_TIMEOUT_MS: u64 = 300_000;

/// A parsed and checked `flow.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// A number (`1`, `1.5`), kept as written for the step's context.
    pub version: Value,
    pub description: Option<String>,
    /// `[config]` as JSON, handed to each step as `flow.config`.
    pub config: Option<Value>,
    /// `[guidance] skills`: metadata only.
    pub skills: Vec<String>,
    pub steps: Vec<ScriptStep>,
}

/// How a `flow.toml` step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptRunner {
    /// `bun <script>` with the run context on stdin.
    Bun,
    /// The script runs in Codex's Code Mode through `codex app-server`.
    CodeMode,
}

impl ScriptRunner {
    pub fn name(self) -> &'static str {
        match self {
            ScriptRunner::Bun => "bun",
            ScriptRunner::CodeMode => "code-mode",
        }
    }
}

/// One `[[steps]]` entry.
#[derive(Debug, Clone)]
pub struct ScriptStep {
    pub name: String,
    pub runner: ScriptRunner,
    /// Relative to the flow's directory.
    pub script: String,
    pub timeout: Duration,
    /// Relative to the flow's directory (see `Flow::script_cwd`).
    pub cwd: Option<String>,
    /// A step without a trigger never matches an event.
    pub trigger: Option<StepTrigger>,
}

/// `[steps.trigger]`: the event type, and the schema its payload must satisfy.
#[derive(Debug, Clone)]
pub struct StepTrigger {
    pub kind: String,
    /// The schema file as written, relative to the flow's directory.
    pub schema_path: Option<String>,
    /// Its contents, read when the flow is loaded.
    pub schema: Option<Value>,
}

impl ScriptStep {
    /// Whether `event` selects this step: the trigger's type, and a payload
    /// that satisfies the schema.
    pub fn matches(&self, event: &FlowEvent) -> bool {
        let Some(trigger) = &self.trigger else {
            return false;
        };
        if trigger.kind != event.kind {
            return false;
        }
        match &trigger.schema {
            Some(schema) => schema::violations(&Value::Object(event.payload.clone()), schema).is_empty(),
            None => true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: toml::Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    guidance: Option<RawGuidance>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuidance {
    #[serde(default)]
    skills: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    runner: String,
    script: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    trigger: Option<RawTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    schema: Option<String>,
}

impl Manifest {
    /// Reads `<dir>/flow.toml` and the schemas its triggers name.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("failed to read flow file {}", path.display()))?;
        let root = path.parent().unwrap_or(Path::new("."));
        Manifest::parse(&text, root).map_err(|err| usage(format!("invalid flow file {}: {err}", path.display())))
    }

    /// Parses a manifest whose schemas are read relative to `root`.
    pub fn parse(text: &str, root: &Path) -> Result<Manifest, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|err| err.message().to_string())?;
        if raw.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        let version = match raw.version {
            toml::Value::Integer(n) => Value::from(n),
            toml::Value::Float(n) if n.is_finite() => Value::from(n),
            _ => return Err("`version` must be a number".into()),
        };
        if raw.steps.is_empty() {
            return Err("at least one [[steps]] entry is needed".into());
        }
        let config = match raw.config {
            Some(table) => Some(serde_json::to_value(table).map_err(|err| format!("[config]: {err}"))?),
            None => None,
        };
        let mut steps = Vec::new();
        for (index, step) in raw.steps.into_iter().enumerate() {
            let at = format!("steps[{index}]");
            let runner = match step.runner.as_str() {
                "bun" => ScriptRunner::Bun,
                "code-mode" => ScriptRunner::CodeMode,
                other => return Err(format!("{at}.runner: `{other}` must be bun or code-mode")),
            };
            inside(&step.script).map_err(|why| format!("{at}.script: `{}` {why}", step.script))?;
            if let Some(cwd) = &step.cwd {
                if Path::new(cwd).is_absolute() {
                    return Err(format!("{at}.cwd: `{cwd}` must be relative to the flow's directory"));
                }
            }
            if step.timeout_ms == Some(0) {
                return Err(format!("{at}.timeout_ms: must be more than 0"));
            }
            let trigger = match step.trigger {
                Some(trigger) => Some(read_trigger(trigger, root).map_err(|err| format!("{at}.trigger: {err}"))?),
                None => None,
            };
            steps.push(ScriptStep {
                name: step.name,
                runner,
                script: step.script,
                timeout: Duration::from_millis(step.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
                cwd: step.cwd,
                trigger,
            });
        }
        Ok(Manifest {
            name: raw.name,
            version,
            description: raw.description,
            config,
            skills: raw.guidance.map(|guidance| guidance.skills).unwrap_or_default(),
            steps,
        })
    }
}

fn read_trigger(raw: RawTrigger, root: &Path) -> Result<StepTrigger, String> {
    if raw.kind.trim().is_empty() {
        return Err("`type` is empty".into());
    }
    let schema = match &raw.schema {
        Some(relative) => {
            inside(relative).map_err(|why| format!("schema `{relative}` {why}"))?;
            let path = root.join(relative);
            let text = std::fs::read_to_string(&path)
                .map_err(|err| format!("cannot read schema {}: {err}", path.display()))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|err| format!("schema {} is not JSON: {err}", path.display()))?;
            if !value.is_object() {
                return Err(format!("schema {} must be a JSON object", path.display()));
            }
            Some(value)
        }
        None => None,
    };
    Ok(StepTrigger { kind: raw.kind, schema_path: raw.schema, schema })
}

/// A path relative to the flow's directory that stays inside it: a pack
/// installs the directory alone, so nothing outside it would be there.
fn inside(relative: &str) -> Result<(), &'static str> {
    let path = Path::new(relative);
    if relative.trim().is_empty() {
        return Err("is empty");
    }
    if path.is_absolute() || path.components().any(|part| matches!(part, Component::ParentDir)) {
        return Err("must stay inside the flow's directory");
    }
    Ok(())
}

/// `path` with `.` and `..` resolved without touching the file system (the
/// directory an installed flow pretends to live in need not exist).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BINDINGS: &str = r#"
name = "openai-codex-bindings"
version = 1
description = "Regenerate bindings"
[config]
package = "@peezy.tech/codex-flows"
generated_dir = "packages/codex-client/src/app-server/generated"
[guidance]
skills = ["codex-development"]
[[steps]]
name = "regenerate-bindings"
runner = "bun"
script = "exec/regenerate.ts"
cwd = "../.."
[steps.trigger]
type = "upstream.release"
schema = "schemas/release.json"
"#;

    fn root_with_schema() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
        let schema = json!({"type": "object", "required": ["repo", "tag"],
                            "properties": {"repo": {"type": "string", "enum": ["openai/codex"]}}});
        std::fs::write(dir.path().join("schemas/release.json"), schema.to_string()).unwrap();
        dir
    }

    #[test]
    fn reads_a_codex_flows_manifest_with_defaults() {
        let dir = root_with_schema();
        let manifest = Manifest::parse(BINDINGS, dir.path()).unwrap();
        assert_eq!(manifest.name, "openai-codex-bindings");
        assert_eq!(manifest.version, json!(1));
        assert_eq!(manifest.config.as_ref().unwrap()["package"], "@peezy.tech/codex-flows");
        assert_eq!(manifest.skills, ["codex-development"]);
        let step = &manifest.steps[0];
        assert_eq!(step.runner, ScriptRunner::Bun);
        assert_eq!(step.timeout, Duration::from_millis(300_000));
        assert_eq!(step.cwd.as_deref(), Some("../.."));
        let release = |repo: &str| FlowEvent::upstream_release(repo, "rust-v0.130.0", String::new());
        assert!(step.matches(&release("openai/codex")));
        assert!(!step.matches(&release("other/codex")));
        let mut other = release("openai/codex");
        other.kind = "upstream.branch_update".into();
        assert!(!step.matches(&other));
        other.kind = "upstream.release".into();
        other.payload.remove("tag");
        assert!(!step.matches(&other), "tag is required");
    }

    #[test]
    fn rejects_mistakes_naming_the_key() {
        let dir = root_with_schema();
        let step = "[[steps]]\nname = \"s\"\nrunner = \"bun\"\nscript = \"x.ts\"\n";
        let cases = [
            (format!("name = \"n\"\n{step}"), "missing field `version`"),
            (format!("name = \"n\"\nversion = \"1\"\n{step}"), "`version` must be a number"),
            ("name = \"n\"\nversion = 1\n".to_string(), "at least one [[steps]]"),
            (format!("name = \"n\"\nversion = 1\nnmae = 2\n{step}"), "unknown field `nmae`"),
            (format!("name = \"n\"\nversion = 1\n{step}timeout = 5\n"), "unknown field `timeout`"),
            (format!("name = \"n\"\nversion = 1\n{}", step.replace("bun", "node")), "must be bun or code-mode"),
            (format!("name = \"n\"\nversion = 1\n{}", step.replace("x.ts", "../x.ts")), "inside the flow's directory"),
            (
                format!("name = \"n\"\nversion = 1\n{step}[steps.trigger]\nschema = \"s.json\"\n"),
                "missing field `type`",
            ),
            (
                format!("name = \"n\"\nversion = 1\n{step}[steps.trigger]\ntype = \"t\"\nschema = \"none.json\"\n"),
                "cannot read schema",
            ),
        ];
        for (text, want) in cases {
            let err = Manifest::parse(&text, dir.path()).unwrap_err();
            assert!(err.contains(want), "{text}\n  => {err}");
        }
    }

    #[test]
    fn normalizes_without_the_file_system() {
        assert_eq!(normalize(Path::new("/w/flows/x/../..")), PathBuf::from("/w"));
        assert_eq!(normalize(Path::new("/w/flows/x/./sub")), PathBuf::from("/w/flows/x/sub"));
    }
}
