//! Pure tests of the cursor plan and of release events.

use super::*;
use crate::service::feed::config::parse;

fn entry(id: &str) -> Entry {
    Entry { id: id.into(), tag: Some(id.into()), title: String::new(), url: None, published_at: None }
}

fn ids(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.id.as_str()).collect()
}

#[test]
fn first_poll_primes_or_emits_everything_oldest_first() {
    let feed = [entry("v3"), entry("v2"), entry("v1")];
    let (fresh, seen) = plan(&feed, None, true);
    assert!(fresh.is_empty());
    assert_eq!(seen, ["v3", "v2", "v1"]);
    let (fresh, _) = plan(&feed, None, false);
    assert_eq!(ids(&fresh), ["v1", "v2", "v3"]);
}

#[test]
fn later_polls_emit_only_unseen_entries() {
    let cursor = Cursor { seen: vec!["v2".into(), "v1".into()], ..Cursor::default() };
    let (fresh, seen) = plan(&[entry("v4"), entry("v3"), entry("v2")], Some(&cursor), true);
    assert_eq!(ids(&fresh), ["v3", "v4"]);
    assert_eq!(seen, ["v4", "v3", "v2", "v1"]);
    // The last seen entry left the feed: only the unseen one is new.
    let cursor = Cursor { seen: vec!["v4".into(), "v3".into(), "v2".into()], ..Cursor::default() };
    let (fresh, _) = plan(&[entry("v5"), entry("v3")], Some(&cursor), true);
    assert_eq!(ids(&fresh), ["v5"]);
}

#[test]
fn release_events_have_the_canonical_id_and_target_payload() {
    let sources = parse(include_str!("../../../examples/feed-sources.json")).unwrap();
    let source = &sources.sources[0];
    let mut item = entry("tag:github.com,2008:Repository/965415649/rust-v0.131.0");
    item.tag = Some("rust-v0.131.0".into());
    item.title = "0.131.0".into();
    let event = release_event(source, &item).unwrap().unwrap();
    assert_eq!(event.id, "patch:upstream.release:openai/codex:rust-v0.131.0");
    assert_eq!(event.tag(), Some("rust-v0.131.0"));
    assert_eq!(event.payload_str("provider"), Some("github"));
    item.tag = None;
    assert!(release_event(source, &item).unwrap().is_none());
    item.tag = Some("--upload-pack=x".into());
    assert!(release_event(source, &item).unwrap().is_none(), "tags git could read as options are refused");
}
