//! Applying the memory of resolutions to a conflicted merge, and learning
//! new resolutions from a resolved tree. The pure matching lives in
//! [`crate::engine::memory`]; this module reads and writes the objects.
//!
//! A resolution covers the conflicting files and may edit other files the
//! same patch changes (an import, a call site): those edits are learned as
//! one `related` entry and replayed, by a three-way merge of each file, only
//! when every conflicting file was resolved from memory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::markers::{has_markers, segments, Segment};
use crate::engine::memory::{apply, file_key, hunk_key, learn, related_key, Edit, Entry, Memory, Recalled};
use crate::git;
use crate::git::{ConflictEntry, Git, MergeResult};

/// A file to write into a tree: path, content (None: removed), mode.
type Written = (String, Option<String>, String);

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

/// The keys that name one stop's conflict as a whole: every region of the
/// files with markers, the file key of those without. The same conflict on
/// a later release, around moved-on context, gives the same keys.
fn signature(paths: &[String], marked: &[File], conflicts: &[ConflictEntry]) -> Vec<String> {
    let mut keys = Vec::new();
    for (path, file) in paths.iter().zip(marked) {
        let regions = file.text().map(region_keys).unwrap_or_default();
        if regions.is_empty() {
            keys.push(file_key(path, &stages_of(conflicts, path)));
        } else {
            keys.extend(regions);
        }
    }
    keys
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
    let related = related_key(&signature(&paths, &marked, &merge.conflicts));
    let mut keys: Vec<String> = vec![related.clone()];
    for (path, file) in paths.iter().zip(&marked) {
        keys.extend(file.text().map(region_keys).unwrap_or_default());
        keys.push(file_key(path, &stages_of(&merge.conflicts, path)));
    }
    let known = memory.get(git, &keys)?;
    let mut resolved: Vec<Written> = Vec::new();
    let mut recalled = Vec::new();
    for (path, file) in paths.iter().zip(&marked) {
        let file_key = file_key(path, &stages_of(&merge.conflicts, path));
        let whole = known.get(&file_key).map(|entry| (file_key.clone(), entry));
        let by_region = file.text().and_then(|text| apply(text, |key| known.get(key)?.resolution.clone()));
        let (content, first) = match (by_region, whole) {
            (Some(content), _) => {
                let first = file.text().map(region_keys).unwrap_or_default().into_iter().next();
                let first = first.and_then(|key| Some((key.clone(), known.get(&key)?)));
                (Some(content), first)
            }
            (None, Some((key, entry))) => (entry.resolution.clone(), Some((key, entry))),
            (None, None) => return Ok(None),
        };
        let mode = stages_of(&merge.conflicts, path)
            .iter()
            .rev()
            .map(|entry| entry.mode.clone())
            .next()
            .unwrap_or_else(|| "100644".into());
        let (key, tag) = first.map(|(key, entry)| (key, entry.tag.clone())).unwrap_or_default();
        recalled.push(Recalled { path: path.clone(), first_resolved_in: tag, key, related: false });
        resolved.push((path.clone(), content, mode));
    }
    if let Some(entry) = known.get(&related) {
        let Some(edits) = replay_edits(git, &merge.tree, &entry.edits)? else {
            tracing::info!("the edits remembered beside this conflict no longer apply; it needs a person again");
            return Ok(None);
        };
        for (path, content, mode) in edits {
            let recorded = entry.tag.clone();
            recalled.push(Recalled {
                path: path.clone(),
                first_resolved_in: recorded,
                key: related.clone(),
                related: true,
            });
            resolved.push((path, content, mode));
        }
    }
    let tree = git.tree_with_replaced_paths(&merge.tree, &resolved, staging)?;
    Ok(Some((tree, recalled)))
}

/// Each remembered edit, replayed on the file as this merge left it: as
/// recorded when the file is as it was then, else by a three-way merge;
/// None when one of them no longer applies.
fn replay_edits(git: &Git, tree: &str, edits: &[Edit]) -> Result<Option<Vec<Written>>> {
    let paths: Vec<String> = edits.iter().map(|edit| edit.path.clone()).collect();
    let current = read_files(git, tree, &paths)?;
    let mut out = Vec::with_capacity(edits.len());
    for (edit, now) in edits.iter().zip(current) {
        let now = match now {
            File::Absent => None,
            File::Text(text) => Some(text),
            File::Opaque => return Ok(None),
        };
        let content = if now == edit.base || now == edit.resolution {
            edit.resolution.clone()
        } else {
            match (&edit.base, &now, &edit.resolution) {
                (Some(base), Some(now), Some(resolution)) => match git.merge_texts(base, now, resolution)? {
                    Some(merged) => Some(merged),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            }
        };
        out.push((edit.path.clone(), content, edit.mode.clone()));
    }
    Ok(Some(out))
}

/// What was wrong with a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Conflict markers are still in these files.
    Markers(Vec<String>),
    /// These files changed although the patch never touches them: the
    /// memory replays edits to the patch's own files only, so these changes
    /// would be lost (or belong to another patch).
    Untouched(Vec<String>),
    /// These files of the patch changed beside the conflict but are not
    /// text: the memory cannot carry the edit.
    NotText(Vec<String>),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Markers(paths) => write!(f, "conflict markers are left in {}", paths.join(", ")),
            Invalid::Untouched(paths) => write!(
                f,
                "files that the patch does not touch changed ({}); a resolution keeps the conflicting files and edits to the patch's own files only, so make such changes in a patch of the stack",
                paths.join(", ")
            ),
            Invalid::NotText(paths) => write!(
                f,
                "files beside the conflict changed that are not text ({}); the memory of resolutions can only keep text edits",
                paths.join(", ")
            ),
        }
    }
}

/// Checks a resolved tree against the stopped merge: no markers left in
/// the conflicted files, and no change to a file the patch does not touch
/// (the memory could not replay it, so it would be silently lost). Changes
/// to the patch's other files (`patch_paths`) are kept as related edits.
pub fn validate(
    git: &Git,
    merge_tree: &str,
    conflicted: &[String],
    patch_paths: &[String],
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
    let related = related_paths(git, merge_tree, conflicted, resolved_tree)?;
    let untouched: Vec<String> = related.iter().filter(|path| !patch_paths.contains(path)).cloned().collect();
    if !untouched.is_empty() {
        return Ok(Err(Invalid::Untouched(untouched)));
    }
    let (before, after) = (read_files(git, merge_tree, &related)?, read_files(git, resolved_tree, &related)?);
    let opaque: Vec<String> = related
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (before, after))| **before == File::Opaque || **after == File::Opaque)
        .map(|(path, _)| path.clone())
        .collect();
    if !opaque.is_empty() {
        return Ok(Err(Invalid::NotText(opaque)));
    }
    Ok(Ok(()))
}

/// The files a resolution changed beside the conflicting ones.
fn related_paths(git: &Git, merge_tree: &str, conflicted: &[String], resolved_tree: &str) -> Result<Vec<String>> {
    let changed = git.changed_paths(merge_tree, resolved_tree)?;
    Ok(changed.into_iter().filter(|path| !conflicted.contains(path)).collect())
}

/// The mode of `path` in `tree` (`100644` when it is not there).
fn mode_of(git: &Git, tree: &str, path: &str) -> Result<String> {
    let (dir, name) = path.rsplit_once('/').map_or((None, path), |(dir, name)| (Some(dir), name));
    let listed = dir.map_or_else(|| tree.to_string(), |dir| format!("{tree}:{dir}"));
    let entries = git.ls_tree(&listed)?;
    Ok(entries.into_iter().find(|entry| entry.name == name).map_or_else(|| "100644".into(), |entry| entry.mode))
}

/// The entries that remember how `resolved_tree` resolved the conflicts of
/// the merge `merge_tree` (whose index stages are `conflicts`), with the
/// edits it made to other files (already checked by [`validate`]).
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
    for ((path, marked), resolved) in paths.iter().zip(&marked).zip(resolved) {
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
    let related = related_paths(git, merge_tree, &paths, resolved_tree)?;
    if !related.is_empty() {
        let (before, after) = (read_files(git, merge_tree, &related)?, read_files(git, resolved_tree, &related)?);
        let mut edits = Vec::with_capacity(related.len());
        for ((path, before), after) in related.iter().zip(before).zip(after) {
            let text = |file: File| match file {
                File::Text(text) => Ok(Some(text)),
                File::Absent => Ok(None),
                File::Opaque => bail!("{path} is not text; the memory cannot keep an edit to it"),
            };
            let mode = mode_of(git, resolved_tree, path)?;
            edits.push(Edit { path: path.clone(), base: text(before)?, resolution: text(after)?, mode });
        }
        let key = related_key(&signature(&paths, &marked, conflicts));
        let path = related.join(", ");
        learned.insert(key, Entry { kind: "related".into(), resolution: None, path, edits, ..template.clone() });
    }
    Ok(learned.into_iter().collect())
}
