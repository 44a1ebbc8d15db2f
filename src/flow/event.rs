//! Events: the `FlowEvent` shape shared with the original Patch system and
//! codex-flows, the deterministic id of an upstream release, and reading
//! events from files.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::error::usage;

/// The event type of a new upstream release.
pub const UPSTREAM_RELEASE: &str = "upstream.release";

/// Something that happened upstream, which flows react to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowEvent {
    /// Idempotency key: the same release always has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub received_at: String,
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// `patch:upstream.release:<repo>:<tag>`, whichever path saw the release.
pub fn upstream_release_id(repo: &str, tag: &str) -> String {
    format!("patch:{UPSTREAM_RELEASE}:{repo}:{tag}")
}

impl FlowEvent {
    /// The event for release `tag` of upstream `repo` (`owner/name`).
    pub fn upstream_release(repo: &str, tag: &str, received_at: String) -> FlowEvent {
        let mut payload = Map::new();
        payload.insert("repo".into(), Value::String(repo.into()));
        payload.insert("tag".into(), Value::String(tag.into()));
        FlowEvent {
            id: upstream_release_id(repo, tag),
            kind: UPSTREAM_RELEASE.into(),
            source: Some("patch".into()),
            occurred_at: None,
            received_at,
            payload,
        }
    }

    /// Reads an event from a JSON file. Errors name the file and the field.
    pub fn from_file(path: &Path, now: String) -> Result<FlowEvent> {
        // Bad input, whatever is wrong with it (missing, a directory, not
        // UTF-8): a usage error naming the file.
        let text = std::fs::read_to_string(path)
            .map_err(|err| usage(format!("failed to read event file {}: {err}", path.display())))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|err| usage(format!("event file {} is not valid JSON: {err}", path.display())))?;
        FlowEvent::from_value(value, now).map_err(|err| usage(format!("event file {}: {err}", path.display())))
    }

    /// Builds an event from JSON, checking the fields we rely on. An
    /// `upstream.release` with `repo` and `tag` always gets its canonical id,
    /// so a release seen through a feed, a dispatch and the CLI runs once.
    pub fn from_value(mut value: Value, now: String) -> Result<FlowEvent, String> {
        let object = value.as_object_mut().ok_or("expected a JSON object")?;
        // A release needs no id of its own: it always gets the canonical one
        // below (any other event must name its id).
        if object.get("type").and_then(Value::as_str) == Some(UPSTREAM_RELEASE) && !object.contains_key("id") {
            object.insert("id".into(), Value::String(UPSTREAM_RELEASE.into()));
        }
        for field in ["id", "type"] {
            match object.get(field) {
                Some(Value::String(text)) if !text.trim().is_empty() => {}
                Some(_) => return Err(format!("field `{field}` must be a non-empty string")),
                None => return Err(format!("missing field `{field}`")),
            }
        }
        if let Some(payload) = object.get("payload") {
            if !payload.is_object() {
                return Err("field `payload` must be an object".into());
            }
        }
        let mut event: FlowEvent = serde_json::from_value(value).map_err(|err| err.to_string())?;
        if event.received_at.is_empty() {
            event.received_at = now;
        }
        if event.kind == UPSTREAM_RELEASE {
            let repo = event.payload_str("repo").ok_or("an upstream.release event needs `payload.repo`")?;
            let tag = event.payload_str("tag").ok_or("an upstream.release event needs `payload.tag`")?;
            check_repo(repo)?;
            event.id = upstream_release_id(repo, tag);
        }
        Ok(event)
    }

    /// A string field of the payload.
    pub fn payload_str(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    pub fn tag(&self) -> Option<&str> {
        self.payload_str("tag")
    }

    pub fn repo(&self) -> Option<&str> {
        self.payload_str("repo")
    }
}

/// `owner/name`, each part non-empty and made of characters GitHub allows.
pub fn check_repo(repo: &str) -> Result<(), String> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && !part.starts_with('-')
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => Err(format!("repository {repo:?} is not of the form owner/name")),
    }
}

/// Now, as an RFC 3339 UTC timestamp with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn release_ids_are_deterministic() {
        assert_eq!(
            upstream_release_id("openai/codex", "rust-v1.2.3"),
            "patch:upstream.release:openai/codex:rust-v1.2.3"
        );
        let event = FlowEvent::upstream_release("openai/codex", "rust-v1.2.3", "2026-01-01T00:00:00.000Z".into());
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            json!({"id": "patch:upstream.release:openai/codex:rust-v1.2.3", "type": "upstream.release",
                   "source": "patch", "receivedAt": "2026-01-01T00:00:00.000Z",
                   "payload": {"repo": "openai/codex", "tag": "rust-v1.2.3"}})
        );
    }

    #[test]
    fn file_events_get_the_canonical_release_id() {
        let value = json!({"id": "patch:harness:v0.1.3:upstream.release", "type": "upstream.release",
                           "receivedAt": "2026-05-16T00:00:00.000Z",
                           "payload": {"provider": "github", "repo": "peezy-tech/patch-moi-harness", "tag": "v0.1.3"}});
        let event = FlowEvent::from_value(value, "now".into()).unwrap();
        assert_eq!(event.id, "patch:upstream.release:peezy-tech/patch-moi-harness:v0.1.3");
        assert_eq!(event.payload_str("provider"), Some("github"));
        assert_eq!(event.received_at, "2026-05-16T00:00:00.000Z");
    }

    #[test]
    fn other_events_keep_their_id() {
        let event = FlowEvent::from_value(json!({"id": "x:1", "type": "demo.event"}), "now".into()).unwrap();
        assert_eq!(event.id, "x:1");
        assert_eq!(event.received_at, "now");
    }

    #[test]
    fn bad_events_name_the_field() {
        let cases = [
            (json!([]), "expected a JSON object"),
            (json!({"type": "x"}), "missing field `id`"),
            (json!({"id": "", "type": "x"}), "field `id` must be a non-empty string"),
            (json!({"id": "a", "type": 3}), "field `type` must be a non-empty string"),
            (json!({"id": "a", "type": "x", "payload": []}), "field `payload` must be an object"),
            (json!({"id": "a", "type": "upstream.release", "payload": {"repo": "o/r"}}), "needs `payload.tag`"),
            (json!({"id": "a", "type": "upstream.release", "payload": {"repo": "o", "tag": "v1"}}), "owner/name"),
        ];
        for (value, want) in cases {
            let err = FlowEvent::from_value(value.clone(), "now".into()).unwrap_err();
            assert!(err.contains(want), "{value}: {err}");
        }
    }

    #[test]
    fn repo_names() {
        assert!(check_repo("openai/codex").is_ok());
        assert!(check_repo("peezy-tech/patch-moi_harness.x").is_ok());
        for bad in ["", "codex", "/codex", "openai/", "a/b/c", "-x/y", "a b/c"] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
    }
}
