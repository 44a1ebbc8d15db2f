//! `pack add`: plan first (add, unchanged, conflict, overwrite or skip per
//! item), then, with `--apply`, install. Every item is copied into a
//! staging directory and its hash checked before anything in the workspace
//! changes, and the marketplace and hooks files it updates are computed
//! (their JSON checked) then too; an overwrite is backed up to
//! `.codex/pack-backups/<time>/` first; the lock is written last.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::json;

use super::hash::hash_dir;
use super::lock::{Lock, LockItem, LockSource};
use super::registry;
use super::source::{Inventory, Item, PackInfo, Source};
use crate::core::error::usage;
use crate::flow::event::now;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub overwrite: bool,
    pub apply: bool,
}

/// The plan, in codex-flows' `PackAddPlan` shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub apply: bool,
    pub workspace_root: PathBuf,
    pub source: serde_json::Value,
    pub pack: PackInfo,
    pub items: Vec<PlanItem>,
    pub warnings: Vec<String>,
    pub lock_path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_root: Option<PathBuf>,
    /// Where the marketplace is copied before an overwrite replaces an
    /// entry of another source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketplace_backup_path: Option<PathBuf>,
    #[serde(skip)]
    lock_source: Option<LockSource>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub name: String,
    pub kind: &'static str,
    pub source_path: PathBuf,
    pub source_relative_path: String,
    pub destination_path: PathBuf,
    pub destination_relative_path: String,
    pub content_hash: String,
    pub bytes: u64,
    /// `add`, `unchanged`, `conflict`, `overwrite` or `skip`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<PathBuf>,
}

/// Where an item of `kind` goes in the workspace.
pub fn destination(kind: &str, name: &str) -> String {
    match kind {
        "skill" => format!(".agents/skills/{name}"),
        "flow" => format!(".codex/flows/{name}"),
        "plugin" => format!("plugins/{name}"),
        _ => format!(".codex/hooks/{name}"),
    }
}

/// Decides what happens to each item; writes nothing.
pub fn plan(source: &Source, inventory: &Inventory, workspace: &Path, options: &AddOptions) -> Result<Plan> {
    for wanted in options.include.iter().chain(&options.exclude) {
        if !inventory.items.iter().any(|item| *wanted == item.name || *wanted == format!("{}:{}", item.kind, item.name))
        {
            let known: Vec<String> =
                inventory.items.iter().map(|item| format!("{}:{}", item.kind, item.name)).collect();
            return Err(usage(format!("the pack has no item `{wanted}` (it has: {})", known.join(", "))));
        }
    }
    let backup_root = workspace.join(".codex/pack-backups").join(now().replace([':', '.'], "-"));
    let selection = |item: &Item| {
        let keys = [item.name.clone(), format!("{}:{}", item.kind, item.name)];
        if !options.include.is_empty() && !keys.iter().any(|key| options.include.contains(key)) {
            Some("not included")
        } else if keys.iter().any(|key| options.exclude.contains(key)) {
            Some("excluded")
        } else {
            None
        }
    };
    // A plugin the marketplace already lists from elsewhere is not replaced silently.
    let plugins: Vec<&str> = inventory
        .items
        .iter()
        .filter(|item| item.kind == "plugin" && selection(item).is_none())
        .map(|item| item.name.as_str())
        .collect();
    let marketplace_conflicts = if plugins.is_empty() {
        Vec::new()
    } else {
        let lock = Lock::read(workspace)?.unwrap_or_else(Lock::empty);
        let locked: Vec<&str> =
            lock.items.iter().filter(|item| item.kind == "plugin").map(|item| item.name.as_str()).collect();
        registry::marketplace_conflicts(workspace, &plugins, &locked)?
    };
    let mut warnings = inventory.warnings.clone();
    let mut items = Vec::new();
    for item in &inventory.items {
        let relative = destination(item.kind, &item.name);
        let target = workspace.join(&relative);
        let mut planned = PlanItem {
            name: item.name.clone(),
            kind: item.kind,
            source_path: item.dir.clone(),
            source_relative_path: item.relative.clone(),
            destination_path: target.clone(),
            destination_relative_path: relative.clone(),
            content_hash: item.digest.hash.clone(),
            bytes: item.digest.bytes,
            action: "add",
            reason: None,
            backup_path: None,
        };
        let marketplace_conflict = marketplace_conflicts.iter().find(|(name, _)| *name == item.name);
        if let Some(reason) = selection(item) {
            (planned.action, planned.reason) = ("skip", Some(reason.into()));
        } else if let (Some((_, reason)), false) = (marketplace_conflict, options.overwrite) {
            (planned.action, planned.reason) = ("conflict", Some(reason.clone()));
        } else if target.exists() {
            if hash_dir(&target)?.hash == item.digest.hash {
                planned.action = "unchanged";
            } else if options.overwrite {
                planned.action = "overwrite";
                planned.backup_path = Some(backup_root.join(&relative));
            } else {
                planned.action = "conflict";
                planned.reason = Some("destination differs; rerun with --overwrite to replace it".into());
            }
        }
        if item.bundles_hooks && planned.action != "skip" {
            warnings.push(format!(
                "Plugin {} includes plugin-bundled hooks; enable [features].plugin_hooks = true to run them.",
                item.name
            ));
        }
        items.push(planned);
    }
    if items.iter().any(|item| item.kind == "hook" && item.action != "skip") {
        warnings.push("Direct hook packs update .codex/hooks.json; enable [features].hooks = true to run them.".into());
    }
    let lock_source = LockSource {
        input: source.input.clone(),
        kind: source.kind.to_string(),
        url: source.url.clone(),
        reference: source.reference.clone(),
        commit: source.commit.clone(),
    };
    let mut shown = serde_json::to_value(&lock_source)?;
    shown["root"] = json!(source.root);
    let overwrites = items.iter().any(|item| item.action == "overwrite");
    Ok(Plan {
        apply: options.apply,
        workspace_root: workspace.to_path_buf(),
        source: shown,
        pack: inventory.pack.clone(),
        items,
        warnings,
        lock_path: Lock::path(workspace),
        marketplace_backup_path: (options.overwrite && !marketplace_conflicts.is_empty())
            .then(|| backup_root.join(registry::MARKETPLACE_PATH)),
        backup_root: overwrites.then_some(backup_root),
        lock_source: Some(lock_source),
    })
}

/// Installs the plan's add and overwrite items and locks them with the
/// unchanged ones. Conflicts are not installed.
pub fn apply(plan: &Plan) -> Result<()> {
    let workspace = &plan.workspace_root;
    let lock_source = plan.lock_source.clone().context("a plan without its source")?;
    let mut lock = Lock::read(workspace)?.unwrap_or_else(Lock::empty);
    let installing: Vec<&PlanItem> =
        plan.items.iter().filter(|item| matches!(item.action, "add" | "overwrite")).collect();
    // Stage and verify everything before the workspace changes at all.
    let staging =
        tempfile::Builder::new().prefix(".pack-staging-").tempdir_in(ensure_dir(&workspace.join(".codex"))?)?;
    for (index, item) in installing.iter().enumerate() {
        let staged = staging.path().join(index.to_string());
        copy_dir(&item.source_path, &staged)?;
        let copied = hash_dir(&staged)?.hash;
        if copied != item.content_hash {
            bail!(
                "{} {} changed while it was installed (hash {copied}, planned {})",
                item.kind,
                item.name,
                item.content_hash
            );
        }
    }
    // The marketplace and hooks.json as they will be, read (and their
    // JSON checked) before anything in the workspace changes.
    let kept = |kind: &str| -> Vec<&PlanItem> {
        plan.items.iter().filter(|i| i.kind == kind && matches!(i.action, "add" | "overwrite" | "unchanged")).collect()
    };
    let plugins = kept("plugin");
    let marketplace = if plugins.is_empty() {
        None
    } else {
        Some(registry::with_plugins(workspace, &plugins.iter().map(|item| item.name.as_str()).collect::<Vec<_>>())?)
    };
    let hook_packs: Vec<registry::HookPack> = kept("hook")
        .iter()
        .map(|item| registry::HookPack {
            name: &item.name,
            destination: &item.destination_relative_path,
            hooks_file: item.source_path.join("hooks.json"),
        })
        .collect();
    let hooks = if hook_packs.is_empty() { None } else { Some(registry::with_hooks(workspace, &hook_packs)?) };
    for (index, item) in installing.iter().enumerate() {
        if let Some(backup) = &item.backup_path {
            ensure_dir(backup.parent().unwrap_or(workspace))?;
            std::fs::rename(&item.destination_path, backup).with_context(|| {
                format!("failed to back up {} to {}", item.destination_path.display(), backup.display())
            })?;
        }
        ensure_dir(item.destination_path.parent().unwrap_or(workspace))?;
        std::fs::rename(staging.path().join(index.to_string()), &item.destination_path)
            .with_context(|| format!("failed to install {}", item.destination_path.display()))?;
    }
    if let Some(marketplace) = marketplace {
        let current = workspace.join(registry::MARKETPLACE_PATH);
        if let (Some(backup), true) = (&plan.marketplace_backup_path, current.is_file()) {
            ensure_dir(backup.parent().unwrap_or(workspace))?;
            std::fs::copy(&current, backup)
                .with_context(|| format!("failed to back up {} to {}", current.display(), backup.display()))?;
        }
        registry::write(workspace, registry::MARKETPLACE_PATH, &marketplace)?;
    }
    if let Some(hooks) = hooks {
        registry::write(workspace, registry::HOOKS_PATH, &hooks)?;
    }
    let installed_at = now();
    let locked: Vec<LockItem> = plan
        .items
        .iter()
        .filter(|item| matches!(item.action, "add" | "overwrite" | "unchanged"))
        .map(|item| LockItem {
            name: item.name.clone(),
            kind: item.kind.to_string(),
            source: lock_source.clone(),
            source_path: item.source_relative_path.clone(),
            destination_path: item.destination_relative_path.clone(),
            content_hash: item.content_hash.clone(),
            installed_at: installed_at.clone(),
        })
        .collect();
    lock.upsert(locked);
    lock.write(workspace)
}

fn ensure_dir(dir: &Path) -> Result<&Path> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

/// Copies files and directories byte for byte (`.git` is not part of an
/// item); a symbolic link is refused rather than followed out of the pack.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    ensure_dir(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))? {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("failed to copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl Plan {
    /// Lines for people, as codex-flows prints them.
    pub fn text(&self) -> String {
        let count = |action: &str| self.items.iter().filter(|item| item.action == action).count();
        let mut out = format!(
            "mode                  {}\nworkspace             {}\nsource                {}\npack                  {}\n\
             planned               {}\nunchanged             {}\nconflicts             {}\nskipped               {}\n",
            if self.apply { "apply" } else { "dry-run" },
            self.workspace_root.display(),
            self.source["input"].as_str().unwrap_or_default(),
            match &self.pack.version {
                Some(version) => format!("{}@{version}", self.pack.name),
                None => self.pack.name.clone(),
            },
            count("add") + count("overwrite"),
            count("unchanged"),
            count("conflict"),
            count("skip"),
        );
        for item in &self.items {
            let target =
                if item.action == "skip" { &item.source_relative_path } else { &item.destination_relative_path };
            let reason = item.reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default();
            out.push_str(&format!("{:<21} {}/{} -> {target}{reason}\n", item.action, item.kind, item.name));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning               {warning}\n"));
        }
        out
    }

    pub fn has_conflicts(&self) -> bool {
        self.items.iter().any(|item| item.action == "conflict")
    }
}
