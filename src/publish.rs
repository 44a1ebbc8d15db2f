//! Publishing refs to the fork's remote without ever losing what was there:
//! the remote's old value is fetched into a backup ref first, and the push
//! leases on exactly that value.

use anyhow::{Context, Result};

use crate::git::{FetchOutcome, Git};
use crate::stack::backup_ref;

/// Pushes `sha` to `refname` on `remote`. When the remote has another value
/// there, it is kept under `refs/patchmoi/backup/remotes/<remote>/…` and the
/// push leases on it, so a concurrent push is refused rather than lost.
/// Returns the backup ref, if one was made.
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
    let pushed = git.push_with_lease(remote, sha, refname, lease.as_deref());
    match &backup {
        Some(name) => pushed.with_context(|| format!("the remote's previous value is kept in {name}"))?,
        None => pushed?,
    }
    Ok(backup)
}
