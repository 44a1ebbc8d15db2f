//! Retention (`patchmoi prune`): what of old releases can go.
//!
//! Per flow, the releases it knows (its candidate branches, here and with
//! `--push` on its remote, and the events of `state.json` and of the
//! database that it matches) are put in version order; the newest `keep`
//! stay, and so does any release whose candidate is the maintained
//! branch's tip (the one promoted), any release with a resolution in
//! progress or a stopped conflict being worked on (`paused/`), and any
//! release an open pull request on the fork uses: its candidate branch as
//! the PR's head, or its `patchmoi/upstream/<tag>` branch as the PR's base
//! (when the caller could list them: see [`PullCheck`]). A release
//! no flow keeps goes: its candidate branch, the ref it was built from, the
//! backups of the candidate, the upstream tag's copy, the
//! `patchmoi/upstream/<tag>` base branch, its run folders and its records.
//! Backups of other branches (the maintained branch's, made by `promote`)
//! are kept newest `keep` per branch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::core::tag_order::{glob_match, Version};
use crate::flow::event::FlowEvent;
use crate::flow::flows::Flow;
use crate::flow::state::StateDir;
use crate::git::{Git, RefUpdate};
use crate::github::OpenPull;

/// What is known of the open pull requests of one remote's repository.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum PullCheck {
    /// Listed on GitHub: the repository's open pull requests.
    Listed { repo: String, pulls: Vec<OpenPull> },
    /// Not listed, and why (no token, no repository, GitHub failed).
    Unchecked { why: String },
    /// `--ignore-prs`: not listed, on purpose.
    Ignored,
}

impl PullCheck {
    fn pulls(&self) -> &[OpenPull] {
        match self {
            PullCheck::Listed { pulls, .. } => pulls,
            _ => &[],
        }
    }
}

/// The base branch the Action opens a release's PR against.
fn base_branch(tag: &str) -> String {
    format!("patchmoi/upstream/{tag}")
}

/// The open PR (of `checks`) whose head is `candidate` or whose base is
/// `tag`'s base branch.
fn open_pull_of<'a>(
    checks: impl IntoIterator<Item = &'a PullCheck>,
    candidate: Option<&str>,
    tag: &str,
) -> Option<&'a OpenPull> {
    let base = base_branch(tag);
    checks.into_iter().flat_map(PullCheck::pulls).find(|pr| Some(pr.head.as_str()) == candidate || pr.base == base)
}

/// A release that stays, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub tag: String,
    pub why: String,
}

/// What `prune` deletes.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub kept: Vec<Kept>,
    /// Releases that go.
    pub pruned: Vec<String>,
    /// Local refs, with their values.
    pub refs: Vec<(String, String)>,
    /// Refs on the fork's remote (with `--push`), by remote.
    pub remote_refs: BTreeMap<String, Vec<(String, String)>>,
    /// Run folders and stopped-conflict records.
    pub files: Vec<PathBuf>,
    /// Event ids whose records go (from `state.json` and the database).
    pub events: Vec<String>,
    /// Remotes whose open pull requests were not listed, and why.
    pub unchecked: BTreeMap<String, String>,
    /// Of `remote_refs`, the candidate and base branches an open pull
    /// request could use, on a remote whose PRs were not listed: `--apply`
    /// refuses to delete them (`(remote, ref)`).
    pub unchecked_refs: Vec<(String, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
            && self.remote_refs.values().all(Vec::is_empty)
            && self.files.is_empty()
            && self.events.is_empty()
    }
}

/// The newest-first order of tags: by version, then by name.
fn newest_first(tags: &mut [String]) {
    tags.sort_by(|a, b| (Version::parse_from_tag(b), b).cmp(&(Version::parse_from_tag(a), a)));
}

/// What a candidate branch template gives for `tag`'s inverse: the tag a
/// branch (short name) is the candidate of.
fn tag_of_candidate(template: &str, branch: &str) -> Option<String> {
    let (before, after) = template.split_once("{tag}")?;
    let tag = branch.strip_prefix(before)?.strip_suffix(after)?;
    // `patchmoi/backup/…` and `patchmoi/upstream/…` share the namespace.
    let ours =
        ["backup/", "upstream/"].iter().any(|other| branch.strip_prefix(before).unwrap_or("").starts_with(other));
    (!tag.is_empty() && !ours).then(|| tag.to_string())
}

/// Plans the deletions for `workspace`, keeping the newest `keep`
/// releases of each flow. `stored` are the database's events; with
/// `remote`, the fork's remote branches are read and planned too. `pulls`
/// says, by remote name, what is known of the open pull requests there (a
/// remote without an entry counts as not checked).
pub fn plan(
    workspace: &Path,
    flows: &[Flow],
    stored: &[FlowEvent],
    keep: usize,
    remote: bool,
    pulls: &BTreeMap<String, PullCheck>,
) -> Result<Plan> {
    let git = Git::open(workspace)?;
    let state_dir = StateDir::of(workspace);
    let state = state_dir.load()?;
    let heads = git.refs_under("refs/heads/")?;
    let head_of = |name: &str| heads.iter().find(|(refname, _)| refname == name).map(|(_, sha)| sha.clone());
    let stacks: Vec<&Flow> = flows.iter().filter(|flow| flow.stack.is_some()).collect();
    let mut remotes: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if remote {
        for flow in &stacks {
            let name = &flow.stack.as_ref().expect("filtered").remote;
            if !remotes.contains_key(name) {
                remotes.insert(name.clone(), git.remote_refs_under(name, "refs/heads/")?);
            }
        }
    }

    // Every event either store knows, by id.
    let mut events: BTreeMap<String, FlowEvent> = BTreeMap::new();
    for event in state.events.iter().map(|record| &record.event).chain(stored) {
        events.entry(event.id.clone()).or_insert_with(|| event.clone());
    }

    // The flows whose events name each tag.
    let mut event_flows: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for flow in &stacks {
        for tag in events.values().filter(|event| flow.matches(event, false)).filter_map(FlowEvent::tag) {
            event_flows.entry(tag).or_default().insert(flow.name.as_str());
        }
    }

    // The releases of each flow ("" for those no flow claims). Flows may
    // share a candidate template (the default one, say): a candidate branch
    // is a flow's when its tag fits the flow's tag pattern and no other
    // flow's events alone name it, so one flow's releases never count
    // against another's --keep.
    let mut releases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut claimed = BTreeSet::new();
    for flow in &stacks {
        let template = &flow.stack.as_ref().expect("filtered").candidate;
        let mine = releases.entry(flow.name.clone()).or_default();
        let remote_heads = remotes.get(&flow.stack.as_ref().expect("filtered").remote).into_iter().flatten();
        let ours = |tag: &str| {
            glob_match(flow.tag_pattern(), tag)
                && event_flows.get(tag).is_none_or(|flows| flows.contains(flow.name.as_str()))
        };
        for (refname, _) in heads.iter().chain(remote_heads) {
            if let Some(tag) = refname.strip_prefix("refs/heads/").and_then(|short| tag_of_candidate(template, short)) {
                if ours(&tag) {
                    mine.insert(tag.clone());
                    claimed.insert(tag);
                }
            }
        }
        for event in events.values().filter(|event| flow.matches(event, false)) {
            if let Some(tag) = event.tag() {
                mine.insert(tag.to_string());
                claimed.insert(tag.to_string());
            }
        }
    }
    let upstream_copies = git.refs_under("refs/patchmoi/upstream/tags/")?;
    let unclaimed = releases.entry(String::new()).or_default();
    for tag in upstream_copies
        .iter()
        .filter_map(|(refname, _)| refname.strip_prefix("refs/patchmoi/upstream/tags/"))
        .chain(events.values().filter_map(|event| event.tag()))
    {
        if !claimed.contains(tag) {
            unclaimed.insert(tag.to_string());
        }
    }

    // What each flow keeps, and why.
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    let mut known = BTreeSet::new();
    for (flow_name, tags) in &releases {
        let flow = stacks.iter().find(|flow| &flow.name == flow_name);
        let mut ordered: Vec<String> = tags.iter().cloned().collect();
        newest_first(&mut ordered);
        for (index, tag) in ordered.iter().enumerate() {
            known.insert(tag.clone());
            let why = if index < keep {
                Some(format!("one of the newest {keep}"))
            } else if let Some(flow) = flow {
                protected(&git, &state_dir, flow, tag, &head_of, &remotes, pulls)?
            } else {
                open_pull_of(pulls.values(), None, tag).map(|pr| format!("open PR #{} (base {})", pr.number, pr.base))
            };
            if let Some(why) = why {
                let label = if flow_name.is_empty() { why } else { format!("{flow_name}: {why}") };
                kept.entry(tag.clone()).or_insert(label);
            }
        }
    }
    let pruned: Vec<String> = known.iter().filter(|tag| !kept.contains_key(*tag)).cloned().collect();
    let mut plan = Plan {
        kept: kept.iter().map(|(tag, why)| Kept { tag: tag.clone(), why: why.clone() }).collect(),
        pruned: pruned.clone(),
        ..Plan::default()
    };
    for flow in &stacks {
        let name = &flow.stack.as_ref().expect("filtered").remote;
        match pulls.get(name) {
            Some(PullCheck::Listed { .. } | PullCheck::Ignored) => {}
            Some(PullCheck::Unchecked { why }) => {
                plan.unchecked.insert(name.clone(), why.clone());
            }
            None => {
                plan.unchecked.insert(name.clone(), "not asked".to_string());
            }
        }
    }
    newest_first_kept(&mut plan.kept);
    let pruned: BTreeSet<&str> = pruned.iter().map(String::as_str).collect();

    // Local refs.
    let mut candidates = BTreeSet::new();
    for flow in &stacks {
        for tag in &pruned {
            if let Ok(spec) = flow.stack_spec(tag) {
                candidates.insert(spec.candidate_ref());
            }
        }
    }
    let all = git.refs_under("refs/")?;
    let mut backups: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (refname, sha) in &all {
        let goes = candidates.contains(refname)
            || refname
                .strip_prefix("refs/patchmoi/built-from/")
                .is_some_and(|of| candidates.contains(&format!("refs/{of}")))
            || refname.strip_prefix("refs/patchmoi/upstream/tags/").is_some_and(|tag| pruned.contains(tag))
            || refname.strip_prefix("refs/heads/patchmoi/upstream/").is_some_and(|tag| pruned.contains(tag));
        if goes {
            plan.refs.push((refname.clone(), sha.clone()));
        } else if let Some(rest) = refname.strip_prefix("refs/patchmoi/backup/") {
            backups.entry(backup_group(rest)).or_default().push((refname.clone(), sha.clone()));
        } else if let Some(rest) = refname.strip_prefix("refs/heads/patchmoi/backup/") {
            backups.entry(format!("heads:{}", backup_group(rest))).or_default().push((refname.clone(), sha.clone()));
        }
    }
    for (group, refs) in backups {
        let of_pruned = candidates.contains(&format!("refs/{group}"));
        plan.refs.extend(old_backups(refs, if of_pruned { 0 } else { keep }));
    }

    // The remote's: candidates, base branches, backup branches.
    for (name, refs) in &remotes {
        let mut goes = Vec::new();
        let mut backups: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (refname, sha) in refs {
            if candidates.contains(refname)
                || refname.strip_prefix("refs/heads/patchmoi/upstream/").is_some_and(|tag| pruned.contains(tag))
            {
                if plan.unchecked.contains_key(name) {
                    plan.unchecked_refs.push((name.clone(), refname.clone()));
                }
                goes.push((refname.clone(), sha.clone()));
            } else if let Some(rest) = refname.strip_prefix("refs/heads/patchmoi/backup/") {
                backups.entry(backup_group(rest)).or_default().push((refname.clone(), sha.clone()));
            }
        }
        for refs in backups.into_values() {
            goes.extend(old_backups(refs, keep));
        }
        plan.remote_refs.insert(name.clone(), goes);
    }

    // Run folders, stopped conflicts and records.
    let mut run_ids = BTreeSet::new();
    for event in events.values().filter(|event| event.tag().is_some_and(|tag| pruned.contains(tag))) {
        plan.events.push(event.id.clone());
        if let Some(record) = state.event(&event.id) {
            run_ids.extend(record.run_ids.iter().cloned());
        }
        run_ids.extend(state.runs.iter().filter(|run| run.event_id == event.id).map(|run| run.id.clone()));
    }
    for run_id in run_ids {
        let dir = state_dir.dir.join("runs").join(&run_id);
        if dir.exists() {
            plan.files.push(dir);
        }
    }
    for flow in &stacks {
        for tag in &pruned {
            let stopped = state_dir.dir.join("stopped").join(format!("{}-{tag}.json", flow.name));
            if stopped.exists() {
                plan.files.push(stopped);
            }
        }
    }
    Ok(plan)
}

fn newest_first_kept(kept: &mut [Kept]) {
    kept.sort_by(|a, b| (Version::parse_from_tag(&b.tag), &b.tag).cmp(&(Version::parse_from_tag(&a.tag), &a.tag)));
}

/// Why a release beyond the newest `keep` stays, if it does.
fn protected(
    git: &Git,
    state_dir: &StateDir,
    flow: &Flow,
    tag: &str,
    head_of: &dyn Fn(&str) -> Option<String>,
    remotes: &BTreeMap<String, Vec<(String, String)>>,
    pulls: &BTreeMap<String, PullCheck>,
) -> Result<Option<String>> {
    let Ok(spec) = flow.stack_spec(tag) else { return Ok(None) };
    let paused = state_dir.dir.join("paused").join(format!("{}-{tag}.json", flow.name));
    if paused.exists() {
        return Ok(Some(format!("a resolution is in progress ({})", paused.display())));
    }
    let candidate = head_of(&spec.candidate_ref());
    let branch = head_of(&format!("refs/heads/{}", spec.branch))
        .or(git.ref_value(&format!("refs/remotes/{}/{}", spec.remote, spec.branch))?);
    if candidate.is_some() && candidate == branch {
        return Ok(Some(format!("its candidate is {}'s tip (promoted)", spec.branch)));
    }
    let on_remote = |name: &str| {
        remotes.get(&spec.remote).and_then(|refs| refs.iter().find(|(refname, _)| refname == name).map(|(_, sha)| sha))
    };
    let remote_candidate = on_remote(&spec.candidate_ref());
    if remote_candidate.is_some() && remote_candidate == on_remote(&format!("refs/heads/{}", spec.branch)) {
        return Ok(Some(format!("its candidate is {}'s tip on {} (promoted)", spec.branch, spec.remote)));
    }
    if let Some(pr) = open_pull_of(pulls.get(&spec.remote), Some(&spec.candidate), tag) {
        let uses = if pr.head == spec.candidate { format!("head {}", pr.head) } else { format!("base {}", pr.base) };
        return Ok(Some(format!("open PR #{} ({uses})", pr.number)));
    }
    Ok(None)
}

/// `heads/main/20261124T021500Z` → `heads/main`: the ref a backup is of.
fn backup_group(rest: &str) -> String {
    rest.rsplit_once('/').map_or(rest, |(of, _)| of).to_string()
}

/// All but the newest `keep` of one ref's backups (their names end in a
/// UTC time, so name order is time order).
fn old_backups(mut refs: Vec<(String, String)>, keep: usize) -> Vec<(String, String)> {
    refs.sort();
    let cut = refs.len().saturating_sub(keep);
    refs.truncate(cut);
    refs
}

/// Deletes what `plan` lists, here and (when it lists any) on the remote;
/// records go through `state.json` under its lock. The database's records
/// are the caller's.
pub fn apply(workspace: &Path, plan: &Plan) -> Result<()> {
    let git = Git::open(workspace)?;
    let checked_out = git.checked_out_branches()?;
    let mut updates = Vec::new();
    for (refname, sha) in &plan.refs {
        if let Some((_, path)) = checked_out.iter().find(|(branch, _)| branch == refname) {
            anyhow::bail!("{refname} is checked out in {}; check out another branch first", path.display());
        }
        updates.push(RefUpdate::Delete { refname: refname.clone(), old: sha.clone() });
    }
    git.update_refs(&updates).context("failed to delete the old releases' refs")?;
    for (remote, refs) in &plan.remote_refs {
        git.delete_remote_refs(remote, refs)?;
    }
    for path in &plan.files {
        let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        match removed {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("failed to remove {}", path.display()));
            }
            _ => {}
        }
    }
    if !plan.events.is_empty() {
        let state_dir = StateDir::of(workspace);
        let _lock = state_dir.lock()?;
        let mut state = state_dir.load()?;
        let before = state.events.len() + state.runs.len();
        state.events.retain(|record| !plan.events.contains(&record.event.id));
        state.runs.retain(|run| !plan.events.contains(&run.event_id));
        if state.events.len() + state.runs.len() != before {
            state_dir.save(&state)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_name_their_tag_and_nothing_else_does() {
        assert_eq!(tag_of_candidate("patchmoi/{tag}", "patchmoi/v1.2.0").as_deref(), Some("v1.2.0"));
        assert_eq!(tag_of_candidate("fork/{tag}-next", "fork/v1-next").as_deref(), Some("v1"));
        assert_eq!(tag_of_candidate("patchmoi/{tag}", "patchmoi/backup/main/20261124T021500Z"), None);
        assert_eq!(tag_of_candidate("patchmoi/{tag}", "patchmoi/upstream/v1.2.0"), None);
        assert_eq!(tag_of_candidate("patchmoi/{tag}", "main"), None);
        let mut tags = vec!["v1.10.0".to_string(), "v1.9.0".into(), "v1.10.0-rc.1".into()];
        newest_first(&mut tags);
        assert_eq!(tags, ["v1.10.0", "v1.10.0-rc.1", "v1.9.0"]);
    }
}
