//! The runner's state on disk: `.codex/workspace/actions/flow-client/`, with
//! `state.json` (events and their runs, in the shape the original flow client
//! wrote: `{events: [{event, createdAt, runIds}], runs: [FlowRunView]}`) and
//! one folder per run for its reports and logs.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::secrets::scrub_held;
use crate::core::status::ResultStatus;
use crate::engine::stack::Stopped;
use crate::flow::event::FlowEvent;
use crate::flow::results::{Artifacts, RunResult};

/// Where patchmoi keeps runner files inside a workspace.
pub const WORKSPACE_DIR: &str = ".codex/workspace";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub events: Vec<EventRecord>,
    #[serde(default)]
    pub runs: Vec<RunView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub event: FlowEvent,
    pub created_at: String,
    pub run_ids: Vec<String>,
}

/// One run as the flow client shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: String,
    pub event_id: String,
    pub flow_name: String,
    pub step_name: String,
    pub runner: String,
    pub backend: String,
    /// `completed` when the step ran to an answer, `failed` when it errored.
    pub process_status: String,
    pub result_status: ResultStatus,
    pub status: ResultStatus,
    pub effective_status: ResultStatus,
    pub needs_attention: bool,
    pub gated: bool,
    pub attempt_count: u32,
    pub attempts: Vec<Value>,
    pub output: Vec<Value>,
    pub result_payload: ResultPayload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: String,
    pub completed_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultPayload {
    pub status: ResultStatus,
    pub message: String,
    pub artifacts: Artifacts,
}

impl RunView {
    pub fn from_result(event_id: &str, run: &RunResult) -> RunView {
        let process_status = if run.status == ResultStatus::Failed && run.error { "failed" } else { "completed" };
        RunView {
            id: run.id.clone(),
            event_id: event_id.to_string(),
            flow_name: run.flow.clone(),
            step_name: run.step.clone(),
            runner: run.runner.clone(),
            backend: "local".into(),
            process_status: process_status.into(),
            result_status: run.status,
            status: run.status,
            effective_status: run.status,
            needs_attention: run.status.needs_attention(),
            gated: run.gated,
            attempt_count: 1,
            attempts: vec![serde_json::json!({
                "id": format!("{}:attempt:1", run.id),
                "status": process_status,
                "attemptNumber": 1,
                "startedAt": run.started_at,
                "completedAt": run.completed_at,
                "raw": {"kind": "local-attempt", "runId": run.id},
            })],
            output: Vec::new(),
            result_payload: ResultPayload {
                status: run.status,
                message: run.message.clone(),
                artifacts: run.artifacts.clone(),
            },
            error: run.error.then(|| run.message.clone()),
            created_at: run.started_at.clone(),
            started_at: run.started_at.clone(),
            completed_at: run.completed_at.clone(),
            updated_at: run.completed_at.clone(),
        }
    }

    pub fn to_result(&self) -> RunResult {
        RunResult {
            id: self.id.clone(),
            flow: self.flow_name.clone(),
            step: self.step_name.clone(),
            runner: self.runner.clone(),
            status: self.result_payload.status,
            gated: self.gated,
            message: self.result_payload.message.clone(),
            artifacts: self.result_payload.artifacts.clone(),
            error: self.error.is_some(),
            started_at: self.started_at.clone(),
            completed_at: self.completed_at.clone(),
        }
    }
}

/// The state folder of one workspace.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn of(workspace: &Path) -> StateDir {
        StateDir { dir: workspace.join(WORKSPACE_DIR).join("actions/flow-client") }
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// `runs/<runId>/`, created on demand.
    pub fn run_dir(&self, run_id: &str) -> Result<PathBuf> {
        let dir = self.dir.join("runs").join(run_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(dir)
    }

    /// Takes the state lock (held until the guard drops), so two runs in one
    /// workspace cannot interleave their reads and writes of `state.json`.
    pub fn lock(&self) -> Result<File> {
        ensure_workspace_ignored(&self.dir)?;
        let path = self.dir.join("state.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        file.lock().with_context(|| format!("failed to lock {}", path.display()))?;
        Ok(file)
    }

    /// Reads `state.json`; a missing file is an empty state. A file that
    /// does not parse is an error naming it (we never overwrite what we
    /// cannot read).
    pub fn load(&self) -> Result<State> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("state file {} is not valid; move it away to start afresh", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(err) => Err(err).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec_pretty(state)?;
        write_atomic(&self.state_file(), &json)
    }
}

impl StateDir {
    fn stopped_path(&self, flow: &str, tag: &str) -> PathBuf {
        self.dir.join("stopped").join(format!("{flow}-{tag}.json"))
    }

    /// Keeps the stopped state of a conflicted run, so `resolve` can reuse
    /// it instead of replaying the stack again.
    pub fn save_stopped(&self, flow: &str, tag: &str, stopped: &Stopped) -> Result<()> {
        write_atomic(&self.stopped_path(flow, tag), &serde_json::to_vec_pretty(stopped)?)
    }

    /// The stopped state of the last conflicted run, if it is still recorded.
    pub fn load_stopped(&self, flow: &str, tag: &str) -> Result<Option<Stopped>> {
        let path = self.stopped_path(flow, tag);
        match std::fs::read_to_string(&path) {
            // A record we cannot read is only a lost shortcut: resolve replays instead.
            Ok(text) => Ok(serde_json::from_str(&text).ok()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Forgets it once a run gets past the conflict.
    pub fn clear_stopped(&self, flow: &str, tag: &str) -> Result<()> {
        match std::fs::remove_file(self.stopped_path(flow, tag)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }
}

impl State {
    pub fn event(&self, id: &str) -> Option<&EventRecord> {
        self.events.iter().find(|record| record.event.id == id)
    }

    /// The stored runs of an event, in the order they ran.
    /// The current runs of an event: for each flow step, its latest run (a
    /// replay or a `continue` supersedes what ran before), in first-run order.
    pub fn runs_of(&self, event_id: &str) -> Vec<&RunView> {
        let mut latest: Vec<&RunView> = Vec::new();
        for run in self.runs.iter().filter(|run| run.event_id == event_id) {
            match latest.iter_mut().find(|kept| kept.flow_name == run.flow_name && kept.step_name == run.step_name) {
                Some(kept) => *kept = run,
                None => latest.push(run),
            }
        }
        latest
    }

    /// Records an event (once) and its runs; a run id seen before is replaced.
    pub fn record(&mut self, event: &FlowEvent, runs: &[RunResult], now: &str) {
        let views: Vec<RunView> = runs.iter().map(|run| RunView::from_result(&event.id, run)).collect();
        match self.events.iter_mut().find(|record| record.event.id == event.id) {
            Some(record) => {
                for view in &views {
                    if !record.run_ids.contains(&view.id) {
                        record.run_ids.push(view.id.clone());
                    }
                }
            }
            None => self.events.push(EventRecord {
                event: event.clone(),
                created_at: now.to_string(),
                run_ids: views.iter().map(|view| view.id.clone()).collect(),
            }),
        }
        for view in views {
            self.runs.retain(|run| run.id != view.id);
            self.runs.push(view);
        }
    }
}

/// `.codex/workspace/` holds runtime files only: a `.gitignore` of `*` in it
/// keeps them out of the user's `git status` without touching their files.
fn ensure_workspace_ignored(state_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(state_dir).with_context(|| format!("failed to create {}", state_dir.display()))?;
    let mut dir = state_dir;
    while let Some(parent) = dir.parent() {
        if dir.ends_with("workspace") && parent.ends_with(".codex") {
            let ignore = dir.join(".gitignore");
            if !ignore.exists() {
                std::fs::write(&ignore, "# runtime files of patchmoi and codex-flows\n*\n")
                    .with_context(|| format!("failed to write {}", ignore.display()))?;
            }
            break;
        }
        dir = parent;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename, fsync of the directory. Readers see the old file
/// or the new one, never half of either.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // Whatever patchmoi writes next to the runs is read by people and may be
    // uploaded as an artifact, which Actions does not mask.
    let scrubbed = std::str::from_utf8(bytes).ok().map(scrub_held).filter(|clean| clean.as_bytes() != bytes);
    let bytes = scrubbed.as_ref().map_or(bytes, |clean| clean.as_bytes());
    let dir = path.parent().with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut file =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("failed to write in {}", dir.display()))?;
    file.write_all(bytes).with_context(|| format!("failed to write {} (in {})", path.display(), dir.display()))?;
    file.as_file().sync_all().with_context(|| format!("failed to write {} (in {})", path.display(), dir.display()))?;
    file.persist(path).with_context(|| format!("failed to replace {}", path.display()))?;
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}

/// Where patchmoi's worktrees live inside a workspace.
pub fn worktrees_dir(workspace: &Path) -> PathBuf {
    workspace.join(WORKSPACE_DIR).join("actions/worktrees")
}
