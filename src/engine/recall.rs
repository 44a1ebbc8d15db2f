//! Applying the memory of resolutions to a conflicted merge, and learning
//! new resolutions from a resolved tree. The pure matching lives in
//! [`crate::engine::memory`]; this module reads and writes the objects.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::engine::markers::{has_markers, segments, Segment};
use crate::engine::memory::{apply, file_key, hunk_key, learn, Entry, Memory, Recalled};
use crate::git;
use crate::git::{ConflictEntry, Git, MergeResult};

/// A file as the memory sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum File {
    Absent,
    Text(String),
    /// Not UTF-8 (or not a regular blob): the memory does not hold these.
    Opaque,
}

impl File {
    fn text(&self) -> Option<&str> {
        match self {
            File::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// `paths` in `tree`.
fn read_files(git: &Git, tree: &str, paths: &[String]) -> Result<Vec<File>> {
    let specs: Vec<String> = paths.iter().map(|path| format!("{tree}:{path}")).collect();
    Ok(git
        .read_objects(&specs)?
        .into_iter()
        .map(|object| match object {
            None => File::Absent,
            Some((kind, bytes)) if kind == "blob" => String::from_utf8(bytes).map_or(File::Opaque, File::Text),
            Some(_) => File::Opaque,
        })
        .collect())
}

fn stages_of<'a>(merge: &'a [ConflictEntry], path: &str) -> Vec<&'a ConflictEntry> {
    merge.iter().filter(|entry| entry.path == path).collect()
}

fn region_keys(marked: &str) -> Vec<String> {
    segments(marked)
        .iter()
        .filter_map(|segment| match segment {
            Segment::Conflict(conflict) => Some(hunk_key(conflict)),
            Segment::Text(_) => None,
        })
        .collect()
}

/// Resolves every conflicted file of `merge` from memory, or returns None
/// when any of them is not fully known. `staging` is scratch space for the
/// temporary index the resolved tree is built in.
pub fn recall(
    git: &Git,
    memory: &Memory,
    merge: &MergeResult,
    staging: &Path,
) -> Result<Option<(String, Vec<Recalled>)>> {
    if memory.is_empty() {
        return Ok(None);
    }
    let paths = merge.conflicted_paths();
    let marked = read_files(git, &merge.tree, &paths)?;
    if marked.contains(&File::Opaque) {
        return Ok(None);
    }
    let mut keys: Vec<String> = Vec::new();
    for (path, file) in paths.iter().zip(&marked) {
        keys.extend(file.text().map(region_keys).unwrap_or_default());
        keys.push(file_key(path, &stages_of(&merge.conflicts, path)));
    }
    let known = memory.get(git, &keys)?;
    let mut resolved: Vec<(String, Option<String>, String)> = Vec::new();
    let mut recalled = Vec::new();
    for (path, file) in paths.iter().zip(&marked) {
        let whole = known.get(&file_key(path, &stages_of(&merge.conflicts, path)));
        let by_region = file.text().and_then(|text| apply(text, |key| known.get(key)?.resolution.clone()));
        let (content, first) = match (by_region, whole) {
            (Some(content), _) => {
                let first = file.text().map(region_keys).unwrap_or_default().first().and_then(|key| known.get(key));
                (Some(content), first)
            }
            (None, Some(entry)) => (entry.resolution.clone(), Some(entry)),
            (None, None) => return Ok(None),
        };
        let mode = stages_of(&merge.conflicts, path)
            .iter()
            .rev()
            .map(|entry| entry.mode.clone())
            .next()
            .unwrap_or_else(|| "100644".into());
        recalled.push(Recalled {
            path: path.clone(),
            first_resolved_in: first.map(|entry| entry.tag.clone()).unwrap_or_default(),
        });
        resolved.push((path.clone(), content, mode));
    }
    let tree = git.tree_with_replaced_paths(&merge.tree, &resolved, staging)?;
    Ok(Some((tree, recalled)))
}

/// What was wrong with a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Conflict markers are still in these files.
    Markers(Vec<String>),
    /// These files changed although they do not conflict: a resolution is
    /// remembered and replayed for the conflicting files only, so these
    /// changes would be lost.
    Unrelated(Vec<String>),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Markers(paths) => write!(f, "conflict markers are left in {}", paths.join(", ")),
            Invalid::Unrelated(paths) => write!(
                f,
                "files that do not conflict changed ({}); a resolution keeps only the conflicting files, so make such changes in a patch of the stack",
                paths.join(", ")
            ),
        }
    }
}

/// Checks a resolved tree against the stopped merge: no markers left in
/// the conflicted files and no change to any other file (the memory could
/// not replay it, so it would be silently lost).
pub fn validate(
    git: &Git,
    merge_tree: &str,
    conflicted: &[String],
    resolved_tree: &str,
) -> Result<Result<(), Invalid>> {
    let files = read_files(git, resolved_tree, conflicted)?;
    let marked: Vec<String> = conflicted
        .iter()
        .zip(files)
        .filter(|(_, file)| file.text().is_some_and(has_markers))
        .map(|(path, _)| path.clone())
        .collect();
    if !marked.is_empty() {
        return Ok(Err(Invalid::Markers(marked)));
    }
    let changed = git.changed_paths(merge_tree, resolved_tree)?;
    let unrelated: Vec<String> = changed.into_iter().filter(|path| !conflicted.contains(path)).collect();
    if !unrelated.is_empty() {
        return Ok(Err(Invalid::Unrelated(unrelated)));
    }
    Ok(Ok(()))
}

/// The entries that remember how `resolved_tree` resolved the conflicts of
/// the merge `merge_tree` (whose index stages are `conflicts`).
pub fn learn_resolutions(
    git: &Git,
    merge_tree: &str,
    conflicts: &[ConflictEntry],
    resolved_tree: &str,
    template: &Entry,
) -> Result<Vec<(String, Entry)>> {
    let paths = git::conflicted_paths(conflicts);
    let marked = read_files(git, merge_tree, &paths)?;
    let resolved = read_files(git, resolved_tree, &paths)?;
    let mut learned: BTreeMap<String, Entry> = BTreeMap::new();
    for ((path, marked), resolved) in paths.iter().zip(marked).zip(resolved) {
        let entry = |kind: &str, resolution: Option<String>| Entry {
            kind: kind.into(),
            resolution,
            path: path.clone(),
            ..template.clone()
        };
        if let (Some(marked), Some(resolved)) = (marked.text(), resolved.text()) {
            if let Some(regions) = learn(marked, resolved) {
                for (key, text) in regions {
                    learned.insert(key, entry("hunk", Some(text)));
                }
                continue;
            }
        }
        let resolution = match resolved {
            File::Text(text) => Some(text),
            File::Absent => None,
            File::Opaque => {
                tracing::warn!("{path} is not text; its resolution is not remembered");
                continue;
            }
        };
        learned.insert(file_key(path, &stages_of(conflicts, path)), entry("file", resolution));
    }
    Ok(learned.into_iter().collect())
}
