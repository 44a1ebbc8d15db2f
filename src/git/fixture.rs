//! Repositories built for the demo (and anything else that needs a small,
//! reproducible history): every commit gets a fixed date from a clock, so
//! the same script gives the same SHAs on every machine.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Git;

/// A repository being built, with a clock so every commit has a fixed date
/// and the demo gives the same SHAs on every machine.
pub struct FixtureRepo {
    pub git: Git,
    dir: PathBuf,
    clock: u64,
}

impl FixtureRepo {
    /// A new repository in `dir` (created), on branch `main`.
    pub fn init(dir: &Path) -> Result<FixtureRepo> {
        std::fs::create_dir_all(dir)?;
        let git = Git::at(dir);
        git.run(&["init", "--quiet", "--initial-branch=main"])?;
        Ok(FixtureRepo { git, dir: dir.to_path_buf(), clock: 1_767_225_600 })
    }

    /// Writes `files`, stages everything and commits it as `author`; the
    /// new commit's id.
    pub fn commit(&mut self, author: &str, files: &[(&str, &str)], message: &str) -> Result<String> {
        for (path, text) in files {
            let file = self.dir.join(path);
            std::fs::write(&file, text).with_context(|| format!("failed to write {}", file.display()))?;
        }
        self.clock += 3600;
        let date = format!("@{} +0000", self.clock);
        let email = format!("{}@example.com", author.to_lowercase().replace(' ', "."));
        let git = self
            .git
            .with_env("GIT_AUTHOR_NAME", author)
            .with_env("GIT_AUTHOR_EMAIL", email.as_str())
            .with_env("GIT_AUTHOR_DATE", date.as_str())
            .with_env("GIT_COMMITTER_NAME", author)
            .with_env("GIT_COMMITTER_EMAIL", email.as_str())
            .with_env("GIT_COMMITTER_DATE", date.as_str());
        git.run(&["add", "--all"])?;
        git.run(&["-c", "commit.gpgSign=false", "commit", "--quiet", "--message", message])?;
        git.run(&["rev-parse", "HEAD"])
    }

    pub fn tag(&self, name: &str) -> Result<()> {
        self.git.run(&["tag", name])?;
        Ok(())
    }

    /// Fetches tag `tag` of the repository at `from` under the same name.
    pub fn fetch_tag(&self, from: &str, tag: &str) -> Result<()> {
        self.git.run(&["fetch", "--quiet", from, &format!("refs/tags/{tag}:refs/tags/{tag}")])?;
        Ok(())
    }

    /// Checks out branch `name`, (re)made at `start`.
    pub fn branch_at(&self, name: &str, start: &str) -> Result<()> {
        self.git.run(&["checkout", "--quiet", "-B", name, start])?;
        Ok(())
    }

    /// `<short sha> <subject>` lines of `range`, oldest first with `reverse`.
    pub fn oneline_log(&self, range: &str, reverse: bool) -> Result<String> {
        let mut args = vec!["log", "--format=%h %s"];
        if reverse {
            args.push("--reverse");
        }
        args.push(range);
        self.git.run(&args)
    }
}
