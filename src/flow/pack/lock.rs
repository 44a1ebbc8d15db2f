//! `.codex/pack-lock.json`, in codex-flows' format byte for byte: version
//! 1, items sorted by `kind:name` as `localeCompare` sorts, pretty-printed
//! with two spaces and a trailing newline. A lock codex-flows wrote reads
//! the same (items it would skip as malformed are skipped here too).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hash::locale_compare;
use crate::flow::state;

/// Where the lock lives in a workspace.
pub const LOCK_PATH: &str = ".codex/pack-lock.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    pub items: Vec<LockItem>,
}

/// One installed item. Field order is codex-flows' (it decides the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockItem {
    pub name: String,
    pub kind: String,
    pub source: LockSource,
    /// In the pack, e.g. `flows/peezy-codex-fork`.
    pub source_path: String,
    /// In the workspace, e.g. `.codex/flows/peezy-codex-fork`.
    pub destination_path: String,
    pub content_hash: String,
    pub installed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockSource {
    /// As typed: `../codex-flows`, `owner/repo`, a git URL.
    pub input: String,
    /// `local`, `github` or `git`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    /// The source's git HEAD when it was installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl LockItem {
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

impl Lock {
    pub fn empty() -> Lock {
        Lock { version: 1, items: Vec::new() }
    }

    pub fn path(workspace: &Path) -> PathBuf {
        workspace.join(LOCK_PATH)
    }

    /// The workspace's lock; `None` when there is none.
    pub fn read(workspace: &Path) -> Result<Option<Lock>> {
        let path = Lock::path(workspace);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("failed to read {}", path.display())),
        };
        Lock::parse(&text).map(Some).with_context(|| format!("failed to parse {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Lock> {
        let value: Value = serde_json::from_str(text)?;
        let items = value.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        let items = items
            .into_iter()
            .filter_map(|item| serde_json::from_value::<LockItem>(item).ok())
            .filter(|item| {
                matches!(item.kind.as_str(), "skill" | "flow" | "plugin" | "hook")
                    && matches!(item.source.kind.as_str(), "local" | "github" | "git")
                    && ![&item.name, &item.source_path, &item.destination_path, &item.content_hash, &item.installed_at]
                        .iter()
                        .any(|field| field.trim().is_empty())
            })
            .collect();
        Ok(Lock { version: 1, items })
    }

    /// Replaces the items with the same `kind:name` and sorts.
    pub fn upsert(&mut self, items: Vec<LockItem>) {
        let keys: Vec<String> = items.iter().map(LockItem::key).collect();
        self.items.retain(|item| !keys.contains(&item.key()));
        self.items.extend(items);
        self.items.sort_by(|a, b| locale_compare(&a.key(), &b.key()));
    }

    /// The bytes codex-flows writes: `JSON.stringify(lock, null, 2) + "\n"`.
    pub fn to_text(&self) -> String {
        format!("{}\n", serde_json::to_string_pretty(self).expect("a lock serializes"))
    }

    pub fn write(&self, workspace: &Path) -> Result<()> {
        state::write_atomic(&Lock::path(workspace), self.to_text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_codex_flows_writes_and_writes_it_back_the_same() {
        let text = r#"{
  "version": 1,
  "items": [
    {
      "name": "openai-codex-bindings",
      "kind": "flow",
      "source": {
        "input": "../codex-flows",
        "type": "local",
        "commit": "a96a005617d18d95d6746efdbd6a1f7bcd70ca49"
      },
      "sourcePath": "flows/openai-codex-bindings",
      "destinationPath": ".codex/flows/openai-codex-bindings",
      "contentHash": "sha256:5fcb04e9",
      "installedAt": "2026-05-18T00:04:17.788Z"
    },
    {
      "name": "broken"
    }
  ]
}
"#;
        let lock = Lock::parse(text).unwrap();
        assert_eq!(lock.items.len(), 1, "a malformed item is skipped, as codex-flows skips it");
        let mut want = text.replace(",\n    {\n      \"name\": \"broken\"\n    }", "");
        assert_eq!(lock.to_text(), want);
        let mut lock = lock;
        let mut skill = lock.items[0].clone();
        skill.kind = "skill".into();
        skill.name = "Alpha".into();
        lock.upsert(vec![skill]);
        let keys: Vec<String> = lock.items.iter().map(LockItem::key).collect();
        assert_eq!(keys, ["flow:openai-codex-bindings", "skill:Alpha"]);
        want.clear();
    }
}
