//! Reading what a history says about itself: subjects that name pull
//! requests, the newest landing merge of a branch, and how many lines two
//! trees differ by. Used to drop patches by provenance and to land releases
//! with a merge.

use anyhow::{Context, Result};

use super::Git;

impl Git {
    /// `(sha, subject)` of every commit `to` reaches and `from` does not,
    /// merges included, newest first.
    pub fn subjects_between(&self, from: &str, to: &str) -> Result<Vec<(String, String)>> {
        let range = format!("{from}..{to}");
        let out = self.run(&["log", "--format=%H%x00%s", "--end-of-options", &range])?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\0'))
            .map(|(sha, subject)| (sha.to_string(), subject.to_string()))
            .collect())
    }

    /// How many lines (added plus deleted) differ from `from` to `to` (trees
    /// or commits), counting a binary file as one line; only `paths` when
    /// given.
    pub fn lines_changed(&self, from: &str, to: &str, paths: Option<&[String]>) -> Result<usize> {
        let mut args = vec!["diff-tree", "-r", "--numstat", "--no-renames", "--end-of-options", from, to, "--"];
        if let Some(paths) = paths {
            args.extend(paths.iter().map(String::as_str));
        }
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run(&args)?;
        let mut total = 0;
        for line in out.lines() {
            let mut fields = line.split('\t');
            let (added, deleted) = (fields.next().unwrap_or("-"), fields.next().unwrap_or("-"));
            total += match (added.parse::<usize>(), deleted.parse::<usize>()) {
                (Ok(added), Ok(deleted)) => added + deleted,
                _ => 1,
            };
        }
        Ok(total)
    }

    /// Pushes `src` to `dst` on `remote` as a plain push: no force, no
    /// lease, so the remote takes it only as a fast-forward.
    pub fn push_fast_forward(&self, remote: &str, src: &str, dst: &str) -> Result<()> {
        let refspec = format!("{src}:{dst}");
        self.run(&["push", "--quiet", "--porcelain", "--end-of-options", remote, &refspec])
            .with_context(|| format!("failed to push {dst} to {remote} as a fast-forward"))?;
        Ok(())
    }
}
