//! The one kit for building repositories, shared by the integration tests,
//! the demo and the benchmark: init (sha1 or sha256, bare or not), files and
//! commits with a deterministic clock and identity, tags, branches,
//! fetch/clone, any git command a test needs, and a `git fast-import`
//! stream for histories too big to build one `git commit` at a time.
//!
//! Every date comes from a [`Clock`], never from the wall, so the same
//! script gives the same SHAs on every machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::Git;

/// 2026-01-01T00:00:00Z: where fixture clocks start unless told otherwise.
pub const EPOCH: u64 = 1_767_225_600;

/// How far the clock moves for each dated object: one hour.
const STEP: u64 = 3600;

/// Dates for commits, shared by every repository handed a clone of it, so
/// repositories built side by side never stamp two commits with one time.
#[derive(Debug, Clone)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn starting_at(epoch: u64) -> Clock {
        Clock(Arc::new(AtomicU64::new(epoch)))
    }

    /// Moves one step on and returns the new time, as `@<seconds> +0000`.
    fn tick(&self) -> String {
        format!("@{} +0000", self.0.fetch_add(STEP, Ordering::SeqCst) + STEP)
    }
}

/// A name and email for authors and committers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
}

impl Person {
    pub fn new(name: &str, email: &str) -> Person {
        Person { name: name.to_string(), email: email.to_string() }
    }

    /// `Ursula Upstream` → `Ursula Upstream <ursula.upstream@example.com>`.
    pub fn example(name: &str) -> Person {
        Person::new(name, &format!("{}@example.com", name.to_lowercase().replace(' ', ".")))
    }
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// How [`FixtureRepo::init_with`] makes a repository.
#[derive(Debug, Clone, Copy)]
pub struct Init<'a> {
    /// The object format: `sha1` or `sha256`.
    pub format: &'a str,
    pub bare: bool,
}

impl Default for Init<'_> {
    fn default() -> Self {
        Init { format: "sha1", bare: false }
    }
}

/// A repository being built. Commands run through the one git wrapper
/// ([`Git`]), with signing off, the author and committer set, and (for
/// commands that may write objects) a fresh date from the clock.
#[derive(Debug, Clone)]
pub struct FixtureRepo {
    git: Git,
    dir: PathBuf,
    clock: Clock,
    author: Person,
    committer: Person,
}

impl FixtureRepo {
    /// A handle on the existing repository at `dir`; nothing is checked.
    pub fn open(dir: &Path, clock: Clock) -> FixtureRepo {
        let git = Git::at(dir).with_config("commit.gpgSign=false").with_config("tag.gpgSign=false");
        let git = git.with_config("maintenance.auto=false");
        let person = Person::example("Fixture");
        FixtureRepo { git, dir: dir.to_path_buf(), clock, author: person.clone(), committer: person }
    }

    /// A new repository in `dir` (created), on branch `main`, with a clock
    /// of its own starting at [`EPOCH`].
    pub fn init(dir: &Path) -> Result<FixtureRepo> {
        FixtureRepo::init_with(dir, Init::default(), Clock::starting_at(EPOCH))
    }

    /// A new repository in `dir` (created) as `how` says; `main` is the
    /// initial branch.
    pub fn init_with(dir: &Path, how: Init, clock: Clock) -> Result<FixtureRepo> {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let repo = FixtureRepo::open(dir, clock);
        let format = format!("--object-format={}", how.format);
        let mut args = vec!["init", "--quiet", "--initial-branch=main", format.as_str()];
        if how.bare {
            args.push("--bare");
        }
        repo.git.run(&args).with_context(|| format!("failed to make a repository in {}", dir.display()))?;
        Ok(repo)
    }

    /// A clone of the repository at `from` in `dir`, as `git clone` makes it.
    pub fn clone_from(from: &Path, dir: &Path, clock: Clock) -> Result<FixtureRepo> {
        let parent = dir.parent().context("a clone needs a parent directory")?;
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        let (from_text, dir_text) = (from.to_string_lossy(), dir.to_string_lossy());
        Git::at(parent).run(&["clone", "--quiet", "--", &from_text, &dir_text])?;
        Ok(FixtureRepo::open(dir, clock))
    }

    /// The same repository with commits authored by `who`.
    pub fn with_author(mut self, who: Person) -> FixtureRepo {
        self.author = who;
        self
    }

    /// The same repository with commits committed by `who`.
    pub fn with_committer(mut self, who: Person) -> FixtureRepo {
        self.committer = who;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wrapper with the identities and, when `date` is given, the date.
    fn stamped(&self, author: &Person, committer: &Person, date: Option<&str>) -> Git {
        let mut git = self
            .git
            .with_env("GIT_AUTHOR_NAME", author.name.as_str())
            .with_env("GIT_AUTHOR_EMAIL", author.email.as_str())
            .with_env("GIT_COMMITTER_NAME", committer.name.as_str())
            .with_env("GIT_COMMITTER_EMAIL", committer.email.as_str());
        if let Some(date) = date {
            git = git.with_env("GIT_AUTHOR_DATE", date).with_env("GIT_COMMITTER_DATE", date);
        }
        git
    }

    /// Runs any git command (a test's `rebase`, `cherry-pick`, `tag -a` …)
    /// one clock step after the last; returns stdout without the trailing
    /// newline, or fails with git's stderr.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        let date = self.clock.tick();
        self.stamped(&self.author, &self.committer, Some(&date)).run(args)
    }

    /// [`FixtureRepo::git`] whatever the exit status: for commands a test
    /// expects to fail.
    pub fn git_output(&self, args: &[&str]) -> Result<Output> {
        let date = self.clock.tick();
        self.stamped(&self.author, &self.committer, Some(&date)).output(args, None)
    }

    /// Writes `text` to `path` in the working tree, making directories.
    pub fn write(&self, path: &str, text: &str) -> Result<()> {
        let file = self.dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("failed to write {}", file.display()))
    }

    /// Writes `files`, stages everything and commits it (empty commits too)
    /// as this repository's author and committer; the new commit's id.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> Result<String> {
        let (author, committer) = (self.author.clone(), self.committer.clone());
        self.commit_by(&author, &committer, message, files)
    }

    /// [`FixtureRepo::commit`] with `who` as both author and committer.
    pub fn commit_as(&self, who: &Person, files: &[(&str, &str)], message: &str) -> Result<String> {
        self.commit_by(who, who, message, files)
    }

    fn commit_by(&self, author: &Person, committer: &Person, message: &str, files: &[(&str, &str)]) -> Result<String> {
        for (path, text) in files {
            self.write(path, text)?;
        }
        let date = self.clock.tick();
        let git = self.stamped(author, committer, Some(&date));
        git.run(&["add", "--all"])?;
        git.run(&["commit", "--quiet", "--allow-empty", "--message", message])
            .with_context(|| format!("failed to commit {message:?} in {}", self.dir.display()))?;
        self.rev("HEAD")
    }

    /// The object `rev` names.
    pub fn rev(&self, rev: &str) -> Result<String> {
        self.git.run(&["rev-parse", "--verify", "--end-of-options", rev])
    }

    /// A lightweight tag `name` on HEAD.
    pub fn tag(&self, name: &str) -> Result<()> {
        self.git.run(&["tag", "--", name])?;
        Ok(())
    }

    /// Checks out branch `name`, (re)made at `start`.
    pub fn branch_at(&self, name: &str, start: &str) -> Result<()> {
        self.git.run(&["checkout", "--quiet", "-B", name, start])?;
        Ok(())
    }

    /// Fetches tag `tag` of the repository at `from` under the same name.
    pub fn fetch_tag(&self, from: &str, tag: &str) -> Result<()> {
        self.git.run(&["fetch", "--quiet", "--no-tags", from, &format!("refs/tags/{tag}:refs/tags/{tag}")])?;
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

    /// Writes a whole history in one `git fast-import` process.
    pub fn fast_import(&self, stream: &FastImport) -> Result<()> {
        self.git
            .run_bytes(&["fast-import", "--quiet", "--date-format=raw"], Some(stream.out.as_bytes()))
            .with_context(|| format!("failed to import a history into {}", self.dir.display()))?;
        Ok(())
    }
}

/// A `git fast-import` stream: one process writes a whole history as a
/// pack, where thousands of `git commit` calls would take minutes. Dates
/// come from its own clock, `step` seconds apart.
pub struct FastImport {
    out: String,
    clock: u64,
    step: u64,
}

impl FastImport {
    pub fn new(start: u64, step: u64) -> FastImport {
        FastImport { out: String::new(), clock: start, step }
    }

    /// A commit on `refname` by `who` (author and committer) setting each
    /// `(path, text)`; `from` starts the ref at another commit first.
    pub fn commit(
        &mut self,
        refname: &str,
        from: Option<&str>,
        who: &Person,
        message: &str,
        files: &[(String, String)],
    ) {
        self.clock += self.step;
        let out = &mut self.out;
        let _ = write!(out, "commit {refname}\nauthor {who} {0} +0000\ncommitter {who} {0} +0000\n", self.clock);
        let _ = write!(out, "data {}\n{message}\n", message.len() + 1);
        if let Some(from) = from {
            let _ = writeln!(out, "from {from}");
        }
        for (path, text) in files {
            let _ = write!(out, "M 100644 inline {path}\ndata {}\n{text}\n", text.len());
        }
        out.push('\n');
    }

    /// Points `refname` (a lightweight tag, a branch) at `from`.
    pub fn reset(&mut self, refname: &str, from: &str) {
        let _ = write!(self.out, "reset {refname}\nfrom {from}\n\n");
    }

    /// An annotated tag `name` on `from`, dated now, with an empty message.
    pub fn annotated_tag(&mut self, name: &str, from: &str, tagger: &Person) {
        let _ = write!(self.out, "tag {name}\nfrom {from}\ntagger {tagger} {} +0000\ndata 0\n\n", self.clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_script_same_shas() {
        let tmp = tempfile::tempdir().unwrap();
        let build = |name: &str| {
            let repo = FixtureRepo::init(&tmp.path().join(name)).unwrap();
            repo.commit_as(&Person::example("Ada"), &[("a.txt", "a\n")], "first").unwrap();
            repo.commit_as(&Person::example("Ada"), &[("dir/b.txt", "b\n")], "second").unwrap()
        };
        assert_eq!(build("one"), build("two"));
    }

    #[test]
    fn fast_import_writes_commits_tags_and_branches() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = FixtureRepo::init_with(tmp.path(), Init { format: "sha256", bare: true }, Clock::starting_at(EPOCH))
            .unwrap();
        let who = Person::new("Bulk", "bulk@example.com");
        let mut stream = FastImport::new(1_700_000_000, 60);
        stream.commit("refs/heads/main", None, &who, "one", &[("a.txt".into(), "a\n".into())]);
        stream.reset("refs/tags/v1", "refs/heads/main");
        stream.commit("refs/heads/main", None, &who, "two", &[("a.txt".into(), "b\n".into())]);
        stream.annotated_tag("v2", "refs/heads/main", &who);
        repo.fast_import(&stream).unwrap();
        assert_eq!(repo.git(&["log", "--format=%s %at", "v2"]).unwrap(), "two 1700000120\none 1700000060");
        assert_eq!(repo.git(&["cat-file", "-t", "v2"]).unwrap(), "tag");
        assert_eq!(repo.rev("v1^{tree}").unwrap().len(), 64, "sha256 object names");
    }
}
