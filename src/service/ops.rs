//! The patch service's operations, shared by the CLI and the HTTP API:
//! where `DATA_DIR` is, which target a retry goes to, retry and replay of a
//! stored event, and sync of an attempt from wherever its runs live.

use std::path::Path;

use serde::Serialize;

use crate::flow::event;
use crate::flow::event::FlowEvent;
use crate::github::Endpoint;
use crate::service::attempt::{apply_observations, Attempt, Operation, Transport};
use crate::service::backend::Backend;
use crate::service::dispatch;
use crate::service::dispatch::{DispatchRecord, Target};
use crate::service::local;
use crate::service::settings::ServiceSettings;
use crate::service::store::{Lookup, Store};
use crate::service::webhook;

/// Why an operation did not happen; the CLI and the API map these to exit
/// codes and HTTP statuses.
#[derive(Debug)]
pub enum ServiceError {
    /// No such event or attempt (404, exit 1).
    NotFound(String),
    /// The request itself is wrong: an ambiguous prefix, a transport that
    /// cannot be synced this way (400, exit 2).
    BadInput(String),
    /// The backend, GitHub or the local runner failed (502, exit 1).
    Upstream(anyhow::Error),
    /// Our own storage failed.
    Internal(anyhow::Error),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::NotFound(what) | ServiceError::BadInput(what) => f.write_str(what),
            ServiceError::Upstream(err) | ServiceError::Internal(err) => write!(f, "{err:#}"),
        }
    }
}

impl From<anyhow::Error> for ServiceError {
    fn from(err: anyhow::Error) -> ServiceError {
        ServiceError::Internal(err)
    }
}

/// What a retry or replay did.
#[derive(Debug, Serialize)]
pub struct Redispatch {
    pub event: FlowEvent,
    pub dispatch: DispatchRecord,
    pub attempt: Attempt,
}

/// Dispatches the stored event `event_id` again (`Retry`) or asks the
/// target to run it again (`Replay`), recording a new attempt.
pub fn redispatch(
    store: &mut Store,
    target: &Target,
    event_id: &str,
    operation: Operation,
) -> Result<Redispatch, ServiceError> {
    let event =
        store.event(event_id)?.ok_or_else(|| ServiceError::NotFound(format!("flow event not found: {event_id}")))?;
    let (dispatch, attempt) = dispatch::dispatch(store, target, &event, operation)?;
    Ok(Redispatch { event, dispatch, attempt })
}

/// The attempt `id_or_prefix`, or why not.
pub fn find_attempt(store: &Store, id_or_prefix: &str) -> Result<Attempt, ServiceError> {
    match store.attempt(id_or_prefix)? {
        Lookup::Found(attempt) => Ok(attempt),
        Lookup::NotFound => Err(ServiceError::NotFound(format!("maintenance attempt not found: {id_or_prefix}"))),
        Lookup::Ambiguous(ids) => Err(ServiceError::BadInput(format!(
            "attempt id prefix {id_or_prefix:?} matches several attempts: {}",
            ids.join(", ")
        ))),
    }
}

/// A repository_dispatch attempt, from the check runs and the PR on its
/// candidate branch `patchmoi/<tag>` in the fork (what the webhook would
/// have told us).
fn sync_from_github(store: &Store, api: &Endpoint, attempt: &Attempt) -> Result<Attempt, ServiceError> {
    let repo = attempt.workspace_backend_url.as_deref().and_then(|url| url.strip_prefix("github:"));
    let (Some(repo), Some(branch)) = (repo, webhook::default_candidate(attempt)) else {
        return Err(ServiceError::BadInput("the attempt does not name the fork and tag to sync from".into()));
    };
    let github = api.connect(repo).map_err(ServiceError::Upstream)?;
    let now = event::now();
    let check_runs = github.check_runs_on(&branch).map_err(ServiceError::Upstream)?;
    let pull = github.pull_of_branch(&branch).map_err(ServiceError::Upstream)?;
    let next = store.update_attempt(&attempt.id, |current| {
        let next = webhook::apply_check_runs(current, &check_runs, &now);
        match &pull {
            Some(pull) => webhook::apply_pull_request(&next, pull, &now),
            None => next,
        }
    })?;
    Ok(next)
}

/// Pulls the attempt's run results from where its runs live and stores the
/// merged attempt (sync never moves a finished attempt back to `started`).
pub fn sync(store: &Store, settings: &ServiceSettings, id_or_prefix: &str) -> Result<Attempt, ServiceError> {
    let attempt = find_attempt(store, id_or_prefix)?;
    let observed = match attempt.transport {
        Transport::WorkspaceHttp => {
            // The runs live where the event went; a URL stored without its
            // credentials is looked up in the environment again.
            let stored = attempt.workspace_backend_url.as_deref().filter(|url| !url.contains("***@"));
            let backend = stored
                .map(|url| Backend::new(url, None))
                .or_else(|| settings.backend.clone())
                .ok_or_else(|| ServiceError::BadInput("no workspace backend URL to sync from".into()))?;
            let mut runs = Vec::new();
            for run_id in &attempt.workspace_run_ids {
                runs.push(backend.run(run_id).map_err(ServiceError::Upstream)?);
            }
            runs
        }
        Transport::Local | Transport::ActionsLocal => {
            let root = attempt
                .workspace_root
                .as_deref()
                .ok_or_else(|| ServiceError::BadInput("the attempt does not say which checkout ran it".into()))?;
            local::sync(Path::new(root), &attempt.event_id, &attempt.workspace_run_ids)
                .map_err(ServiceError::Upstream)?
        }
        Transport::RepositoryDispatch => return sync_from_github(store, &settings.api, &attempt),
    };
    let now = event::now();
    let next = store.update_attempt(&attempt.id, |current| apply_observations(current, &observed, &now))?;
    if let Err(err) = store.record_runs(&next.id, &next.event_id, &observed, &now) {
        tracing::warn!(attempt = %next.id, "could not store the runs' reports: {err:#}");
    }
    Ok(next)
}
