//! Where a pack comes from, and what it holds. A source is a local
//! directory, `owner/repo` (GitHub) or a git URL, cloned shallow into a
//! temporary directory that goes away with the value. The inventory is
//! `codex-pack.toml` when the pack has one, else the conventions:
//! `flows/**/flow.toml` and `flow.yml`, `skills/**/SKILL.md`,
//! `plugins/**/.codex-plugin/plugin.json`, `hooks/**/hooks.json`. Nothing
//! in a pack is run: flow names are read from the files, not executed.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hash::{hash_dir, locale_compare, walk_files, Digested};
use crate::core::error::usage;
use crate::git::Git;

/// A resolved source. A clone lives as long as this value.
#[derive(Debug)]
pub struct Source {
    pub input: String,
    /// `local`, `github` or `git`.
    pub kind: &'static str,
    pub root: PathBuf,
    pub url: Option<String>,
    pub reference: Option<String>,
    pub commit: Option<String>,
    _clone: Option<tempfile::TempDir>,
}

/// One capability of a pack.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    /// `skill`, `flow`, `plugin` or `hook`.
    pub kind: &'static str,
    pub dir: PathBuf,
    /// `dir` relative to the pack, with `/`.
    pub relative: String,
    pub digest: Digested,
    /// A plugin that brings hooks of its own (`hooks` in its manifest, or a
    /// `hooks.json`), which Codex runs only with `[features].plugin_hooks`.
    pub bundles_hooks: bool,
}

/// `[pack]` of `codex-pack.toml`, or the directory's name.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_path: Option<PathBuf>,
}

/// What a pack holds, sorted by `kind:name:path` as codex-flows sorts it.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub pack: PackInfo,
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
}

impl Source {
    /// `input` as a local directory (relative to `base`), `owner/repo`, or
    /// a git URL; `reference` only for the last two.
    pub fn resolve(input: &str, reference: Option<&str>, base: &Path) -> Result<Source> {
        let local = base.join(input);
        if local.is_dir() {
            if reference.is_some() {
                return Err(usage("--ref applies to owner/repo and git URL sources, not to a local directory"));
            }
            let root = local.canonicalize()?;
            let commit = Git::at(&root).head_commit();
            let source =
                Source { input: input.into(), kind: "local", root, url: None, reference: None, commit, _clone: None };
            return Ok(source);
        }
        let (kind, url) = if is_github_shorthand(input) {
            ("github", format!("https://github.com/{input}.git"))
        } else if is_git_url(input) {
            ("git", input.to_string())
        } else {
            return Err(usage(format!("pack source `{input}` is not a directory, owner/repo or a git URL")));
        };
        let tmp = tempfile::Builder::new().prefix("patchmoi-pack-").tempdir()?;
        let root = tmp.path().join("source");
        let git = Git::shallow_clone(&url, reference, &root)?;
        Ok(Source {
            input: input.into(),
            kind,
            root,
            url: Some(url),
            reference: reference.map(str::to_string),
            commit: git.head_commit(),
            _clone: Some(tmp),
        })
    }
}

fn is_github_shorthand(input: &str) -> bool {
    let mut parts = input.split('/');
    let ok = |part: Option<&str>| {
        part.is_some_and(|p| {
            !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn is_git_url(input: &str) -> bool {
    ["https://", "http://", "ssh://", "file://", "git@"].iter().any(|prefix| input.starts_with(prefix))
        || input.ends_with(".git")
}

/// Names become directory names in the workspace: plain ones only.
pub fn check_item_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(usage(format!("pack {kind} `{name}` has an unsafe name (use letters, digits, '-', '_', '.')")));
    }
    Ok(())
}

/// The file that makes a directory an item of `kind`.
fn marker_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "skill" => &["SKILL.md"],
        "flow" => &["flow.toml", "flow.yml"],
        "plugin" => &[".codex-plugin/plugin.json"],
        _ => &["hooks.json"],
    }
}

#[derive(Deserialize)]
struct PackManifest {
    #[serde(default)]
    pack: PackSection,
}

#[derive(Default, Deserialize)]
struct PackSection {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    items: Vec<ManifestItem>,
}

#[derive(Deserialize)]
struct ManifestItem {
    name: String,
    kind: String,
    path: String,
}

/// Reads what the pack at `root` holds. Unsafe names, items whose marker
/// file is missing and paths that leave the pack are errors.
pub fn inventory(root: &Path) -> Result<Inventory> {
    let dir_name = root.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest_path = root.join("codex-pack.toml");
    let mut found: Vec<(String, &'static str, PathBuf)> = Vec::new();
    let mut pack = PackInfo { name: dir_name, version: None, description: None, manifest_path: None };
    if manifest_path.is_file() {
        let text = std::fs::read_to_string(&manifest_path)?;
        let manifest: PackManifest = toml::from_str(&text)
            .map_err(|err| usage(format!("invalid {}: {}", manifest_path.display(), err.message())))?;
        pack.name = manifest.pack.name.unwrap_or(pack.name);
        pack.version = manifest.pack.version;
        pack.description = manifest.pack.description;
        pack.manifest_path = Some(manifest_path.clone());
        for item in manifest.pack.items {
            let kind = match item.kind.as_str() {
                "skill" => "skill",
                "flow" => "flow",
                "plugin" => "plugin",
                "hook" => "hook",
                other => return Err(usage(format!("codex-pack.toml item {}: unknown kind `{other}`", item.name))),
            };
            let path = Path::new(&item.path);
            if path.is_absolute() || path.components().any(|part| matches!(part, Component::ParentDir)) {
                return Err(usage(format!("codex-pack.toml item {}: path `{}` leaves the pack", item.name, item.path)));
            }
            found.push((item.name, kind, root.join(path)));
        }
    } else {
        for file in walk_files(&root.join("skills"))?.into_iter().filter(|f| f.ends_with("SKILL.md")) {
            let dir = file.parent().unwrap_or(root).to_path_buf();
            found.push((base_name(&dir), "skill", dir));
        }
        for file in walk_files(&root.join("flows"))? {
            let name = file.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            if name == "flow.toml" || name == "flow.yml" {
                let dir = file.parent().unwrap_or(root).to_path_buf();
                let flow_name = flow_name(&file).unwrap_or_else(|| base_name(&dir));
                found.push((flow_name, "flow", dir));
            }
        }
        for file in walk_files(&root.join("plugins"))?.into_iter().filter(|f| f.ends_with(".codex-plugin/plugin.json"))
        {
            let dir = file.parent().and_then(Path::parent).unwrap_or(root).to_path_buf();
            let manifest = read_json(&file)?;
            let name = manifest["name"].as_str().filter(|name| !name.trim().is_empty()).map(str::to_string);
            found.push((name.unwrap_or_else(|| base_name(&dir)), "plugin", dir));
        }
        let hooks_root = root.join("hooks");
        for file in walk_files(&hooks_root)?.into_iter().filter(|f| f.ends_with("hooks.json")) {
            let dir = file.parent().unwrap_or(root).to_path_buf();
            // `hooks/hooks.json` itself is no hook pack (it would hold all the others).
            if dir != hooks_root {
                found.push((base_name(&dir), "hook", dir));
            }
        }
    }
    let mut items = Vec::new();
    for (name, kind, dir) in found {
        check_item_name(kind, &name)?;
        if !marker_of(kind).iter().any(|marker| dir.join(marker).is_file()) {
            bail!(usage(format!("pack {kind} {name} at {} has no {}", dir.display(), marker_of(kind).join(" or "))));
        }
        let relative = dir.strip_prefix(root).unwrap_or(&dir);
        let relative: Vec<String> =
            relative.components().map(|p| p.as_os_str().to_string_lossy().into_owned()).collect();
        // Read at install (the hook groups, the plugin's name): broken JSON
        // is refused now, before anything is written.
        let bundles_hooks = match kind {
            "hook" => read_json(&dir.join("hooks.json")).map(|_| false)?,
            "plugin" => {
                read_json(&dir.join(".codex-plugin/plugin.json"))?.get("hooks").is_some()
                    || dir.join("hooks/hooks.json").is_file()
                    || dir.join("hooks.json").is_file()
            }
            _ => false,
        };
        let digest = hash_dir(&dir).with_context(|| format!("failed to hash {}", dir.display()))?;
        items.push(Item { name, kind, dir, relative: relative.join("/"), digest, bundles_hooks });
    }
    items.sort_by(|a, b| {
        locale_compare(
            &format!("{}:{}:{}", a.kind, a.name, a.relative),
            &format!("{}:{}:{}", b.kind, b.name, b.relative),
        )
    });
    let mut warnings = Vec::new();
    let mut kept: Vec<Item> = Vec::new();
    for item in items {
        if kept.iter().any(|other| other.kind == item.kind && other.name == item.name) {
            warnings.push(format!("Skipping duplicate {} {}.", item.kind, item.name));
            continue;
        }
        kept.push(item);
    }
    Ok(Inventory { pack, items: kept, warnings })
}

/// A JSON file of the pack; invalid JSON is refused naming the file.
fn read_json(file: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("failed to read {}", file.display()))?;
    serde_json::from_str(&text).map_err(|err| usage(format!("failed to parse JSON at {}: {err}", file.display())))
}

fn base_name(dir: &Path) -> String {
    dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The `name` a flow file declares (read as data; nothing runs).
fn flow_name(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    if file.extension().is_some_and(|ext| ext == "toml") {
        let table: toml::Table = toml::from_str(&text).ok()?;
        table.get("name")?.as_str().map(str::to_string)
    } else {
        let value: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
        value.get("name")?.as_str().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        for shorthand in ["peezy-tech/codex-flows", "a/b.c"] {
            assert!(is_github_shorthand(shorthand), "{shorthand}");
        }
        for other in ["a", "a/b/c", "../codex-flows", "./x", "a/..", "https://github.com/a/b"] {
            assert!(!is_github_shorthand(other), "{other}");
        }
        for url in ["https://example.com/x", "git@github.com:a/b.git", "ssh://h/x", "file:///x", "/srv/x.git"] {
            assert!(is_git_url(url), "{url}");
        }
        assert!(check_item_name("flow", "../escape").is_err());
        assert!(check_item_name("flow", ".hidden").is_err());
        assert!(check_item_name("flow", "peezy-codex-fork").is_ok());
    }
}
