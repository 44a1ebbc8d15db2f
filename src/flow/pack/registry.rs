//! The two shared files a pack updates beside its items, as codex-flows
//! updates them: `.agents/plugins/marketplace.json` (an entry per plugin)
//! and `.codex/hooks.json` (a hook pack's groups merged per event, with
//! what each pack added recorded under `codexPack`, so installing it again
//! replaces its groups instead of adding them twice). Both are computed
//! before an install changes anything, and written after its items.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
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
                // Taken for empty, it would be written back without what it holds.
                _ => bail!("{} is not a JSON object; fix it (nothing was changed)", path.display()),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(err) => Err(err).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// Writes `value` to `relative` in the workspace, pretty, with a newline.
pub fn write(workspace: &Path, relative: &str, value: &Value) -> Result<()> {
    let path = workspace.join(relative);
    let dir = path.parent().unwrap_or(&path);
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    state::write_atomic(&path, format!("{}\n", serde_json::to_string_pretty(value)?).as_bytes())
}

/// The plugins of `names` that the marketplace already lists from another
/// source and the lock does not own, each with the reason it conflicts.
pub fn marketplace_conflicts(workspace: &Path, names: &[&str], locked: &[&str]) -> Result<Vec<(String, String)>> {
    let path = workspace.join(MARKETPLACE_PATH);
    if names.is_empty() || !path.exists() {
        return Ok(Vec::new());
    }
    let marketplace = read_object(&path)?;
    let mut conflicts = Vec::new();
    for entry in marketplace.get("plugins").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = entry["name"].as_str().filter(|name| names.contains(name)) else { continue };
        let source = entry["source"]["path"].as_str().filter(|path| !path.trim().is_empty());
        if source == Some(format!("./plugins/{name}").as_str()) || locked.contains(&name) {
            continue;
        }
        let from = source.map(|path| format!("from {path}")).unwrap_or_else(|| "with an unknown source".into());
        let reason = format!("marketplace already has plugin {name} {from}; rerun with --overwrite to replace it");
        conflicts.push((name.to_string(), reason));
    }
    Ok(conflicts)
}

/// `object[key]`, when there, as `T`; another shape is an error naming the
/// file and the field (`field`), never replaced by an empty one.
fn field<'a, T>(
    object: &'a Map<String, Value>,
    key: &str,
    shape: fn(&'a Value) -> Option<T>,
    what: &str,
    path: &Path,
    field: &str,
) -> Result<Option<T>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match shape(value) {
            Some(found) => Ok(Some(found)),
            None => bail!("`{field}` in {} is not {what}; fix it (nothing was changed)", path.display()),
        },
    }
}

/// The marketplace with an entry for each of `plugins`: an entry of that
/// name pointing at the installed copy (`./plugins/<name>`) stays as the
/// person may have tuned it (policy, category); any other entry of the
/// name is replaced (the plan made that an `--overwrite`).
pub fn with_plugins(workspace: &Path, plugins: &[&str]) -> Result<Value> {
    let path = workspace.join(MARKETPLACE_PATH);
    let mut marketplace = read_object(&path)?;
    let existing =
        field(&marketplace, "plugins", Value::as_array, "a list", &path, "plugins")?.cloned().unwrap_or_default();
    let ours = |entry: &Value, name: &str| {
        entry["name"].as_str() == Some(name)
            && entry["source"]["path"].as_str() == Some(format!("./plugins/{name}").as_str())
    };
    let entries: Vec<Value> = plugins
        .iter()
        .filter(|name| !existing.iter().any(|entry| ours(entry, name)))
        .map(|name| {
            json!({"name": name, "source": {"source": "local", "path": format!("./plugins/{name}")},
                   "policy": {"installation": "AVAILABLE", "authentication": "ON_INSTALL"}, "category": "Productivity"})
        })
        .collect();
    if marketplace.get("name").is_none_or(|name| name.as_str().is_none_or(|n| n.trim().is_empty())) {
        marketplace.insert("name".into(), json!("workspace-packs"));
    }
    if !marketplace.get("interface").is_some_and(Value::is_object) {
        marketplace.insert("interface".into(), json!({"displayName": "Workspace Packs"}));
    }
    let mut list: Vec<Value> = existing
        .into_iter()
        .filter(|entry| {
            let name = entry["name"].as_str().unwrap_or_default();
            !plugins.contains(&name) || ours(entry, name)
        })
        .collect();
    list.extend(entries);
    marketplace.insert("plugins".into(), Value::Array(list));
    Ok(Value::Object(marketplace))
}

/// A hook pack to merge: its name, where it is installed, its `hooks.json`.
pub struct HookPack<'a> {
    pub name: &'a str,
    pub destination: &'a str,
    pub hooks_file: PathBuf,
}

/// The workspace's `hooks.json` with each hook pack's groups merged.
pub fn with_hooks(workspace: &Path, packs: &[HookPack]) -> Result<Value> {
    let path = workspace.join(HOOKS_PATH);
    let mut root = read_object(&path)?;
    let mut hooks = field(&root, "hooks", Value::as_object, "an object", &path, "hooks")?.cloned().unwrap_or_default();
    for event in HOOK_EVENTS {
        field(&hooks, event, Value::as_array, "a list", &path, &format!("hooks.{event}"))?;
    }
    let mut meta = root.get("codexPack").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut meta_hooks = meta.get("hooks").and_then(Value::as_object).cloned().unwrap_or_default();
    for pack in packs {
        let incoming = read_object(&pack.hooks_file)?;
        let incoming = incoming.get("hooks").cloned().unwrap_or(Value::Null);
        let previous = meta_hooks.get(pack.name).map(|entry| entry["events"].clone()).unwrap_or(Value::Null);
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
        meta_hooks
            .insert(pack.name.into(), json!({"kind": "hook", "destinationPath": pack.destination, "events": events}));
    }
    meta.insert("version".into(), json!(1));
    meta.insert("hooks".into(), Value::Object(meta_hooks));
    root.insert("hooks".into(), Value::Object(hooks));
    root.insert("codexPack".into(), Value::Object(meta));
    Ok(Value::Object(root))
}
