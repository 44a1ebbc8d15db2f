//! `action`: the GitHub Action's entry point. Inputs arrive as
//! `INPUT_<UPPER_SNAKE>` variables (action.yml sets them in `env:`), the
//! rest from the runner's environment; results go to `$GITHUB_OUTPUT` and
//! `$GITHUB_STEP_SUMMARY`, workflow commands to stdout, logs to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::service_settings::endpoint;
use super::shared::{workspace_root, Exit};
use crate::action::io;
use crate::action::io::{random_token, EventInputs};
use crate::action::job::{self, JobOutcome, JobSettings};
use crate::core::env::Env;
use crate::core::error::usage;
use crate::core::refname::check_tag;
use crate::core::secrets::hold;
use crate::core::status::ResultStatus;
use crate::git;

/// An input: `INPUT_PULL_REQUEST`, or the runner's own `INPUT_PULL-REQUEST`.
fn input<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    let upper = name.to_ascii_uppercase();
    env.get(&format!("INPUT_{}", upper.replace('-', "_")))
        .or_else(|| env.get(&format!("INPUT_{upper}")))
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A boolean input: `true` or `false` (any case), `default` when unset.
fn flag(env: &Env, name: &str, default: bool) -> Result<bool> {
    match input(env, name).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(usage(format!("input `{name}` must be `true` or `false`, not `{other}`"))),
    }
}

/// Resolves every input and runner variable into [`JobSettings`].
pub fn job_settings(env: &Env) -> Result<(JobSettings, bool)> {
    let base = env.get("GITHUB_WORKSPACE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let workspace = base.join(input(env, "workspace").unwrap_or("."));
    let workspace = workspace_root(Some(&workspace)).map_err(|err| usage(format!("input `workspace`: {err:#}")))?;
    let event_payload = match env.get("GITHUB_EVENT_PATH") {
        Some(path) if input(env, "tag").is_none() => Some(read_event(Path::new(path))?),
        _ => None,
    };
    let tag = input(env, "tag").map(str::to_string);
    if let Some(tag) = &tag {
        check_tag(tag).map_err(|err| usage(format!("input `tag`: {err:#}")))?;
    }
    // `promote` as an input, or as a workflow_dispatch input of that name.
    let promote = input(env, "promote").map(str::to_string).or_else(|| {
        let from_dispatch = env.get("GITHUB_EVENT_NAME") == Some("workflow_dispatch");
        let value = event_payload.as_ref().and_then(|event| event["inputs"]["promote"].as_str());
        value.filter(|tag| from_dispatch && !tag.trim().is_empty()).map(|tag| tag.trim().to_string())
    });
    let settings = JobSettings {
        workspace,
        api: endpoint(env, input(env, "token")),
        flow: input(env, "flow").map(str::to_string),
        inputs: EventInputs { tag, repo: input(env, "repo").map(str::to_string) },
        event_name: env.get("GITHUB_EVENT_NAME").map(str::to_string),
        event_payload,
        push: flag(env, "push", true)?,
        pull_request: flag(env, "pull-request", true)?,
        promote,
        server_url: env.get("GITHUB_SERVER_URL").unwrap_or("https://github.com").to_string(),
        repository: env.get("GITHUB_REPOSITORY").map(str::to_string),
        sha: env.get("GITHUB_SHA").map(str::to_string),
        run_url: run_url(env),
        code_mode: env.code_mode(),
        step_env: env.step_env(),
        step_secrets: env.credentials(),
    };
    Ok((settings, flag(env, "fail-on-conflict", true)?))
}

/// The workflow run's page, from `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`
/// and `GITHUB_RUN_ID`; None outside a workflow run.
fn run_url(env: &Env) -> Option<String> {
    let server = env.get("GITHUB_SERVER_URL").unwrap_or("https://github.com").trim_end_matches('/');
    let repository = env.get("GITHUB_REPOSITORY").filter(|repo| !repo.is_empty())?;
    let run = env.get("GITHUB_RUN_ID").filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("{server}/{repository}/actions/runs/{run}"))
}

fn read_event(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| usage(format!("GITHUB_EVENT_PATH {}: cannot read it: {err}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|err| usage(format!("GITHUB_EVENT_PATH {}: not valid JSON: {err}", path.display())))
}

/// `action`.
pub fn cmd_action(env: &Env) -> Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // First of all, so the runner hides the token from anything printed later.
    if let Some(token) = input(env, "token") {
        write!(out, "{}", io::mask(token))?;
        write!(out, "{}", io::mask(&git::basic_credential(token)))?;
        out.flush()?;
    }
    let (settings, fail_on_conflict) = job_settings(env)?;
    // The token and the credential git derives from it, hidden everywhere from here on.
    hold(settings.secrets());
    let outcome = job::run(&settings, &mut out);
    let secrets = settings.secrets();
    let job = match outcome {
        Ok(job) => job,
        Err(err) => {
            // Later steps still see a status, and the error is written once by main.
            let failed = JobOutcome { status: ResultStatus::Failed, event: None, flows: Vec::new(), nothing: None };
            let _ = append(env.get("GITHUB_OUTPUT"), &job::outputs(&failed, &random_token()));
            return Err(err);
        }
    };
    out.flush()?;
    append(env.get("GITHUB_STEP_SUMMARY"), &job::summary_markdown(&job, &secrets))?;
    append(env.get("GITHUB_OUTPUT"), &job::outputs(&job, &random_token()))?;
    // People read this on stderr; commit subjects and git's messages are in
    // it, so workflow commands stay off while it prints.
    let mut text = String::new();
    for flow in &job.flows {
        text.push_str(&format!("{}: {}\n", flow.flow, flow.status.map(|s| s.as_str()).unwrap_or("skipped")));
        for run in &flow.runs {
            text.push_str(&format!("  {} / {}  {}  {}\n", run.flow, run.step, run.status, run.message));
        }
        if let Some(url) = &flow.pr_url {
            text.push_str(&format!("  pull request {url}\n"));
        }
    }
    if let Some(reason) = &job.nothing {
        text.push_str(&format!("nothing to do: {reason}\n"));
    }
    text.push_str(&format!("status: {}\n", job.status));
    eprint!("{}", io::untrusted(&io::scrub(&text, &secrets), &random_token()));
    Ok(match job.status {
        ResultStatus::NeedsIntervention if !fail_on_conflict => Exit::Done,
        status if status.needs_attention() => Exit::Attention,
        _ => Exit::Done,
    })
}

/// Appends to a runner file (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), if set.
fn append(path: Option<&str>, text: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("failed to open {path}"))?;
    file.write_all(text.as_bytes()).with_context(|| format!("failed to write {path}"))
}
