//! Work a run starts on the release it expects, while its fetch confirms it.
//!
//! The release is usually here before the fetch ends: fetched by an earlier
//! run (`refs/patchmoi/upstream/tags/<tag>`), or a tag of the same name in
//! the fork. What the branch head and the release alone decide (git's
//! cherry-pick walk, the merge base, the stack's commits, and the stack
//! replayed as if nothing were dropped) starts on that guess beside the
//! fetch, and counts only if the fetch brings that very commit: an object
//! id names its content, so the same two commits give the same answers.
//!
//! A guess that turns out wrong costs what was done on it, which the run
//! waits for once its fetch is done: the walks (about what they cost on the
//! right release) and a replay of at most [`REPLAY_AHEAD_MAX`] patches (a
//! longer stack replays after the fetch, beside the end of the cherry-pick
//! walk, the longest step of such a run anyway). Its cherry-pick walk is
//! stopped as soon as the guess is known wrong, and its errors are not the
//! run's: the run reads everything again on the release it fetched, and
//! reports what fails there.

use anyhow::Result;

use crate::engine::replay;
use crate::engine::walk::{self, Chain};
use crate::git::{CherryWalk, Git, Quarantine};

/// What the branch head and a release alone decide, before the commits of
/// upstream's default branch are told apart (see [`walk::classify`]).
pub enum Base {
    /// The two share no history.
    Unrelated,
    /// The branch already contains the release.
    Contains,
    /// The branch's commits above the release.
    Stack { merge_base: String, chain: Chain },
}

impl Base {
    pub fn read(git: &Git, head: &str, release: &str) -> Result<Base> {
        let walked = git.first_parent_chain(head, &[release])?;
        let merge_base = match merge_base_from_chain(head, &walked) {
            Some(merge_base) => merge_base,
            None => git.merge_base(head, release)?,
        };
        Ok(match merge_base {
            None => Base::Unrelated,
            Some(merge_base) if merge_base == release => Base::Contains,
            Some(merge_base) => Base::Stack { merge_base, chain: walk::chain(git, &walked)? },
        })
    }
}

/// The merge base of a branch head and a release, when its first-parent
/// chain above the release (oldest first, with parents) tells it, as `git
/// merge-base` would answer; None when it does not.
///
/// With no merge on the chain, every ancestor of the head is on the chain
/// or is the first parent of its oldest commit, or an ancestor of that
/// one. That parent the release reaches (the chain is exactly what the
/// release does not reach), so it and its ancestors are the common
/// ancestors, and it is the only best one. An oldest commit with no
/// parent means none; an empty chain, that the release reaches the head
/// itself. A merge on the chain can bring common ancestors of its own:
/// then only `git merge-base` says.
fn merge_base_from_chain(head: &str, chain: &[(String, Vec<String>)]) -> Option<Option<String>> {
    if chain.iter().any(|(_, parents)| parents.len() > 1) {
        return None;
    }
    match chain.first() {
        None => Some(Some(head.to_string())),
        Some((_, parents)) => Some(parents.first().cloned()),
    }
}

/// The longest chain replayed ahead: on a wrong guess (a moved tag, a
/// fork's own tag of the release's name on an old commit) the run waits
/// for that replay, so it is kept to what a few dozen milliseconds replay.
pub const REPLAY_AHEAD_MAX: usize = 64;

/// The work done ahead on a guessed release.
pub struct Ahead {
    /// The guessed release: the work counts only if it is the fetched one.
    pub release: String,
    /// git's cherry-pick walk of `release...head`, running.
    pub walk: CherryWalk,
    pub base: Base,
    /// The whole chain replayed onto the guess as if nothing were dropped:
    /// see [`replay::speculate`]. None when there is no stack or its chain
    /// is longer than [`REPLAY_AHEAD_MAX`]; empty when git replay could not
    /// take it.
    pub speculation: Option<Vec<(String, String)>>,
}

/// Given a guessed release, does the work ahead on it, beside the making
/// of the quarantine (`quarantine`: waits for it), which the replay ahead
/// needs.
pub fn start(
    git: &Git,
    head: &str,
    guess: Option<&str>,
    quarantine: impl FnOnce() -> Result<Quarantine>,
) -> (Result<Quarantine>, Option<Ahead>) {
    let guessed = guess.and_then(|release| match walk_and_base(git, head, release) {
        Ok((walk, base)) => Some((release.to_string(), walk, base)),
        Err(error) => {
            tracing::debug!("no work ahead on the guessed release {release}: {error:#}");
            None
        }
    });
    let quarantine = quarantine();
    let ahead = guessed.map(|(release, walk, base)| {
        let speculation = match (&quarantine, &base) {
            (Ok(quarantine), Base::Stack { chain, .. }) if chain.commits.len() <= REPLAY_AHEAD_MAX => {
                let replayed = replay::speculate(quarantine, &release, &chain.commits);
                Some(replayed.unwrap_or_else(|error| {
                    tracing::debug!("speculative replay on the guessed release failed: {error:#}");
                    Vec::new()
                }))
            }
            _ => None,
        };
        Ahead { release, walk, base, speculation }
    });
    (quarantine, ahead)
}

/// git's cherry-pick walk of `release...head`, started, and the [`Base`]:
/// the walk is started from a thread of its own, so that the chain's walk,
/// which the replay waits for, does not wait for its start.
pub fn walk_and_base(git: &Git, head: &str, release: &str) -> Result<(CherryWalk, Base)> {
    std::thread::scope(|scope| {
        let walk = scope.spawn(|| git.start_cherry_walk(release, head));
        let base = Base::read(git, head, release);
        let walk = walk.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((walk?, base?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::fixture::FixtureRepo;

    /// What `git merge-base` says of the two, as a [`Base`] would name it.
    fn git_says(repo: &FixtureRepo, head: &str, release: &str) -> String {
        match repo.git(&["merge-base", head, release]) {
            Ok(base) if base == release => "contains".into(),
            Ok(base) => base,
            Err(_) => "unrelated".into(),
        }
    }

    fn base_says(git: &Git, head: &str, release: &str) -> String {
        match Base::read(git, head, release).unwrap() {
            Base::Unrelated => "unrelated".into(),
            Base::Contains => "contains".into(),
            Base::Stack { merge_base, .. } => merge_base,
        }
    }

    /// The merge base read from the chain is `git merge-base`'s, on every
    /// shape of history: a stack on an older release, a branch behind the
    /// release, one that contains it, unrelated histories, and a stack
    /// with a merge of upstream in it (where git is asked).
    #[test]
    fn the_merge_base_from_the_chain_is_gits() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init(dir.path()).unwrap();
        let old = repo.commit("old release", &[("a", "1\n")]).unwrap();
        let middle = repo.commit("upstream work", &[("b", "1\n")]).unwrap();
        let release = repo.commit("release", &[("c", "1\n")]).unwrap();
        repo.git(&["checkout", "--quiet", "-b", "stack", &old]).unwrap();
        repo.commit("patch 1", &[("p", "1\n")]).unwrap();
        let stack = repo.commit("patch 2", &[("p", "2\n")]).unwrap();
        repo.git(&["checkout", "--quiet", "-b", "synced", &stack]).unwrap();
        repo.git(&["merge", "--quiet", "--no-edit", &middle]).unwrap();
        let synced = repo.commit("patch 3", &[("q", "1\n")]).unwrap();
        repo.git(&["checkout", "--quiet", "-b", "ahead", &release]).unwrap();
        let ahead = repo.commit("patch on the release", &[("r", "1\n")]).unwrap();
        repo.git(&["checkout", "--quiet", "--orphan", "other"]).unwrap();
        let other = repo.commit("unrelated", &[("z", "1\n")]).unwrap();
        let git = Git::open(dir.path()).unwrap();

        let cases = [
            (stack.as_str(), release.as_str(), old.as_str()),
            (old.as_str(), release.as_str(), old.as_str()),
            (ahead.as_str(), release.as_str(), "contains"),
            (release.as_str(), release.as_str(), "contains"),
            (other.as_str(), release.as_str(), "unrelated"),
            (synced.as_str(), release.as_str(), middle.as_str()),
        ];
        for (head, release, expected) in cases {
            assert_eq!(git_says(&repo, head, release), expected, "the fixture, {head} on {release}");
            assert_eq!(base_says(&git, head, release), expected, "{head} on {release}");
        }
        let chain = |head: &str| git.first_parent_chain(head, &[&release]).unwrap();
        assert_eq!(merge_base_from_chain(&synced, &chain(&synced)), None, "a merge on the chain: git is asked");
        assert_eq!(merge_base_from_chain(&stack, &chain(&stack)), Some(Some(old.clone())));
    }
}
