//! The two shared files a pack updates beside its items, as codex-flows
//! updates them: `.agents/plugins/marketplace.json` (an entry per plugin)
//! and `.codex/hooks.json` (a hook pack's groups merged per event, with
//! what each pack added recorded under `codexPack`, so installing it again
//! replaces its groups instead of adding them twice).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::flow::state;

pub const MARKETPLACE_PATH: &str = ".agents/plugins/marketplace.json";
pub const HOOKS_PATH: &str = ".codex/hooks.json";

/// The hook events Codex knows; other keys of a pack's hooks.json are ignored.
const HOOK_EVENTS: [&str; 8] = [
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PreCompact",
    "PostCompact",
    "SessionStart",
    "UserPromptSubmit",
    "Stop",
];

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            match serde_json::from_str(&text).with_context(|| format!("failed to parse JSON at {}", path.display()))? {
                Value::Object(object) => Ok(object),
                _ => Ok(Map::new()),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(err) => Err(err).with_context(|| format!("failed to read {}", path.display())),
    }
}

fn write_pretty(path: &Path, value: &Value) -> Result<()> {
    let dir = path.parent().unwrap_or(path);
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    state::write_atomic(path, format!("{}\n", serde_json::to_string_pretty(value)?).as_bytes())
}

/// Adds (or replaces) the marketplace entries of `plugins`.
pub fn add_plugins(workspace: &Path, plugins: &[&str]) -> Result<()> {
    let path = workspace.join(MARKETPLACE_PATH);
    let mut marketplace = read_object(&path)?;
    let existing = marketplace.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
    let entries: Vec<Value> = plugins
        .iter()
        .map(|name| {
            json!({"name": name, "source": {"source": "local", "path": format!("./plugins/{name}")},
                   "policy": {"installation": "AVAILABLE", "authentication": "ON_INSTALL"}, "category": "Productivity"})
        })
        .collect();
    let managed = |entry: &Value| {
        plugins.iter().any(|name| entry["name"] == *name && entry["source"]["path"] == format!("./plugins/{name}"))
    };
    if marketplace.get("name").is_none_or(|name| name.as_str().is_none_or(|n| n.trim().is_empty())) {
        marketplace.insert("name".into(), json!("workspace-packs"));
    }
    if !marketplace.get("interface").is_some_and(Value::is_object) {
        marketplace.insert("interface".into(), json!({"displayName": "Workspace Packs"}));
    }
    let mut list: Vec<Value> = existing.into_iter().filter(|entry| !managed(entry)).collect();
    list.extend(entries);
    marketplace.insert("plugins".into(), Value::Array(list));
    write_pretty(&path, &Value::Object(marketplace))
}

/// Merges a hook pack's `hooks.json` into the workspace's.
pub fn merge_hooks(workspace: &Path, name: &str, destination: &str, pack_hooks: &Path) -> Result<()> {
    let path = workspace.join(HOOKS_PATH);
    let mut root = read_object(&path)?;
    let incoming = read_object(pack_hooks)?;
    let incoming = incoming.get("hooks").cloned().unwrap_or(Value::Null);
    let mut hooks = root.get("hooks").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut meta = root.get("codexPack").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut meta_hooks = meta.get("hooks").and_then(Value::as_object).cloned().unwrap_or_default();
    let previous = meta_hooks.get(name).map(|entry| entry["events"].clone()).unwrap_or(Value::Null);
    let mut events = Map::new();
    for event in HOOK_EVENTS {
        let groups = |value: &Value| value[event].as_array().cloned().unwrap_or_default();
        let before = groups(&previous);
        let new = groups(&incoming);
        let mut merged: Vec<Value> = hooks
            .get(event)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| !before.contains(g))
            .collect();
        for group in &new {
            if !merged.contains(group) {
                merged.push(group.clone());
            }
        }
        hooks.insert(event.into(), Value::Array(merged));
        if !new.is_empty() {
            events.insert(event.into(), Value::Array(new));
        }
    }
    meta_hooks.insert(name.into(), json!({"kind": "hook", "destinationPath": destination, "events": events}));
    meta.insert("version".into(), json!(1));
    meta.insert("hooks".into(), Value::Object(meta_hooks));
    root.insert("hooks".into(), Value::Object(hooks));
    root.insert("codexPack".into(), Value::Object(meta));
    write_pretty(&path, &Value::Object(root))
}
