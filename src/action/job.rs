//! `patchmoi action`: one GitHub Actions job. Resolve the event, deepen a
//! shallow checkout, run the flows; as each rebase ends, push the candidate
//! and its base branch `patchmoi/upstream/<tag>`; check runs go in progress
//! on the pushed commit and complete with the step; then the PR, older PRs
//! closed, the tracking issue for a conflict. With `push: false` nothing
//! reaches GitHub: the summary and outputs carry the result.

pub use super::outcome::{base_branch, FlowOutcome, JobOutcome, JobSettings};
pub use super::text::{outputs, summary_markdown};

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::Value;

use super::checkbox;
use super::dashboard;
use super::publisher::Publisher;
use crate::action::io::{resolve_trigger, Trigger};
use crate::core::error::usage;
use crate::core::refname;
use crate::core::status::ResultStatus;
use crate::flow::event;
use crate::flow::event::FlowEvent;
use crate::flow::flows::{self, Flow};
use crate::flow::runner::{newest_release, run_event_observed, select_flows, RunResult, RunSettings};
use crate::git;
use crate::git::Git;

/// Runs the job; workflow commands (groups, annotations) go to `out`.
pub fn run(settings: &JobSettings, out: &mut dyn Write) -> Result<JobOutcome> {
    let root = &settings.workspace;
    let flows = flows::discover(root)?;
    let git = Git::open(root)?;
    let remote_git = match settings.api.token() {
        Some(token) => git.with_http_auth(&settings.server_url, token),
        None => git.clone(),
    };
    deepen(&remote_git, &flows)?;
    if let Some(tag) = &settings.promote {
        refname::check_tag(tag).map_err(|err| usage(format!("input `promote`: {err:#}")))?;
        if !settings.push {
            let why =
                format!("input `promote: {tag}` moves the maintained branch on origin, which `push: false` forbids");
            return Ok(JobOutcome {
                status: ResultStatus::Skipped,
                event: None,
                flows: Vec::new(),
                nothing: Some(why),
            });
        }
        let repo = match &settings.inputs.repo {
            Some(repo) => repo.clone(),
            None => upstream_repo(&flows, settings.flow.as_deref())?,
        };
        let fork = settings.repository.as_deref().ok_or_else(|| usage("GITHUB_REPOSITORY is not set"))?;
        let github = settings.api.connect(fork)?;
        return super::promotion::promote(&remote_git, &github, &flows, settings.flow.as_deref(), &repo, tag);
    }
    let now = event::now();
    let trigger =
        resolve_trigger(&settings.inputs, settings.event_name.as_deref(), settings.event_payload.as_ref(), &now)
            .map_err(usage)?;
    // Each event with the flows it is for (None: every flow that matches).
    let mut skipped = Vec::new();
    // A `retry` box asks for a new run even where the checkout kept the
    // last one's results (a self-hosted runner): the maintainer may have
    // changed the branch since.
    let mut retrying = false;
    let events: Vec<(FlowEvent, Option<Vec<String>>)> = match trigger {
        Trigger::Event(event) => vec![(event, None)],
        Trigger::Nothing(reason) => return Ok(nothing(reason)),
        Trigger::DashboardEdited(edit) => {
            if !settings.push {
                return Ok(nothing("a dashboard box acts on GitHub, which `push: false` forbids".into()));
            }
            let fork = settings.repository.as_deref().ok_or_else(|| usage("GITHUB_REPOSITORY is not set"))?;
            let github = settings.api.connect(fork)?;
            let repo = match &settings.inputs.repo {
                Some(repo) => repo.clone(),
                None => upstream_repo(&flows, settings.flow.as_deref())?,
            };
            let acted = checkbox::act(&remote_git, &github, &flows, &repo, &edit, &now, &settings.secrets())?;
            if let Some(why) = acted.refused {
                return Ok(nothing(why));
            }
            match (acted.promoted, acted.retries.is_empty()) {
                (Some(promoted), true) => return Ok(promoted),
                (None, true) => return Ok(nothing("no box to act on".into())),
                _ => {
                    retrying = true;
                    acted.retries.into_iter().map(|(event, names)| (event, Some(names))).collect()
                }
            }
        }
        Trigger::Schedule => {
            let (events, handled) = scheduled(settings, &remote_git, &flows, &now)?;
            if events.is_empty() {
                return Ok(nothing(handled.join("; ")));
            }
            handled.iter().for_each(|reason| tracing::info!("{reason}"));
            skipped = handled;
            events.into_iter().map(|(event, names)| (event, Some(names))).collect()
        }
    };
    let mut chosen = Vec::new();
    for (event, names) in events {
        if let Some(tag) = event.tag() {
            refname::check_tag(tag)?;
        }
        let selected: Vec<&Flow> = select_flows(&flows, &event, settings.flow.as_deref())?
            .into_iter()
            .filter(|flow| names.as_ref().is_none_or(|names| names.contains(&flow.name)))
            .collect();
        chosen.push((event, selected));
    }
    let gh = match settings.push {
        false => None,
        true => {
            let repo = settings.repository.as_deref().ok_or_else(|| usage("GITHUB_REPOSITORY is not set"))?;
            Some(settings.api.connect(repo)?)
        }
    };
    let run_settings = RunSettings {
        workspace: root.clone(),
        flow: settings.flow.clone(),
        push: false,
        replay: retrying,
        code_mode: settings.code_mode,
        step_env: settings.step_env.clone(),
        step_secrets: settings.step_secrets.clone(),
        echo_steps: false,
        git_env: match settings.api.token() {
            Some(token) => git::http_auth_env(&settings.server_url, token),
            None => Vec::new(),
        },
        github: settings.api.token().map(|_| settings.api.clone()),
    };
    let mut publisher = Publisher::new(settings, remote_git, gh.as_ref(), out);
    let mut outcomes = Vec::new();
    let mut rows = Vec::new();
    for (event, selected) in &chosen {
        let report = run_event_observed(&run_settings, selected, event, &mut publisher)?;
        for flow in selected {
            let runs: Vec<RunResult> = report.runs.iter().filter(|run| run.flow == flow.name).cloned().collect();
            let outcome = publisher.finish_flow(flow, event, runs, report.stored)?;
            rows.push(dashboard::row(&outcome, event.tag().unwrap_or_default(), &now));
            outcomes.push(outcome);
        }
    }
    publisher.update_dashboard(rows, skipped, &now);
    let status = ResultStatus::aggregate(outcomes.iter().filter_map(|o| o.status)).unwrap_or(ResultStatus::Skipped);
    let event = chosen.into_iter().next().map(|(event, _)| event);
    Ok(JobOutcome { status, event, flows: outcomes, nothing: None })
}

fn nothing(reason: String) -> JobOutcome {
    tracing::info!("{reason}");
    JobOutcome { status: ResultStatus::Skipped, event: None, flows: Vec::new(), nothing: Some(reason) }
}

/// actions/checkout fetches one commit by default; the engine needs the
/// maintained branch down to its merge-base with the release. When the
/// fetch fails the engine ends `blocked` and names `fetch-depth: 0`.
fn deepen(git: &Git, flows: &[Flow]) -> Result<()> {
    if !git.is_shallow()? {
        return Ok(());
    }
    let remote = flows.iter().find_map(|flow| flow.stack.as_ref()).map_or("origin", |stack| stack.remote.as_str());
    tracing::info!("shallow checkout: fetching the full history from {remote}");
    if let Err(err) = git.unshallow(remote) {
        tracing::warn!("{err:#}; set `fetch-depth: 0` on actions/checkout");
    }
    Ok(())
}

/// A scheduled run: each flow's newest release (flows on the same tag share
/// one event), unless origin already has its base branch: an earlier run
/// handled it. Returns the events with their flows, and what was skipped.
type Scheduled = (Vec<(FlowEvent, Vec<String>)>, Vec<String>);

fn scheduled(settings: &JobSettings, git: &Git, flows: &[Flow], now: &str) -> Result<Scheduled> {
    let repo = match &settings.inputs.repo {
        Some(repo) => repo.clone(),
        None => upstream_repo(flows, settings.flow.as_deref())?,
    };
    let probe = FlowEvent::upstream_release(&repo, "", String::new());
    let mut events: Vec<(FlowEvent, Vec<String>)> = Vec::new();
    let mut handled = Vec::new();
    let only = settings.flow.as_deref();
    for flow in flows.iter().filter(|flow| only.is_none_or(|name| flow.name == name)) {
        let (Some(stack), true) = (&flow.stack, flow.matches(&probe, true)) else { continue };
        let tag = newest_release(git, flows, &repo, Some(&flow.name))?;
        let base = format!("refs/heads/{}", base_branch(&tag));
        let known = git.remote_ref(&stack.remote, &base).context("failed to ask origin which releases it has")?;
        if known.is_some() {
            handled.push(format!(
                "{}: {} already has {}, release {tag} was handled",
                flow.name,
                stack.remote,
                base_branch(&tag)
            ));
            continue;
        }
        match events.iter_mut().find(|(event, _)| event.tag() == Some(tag.as_str())) {
            Some((_, names)) => names.push(flow.name.clone()),
            None => events.push((FlowEvent::upstream_release(&repo, &tag, now.to_string()), vec![flow.name.clone()])),
        }
    }
    if events.is_empty() && handled.is_empty() {
        return Err(usage(format!("no flow with a `stack:` handles releases of {repo}; set the `tag` input")));
    }
    Ok((events, handled))
}

/// The one upstream repository the flows' `on.payload.repo` name.
fn upstream_repo(flows: &[Flow], only: Option<&str>) -> Result<String> {
    let mut repos: Vec<&str> = flows
        .iter()
        .filter(|flow| only.is_none_or(|name| flow.name == name))
        .filter_map(|flow| flow.on.payload.get("repo").and_then(Value::as_str))
        .collect();
    repos.dedup();
    match repos.as_slice() {
        [repo] => Ok(repo.to_string()),
        [] => Err(usage("no flow names its upstream in `on.payload.repo`; set the `repo` input")),
        _ => Err(usage(format!("the flows follow several upstreams ({}); set the `repo` input", repos.join(", ")))),
    }
}
