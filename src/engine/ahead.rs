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
//! A guess that turns out wrong costs only the second core's time; its
//! errors are not the run's (the run reads everything again on the release
//! it fetched, and reports what fails there).

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
        Ok(match git.merge_base(head, release)? {
            None => Base::Unrelated,
            Some(merge_base) if merge_base == release => Base::Contains,
            Some(merge_base) => Base::Stack { merge_base, chain: walk::chain(git, head, release)? },
        })
    }
}

/// The work done ahead on a guessed release.
pub struct Ahead {
    /// The guessed release: the work counts only if it is the fetched one.
    pub release: String,
    /// git's cherry-pick walk of `release...head`, running.
    pub walk: CherryWalk,
    pub base: Base,
    /// The whole chain replayed onto the guess as if nothing were dropped:
    /// see [`replay::speculate`]. Empty when the chain has nothing to
    /// replay or git replay could not take it.
    pub speculation: Vec<(String, String)>,
}

/// Makes the quarantine (where a replay's objects go; it needs nothing the
/// fetch brings) and, given a guessed release, does the work ahead on it.
pub fn start(git: &Git, head: &str, guess: Option<&str>) -> (Result<Quarantine>, Option<Ahead>) {
    std::thread::scope(|scope| {
        let quarantine = scope.spawn(|| {
            let quarantine = git.quarantine()?;
            quarantine.replay_allowed();
            Ok(quarantine)
        });
        let guessed = guess.and_then(|release| match read_ahead(git, head, release) {
            Ok(read) => Some(read),
            Err(error) => {
                tracing::debug!("no work ahead on the guessed release {release}: {error:#}");
                None
            }
        });
        let quarantine: Result<Quarantine> = quarantine.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let ahead = guessed.map(|(release, walk, base)| {
            let speculation = match (&quarantine, &base) {
                (Ok(quarantine), Base::Stack { chain, .. }) => replay::speculate(quarantine, &release, &chain.commits)
                    .unwrap_or_else(|error| {
                        tracing::debug!("speculative replay on the guessed release failed: {error:#}");
                        Vec::new()
                    }),
                _ => Vec::new(),
            };
            Ahead { release, walk, base, speculation }
        });
        (quarantine, ahead)
    })
}

fn read_ahead(git: &Git, head: &str, release: &str) -> Result<(String, CherryWalk, Base)> {
    let walk = git.start_cherry_walk(release, head)?;
    Ok((release.to_string(), walk, Base::read(git, head, release)?))
}
