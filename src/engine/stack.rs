//! The patch-stack engine behind `uses: rebase`: fetch the release, find the
//! stack, drop what upstream already has, replay the rest in memory, and
//! either publish a candidate branch or describe the conflict.
//!
//! It never touches the user's checkout: no checkout, no index, no stash, no
//! change to the user's branches or tags. It writes objects (as one pack),
//! refs under `refs/patchmoi/`, and the candidate branch.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::redact;
use crate::engine::ahead::{self, Ahead, Base};
use crate::engine::conflict::{self, ConflictReport};
use crate::engine::land::{self, Land};
use crate::engine::memory::{self, Memory, Recalled};
pub use crate::engine::patch::{Candidate, Dropped, Patch};
use crate::engine::provenance::{self, PullLookup};
use crate::engine::publish;
use crate::engine::recall::recall;
use crate::engine::regenerate::{self, Attempt, RegenerateRule, Regenerated, Regenerator};
use crate::engine::replay;
use crate::engine::replay::{replay, Onto, Patches};
use crate::engine::upstreamed;
use crate::engine::walk;
use crate::git::{self, CherryWalk, ConflictEntry, FetchOutcome, Git, MergeResult, Quarantine, RawCommit, RefUpdate};

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
    /// What patchmoi does beyond `git rebase`.
    pub options: StackOptions,
}

/// The rebase's own behaviours, beyond what `git rebase <tag>` does.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Whether patches are also dropped by provenance (`cherry-pick -x`
    /// lines, `Upstream-Commit:`/`Upstream-PR:` trailers, `UPSTREAM:`
    /// subjects; see [`crate::engine::provenance`]), not only by patch-id.
    pub provenance: bool,
    /// How the candidate lands: replacing the branch, or as a fast-forward
    /// of it (see [`crate::engine::land`]).
    pub land: Land,
    /// Generated files to regenerate rather than stop at (see
    /// [`crate::engine::regenerate`]); they run only through
    /// [`rebase_with`]'s regenerator.
    pub regenerate: Vec<RegenerateRule>,
    /// Asks GitHub about a pull request the release's history says nothing
    /// of, when a token is at hand (see [`provenance::PullLookup`]).
    pub pulls: Option<Arc<dyn PullLookup>>,
}

impl Default for StackOptions {
    fn default() -> StackOptions {
        StackOptions { provenance: true, land: Land::Rebase, regenerate: Vec::new(), pulls: None }
    }
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

/// A replay that stopped: the patches before the conflict, committed onto
/// the release, and the conflicted merge of the patch that stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    pub head: String,
    pub tree: String,
    pub conflicts: Vec<ConflictEntry>,
    /// The patch that stopped, and the files it changes.
    pub patch: Patch,
    pub patch_paths: Vec<String>,
    /// What it was computed from: the same inputs give the same state, so
    /// `resolve` can reuse it instead of replaying again.
    pub branch_head: String,
    pub release: String,
    pub memory: Option<String>,
}

/// How `uses: rebase` ended.
#[derive(Debug)]
pub enum RebaseOutcome {
    /// The branch already contains the release.
    UpToDate { head: String, release: String },
    /// A candidate with every patch that still applies.
    Clean {
        candidate: Candidate,
        release: String,
        head: String,
        carried: Vec<Patch>,
        dropped: Vec<Dropped>,
        recalled: Vec<RecalledPatch>,
        regenerated: Vec<Regenerated>,
    },
    /// A patch does not apply; nothing was changed but objects and our own refs.
    Conflicted {
        report: Box<ConflictReport>,
        stopped: Stopped,
        release: String,
        head: String,
        dropped: Vec<Dropped>,
        recalled: Vec<RecalledPatch>,
        regenerated: Vec<Regenerated>,
        /// Why the `regenerate:` rule that covers the conflict did not
        /// resolve it, when one does.
        regeneration: Option<String>,
    },
    /// A precondition is not met; the message says which and what to do.
    Blocked(String),
}

/// The stack, ready to replay: everything read, nothing written yet.
pub struct Prepared {
    /// The maintained branch head.
    pub head: String,
    /// The release commit.
    pub release: String,
    pub merge_base: String,
    /// Where the branch left upstream along first parents: the first parent
    /// of its oldest commit the release does not contain.
    pub fork_point: String,
    /// The patches to replay, oldest first (upstreamed ones left out).
    pub patches: Vec<RawCommit>,
    /// Dropped so far, with their position in the whole stack for ordering.
    dropped: Vec<(usize, Dropped)>,
    /// Commits of the branch that are upstream's work, not patches, each
    /// with how many stack commits come before it.
    left_out: Vec<(usize, Dropped)>,
    /// Patches that change nothing in their own history: kept, as `git
    /// rebase` keeps them.
    started_empty: BTreeSet<String>,
    /// Position in the whole stack of each patch in `patches`.
    positions: Vec<usize>,
    /// With `land: merge`, the land merge the patches go on (in the
    /// quarantine); otherwise they go on the release.
    pub land: Option<String>,
    /// Where the replay's objects go until they are published.
    pub quarantine: Quarantine,
    /// The whole stack, upstreamed patches included, replayed while those
    /// were being found: (scratch commit, tree) of the leading patches, up to
    /// where it stopped. See [`crate::engine::replay::speculate`].
    speculation: Vec<(String, String)>,
}

/// Before a replay: the stack is ready, or there is nothing to do, or a
/// precondition does not hold.
pub enum Precondition {
    Ready(Box<Prepared>),
    UpToDate { head: String, release: String },
    Blocked(String),
}

/// Resolves the branch, gets the release (fetching it unless `fetch` is
/// false and it is already here), and reads the stack.
pub fn prepare(git: &Git, spec: &StackSpec, fetch: bool) -> Result<Precondition> {
    std::thread::scope(|scope| {
        // The quarantine (where a replay's objects go) needs nothing of the
        // stack or the release: it is made first, beside the reads below.
        let quarantine = scope.spawn(|| {
            let quarantine = git.quarantine()?;
            quarantine.replay_allowed();
            Ok(quarantine)
        });
        // The branch, an earlier fetch's release and the fork's tag of its
        // name, in one round trip.
        let (local, upstream_copy, tag) =
            (format!("refs/heads/{}", spec.branch), spec.upstream_ref(), format!("refs/tags/{}", spec.tag));
        let [local, here, fork_tag]: [Option<String>; 3] = git
            .resolve_commits(&[&local, &upstream_copy, &tag])?
            .try_into()
            .map_err(|_| anyhow::anyhow!("git answered for other than three revisions"))?;
        let head = match local {
            Some(head) => Some(head),
            None => resolve_branch(git, spec)?,
        };
        let Some(head) = head else {
            return Ok(Precondition::Blocked(format!(
                "maintained branch {} was found neither locally nor on {}",
                spec.branch, spec.remote
            )));
        };
        // The release is probably here already (fetched by an earlier run, or
        // a tag of the same name in the fork): the work it alone decides starts
        // on that guess, beside the fetch (see `ahead`).
        let guess = here.clone().or(fork_tag);
        let (tip, guessed) = (head.clone(), guess.clone());
        let ahead = scope.spawn(move || ahead::start(git, &tip, guessed.as_deref(), || joined(quarantine)));
        prepare_with(git, spec, &head, fetch, here, || joined(ahead))
    })
}

/// [`prepare`] once the branch head is known; `here` is the release an
/// earlier fetch brought, if any.
fn prepare_with(
    git: &Git,
    spec: &StackSpec,
    head: &str,
    fetch: bool,
    here: Option<String>,
    ahead: impl FnOnce() -> (Result<Quarantine>, Option<Ahead>),
) -> Result<Precondition> {
    // An upstream on this machine may need no fetch at all (see
    // `local_copy`); that is known once the quarantine has read the
    // settings. Any other is fetched now, beside the work ahead.
    let local = fetch && git::is_local_repository(&spec.upstream);
    let mut got = match (fetch, local) {
        (false, _) => Got { release: here, head: None, copied: Vec::new() },
        (true, false) => fetch_both(git, spec)?,
        (true, true) => Got::default(),
    };
    let (quarantine, ahead) = ahead();
    if local {
        got = match quarantine.as_ref().ok().map(|quarantine| local_copy(git, spec, quarantine)).transpose()? {
            Some(Some(copied)) => copied,
            _ => fetch_both(git, spec)?,
        };
    }
    let release = match got.release.take() {
        Some(release) => release,
        None => match fetch_release(git, spec)? {
            Ok(release) => release,
            Err(blocked) => return Ok(Precondition::Blocked(blocked)),
        },
    };
    // The refs a fetch would have written are written beside the stack's
    // preparation, in a transaction of their own, before anything else
    // writes a ref (the candidate, the memory's fetch): as with a fetch,
    // they are there before anything moves, or the run stops first.
    let copied = std::mem::take(&mut got.copied);
    let (prepared, written) = std::thread::scope(|scope| {
        let written = (!copied.is_empty()).then(|| scope.spawn(|| write_upstream_refs(git, &copied)));
        let prepared = prepare_stack(git, spec, head, release, got.head, fetch, (quarantine, ahead));
        (prepared, written.map(joined))
    });
    // The stack's own error first; the refs' after it.
    let prepared = prepared?;
    written.transpose()?;
    Ok(prepared)
}

/// Writes the refs a fetch would have written (see `local_copy`).
fn write_upstream_refs(git: &Git, copied: &[RefUpdate]) -> Result<()> {
    git.update_refs(copied).context("failed to record upstream's refs, read from its repository")
}

/// What the run knows of upstream before it reads the stack: the release
/// (None: fetch it alone), upstream's default branch when the release
/// came with it (None: read or fetch it, see [`upstream_default`]), and
/// the refs to write for an upstream read without a fetch.
#[derive(Default)]
struct Got {
    release: Option<String>,
    head: Option<Option<String>>,
    copied: Vec<RefUpdate>,
}

/// [`prepare`] once the release is known.
fn prepare_stack(
    git: &Git,
    spec: &StackSpec,
    head: &str,
    release: String,
    upstream_head: Option<Option<String>>,
    fetch: bool,
    (quarantine, ahead): (Result<Quarantine>, Option<Ahead>),
) -> Result<Precondition> {
    let head = head.to_string();
    // git's cherry-pick detection walks all of upstream's new commits, the
    // longest step of a clean run: it needs only the two tips, so unless it
    // started ahead on the right guess it starts now, beside the merge base,
    // reading the stack and the replay. A walk whose answer is not used (a
    // wrong guess, nothing to replay, an error) is stopped when dropped:
    // work ahead on another commit is dropped here.
    let (marked, base, speculated) = match ahead.filter(|ahead| ahead.release == release) {
        Some(ahead) => (ahead.walk, ahead.base, ahead.speculation),
        None => {
            let (walk, base) = ahead::walk_and_base(git, &head, &release)?;
            (walk, base, None)
        }
    };
    let (merge_base, chain) = match base {
        Base::Stack { merge_base, chain } => (merge_base, chain),
        Base::Contains => return Ok(Precondition::UpToDate { head, release }),
        Base::Unrelated => {
            let hint = if git.is_shallow()? {
                "the repository is a shallow clone; fetch its full history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)"
            } else {
                "they share no history"
            };
            return Ok(Precondition::Blocked(format!(
                "no common ancestor between branch {} and tag {}: {hint}",
                spec.branch, spec.tag
            )));
        }
    };
    let upstream_head = match upstream_head {
        Some(known) => known,
        None => upstream_default(git, spec, fetch)?,
    };
    let mut left_out = Vec::new();
    let mut all = Vec::new();
    let walked = walk::classify(git, chain, &head, &release, upstream_head.as_deref())?;
    let fork_point = walked.first().and_then(|first| first.commit.parents.first().cloned());
    let fork_point = fork_point.unwrap_or_else(|| merge_base.clone());
    for walked in walked {
        match walked.left_out {
            Some(reason) => left_out.push((all.len(), Dropped::of(&walked.commit, reason.to_string()))),
            None => all.push(walked.commit),
        }
    }
    // The replay ahead took the whole chain: it holds for the stack only
    // when no commit of it was left out as upstream's.
    let speculated = speculated.filter(|_| left_out.is_empty());
    let started_empty = started_empty(git, &all)?;
    let quarantine = quarantine?;
    // Finding upstreamed patches reads every upstream commit's files, about
    // as long as replaying the stack takes: unless the replay ran ahead, it
    // runs beside it, on the guess that nothing is dropped, and is kept
    // where that holds.
    let upstreamed = |marked: CherryWalk| {
        let stack: Vec<&RawCommit> = all.iter().collect();
        marked.finish().and_then(|marked| upstreamed::upstreamed_patches(git, &stack, &started_empty, marked))
    };
    let (upstreamed, speculation) = match speculated {
        Some(speculation) => (upstreamed(marked), Ok(Ok(speculation))),
        None => std::thread::scope(|scope| {
            let speculation = scope.spawn(|| replay::speculate(&quarantine, &release, &all));
            (upstreamed(marked), speculation.join())
        }),
    };
    let upstreamed = upstreamed?;
    let by_provenance = if spec.options.provenance {
        let rest: Vec<&RawCommit> = all.iter().filter(|patch| !upstreamed.contains_key(&patch.id)).collect();
        let lookup = spec.options.pulls.as_deref();
        provenance::provenance_drops(git, &quarantine.git, &release, &merge_base, &rest, lookup)?
    } else {
        HashMap::new()
    };
    let speculation = match speculation {
        Ok(Ok(steps)) => steps,
        // Only a head start: the replay proper runs the same and reports.
        Ok(Err(error)) => {
            tracing::debug!("speculative replay failed: {error:#}");
            Vec::new()
        }
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let land = match spec.options.land {
        Land::Rebase => None,
        Land::Merge => {
            let release_commit = git.read_commits(std::slice::from_ref(&release))?.remove(0);
            Some(land::land_merge(&quarantine, &head, &release_commit, &spec.tag, &spec.branch)?)
        }
    };
    let mut prepared = Prepared {
        head,
        release,
        merge_base,
        fork_point,
        patches: Vec::new(),
        dropped: Vec::new(),
        left_out,
        positions: Vec::new(),
        started_empty,
        land,
        quarantine,
        speculation,
    };
    for (position, patch) in all.into_iter().enumerate() {
        if let Some(reason) = by_provenance.get(&patch.id) {
            prepared.dropped.push((position, Dropped::of(&patch, reason.clone())));
            continue;
        }
        match upstreamed.get(&patch.id) {
            Some(upstream) => {
                let reason = match upstream {
                    Some(upstream) => format!("upstream has the same change as {}", short(upstream)),
                    None => "upstream has the same change".to_string(),
                };
                prepared.dropped.push((position, Dropped::of(&patch, reason)));
            }
            None => {
                prepared.positions.push(position);
                prepared.patches.push(patch);
            }
        }
    }
    Ok(Precondition::Ready(Box::new(prepared)))
}

/// A replay with its commits made (in the quarantine).
pub struct Replayed {
    /// The commit the next patch would go on: the candidate when clean.
    pub tip: String,
    pub carried: Vec<Patch>,
    pub dropped: Vec<Dropped>,
    /// Patches whose conflicts the memory resolved.
    pub recalled: Vec<RecalledPatch>,
    /// Patches whose generated files were regenerated.
    pub regenerated: Vec<Regenerated>,
    /// Why the rule that covered the stop's conflicts did not resolve them.
    pub regeneration: Option<String>,
    /// The patch that stopped (index into `Prepared::patches`) and its merge.
    pub stop: Option<(usize, MergeResult)>,
    /// The tree each patch landed on, up to the one that stopped.
    pub landed_on: Vec<String>,
}

/// A patch whose conflict was resolved from the memory of resolutions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecalledPatch {
    pub sha: String,
    pub subject: String,
    pub files: Vec<Recalled>,
}

/// Replays the prepared stack onto the release in the quarantine, resolving
/// conflicts the memory knows, and writes the commits.
pub fn replay_prepared(git: &Git, prepared: &Prepared, memory: &Memory) -> Result<Replayed> {
    replay_prepared_with(git, prepared, memory, None)
}

/// Rules for generated files and what runs their commands.
pub type Regeneration<'a> = (&'a [RegenerateRule], &'a dyn Regenerator);

/// [`replay_prepared`], regenerating generated files where a rule covers a
/// stop's conflicts.
pub fn replay_prepared_with(
    git: &Git,
    prepared: &Prepared,
    memory: &Memory,
    regeneration: Option<Regeneration>,
) -> Result<Replayed> {
    let quarantine = &prepared.quarantine;
    let qgit = &quarantine.git;
    let release_tree = git.tree_of(&prepared.release)?;
    let stack: Vec<&RawCommit> = prepared.patches.iter().collect();
    let Some(first) = stack.first() else {
        // Every patch was dropped: report them all.
        let dropped = prepared.all_dropped(prepared.dropped.clone());
        return Ok(Replayed {
            tip: prepared.land.clone().unwrap_or_else(|| prepared.release.clone()),
            carried: Vec::new(),
            dropped,
            recalled: Vec::new(),
            regenerated: Vec::new(),
            regeneration: None,
            stop: None,
            landed_on: Vec::new(),
        });
    };
    let mut applied: Vec<(usize, String)> = Vec::new();
    let mut dropped = prepared.dropped.clone();
    let mut recalled = Vec::new();
    let mut regenerated: HashMap<usize, Regenerated> = HashMap::new();
    // The `Patchmoi-Resolution:` trailers of the patches resolved from memory.
    let mut trailers: HashMap<usize, String> = HashMap::new();
    let mut refused = None;
    let mut stop = None;
    // Each round replays from a known state: the release, then the tree a
    // recalled resolution produced (in a scratch commit, as git replay wants
    // a commit), with the stopped patch as the new base.
    let (mut base, mut start) = (replay::first_parent(first), 0);
    let (mut onto_commit, mut onto) = (prepared.release.clone(), release_tree.clone());
    let mut known = prepared.speculated(&release_tree);
    while start < stack.len() {
        let onto_at = Onto { commit: &onto_commit, tree: &onto };
        let patches = Patches { commits: &stack[start..], started_empty: &prepared.started_empty };
        let round = replay(quarantine, &base, &onto_at, &patches, &std::mem::take(&mut known))?;
        tracing::debug!(
            patches = stack.len() - start,
            chained = round.chained,
            sequential_merges = round.sequential_merges,
            "replayed in memory"
        );
        applied.extend(round.applied.iter().map(|(index, tree)| (start + index, tree.clone())));
        for index in &round.empty {
            dropped.push((prepared.positions[start + index], empty_drop(stack[start + index])));
        }
        let Some((index, merge)) = round.stop else { break };
        let index = start + index;
        let current = applied.last().map_or(release_tree.clone(), |(_, tree)| tree.clone());
        let mut resolved = recall(qgit, memory, &merge, &quarantine.staging)?.map(|(tree, files)| {
            let patch = stack[index];
            trailers.insert(index, memory::trailer(&files));
            recalled.push(RecalledPatch { sha: patch.id.clone(), subject: patch.subject(), files });
            tree
        });
        if let (None, Some((rules, regenerator))) = (&resolved, regeneration) {
            match regenerate::regenerate(quarantine, rules, regenerator, &merge, &Patch::of(stack[index]))? {
                Attempt::NoRule => {}
                Attempt::Refused(why) => refused = Some(why),
                Attempt::Regenerated(tree, done) => {
                    regenerated.insert(index, done);
                    resolved = Some(tree);
                }
            }
        }
        match resolved {
            Some(tree) => {
                let patch = stack[index];
                if tree == current && !prepared.started_empty.contains(&patch.id) {
                    dropped.push((prepared.positions[index], empty_drop(patch)));
                } else {
                    applied.push((index, tree.clone()));
                }
                onto_commit = quarantine.base_commit(&tree)?;
                (base, onto, start) = (patch.id.clone(), tree, index + 1);
            }
            None => {
                stop = Some((index, merge));
                break;
            }
        }
    }
    let dropped = prepared.all_dropped(dropped);
    let reached = stop.as_ref().map_or(stack.len(), |(index, _)| index + 1);
    let mut landed_on = Vec::with_capacity(reached);
    let (mut current, mut trees) = (release_tree, applied.iter().peekable());
    for index in 0..reached {
        while let Some((_, tree)) = trees.next_if(|(applied, _)| *applied < index) {
            current = tree.clone();
        }
        landed_on.push(current.clone());
    }

    // Each commit names its parent's id, which patchmoi computes as it
    // writes the commit: the chain needs no process per commit.
    let mut parent = prepared.land.clone().unwrap_or_else(|| prepared.release.clone());
    for (index, tree) in &applied {
        let mut body = stack[*index].rewrite(tree, &parent);
        if let Some(trailer) = trailers.get(index) {
            body = regenerate::with_trailer(&body, trailer);
        }
        if let Some(done) = regenerated.get(index) {
            body = regenerate::with_trailer(&body, &done.trailer());
        }
        parent = quarantine.write_commit(&body)?;
    }
    let mut regenerated: Vec<(usize, Regenerated)> = regenerated.into_iter().collect();
    regenerated.sort_by_key(|(index, _)| *index);
    Ok(Replayed {
        tip: parent,
        carried: applied.iter().map(|(index, _)| Patch::of(stack[*index])).collect(),
        dropped,
        recalled,
        regenerated: regenerated.into_iter().map(|(_, done)| done).collect(),
        regeneration: refused.filter(|_| stop.is_some()),
        stop,
        landed_on,
    })
}

impl Prepared {
    /// `dropped` (by position in the stack) and the commits left out as
    /// upstream's work, in the branch's order.
    fn all_dropped(&self, dropped: Vec<(usize, Dropped)>) -> Vec<Dropped> {
        // A commit left out before stack commit k sorts just before it.
        let mut all: Vec<(usize, Dropped)> =
            dropped.into_iter().map(|(position, drop)| (2 * position + 1, drop)).collect();
        all.extend(self.left_out.iter().map(|(before, drop)| (2 * before, drop.clone())));
        all.sort_by_key(|(key, _)| *key);
        all.into_iter().map(|(_, drop)| drop).collect()
    }

    /// The speculative replay's (commit, tree) for the leading patches of
    /// `patches`, as far as it is exact: a patch dropped as upstreamed must
    /// have changed nothing there, so that the trees after it are the ones a
    /// replay without it gives.
    fn speculated(&self, release_tree: &str) -> Vec<(String, String)> {
        let mut known = Vec::new();
        let mut dropped = self.dropped.iter().map(|(position, _)| *position).peekable();
        for &position in &self.positions {
            let Some(step) = self.speculation.get(position) else { break };
            // Both indexes are below `position`, which the speculation covers.
            while let Some(drop) = dropped.next_if(|drop| *drop < position) {
                let before = if drop == 0 { release_tree } else { self.speculation[drop - 1].1.as_str() };
                if self.speculation[drop].1 != before {
                    return known;
                }
            }
            known.push(step.clone());
        }
        known
    }
}

/// A patch that became empty: its change was there already, in the release
/// or brought by the patches before it.
fn empty_drop(patch: &RawCommit) -> Dropped {
    Dropped::of(patch, "empty after replay: the release, with the patches before it, already has this change".into())
}

/// The stack's patches that change nothing against their first parent.
fn started_empty(git: &Git, patches: &[RawCommit]) -> Result<BTreeSet<String>> {
    let parents: Vec<String> = patches.iter().filter_map(|patch| patch.parents.first().cloned()).collect();
    let trees: HashMap<String, String> =
        git.read_commits(&parents)?.into_iter().map(|parent| (parent.id, parent.tree)).collect();
    Ok(patches
        .iter()
        .filter(|patch| patch.parents.len() == 1 && trees.get(&patch.parents[0]) == Some(&patch.tree))
        .map(|patch| patch.id.clone())
        .collect())
}

/// Upstream's default branch, kept at `refs/patchmoi/upstream/HEAD`: its
/// commits are upstream's work, never patches. Fetched with the release
/// when `fetch`; a failure only means the walk cannot tell them apart.
fn upstream_default(git: &Git, spec: &StackSpec, fetch: bool) -> Result<Option<String>> {
    if fetch {
        match git.fetch_ref(&spec.upstream, "HEAD", UPSTREAM_HEAD)? {
            FetchOutcome::Fetched => {}
            FetchOutcome::Missing => return Ok(None),
            FetchOutcome::Unreachable(message) => {
                tracing::warn!(
                    "failed to fetch upstream's default branch, its commits may count as patches: {message}"
                );
                return Ok(None);
            }
        }
    }
    git.resolve_commit(UPSTREAM_HEAD)
}

/// Where upstream's default branch is kept.
const UPSTREAM_HEAD: &str = "refs/patchmoi/upstream/HEAD";

/// Runs the whole rebase for one release: memory fetched from the fork's
/// remote, stack prepared and replayed, then a candidate or a report.
pub fn rebase(git: &Git, spec: &StackSpec) -> Result<RebaseOutcome> {
    rebase_with(git, spec, None)
}

/// [`rebase`], with `regenerator` running the commands of the spec's
/// `regenerate` rules.
pub fn rebase_with(git: &Git, spec: &StackSpec, regenerator: Option<&dyn Regenerator>) -> Result<RebaseOutcome> {
    // The flow refuses this with the file and key; the engine never moves
    // the maintained branch whoever asks.
    if spec.candidate == spec.branch {
        bail!("candidate branch {} is the maintained branch; refusing to replace it", spec.candidate);
    }
    // The memory of resolutions (its ref) needs nothing the stack does: it
    // is read beside it. Its
    // fetch from the remote, which may move its ref, waits for a stack to
    // replay (and does not run beside the release's fetch: two fetches
    // writing one repository at once can fail on a lock).
    let (prepared, memory) = std::thread::scope(|scope| {
        let memory = scope.spawn(|| Memory::load(git));
        let prepared = prepare(git, spec, true);
        (prepared, joined(memory))
    });
    let prepared = match prepared? {
        Precondition::Ready(prepared) => prepared,
        Precondition::UpToDate { head, release } => return Ok(RebaseOutcome::UpToDate { head, release }),
        Precondition::Blocked(message) => return Ok(RebaseOutcome::Blocked(message)),
    };
    let mut memory = memory?;
    // The quarantine has read the settings already: no process to ask.
    let url_key = format!("remote.{}.url", spec.remote);
    let remote_known = match prepared.quarantine.has_setting(&url_key) {
        Some(known) => known,
        None => git.remote_url(&spec.remote)?.is_some(),
    };
    if remote_known {
        memory.fetch_from_known_remote(git, &spec.remote)?;
    }
    let regeneration = regenerator
        .filter(|_| !spec.options.regenerate.is_empty())
        .map(|regenerator| (spec.options.regenerate.as_slice(), regenerator));
    let replayed = replay_prepared_with(git, &prepared, &memory, regeneration)?;
    let Prepared { head, release, fork_point, patches, quarantine, .. } = *prepared;

    if let Some((stop, merge)) = replayed.stop {
        let stack: Vec<&RawCommit> = patches.iter().collect();
        let release_tree = git.tree_of(&release)?;
        let context = conflict::Context {
            git: &quarantine.git,
            fork_point: &fork_point,
            release: &release,
            release_tree: &release_tree,
            patches: &stack,
            landed_on: &replayed.landed_on,
            stop,
            merge: &merge,
            applied: replayed.carried.clone(),
        };
        let report = conflict::report(&context)?;
        // Keep the stopped state's objects so a worktree can show it.
        quarantine.publish(&[replayed.tip.clone(), merge.tree.clone()])?;
        let stopped = Stopped {
            head: replayed.tip,
            tree: merge.tree,
            conflicts: merge.conflicts,
            patch: Patch::of(stack[stop]),
            patch_paths: git.changed_paths(&replay::first_parent(stack[stop]), &stack[stop].id)?,
            branch_head: head.clone(),
            release: release.clone(),
            memory: memory.tip().map(str::to_string),
        };
        return Ok(RebaseOutcome::Conflicted {
            report: Box::new(report),
            stopped,
            release,
            head,
            dropped: replayed.dropped,
            recalled: replayed.recalled,
            regenerated: replayed.regenerated,
            regeneration: replayed.regeneration,
        });
    }

    quarantine.publish(std::slice::from_ref(&replayed.tip))?;
    let built_from = publish::built_from_ref(&spec.candidate_ref());
    let also = match git.ref_value(&built_from)? {
        Some(old) if old == head => Vec::new(),
        old => vec![RefUpdate::Set { refname: built_from, new: head.clone(), old }],
    };
    let checked_out = quarantine.checked_out_branches()?;
    let candidate = publish::move_branch(git, &spec.candidate_ref(), &replayed.tip, also, &checked_out)?;
    Ok(RebaseOutcome::Clean {
        candidate,
        release,
        head,
        carried: replayed.carried,
        dropped: replayed.dropped,
        recalled: replayed.recalled,
        regenerated: replayed.regenerated,
    })
}

/// The maintained branch's head: the local branch, else the remote-tracking
/// one, else fetched from the remote into the remote-tracking ref.
pub fn resolve_branch(git: &Git, spec: &StackSpec) -> Result<Option<String>> {
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

/// Fetches the release tag and upstream's default branch into our
/// namespace in one fetch (a fetch is the costliest process of a small
/// run). When either is missing, nothing is fetched: each is then fetched
/// alone, as that tells which.
fn fetch_both(git: &Git, spec: &StackSpec) -> Result<Got> {
    let tag_ref = format!("refs/tags/{}", spec.tag);
    let refs = [(tag_ref.as_str(), spec.upstream_ref()), ("HEAD", UPSTREAM_HEAD.to_string())];
    let refs: Vec<(&str, &str)> = refs.iter().map(|(from, into)| (*from, into.as_str())).collect();
    match git.fetch_refs(&spec.upstream, &refs)? {
        FetchOutcome::Fetched => {
            let release = git.resolve_commit(&spec.upstream_ref())?.with_context(|| not_a_commit(&spec.tag))?;
            let head = git.resolve_commit(UPSTREAM_HEAD)?;
            Ok(Got { release: Some(release), head: Some(head), copied: Vec::new() })
        }
        FetchOutcome::Missing => Ok(Got::default()),
        FetchOutcome::Unreachable(message) => bail!("failed to fetch tag {} from upstream: {message}", spec.tag),
    }
}

/// For an upstream that is a repository on this machine: when the release
/// tag and the default branch it has are values this repository has under
/// a ref already (the fork's tag of the same name, an earlier run's copy,
/// or the default branch at the release), a fetch would transfer nothing
/// (git checks that they are here and connected, as objects a ref reaches
/// are); what it would write is returned instead, to write without one.
/// None: fetch.
fn local_copy(git: &Git, spec: &StackSpec, quarantine: &Quarantine) -> Result<Option<Got>> {
    let tag_ref = format!("refs/tags/{}", spec.tag);
    let Some(values) = quarantine.local_remote_refs(&spec.upstream, &[&tag_ref, "HEAD"]) else {
        return Ok(None);
    };
    let [tag, upstream_head] = values.as_slice() else { return Ok(None) };
    let copy = git.ref_value(&spec.upstream_ref())?;
    if copy.as_ref() != Some(tag) && git.ref_value(&tag_ref)?.as_ref() != Some(tag) {
        return Ok(None);
    }
    let Some(release) = git.resolve_commit(tag)? else { return Ok(None) };
    let head_copy = git.ref_value(UPSTREAM_HEAD)?;
    if *upstream_head != release && head_copy.as_ref() != Some(upstream_head) {
        return Ok(None);
    }
    // Forced, as the fetch's `+` refspecs are: these are our copies.
    let mut copied = Vec::new();
    for (refname, value, old) in
        [(spec.upstream_ref(), tag, copy), (UPSTREAM_HEAD.to_string(), upstream_head, head_copy)]
    {
        if old.as_ref() != Some(value) {
            copied.push(RefUpdate::Force { refname, new: value.clone() });
        }
    }
    let head = git.resolve_commit(upstream_head)?;
    tracing::debug!(release, "upstream is a repository here with nothing to fetch");
    Ok(Some(Got { release: Some(release), head: Some(head), copied }))
}

fn not_a_commit(tag: &str) -> String {
    format!("tag {tag} does not point at a commit")
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
                redact::redact_url(&spec.upstream)
            )))
        }
        FetchOutcome::Unreachable(message) => {
            bail!("failed to fetch tag {} from upstream: {message}", spec.tag)
        }
    }
    let release = git.resolve_commit(&into)?.with_context(|| not_a_commit(&spec.tag))?;
    Ok(Ok(release))
}

/// A scoped thread's result; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
