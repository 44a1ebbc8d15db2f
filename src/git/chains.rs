//! Chains of patches replayed in one process with `git replay`.
//!
//! `git replay` runs the same merge as `git merge-tree` for each patch, but
//! keeps merge-ort's caches from one patch to the next, so a chain of 200
//! costs about what 50 separate merges would. It only answers for branches
//! (and newer versions move them rather than print), so it runs against a
//! scratch repository inside the quarantine: the quarantine's objects (with
//! the real repository as alternate), the repository's config included, its
//! `info/` (attributes) linked, and one scratch branch. The real
//! repository's refs are never touched. The commits it makes carry a scratch
//! committer; only their trees are used, and patchmoi writes the real commits.
//!
//! A merge must come out as `git merge-tree` in the repository would make
//! it, so the scratch is used only where nothing tells them apart: see
//! [`Quarantine::replay_allowed`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::layout::setting_key;
use super::objects::RawCommit;
use super::pack::read_loose;
use super::Git;
use super::Quarantine;

/// A run of patches where each is the parent of the next, replayed as
/// `git replay --onto <tip> <from>..<last>`.
pub struct Run<'a> {
    /// Parent of the first patch.
    pub from: &'a str,
    pub last: &'a str,
    pub len: usize,
}

/// Settings under which `git replay` may merge differently from `git
/// merge-tree`: newer versions of replay ignore the merge config, older ones
/// read it. Where any is set, the merges run through merge-tree. (Keys as
/// `git config --list` prints them: section and name in lower case.)
const MERGE_SETTINGS: [&str; 6] = [
    "merge.renames",
    "merge.directoryrenames",
    "merge.renamelimit",
    "merge.renormalize",
    "diff.renames",
    "diff.renamelimit",
];

/// The scratch branch each run replays.
const SCRATCH_BRANCH: &str = "refs/heads/patchmoi-replay";

impl Git {
    /// Every setting in effect here, in order.
    pub(super) fn effective_config(&self) -> Result<Vec<String>> {
        let out = self.run_bytes(&["config", "--list", "-z"], None)?;
        Ok(String::from_utf8_lossy(&out).split('\0').filter(|entry| !entry.is_empty()).map(str::to_string).collect())
    }
}

impl Quarantine {
    /// Whether `git replay` in the scratch repository merges exactly as
    /// `git merge-tree` in the repository: the merge settings are git's
    /// defaults (newer `git replay` ignores them), no replace refs (the
    /// scratch has none), and the same settings in effect in both (an
    /// `includeIf "gitdir:…"`, `onbranch:` or a worktree's own config would
    /// apply in one and not the other). Decided once per quarantine; an
    /// error only means no.
    pub fn replay_allowed(&self) -> bool {
        *self.replay_allowed.get_or_init(|| {
            let allowed = (|| -> Result<bool> {
                // One read of the settings answers both questions.
                let settings = self.settings().context("the repository's settings could not be read")?;
                let merge_setting = |entry: &String| MERGE_SETTINGS.contains(&setting_key(entry));
                if settings.iter().any(merge_setting) || self.replace_refs {
                    return Ok(false);
                }
                // The scratch's settings are the repository's (it includes
                // its config) and its own, unless a condition or a
                // worktree's config applies in one and not the other, or
                // the include's path cannot be written exactly: only then
                // are they read there too, and compared.
                let conditional = |entry: &String| {
                    let key = setting_key(entry);
                    key.starts_with("includeif.") || key == "extensions.worktreeconfig"
                };
                let exact = self.repo_common_dir().to_str().is_some_and(|path| !path.contains('\n'));
                if exact && !settings.iter().any(conditional) {
                    return Ok(true);
                }
                let scratch = self.git.with_env("GIT_DIR", self.scratch_repository()?.as_os_str());
                // The scratch adds its format settings and the include of the
                // repository's config; everything else must match.
                let include = format!("include.path\n{}", self.repo_common_dir().join("config").display());
                let own = |entry: &String| {
                    entry.starts_with("core.repositoryformatversion\n")
                        || entry.starts_with("extensions.")
                        || *entry == include
                };
                let here = settings.iter().filter(|e| !own(e));
                let there = scratch.effective_config()?;
                Ok(here.eq(there.iter().filter(|e| !own(e))))
            })();
            match allowed {
                Ok(allowed) => {
                    tracing::debug!(allowed, "git replay for the stack");
                    allowed
                }
                Err(error) => {
                    tracing::debug!("git replay not used: {error:#}");
                    false
                }
            }
        })
    }

    /// Replays `runs` one after the other onto the commit `onto`, stopping at
    /// the first that conflicts, and returns the (scratch commit, tree) of
    /// each patch replayed, in order. None when git answered in a way we did
    /// not expect (the caller then merges patch by patch).
    pub fn replay_runs(&self, onto: &str, runs: &[Run]) -> Result<Option<Vec<(String, String)>>> {
        let scratch = self.scratch_repository()?;
        let git = self.git.with_env("GIT_DIR", scratch.as_os_str());
        let (mut tip, mut replayed) = (onto.to_string(), 0);
        for run in runs {
            let branch = scratch.join(SCRATCH_BRANCH);
            std::fs::write(&branch, format!("{}\n", run.last))
                .with_context(|| format!("failed to write {}", branch.display()))?;
            let range = format!("{}..{SCRATCH_BRANCH}", run.from);
            // Each run lands on `tip` and reads its attributes there: the
            // caller ends a run at every patch that changes them.
            let output = git.attributes_from(&tip).output(&["replay", "--onto", &tip, &range], None)?;
            match output.status.code() {
                Some(0) => {}
                // Exit 1 is a merge that did not come out clean.
                Some(1) => break,
                _ => bail!("git replay failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
            }
            // Older versions print the update; newer ones make it.
            let text = String::from_utf8_lossy(&output.stdout);
            let printed =
                text.strip_prefix(&format!("update {SCRATCH_BRANCH} ")).and_then(|rest| rest.split(' ').next());
            let moved = std::fs::read_to_string(&branch).ok().map(|id| id.trim().to_string());
            match (printed, moved) {
                (Some(new), _) => tip = new.to_string(),
                (None, Some(new)) if new != run.last => tip = new,
                _ => {
                    tracing::debug!(output = %text, "git replay named no new tip");
                    return Ok(None);
                }
            }
            replayed += run.len;
        }
        let steps = match replayed {
            0 => Vec::new(),
            _ => match self.loose_chain(onto, &tip, replayed)? {
                Some(steps) => steps,
                None => chain(&git, onto, &tip)?,
            },
        };
        if steps.len() != replayed {
            // A git that drops commits which became empty, say.
            tracing::debug!(expected = replayed, got = steps.len(), "git replay made another number of commits");
            return Ok(None);
        }
        Ok(Some(steps))
    }

    /// The `count` commits `onto..tip` along first parents with their trees,
    /// oldest first, read from the quarantine's loose objects, where `git
    /// replay` writes the commits it makes: no process. None when one is
    /// not there, or the walk does not reach `onto` in `count` steps.
    fn loose_chain(&self, onto: &str, tip: &str, count: usize) -> Result<Option<Vec<(String, String)>>> {
        let mut zlib = flate2::Decompress::new(true);
        let (mut steps, mut at) = (Vec::with_capacity(count), tip.to_string());
        while at != onto {
            if steps.len() == count {
                return Ok(None);
            }
            let Some((kind, body)) = read_loose(&self.objects, &at, &mut zlib)? else { return Ok(None) };
            if kind != "commit" {
                return Ok(None);
            }
            let Ok(RawCommit { tree, parents, .. }) = RawCommit::parse(&at, body) else { return Ok(None) };
            let Some(parent) = parents.into_iter().next() else { return Ok(None) };
            steps.push((std::mem::replace(&mut at, parent), tree));
        }
        steps.reverse();
        Ok(Some(steps))
    }

    /// A repository in the quarantine that sees every object (the
    /// quarantine's and, through it, the repository's) and has its own refs.
    fn scratch_repository(&self) -> Result<PathBuf> {
        let scratch = self.dir().join("scratch");
        if scratch.join("HEAD").is_file() {
            return Ok(scratch);
        }
        std::fs::create_dir_all(scratch.join("refs/heads"))
            .with_context(|| format!("failed to create {}", scratch.display()))?;
        std::fs::write(scratch.join("HEAD"), "ref: refs/heads/main\n")
            .with_context(|| format!("failed to write {}", scratch.join("HEAD").display()))?;
        // `info/attributes` can name merge drivers; the scratch reads the same.
        let info = self.repo_common_dir().join("info");
        if info.is_dir() {
            std::os::unix::fs::symlink(&info, scratch.join("info"))
                .with_context(|| format!("failed to link {}", info.display()))?;
        }
        let mut config = String::new();
        // The repository's own settings first (merge drivers, rename limits),
        // then what makes this a repository of the same object format.
        config.push_str(&format!("[include]\n\tpath = {}\n", quoted(&self.repo_common_dir().join("config"))));
        config.push_str("[core]\n\trepositoryformatversion = 1\n");
        config.push_str(&format!("[extensions]\n\tobjectFormat = {}\n", self.format()));
        // Written last: a scratch with HEAD but no config is never taken as done.
        std::fs::write(scratch.join("config"), config)
            .with_context(|| format!("failed to write {}", scratch.join("config").display()))?;
        Ok(scratch)
    }
}

/// The commits `onto..tip` with their trees, oldest first.
fn chain(git: &Git, onto: &str, tip: &str) -> Result<Vec<(String, String)>> {
    let out = git.run(&["rev-list", "--first-parent", "--reverse", "--format=%T", tip, &format!("^{onto}")])?;
    let mut steps = Vec::new();
    let mut lines = out.lines();
    while let Some(header) = lines.next() {
        let commit = header.strip_prefix("commit ").with_context(|| format!("unexpected rev-list line {header:?}"))?;
        let tree = lines.next().with_context(|| format!("rev-list gave no tree for {commit}"))?;
        steps.push((commit.to_string(), tree.to_string()));
    }
    Ok(steps)
}

/// A config value in double quotes, as git's config syntax escapes them.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::*;

    /// A worktree's own config (`extensions.worktreeConfig`, set with or
    /// without a value) applies in the repository and not in the scratch:
    /// the two are read and compared, and a setting only the worktree has
    /// keeps git replay out.
    #[test]
    fn a_worktrees_own_config_is_compared_with_the_scratchs() {
        for value in ["", " = true"] {
            let dir = tempfile::tempdir().unwrap();
            let repo = FixtureRepo::init(dir.path()).unwrap();
            repo.commit("first", &[("a", "one\n")]).unwrap();
            let git_dir = dir.path().join(".git");
            let mut config = std::fs::read_to_string(git_dir.join("config")).unwrap();
            config.push_str(&format!("[extensions]\n\tworktreeConfig{value}\n"));
            std::fs::write(git_dir.join("config"), config).unwrap();
            let git = Git::open(dir.path()).unwrap();
            assert!(git.quarantine().unwrap().replay_allowed(), "{value:?}: nothing in the worktree's config yet");
            std::fs::write(git_dir.join("config.worktree"), "[merge \"keepours\"]\n\tdriver = true\n").unwrap();
            assert!(!git.quarantine().unwrap().replay_allowed(), "{value:?}");
        }
    }

    /// The chain `git replay` made, read from the quarantine's loose
    /// objects, is what `git rev-list` says of it.
    #[test]
    fn the_chain_read_from_loose_objects_is_rev_lists() {
        let dir = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init(dir.path()).unwrap();
        let base = repo.commit("base", &[("a", "a\n"), ("b", "b\n")]).unwrap();
        let onto = repo.commit("upstream", &[("u", "u\n")]).unwrap();
        repo.git(&["checkout", "--quiet", "-b", "patches", &base]).unwrap();
        repo.commit("one", &[("a", "one\n")]).unwrap();
        repo.commit("two", &[("b", "two\n")]).unwrap();
        let last = repo.commit("three", &[("c", "three\n")]).unwrap();
        let git = Git::open(dir.path()).unwrap();
        let quarantine = git.quarantine().unwrap();
        assert!(quarantine.replay_allowed());

        let run = Run { from: &base, last: &last, len: 3 };
        let steps = quarantine.replay_runs(&onto, &[run]).unwrap().expect("git replay took the run");
        let tip = &steps.last().unwrap().0.clone();
        let scratch = quarantine.git.with_env("GIT_DIR", quarantine.scratch_repository().unwrap().as_os_str());
        assert_eq!(steps, chain(&scratch, &onto, tip).unwrap());
        assert_eq!(quarantine.loose_chain(&onto, tip, 3).unwrap(), Some(steps));
        // A chain longer than asked for, or not in the quarantine, is not read.
        assert_eq!(quarantine.loose_chain(&onto, tip, 2).unwrap(), None);
        assert_eq!(quarantine.loose_chain(&base, &last, 3).unwrap(), None);
    }
}
