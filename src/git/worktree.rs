//! Worktrees patchmoi makes for itself: a checkout of a candidate for the
//! flow's checks, or of a stopped replay with its conflicts marked, so that a
//! person or an agent can resolve them with ordinary git commands.

use std::path::Path;

use anyhow::{Context, Result};

use super::layout::{git_bool, setting_value};
use super::paths::{path_bytes, path_from_bytes};
use super::{ConflictEntry, Git, Quarantine};

impl Quarantine {
    /// [`Git::checked_out_branches`] read from the worktrees' `HEAD` files
    /// (the main one's, then each of `worktrees/*`, as `git worktree list`
    /// reads them) with no process. Where those files may not hold the
    /// answer (refs in a reftable, a `HEAD` that is a symbolic link or of
    /// another shape), git is asked. A bare repository's own `HEAD` is no
    /// checkout, and a worktree whose `gitdir` file is gone is not listed,
    /// as git lists them.
    pub fn checked_out_branches(&self) -> Result<Vec<(String, std::path::PathBuf)>> {
        let ask_git = || self.repo().checked_out_branches();
        let Some(settings) = self.settings() else { return ask_git() };
        // A reftable keeps HEAD elsewhere; a symbolic link as HEAD
        // (`core.preferSymlinkRefs`) reads as its branch's id.
        let symlinks = setting_value(settings, "core.prefersymlinkrefs").is_some();
        if symlinks || setting_value(settings, "extensions.refstorage").is_some() {
            return ask_git();
        }
        // Unset, git decides by where the repository is: it says.
        let Some(bare) = setting_value(settings, "core.bare").and_then(git_bool) else { return ask_git() };
        let common = self.repo_common_dir();
        let mut heads = Vec::new();
        if !bare {
            let top = if common.file_name().is_some_and(|name| name == ".git") { common.parent() } else { None };
            heads.push((common.join("HEAD"), top.unwrap_or(common).to_path_buf()));
        }
        if let Ok(entries) = std::fs::read_dir(common.join("worktrees")) {
            for entry in entries.flatten() {
                let admin = entry.path();
                // git lists no worktree whose `gitdir` file is gone or empty.
                let Ok(gitdir) = std::fs::read_to_string(admin.join("gitdir")) else { continue };
                let gitdir = gitdir.trim_end_matches('\n');
                if gitdir.is_empty() {
                    continue;
                }
                let top = Path::new(gitdir).parent().map_or(admin.clone(), Path::to_path_buf);
                heads.push((admin.join("HEAD"), top));
            }
        }
        let mut found = Vec::new();
        for (head, top) in heads {
            let is_file = std::fs::symlink_metadata(&head).is_ok_and(|meta| meta.file_type().is_file());
            let Some(text) = is_file.then(|| std::fs::read_to_string(&head).ok()).flatten() else { return ask_git() };
            // As git reads a ref file: trailing blanks dropped, and after
            // `ref:` any blanks. A branch that is itself a symbolic ref
            // points further: git follows it.
            let text = text.trim_end();
            match text.strip_prefix("ref:").map(str::trim_start) {
                Some(branch) if branch.starts_with("refs/heads/") => {
                    let target = std::fs::read(common.join(branch)).unwrap_or_default();
                    if target.starts_with(b"ref:") {
                        return ask_git();
                    }
                    found.push((branch.to_string(), top));
                }
                Some(_) => return ask_git(),
                None if text.len() >= 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {}
                None => return ask_git(),
            }
        }
        Ok(found)
    }
}

impl Git {
    /// Adds a detached worktree of `commit` at `path` (which must not exist).
    pub fn add_worktree(&self, path: &Path, commit: &str) -> Result<Git> {
        let path_text = path.to_str().context("worktree path is not UTF-8")?;
        self.run(&["worktree", "add", "--detach", "--force", "--quiet", path_text, commit])
            .with_context(|| format!("failed to create a worktree at {}", path.display()))?;
        Ok(Git::at(path))
    }

    /// Adds a worktree holding a stopped replay: HEAD at `head` (the patches
    /// applied so far), the files of `tree` (the conflicted merge, markers and
    /// all) in the working tree, and the index carrying stages 1–3 for each
    /// conflicted path, so `git status` shows them unmerged and `git add`
    /// marks them resolved.
    pub fn add_conflict_worktree(
        &self,
        path: &Path,
        head: &str,
        tree: &str,
        conflicts: &[ConflictEntry],
    ) -> Result<Git> {
        let worktree = self.add_bare_worktree(path, head)?;
        worktree
            .run(&["read-tree", "--reset", "-u", tree])
            .with_context(|| format!("failed to check out the conflicted state in {}", path.display()))?;
        worktree.mark_unmerged(conflicts)?;
        Ok(worktree)
    }

    /// The same stopped state, but only the conflicting files (and `also`)
    /// are written: every other path is in the index marked skip-worktree,
    /// so status, diff and add behave as in a full checkout while a large
    /// repository costs no more than its conflicts.
    pub fn add_sparse_conflict_worktree(
        &self,
        path: &Path,
        head: &str,
        tree: &str,
        conflicts: &[ConflictEntry],
        also: &[String],
    ) -> Result<Git> {
        let worktree = self.add_bare_worktree(path, head)?;
        worktree.run(&["read-tree", "--reset", tree])?;
        let conflicted = super::conflicted_paths(conflicts);
        let listed = worktree.run_bytes(&["ls-files", "-z"], None)?;
        let (mut others, mut extra) = (Vec::with_capacity(listed.len()), Vec::new());
        let conflicted: Vec<Vec<u8>> = conflicted.iter().map(|path| path_bytes(path)).collect();
        for path in listed.split(|byte| *byte == 0).filter(|path| !path.is_empty()) {
            if !conflicted.iter().any(|conflict| conflict == path) {
                // `also` is written where the tree has it: a path it lacks has nothing to write.
                let out = if also.iter().any(|wanted| path_bytes(wanted) == path) { &mut extra } else { &mut others };
                out.extend_from_slice(path);
                out.push(0);
            }
        }
        worktree.run_bytes(&["update-index", "-z", "--skip-worktree", "--stdin"], Some(&others))?;
        let mut wanted = extra;
        for path in &conflicted {
            wanted.extend_from_slice(path);
            wanted.push(0);
        }
        worktree.run_bytes(&["checkout-index", "--force", "-z", "--stdin"], Some(&wanted))?;
        worktree.mark_unmerged(conflicts)?;
        Ok(worktree)
    }

    fn add_bare_worktree(&self, path: &Path, head: &str) -> Result<Git> {
        let path_text = path.to_str().context("worktree path is not UTF-8")?;
        self.run(&["worktree", "add", "--detach", "--force", "--no-checkout", "--quiet", path_text, head])
            .with_context(|| format!("failed to create a worktree at {}", path.display()))?;
        Ok(Git::at(path))
    }

    /// Replaces the stage-0 entries of the conflicted paths by their stages.
    fn mark_unmerged(&self, conflicts: &[ConflictEntry]) -> Result<()> {
        let mut info = Vec::new();
        let mut removed = Vec::new();
        let mut line = |meta: String, path: &str| {
            info.extend_from_slice(meta.as_bytes());
            info.push(b'\t');
            info.extend_from_slice(&path_bytes(path));
            info.push(0);
        };
        for entry in conflicts {
            if !removed.contains(&&entry.path) {
                // Mode 0 removes the stage-0 entry read-tree put there.
                line(format!("0 {} 0", zero_oid(&entry.oid)), &entry.path);
                removed.push(&entry.path);
            }
            line(format!("{} {} {}", entry.mode, entry.oid, entry.stage), &entry.path);
        }
        self.run_bytes(&["update-index", "-z", "--index-info"], Some(&info))
            .context("failed to mark the conflicted paths in the worktree index")?;
        Ok(())
    }

    /// Paths with unmerged index entries.
    pub fn unmerged_paths(&self) -> Result<Vec<String>> {
        let out = self.run_bytes(&["ls-files", "--unmerged", "-z"], None)?;
        let mut paths: Vec<String> = out
            .split(|byte| *byte == 0)
            .filter_map(|line| line.iter().position(|byte| *byte == b'\t').map(|tab| path_from_bytes(&line[tab + 1..])))
            .collect();
        paths.dedup();
        Ok(paths)
    }

    /// Removes a worktree patchmoi made, whatever state it is in.
    pub fn remove_worktree(&self, path: &Path) -> Result<()> {
        let path_text = path.to_str().context("worktree path is not UTF-8")?;
        let removed = self.run(&["worktree", "remove", "--force", "--force", path_text]);
        if removed.is_err() && path.exists() {
            std::fs::remove_dir_all(path).with_context(|| format!("failed to remove {}", path.display()))?;
        }
        self.run(&["worktree", "prune"])?;
        Ok(())
    }
}

impl Git {
    /// Removes the temporary packs (`tmp_pack_*`, `tmp_idx_*`) an
    /// interrupted fetch left in the object store, once they are older than
    /// `age`: a fetch that is still running keeps writing to its own.
    pub fn remove_stale_temporary_packs(&self, age: std::time::Duration) -> Result<usize> {
        let dir = self.git_path("objects/pack")?;
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let temporary =
                name.to_str().is_some_and(|name| name.starts_with("tmp_pack_") || name.starts_with("tmp_idx_"));
            let old = entry.metadata().and_then(|meta| meta.modified()).ok().and_then(|at| at.elapsed().ok());
            if temporary && old.is_some_and(|old| old >= age) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn zero_oid(like: &str) -> String {
    "0".repeat(like.len())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::FixtureRepo;
    use super::*;

    /// The branches read from the `HEAD` files are the ones `git worktree
    /// list` names, with their paths: the main worktree's, a linked one's,
    /// none for a detached one or one whose `gitdir` file is gone, the main
    /// one's when its HEAD is a symbolic link; and none for a bare
    /// repository's own HEAD.
    #[test]
    fn checked_out_branches_read_from_files_are_gits() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        let repo = FixtureRepo::init(&main).unwrap();
        let first = repo.commit("first", &[("a", "1\n")]).unwrap();
        repo.git(&["branch", "feature"]).unwrap();
        let linked = dir.path().join("linked");
        let detached = dir.path().join("detached");
        repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "feature"]).unwrap();
        repo.git(&["worktree", "add", "-q", "--detach", detached.to_str().unwrap(), &first]).unwrap();
        let git = Git::open(&main).unwrap();
        let sorted = |mut branches: Vec<(String, std::path::PathBuf)>| {
            branches.sort();
            branches
        };
        let expected = sorted(git.checked_out_branches().unwrap());
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert_eq!(sorted(git.quarantine().unwrap().checked_out_branches().unwrap()), expected);

        // A worktree whose `gitdir` file is gone: git lists it no more.
        repo.git(&["branch", "gone"]).unwrap();
        let gone = dir.path().join("gone");
        repo.git(&["worktree", "add", "-q", gone.to_str().unwrap(), "gone"]).unwrap();
        std::fs::remove_file(main.join(".git/worktrees/gone/gitdir")).unwrap();
        let expected = sorted(git.checked_out_branches().unwrap());
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert_eq!(sorted(git.quarantine().unwrap().checked_out_branches().unwrap()), expected);

        // A HEAD with a carriage return, and one whose branch is itself a
        // symbolic ref: git reads both as checkouts.
        std::fs::write(main.join(".git/worktrees/linked/HEAD"), "ref: refs/heads/feature\r\n").unwrap();
        repo.git(&["symbolic-ref", "refs/heads/alias", "refs/heads/feature"]).unwrap();
        std::fs::write(main.join(".git/worktrees/detached/HEAD"), "ref:refs/heads/alias\n").unwrap();
        let expected = sorted(git.checked_out_branches().unwrap());
        assert_eq!(expected.len(), 3, "{expected:?}");
        assert_eq!(sorted(git.quarantine().unwrap().checked_out_branches().unwrap()), expected);

        // HEAD as a symbolic link to its branch (`core.preferSymlinkRefs`).
        repo.git(&["branch", "linked-head"]).unwrap();
        repo.git(&["-c", "core.preferSymlinkRefs=true", "checkout", "-q", "linked-head"]).unwrap();
        assert!(std::fs::symlink_metadata(main.join(".git/HEAD")).unwrap().file_type().is_symlink());
        let expected = sorted(git.checked_out_branches().unwrap());
        assert!(expected.iter().any(|(branch, _)| branch == "refs/heads/linked-head"), "{expected:?}");
        assert_eq!(sorted(git.quarantine().unwrap().checked_out_branches().unwrap()), expected);

        let bare = dir.path().join("bare.git");
        repo.git(&["clone", "-q", "--bare", main.to_str().unwrap(), bare.to_str().unwrap()]).unwrap();
        let git = Git::open(&bare).unwrap();
        assert_eq!(git.checked_out_branches().unwrap(), Vec::new());
        assert_eq!(git.quarantine().unwrap().checked_out_branches().unwrap(), Vec::new());
        // core.bare unset: git decides by where the repository is.
        let config = std::fs::read_to_string(bare.join("config")).unwrap();
        std::fs::write(bare.join("config"), config.replace("bare = true", "")).unwrap();
        assert_eq!(git.checked_out_branches().unwrap(), Vec::new());
        assert_eq!(git.quarantine().unwrap().checked_out_branches().unwrap(), Vec::new());
    }
}
