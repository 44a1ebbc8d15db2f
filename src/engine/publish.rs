//! Moving and publishing refs without ever losing what was there: a local
//! branch moves in one transaction with a backup of its old value, and a
//! push to the fork's remote first fetches the remote's old value into a
//! backup ref and leases on exactly that value.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::engine::patch::Candidate;
use crate::git::RefUpdate;
use crate::git::{FetchOutcome, Git};

/// Pushes `sha` to `refname` on `remote`. When the remote has another value
/// there (a reviewer may have pushed onto a candidate), it is kept twice
/// before the push: under `refs/patchmoi/backup/remotes/<remote>/…` here, and
/// as the branch `patchmoi/backup/<branch>/<time>` on the remote itself,
/// since a CI runner's local refs vanish with it. The push leases on that
/// value, so a concurrent push is refused rather than lost. Returns the
/// local backup ref, if one was made.
pub fn push_branch(git: &Git, remote: &str, refname: &str, sha: &str) -> Result<Option<String>> {
    let current = git.remote_ref(remote, refname)?;
    if current.as_deref() == Some(sha) {
        return Ok(None);
    }
    let mut backup = None;
    let mut lease = None;
    if current.is_some() {
        let short = refname.strip_prefix("refs/heads/").unwrap_or(refname);
        let name = backup_ref(git, &format!("refs/remotes/{remote}/{short}"))?;
        match git.fetch_ref(remote, refname, &name)? {
            FetchOutcome::Fetched => {
                lease = git.ref_value(&name)?;
                backup = Some(name);
            }
            FetchOutcome::Missing => {}
            FetchOutcome::Unreachable(message) => {
                anyhow::bail!("failed to keep a backup of {refname} from {remote}: {message}")
            }
        }
    }
    if let Some(old) = &lease {
        let short = refname.strip_prefix("refs/heads/").unwrap_or(refname);
        let remote_backup = format!("refs/heads/patchmoi/backup/{short}/{}", stamp());
        git.push_with_lease(remote, old, &remote_backup, None)
            .with_context(|| format!("failed to keep {refname}'s previous value on {remote}"))?;
    }
    let pushed = git.push_with_lease(remote, sha, refname, lease.as_deref());
    match &backup {
        Some(name) => pushed.with_context(|| format!("the remote's previous value is kept in {name}"))?,
        None => pushed?,
    }
    Ok(backup)
}

/// Points `refname` at `sha`, together with `also`, in one transaction; an
/// old value that differs is kept first under `refs/patchmoi/backup/…`, so
/// nothing is lost. Refuses when the branch is checked out in some worktree
/// (`checked_out`: as [`Git::checked_out_branches`] lists them; a run reads
/// them from the worktrees' files through its quarantine).
pub fn move_branch(
    git: &Git,
    refname: &str,
    sha: &str,
    mut also: Vec<RefUpdate>,
    checked_out: &[(String, PathBuf)],
) -> Result<Candidate> {
    let old = git.ref_value(refname)?;
    let mut backup = None;
    if old.as_deref() != Some(sha) {
        if let Some((_, path)) = checked_out.iter().find(|(branch, _)| branch == refname) {
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

/// The current UTC time as a ref name component, e.g. `20261124T021500Z`.
pub fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(['-', ':'], "")
}

/// A fresh `refs/patchmoi/backup/<ref without refs/>/<UTC time>` name.
pub fn backup_ref(git: &Git, refname: &str) -> Result<String> {
    let base = format!("refs/patchmoi/backup/{}/{}", refname.trim_start_matches("refs/"), stamp());
    let mut name = base.clone();
    let mut n = 1;
    while git.ref_value(&name)?.is_some() {
        n += 1;
        name = format!("{base}-{n}");
    }
    Ok(name)
}
