//! Polling one source: fetch (conditionally, with the stored ETag), decide
//! which entries are new against the cursor, store each new release as an
//! event exactly once, dispatch it, and move the cursor.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::config::{FeedSource, TargetConfig};
use super::parse::{parse_xml, release_entries, Entry};
use crate::core::refname;
use crate::flow::event;
use crate::flow::event::FlowEvent;
use crate::github::transport::{self, Request};
use crate::github::{Endpoint, Releases};
use crate::service::attempt::Operation;
use crate::service::dispatch;
use crate::service::settings::WatchedSource;
use crate::service::store::{Cursor, Recorded, Store};

/// How many entry ids a cursor remembers.
const SEEN_LIMIT: usize = 500;

/// What one poll of one source did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollReport {
    pub source_id: String,
    /// 304: nothing fetched.
    pub unchanged: bool,
    /// First poll of a prime-only source: recorded where the feed stands.
    pub primed: bool,
    /// The feed answered, but listed no releases (a wrong URL, a feed of
    /// something else, or a project with none yet).
    pub empty: bool,
    pub new_events: Vec<String>,
    /// Entries whose event was already stored (another path saw it).
    pub duplicates: Vec<String>,
    pub dispatch_failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The entries to emit, oldest first, and the cursor after them. `entries`
/// are newest first. Entries already seen are never emitted again, even
/// when the last seen one has left the feed.
pub fn plan(entries: &[Entry], cursor: Option<&Cursor>, prime_only: bool) -> (Vec<Entry>, Vec<String>) {
    let fresh: Vec<Entry> = match cursor {
        None if prime_only => Vec::new(),
        None => entries.to_vec(),
        Some(cursor) => entries.iter().filter(|entry| !cursor.seen.contains(&entry.id)).cloned().collect(),
    };
    let mut seen: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    for old in cursor.map(|c| c.seen.as_slice()).unwrap_or_default() {
        if seen.len() >= SEEN_LIMIT {
            break;
        }
        if !seen.contains(old) {
            seen.push(old.clone());
        }
    }
    (fresh.into_iter().rev().collect(), seen)
}

/// The fetched feed: entries, or a 304.
enum Fetched {
    NotModified,
    Entries { entries: Vec<Entry>, etag: Option<String> },
}

fn fetch(source: &FeedSource, cursor: Option<&Cursor>, api: &Endpoint) -> Result<Fetched> {
    let etag = cursor.and_then(|c| c.etag.as_deref());
    if source.provider == "github" {
        let github = api.connect(&source.repo.full_name)?;
        // Pages on until a release seen before; a first poll reads one page.
        let known = |tag: &str| cursor.is_none_or(|cursor| cursor.seen.iter().any(|id| id == tag));
        return Ok(match github.releases(etag, known)? {
            Releases::NotModified => Fetched::NotModified,
            Releases::Listed { releases, etag } => {
                Fetched::Entries { entries: release_entries(&releases, source.prereleases), etag }
            }
        });
    }
    let url = source.url.as_deref().unwrap_or_default();
    let mut request = Request::get(url)
        .header("accept", "application/atom+xml, application/rss+xml, application/xml, text/xml;q=0.9");
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = transport::send(&request)?;
    match response.status {
        304 => Ok(Fetched::NotModified),
        200..=299 => {
            let entries =
                parse_xml(&response.body).map_err(|why| anyhow::anyhow!("feed {}: {why}", transport::redact(url)))?;
            Ok(Fetched::Entries { entries, etag: response.etag })
        }
        status => anyhow::bail!("feed {} returned {status}", transport::redact(url)),
    }
}

/// Polls `source` once and counts the poll (and its error) in the store,
/// for the overview and `/metrics`. An error leaves the cursor where it was.
pub fn poll_source(store: &mut Store, watched: &WatchedSource, api: &Endpoint) -> Result<PollReport> {
    let polled = poll_once(store, watched, api);
    let error = polled.as_ref().err().map(|err| format!("{err:#}"));
    if let Err(err) = store.record_poll(&watched.source.id, &event::now(), error.as_deref()) {
        tracing::warn!(source = %watched.source.id, "could not count the poll: {err:#}");
    }
    polled
}

fn poll_once(store: &mut Store, watched: &WatchedSource, api: &Endpoint) -> Result<PollReport> {
    let source = &watched.source;
    let mut report = PollReport { source_id: source.id.clone(), ..PollReport::default() };
    let cursor = store.cursor(&source.id)?;
    let (entries, etag) = match fetch(source, cursor.as_ref(), api)? {
        Fetched::NotModified => {
            report.unchanged = true;
            return Ok(report);
        }
        Fetched::Entries { entries, etag } => (entries, etag),
    };
    if entries.is_empty() {
        tracing::warn!(source = %source.id, "the feed lists no releases; is its URL right?");
        report.empty = true;
    }
    report.primed = cursor.is_none() && source.prime_only;
    let (fresh, seen) = plan(&entries, cursor.as_ref(), source.prime_only);
    for entry in &fresh {
        let event = match release_event(source, entry) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(err) => {
                // One odd entry must not wedge the source: log it and move on.
                tracing::warn!(source = %source.id, entry = %entry.id, "skipped: {err:#}");
                continue;
            }
        };
        let recorded = store.record_event(&event)?;
        // One claim per event: another poller seeing the same release (a
        // second source, a cron `watch --once` beside `serve`) gets false.
        // An event stored by a poll that died before dispatching is still owed.
        let owed = store.claim_dispatch(&event.id)?;
        match recorded {
            Recorded::Duplicate => report.duplicates.push(event.id.clone()),
            Recorded::New => {
                tracing::info!(source = %source.id, event = %event.id, "new release");
                report.new_events.push(event.id.clone());
            }
        }
        if let (true, Some(target)) = (owed, &watched.target) {
            let (record, _) = dispatch::dispatch(store, target, &event, Operation::Dispatch)?;
            if record.status == dispatch::DispatchStatus::Failed {
                report.dispatch_failures += 1;
            }
        }
    }
    let next = Cursor { seen, etag, last_checked_at: Some(event::now()) };
    store.save_cursor(&source.id, &next).context("failed to save the feed cursor")?;
    Ok(report)
}

/// The event for a new release entry, or None (logged) when the entry names
/// no usable tag.
pub fn release_event(source: &FeedSource, entry: &Entry) -> Result<Option<FlowEvent>> {
    let Some(tag) = entry.tag.as_deref().filter(|tag| refname::check_ref_name(tag).is_ok()) else {
        tracing::warn!(source = %source.id, entry = %entry.id, "feed entry names no valid release tag; skipped");
        return Ok(None);
    };
    let event_type = source.target.as_ref().map_or(event::UPSTREAM_RELEASE, TargetConfig::event_type);
    let mut payload = Map::new();
    payload.insert("provider".into(), json!(source.provider));
    payload.insert("repo".into(), json!(source.repo.full_name));
    payload.insert("tag".into(), json!(tag));
    payload.insert("title".into(), json!(entry.title));
    payload.insert("sourceId".into(), json!(source.id));
    payload.insert("entryId".into(), json!(entry.id));
    if let Some(url) = &entry.url {
        payload.insert("url".into(), json!(url));
    }
    if let Some(published) = &entry.published_at {
        payload.insert("publishedAt".into(), json!(published));
    }
    for (key, value) in source.target.as_ref().and_then(TargetConfig::payload).into_iter().flatten() {
        payload.insert(key.clone(), value.clone());
    }
    let repo = payload.get("repo").and_then(Value::as_str).unwrap_or_default().to_string();
    let value = json!({"id": format!("patch:{event_type}:{repo}:{tag}"), "type": event_type, "source": "patch",
                       "occurredAt": entry.published_at, "payload": payload});
    let event = FlowEvent::from_value(value, event::now())
        .map_err(|why| anyhow::anyhow!("source {}: entry {}: {why}", source.id, entry.id))?;
    Ok(Some(event))
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
