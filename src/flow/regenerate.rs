//! The flow's side of `regenerate:` rules: their commands run as `run:`
//! steps run (the allowlisted step environment, the step time limit, a log
//! in the run's directory), called back by the engine when a rule covers a
//! stopped patch's conflicts. The engine keeps the replay going itself, so
//! the rest of the stack stays batched; it only asks the flow to run the
//! command.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::engine::patch::Patch;
use crate::engine::regenerate::{CommandRun, RegenerateRule, Regenerator};
use crate::flow::shell::{run_check, CheckOutcome, CheckSpec};

/// The time limit of a rule's command: that of a step without `timeout:`.
const TIME_LIMIT: Duration = Duration::from_secs(60 * 60);

/// Runs rules' commands for one `uses: rebase` step.
pub struct StepRegenerator {
    /// The environment `run:` steps get.
    pub env: Vec<(String, String)>,
    /// Where the logs go: `regenerate-<n>.log`.
    pub log_dir: PathBuf,
    /// Every log written, with its last lines, in order.
    pub logs: RefCell<Vec<(PathBuf, Vec<String>)>>,
}

impl Regenerator for StepRegenerator {
    fn run(&self, rule: &RegenerateRule, checkout: &Path, patch: &Patch) -> Result<CommandRun> {
        let number = self.logs.borrow().len() + 1;
        let log_path = self.log_dir.join(format!("regenerate-{number}.log"));
        let cwd = match &rule.working_directory {
            Some(dir) => checkout.join(dir),
            None => checkout.to_path_buf(),
        };
        let mut env = self.env.clone();
        env.push(("PATCHMOI_WORKTREE".into(), checkout.display().to_string()));
        env.push(("PATCHMOI_PATCH_SHA".into(), patch.sha.clone()));
        let spec = CheckSpec {
            name: format!("regenerate {}", rule.paths.join(", ")),
            command: rule.run.clone(),
            cwd,
            env,
            env_remove: Vec::new(),
            inherit_env: false,
            timeout: TIME_LIMIT,
            log_path: log_path.clone(),
            echo: false,
        };
        let result = run_check(&spec)?;
        let summary = match result.outcome {
            CheckOutcome::Passed => "exited 0".to_string(),
            CheckOutcome::Failed { exit_code: Some(code), .. } => format!("failed with exit code {code}"),
            CheckOutcome::Failed { signal, .. } => format!("was killed by signal {}", signal.unwrap_or_default()),
            CheckOutcome::TimedOut => format!("timed out after {}", humantime::format_duration(TIME_LIMIT)),
        };
        self.logs.borrow_mut().push((log_path.clone(), result.log_tail));
        Ok(CommandRun { passed: matches!(result.outcome, CheckOutcome::Passed), summary, log: Some(log_path) })
    }
}
