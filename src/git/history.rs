//! History questions: which commits a range holds, which files they
//! change, which upstream commits touched a path.

use std::collections::BTreeSet;
use std::ffi::OsString;

use anyhow::{bail, Result};

use super::paths::{nul_separated, path_os};
use super::{failure_message, Background, Git};

/// A cherry-pick walk running; see [`Git::start_cherry_walk`].
pub struct CherryWalk {
    running: Background,
    upstream: String,
    tip: String,
}

impl CherryWalk {
    /// Waits for the walk: the marked commits, each side apart.
    pub fn finish(self) -> Result<CherryMarks> {
        let out = self.running.finish()?;
        let mut marks = CherryMarks::default();
        for line in String::from_utf8_lossy(&out).lines() {
            let Some((id, reached_from)) = line.strip_prefix('=').and_then(|rest| rest.split_once(' ')) else {
                continue;
            };
            if reached_from == self.upstream {
                marks.upstream.insert(id.to_string());
            } else if reached_from == self.tip {
                marks.tip.insert(id.to_string());
            } else {
                bail!(
                    "git log named {reached_from:?} as the tip {id} was reached from, neither {} nor {}",
                    self.upstream,
                    self.tip
                );
            }
        }
        Ok(marks)
    }
}

/// What [`Git::start_cherry_walk`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CherryMarks {
    /// The tip's commits that upstream has.
    pub tip: BTreeSet<String>,
    /// Upstream's commits that the tip has.
    pub upstream: BTreeSet<String>,
}

impl Git {
    /// The patches of `commits` as `git diff-tree -p` prints them, for
    /// [`Git::patch_ids`]: placed as git's own patch-ids place hunks (plain
    /// Myers, no indent heuristic: `diff_get_patch_id` in git's diff.c
    /// clears the diff flags), binary changes by their blob ids.
    pub fn diffs_of(&self, commits: &[String]) -> Result<Vec<u8>> {
        let input: String = commits.iter().map(|id| format!("{id}\n")).collect();
        let args = [
            "diff-tree",
            "-p",
            "--no-renames",
            "--no-indent-heuristic",
            "--diff-algorithm=myers",
            "--full-index",
            "--binary",
            "--stdin",
        ];
        self.run_bytes(&args, Some(input.as_bytes()))
    }

    /// The non-merge commits of `upstream...tip` that git's cherry-pick
    /// detection finds on both sides, as `git rebase <upstream>` asks it
    /// (`--cherry-mark`, see `sequencer_make_script` in git's sequencer.c):
    /// git computes the patch-ids itself, so they are its own. Each side
    /// apart: git marks an equivalent `=` on either side, so this is `git
    /// log`, for `%S`: the tip each commit was reached from. Started in the
    /// background: dropping the walk before [`CherryWalk::finish`] stops it.
    pub fn start_cherry_walk(&self, upstream: &str, tip: &str) -> Result<CherryWalk> {
        let range = format!("{upstream}...{tip}");
        let running = self.start(&[
            "log",
            "--no-show-signature",
            "--no-decorate",
            "--no-notes",
            "--no-color",
            "--left-right",
            "--cherry-mark",
            "--no-merges",
            "--format=%m%H %S",
            "--end-of-options",
            &range,
        ])?;
        Ok(CherryWalk { running, upstream: upstream.to_string(), tip: tip.to_string() })
    }

    /// Commits reachable from `tip` along first parents that none of
    /// `excluded` reaches (through any parent), oldest first.
    pub fn first_parent_commits(&self, tip: &str, excluded: &[&str]) -> Result<Vec<String>> {
        let negated: Vec<String> = excluded.iter().map(|rev| format!("^{rev}")).collect();
        let mut args = vec!["rev-list", "--first-parent", "--reverse", "--end-of-options", tip];
        args.extend(negated.iter().map(String::as_str));
        let out = self.run(&args)?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// [`Git::first_parent_commits`], each with its parents.
    pub fn first_parent_chain(&self, tip: &str, excluded: &[&str]) -> Result<Vec<(String, Vec<String>)>> {
        let negated: Vec<String> = excluded.iter().map(|rev| format!("^{rev}")).collect();
        let format = "--format=%H %P";
        let mut args =
            vec!["rev-list", "--first-parent", "--reverse", "--no-commit-header", format, "--end-of-options"];
        args.push(tip);
        args.extend(negated.iter().map(String::as_str));
        let out = self.run(&args)?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ').filter(|field| !field.is_empty()).map(str::to_string);
                Some((fields.next()?, fields.collect()))
            })
            .collect())
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

    /// First-parent commits of `from..to` that change any of `paths`, oldest first.
    pub fn first_parent_range_touching(&self, from: &str, to: &str, paths: &[String]) -> Result<Vec<String>> {
        let range = format!("{from}..{to}");
        let mut args: Vec<OsString> =
            ["rev-list", "--first-parent", "--reverse", "--end-of-options", &range, "--"].map(OsString::from).into();
        args.extend(paths.iter().map(|path| path_os(path)));
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run_os(&args)?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Paths that differ between two trees (or commits), renames not followed.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let out = self
            .run_bytes(&["diff-tree", "-r", "-z", "--name-only", "--no-renames", "--end-of-options", from, to], None)?;
        Ok(nul_separated(&out))
    }

    /// `(sha, subject)` of the newest `limit` commits of `from..to` touching `path`.
    pub fn commits_touching(&self, from: &str, to: &str, path: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let range = format!("{from}..{to}");
        let max = format!("--max-count={limit}");
        let mut args: Vec<OsString> =
            ["log", "--no-merges", &max, "--format=%H%x00%s", "--end-of-options", &range, "--"]
                .map(OsString::from)
                .into();
        args.push(path_os(path));
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run_os(&args)?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\0'))
            .map(|(sha, subject)| (sha.to_string(), subject.to_string()))
            .collect())
    }

    /// Runs git with arguments that need not be UTF-8; stdout as text.
    fn run_os(&self, args: &[OsString]) -> Result<String> {
        let output = self.output_os(args, None)?;
        if !output.status.success() {
            let shown: Vec<String> = args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect();
            let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
            bail!(failure_message(&shown, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim_end_matches('\n').to_string())
    }

    /// The changed line ranges from blob `old` to blob `new` (`rev:path`
    /// specs or ids), as `(old_start, old_len, new_start, new_len)` from the
    /// `@@` headers of a `-U0` diff: a zero length starts at the line before.
    pub fn line_changes(&self, old: &str, new: &str) -> Result<Vec<(usize, usize, usize, usize)>> {
        let mut args: Vec<OsString> =
            ["diff", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--end-of-options"]
                .map(OsString::from)
                .into();
        args.extend([path_os(old), path_os(new)]);
        let out = self.run_os(&args)?;
        Ok(out.lines().filter_map(parse_hunk_header).collect())
    }
}

/// `@@ -a,b +c,d @@ …` → (a, b, c, d); a missing length is 1.
fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize, usize)> {
    let ranges = line.strip_prefix("@@ -")?.split(" @@").next()?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |text: &str| -> Option<(usize, usize)> {
        match text.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((text.parse().ok()?, 1)),
        }
    };
    let ((a, b), (c, d)) = (range(old)?, range(new)?);
    Some((a, b, c, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hunk_headers() {
        assert_eq!(parse_hunk_header("@@ -9,0 +10 @@"), Some((9, 0, 10, 1)));
        assert_eq!(parse_hunk_header("@@ -3,2 +3,4 @@ fn main() {"), Some((3, 2, 3, 4)));
        assert_eq!(parse_hunk_header("+@@ -1 +1 @@"), None);
    }
}
