//! Conflict reports: which patch stopped, which files and hunks conflict,
//! which upstream commits touched them, the culprit, and a survey of every
//! patch of the stack against the release. All of it from in-memory merges:
//! no checkout, no paused rebase.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::engine::culprit::{Finding, Search, Target};
use crate::engine::markers::{segments, Segment};
use crate::engine::patch::Patch;
use crate::engine::replay::first_parent;
use crate::git::{Git, MergeRequest, MergeResult, RawCommit};

/// How many upstream commits per conflicting file a report lists.
const COMMITS_PER_FILE: usize = 20;

/// Everything the report is computed from.
pub struct Context<'a> {
    /// A repository view that can read the replay's (quarantined) objects.
    pub git: &'a Git,
    /// Where the branch left upstream along first parents (the parent of
    /// its oldest commit the release lacks): upstream's commits since then
    /// are the ones that can explain a conflict.
    pub fork_point: &'a str,
    pub release: &'a str,
    pub release_tree: &'a str,
    /// The patches that were replayed, oldest first.
    pub patches: &'a [&'a RawCommit],
    /// The tree each patch up to the one that stopped landed on.
    pub landed_on: &'a [String],
    /// Index of the patch that stopped.
    pub stop: usize,
    /// Its conflicted merge onto the replayed state.
    pub merge: &'a MergeResult,
    /// Patches already replayed when it stopped.
    pub applied: Vec<Patch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictReport {
    /// The patch that does not apply.
    pub patch: Patch,
    pub applied: Vec<Patch>,
    pub remaining: Vec<Patch>,
    pub files: Vec<ConflictFile>,
    pub culprit: Option<Culprit>,
    /// The earlier patch of the stack this one builds on (it does not apply
    /// to the old base alone), if any.
    pub builds_on: Option<CommitRef>,
    pub survey: Vec<SurveyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    pub path: String,
    /// git's kind of conflict: `contents`, `modify/delete`, `add/add`, …
    pub kind: String,
    pub hunks: Vec<Hunk>,
    /// Upstream commits in `fork point..tag` that touched the file, newest first.
    pub upstream_commits: Vec<CommitRef>,
}

/// One conflicting region. Lines are those of the release's version of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    pub start_line: usize,
    pub end_line: usize,
    /// The release's text of the region.
    pub upstream: String,
    /// The patch's text of the region.
    pub patch: String,
    /// The text both started from.
    pub base: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    pub sha: String,
    pub subject: String,
}

/// Why the patch stopped applying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Culprit {
    /// `upstream`: the first upstream commit after which the patch no longer
    /// applies. `patch`: the patch builds on an earlier patch of the stack
    /// (it does not apply to the old base alone), named here.
    pub kind: String,
    pub sha: String,
    pub subject: String,
    /// For `upstream`: how the patches below were carried when the claim
    /// was checked: `replayed` (as the replay left them, resolutions
    /// included) or `committed` (as the fork committed them); absent when
    /// nothing is below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyEntry {
    pub sha: String,
    pub subject: String,
    pub files: Vec<String>,
    /// Set when the patch conflicts only because it builds on this earlier patch.
    pub depends_on: Option<CommitRef>,
    /// Its own culprit, found as the stopped patch's is; absent when it
    /// builds on an earlier patch or no single upstream commit explains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<Culprit>,
}

/// Builds the whole report. The stopped patch's part (its files, what it
/// builds on, its culprit) and the survey of the whole stack are
/// independent: they run side by side, one on each core.
pub fn report(ctx: &Context) -> Result<ConflictReport> {
    let stopped = ctx.patches[ctx.stop];
    let bases = Bases::default();
    let (stop_part, surveyed) = std::thread::scope(|scope| {
        let surveyed = scope.spawn(|| survey(ctx, &bases));
        (stop_part(ctx, &bases), surveyed.join())
    });
    let (files, builds_on, finding) = stop_part?;
    let (mut survey, stop_entry) = match surveyed {
        Ok(surveyed) => surveyed?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if let Some(entry) = stop_entry {
        survey[entry].culprit = upstream_culprit(finding.clone());
    }
    let culprit = match finding {
        Finding::NotUpstream => builds_on.clone().map(|earlier| Culprit {
            kind: "patch".into(),
            sha: earlier.sha,
            subject: earlier.subject,
            carried: None,
        }),
        finding => upstream_culprit(finding),
    };
    let patches: Vec<Patch> = ctx.patches.iter().map(|commit| patch_of(commit)).collect();
    tracing::debug!(patch = %stopped.id, files = files.len(), "conflict report built");
    Ok(ConflictReport {
        patch: patches[ctx.stop].clone(),
        applied: ctx.applied.clone(),
        remaining: patches[ctx.stop + 1..].to_vec(),
        culprit,
        builds_on,
        survey,
        files,
    })
}

/// The culprit a finding names, when it names an upstream commit.
fn upstream_culprit(finding: Finding) -> Option<Culprit> {
    match finding {
        Finding::Upstream { sha, subject, carried } => {
            Some(Culprit { kind: "upstream".into(), sha, subject, carried: carried.map(str::to_string) })
        }
        Finding::NoSingleCommit | Finding::NotUpstream => None,
    }
}

/// The stopped patch's conflicted files, the earlier patch it builds on (if
/// it does not apply to its own base) and its culprit.
fn stop_part(ctx: &Context, bases: &Bases) -> Result<(Vec<ConflictFile>, Option<CommitRef>, Finding)> {
    let stopped = ctx.patches[ctx.stop];
    let paths = ctx.merge.conflicted_paths();
    let specs: Vec<String> = paths.iter().map(|path| format!("{}:{path}", ctx.merge.tree)).collect();
    let blobs = ctx.git.read_objects(&specs)?;
    let mut files = Vec::new();
    for (path, blob) in paths.iter().zip(blobs) {
        let hunks = match blob {
            Some((kind, bytes)) if kind == "blob" => {
                in_release_lines(ctx.git, ctx.release, path, &String::from_utf8_lossy(&bytes))?
            }
            _ => Vec::new(),
        };
        let upstream_commits = ctx
            .git
            .commits_touching(ctx.fork_point, ctx.release, path, COMMITS_PER_FILE)?
            .into_iter()
            .map(|(sha, subject)| CommitRef { sha, subject })
            .collect();
        files.push(ConflictFile { path: path.clone(), kind: conflict_kind(ctx.merge, path), hunks, upstream_commits });
    }
    let builds_on = match applies(ctx.git, stopped, &bases.own_base(ctx, stopped)?)? {
        true => None,
        false => builds_on(ctx.git, ctx.patches, ctx.stop)?,
    };
    let finding = find_culprit(ctx, bases, ctx.stop)?;
    Ok((files, builds_on, finding))
}

/// Each patch's own base, computed once (a merge base walks upstream's
/// history) and shared by the two halves of the report.
#[derive(Default)]
struct Bases(Mutex<HashMap<String, String>>);

impl Bases {
    /// Where `patch`'s own history last met upstream: the base it applies
    /// to alone (after a sync merge, the synced upstream commit).
    fn own_base(&self, ctx: &Context, patch: &RawCommit) -> Result<String> {
        let parent = first_parent(patch);
        if let Some(base) = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&parent) {
            return Ok(base.clone());
        }
        let base = ctx.git.merge_base(&parent, ctx.release)?.unwrap_or_else(|| ctx.fork_point.to_string());
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(parent, base.clone());
        Ok(base)
    }
}

fn patch_of(commit: &RawCommit) -> Patch {
    Patch { sha: commit.id.clone(), subject: commit.subject(), author: commit.author() }
}

/// `CONFLICT (modify/delete)` → `modify/delete`, for the message about `path`.
fn conflict_kind(merge: &MergeResult, path: &str) -> String {
    merge
        .messages
        .iter()
        .filter(|(paths, kind, _)| kind.starts_with("CONFLICT") && paths.iter().any(|p| p == path))
        .find_map(|(_, kind, _)| kind.strip_prefix("CONFLICT (").and_then(|rest| rest.strip_suffix(')')))
        .unwrap_or("contents")
        .to_string()
}

/// Does `patch` alone apply on top of `onto`?
fn applies(git: &Git, patch: &RawCommit, onto: &str) -> Result<bool> {
    Ok(git.merge_tree(MergeRequest { base: first_parent(patch), ours: onto.into(), theirs: patch.id.clone() })?.clean)
}

/// The checked culprit of `patches[index]`, with the patches below carried.
fn find_culprit(ctx: &Context, bases: &Bases, index: usize) -> Result<Finding> {
    let patch = ctx.patches[index];
    let own_base = bases.own_base(ctx, patch)?;
    let paths = ctx.git.changed_paths(&first_parent(patch), &patch.id)?;
    let search =
        Search { git: ctx.git, release: ctx.release, release_tree: ctx.release_tree, fork_point: ctx.fork_point };
    search.culprit(&Target {
        patch,
        has_lower: index > 0,
        landed_on: ctx.landed_on.get(index).map(String::as_str),
        paths: &paths,
        own_base: &own_base,
    })
}

/// The earlier patch that `patches[index]` builds on: the one after which
/// the patch applies to the original stack and keeps applying.
fn builds_on(git: &Git, patches: &[&RawCommit], index: usize) -> Result<Option<CommitRef>> {
    let patch = patches[index];
    let requests: Vec<MergeRequest> = patches[..index]
        .iter()
        .map(|earlier| MergeRequest { base: first_parent(patch), ours: earlier.id.clone(), theirs: patch.id.clone() })
        .collect();
    let results = git.merge_trees(&requests)?;
    let first_clean = match results.iter().rposition(|result| !result.clean) {
        Some(last_conflict) => last_conflict + 1,
        None => 0,
    };
    Ok(patches[..index]
        .get(first_clean)
        .map(|earlier| CommitRef { sha: earlier.id.clone(), subject: earlier.subject() }))
}

/// Every patch that conflicts when applied alone onto the release, each
/// with what explains it: the earlier patch it builds on, or its own
/// culprit. The stopped patch's culprit is the report's: its entry, if it
/// needs it, is named by the second value and filled in by the caller.
fn survey(ctx: &Context, bases: &Bases) -> Result<(Vec<SurveyEntry>, Option<usize>)> {
    let patches = ctx.patches;
    let on_release = ctx.git.merge_trees(
        &patches
            .iter()
            .map(|patch| MergeRequest { base: first_parent(patch), ours: ctx.release.into(), theirs: patch.id.clone() })
            .collect::<Vec<_>>(),
    )?;
    let conflicting: Vec<usize> = (0..patches.len()).filter(|index| !on_release[*index].clean).collect();
    let mut on_base = Vec::new();
    for index in &conflicting {
        let patch = patches[*index];
        on_base.push(MergeRequest {
            base: first_parent(patch),
            ours: bases.own_base(ctx, patch)?,
            theirs: patch.id.clone(),
        });
    }
    let on_base = ctx.git.merge_trees(&on_base)?;
    let (mut entries, mut stop_entry) = (Vec::new(), None);
    for (index, base_result) in conflicting.into_iter().zip(on_base) {
        let depends_on = if base_result.clean { None } else { builds_on(ctx.git, patches, index)? };
        let culprit = match &depends_on {
            Some(earlier) => Some(Culprit {
                kind: "patch".into(),
                sha: earlier.sha.clone(),
                subject: earlier.subject.clone(),
                carried: None,
            }),
            None if index == ctx.stop => {
                stop_entry = Some(entries.len());
                None
            }
            None => upstream_culprit(find_culprit(ctx, bases, index)?),
        };
        entries.push(SurveyEntry {
            sha: patches[index].id.clone(),
            subject: patches[index].subject(),
            files: on_release[index].conflicted_paths(),
            depends_on,
            culprit,
        });
    }
    Ok((entries, stop_entry))
}

/// The hunks of a conflicted file, numbered by the lines of the release's
/// version of it. The markers number them in the file with every conflict
/// taken as upstream's side, which also holds the lines the patch (and the
/// patches below it) added or removed above a hunk: a diff from the
/// release's file to that one maps them back.
fn in_release_lines(git: &Git, release: &str, path: &str, text: &str) -> Result<Vec<Hunk>> {
    let mut hunks = parse_hunks(text);
    let in_release = format!("{release}:{path}");
    if hunks.is_empty() || git.read_objects(std::slice::from_ref(&in_release))?[0].is_none() {
        return Ok(hunks);
    }
    let ours: String = segments(text)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => text,
            Segment::Conflict(conflict) => conflict.upstream,
        })
        .collect();
    let blob = git.write_blobs(&[ours.into_bytes()])?.remove(0);
    let changes = git.line_changes(&in_release, &blob)?;
    for hunk in &mut hunks {
        hunk.start_line = old_line(&changes, hunk.start_line);
        hunk.end_line = old_line(&changes, hunk.end_line).max(hunk.start_line);
    }
    Ok(hunks)
}

/// The line of the old file that `line` of the new one stands for, given
/// the diff's `(old_start, old_len, new_start, new_len)` ranges; an added
/// line stands for the old line it was inserted before.
fn old_line(changes: &[(usize, usize, usize, usize)], line: usize) -> usize {
    let mut delta: isize = 0;
    for &(old_start, old_len, new_start, new_len) in changes {
        // A zero-length range is given as the line before it.
        let new_from = if new_len == 0 { new_start + 1 } else { new_start };
        let old_from = if old_len == 0 { old_start + 1 } else { old_start };
        if line < new_from {
            break;
        }
        if line < new_from + new_len {
            return old_from;
        }
        delta = (old_from + old_len) as isize - (new_from + new_len) as isize;
    }
    (line as isize + delta).max(1) as usize
}

/// Reads the conflict regions out of a file written with diff3-style markers.
pub fn parse_hunks(text: &str) -> Vec<Hunk> {
    segments(text)
        .into_iter()
        .filter_map(|segment| match segment {
            Segment::Conflict(conflict) => Some(Hunk {
                start_line: conflict.start_line,
                end_line: (conflict.start_line + conflict.upstream.lines().count())
                    .saturating_sub(1)
                    .max(conflict.start_line),
                upstream: conflict.upstream,
                patch: conflict.patch,
                base: conflict.base,
            }),
            Segment::Text(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_carry_release_line_ranges() {
        let text = "a\nb\n<<<<<<< ours\nport = env\nhost = x\n||||||| base\nport = 3000\n=======\nport = 8080\n>>>>>>> theirs\nc\n<<<<<<< o\n||||||| b\nold\n=======\nnew\n>>>>>>> t\nend\n";
        let hunks = parse_hunks(text);
        assert_eq!(hunks.len(), 2);
        assert_eq!((hunks[0].start_line, hunks[0].end_line), (3, 4));
        assert_eq!(hunks[0].base, "port = 3000\n");
        assert_eq!((hunks[1].start_line, hunks[1].end_line), (6, 6));
    }

    #[test]
    fn lines_map_back_over_added_and_removed_lines() {
        // One line added after old line 9, old lines 20-21 removed, old
        // line 30 replaced by two.
        let changes = [(9, 0, 10, 1), (20, 2, 20, 0), (30, 1, 29, 2)];
        assert_eq!(old_line(&changes, 5), 5);
        assert_eq!(old_line(&changes, 10), 10, "an added line stands for the line it precedes");
        assert_eq!(old_line(&changes, 11), 10);
        assert_eq!(old_line(&changes, 19), 18);
        assert_eq!(old_line(&changes, 20), 19);
        assert_eq!(old_line(&changes, 21), 22);
        assert_eq!(old_line(&changes, 29), 30);
        assert_eq!(old_line(&changes, 31), 31);
        assert_eq!(old_line(&[], 7), 7);
    }
}
