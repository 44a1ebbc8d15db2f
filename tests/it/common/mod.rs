//! Fixtures for integration tests: real git repositories in temp dirs, built
//! with plain `git` (not patchmoi's wrapper, so the tests check the wrapper
//! rather than share its bugs), and the real `patchmoi` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// Commit dates advance from here, one hour per commit, so histories are
/// reproducible.
static CLOCK: AtomicU64 = AtomicU64::new(1_767_225_600);

pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    pub fn init(dir: &Path) -> Repo {
        Repo::init_in_format(dir, "sha1")
    }

    /// A repository whose objects are named by `format` (`sha1`, `sha256`).
    pub fn init_in_format(dir: &Path, format: &str) -> Repo {
        std::fs::create_dir_all(dir).unwrap();
        let repo = Repo { dir: dir.to_path_buf() };
        repo.git(&["init", "--quiet", "--initial-branch=main", &format!("--object-format={format}")]);
        repo
    }

    pub fn init_bare(dir: &Path) -> Repo {
        std::fs::create_dir_all(dir).unwrap();
        let repo = Repo { dir: dir.to_path_buf() };
        repo.git(&["init", "--quiet", "--bare"]);
        repo
    }

    /// Runs git and returns trimmed stdout; panics with stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.git_output(args);
        assert!(output.status.success(), "git {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    pub fn git_output(&self, args: &[&str]) -> Output {
        let date = format!("@{} +0000", CLOCK.fetch_add(3600, Ordering::SeqCst));
        Command::new("git")
            .current_dir(&self.dir)
            .args(["-c", "commit.gpgSign=false", "-c", "core.hooksPath=/dev/null"])
            .args(args)
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env_remove("GIT_DIR")
            .output()
            .expect("git runs")
    }

    pub fn write(&self, path: &str, text: &str) {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path)).unwrap()
    }

    /// Writes the files and commits them all; returns the new commit.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> String {
        for (path, text) in files {
            self.write(path, text);
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev])
    }

    pub fn path_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

/// `n` numbered lines: `prefix 1` … `prefix n`.
pub fn lines(prefix: &str, n: usize) -> String {
    (1..=n).map(|i| format!("{prefix} {i}\n")).collect()
}

/// `text` with line `number` (1-based) replaced.
pub fn replace_line(text: &str, number: usize, with: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, line)| if i + 1 == number { format!("{with}\n") } else { format!("{line}\n") })
        .collect()
}

/// An upstream repository and a fork of it, in one temp dir.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub upstream: Repo,
    pub fork: Repo,
}

impl Fixture {
    /// Upstream with `files` committed and tagged `v1.0.0`; the fork a clone
    /// of it with branch `patches` checked out at `v1.0.0`.
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        Fixture::new_in_format(files, "sha1")
    }

    /// [`Fixture::new`] with repositories in object `format`.
    pub fn new_in_format(files: &[(&str, &str)], format: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let upstream = Repo::init_in_format(&tmp.path().join("upstream"), format);
        upstream.commit("Initial import", files);
        upstream.git(&["tag", "v1.0.0"]);
        let fork_dir = tmp.path().join("fork");
        let out = Command::new("git")
            .args(["clone", "--quiet", upstream.path_str(), fork_dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let fork = Repo { dir: fork_dir };
        fork.git(&["checkout", "--quiet", "-b", "patches", "v1.0.0"]);
        // The fork's own tags must never be touched: give it one named like upstream's.
        Fixture { tmp, upstream, fork }
    }

    /// The fixture most tests start from: a.txt and b.txt; the fork's one
    /// patch changes a.txt line 2, upstream's v1.1.0 changes b.txt line 2.
    pub fn released() -> Fixture {
        let fx = Fixture::new(&[("a.txt", &lines("a", 10)), ("b.txt", &lines("b", 10))]);
        fx.fork.commit("Fork patch", &[("a.txt", &replace_line(&lines("a", 10), 2, "fork"))]);
        fx.upstream.commit("Upstream change", &[("b.txt", &replace_line(&lines("b", 10), 2, "upstream"))]);
        fx.upstream.git(&["tag", "v1.1.0"]);
        fx
    }

    /// Installs a flow under `.codex/flows/<name>/flow.yml` (untracked, as
    /// codex-flows installs them, and excluded so the tree stays clean).
    pub fn install_flow(&self, name: &str, yaml: &str) {
        self.fork.write(&format!(".codex/flows/{name}/flow.yml"), yaml);
        std::fs::write(self.fork.dir.join(".git/info/exclude"), ".codex/\n").unwrap();
    }

    /// The usual flow: rebase `patches` from upstream on `v*` releases of
    /// `test/upstream`, followed by `extra` steps (YAML list items).
    pub fn install_rebase_flow(&self, extra: &str) {
        let yaml = format!(
            "name: fork\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v*\"}}\n\
             stack:\n  upstream: {}\n  branch: patches\nsteps:\n  - name: rebase\n    uses: rebase\n{extra}",
            self.upstream.path_str()
        );
        self.install_flow("fork", &yaml);
    }

    /// Runs `patchmoi run upstream-release --repo test/upstream --tag TAG
    /// --workspace-root <fork> --json` plus `extra` flags.
    pub fn run_release(&self, tag: &str, extra: &[&str]) -> Run {
        let mut args = vec!["run", "upstream-release", "--repo", "test/upstream", "--tag", tag, "--json"];
        args.extend_from_slice(extra);
        self.patchmoi(&args, &[])
    }

    pub fn patchmoi(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--workspace-root", self.fork.path_str()]);
        patchmoi(&self.fork.dir, &full, env)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.fork.dir.join(".codex/workspace/actions/flow-client")
    }
}

/// What the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// The run of `step` in the JSON output.
    pub fn step(&self, step: &str) -> Value {
        self.json()["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["step"] == step)
            .cloned()
            .unwrap_or_else(|| panic!("no run for step {step}:\n{}", self.stdout))
    }
}

pub fn patchmoi(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patchmoi"));
    cmd.current_dir(cwd).args(args).env_remove("CODEX_FLOWS_MODE").env_remove("CODEX_FLOWS_ENABLE_CODE_MODE");
    for proxy in
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"]
    {
        cmd.env_remove(proxy);
    }
    cmd.env("RUST_LOG", "patchmoi=debug");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("patchmoi runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
