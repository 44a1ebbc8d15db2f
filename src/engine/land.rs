//! `land: merge`: a candidate the maintained branch reaches by
//! fast-forward. Below the replayed patches sits one merge whose first
//! parent is the maintained head and whose second is the release, with the
//! release's tree: it records that the release was landed without bringing
//! in the old patches' changes (the patches above it bring them, replayed as
//! they would be on the release). The candidate's tree is the one a
//! `land: rebase` candidate has.
//!
//! On the next release the stack starts above the newest such merge (found
//! by its `Patchmoi-Land:` trailer; see [`crate::engine::walk`]), so the
//! patches below it are never replayed twice.

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::git::{Quarantine, RawCommit};

/// How a release lands on the maintained branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Land {
    /// The candidate is the patches on the release: promotion replaces the
    /// branch (a push with a lease, the old head kept in a backup).
    #[default]
    Rebase,
    /// The candidate is a land merge and the patches on it: promotion is a
    /// fast-forward.
    Merge,
}

/// The trailer that marks a land merge.
pub const TRAILER: &str = "Patchmoi-Land";

/// Who land merges are by: a fixed identity, so the same inputs give the
/// same commit on every machine.
const IDENTITY: &str = "patchmoi <patchmoi@users.noreply.github.com>";

/// Writes the land merge of `release` (tagged `tag`) into `head` and returns
/// its id: the release's tree, dated as the release was committed.
pub fn land_merge(quarantine: &Quarantine, head: &str, release: &RawCommit, tag: &str, branch: &str) -> Result<String> {
    let date =
        committer_date(release).with_context(|| format!("release commit {} has no committer date", release.id))?;
    let body = format!(
        "tree {tree}\nparent {head}\nparent {release_id}\nauthor {IDENTITY} {date}\ncommitter {IDENTITY} {date}\n\n\
         Land {tag} on {branch}\n\n\
         The release's tree, with {branch} as first parent: the patches\n\
         follow as their own commits.\n\n\
         {TRAILER}: {tag}\n",
        tree = release.tree,
        release_id = release.id,
    );
    quarantine.write_commit(body.as_bytes())
}

/// `<timestamp> <zone>` of a commit's committer line.
fn committer_date(commit: &RawCommit) -> Option<String> {
    let headers = commit.raw.split(|b| *b == b'\n').take_while(|line| !line.is_empty());
    let line = headers.filter_map(|line| line.strip_prefix(b"committer ")).next()?;
    let line = String::from_utf8_lossy(line);
    let (_, date) = line.rsplit_once('>')?;
    Some(date.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committer_date_is_read_byte_for_byte() {
        let raw = b"tree t\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000000 -0130\n\nmessage\n".to_vec();
        let commit = RawCommit { id: "c".into(), tree: "t".into(), parents: Vec::new(), raw };
        assert_eq!(committer_date(&commit).as_deref(), Some("1700000000 -0130"));
    }
}
