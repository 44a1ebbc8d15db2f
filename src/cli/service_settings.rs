//! The service's settings, resolved once from flags, files and the
//! environment: where events go (the workspace backend, repository_dispatch,
//! a local checkout), the GitHub endpoint, and each feed source's target.
//! The service itself never sees the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::core::env::Env;
use crate::core::error::usage;
use crate::github::proxy::Proxies;
use crate::github::{Clock, Endpoint};
use crate::service::backend::Backend;
use crate::service::feed::config::{self, TargetConfig};
use crate::service::feed::WatchSettings;
use crate::service::http_limits::Limits;
use crate::service::server::ServerSettings;
use crate::service::settings::{ServiceSettings, WatchedSource};
use crate::service::target::{LocalTarget, Target};

/// `--data-dir`, else `DATA_DIR`, else `./data` (relative to the current directory).
pub fn data_dir(flag: Option<&Path>, env: &Env) -> PathBuf {
    flag.map(Path::to_path_buf).or_else(|| env.get("DATA_DIR").map(PathBuf::from)).unwrap_or_else(|| "data".into())
}

/// Whether `CODEX_WORKSPACE_MODE=actions` or `GITHUB_ACTIONS=true`.
pub fn actions_mode(env: &Env) -> bool {
    env.get("CODEX_WORKSPACE_MODE") == Some("actions") || env.get("GITHUB_ACTIONS") == Some("true")
}

/// `GITHUB_API_URL` (default `https://api.github.com`) with `token`;
/// `PATCHMOI_API_BACKOFF_MS` sets the first wait after a server error
/// (default 1000), and every other wait for GitHub (rate limits, the pause
/// between writes) shortens or lengthens in proportion: tests set it low.
pub fn endpoint(env: &Env, token: Option<&str>) -> Endpoint {
    let clock = match env.get("PATCHMOI_API_BACKOFF_MS").and_then(|ms| ms.parse().ok()) {
        Some(ms) => Clock::scaled(Duration::from_millis(ms)),
        None => Clock::real(),
    };
    Endpoint::new(env.get("GITHUB_API_URL").unwrap_or("https://api.github.com"), token, clock)
}

/// The proxies every HTTP request goes through: `https_proxy` or
/// `HTTPS_PROXY`, `http_proxy` or `HTTP_PROXY` (lowercase first, as curl
/// reads them), `all_proxy` or `ALL_PROXY` for either when unset, and
/// `no_proxy` or `NO_PROXY`. Empty values count as unset.
pub fn proxies(env: &Env) -> Proxies {
    let var = |name: &str| {
        [name.to_ascii_lowercase(), name.to_string()]
            .iter()
            .find_map(|name| env.get(name).map(str::trim).filter(|value| !value.is_empty()))
            .map(str::to_string)
    };
    let all = var("ALL_PROXY");
    Proxies { http: var("HTTP_PROXY").or_else(|| all.clone()), https: var("HTTPS_PROXY").or(all), no: var("NO_PROXY") }
}

/// The runner in-process on `workspace`, with the step environment and
/// credentials of this process.
pub fn local_target(env: &Env, workspace: &Path, push: bool) -> LocalTarget {
    LocalTarget {
        workspace: workspace.to_path_buf(),
        actions: actions_mode(env),
        code_mode: env.code_mode(),
        step_env: env.step_env(),
        step_secrets: env.credentials(),
        push,
    }
}

/// The service's settings for a checkout at `workspace`.
pub fn service_settings(env: &Env, workspace: &Path) -> ServiceSettings {
    let backend = backend(&BackendSpec::default(), env);
    let default_target = match &backend {
        Some(backend) => Target::Workspace(backend.clone()),
        None => Target::Local(local_target(env, workspace, false)),
    };
    ServiceSettings {
        workspace: workspace.to_path_buf(),
        default_target,
        backend,
        api: endpoint(env, env.get("GITHUB_TOKEN")),
    }
}

/// The server's settings: `HOST`, `PORT`, the admin token and webhook
/// secret, the service's targets, and the watchers of `FEED_SOURCES_PATH`.
pub fn server_settings(env: &Env, data_dir: PathBuf, workspace: &Path) -> Result<ServerSettings> {
    let port = match env.get("PORT") {
        Some(text) => text.parse().map_err(|_| usage(format!("PORT must be a port number, not {text:?}")))?,
        None => 3000,
    };
    let watch = match env.get("FEED_SOURCES_PATH") {
        Some(file) => Some(watch_settings(Path::new(file), data_dir.clone(), env, workspace)?),
        None => None,
    };
    Ok(ServerSettings {
        host: env.get("HOST").unwrap_or("127.0.0.1").to_string(),
        port,
        data_dir,
        service: service_settings(env, workspace),
        admin_token: env.get("PATCH_ADMIN_TOKEN").map(str::to_string),
        webhook_secret: env.get("PATCH_WEBHOOK_SECRET").map(str::to_string),
        public_badges: flag(env, "PATCH_PUBLIC_BADGES")?,
        metrics_public: flag(env, "PATCH_METRICS_PUBLIC")?,
        watch,
        limits: limits(env)?,
    })
}

/// A yes/no setting: `1`/`true` or `0`/`false` (unset is no).
fn flag(env: &Env, name: &str) -> Result<bool> {
    match env.get(name).map(str::trim) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(usage(format!("{name} must be 1 or 0, not {other:?}"))),
    }
}

/// The watcher's settings: the sources file loaded, each source's target
/// resolved (once, here).
pub fn watch_settings(file: &Path, data_dir: PathBuf, env: &Env, workspace: &Path) -> Result<WatchSettings> {
    let sources = config::load(file)?
        .sources
        .into_iter()
        .map(|source| {
            let target = resolve_target(source.target.as_ref(), env, workspace);
            WatchedSource { source, target }
        })
        .collect();
    Ok(WatchSettings { file: file.to_path_buf(), sources, data_dir, api: endpoint(env, env.get("GITHUB_TOKEN")) })
}

/// Where the URL and secret come from: a feed target's own fields first,
/// then the environment.
#[derive(Debug, Clone, Default)]
pub struct BackendSpec<'a> {
    pub url: Option<&'a str>,
    pub url_env: Option<&'a str>,
    pub secret_env: Option<&'a str>,
}

/// URL: the spec's URL, the variable it names, then
/// `PATCH_WORKSPACE_BACKEND_URL`, `PATCH_FLOW_BACKEND_URL`,
/// `PATCH_FLOW_DISPATCH_URL`. Secret: the variable the spec names, then
/// `PATCH_WORKSPACE_BACKEND_SECRET`, `PATCH_FLOW_DISPATCH_SECRET`.
pub fn backend(spec: &BackendSpec<'_>, env: &Env) -> Option<Backend> {
    let named = |name: Option<&str>| name.and_then(|name| env.get(name)).map(str::trim);
    let url = spec
        .url
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .or_else(|| named(spec.url_env))
        .or_else(|| env.get("PATCH_WORKSPACE_BACKEND_URL"))
        .or_else(|| env.get("PATCH_FLOW_BACKEND_URL"))
        .or_else(|| env.get("PATCH_FLOW_DISPATCH_URL"))?;
    let secret = named(spec.secret_env)
        .or_else(|| env.get("PATCH_WORKSPACE_BACKEND_SECRET"))
        .or_else(|| env.get("PATCH_FLOW_DISPATCH_SECRET"))
        .map(str::to_string);
    Some(Backend::new(url, secret))
}

/// Where a source's events go; None for `notify_only` (and no target).
pub fn resolve_target(target: Option<&TargetConfig>, env: &Env, workspace: &Path) -> Option<Target> {
    match target? {
        TargetConfig::NotifyOnly { .. } => None,
        TargetConfig::WorkspaceFlow {
            workspace_url,
            workspace_url_env,
            workspace_secret_env,
            dispatch_url,
            dispatch_url_env,
            dispatch_secret_env,
            ..
        } => {
            let spec = BackendSpec {
                url: workspace_url.as_deref().or(dispatch_url.as_deref()),
                url_env: workspace_url_env
                    .as_deref()
                    .filter(|name| env.get(name).is_some())
                    .or(dispatch_url_env.as_deref()),
                secret_env: workspace_secret_env
                    .as_deref()
                    .filter(|name| env.get(name).is_some())
                    .or(dispatch_secret_env.as_deref()),
            };
            match backend(&spec, env) {
                Some(backend) => Some(Target::Workspace(backend)),
                None if actions_mode(env) => Some(Target::Local(local_target(env, workspace, false))),
                None => Some(Target::Missing(
                    "no workspace backend URL: set PATCH_WORKSPACE_BACKEND_URL (or the target's workspaceUrlEnv)"
                        .into(),
                )),
            }
        }
        TargetConfig::RepositoryDispatch { repo, token_env, .. } => {
            let token = token_env.as_deref().and_then(|name| env.get(name)).or_else(|| env.get("GITHUB_TOKEN"));
            Some(Target::RepositoryDispatch { api: endpoint(env, token), repo: repo.clone() })
        }
        TargetConfig::Local { workspace_root, .. } => {
            let root = workspace_root.as_deref().map(Path::new).unwrap_or(workspace);
            Some(Target::Local(local_target(env, root, false)))
        }
    }
}

/// `serve`'s HTTP limits from `PATCH_HTTP_*` and `PATCH_SHUTDOWN_TIMEOUT`,
/// each with its default; nonsense is a usage error naming the variable.
pub fn limits(env: &Env) -> Result<Limits> {
    let base = Limits::default();
    Ok(Limits {
        header_timeout: duration(env, "PATCH_HTTP_HEADER_TIMEOUT", base.header_timeout)?,
        body_timeout: duration(env, "PATCH_HTTP_BODY_TIMEOUT", base.body_timeout)?,
        request_timeout: duration(env, "PATCH_HTTP_REQUEST_TIMEOUT", base.request_timeout)?,
        max_body: count(env, "PATCH_HTTP_MAX_BODY", base.max_body)?,
        max_connections: count(env, "PATCH_HTTP_MAX_CONNECTIONS", base.max_connections)?,
        shutdown_timeout: duration(env, "PATCH_SHUTDOWN_TIMEOUT", base.shutdown_timeout)?,
    })
}

fn duration(env: &Env, name: &str, default: Duration) -> Result<Duration> {
    match env.get(name) {
        None => Ok(default),
        Some(text) => match humantime::parse_duration(text) {
            Ok(value) if !value.is_zero() => Ok(value),
            _ => Err(usage(format!("{name} must be a duration such as 10s or 2m, not {text:?}"))),
        },
    }
}

fn count(env: &Env, name: &str, default: usize) -> Result<usize> {
    match env.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|value| *value > 0)
            .with_context(|| format!("{name} must be a whole number above 0, not {text:?}"))
            .map_err(|err| usage(format!("{err:#}"))),
    }
}

#[cfg(test)]
#[path = "service_settings_tests.rs"]
mod tests;
