//! The patch-stack engine behind `uses: rebase`: fetch the release, find the
//! stack, drop what upstream already has, replay the rest in memory, and
//! either publish a candidate branch or describe the conflict.
//!
//! It never touches the user's checkout: no checkout, no index, no stash, no
//! change to the user's branches or tags. It writes objects (as one pack),
//! refs under `refs/patchmoi/`, and the candidate branch.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::conflict::{self, ConflictReport};
use crate::git::{object_id, ConflictEntry, FetchOutcome, Git, RawCommit, RefUpdate};
use crate::replay::replay;

/// What to rebase and where the result goes; names are already validated.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// URL or path of the upstream repository.
    pub upstream: String,
    /// The maintained patch branch (short name).
    pub branch: String,
    /// The fork's remote.
    pub remote: String,
    /// The release tag (short name).
    pub tag: String,
    /// The candidate branch (short name), e.g. `patchmoi/rust-v0.130.0`.
    pub candidate: String,
}

impl StackSpec {
    /// Where the release commit is kept: our namespace, never the fork's tags
    /// (forks tag their own builds with upstream's names).
    pub fn upstream_ref(&self) -> String {
        format!("refs/patchmoi/upstream/tags/{}", self.tag)
    }

    pub fn candidate_ref(&self) -> String {
        format!("refs/heads/{}", self.candidate)
    }
}

/// A patch of the stack, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    pub sha: String,
    pub subject: String,
    pub author: String,
}

impl Patch {
    fn of(commit: &RawCommit) -> Patch {
        Patch { sha: commit.id.clone(), subject: commit.subject(), author: commit.author() }
    }
}

/// A patch left out because upstream already contains its change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub sha: String,
    pub subject: String,
    pub reason: String,
}

/// The new candidate branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Full ref, `refs/heads/patchmoi/<tag>`.
    pub refname: String,
    pub sha: String,
    /// Where the previous value of the branch was kept, when it moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// A replay that stopped: the patches before the conflict, committed onto
/// the release, and the conflicted merge of the patch that stopped.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub head: String,
    pub tree: String,
    pub conflicts: Vec<ConflictEntry>,
}

/// How `uses: rebase` ended.
#[derive(Debug)]
pub enum RebaseOutcome {
    /// The branch already contains the release.
    UpToDate { head: String, release: String },
    /// A candidate with every patch that still applies.
    Clean { candidate: Candidate, release: String, head: String, carried: Vec<Patch>, dropped: Vec<Dropped> },
    /// A patch does not apply; nothing was changed but objects and our own refs.
    Conflicted { report: Box<ConflictReport>, stopped: Stopped, release: String, head: String, dropped: Vec<Dropped> },
    /// A precondition is not met; the message says which and what to do.
    Blocked(String),
}

/// Runs the whole rebase for one release.
pub fn rebase(git: &Git, spec: &StackSpec) -> Result<RebaseOutcome> {
    let Some(head) = resolve_branch(git, spec)? else {
        return Ok(RebaseOutcome::Blocked(format!(
            "maintained branch {} was found neither locally nor on {}",
            spec.branch, spec.remote
        )));
    };
    let release = match fetch_release(git, spec)? {
        Ok(release) => release,
        Err(blocked) => return Ok(RebaseOutcome::Blocked(blocked)),
    };
    let Some(merge_base) = git.merge_base(&head, &release)? else {
        let hint = if git.is_shallow()? {
            "the repository is a shallow clone; fetch its full history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)"
        } else {
            "they share no history"
        };
        return Ok(RebaseOutcome::Blocked(format!(
            "no common ancestor between branch {} and tag {}: {hint}",
            spec.branch, spec.tag
        )));
    };
    if merge_base == release {
        return Ok(RebaseOutcome::UpToDate { head, release });
    }

    let ids = git.first_parent_range(&merge_base, &head)?;
    let patches = git.read_commits(&ids)?;
    let upstreamed = upstreamed_patches(git, &merge_base, &release, &patches)?;
    let mut dropped: Vec<(usize, Dropped)> = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for (index, patch) in patches.iter().enumerate() {
        match upstreamed.get(&patch.id) {
            Some(upstream) => dropped.push((
                index,
                Dropped {
                    sha: patch.id.clone(),
                    subject: patch.subject(),
                    reason: format!("upstream has the same change as {}", short(upstream)),
                },
            )),
            None => kept.push(index),
        }
    }

    let quarantine = git.quarantine()?;
    let qgit = &quarantine.git;
    let release_tree = git.run(&["rev-parse", &format!("{release}^{{tree}}")])?;
    let stack: Vec<&RawCommit> = kept.iter().map(|index| &patches[*index]).collect();
    let replayed = replay(qgit, &merge_base, &release, &release_tree, &stack)?;
    tracing::debug!(
        patches = stack.len(),
        sequential_merges = replayed.sequential_merges,
        "replayed the stack in memory"
    );
    for index in &replayed.empty {
        let patch = stack[*index];
        dropped.push((
            kept[*index],
            Dropped {
                sha: patch.id.clone(),
                subject: patch.subject(),
                reason: "empty after replay: upstream already contains this change".into(),
            },
        ));
    }
    dropped.sort_by_key(|(index, _)| *index);
    let dropped: Vec<Dropped> = dropped.into_iter().map(|(_, drop)| drop).collect();

    let format = git.object_format()?;
    let mut bodies = Vec::new();
    let mut ids = Vec::new();
    let mut parent = release.clone();
    for (index, tree) in &replayed.applied {
        let body = stack[*index].rewrite(tree, &parent);
        parent = object_id(&format, "commit", &body);
        ids.push(parent.clone());
        bodies.push(body);
    }
    let written = qgit.write_commits(&quarantine.staging, &bodies)?;
    if written != ids {
        bail!("git stored the replayed commits under other ids than computed ({written:?} != {ids:?})");
    }
    let tip = parent;
    let carried: Vec<Patch> = replayed.applied.iter().map(|(index, _)| Patch::of(stack[*index])).collect();

    if let Some((stop, merge)) = replayed.stop {
        let context = conflict::Context {
            git: qgit,
            merge_base: &merge_base,
            release: &release,
            patches: &stack,
            stop,
            merge: &merge,
            applied: carried.clone(),
        };
        let report = conflict::report(&context)?;
        // Keep the stopped state's objects so a worktree can show it.
        quarantine.publish(&[tip.clone(), merge.tree.clone()], &[release.clone(), head.clone()])?;
        let stopped = Stopped { head: tip, tree: merge.tree, conflicts: merge.conflicts };
        return Ok(RebaseOutcome::Conflicted { report: Box::new(report), stopped, release, head, dropped });
    }

    quarantine.publish(std::slice::from_ref(&tip), &[release.clone(), head.clone()])?;
    let built_from = built_from_ref(&spec.candidate_ref());
    let also = match git.ref_value(&built_from)? {
        Some(old) if old == head => Vec::new(),
        old => vec![RefUpdate::Set { refname: built_from, new: head.clone(), old }],
    };
    let candidate = move_branch(git, &spec.candidate_ref(), &tip, also)?;
    Ok(RebaseOutcome::Clean { candidate, release, head, carried, dropped })
}

/// The maintained branch's head: the local branch, else the remote-tracking
/// one, else fetched from the remote into the remote-tracking ref.
fn resolve_branch(git: &Git, spec: &StackSpec) -> Result<Option<String>> {
    let local = format!("refs/heads/{}", spec.branch);
    if let Some(head) = git.resolve_commit(&local)? {
        return Ok(Some(head));
    }
    let tracking = format!("refs/remotes/{}/{}", spec.remote, spec.branch);
    if let Some(head) = git.resolve_commit(&tracking)? {
        return Ok(Some(head));
    }
    if git.remote_url(&spec.remote)?.is_none() {
        return Ok(None);
    }
    match git.fetch_ref(&spec.remote, &local, &tracking)? {
        FetchOutcome::Fetched => git.resolve_commit(&tracking),
        FetchOutcome::Missing => Ok(None),
        FetchOutcome::Unreachable(message) => {
            bail!("failed to fetch branch {} from {}: {message}", spec.branch, spec.remote)
        }
    }
}

/// Fetches only the release tag into our namespace. Ok(Err(..)) is a
/// precondition that does not hold (the tag does not exist upstream).
fn fetch_release(git: &Git, spec: &StackSpec) -> Result<Result<String, String>> {
    let into = spec.upstream_ref();
    let tag_ref = format!("refs/tags/{}", spec.tag);
    match git.fetch_ref(&spec.upstream, &tag_ref, &into)? {
        FetchOutcome::Fetched => {}
        FetchOutcome::Missing => {
            return Ok(Err(format!(
                "tag {} does not exist upstream ({})",
                spec.tag,
                crate::git::redact_url(&spec.upstream)
            )))
        }
        FetchOutcome::Unreachable(message) => {
            bail!("failed to fetch tag {} from upstream: {message}", spec.tag)
        }
    }
    let release = git.resolve_commit(&into)?.with_context(|| format!("tag {} does not point at a commit", spec.tag))?;
    Ok(Ok(release))
}

/// Patches whose patch-id matches an upstream commit in `merge_base..release`.
/// Only upstream commits that touch a file the stack touches can match, so
/// only those are diffed.
fn upstreamed_patches(
    git: &Git,
    merge_base: &str,
    release: &str,
    patches: &[RawCommit],
) -> Result<HashMap<String, String>> {
    let singles: Vec<&RawCommit> = patches.iter().filter(|patch| patch.parents.len() == 1).collect();
    if singles.is_empty() {
        return Ok(HashMap::new());
    }
    let input: String = singles.iter().map(|patch| format!("{}\n", patch.id)).collect();
    let names =
        git.run_bytes(&["diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "--stdin"], Some(input.as_bytes()))?;
    let paths: BTreeSet<String> =
        String::from_utf8_lossy(&names).split('\0').filter(|path| !path.is_empty()).map(str::to_string).collect();
    if paths.is_empty() {
        return Ok(HashMap::new());
    }
    let stack_diffs = git.run_bytes(&["diff-tree", "-p", "--stdin"], Some(input.as_bytes()))?;
    let stack_ids = patch_ids(git, &stack_diffs)?;

    let range = format!("{merge_base}..{release}");
    let mut args =
        vec!["log", "--no-merges", "--full-diff", "-p", "--format=commit %H", "--end-of-options", &range, "--"];
    args.extend(paths.iter().map(String::as_str));
    let upstream_diffs = git.with_env("GIT_LITERAL_PATHSPECS", "1").run_bytes(&args, None)?;
    let upstream_ids: HashMap<String, String> = patch_ids(git, &upstream_diffs)?.into_iter().collect();

    Ok(stack_ids
        .into_iter()
        .filter_map(|(patch_id, commit)| upstream_ids.get(&patch_id).map(|upstream| (commit, upstream.clone())))
        .collect())
}

/// `(patch-id, commit)` pairs from diffs, stable across hunk order.
fn patch_ids(git: &Git, diffs: &[u8]) -> Result<Vec<(String, String)>> {
    if diffs.is_empty() {
        return Ok(Vec::new());
    }
    let out = git.run_bytes(&["patch-id", "--stable"], Some(diffs))?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, commit)| (id.to_string(), commit.to_string()))
        .collect())
}

/// Points `refname` at `sha`, together with `also`, in one transaction; an
/// old value that differs is kept first under `refs/patchmoi/backup/…`, so
/// nothing is lost. Refuses when the branch is checked out in some worktree.
pub fn move_branch(git: &Git, refname: &str, sha: &str, mut also: Vec<RefUpdate>) -> Result<Candidate> {
    let old = git.ref_value(refname)?;
    let mut backup = None;
    if old.as_deref() != Some(sha) {
        if let Some((_, path)) = git.checked_out_branches()?.into_iter().find(|(branch, _)| branch == refname) {
            bail!("{refname} is checked out in {}; patchmoi will not move a checked-out branch", path.display());
        }
        if let Some(old) = &old {
            let name = backup_ref(git, refname)?;
            also.push(RefUpdate::Set { refname: name.clone(), new: old.clone(), old: None });
            backup = Some(name);
        }
        also.push(RefUpdate::Set { refname: refname.to_string(), new: sha.to_string(), old: old.clone() });
    }
    git.update_refs(&also).with_context(|| format!("failed to move {refname}"))?;
    Ok(Candidate { refname: refname.to_string(), sha: sha.to_string(), backup })
}

/// Where we remember which maintained-branch head a candidate was built
/// from: `promote` leases on it, even where no state file survived.
pub fn built_from_ref(candidate_ref: &str) -> String {
    format!("refs/patchmoi/built-from/{}", candidate_ref.trim_start_matches("refs/"))
}

/// A fresh `refs/patchmoi/backup/<ref without refs/>/<UTC time>` name.
pub fn backup_ref(git: &Git, refname: &str) -> Result<String> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(['-', ':'], "");
    let base = format!("refs/patchmoi/backup/{}/{stamp}", refname.trim_start_matches("refs/"));
    let mut name = base.clone();
    let mut n = 1;
    while git.ref_value(&name)?.is_some() {
        n += 1;
        name = format!("{base}-{n}");
    }
    Ok(name)
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
