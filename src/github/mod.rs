//! The one module that talks to the GitHub API, through octocrab, with
//! domain verbs: for the Action `start_check`, `finish_check`,
//! `open_or_update_pr`, `close_superseded_prs`, `upsert_tracking_issue`; for
//! the patch service `releases`, `dispatch`, `has_branch`, `check_runs_on`,
//! `pull_of_branch`; for `prune` `open_pulls`. octocrab's types stay in
//! here; callers see plain values and [`ApiError`].
//!
//! Requests are JSON in, JSON out. octocrab's own retry layer is left out
//! (its feature is off): it would repeat POSTs. [`retry_delay`] decides
//! instead: reads and idempotent writes are retried a bounded number of times
//! on 5xx and dropped connections, every request on 403/429 that carries
//! `retry-after` or an exhausted rate limit, or that says it hit a secondary
//! rate limit; a create that failed in an unknown state is looked up again
//! before it is tried again. Mutating requests go at least a second apart,
//! as GitHub asks; every wait goes through the endpoint's [`Clock`]. Lists
//! are read to their last page, following `Link: rel="next"`.

mod checks;
mod issues;
pub mod proxy;
mod pulls;
mod releases;
pub mod transport;

pub use checks::{CheckAnnotation, CheckConclusion, CheckOutput, CheckReporter, CheckSpot};
pub use issues::{is_dashboard, TrackingIssue, DASHBOARD_MARKER};
pub use pulls::{pr_creation_refused, OpenPull, PullRequest, PullRequestSpec};
pub use releases::{Release, Releases};

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use hyper_util::rt::TokioExecutor;
use octocrab::service::middleware::auth_header::AuthHeaderLayer;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde_json::Value;

use crate::core::error::error_chain;
use crate::core::runtime::block_on;

// The REST API version, `X-GitHub-Api-Version: 2022-11-28`, goes on every
// request from octocrab itself (its Cargo metadata); adding it again would
// send it twice.

/// How many times one request is sent at most.
const MAX_ATTEMPTS: u32 = 3;

/// The longest wait for a rate limit we accept; longer ones fail clearly.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The first wait after a server error or a dropped connection.
const SERVER_ERROR_WAIT: Duration = Duration::from_secs(1);

/// The first wait after a secondary rate limit that names no time: "wait
/// at least one minute", doubled on each repeat; sends of one request at
/// most [`SECONDARY_ATTEMPTS`].
/// https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#handle-rate-limit-errors-appropriately
const SECONDARY_WAIT: Duration = Duration::from_secs(60);
const SECONDARY_ATTEMPTS: u32 = 4;

/// The least time between two mutating requests (POST, PATCH, PUT, DELETE).
/// https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#pause-between-mutative-requests
const WRITE_GAP: Duration = Duration::from_secs(1);

/// How many pages one listing reads at most (100 items each).
const MAX_PAGES: u32 = 50;

/// How patchmoi waits for GitHub. Waits are decided in GitHub's own units
/// (seconds of `retry-after`, a minute after a secondary limit, a second
/// between writes) and slept scaled by this clock, so tests shorten every
/// wait at once without changing what is decided or logged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// How long one nominal second lasts.
    second: Duration,
}

impl Clock {
    /// Real time: a second is a second.
    pub fn real() -> Clock {
        Clock { second: Duration::from_secs(1) }
    }

    /// A clock on which one nominal second lasts `second`.
    pub fn scaled(second: Duration) -> Clock {
        Clock { second }
    }

    /// How long `nominal` lasts on this clock.
    pub fn real_time(&self, nominal: Duration) -> Duration {
        self.second.mul_f64(nominal.as_secs_f64())
    }

    pub fn sleep(&self, nominal: Duration) {
        std::thread::sleep(self.real_time(nominal));
    }
}

/// How much longer a mutating request must wait, the last one having gone
/// at `last`: GitHub wants writes `gap` apart.
pub fn write_pause(last: Option<std::time::Instant>, now: std::time::Instant, gap: Duration) -> Duration {
    last.map_or(Duration::ZERO, |last| gap.saturating_sub(now.saturating_duration_since(last)))
}

/// When this process last sent a mutating request: GitHub's secondary
/// limits count per token, whichever client sends.
static LAST_WRITE: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Waits until a mutating request may go, and marks that it goes now.
fn pace_write(clock: &Clock) {
    let mut last = LAST_WRITE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pause = write_pause(*last, std::time::Instant::now(), clock.real_time(WRITE_GAP));
    if !pause.is_zero() {
        tracing::debug!("pausing {pause:?} between writes to GitHub");
        std::thread::sleep(pause);
    }
    *last = Some(std::time::Instant::now());
}

/// Where the API is and the token to use there: what the patch service
/// keeps, connecting per repository when it has something to send.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    token: Option<String>,
    /// What every wait for GitHub is measured on.
    pub clock: Clock,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).field("token", &self.token.is_some()).finish()
    }
}

impl Endpoint {
    /// The API at `url` (`GITHUB_API_URL`; GitHub Enterprise works the same
    /// way) with `token`; every wait for it is measured on `clock`.
    pub fn new(url: &str, token: Option<&str>, clock: Clock) -> Endpoint {
        Endpoint { url: url.to_string(), token: token.map(str::to_string), clock }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn connect(&self, repo: &str) -> Result<GitHub> {
        GitHub::connect(&self.url, self.token.as_deref(), repo, self.clock)
    }
}

/// A client for one repository.
pub struct GitHub {
    octo: Octocrab,
    /// `owner/name` of the repository the workflow runs in.
    pub repo: String,
    clock: Clock,
    /// The API's base URL, without a trailing slash.
    base: String,
}

/// How long one request may take, and then reading its answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How many redirects one request follows.
const MAX_REDIRECTS: u32 = 3;

/// A request GitHub answered with an error status, or could not answer.
#[derive(Debug)]
pub struct ApiError {
    /// None when no response came (connection dropped, timeout).
    pub status: Option<u16>,
    pub message: String,
    pub what: String,
    /// GitHub refused for a rate limit (primary or secondary), not for
    /// what the request asked.
    pub rate_limited: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "GitHub answered {status} to {}: {}", self.what, self.message),
            None => write!(f, "no answer from GitHub to {}: {}", self.what, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// Whether the request may or may not have taken effect.
    pub fn unknown_outcome(&self) -> bool {
        self.status.is_none_or(|status| status >= 500)
    }
}

/// The status of an API error anywhere in `err`'s chain.
pub fn api_status(err: &anyhow::Error) -> Option<u16> {
    err.chain().find_map(|cause| cause.downcast_ref::<ApiError>()).and_then(|api| api.status)
}

/// The API error anywhere in `err`'s chain.
pub fn api_error(err: &anyhow::Error) -> Option<&ApiError> {
    err.chain().find_map(|cause| cause.downcast_ref::<ApiError>())
}

/// Whether a 403 or 429 is a rate limit rather than a refusal: it names
/// a wait, an exhausted limit, or a secondary limit (a 429 always is).
pub fn is_rate_limit(status: u16, headers: &[(String, String)], message: &str) -> bool {
    let header = |name: &str| headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    status == 429
        || (status == 403
            && (header("retry-after").is_some()
                || header("x-ratelimit-remaining") == Some("0")
                || is_secondary_limit(message)))
}

/// GitHub's wording for a secondary rate limit (older servers call it abuse detection).
fn is_secondary_limit(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("secondary rate limit") || message.contains("abuse detection")
}

/// How long to wait (in GitHub's seconds, see [`Clock`]) before sending a
/// request again, or None to stop. `attempt` counts the sends so far (1
/// after the first); `message` is GitHub's.
pub fn retry_delay(
    idempotent: bool,
    status: Option<u16>,
    headers: &[(String, String)],
    message: &str,
    attempt: u32,
    now_epoch: u64,
) -> Option<Duration> {
    let header = |name: &str| headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    match status {
        // Rate limits: GitHub did not act on the request, so even a POST may go again.
        // https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#handle-rate-limit-errors-appropriately
        Some(status @ (403 | 429)) => {
            if let Some(seconds) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
                let wait = Duration::from_secs(seconds);
                (attempt < MAX_ATTEMPTS && wait <= MAX_WAIT).then_some(wait)
            } else if header("x-ratelimit-remaining") == Some("0") {
                let reset = header("x-ratelimit-reset")?.parse::<u64>().ok()?;
                let wait = Duration::from_secs(reset.saturating_sub(now_epoch) + 1);
                (attempt < MAX_ATTEMPTS && wait <= MAX_WAIT).then_some(wait)
            } else if is_rate_limit(status, headers, message) {
                // A secondary limit that names no time: a minute, then
                // exponentially longer, a bounded number of times.
                (attempt < SECONDARY_ATTEMPTS).then(|| SECONDARY_WAIT * 2u32.pow(attempt - 1))
            } else {
                None
            }
        }
        Some(status) if status >= 500 && idempotent && attempt < MAX_ATTEMPTS => Some(SERVER_ERROR_WAIT * attempt),
        None if idempotent && attempt < MAX_ATTEMPTS => Some(SERVER_ERROR_WAIT * attempt),
        _ => None,
    }
}

/// The `rel="next"` target of a `Link` header.
/// https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api
pub fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|param| {
            let param = param.trim();
            param == "rel=\"next\"" || param == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then_some(target)
    })
}

impl GitHub {
    /// A client for `repo` at `api_url` (`GITHUB_API_URL`; GitHub Enterprise
    /// works the same way); every wait is measured on `clock`.
    fn connect(api_url: &str, token: Option<&str>, repo: &str, clock: Clock) -> Result<GitHub> {
        // octocrab on the connector the rest of patchmoi uses (proxies and
        // all), with the layers its default client has: base URI, headers,
        // the token only for the API's own host. Timeouts are in `send`.
        let base_uri: http::Uri = api_url
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("GITHUB_API_URL {api_url:?} is not a URL"))?;
        if base_uri.host().is_none() {
            anyhow::bail!("GITHUB_API_URL {api_url:?} is not a URL");
        }
        let auth = match token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| anyhow::anyhow!("the GitHub token is not a valid header value"))?,
            ),
            None => None,
        };
        let user_agent = HeaderValue::from_static(concat!("patchmoi/", env!("CARGO_PKG_VERSION")));
        let octo = block_on(async {
            let client: hyper_util::client::legacy::Client<_, OctoBody> =
                hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(transport::connector());
            let octo = OctocrabBuilder::new_empty()
                .with_service(client)
                .with_layer(&ExtraHeadersLayer::new(Arc::new(vec![(http::header::USER_AGENT, user_agent)])))
                .with_layer(&BaseUriLayer::new(base_uri.clone()))
                .with_layer(&AuthHeaderLayer::new(auth, base_uri.clone(), base_uri.clone()))
                .with_auth(AuthState::None)
                .build();
            match octo {
                Ok(octo) => octo,
                Err(never) => match never {},
            }
        });
        let base = api_url.trim_end_matches('/').to_string();
        Ok(GitHub { octo, repo: repo.to_string(), clock, base })
    }

    /// `/repos/<owner>/<name>` + `path`.
    fn route(&self, path: &str) -> String {
        format!("/repos/{}{path}", self.repo)
    }

    /// Sends one request (with bounded retries) and returns the JSON reply
    /// (`Null` for an empty body). `what` names the request in errors.
    fn call(&self, method: Method, path: &str, body: Option<&Value>, what: &str) -> Result<Value> {
        let idempotent = method != Method::POST;
        self.call_with(method, path, body, what, idempotent)
    }

    /// [`GitHub::call`], saying whether repeating the request is harmless.
    fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        idempotent: bool,
    ) -> Result<Value> {
        let request = Call { method, path, body, headers: &[], what, idempotent, answers: &[] };
        let reply = self.send_call(&request)?;
        Ok(if reply.text.trim().is_empty() { Value::Null } else { serde_json::from_str(&reply.text)? })
    }

    /// Sends `call` with bounded retries. A 2xx, or a status the call
    /// `answers` itself (a 304, a 404 that means "no"), is a reply; any other
    /// status is an [`ApiError`] once retries are spent.
    fn send_call(&self, call: &Call) -> Result<Reply> {
        self.send_at(call, self.route(call.path))
    }

    /// [`GitHub::send_call`] to `uri`, a path below the API's base.
    fn send_at(&self, call: &Call, mut uri: String) -> Result<Reply> {
        let Call { method, path: _, body, headers: extra, what, idempotent, answers } = call;
        let (body, idempotent) = (*body, *idempotent);
        let mutating = !matches!(*method, Method::GET | Method::HEAD);
        let (mut attempt, mut redirects) = (0, 0);
        loop {
            attempt += 1;
            if mutating {
                pace_write(&self.clock);
            }
            let sent = block_on(self.send(method.clone(), &uri, body, extra));
            let (status, headers, text) = match sent {
                Ok(reply) => reply,
                Err(err) => {
                    let error = ApiError { status: None, message: err, what: what.to_string(), rate_limited: false };
                    match retry_delay(idempotent, None, &[], "", attempt, epoch()) {
                        Some(wait) => {
                            tracing::warn!("{error}; trying again in {wait:?}");
                            self.clock.sleep(wait);
                            continue;
                        }
                        None => return Err(error.into()),
                    }
                }
            };
            if status.is_success() || answers.contains(&status.as_u16()) {
                return Ok(Reply { status: status.as_u16(), headers, text });
            }
            // A renamed or transferred repository answers reads with a
            // redirect to its new place. Followed only within the API (the
            // token goes along) and only for reads.
            // https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects
            if status.is_redirection() && *method == Method::GET && redirects < MAX_REDIRECTS {
                let location = headers.get(http::header::LOCATION).and_then(|value| value.to_str().ok());
                if let Some(next) = location.and_then(|location| location.strip_prefix(&self.base)) {
                    if next.starts_with('/') {
                        tracing::debug!("{what}: GitHub redirected to {next}");
                        (uri, redirects, attempt) = (next.to_string(), redirects + 1, attempt - 1);
                        continue;
                    }
                }
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|json| json.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| text.chars().take(300).collect());
            let pairs: Vec<(String, String)> = headers
                .iter()
                .filter_map(|(key, value)| Some((key.as_str().to_string(), value.to_str().ok()?.to_string())))
                .collect();
            let rate_limited = is_rate_limit(status.as_u16(), &pairs, &message);
            let wait = retry_delay(idempotent, Some(status.as_u16()), &pairs, &message, attempt, epoch());
            let error = ApiError { status: Some(status.as_u16()), message, what: what.to_string(), rate_limited };
            match wait {
                Some(wait) => {
                    tracing::warn!("{error}; trying again in {wait:?}");
                    self.clock.sleep(wait);
                }
                None => return Err(error.into()),
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        headers: &[(HeaderName, String)],
    ) -> Result<(StatusCode, HeaderMap, String), String> {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = self.octo.build_request(request, body).map_err(|err| err.to_string())?;
        let response = tokio::time::timeout(TIMEOUT, self.octo.execute(request))
            .await
            .map_err(|_| format!("timed out after {TIMEOUT:?}"))?
            .map_err(|err| error_chain(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = tokio::time::timeout(TIMEOUT, self.octo.body_to_string(response))
            .await
            .map_err(|_| format!("timed out reading the answer after {TIMEOUT:?}"))?
            .map_err(|err| format!("{err}"))?;
        Ok((status, headers, text))
    }

    pub(crate) fn get(&self, path: &str, what: &str) -> Result<Value> {
        self.call(Method::GET, path, None, what)
    }

    /// Every item of a listing, page after page (`Link: rel="next"`), at
    /// most [`MAX_PAGES`] pages. `items` finds the list in a page: the page
    /// itself for most listings, a field of it for check runs.
    pub(crate) fn get_all(
        &self,
        path: &str,
        what: &str,
        items: fn(&Value) -> Option<&Vec<Value>>,
    ) -> Result<Vec<Value>> {
        let call = Call { method: Method::GET, path, body: None, headers: &[], what, idempotent: true, answers: &[] };
        let mut all = Vec::new();
        let mut uri = self.route(path);
        for _ in 0..MAX_PAGES {
            let reply = self.send_at(&call, uri)?;
            let page: Value =
                if reply.text.trim().is_empty() { Value::Null } else { serde_json::from_str(&reply.text)? };
            all.extend(items(&page).into_iter().flatten().cloned());
            let link = reply.headers.get(http::header::LINK).and_then(|value| value.to_str().ok());
            // The next page is within the API; anything else is not followed (the token would go along).
            match link.and_then(next_link).and_then(|next| next.strip_prefix(&self.base)) {
                Some(next) if next.starts_with('/') => uri = next.to_string(),
                _ => return Ok(all),
            }
        }
        tracing::warn!("{what}: stopped after {MAX_PAGES} pages");
        Ok(all)
    }

    pub(crate) fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        self.call(Method::POST, path, Some(body), what)
    }

    pub(crate) fn patch(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        self.call(Method::PATCH, path, Some(body), what)
    }

    /// A PATCH whose effect adds to what is there (check-run annotations are
    /// appended): not repeated after a server error, which may have applied it.
    pub(crate) fn patch_appending(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        self.call_with(Method::PATCH, path, Some(body), what, false)
    }

    pub(crate) fn delete(&self, path: &str, what: &str) -> Result<Value> {
        self.call(Method::DELETE, path, None, what)
    }

    /// Finds an object, or creates it. When the create fails in a way that
    /// may have created it anyway (5xx, no answer), looks again before one
    /// more try: the retry that never makes a duplicate.
    pub(crate) fn find_or_create<T>(
        &self,
        find: impl Fn() -> Result<Option<T>>,
        create: impl Fn() -> Result<T>,
    ) -> Result<T> {
        if let Some(found) = find()? {
            return Ok(found);
        }
        match create() {
            Ok(made) => Ok(made),
            Err(err) if api_error(&err).is_some_and(ApiError::unknown_outcome) => {
                tracing::warn!("{err:#}; looking again before one more try");
                match find()? {
                    Some(found) => Ok(found),
                    None => create(),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Deletes branch `name` on the repository; a branch already gone is fine.
    pub fn delete_branch(&self, name: &str) -> Result<()> {
        match self.delete(&format!("/git/refs/heads/{name}"), &format!("delete branch {name}")) {
            Ok(_) => Ok(()),
            Err(err) if matches!(api_status(&err), Some(404 | 422)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// One request as [`GitHub::send_call`] sends it.
struct Call<'a> {
    method: Method,
    /// Below `/repos/<owner>/<name>`.
    path: &'a str,
    body: Option<&'a Value>,
    headers: &'a [(HeaderName, String)],
    /// Names the request in errors.
    what: &'a str,
    /// Whether sending it twice is harmless.
    idempotent: bool,
    /// Non-2xx statuses that are answers, not errors.
    answers: &'a [u16],
}

/// A status GitHub answered with, its headers and body.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

/// A path segment or query value, percent-encoded: everything but RFC 3986's
/// unreserved characters (branch names carry `/`, heads carry `:`).
pub(crate) fn encode(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

fn epoch() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn retries_are_bounded_and_only_where_safe() {
        let s = Duration::from_secs;
        let secondary = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
        type Case = (bool, Option<u16>, Vec<(String, String)>, &'static str, u32, Option<Duration>);
        let cases: Vec<Case> = vec![
            (true, Some(500), h(&[]), "", 1, Some(s(1))),
            (true, Some(502), h(&[]), "", 2, Some(s(2))),
            (true, Some(500), h(&[]), "", 3, None),
            (false, Some(500), h(&[]), "", 1, None),
            (true, None, h(&[]), "", 1, Some(s(1))),
            (false, None, h(&[]), "", 1, None),
            (false, Some(403), h(&[("Retry-After", "2")]), "", 1, Some(s(2))),
            (false, Some(403), h(&[("Retry-After", "2")]), secondary, 3, None),
            (false, Some(429), h(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1010")]), "", 1, Some(s(11))),
            (true, Some(403), h(&[]), "Resource not accessible by integration", 1, None),
            (true, Some(403), h(&[("retry-after", "3600")]), "", 1, None),
            // A secondary limit without `retry-after`: a minute, then doubling, then give up.
            (false, Some(403), h(&[("x-ratelimit-remaining", "4999")]), secondary, 1, Some(s(60))),
            (false, Some(403), h(&[]), secondary, 2, Some(s(120))),
            (false, Some(403), h(&[]), secondary, 3, Some(s(240))),
            (false, Some(403), h(&[]), secondary, 4, None),
            (true, Some(403), h(&[]), "You have triggered an abuse detection mechanism.", 1, Some(s(60))),
            (false, Some(429), h(&[]), "Too Many Requests", 1, Some(s(60))),
            (true, Some(422), h(&[]), secondary, 1, None),
            (true, Some(404), h(&[]), "", 1, None),
        ];
        for (idempotent, status, headers, message, attempt, want) in cases {
            assert_eq!(
                retry_delay(idempotent, status, &headers, message, attempt, 1000),
                want,
                "{status:?} {headers:?} {message:?} {attempt}"
            );
        }
    }

    #[test]
    fn rate_limits_are_told_from_refusals() {
        let cases = [
            (403, h(&[]), "Resource not accessible by integration", false),
            (403, h(&[("retry-after", "60")]), "", true),
            (403, h(&[("x-ratelimit-remaining", "0")]), "API rate limit exceeded", true),
            (403, h(&[]), "You have exceeded a secondary rate limit", true),
            (429, h(&[]), "", true),
            (422, h(&[("retry-after", "60")]), "", false),
        ];
        for (status, headers, message, want) in cases {
            assert_eq!(is_rate_limit(status, &headers, message), want, "{status} {headers:?} {message}");
        }
    }

    #[test]
    fn writes_are_paced_a_gap_apart() {
        let now = std::time::Instant::now();
        let gap = Duration::from_secs(1);
        let cases = [
            (None, Duration::ZERO),
            (Some(now), gap),
            (Some(now - Duration::from_millis(300)), Duration::from_millis(700)),
            (Some(now - Duration::from_secs(5)), Duration::ZERO),
        ];
        for (last, want) in cases {
            assert_eq!(write_pause(last, now, gap), want, "{last:?}");
        }
        let clock = Clock::scaled(Duration::from_millis(20));
        assert_eq!(clock.real_time(SECONDARY_WAIT), Duration::from_millis(1200));
        assert_eq!(Clock::real().real_time(WRITE_GAP), WRITE_GAP);
    }

    #[test]
    fn next_links_are_read_from_link_headers() {
        let both = r#"<https://api.github.com/repositories/1/pulls?page=3>; rel="next", <https://api.github.com/repositories/1/pulls?page=9>; rel="last""#;
        let cases = [
            (both, Some("https://api.github.com/repositories/1/pulls?page=3")),
            (r#"<https://x/a?page=1>; rel="prev", <https://x/a?page=1>; rel="first""#, None),
            (r#"<https://x/a?page=2>; rel=next"#, Some("https://x/a?page=2")),
            ("", None),
            ("garbage", None),
        ];
        for (link, want) in cases {
            assert_eq!(next_link(link), want, "{link}");
        }
    }
}
