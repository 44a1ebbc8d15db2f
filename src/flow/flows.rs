//! Flow files: the `flow.yml` schema, codex-flows `flow.toml` flows (see
//! `manifest`) in the same shape, discovery (installed flows shadow
//! repository flows, whatever their format), matching an event, and the
//! Code Mode gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

pub use crate::core::env::code_mode_enabled;
use crate::core::error::usage;
use crate::core::refname;
use crate::core::tag_order::glob_match;
use crate::engine::land::Land;
use crate::engine::regenerate::RegenerateRule;
use crate::engine::stack::{StackOptions, StackSpec};
use crate::flow::event::FlowEvent;
use crate::flow::manifest::{self, Manifest, ScriptStep};
use crate::flow::shell::parse_timeout;

/// Where flows live, in discovery order: installed flows first.
pub const FLOW_ROOTS: [&str; 2] = [".codex/flows", "flows"];

/// The file names of a flow's directory: patchmoi's and codex-flows' format.
pub const FLOW_FILES: [&str; 2] = ["flow.yml", "flow.toml"];

/// The candidate branch when a flow does not name one.
pub const DEFAULT_CANDIDATE: &str = "patchmoi/{tag}";

/// The `runner:` value of steps that only run with the Code Mode gate open.
pub const CODE_MODE_RUNNER: &str = "code-mode";

/// A flow file: which events it handles and which steps run for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Unique name; a flow installed under `.codex/flows` shadows a flow of
    /// the same name under `flows/`.
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The events this flow handles.
    pub on: Trigger,
    /// The patch stack; needed by a flow with a `uses: rebase` step.
    #[serde(default)]
    pub stack: Option<StackConfig>,
    /// Whether pre-release tags (`-rc.1`, `-alpha.2`) count as releases.
    #[serde(default)]
    pub prereleases: bool,
    /// Tags (globs) never to follow.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Steps, run in order.
    pub steps: Vec<Step>,
    /// The file this flow was read from (not a key of the file).
    #[serde(skip)]
    pub path: PathBuf,
    /// Set for a codex-flows `flow.toml` flow (not a key of the file).
    #[serde(skip)]
    pub toml: Option<TomlFlow>,
}

/// What a `flow.toml` flow keeps besides its steps.
#[derive(Debug, Clone)]
pub struct TomlFlow {
    pub version: Value,
    pub config: Option<Value>,
    /// The flow's directory: scripts and schemas are relative to it.
    pub root: PathBuf,
    /// What a step's `cwd` is relative to: the flow's directory, except for
    /// an installed flow, which resolves it as if it lived at
    /// `flows/<dir>`, so `cwd = "../.."` is the workspace root wherever
    /// the flow was installed.
    pub cwd_base: PathBuf,
    /// The workspace the flow was found in: no step runs outside it.
    pub workspace: PathBuf,
}

/// `on:` — an event type plus payload keys that must all match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The event type, e.g. `upstream.release`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every key must match the event payload; strings are globs
    /// (`tag: "rust-v*"`), other values must be equal.
    #[serde(default)]
    pub payload: BTreeMap<String, Value>,
}

/// `stack:` — where the patch stack comes from and where its candidate goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// URL or path (relative to the workspace root) of the upstream repository.
    pub upstream: String,
    /// The maintained patch branch.
    pub branch: String,
    /// Candidate branch template; `{tag}` is replaced by the release tag. It
    /// starts with a namespace of its own, a fixed prefix ending in `/`
    /// (`patchmoi/` for the default), so no tag can name the maintained branch.
    #[serde(default = "default_candidate")]
    pub candidate: String,
    /// The fork's remote, for the branch when it is not local and for pushes.
    #[serde(default = "default_remote")]
    pub remote: String,
    /// Drop a patch whose message says upstream has it (`git cherry-pick
    /// -x`'s line, `Upstream-Commit:` or `Upstream-PR:` trailers,
    /// rebasebot's `UPSTREAM: <n>:` and `UPSTREAM: <drop>:` subjects) when
    /// the release holds that commit or pull request, not only when the
    /// patch-id matches (default true; false replays what `git rebase` would).
    #[serde(default = "default_true")]
    pub provenance: bool,
    /// How a promoted candidate lands on the branch: `rebase` (default: the
    /// patches on the release; promotion replaces the branch, with a lease
    /// and a backup) or `merge` (a merge of the release with the release's
    /// tree, then the patches; promotion is a fast-forward).
    #[serde(default)]
    pub land: Land,
    /// Generated files to regenerate instead of stopping: when every
    /// conflict of a patch is in files one rule's `paths` (globs) match,
    /// its `run:` command runs in a checkout of the stopped state (with
    /// those files as before the patch, in `working-directory:`), as a
    /// `run:` step runs; its result is kept if it exits 0, leaves no
    /// conflict markers and changes only those files.
    #[serde(default)]
    pub regenerate: Vec<RegenerateRule>,
}

impl StackConfig {
    /// The engine's view of this stack for release `tag`.
    pub fn spec(&self, tag: &str) -> StackSpec {
        StackSpec {
            upstream: self.upstream.clone(),
            branch: self.branch.clone(),
            remote: self.remote.clone(),
            tag: tag.to_string(),
            candidate: self.candidate.replace("{tag}", tag),
            options: StackOptions {
                provenance: self.provenance,
                land: self.land,
                regenerate: self.regenerate.clone(),
                pulls: None,
            },
        }
    }
}

/// The candidate namespace of a template: its literal prefix up to the last
/// `/` before the first `{` (`patchmoi/` for `patchmoi/{tag}`), or None when
/// it has none.
pub fn candidate_namespace(template: &str) -> Option<&str> {
    let literal = template.split('{').next().unwrap_or_default();
    literal.rfind('/').map(|slash| &template[..=slash])
}

fn default_candidate() -> String {
    DEFAULT_CANDIDATE.to_string()
}

fn default_true() -> bool {
    true
}

fn default_remote() -> String {
    "origin".to_string()
}

/// One step: the built-in `uses: rebase` or a `run:` command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the flow; names the step's log file.
    pub name: String,
    /// A built-in step; only `rebase` exists.
    #[serde(default)]
    pub uses: Option<String>,
    /// A shell command, run with `bash -eo pipefail -c`.
    #[serde(default)]
    pub run: Option<String>,
    /// `code-mode` gates the step behind `CODEX_FLOWS_MODE=code-mode`.
    #[serde(default)]
    pub runner: Option<String>,
    /// When the step runs: unset (all before succeeded), `needs_intervention`,
    /// `failure` (failed or blocked) or `always`.
    #[serde(default, rename = "if")]
    pub condition: Option<Condition>,
    /// Directory of a `run:` step, relative to the worktree.
    #[serde(default, rename = "working-directory")]
    pub working_directory: Option<String>,
    /// Time limit such as `30m` or `1h30m` (default 60m).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Extra environment variables for a `run:` step.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Credentials this `run:` step needs (e.g. `[OPENAI_API_KEY]` for an
    /// agent): only these of patchmoi's credentials reach it; every other
    /// credential variable is withheld from every step.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Set for a step of a `flow.toml` flow (not a key of flow.yml).
    #[serde(skip)]
    pub script: Option<ScriptStep>,
}

/// `if:` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Success,
    NeedsIntervention,
    Failure,
    Always,
}

/// What a step does, once validated.
#[derive(Debug, Clone)]
pub enum StepKind<'a> {
    Rebase,
    Run(&'a str),
    /// A `flow.toml` step: a script for Bun or for Code Mode.
    Script(&'a ScriptStep),
}

impl Step {
    pub fn kind(&self) -> StepKind<'_> {
        match (&self.script, &self.run) {
            (Some(script), _) => StepKind::Script(script),
            (None, Some(command)) => StepKind::Run(command),
            (None, None) => StepKind::Rebase,
        }
    }

    /// `code-mode` or `default`.
    pub fn runner_name(&self) -> &str {
        self.runner.as_deref().unwrap_or("default")
    }

    pub fn is_gated(&self) -> bool {
        self.runner.as_deref() == Some(CODE_MODE_RUNNER)
    }

    pub fn timeout(&self) -> Duration {
        if let Some(script) = &self.script {
            return script.timeout;
        }
        self.timeout.as_deref().and_then(|text| parse_timeout(text).ok()).unwrap_or(Duration::from_secs(60 * 60))
    }
}

impl Flow {
    /// Parses and validates one flow file.
    pub fn load(path: &Path) -> Result<Flow> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| usage(format!("failed to read flow file {}: {err}", path.display())))?;
        let mut flow: Flow =
            serde_yaml::from_str(&text).map_err(|err| usage(format!("invalid flow file {}: {err}", path.display())))?;
        flow.path = path.to_path_buf();
        flow.validate().map_err(|err| usage(format!("invalid flow file {}: {err}", path.display())))?;
        Ok(flow)
    }

    /// The engine's view of this flow's stack for release `tag`, refused
    /// when the candidate would be the maintained branch itself.
    pub fn stack_spec(&self, tag: &str) -> Result<StackSpec> {
        let stack = self.stack.as_ref().with_context(|| format!("flow {} has no `stack:`", self.name))?;
        let spec = stack.spec(tag);
        if spec.candidate == spec.branch {
            return Err(usage(format!(
                "flow file {}: stack.candidate `{}` gives `{}` for tag {tag}, which is the maintained branch; candidates never replace it (promote does, with a backup)",
                self.path.display(),
                stack.candidate,
                spec.candidate
            )));
        }
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        check_name("name", &self.name)?;
        if self.steps.is_empty() {
            return Err("`steps` is empty".into());
        }
        let mut has_rebase = false;
        for (index, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{index}]");
            check_name(&format!("{at}.name"), &step.name)?;
            if self.steps[..index].iter().any(|other| other.name == step.name) {
                return Err(format!("{at}.name: step `{}` appears twice", step.name));
            }
            match (&step.uses, &step.run) {
                (Some(_), Some(_)) => return Err(format!("{at}: set `uses` or `run`, not both")),
                (None, None) => return Err(format!("{at}: set `uses: rebase` or `run: <command>`")),
                (Some(uses), None) if uses != "rebase" => {
                    return Err(format!("{at}.uses: unknown built-in `{uses}` (the only one is `rebase`)"))
                }
                (Some(_), None) => has_rebase = true,
                (None, Some(command)) if command.trim().is_empty() => return Err(format!("{at}.run: empty command")),
                (None, Some(_)) => {}
            }
            if let Some(runner) = &step.runner {
                if runner != CODE_MODE_RUNNER && runner != "default" {
                    return Err(format!("{at}.runner: unknown runner `{runner}` (use `code-mode` or leave it out)"));
                }
            }
            if let Some(timeout) = &step.timeout {
                parse_timeout(timeout).map_err(|err| format!("{at}.timeout: {err}"))?;
            }
            for secret in &step.secrets {
                let valid = !secret.is_empty()
                    && !secret.starts_with(|c: char| c.is_ascii_digit())
                    && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!("{at}.secrets: `{secret}` is not an environment variable name"));
                }
            }
            if !step.secrets.is_empty() && step.run.is_none() {
                return Err(format!("{at}.secrets: only a `run:` step gets secrets"));
            }
            if let Some(dir) = &step.working_directory {
                if Path::new(dir).is_absolute() || dir.split('/').any(|part| part == "..") {
                    return Err(format!("{at}.working-directory: `{dir}` must be a relative path inside the worktree"));
                }
            }
        }
        if has_rebase && self.stack.is_none() {
            return Err("a `uses: rebase` step needs a `stack:` section (upstream, branch)".into());
        }
        if let Some(stack) = &self.stack {
            if stack.upstream.trim().is_empty() {
                return Err("stack.upstream: empty".into());
            }
            refname::check_ref_name(&stack.branch).map_err(|why| format!("stack.branch: `{}` {why}", stack.branch))?;
            refname::check_ref_name(&stack.remote).map_err(|why| format!("stack.remote: `{}` {why}", stack.remote))?;
            let sample = stack.candidate.replace("{tag}", "v1.0.0");
            refname::check_ref_name(&sample).map_err(|why| format!("stack.candidate: `{}` {why}", stack.candidate))?;
            // Candidates never go over the maintained branch: promotion is its own, leased step.
            if !stack.candidate.contains("{tag}") && stack.candidate == stack.branch {
                return Err(format!(
                    "stack.candidate: `{}` is the maintained branch; use a template such as `patchmoi/{{tag}}`",
                    stack.candidate
                ));
            }
            // Without a namespace of its own, a release tag named like the
            // maintained branch would make the candidate that branch.
            if candidate_namespace(&stack.candidate).is_none() {
                return Err(format!(
                    "stack.candidate: `{}` has no namespace of its own; start it with a fixed prefix ending in `/`, such as `patchmoi/{{tag}}`",
                    stack.candidate
                ));
            }
        }
        Ok(())
    }

    /// A `flow.toml` in the shape of a flow file. Its steps run each on
    /// its own, as codex-flows runs them (`if: always`), and only those
    /// whose trigger matches the event.
    pub fn from_manifest(manifest: Manifest, path: &Path, workspace: &Path, installed: bool) -> Result<Flow, String> {
        check_name("name", &manifest.name)?;
        let root = path.parent().unwrap_or(workspace).to_path_buf();
        let cwd_base = match (installed, root.file_name()) {
            (true, Some(dir)) => workspace.join("flows").join(dir),
            _ => root.clone(),
        };
        let mut steps: Vec<Step> = Vec::new();
        for (index, script) in manifest.steps.into_iter().enumerate() {
            check_name(&format!("steps[{index}].name"), &script.name)?;
            if steps.iter().any(|other| other.name == script.name) {
                return Err(format!("steps[{index}].name: step `{}` appears twice", script.name));
            }
            steps.push(Step {
                name: script.name.clone(),
                uses: None,
                run: None,
                runner: Some(script.runner.name().to_string()),
                condition: Some(Condition::Always),
                working_directory: None,
                timeout: None,
                env: BTreeMap::new(),
                secrets: Vec::new(),
                script: Some(script),
            });
        }
        let kind = steps.iter().find_map(|step| step.script.as_ref()?.trigger.as_ref()).map(|t| t.kind.clone());
        Ok(Flow {
            name: manifest.name,
            description: manifest.description,
            on: Trigger { kind: kind.unwrap_or_default(), payload: BTreeMap::new() },
            stack: None,
            prereleases: false,
            skip: Vec::new(),
            steps,
            path: path.to_path_buf(),
            toml: Some(TomlFlow {
                version: manifest.version,
                config: manifest.config,
                root,
                cwd_base,
                workspace: workspace.to_path_buf(),
            }),
        })
    }

    /// `flow.yml` or `flow.toml`.
    pub fn format(&self) -> &'static str {
        if self.toml.is_some() {
            "flow.toml"
        } else {
            "flow.yml"
        }
    }

    /// The steps that run for `event`: all of a `flow.yml` flow (its `on:`
    /// decides), those of a `flow.toml` flow whose trigger matches.
    pub fn matching_steps(&self, event: &FlowEvent) -> Vec<&Step> {
        match &self.toml {
            None => self.steps.iter().collect(),
            Some(_) => {
                self.steps.iter().filter(|step| step.script.as_ref().is_some_and(|s| s.matches(event))).collect()
            }
        }
    }

    /// Where a `flow.toml` step runs: its `cwd` against the flow's
    /// directory (or, installed, against `flows/<dir>`), else the flow's
    /// directory. Never outside the workspace.
    pub fn script_cwd(&self, step: &ScriptStep) -> Result<PathBuf, String> {
        let toml = self.toml.as_ref().ok_or("not a flow.toml flow")?;
        let Some(cwd) = &step.cwd else {
            return Ok(toml.root.clone());
        };
        let dir = manifest::normalize(&toml.cwd_base.join(cwd));
        if !dir.starts_with(manifest::normalize(&toml.workspace)) {
            return Err(format!("step {}: cwd `{cwd}` leaves the workspace", step.name));
        }
        Ok(dir)
    }

    /// Whether this flow handles `event`. With `ignore_tag`, the `tag`
    /// payload key is not checked (used to pick the newest tag first).
    pub fn matches(&self, event: &FlowEvent, ignore_tag: bool) -> bool {
        if self.toml.is_some() {
            return !self.matching_steps(event).is_empty();
        }
        self.on.kind == event.kind
            && self
                .on
                .payload
                .iter()
                .filter(|(key, _)| !(ignore_tag && key.as_str() == "tag"))
                .all(|(key, want)| event.payload.get(key).is_some_and(|have| value_matches(want, have)))
    }

    /// The `on.payload.tag` glob, `*` when there is none.
    pub fn tag_pattern(&self) -> &str {
        self.on.payload.get("tag").and_then(Value::as_str).unwrap_or("*")
    }

    pub fn has_rebase(&self) -> bool {
        self.steps.iter().any(|step| matches!(step.kind(), StepKind::Rebase))
    }
}

fn value_matches(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(pattern), Value::String(text)) => glob_match(pattern, text),
        _ => want == have,
    }
}

/// Flow and step names become file names and check-run names.
fn check_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{field}: `{name}` must be letters, digits, '-', '_' or '.'"))
    }
}

/// All flows of a workspace, installed ones first, each root in directory
/// order; a name already found shadows later flows of the same name.
pub fn discover(workspace: &Path) -> Result<Vec<Flow>> {
    let mut flows: Vec<Flow> = Vec::new();
    for (index, root) in FLOW_ROOTS.into_iter().enumerate() {
        let dir = workspace.join(root);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|entry| entry.ok()).map(|entry| entry.path()).collect();
        dirs.sort();
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            let found: Vec<PathBuf> =
                FLOW_FILES.iter().map(|name| dir.join(name)).filter(|path| path.is_file()).collect();
            if found.len() > 1 {
                return Err(usage(format!("{} has both flow.yml and flow.toml; keep one", dir.display())));
            }
            files.extend(found);
        }
        let first_of_root = flows.len();
        for file in files {
            let flow = match file.extension().and_then(|ext| ext.to_str()) {
                Some("toml") => {
                    let manifest = Manifest::load(&file)?;
                    Flow::from_manifest(manifest, &file, workspace, index == 0)
                        .map_err(|err| usage(format!("invalid flow file {}: {err}", file.display())))?
                }
                _ => Flow::load(&file)?,
            };
            if let Some(same) = flows[first_of_root..].iter().find(|other| other.name == flow.name) {
                return Err(usage(format!(
                    "flow name `{}` is used by both {} and {}",
                    flow.name,
                    same.path.display(),
                    file.display()
                )));
            }
            if let Some(installed) = flows[..first_of_root].iter().find(|other| other.name == flow.name) {
                tracing::debug!("{} is shadowed by {}", file.display(), installed.path.display());
                continue;
            }
            flows.push(flow);
        }
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow(yaml: &str) -> Result<Flow, String> {
        let flow: Flow = serde_yaml::from_str(yaml).map_err(|err| err.to_string())?;
        flow.validate()?;
        Ok(flow)
    }

    const CODEX: &str = r#"
name: peezy-codex-fork
on:
  type: upstream.release
  payload: { repo: openai/codex, tag: "rust-v*" }
stack: { upstream: "https://github.com/openai/codex.git", branch: code-mode-exec-hooks }
steps:
  - { name: rebase-patch-stack, uses: rebase }
  - { name: build, run: cargo build, timeout: 30m }
"#;

    #[test]
    fn matches_type_and_payload_globs() {
        let flow = flow(CODEX).unwrap();
        let event = |repo: &str, tag: &str| FlowEvent::upstream_release(repo, tag, String::new());
        assert!(flow.matches(&event("openai/codex", "rust-v0.130.0"), false));
        assert!(!flow.matches(&event("openai/codex", "v0.130.0"), false));
        assert!(flow.matches(&event("openai/codex", "v0.130.0"), true));
        assert!(!flow.matches(&event("other/codex", "rust-v0.130.0"), false));
        let mut other = event("openai/codex", "rust-v1");
        other.kind = "upstream.branch_update".into();
        assert!(!flow.matches(&other, false));
        assert_eq!(flow.stack.unwrap().candidate, "patchmoi/{tag}");
        assert_eq!(flow.steps[1].timeout(), Duration::from_secs(1800));
    }

    #[test]
    fn non_string_payload_values_compare_equal() {
        let flow = flow("name: n\non: {type: t, payload: {draft: false}}\nsteps: [{name: s, run: 'true'}]").unwrap();
        let mut event = FlowEvent::upstream_release("o/r", "v1", String::new());
        event.kind = "t".into();
        assert!(!flow.matches(&event, false));
        event.payload.insert("draft".into(), json!(false));
        assert!(flow.matches(&event, false));
    }

    #[test]
    fn rejects_mistakes_naming_the_field() {
        let cases = [
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x}]\nstak: {}", "unknown field `stak`"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, tiemout: 1m}]", "unknown field `tiemout`"),
            ("name: n\non: {type: t}\nsteps: []", "`steps` is empty"),
            ("name: n\non: {type: t}\nsteps: [{name: s, uses: rebase}]", "needs a `stack:` section"),
            ("name: n\non: {type: t}\nsteps: [{name: s, uses: merge}]", "steps[0].uses: unknown built-in"),
            ("name: n\non: {type: t}\nsteps: [{name: s}]", "steps[0]: set `uses: rebase`"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, uses: rebase}]", "not both"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x}, {name: s, run: y}]", "appears twice"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, timeout: soon}]", "steps[0].timeout"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, runner: bun}]", "steps[0].runner"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, if: sometimes}]", "unknown variant `sometimes`"),
            ("name: 'a b'\non: {type: t}\nsteps: [{name: s, run: x}]", "name: `a b`"),
            ("name: n\non: {type: t}\nsteps: [{name: s, run: x, working-directory: ../x}]", "working-directory"),
            (
                "name: n\non: {type: t}\nstack: {upstream: u, branch: '-x'}\nsteps: [{name: s, uses: rebase}]",
                "stack.branch: `-x` starts with '-'",
            ),
            (
                "name: n\non: {type: t}\nstack: {upstream: u, branch: b, candidate: 'a..{tag}'}\nsteps: [{name: s, uses: rebase}]",
                "stack.candidate",
            ),
            (
                "name: n\non: {type: t}\nstack: {upstream: u, branch: b, candidate: b}\nsteps: [{name: s, uses: rebase}]",
                "is the maintained branch",
            ),
            (
                "name: n\non: {type: t}\nstack: {upstream: u, branch: b, candidate: '{tag}'}\nsteps: [{name: s, uses: rebase}]",
                "stack.candidate: `{tag}` has no namespace of its own",
            ),
            (
                "name: n\non: {type: t}\nstack: {upstream: u, branch: b, candidate: 'rc-{tag}/x'}\nsteps: [{name: s, uses: rebase}]",
                "stack.candidate: `rc-{tag}/x` has no namespace",
            ),
        ];
        for (yaml, want) in cases {
            let err = flow(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}\n  => {err}");
        }
    }

    #[test]
    fn candidate_namespaces() {
        assert_eq!(candidate_namespace("patchmoi/{tag}"), Some("patchmoi/"));
        assert_eq!(candidate_namespace("fork/builds/v-{tag}"), Some("fork/builds/"));
        assert_eq!(candidate_namespace("fork/next"), Some("fork/"));
        assert_eq!(candidate_namespace("{tag}"), None);
        assert_eq!(candidate_namespace("rc-{tag}/x"), None);
    }

    #[test]
    fn code_mode_gate() {
        let cases = [
            (None, None, false),
            (Some("code-mode"), None, true),
            (Some(" Code-Mode "), None, true),
            (Some("local"), None, false),
            (None, Some("1"), true),
            (None, Some("yes"), true),
            (None, Some("0"), false),
            (Some(""), Some(""), false),
        ];
        for (mode, enable, want) in cases {
            assert_eq!(code_mode_enabled(mode, enable), want, "{mode:?} {enable:?}");
        }
    }
}
