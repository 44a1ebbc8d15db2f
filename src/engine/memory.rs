//! The memory of resolutions: once a conflict is resolved (by a person with
//! `patchmoi continue`, or by a validated agent step), every later replay
//! that meets the same conflict resolves it the same way.
//!
//! Like git's rerere, a resolution is keyed by the conflict's content, not
//! by the file around it: each conflict region is keyed by its two sides
//! (the release's text and the patch's text), so the same conflict on the
//! next release, where the rest of the file moved on, is still recognised.
//! A conflict without markers (modify/delete, a resolution that rewrote the
//! context) is keyed by the whole file's stages instead.
//!
//! A resolution may also have edited other files of the same patch (an
//! import, a call site). Those edits are kept as one `related` entry, keyed
//! by the conflict they go with (every region and file key of the stop), and
//! replayed by a three-way merge of each file when that conflict returns.
//!
//! The memory lives in the repository, under [`MEMORY_REF`]: a commit whose
//! flat tree holds one JSON blob per key, plus a `format` blob naming the
//! format's version ([`FORMAT`]). A memory without one is format 1 (hunk and
//! file entries only); it is read as it is, and the next write upgrades it.
//! A newer format than this binary knows is refused, never half-read. It is
//! pushed and fetched like any ref, so it survives ephemeral CI runners; two
//! diverged copies merge by union.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::markers::{segments, Conflict, Segment};
use crate::git::{ConflictEntry, FetchOutcome, Git, RefUpdate};

/// Where the memory is kept, locally and on the fork's remote.
pub const MEMORY_REF: &str = "refs/patchmoi/resolutions";

/// The version of the memory's format this binary reads and writes. 1: hunk
/// and file entries, no `format` blob; 2: `related` entries too.
pub const FORMAT: u32 = 2;

/// The tree entry that holds the format's version (keys are hex digests, so
/// it cannot collide with one).
const FORMAT_ENTRY: &str = "format";

/// One remembered resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `hunk`: the text that replaces one conflict region; `file`: the whole
    /// resolved file; `related`: the edits to other files of the patch
    /// (`edits`) that went with the resolution of one conflict.
    pub kind: String,
    /// The resolution; `None` for a file resolved by deleting it.
    pub resolution: Option<String>,
    pub path: String,
    /// The patch whose conflict this resolved, and the release where that
    /// first happened.
    pub patch_sha: String,
    pub patch_subject: String,
    pub tag: String,
    pub recorded_at: String,
    /// For `related`: each file edited beside the conflicting ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
}

/// One file a resolution edited although it did not conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub path: String,
    /// The file as the merge left it (None: absent) and as the resolution
    /// left it (None: deleted); the change between them is what is replayed.
    pub base: Option<String>,
    pub resolution: Option<String>,
    pub mode: String,
}

/// A conflict resolved from memory during a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recalled {
    pub path: String,
    /// The release where this resolution was first recorded.
    pub first_resolved_in: String,
    /// The memory entry it came from (`git show refs/patchmoi/resolutions:<key>`).
    #[serde(default)]
    pub key: String,
    /// An edit that went with the resolution, in a file that did not conflict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub related: bool,
}

/// The trailer a commit resolved from memory carries, one line per file:
/// where each resolution came from and the release it was recorded for.
pub fn trailer(files: &[Recalled]) -> String {
    files
        .iter()
        .map(|file| {
            let path: String = file.path.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
            let what = if file.related { "edits" } else { "resolves" };
            format!("Patchmoi-Resolution: {} (recorded for {}, {what} {path})", file.key, file.first_resolved_in)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("{:x}", hasher.finalize())
}

/// The key of one conflict region.
pub fn hunk_key(conflict: &Conflict) -> String {
    digest(&["patchmoi-hunk-v1", &conflict.upstream, &conflict.patch])
}

/// The key of a whole conflicted file, from its index stages.
pub fn file_key(path: &str, stages: &[&ConflictEntry]) -> String {
    let mut parts = vec!["patchmoi-file-v1".to_string(), path.to_string()];
    parts.extend(stages.iter().map(|entry| format!("{} {} {}", entry.stage, entry.mode, entry.oid)));
    digest(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The key of the edits that went with the resolution of one stop, from
/// the keys of its conflicts (see [`crate::engine::recall`]'s signature).
pub fn related_key(conflict_keys: &[String]) -> String {
    let mut keys: Vec<&str> = conflict_keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.insert(0, "patchmoi-related-v2");
    digest(&keys)
}

/// The resolved text of a file with markers, when every conflict region in
/// it has a known resolution.
pub fn apply(marked: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let parts = segments(marked);
    if !parts.iter().any(|part| matches!(part, Segment::Conflict(_))) {
        return None;
    }
    let mut out = String::with_capacity(marked.len());
    for part in parts {
        match part {
            Segment::Text(text) => out.push_str(&text),
            Segment::Conflict(conflict) => out.push_str(&lookup(&hunk_key(&conflict))?),
        }
    }
    Some(out)
}

/// What each conflict region of `marked` became in `resolved`, found by
/// anchoring on the text between the regions: it must appear, in order and
/// unchanged, in the resolved file. None when it does not (the resolution
/// touched the context too; the caller then remembers the whole file).
pub fn learn(marked: &str, resolved: &str) -> Option<Vec<(String, String)>> {
    let parts = segments(marked);
    let mut learned = Vec::new();
    let mut position = 0;
    let mut open: Option<String> = None;
    for (index, part) in parts.iter().enumerate() {
        match part {
            Segment::Conflict(conflict) => open = Some(hunk_key(conflict)),
            Segment::Text(text) => {
                let at = if index == 0 {
                    resolved.starts_with(text.as_str()).then_some(0)?
                } else if index == parts.len() - 1 {
                    let at = resolved.len().checked_sub(text.len())?;
                    (at >= position && resolved[at..] == **text).then_some(at)?
                } else {
                    position + resolved.get(position..)?.find(text.as_str())?
                };
                if let Some(key) = open.take() {
                    learned.push((key, resolved[position..at].to_string()));
                }
                position = at + text.len();
            }
        }
    }
    if let Some(key) = open.take() {
        learned.push((key, resolved.get(position..)?.to_string()));
    } else if position != resolved.len() {
        return None;
    }
    (!learned.is_empty()).then_some(learned)
}

/// The memory as it stands in one repository.
#[derive(Debug, Default)]
pub struct Memory {
    /// Key → blob holding the entry.
    entries: BTreeMap<String, String>,
    tip: Option<String>,
}

/// The entries of the memory at commit `tip`, once its format is known to
/// be one this binary reads.
fn entries_at(git: &Git, tip: &str) -> Result<BTreeMap<String, String>> {
    let mut entries: BTreeMap<String, String> =
        git.ls_tree(tip)?.into_iter().map(|entry| (entry.name, entry.oid)).collect();
    let format = match entries.remove(FORMAT_ENTRY) {
        None => 1,
        Some(blob) => {
            let object = git.read_objects(&[blob])?.pop().flatten();
            let text = object.map(|(_, bytes)| String::from_utf8_lossy(&bytes).trim().to_string()).unwrap_or_default();
            text.parse::<u32>().with_context(|| {
                format!("the memory of resolutions ({MEMORY_REF} at {tip}) has an unreadable format version {text:?}")
            })?
        }
    };
    if format > FORMAT {
        bail!(
            "the memory of resolutions ({MEMORY_REF} at {tip}) is in format {format}, newer than format {FORMAT} that this patchmoi ({}) reads; upgrade patchmoi",
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(entries)
}

impl Memory {
    /// The memory at [`MEMORY_REF`], in any format up to [`FORMAT`]; a newer
    /// one is an error naming both versions.
    pub fn load(git: &Git) -> Result<Memory> {
        let Some(tip) = git.resolve_commit(MEMORY_REF)? else {
            return Ok(Memory::default());
        };
        let entries = entries_at(git, &tip)?;
        Ok(Memory { entries, tip: Some(tip) })
    }

    /// The commit the memory is at, if it has one.
    pub fn tip(&self) -> Option<&str> {
        self.tip.as_deref()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads the entries for `keys` (missing keys are left out).
    pub fn get(&self, git: &Git, keys: &[String]) -> Result<BTreeMap<String, Entry>> {
        let known: Vec<&String> = keys.iter().filter(|key| self.entries.contains_key(*key)).collect();
        let blobs: Vec<String> = known.iter().map(|key| self.entries[*key].clone()).collect();
        let mut found = BTreeMap::new();
        for (key, object) in known.into_iter().zip(git.read_objects(&blobs)?) {
            let (_, bytes) = object.with_context(|| format!("resolution {key} is missing from the memory"))?;
            let entry: Entry = serde_json::from_slice(&bytes)
                .with_context(|| format!("resolution {key} in the memory is not valid"))?;
            found.insert(key.clone(), entry);
        }
        Ok(found)
    }

    /// Adds entries as a new commit. A hunk or file key already known keeps
    /// its first resolution (that names the release where it was first
    /// resolved); a `related` entry replaces an older one with other edits,
    /// since the person made them again for the same conflict.
    pub fn remember(&mut self, git: &Git, new: Vec<(String, Entry)>, message: &str) -> Result<usize> {
        let related: Vec<String> =
            new.iter().filter(|(_, entry)| entry.kind == "related").map(|(key, _)| key.clone()).collect();
        let known = self.get(git, &related)?;
        let fresh: Vec<(String, Entry)> = new
            .into_iter()
            .filter(|(key, entry)| match known.get(key) {
                Some(old) => old.kind == "related" && entry.kind == "related" && old.edits != entry.edits,
                None => !self.entries.contains_key(key),
            })
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let bodies: Vec<Vec<u8>> =
            fresh.iter().map(|(_, entry)| serde_json::to_vec_pretty(entry)).collect::<Result<_, _>>()?;
        let oids = git.write_blobs(&bodies)?;
        let mut entries = self.entries.clone();
        for ((key, _), oid) in fresh.iter().zip(oids) {
            entries.insert(key.clone(), oid);
        }
        let parents: Vec<String> = self.tip.iter().cloned().collect();
        self.commit(git, entries, &parents, message)?;
        Ok(fresh.len())
    }

    /// Writes `entries` as the memory's next commit, in the current format
    /// (so any write upgrades an older memory in place).
    fn commit(
        &mut self,
        git: &Git,
        entries: BTreeMap<String, String>,
        parents: &[String],
        message: &str,
    ) -> Result<()> {
        let format = git.write_blobs(&[format!("{FORMAT}\n").into_bytes()])?.remove(0);
        let listed = entries.iter().map(|(name, oid)| (name.as_str(), oid.as_str()));
        let tree = git.make_flat_tree(listed.chain([(FORMAT_ENTRY, format.as_str())]))?;
        let commit = git.commit_tree(&tree, parents, message)?;
        git.update_refs(&[RefUpdate::Set { refname: MEMORY_REF.into(), new: commit.clone(), old: self.tip.clone() }])
            .context("failed to update the memory of resolutions")?;
        self.entries = entries;
        self.tip = Some(commit);
        Ok(())
    }

    /// Brings in the remote's memory: union of both, local entries winning.
    /// An unreachable remote is a warning, not an error: the local memory
    /// still works.
    pub fn fetch(&mut self, git: &Git, remote: &str) -> Result<Option<String>> {
        if git.remote_url(remote)?.is_none() {
            return Ok(None);
        }
        self.fetch_from_known_remote(git, remote)
    }

    /// [`Memory::fetch`] from a remote the caller knows is configured.
    pub fn fetch_from_known_remote(&mut self, git: &Git, remote: &str) -> Result<Option<String>> {
        let tracking = format!("refs/patchmoi/remotes/{remote}/resolutions");
        match git.fetch_ref(remote, MEMORY_REF, &tracking)? {
            FetchOutcome::Fetched => {}
            FetchOutcome::Missing => return Ok(None),
            FetchOutcome::Unreachable(message) => {
                tracing::warn!("could not fetch the memory of resolutions from {remote}: {message}");
                return Ok(None);
            }
        }
        let theirs = git.resolve_commit(&tracking)?.context("fetched memory is not a commit")?;
        // A newer format on the remote is refused before anything is merged.
        let their_entries =
            entries_at(git, &theirs).with_context(|| format!("refusing the memory of resolutions from {remote}"))?;
        match &self.tip {
            Some(tip) if *tip == theirs || git.is_ancestor(&theirs, tip)? => {}
            Some(tip) if git.is_ancestor(tip, &theirs)? => {
                git.update_refs(&[RefUpdate::Set {
                    refname: MEMORY_REF.into(),
                    new: theirs.clone(),
                    old: Some(tip.clone()),
                }])?;
                *self = Memory::load(git)?;
            }
            None => {
                git.update_refs(&[RefUpdate::Set { refname: MEMORY_REF.into(), new: theirs.clone(), old: None }])?;
                *self = Memory::load(git)?;
            }
            Some(tip) => {
                let mut entries = their_entries;
                entries.extend(self.entries.clone());
                let parents = [tip.clone(), theirs.clone()];
                self.commit(
                    git,
                    entries,
                    &parents,
                    &format!("patchmoi: merge the memory of resolutions from {remote}"),
                )?;
            }
        }
        Ok(Some(theirs))
    }

    /// Publishes the memory to `remote` (after taking in what is there),
    /// leasing on the value fetched.
    pub fn push(&mut self, git: &Git, remote: &str) -> Result<()> {
        let theirs = self.fetch(git, remote)?;
        let Some(tip) = self.tip.clone() else { return Ok(()) };
        if theirs.as_deref() == Some(tip.as_str()) {
            return Ok(());
        }
        git.push_with_lease(remote, &tip, MEMORY_REF, theirs.as_deref())
            .with_context(|| format!("failed to push the memory of resolutions to {remote}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKED: &str = "head\n<<<<<<< up\nport = env\n||||||| base\nport = 3000\n=======\nport = 8080\n>>>>>>> patch\nmiddle\n<<<<<<< up\nA\n=======\nB\n>>>>>>> patch\ntail\n";

    #[test]
    fn learns_each_region_and_applies_it_elsewhere() {
        let resolved = "head\nport = env or 8080\nmiddle\nA and B\nB2\ntail\n";
        let learned = learn(MARKED, resolved).unwrap();
        assert_eq!(learned.len(), 2);
        assert_eq!(learned[0].1, "port = env or 8080\n");
        assert_eq!(learned[1].1, "A and B\nB2\n");
        let known: BTreeMap<String, String> = learned.into_iter().collect();
        // The same conflicts in a file whose context moved on.
        let later = MARKED.replace("head\n", "new head\nmore\n").replace("tail\n", "tail changed\n");
        let applied = apply(&later, |key| known.get(key).cloned()).unwrap();
        assert_eq!(applied, "new head\nmore\nport = env or 8080\nmiddle\nA and B\nB2\ntail changed\n");
        // One unknown region: nothing is applied.
        let other = later.replace("port = 8080", "port = 9090");
        assert_eq!(apply(&other, |key| known.get(key).cloned()), None);
        assert_eq!(apply("no markers\n", |_| Some(String::new())), None);
    }

    #[test]
    fn learn_refuses_when_the_context_changed() {
        assert_eq!(learn(MARKED, "head\nport = 1\nMIDDLE\nA\ntail\n"), None);
        assert_eq!(learn(MARKED, "HEAD\nport = 1\nmiddle\nA\ntail\n"), None);
        assert_eq!(learn(MARKED, "head\nport = 1\nmiddle\nA\ntail\nextra\n"), None);
        // A conflict at the very start and end of a file.
        let edges = "<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n";
        assert_eq!(learn(edges, "xy\n").unwrap()[0].1, "xy\n");
    }

    #[test]
    fn keys_depend_on_both_sides_only() {
        let a = Conflict { start_line: 1, upstream: "u\n".into(), base: "b\n".into(), patch: "p\n".into() };
        let moved = Conflict { start_line: 40, base: "other base\n".into(), ..a.clone() };
        let swapped = Conflict { upstream: "p\n".into(), patch: "u\n".into(), ..a.clone() };
        assert_eq!(hunk_key(&a), hunk_key(&moved));
        assert_ne!(hunk_key(&a), hunk_key(&swapped));
    }
}
