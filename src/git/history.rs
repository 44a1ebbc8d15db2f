//! History questions: which commits a range holds, which files they
//! change, which upstream commits touched a path.

use std::collections::BTreeSet;

use anyhow::Result;

use super::Git;

impl Git {
    /// The patches of `commits` as `git diff-tree -p` prints them, for
    /// [`Git::patch_ids`].
    pub fn diffs_of(&self, commits: &[String]) -> Result<Vec<u8>> {
        let input: String = commits.iter().map(|id| format!("{id}\n")).collect();
        self.run_bytes(&["diff-tree", "-p", "--no-renames", "--stdin"], Some(input.as_bytes()))
    }

    /// `(patch-id, commit)` pairs from diffs, stable across hunk order.
    pub fn patch_ids(&self, diffs: &[u8]) -> Result<Vec<(String, String)>> {
        if diffs.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.run_bytes(&["patch-id", "--stable"], Some(diffs))?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(id, commit)| (id.to_string(), commit.to_string()))
            .collect())
    }

    /// Commits of `from..to` along first parents, oldest first.
    pub fn first_parent_range(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let range = format!("{from}..{to}");
        let out = self.run(&["rev-list", "--first-parent", "--reverse", "--end-of-options", &range])?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// First-parent commits of `from..to` that change any of `paths`, oldest first.
    pub fn first_parent_range_touching(&self, from: &str, to: &str, paths: &[String]) -> Result<Vec<String>> {
        let range = format!("{from}..{to}");
        let mut args = vec!["rev-list", "--first-parent", "--reverse", "--end-of-options", &range, "--"];
        args.extend(paths.iter().map(String::as_str));
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run(&args)?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Paths that differ between two trees (or commits), renames not followed.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let out = self
            .run_bytes(&["diff-tree", "-r", "-z", "--name-only", "--no-renames", "--end-of-options", from, to], None)?;
        Ok(String::from_utf8_lossy(&out).split('\0').filter(|path| !path.is_empty()).map(str::to_string).collect())
    }

    /// The files each of `commits` changes (against its first parent).
    pub fn files_changed_by(&self, commits: &[String]) -> Result<Vec<(String, BTreeSet<String>)>> {
        let input: String = commits.iter().map(|id| format!("{id}\n")).collect();
        let args = ["log", "--no-walk=unsorted", "--stdin", "--name-only", "--no-renames", "-z", "--format=%x01%H"];
        Ok(parse_file_sets(&self.run_bytes(&args, Some(input.as_bytes()))?))
    }

    /// Every non-merge commit of `from..to` with the files it changes. (No
    /// pathspec: with hundreds of paths git's pathspec matching costs ten
    /// times more than listing everything and filtering here.)
    pub fn files_changed_in(&self, from: &str, to: &str) -> Result<Vec<(String, BTreeSet<String>)>> {
        let range = format!("{from}..{to}");
        let args =
            ["log", "--no-merges", "--name-only", "--no-renames", "-z", "--format=%x01%H", "--end-of-options", &range];
        Ok(parse_file_sets(&self.run_bytes(&args, None)?))
    }

    /// `(sha, subject)` of the newest `limit` commits of `from..to` touching `path`.
    pub fn commits_touching(&self, from: &str, to: &str, path: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let range = format!("{from}..{to}");
        let max = format!("--max-count={limit}");
        let args = ["log", "--no-merges", &max, "--format=%H%x00%s", "--end-of-options", &range, "--", path];
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run(&args)?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\0'))
            .map(|(sha, subject)| (sha.to_string(), subject.to_string()))
            .collect())
    }
}

/// Reads `--format=%x01%H --name-only -z` output: `\x01<sha>\0\n<path>\0…`.
fn parse_file_sets(out: &[u8]) -> Vec<(String, BTreeSet<String>)> {
    String::from_utf8_lossy(out)
        .split('\u{1}')
        .filter_map(|record| {
            let (sha, rest) = record.split_once('\0')?;
            let files = rest.trim_start_matches('\n').split('\0').filter(|path| !path.is_empty()).map(str::to_string);
            Some((sha.to_string(), files.collect()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_sets() {
        let out = b"\x01aaa\0\nconfig.toml\0\x01bbb\0\nCHANGELOG.md\0src/a b.rs\0\x01ccc\0";
        let sets = parse_file_sets(out);
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[1].0, "bbb");
        assert_eq!(sets[1].1.iter().cloned().collect::<Vec<_>>(), ["CHANGELOG.md", "src/a b.rs"]);
        assert!(sets[2].1.is_empty(), "an empty commit changes nothing");
    }
}
