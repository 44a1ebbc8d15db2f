//! `pack update`: re-resolve each locked item's source at its ref, and say
//! what would change (per item: unchanged, update with the files added,
//! changed and removed, conflict, or gone), applying only when asked.
//!
//! - A ref that is a commit id is a pin: the item stays where it is unless
//!   `--ref` moves it. A branch, a tag or no ref (the default branch) is
//!   followed.
//! - An installed item edited by hand (its hash differs from the lock's) is
//!   a conflict, never overwritten without `--overwrite`; an overwrite is
//!   backed up to `.codex/pack-backups/<time>/` first, as `pack add` does.
//! - The install itself is `pack add`'s: staged, hash-checked, then moved
//!   in; the lock is written last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::add::{self, AddOptions};
use super::hash::{hash_dir, walk_files};
use super::lock::{Lock, LockItem, LOCK_PATH};
use super::source::{self, Inventory, Source};
use crate::core::error::usage;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Items to update (`name` or `kind:name`); all when empty.
    pub names: Vec<String>,
    /// Moves the selected items to this ref.
    pub reference: Option<String>,
    pub overwrite: bool,
    pub apply: bool,
}

/// What `pack update` found (and, with `apply`, did).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReport {
    pub apply: bool,
    pub workspace_root: PathBuf,
    pub lock_path: PathBuf,
    pub items: Vec<UpdateItem>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateItem {
    pub name: String,
    pub kind: String,
    /// The source as locked (`input`).
    pub source: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The source's commit in the lock, and where its ref is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_commit: Option<String>,
    /// `unchanged`, `update`, `conflict` or `gone`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Against what is installed now.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<PathBuf>,
}

/// A ref that names one commit for good.
fn is_pinned(reference: &str) -> bool {
    (7..=64).contains(&reference.len()) && reference.chars().all(|c| c.is_ascii_hexdigit())
}

/// Each file under `dir` (relative, `/`-separated) with the sha256 of its bytes.
fn file_hashes(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for file in walk_files(dir)? {
        let bytes = std::fs::read(&file).with_context(|| format!("failed to read {}", file.display()))?;
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let parts: Vec<String> = relative.components().map(|part| part.as_os_str().to_string_lossy().into()).collect();
        out.insert(parts.join("/"), format!("{:x}", Sha256::digest(&bytes)));
    }
    Ok(out)
}

/// Files added, changed and removed going from `old` to `new`.
fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> [Vec<String>; 3] {
    let added = new.keys().filter(|path| !old.contains_key(*path)).cloned().collect();
    let changed = new.iter().filter(|(path, hash)| old.get(*path).is_some_and(|h| h != *hash)).map(|(p, _)| p.clone());
    let removed = old.keys().filter(|path| !new.contains_key(*path)).cloned().collect();
    [added, changed.collect(), removed]
}

/// One source to resolve and the locked items that come from it.
struct Group {
    locked: LockItem,
    reference: Option<String>,
    items: Vec<LockItem>,
}

/// Plans the update of the lock's items in `workspace` and, with `apply`,
/// installs it. Local sources are resolved from the workspace root.
pub fn update(workspace: &Path, options: &UpdateOptions) -> Result<UpdateReport> {
    let lock = Lock::read(workspace)?.ok_or_else(|| {
        usage(format!("no {} in {}; install items with `patchmoi pack add` first", LOCK_PATH, workspace.display()))
    })?;
    for wanted in &options.names {
        if !lock.items.iter().any(|item| *wanted == item.name || *wanted == item.key()) {
            let known: Vec<String> = lock.items.iter().map(LockItem::key).collect();
            return Err(usage(format!("the lock has no item `{wanted}` (it has: {})", known.join(", "))));
        }
    }
    let selected: Vec<&LockItem> = lock
        .items
        .iter()
        .filter(|item| options.names.is_empty() || options.names.iter().any(|n| *n == item.name || *n == item.key()))
        .collect();
    if let Some(reference) = &options.reference {
        if let Some(item) = selected.iter().find(|item| item.source.kind == "local") {
            return Err(usage(format!(
                "--ref {reference}: {} comes from the local directory {}, which has no refs; \
                 name only items from owner/repo or git URL sources",
                item.key(),
                item.source.input
            )));
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    for item in selected {
        let reference = options.reference.clone().or_else(|| item.source.reference.clone());
        let same = |group: &&mut Group| {
            group.locked.source.input == item.source.input
                && group.locked.source.kind == item.source.kind
                && group.reference == reference
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.items.push(item.clone()),
            None => groups.push(Group { locked: item.clone(), reference, items: vec![item.clone()] }),
        }
    }

    let mut report = UpdateReport {
        apply: options.apply,
        workspace_root: workspace.to_path_buf(),
        lock_path: Lock::path(workspace),
        items: Vec::new(),
    };
    // Everything is resolved and planned before anything is installed.
    let mut installs: Vec<(Source, Inventory, Vec<String>)> = Vec::new();
    for group in groups {
        let blank = |item: &LockItem, action: &'static str, reason: Option<String>| UpdateItem {
            name: item.name.clone(),
            kind: item.kind.clone(),
            source: item.source.input.clone(),
            reference: group.reference.clone(),
            from_commit: item.source.commit.clone(),
            to_commit: None,
            action,
            reason,
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
            backup_path: None,
        };
        let locked_ref = group.locked.source.reference.as_deref();
        if options.reference.is_none() && locked_ref.is_some_and(is_pinned) {
            let reason = format!("pinned at {}; `--ref` moves it", locked_ref.unwrap_or_default());
            report.items.extend(group.items.iter().map(|item| blank(item, "unchanged", Some(reason.clone()))));
            continue;
        }
        let input = &group.locked.source.input;
        let resolved = if group.locked.source.kind == "local" && !workspace.join(input).is_dir() {
            Err(format!("{input} is not a directory any more"))
        } else {
            Source::resolve(input, group.reference.as_deref(), workspace).map_err(|err| format!("{err:#}"))
        };
        let source = match resolved {
            Ok(source) => source,
            Err(why) => {
                report.items.extend(group.items.iter().map(|item| blank(item, "gone", Some(why.clone()))));
                continue;
            }
        };
        let inventory = source::inventory(&source.root)?;
        let mut keys = Vec::new();
        for item in &group.items {
            let mut entry = blank(item, "unchanged", None);
            entry.to_commit = source.commit.clone();
            let Some(found) = inventory.items.iter().find(|new| new.kind == item.kind && new.name == item.name) else {
                entry.action = "gone";
                entry.reason = Some(format!("the source no longer has {} {}", item.kind, item.name));
                report.items.push(entry);
                continue;
            };
            let target = workspace.join(&item.destination_path);
            let installed = if target.exists() { Some(hash_dir(&target)?.hash) } else { None };
            let moved = options.reference.is_some() && item.source.reference != group.reference;
            if found.digest.hash == item.content_hash && !moved {
                if installed.as_ref().is_some_and(|hash| *hash != item.content_hash) {
                    entry.reason = Some("edited locally; the source has nothing new for it".into());
                }
                report.items.push(entry);
                continue;
            }
            let [added, changed, removed] =
                diff(&if target.exists() { file_hashes(&target)? } else { BTreeMap::new() }, &file_hashes(&found.dir)?);
            (entry.added, entry.changed, entry.removed) = (added, changed, removed);
            let edited = installed.as_ref().is_some_and(|hash| *hash != item.content_hash);
            if edited && !options.overwrite {
                entry.action = "conflict";
                entry.reason = Some(
                    "edited locally since it was installed (its hash differs from the lock); rerun with --overwrite to replace it after a backup"
                        .into(),
                );
            } else {
                entry.action = "update";
                keys.push(item.key());
            }
            report.items.push(entry);
        }
        if !keys.is_empty() {
            installs.push((source, inventory, keys));
        }
    }
    if options.apply {
        for (source, inventory, keys) in &installs {
            let add_options = AddOptions { include: keys.clone(), exclude: Vec::new(), overwrite: true, apply: true };
            let plan = add::plan(source, inventory, workspace, &add_options)?;
            add::apply(&plan)?;
            for planned in plan.items.iter().filter(|planned| planned.backup_path.is_some()) {
                if let Some(item) = report.items.iter_mut().find(|i| i.kind == planned.kind && i.name == planned.name) {
                    item.backup_path = planned.backup_path.clone();
                }
            }
        }
    }
    Ok(report)
}

impl UpdateReport {
    /// Lines for people: one per item, with its diff summary.
    pub fn text(&self) -> String {
        let mut out = format!(
            "mode                  {}\nworkspace             {}\n",
            if self.apply { "apply" } else { "dry-run" },
            self.workspace_root.display()
        );
        for item in &self.items {
            let commits = match (&item.from_commit, &item.to_commit) {
                (Some(from), Some(to)) if from != to => format!(" {} -> {}", short(from), short(to)),
                _ => String::new(),
            };
            let files = if item.action == "update" || item.action == "conflict" {
                format!(" (+{} ~{} -{})", item.added.len(), item.changed.len(), item.removed.len())
            } else {
                String::new()
            };
            let reason = item.reason.as_ref().map(|reason| format!(": {reason}")).unwrap_or_default();
            out.push_str(&format!("{:<21} {}/{}{commits}{files}{reason}\n", item.action, item.kind, item.name));
            for (sign, paths) in [("+", &item.added), ("~", &item.changed), ("-", &item.removed)] {
                for path in paths {
                    out.push_str(&format!("                        {sign} {path}\n"));
                }
            }
            if let Some(backup) = &item.backup_path {
                out.push_str(&format!("                        backup {}\n", backup.display()));
            }
        }
        if !self.apply && self.items.iter().any(|item| item.action == "update") {
            out.push_str("rerun with --apply to install the updates\n");
        }
        out
    }

    /// Something needs a person: a conflict, or an item whose source is gone.
    pub fn needs_attention(&self) -> bool {
        self.items.iter().any(|item| matches!(item.action, "conflict" | "gone"))
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_commit_ids_and_diffs_name_each_file() {
        assert!(is_pinned("a96a005617d18d95d6746efdbd6a1f7bcd70ca49") && is_pinned("a96a005"));
        for moving in ["main", "v1", "abc", "release-2026"] {
            assert!(!is_pinned(moving), "{moving}");
        }
        let old: BTreeMap<String, String> =
            [("a", "1"), ("b", "2"), ("c", "3")].iter().map(|(p, h)| (p.to_string(), h.to_string())).collect();
        let new: BTreeMap<String, String> =
            [("a", "1"), ("b", "9"), ("d", "4")].iter().map(|(p, h)| (p.to_string(), h.to_string())).collect();
        assert_eq!(diff(&old, &new), [vec!["d".to_string()], vec!["b".to_string()], vec!["c".to_string()]]);
    }
}
