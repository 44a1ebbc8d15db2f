//! The one wrapper around the git CLI: every git process patchmoi starts is
//! built here, with a controlled environment, and every call is named after
//! what it is for.
//!
//! Submodules add intention-named calls for object work (`objects`), in-memory
//! merges (`merge`), worktrees (`worktree`) and the fork's remote (`remote`); they all go through
//! [`Git::output`], so this file is the only place that spawns git.

mod attributes;
mod batch;
mod chains;
mod clone;
pub mod fixture;
mod history;
mod layout;
mod local_remote;
mod log;
mod merge;
mod objects;
mod pack;
mod paths;
mod quarantine;
mod remote;
mod scratch;
mod worktree;

pub use chains::Run;
pub use history::{CherryMarks, CherryWalk};
pub use local_remote::is_local_repository;
pub use merge::{conflicted_paths, ConflictEntry, MergeRequest, MergeResult};
pub use objects::{object_id, RawCommit, TreeEntry};
pub use paths::{path_bytes, path_from_bytes, path_os};
pub use quarantine::Quarantine;
pub use remote::{basic_credential, http_auth_env};

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::core::redact::redact_url;

/// The oldest git that has everything we use: `git merge-tree --write-tree
/// --merge-base` with trees, `--stdin` batches of such merges, and `git replay`.
/// git's tracing switches; none may reach a git process of ours.
const TRACE_VARIABLES: &[&str] = &[
    "GIT_TRACE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE2_PERF",
    "GIT_TRACE2_CONFIG_PARAMS",
    "GIT_TRACE2_ENV_VARS",
    "GIT_TRACE_CURL",
    "GIT_TRACE_CURL_NO_DATA",
    "GIT_TRACE_PACKET",
    "GIT_TRACE_PACKFILE",
    "GIT_TRACE_PERFORMANCE",
    "GIT_TRACE_SETUP",
    "GIT_TRACE_SHALLOW",
    "GIT_TRACE_REFS",
    "GIT_TRACE_FSMONITOR",
    "GIT_CURL_VERBOSE",
    "GIT_SSH_VARIANT_TRACE",
];

pub const MIN_GIT_VERSION: (u32, u32) = (2, 44);

/// Identity for the few objects git itself stamps (reflog entries, the demo's
/// fixtures). Replayed commits keep their original committer.
const COMMITTER_NAME: &str = "patchmoi";
const COMMITTER_EMAIL: &str = "patchmoi@users.noreply.github.com";

/// How many git processes this process started: the fixed cost of a run is
/// mostly process starts, so the benchmark reports them and the debug log
/// numbers each command.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// The number of git processes started so far by this process.
pub fn spawned() -> usize {
    SPAWNED.load(Ordering::Relaxed)
}

/// A repository (or a worktree of one) that git commands run in.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    /// Extra environment for every command, e.g. a quarantine object directory.
    env: Vec<(OsString, OsString)>,
    /// Extra `-c key=value` settings for every command.
    config: Vec<String>,
    /// The tree merges read `.gitattributes` from (`--attr-source`); see
    /// `attributes.rs`.
    attr_source: Option<String>,
    /// The long-lived `cat-file` this view's ref and object reads go to,
    /// shared by its clones; a view with other environment or settings
    /// starts its own.
    batch_slot: batch::Slot,
}

/// What a `git fetch` of a single ref ended with; the caller turns these into
/// run statuses (`blocked` for a missing tag, `failed` for an unreachable remote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    Fetched,
    /// The remote answered but has no such ref.
    Missing,
    /// The remote could not be reached or refused us; carries git's message.
    Unreachable(String),
}

impl Git {
    /// A handle on the repository at `dir` (the directory itself need not be
    /// the top level). Checks the git version once per process.
    pub fn open(dir: &Path) -> Result<Git> {
        let git = Git::at(dir);
        // The long-lived reader starts only inside a repository: when it
        // answers, that is the check, and it is ready for the run's reads.
        // The version check runs beside it (two processes at once, not one
        // after the other); a git too old fails there first.
        let started = std::thread::scope(|scope| {
            let version = scope.spawn(check_version);
            let started = git.batch(batch::Ask::Info, &[b"HEAD"]).is_some();
            version.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)).map(|()| started)
        })?;
        if started {
            return Ok(git);
        }
        let git = Git::at(dir);
        git.run(&["rev-parse", "--git-dir"])
            .with_context(|| format!("{} is not inside a git repository", dir.display()))?;
        Ok(git)
    }

    /// A handle without any check, for directories about to become repositories.
    pub fn at(dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
            env: Vec::new(),
            config: Vec::new(),
            attr_source: None,
            batch_slot: batch::Slot::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The same repository with one more environment variable on every command.
    pub fn with_env(&self, key: &str, value: impl Into<OsString>) -> Git {
        let mut git = self.clone();
        git.env.push((key.into(), value.into()));
        git.batch_slot = batch::Slot::default();
        git
    }

    /// The same repository with one more `-c key=value` on every command.
    pub fn with_config(&self, setting: &str) -> Git {
        let mut git = self.clone();
        git.config.push(setting.to_string());
        git.batch_slot = batch::Slot::default();
        git
    }

    /// Builds the command with the controlled environment. Credentials
    /// helpers, `safe.directory` and the user's global config keep working:
    /// we do not replace HOME or the system config, we only pin the settings
    /// that change results and cut every way a command could prompt or run
    /// a hook.
    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir)
            .args([
                "-c",
                "merge.conflictStyle=diff3",
                "-c",
                "core.quotePath=false",
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "advice.detachedHead=false",
                "-c",
                "gc.auto=0",
                // Nor does a fetch start `git maintenance run --auto` (a
                // process of its own, whatever gc.auto says).
                "-c",
                "maintenance.auto=false",
            ])
            .args(self.config.iter().flat_map(|setting| ["-c", setting.as_str()]))
            .args(self.attr_source.iter().map(|tree| format!("--attr-source={tree}")))
            .args(args)
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", "true")
            .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
            .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
            // A hook or an outer git (`git rebase -x patchmoi ...`) may have set
            // these; they would point our commands at another repository.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env_remove("GIT_PREFIX");
        // A trace would print request headers (an auth header among them)
        // into stderr, and stderr goes into error messages.
        for variable in TRACE_VARIABLES {
            cmd.env_remove(variable);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs git and returns its output whatever the exit status; `input`, if
    /// any, is written to stdin from a thread so large inputs cannot deadlock
    /// against large outputs.
    pub(crate) fn output(&self, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
        self.output_os(args, input)
    }

    /// [`Git::output`] with arguments that need not be UTF-8 (paths).
    pub(crate) fn output_os<S: AsRef<OsStr>>(&self, args: &[S], input: Option<&[u8]>) -> Result<Output> {
        let shown: Vec<String> = args.iter().map(|arg| arg.as_ref().to_string_lossy().into_owned()).collect();
        let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
        let number = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(dir = %self.dir.display(), number, "git {}", display_args(&shown));
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
        let started = std::time::Instant::now();
        let mut child = cmd.spawn().context("failed to start git")?;
        let output = match input {
            Some(bytes) => {
                let mut stdin = child.stdin.take().expect("stdin is piped");
                std::thread::scope(|scope| {
                    let writer = scope.spawn(move || stdin.write_all(bytes));
                    let output = child.wait_with_output();
                    // A git that exits early closes its stdin; what it said on
                    // stderr explains more than the broken pipe would.
                    let _ = writer.join();
                    output
                })?
            }
            None => child.wait_with_output()?,
        };
        tracing::debug!(number, ms = started.elapsed().as_secs_f64() * 1e3, "git {} done", shown[0]);
        Ok(output)
    }

    /// Starts git in the background; see [`Background`].
    fn start(&self, args: &[&str]) -> Result<Background> {
        let number = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(dir = %self.dir.display(), number, "git {} (in the background)", display_args(args));
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().context("failed to start git")?;
        fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> Drain {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        }
        let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
        let args = args.iter().map(|arg| arg.to_string()).collect();
        Ok(Background { child, output: Some((stdout, stderr)), args })
    }

    /// Runs git, fails with its stderr unless it exits 0, returns stdout as bytes.
    fn run_bytes(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let output = self.output(args, input)?;
        if !output.status.success() {
            bail!(failure_message(args, &output));
        }
        Ok(output.stdout)
    }

    /// Runs git and returns stdout as text with the trailing newline removed.
    fn run(&self, args: &[&str]) -> Result<String> {
        let stdout = self.run_bytes(args, None)?;
        let mut text = String::from_utf8_lossy(&stdout).into_owned();
        while text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// The commit a revision names, or None when it does not resolve to one.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        if let Some(mut answers) = self.batch(batch::Ask::Info, &[spec.as_bytes()]) {
            return Ok(answers.remove(0).map(|(oid, _)| oid));
        }
        let output = self.output(&["rev-parse", "--verify", "--quiet", "--end-of-options", &spec], None)?;
        Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// [`Git::resolve_commit`] for several revisions, in one round trip to
    /// the long-lived cat-file when it runs.
    pub fn resolve_commits(&self, revs: &[&str]) -> Result<Vec<Option<String>>> {
        let specs: Vec<String> = revs.iter().map(|rev| format!("{rev}^{{commit}}")).collect();
        let names: Vec<&[u8]> = specs.iter().map(String::as_bytes).collect();
        if let Some(answers) = self.batch(batch::Ask::Info, &names) {
            return Ok(answers.into_iter().map(|answer| answer.map(|(oid, _)| oid)).collect());
        }
        revs.iter().map(|rev| self.resolve_commit(rev)).collect()
    }

    /// The value of a ref (not peeled), or None when it does not exist.
    pub fn ref_value(&self, refname: &str) -> Result<Option<String>> {
        if let Some(mut answers) = self.batch(batch::Ask::Info, &[refname.as_bytes()]) {
            return Ok(answers.remove(0).map(|(oid, _)| oid));
        }
        let output = self.output(&["rev-parse", "--verify", "--quiet", "--end-of-options", refname], None)?;
        Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// Every ref under `prefix` (e.g. `refs/patchmoi/`) with its value
    /// (not peeled), in name order.
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self.run(&["for-each-ref", "--format=%(refname) %(objectname)", "--end-of-options", prefix])?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, sha)| (name.to_string(), sha.to_string()))
            .collect())
    }

    /// The best common ancestor, or None for unrelated (or shallow-cut) histories.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>> {
        let output = self.output(&["merge-base", "--end-of-options", a, b], None)?;
        match output.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&output.stdout).trim().to_string())),
            Some(1) => Ok(None),
            _ => bail!(failure_message(&["merge-base", a, b], &output)),
        }
    }

    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        let args = ["merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant];
        let output = self.output(&args, None)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!(failure_message(&args, &output)),
        }
    }

    pub fn is_shallow(&self) -> Result<bool> {
        Ok(self.run(&["rev-parse", "--is-shallow-repository"])? == "true")
    }

    /// The absolute path of a file or directory inside the git directory
    /// (shared between worktrees where git shares it).
    pub fn git_path(&self, name: &str) -> Result<PathBuf> {
        let path = PathBuf::from(self.run(&["rev-parse", "--path-format=absolute", "--git-path", name])?);
        Ok(path)
    }

    /// The working tree's top level.
    /// Whether this is a bare repository (no working tree).
    pub fn is_bare(&self) -> Result<bool> {
        Ok(self.run(&["rev-parse", "--is-bare-repository"])? == "true")
    }

    pub fn top_level(&self) -> Result<PathBuf> {
        Ok(PathBuf::from(self.run(&["rev-parse", "--show-toplevel"])?))
    }

    /// Applies ref updates as one atomic transaction: either all move or none.
    pub fn update_refs(&self, updates: &[RefUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut script = String::from("start\n");
        for update in updates {
            script.push_str(&update.line());
        }
        script.push_str("prepare\ncommit\n");
        self.run_bytes(&["update-ref", "--stdin"], Some(script.as_bytes()))
            .context("failed to update refs in one transaction")?;
        Ok(())
    }

    /// Branches checked out in any worktree of this repository, as full refs.
    pub fn checked_out_branches(&self) -> Result<Vec<(String, PathBuf)>> {
        let out = self.run(&["worktree", "list", "--porcelain"])?;
        let mut found = Vec::new();
        let mut path = None;
        for line in out.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p));
            } else if let Some(branch) = line.strip_prefix("branch ") {
                found.push((branch.to_string(), path.clone().unwrap_or_default()));
            }
        }
        Ok(found)
    }
}

/// One line of an `update-ref --stdin` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefUpdate {
    /// Create or move `refname` to `new`, only if it currently has `old`
    /// (`None`: only if it does not exist).
    Set { refname: String, new: String, old: Option<String> },
    /// Delete `refname`, only if it currently has `old`.
    Delete { refname: String, old: String },
    /// Create or move `refname` to `new` whatever it holds, as a fetch's
    /// `+` refspec does: only for patchmoi's own copies of others' refs.
    Force { refname: String, new: String },
}

impl RefUpdate {
    fn line(&self) -> String {
        match self {
            // `create` refuses when the ref exists: the lease for a new ref.
            RefUpdate::Set { refname, new, old: None } => format!("create {refname} {new}\n"),
            RefUpdate::Set { refname, new, old: Some(old) } => format!("update {refname} {new} {old}\n"),
            RefUpdate::Delete { refname, old } => format!("delete {refname} {old}\n"),
            // No old value: git moves it whatever it holds.
            RefUpdate::Force { refname, new } => format!("update {refname} {new}\n"),
        }
    }
}

/// A thread reading one of a command's pipes to its end.
type Drain = std::thread::JoinHandle<Vec<u8>>;

/// A git command running beside the caller, its output read as it comes
/// (so it never waits on a full pipe). Dropped before [`Background::finish`],
/// it is killed: a walk whose answer is no longer wanted stops with it.
pub struct Background {
    child: std::process::Child,
    /// The threads reading stdout and stderr, until finished.
    output: Option<(Drain, Drain)>,
    args: Vec<String>,
}

impl Background {
    /// Waits for the command; fails with its stderr unless it exits 0.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let (stdout, stderr) = self.output.take().expect("finished once");
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        let status = self.child.wait()?;
        if !status.success() {
            let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
            bail!(failure_message(&args, &Output { status, stdout: Vec::new(), stderr }));
        }
        Ok(stdout)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.output.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn failure_message(args: &[&str], output: &Output) -> String {
    let stderr = redact_url(String::from_utf8_lossy(&output.stderr).trim());
    let status = match output.status.code() {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_string(),
    };
    format!("git {} failed ({status}): {stderr}", display_args(args))
}

/// The arguments as a person would type them, with credentials in URLs hidden.
fn display_args(args: &[&str]) -> String {
    args.iter().map(|arg| redact_url(arg)).collect::<Vec<_>>().join(" ")
}

/// Fails once, clearly, when the `git` on PATH is too old or missing.
pub fn check_version() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            SPAWNED.fetch_add(1, Ordering::Relaxed);
            let output = Command::new("git")
                .arg("version")
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("failed to run git (is it installed and on PATH?): {err}"))?;
            let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
            match parse_git_version(&text) {
                Some(found) if found >= MIN_GIT_VERSION => Ok(()),
                _ => Err(format!(
                    "patchmoi needs git {}.{} or newer (for `git merge-tree --merge-base`); found `{text}`",
                    MIN_GIT_VERSION.0, MIN_GIT_VERSION.1
                )),
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `git version 2.47.3` or `git version 2.39.2 (Apple Git-143)` → (major, minor).
fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let version = text.strip_prefix("git version ")?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_command_dropped_unfinished_is_killed_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let git = Git::at(dir.path());
        git.run(&["init", "--quiet"]).unwrap();
        // Stands in for a long walk: git waiting on a pager-less alias.
        let running = git.start(&["-c", "alias.wait=!sleep 10", "wait"]).unwrap();
        let pid = running.child.id();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(running);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "git {pid} still runs after the drop");
        // Finished, it answers as a foreground command would.
        let out = git.start(&["rev-parse", "--is-inside-work-tree"]).unwrap().finish().unwrap();
        assert_eq!(out, b"true\n");
        let error = git.start(&["rev-parse", "--verify", "nothing-here"]).unwrap().finish().unwrap_err();
        assert!(format!("{error:#}").contains("git rev-parse --verify nothing-here failed"), "{error:#}");
    }

    #[test]
    fn parses_git_versions() {
        assert_eq!(parse_git_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(parse_git_version("git version 2.39.2 (Apple Git-143)"), Some((2, 39)));
        assert_eq!(parse_git_version("git version 2.44.0.windows.1"), Some((2, 44)));
        assert_eq!(parse_git_version("hub version 2"), None);
    }

    #[test]
    fn ref_update_lines() {
        let set = RefUpdate::Set { refname: "refs/heads/x".into(), new: "ab".into(), old: None };
        assert_eq!(set.line(), "create refs/heads/x ab\n");
        let moved = RefUpdate::Set { refname: "refs/heads/x".into(), new: "ab".into(), old: Some("cd".into()) };
        assert_eq!(moved.line(), "update refs/heads/x ab cd\n");
        let del = RefUpdate::Delete { refname: "refs/heads/x".into(), old: "cd".into() };
        assert_eq!(del.line(), "delete refs/heads/x cd\n");
        let forced = RefUpdate::Force { refname: "refs/patchmoi/x".into(), new: "ab".into() };
        assert_eq!(forced.line(), "update refs/patchmoi/x ab\n");
    }
}
