//! `pack doctor`: is what the lock says installed still there, and still
//! what was installed? Also checks that the marketplace and hooks files
//! parse. Each problem carries the command that fixes it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::hash::hash_dir;
use super::lock::{Lock, LockItem};
use super::registry::{HOOKS_PATH, MARKETPLACE_PATH};

/// codex-flows' `PackDoctorResult`, plus `changedDestinations` and `fixes`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Doctor {
    pub workspace_root: PathBuf,
    pub lock_path: PathBuf,
    pub lock_exists: bool,
    pub installed_items: usize,
    pub missing_destinations: Vec<LockItem>,
    pub changed_destinations: Vec<Changed>,
    pub marketplace: FileCheck,
    pub hooks: FileCheck,
    pub errors: Vec<String>,
    /// What to run for each problem.
    pub fixes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    #[serde(flatten)]
    pub item: LockItem,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_hash: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    pub path: PathBuf,
    pub exists: bool,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Doctor {
    pub fn healthy(&self) -> bool {
        self.lock_exists
            && self.errors.is_empty()
            && self.missing_destinations.is_empty()
            && self.changed_destinations.is_empty()
            && (!self.marketplace.exists || self.marketplace.valid)
            && (!self.hooks.exists || self.hooks.valid)
    }

    /// Aligned `key value` lines, as codex-flows prints them.
    pub fn text(&self) -> String {
        let check = |file: &FileCheck| match (file.exists, file.valid) {
            (false, _) => "missing".to_string(),
            (true, true) => format!("valid ({})", file.path.display()),
            (true, false) => format!("invalid ({})", file.error.as_deref().unwrap_or("parse failed")),
        };
        let mut out = format!(
            "workspace             {}\nlock                  {}\ninstalled items       {}\nmissing destinations  {}\n\
             changed destinations  {}\nmarketplace           {}\nhooks                 {}\n",
            self.workspace_root.display(),
            if self.lock_exists { self.lock_path.display().to_string() } else { "missing".into() },
            self.installed_items,
            self.missing_destinations.len(),
            self.changed_destinations.len(),
            check(&self.marketplace),
            check(&self.hooks),
        );
        for item in &self.missing_destinations {
            out.push_str(&format!("missing               {}/{} -> {}\n", item.kind, item.name, item.destination_path));
        }
        for changed in &self.changed_destinations {
            let item = &changed.item;
            out.push_str(&format!(
                "changed               {}/{} -> {} ({})\n",
                item.kind, item.name, item.destination_path, changed.reason
            ));
        }
        for error in &self.errors {
            out.push_str(&format!("error                 {error}\n"));
        }
        for fix in &self.fixes {
            out.push_str(&format!("fix                   {fix}\n"));
        }
        out
    }
}

/// Checks the workspace's installed packs.
pub fn doctor(workspace: &Path) -> Doctor {
    let lock_path = Lock::path(workspace);
    let mut errors = Vec::new();
    let mut fixes = Vec::new();
    let lock = match Lock::read(workspace) {
        Ok(lock) => lock,
        Err(err) => {
            errors.push(format!("{err:#}"));
            fixes.push(format!(
                "repair or remove {}, then run `patchmoi pack add <source> --apply` again",
                lock_path.display()
            ));
            None
        }
    };
    let lock_exists = lock_path.is_file();
    if !lock_exists && errors.is_empty() {
        fixes.push("no pack is installed here: run `patchmoi pack add <source> --apply`".into());
    }
    let items = lock.map(|lock| lock.items).unwrap_or_default();
    let mut missing = Vec::new();
    let mut changed = Vec::new();
    for item in &items {
        let destination = workspace.join(&item.destination_path);
        let reinstall = format!(
            "patchmoi pack add {} --include {}:{} --apply --overwrite",
            item.source.input, item.kind, item.name
        );
        if !destination.exists() {
            missing.push(item.clone());
            fixes.push(reinstall);
            continue;
        }
        let (actual_hash, reason) = if !destination.is_dir() {
            (None, "destination is not a directory".to_string())
        } else {
            match hash_dir(&destination) {
                Ok(digest) if digest.hash == item.content_hash => continue,
                Ok(digest) => (Some(digest.hash), "content hash differs".to_string()),
                Err(err) => (None, format!("failed to hash destination: {err:#}")),
            }
        };
        changed.push(Changed { item: item.clone(), actual_hash, reason });
        fixes.push(format!("{reinstall} (the current files go to .codex/pack-backups/)"));
    }
    let marketplace = check_json(&workspace.join(MARKETPLACE_PATH));
    let hooks = check_json(&workspace.join(HOOKS_PATH));
    for file in [&marketplace, &hooks] {
        if file.exists && !file.valid {
            fixes.push(format!("fix the JSON of {}", file.path.display()));
        }
    }
    Doctor {
        workspace_root: workspace.to_path_buf(),
        lock_path,
        lock_exists,
        installed_items: items.len(),
        missing_destinations: missing,
        changed_destinations: changed,
        marketplace,
        hooks,
        errors,
        fixes,
    }
}

fn check_json(path: &Path) -> FileCheck {
    let Ok(text) = std::fs::read_to_string(path) else {
        return FileCheck { path: path.to_path_buf(), exists: path.exists(), valid: false, error: None };
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(_) => FileCheck { path: path.to_path_buf(), exists: true, valid: true, error: None },
        Err(err) => FileCheck { path: path.to_path_buf(), exists: true, valid: false, error: Some(err.to_string()) },
    }
}
