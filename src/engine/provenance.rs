//! Dropping patches by provenance: what a patch's message says about where
//! it came from, checked against the release's history. patch-ids miss a
//! patch upstream took with a fix of its own or a rebase of its context;
//! the message does not:
//!
//! - `(cherry picked from commit <sha>)` (`git cherry-pick -x`) or an
//!   `Upstream-Commit: <sha>` trailer, and the release contains that commit;
//! - `Upstream-PR: <owner/repo>#<n>` (or `#<n>`, `<n>`, a pull request URL)
//!   or rebasebot's `UPSTREAM: <n>:` subject, and the release contains the
//!   pull request's merge: a squash-merge subject ending in `(#<n>)` or a
//!   `Merge pull request #<n> ` commit between the merge base and the release;
//!   when the history says nothing (a rebase merge, a squash whose subject
//!   lost its `(#<n>)`) and the caller gave a [`PullLookup`] (a GitHub
//!   token is at hand), GitHub's word that the pull request was merged as a
//!   commit the release contains;
//! - `UPSTREAM: <drop>:` always; `UPSTREAM: <carry>:` never by these rules.
//!
//! Each drop names its rule and the upstream commit. A drop is checked: the
//! patch applied alone onto the release must change nothing, or the drop
//! says how many lines of it the release does not have.

use std::collections::HashMap;

use anyhow::Result;

use crate::engine::replay::first_parent;
use crate::git::{Git, MergeRequest, RawCommit};

/// Asks the forge where an upstream pull request was merged, for when the
/// release's history says nothing of it. The engine makes no network call
/// itself: the caller passes this (the flow, with a GitHub token).
pub trait PullLookup: std::fmt::Debug + Send + Sync {
    /// The commit `repo`'s pull request `number` was merged as; None when it
    /// is not merged (or not known). `repo` is None for a bare number: the
    /// upstream's.
    fn merge_commit(&self, repo: Option<&str>, number: u64) -> Result<Option<String>>;
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// What a message claims about a patch's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// An upstream commit, and the rule that named it.
    Commit { sha: String, rule: &'static str },
    /// An upstream pull request by number (in `repo` when the message
    /// names one), and the rule that named it.
    PullRequest { number: u64, repo: Option<String>, rule: &'static str },
    /// `UPSTREAM: <drop>:`: meant to be dropped at the next rebase.
    Drop,
    /// `UPSTREAM: <carry>:`: the fork's own, whatever else the message says.
    Carry,
}

/// The claims of a commit message, in the order they appear.
pub fn claims(message: &str) -> Vec<Claim> {
    let subject = message.lines().next().unwrap_or_default().trim();
    if let Some(rest) = subject.strip_prefix("UPSTREAM: ") {
        if rest.starts_with("<carry>:") {
            return vec![Claim::Carry];
        }
        if rest.starts_with("<drop>:") {
            return vec![Claim::Drop];
        }
    }
    let mut claims = Vec::new();
    if let Some(number) = subject
        .strip_prefix("UPSTREAM: ")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(number, _)| number.trim().parse::<u64>().ok())
    {
        claims.push(Claim::PullRequest { number, repo: None, rule: "`UPSTREAM: <n>:` subject" });
    }
    for line in message.lines().skip(1).map(str::trim) {
        if let Some(sha) =
            line.strip_prefix("(cherry picked from commit ").and_then(|rest| rest.strip_suffix(')')).and_then(hex)
        {
            claims.push(Claim::Commit { sha, rule: "`(cherry picked from commit …)` line" });
        } else if let Some(value) = trailer(line, "Upstream-Commit") {
            if let Some(sha) = hex(value) {
                claims.push(Claim::Commit { sha, rule: "`Upstream-Commit:` trailer" });
            }
        } else if let Some(value) = trailer(line, "Upstream-PR") {
            if let Some((repo, number)) = pull_ref(value) {
                claims.push(Claim::PullRequest { number, repo, rule: "`Upstream-PR:` trailer" });
            }
        }
    }
    claims
}

/// The value of `key: value` (key case-insensitive).
fn trailer<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (name, value) = line.split_once(':')?;
    name.trim().eq_ignore_ascii_case(key).then(|| value.trim())
}

/// An abbreviated or full object id.
fn hex(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() >= 7 && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// `owner/repo#12`, `#12`, `12` or `https://github.com/owner/repo/pull/12`:
/// the repository when it is named, and the number.
fn pull_ref(value: &str) -> Option<(Option<String>, u64)> {
    let value = value.trim().trim_end_matches('/');
    let (repo, number) = match (value.rsplit_once('#'), value.rsplit_once("/pull/")) {
        (Some((repo, number)), _) => (repo.trim().to_string(), number),
        (None, Some((url, number))) => {
            let mut parts = url.rsplit('/');
            let (name, owner) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            (format!("{owner}/{name}"), number)
        }
        (None, None) => (String::new(), value),
    };
    Some((Some(repo).filter(|repo| is_repo(repo)), number.parse().ok()?))
}

/// `owner/name`, plainly.
fn is_repo(text: &str) -> bool {
    let mut parts = text.split('/');
    let plain = |part: Option<&str>| {
        part.is_some_and(|p| {
            !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
    };
    plain(parts.next()) && plain(parts.next()) && parts.next().is_none()
}

/// The pull request a release commit's subject says it merged: a squash
/// merge `Subject (#12)` or a merge commit `Merge pull request #12 from …`.
pub fn merged_pull(subject: &str) -> Option<u64> {
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        return rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok());
    }
    let inner = subject.trim_end().strip_suffix(')')?;
    let (_, number) = inner.rsplit_once("(#")?;
    number.parse().ok()
}

/// Why the release has pull request `number` by the forge's word: merged as
/// a commit the release contains. A failed lookup is a warning: the patch
/// is then carried, as without a token.
fn merged_per_forge(
    git: &Git,
    lookup: &dyn PullLookup,
    release: &str,
    repo: Option<&str>,
    number: u64,
) -> Result<Option<String>> {
    let merged = match lookup.merge_commit(repo, number) {
        Ok(merged) => merged,
        Err(err) => {
            tracing::warn!("could not ask GitHub whether pull request #{number} was merged: {err:#}");
            return Ok(None);
        }
    };
    let Some(sha) = merged.as_deref().and_then(hex) else { return Ok(None) };
    match git.resolve_commit(&sha)? {
        Some(full) if git.is_ancestor(&full, release)? => {
            Ok(Some(format!("GitHub says #{number} was merged as {}, which the release contains", short(&full))))
        }
        _ => Ok(None),
    }
}

/// Patches (by id) the release has by provenance, each with the reason:
/// the rule, the upstream commit, and how much of the patch the release
/// lacks when that is not nothing. `merges` is the git that may write the
/// containment checks' trees (the quarantine).
pub fn provenance_drops(
    git: &Git,
    merges: &Git,
    release: &str,
    merge_base: &str,
    patches: &[&RawCommit],
    lookup: Option<&dyn PullLookup>,
) -> Result<HashMap<String, String>> {
    let mut pulls: Option<HashMap<u64, String>> = None;
    // (patch, reason, whether to check what the release lacks of it)
    let mut found: Vec<(&RawCommit, String, bool)> = Vec::new();
    for patch in patches {
        for claim in claims(&patch.message()) {
            let reason = match claim {
                Claim::Carry => break,
                // Meant to go whatever the release has: nothing to check.
                Claim::Drop => {
                    found.push((patch, "dropped by provenance (`UPSTREAM: <drop>:` subject)".into(), false));
                    break;
                }
                Claim::Commit { sha, rule } => match git.resolve_commit(&sha)? {
                    Some(full) if git.is_ancestor(&full, release)? => {
                        Some(format!("dropped by provenance ({rule}): the release contains {}", short(&full)))
                    }
                    _ => None,
                },
                Claim::PullRequest { number, repo, rule } => {
                    if pulls.is_none() {
                        let subjects = git.subjects_between(merge_base, release)?;
                        // Newest first: keep the oldest merge of a number.
                        let found = subjects
                            .into_iter()
                            .filter_map(|(sha, subject)| merged_pull(&subject).map(|number| (number, sha)))
                            .collect();
                        pulls = Some(found);
                    }
                    let in_history = pulls.as_ref().and_then(|pulls| pulls.get(&number)).map(|sha| {
                        format!("dropped by provenance ({rule}): the release merged #{number} as {}", short(sha))
                    });
                    match (in_history, lookup) {
                        (Some(reason), _) => Some(reason),
                        (None, Some(lookup)) => merged_per_forge(git, lookup, release, repo.as_deref(), number)?
                            .map(|reason| format!("dropped by provenance ({rule}): {reason}")),
                        (None, None) => None,
                    }
                }
            };
            if let Some(reason) = reason {
                found.push((patch, reason, true));
                break;
            }
        }
    }
    // Each dropped patch alone on the release: what it would still change
    // is what the drop loses.
    let (checked, unchecked): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, _, check)| *check);
    let mut drops: HashMap<String, String> =
        unchecked.into_iter().map(|(patch, reason, _)| (patch.id.clone(), reason)).collect();
    let requests: Vec<MergeRequest> = checked
        .iter()
        .map(|(patch, _, _)| MergeRequest {
            base: first_parent(patch),
            ours: release.to_string(),
            theirs: patch.id.clone(),
        })
        .collect();
    if requests.is_empty() {
        return Ok(drops);
    }
    let release_tree = git.tree_of(release)?;
    for ((patch, reason, _), merge) in checked.into_iter().zip(merges.merge_trees(&requests)?) {
        let missing = if merge.clean {
            merges.lines_changed(&release_tree, &merge.tree, None)?
        } else {
            let conflicted = merge.conflicted_paths();
            let others: Vec<String> = merges
                .changed_paths(&release_tree, &merge.tree)?
                .into_iter()
                .filter(|path| !conflicted.contains(path))
                .collect();
            let placed =
                if others.is_empty() { 0 } else { merges.lines_changed(&release_tree, &merge.tree, Some(&others))? };
            placed + merges.lines_changed(&first_parent(patch), &patch.id, Some(&conflicted))?
        };
        let reason = match missing {
            0 => reason,
            n => format!("{reason}; WARNING: dropped by provenance; {n} lines of it are not in the release"),
        };
        drops.insert(patch.id.clone(), reason);
    }
    Ok(drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_subjects_and_trailers() {
        let table: &[(&str, Vec<Claim>)] = &[
            (
                "Fix a thing\n\n(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)\n",
                vec![Claim::Commit {
                    sha: "0123456789abcdef0123456789abcdef01234567".into(),
                    rule: "`(cherry picked from commit …)` line",
                }],
            ),
            (
                "Fix\n\nUpstream-Commit: ABCDEF0\n",
                vec![Claim::Commit { sha: "abcdef0".into(), rule: "`Upstream-Commit:` trailer" }],
            ),
            (
                "Fix\n\nUpstream-PR: openai/codex#42\n",
                vec![Claim::PullRequest {
                    number: 42,
                    repo: Some("openai/codex".into()),
                    rule: "`Upstream-PR:` trailer",
                }],
            ),
            (
                "Fix\n\nupstream-pr: https://github.com/o/r/pull/7\n",
                vec![Claim::PullRequest { number: 7, repo: Some("o/r".into()), rule: "`Upstream-PR:` trailer" }],
            ),
            (
                "UPSTREAM: 123: fix the parser\n",
                vec![Claim::PullRequest { number: 123, repo: None, rule: "`UPSTREAM: <n>:` subject" }],
            ),
            (
                "Fix\n\nUpstream-PR: #9\n",
                vec![Claim::PullRequest { number: 9, repo: None, rule: "`Upstream-PR:` trailer" }],
            ),
            ("UPSTREAM: <drop>: temporary\n", vec![Claim::Drop]),
            ("UPSTREAM: <carry>: ours\n\nUpstream-PR: 5\n", vec![Claim::Carry]),
            ("Fix\n\nUpstream-Commit: not-a-sha\n", vec![]),
            ("Subject mentions (cherry picked from commit 0123456789)\n", vec![]),
        ];
        for (message, expected) in table {
            assert_eq!(&claims(message), expected, "{message:?}");
        }
    }

    #[test]
    fn merged_pulls_are_read_from_squash_and_merge_subjects() {
        assert_eq!(merged_pull("Add the thing (#1234)"), Some(1234));
        assert_eq!(merged_pull("Merge pull request #56 from someone/branch"), Some(56));
        assert_eq!(merged_pull("Mention (#12) in the middle"), None);
        assert_eq!(merged_pull("Plain subject"), None);
    }
}
