//! Fixtures for integration tests: real git repositories in temp dirs,
//! built with the library's fixture kit (`patchmoi::git::fixture`, shared
//! with the demo and the benchmark) behind thin wrappers that panic instead
//! of returning errors, and the real `patchmoi` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use patchmoi::git::fixture::{Clock, FixtureRepo, Init, Person, EPOCH};
use serde_json::Value;

/// One clock for every repository of the test binary: each git command is
/// an hour after the last, so histories are reproducible and no two
/// commits, in any test, share a date.
pub fn clock() -> Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(|| Clock::starting_at(EPOCH)).clone()
}

pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    pub fn init(dir: &Path) -> Repo {
        Repo::init_in_format(dir, "sha1")
    }

    /// A repository whose objects are named by `format` (`sha1`, `sha256`).
    pub fn init_in_format(dir: &Path, format: &str) -> Repo {
        FixtureRepo::init_with(dir, Init { format, bare: false }, clock()).unwrap_or_else(|err| panic!("{err:#}"));
        Repo { dir: dir.to_path_buf() }
    }

    pub fn init_bare(dir: &Path) -> Repo {
        FixtureRepo::init_with(dir, Init { bare: true, ..Init::default() }, clock())
            .unwrap_or_else(|err| panic!("{err:#}"));
        Repo { dir: dir.to_path_buf() }
    }

    /// The kit's handle on this repository, as the tests' author and committer.
    pub fn kit(&self) -> FixtureRepo {
        FixtureRepo::open(&self.dir, clock())
            .with_author(Person::new("Test Author", "author@example.com"))
            .with_committer(Person::new("Test Committer", "committer@example.com"))
    }

    /// Runs git and returns trimmed stdout; panics with stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let stdout = self.kit().git(args).unwrap_or_else(|err| panic!("{err:#}"));
        stdout.trim().to_string()
    }

    pub fn git_output(&self, args: &[&str]) -> Output {
        self.kit().git_output(args).expect("git runs")
    }

    pub fn write(&self, path: &str, text: &str) {
        self.kit().write(path, text).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path)).unwrap()
    }

    /// Writes the files and commits them all; returns the new commit.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> String {
        self.kit().commit(message, files).unwrap_or_else(|err| panic!("{err:#}"))
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
        FixtureRepo::clone_from(&upstream.dir, &fork_dir, clock()).unwrap_or_else(|err| panic!("{err:#}"));
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

    /// The fork's `origin` becomes a bare repository (`origin.git` beside
    /// the fork) holding `patches`.
    pub fn with_origin(&self) -> Repo {
        let origin = Repo::init_bare(&self.tmp.path().join("origin.git"));
        self.fork.git(&["remote", "set-url", "origin", origin.path_str()]);
        self.fork.git(&["push", "--quiet", "origin", "patches"]);
        origin
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
    /// `flow/step:runner:gated` for each match a dry run (`--dry-run
    /// --json`) lists; the run must have succeeded.
    pub fn matches(&self) -> Vec<String> {
        assert_eq!(self.code, 0, "{}\n{}", self.stdout, self.stderr);
        self.json()["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}:{}:{}",
                    m["flow"].as_str().unwrap(),
                    m["step"].as_str().unwrap(),
                    m["runner"].as_str().unwrap(),
                    m["gated"]
                )
            })
            .collect()
    }

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
    // A token in the test's own environment would send `run` to GitHub.
    cmd.env_remove("GITHUB_TOKEN").env_remove("GITHUB_API_URL");
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
