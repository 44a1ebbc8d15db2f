//! Speed benchmark: patchmoi's in-memory rebase against plain `git rebase
//! --onto`, side by side in one run, on a generated repository shaped like a
//! busy upstream (the numbers: ~3,000 files, 3,500 upstream commits
//! between the old base and the tag, a 200-patch stack).
//!
//! Speed targets are reported as ratios, not asserted: timings depend on the
//! machine, ratios much less. Correctness is checked and fails the run: the
//! candidate's tree must equal the tree `git rebase` made, and the conflict
//! report must name the patch and upstream commit the fixture planted.
//!
//! `cargo bench --bench rebase`. Smaller runs: PATCHMOI_BENCH_FILES,
//! PATCHMOI_BENCH_UPSTREAM_COMMITS, PATCHMOI_BENCH_PATCHES, PATCHMOI_BENCH_RUNS.
//! `RUST_LOG=patchmoi=debug` logs every git command the engine (and, through
//! the fixture kit, the comparison side) runs, with times;
//! PATCHMOI_BENCH_KEEP=1 keeps the fixture for profiling by hand.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use patchmoi::engine::stack::{rebase, RebaseOutcome, StackOptions, StackSpec};
use patchmoi::git::fixture::{Clock, FastImport, FixtureRepo, Init, Person, EPOCH};
use patchmoi::git::Git;

/// Each kind of edit owns a band of lines, with an untouched line between
/// bands: git's merge treats changes on adjacent lines as one conflict.
const LINES: usize = 40;
/// Random upstream edits land on lines `0..UPSTREAM_LINES`.
const UPSTREAM_LINES: usize = 12;
/// A change upstream and a fork patch both make, identically. Lines 13..=19
/// (its diff context) are never edited, so the two patch-ids match.
const DUP_LINE: usize = 16;
/// A line upstream and a fork patch both edit, differently.
const CONFLICT_LINE: usize = 20;
/// Lines ordinary fork patches edit; each (file, line) once, so no patch
/// depends on an earlier one and the survey lists only the planted conflicts.
const PATCH_SLOTS: [usize; 8] = [24, 26, 28, 30, 32, 34, 36, 38];
const DUPS: usize = 5;
const CONFLICTS: usize = 2;
static UPSTREAM: LazyLock<Person> = LazyLock::new(|| Person::new("Upstream Dev", "dev@upstream.example"));
static FORK: LazyLock<Person> = LazyLock::new(|| Person::new("Fork Dev", "dev@fork.example"));

struct Sizes {
    files: usize,
    upstream_commits: usize,
    patches: usize,
    runs: usize,
}

fn sizes() -> Result<Sizes> {
    // Below 20 the planted commits no longer fit between ordinary ones.
    let var = |name: &str, default: usize, min: usize| -> Result<usize> {
        let value = std::env::var(name).map_or(Ok(default), |text| text.parse().with_context(|| name.to_string()))?;
        Ok(value.max(min))
    };
    Ok(Sizes {
        files: var("PATCHMOI_BENCH_FILES", 3000, 20)?,
        upstream_commits: var("PATCHMOI_BENCH_UPSTREAM_COMMITS", 3500, 20)?,
        patches: var("PATCHMOI_BENCH_PATCHES", 200, 20)?,
        runs: var("PATCHMOI_BENCH_RUNS", 3, 1)?,
    })
}

/// xorshift64: deterministic, so every run builds the same repositories.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A commit planted in a history, the same `k` on both sides.
#[derive(Clone, Copy)]
enum Special {
    Dup(usize),
    Conflict(usize),
}

/// `len` commit slots with the dups spread evenly and the conflicts (when
/// `conflicts_at` is given) at those fractions of the history.
fn plan(len: usize, conflicts_at: &[(usize, usize)]) -> Vec<Option<Special>> {
    let mut slots = vec![None; len];
    let dups = (0..DUPS).map(|k| ((k + 1, DUPS + 1), Special::Dup(k)));
    let conflicts = conflicts_at.iter().enumerate().map(|(k, at)| (*at, Special::Conflict(k)));
    for ((num, den), special) in dups.chain(conflicts) {
        let mut at = len * num / den;
        while slots[at].is_some() {
            at = (at + 1) % len;
        }
        slots[at] = Some(special);
    }
    slots
}

/// File contents, 60-odd directories of 50 files, as a real crate tree.
#[derive(Clone)]
struct Files(Vec<Vec<String>>);

impl Files {
    fn new(count: usize) -> Files {
        Files((0..count).map(|f| (0..LINES).map(|l| format!("{} line {l}: original", path(f))).collect()).collect())
    }

    /// Sets one line; returns the file as a fast-import change.
    fn set(&mut self, file: usize, line: usize, text: String) -> (String, String) {
        self.0[file][line] = text;
        (path(file), self.0[file].join("\n") + "\n")
    }

    /// The one-line change a planted commit makes, and its subject. Dups are
    /// the same on both sides; conflicts differ by `side`.
    fn plant(&mut self, special: Special, side: &str) -> (String, Vec<(String, String)>) {
        // Planted files are spread over the tree, one per planted change.
        let file = |index: usize| (index + 1) * self.0.len() / (DUPS + CONFLICTS + 1);
        match special {
            Special::Dup(k) => (format!("{side}: fix {k}"), vec![self.set(file(k), DUP_LINE, format!("fix {k}"))]),
            Special::Conflict(k) => {
                (format!("{side}: conflict {k}"), vec![self.set(file(DUPS + k), CONFLICT_LINE, format!("{side} {k}"))])
            }
        }
    }
}

fn path(file: usize) -> String {
    let dir = file / 50;
    format!("crates/c{}/src/m{}/f{:02}.rs", dir / 10, dir % 10, file % 50)
}

/// Upstream: `v1.0.0` with every file, then random edits with the dups and
/// the conflict triggers planted among them, tagged `v2.0.0`.
fn upstream_stream(sizes: &Sizes, base: &Files) -> FastImport {
    let mut files = base.clone();
    let mut stream = FastImport::new(1_700_000_000, 60);
    let all: Vec<(String, String)> = (0..sizes.files).map(|f| (path(f), files.0[f].join("\n") + "\n")).collect();
    stream.commit("refs/heads/main", None, &UPSTREAM, "initial import", &all);
    stream.reset("refs/tags/v1.0.0", "refs/heads/main");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (c, slot) in plan(sizes.upstream_commits, &[(1, 4), (2, 4)]).into_iter().enumerate() {
        let (message, changes) = match slot {
            Some(special) => files.plant(special, "upstream"),
            None => {
                let changes = (0..=rng.below(3))
                    .map(|_| {
                        let (file, line) = (rng.below(sizes.files), rng.below(UPSTREAM_LINES));
                        files.set(file, line, format!("upstream change {c}"))
                    })
                    .collect();
                (format!("upstream: change {c}"), changes)
            }
        };
        stream.commit("refs/heads/main", None, &UPSTREAM, &message, &changes);
    }
    stream.annotated_tag("v2.0.0", "refs/heads/main", &UPSTREAM);
    stream
}

/// The fork's stack on `v1.0.0`: ordinary patches, the dups, and, when
/// `conflicts`, the two patches that collide with upstream's triggers.
fn stack_stream(stream: &mut FastImport, sizes: &Sizes, base: &Files, branch: &str, v1: &str, conflicts: bool) {
    let mut files = base.clone();
    let conflicts_at: &[(usize, usize)] = if conflicts { &[(3, 5), (4, 5)] } else { &[] };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut used = HashSet::new();
    for (i, slot) in plan(sizes.patches, conflicts_at).into_iter().enumerate() {
        let (message, changes) = match slot {
            Some(special) => files.plant(special, "fork"),
            None => {
                let (want, mut changes) = (1 + rng.below(2), Vec::new());
                while changes.len() < want {
                    let (file, line) = (rng.below(sizes.files), PATCH_SLOTS[rng.below(PATCH_SLOTS.len())]);
                    if used.insert((file, line)) {
                        changes.push(files.set(file, line, format!("fork patch {i}")));
                    }
                }
                (format!("fork: patch {i}"), changes)
            }
        };
        let from = if i == 0 { Some(v1) } else { None };
        stream.commit(&format!("refs/heads/{branch}"), from, &FORK, &message, &changes);
    }
}

/// The comparison side's git: the fixture kit's, which runs it as
/// patchmoi's own wrapper does (hooks, signing and auto-gc off, a fixed
/// identity and clock).
fn repo(dir: &Path) -> FixtureRepo {
    let bench = Person::new("Bench", "bench@example.com");
    FixtureRepo::open(dir, Clock::starting_at(EPOCH)).with_author(bench.clone()).with_committer(bench)
}

/// Builds upstream (bare) and the fork template: `v1.0.0`, branches
/// `patches` (clean) and `patches-conflict`, `patches` checked out.
fn build(sizes: &Sizes, root: &Path) -> Result<()> {
    let (upstream_dir, fork_dir) = (root.join("upstream"), root.join("fork"));
    let base = Files::new(sizes.files);
    let upstream =
        FixtureRepo::init_with(&upstream_dir, Init { bare: true, ..Init::default() }, Clock::starting_at(EPOCH))?;
    upstream.fast_import(&upstream_stream(sizes, &base))?;
    // Fully repacked, as a hosting server keeps it, so fetches cost what they would.
    upstream.git(&["repack", "-adq"])?;
    let fork = FixtureRepo::init_with(&fork_dir, Init::default(), Clock::starting_at(EPOCH))?;
    let upstream_url = upstream_dir.to_str().context("temp path is not UTF-8")?;
    fork.fetch_tag(upstream_url, "v1.0.0")?;
    let v1 = fork.rev("v1.0.0^{commit}")?;
    let mut stream = FastImport::new(1_800_000_000, 60);
    stack_stream(&mut stream, sizes, &base, "patches", &v1, false);
    stack_stream(&mut stream, sizes, &base, "patches-conflict", &v1, true);
    fork.fast_import(&stream)?;
    fork.git(&["checkout", "--quiet", "patches"])?;
    Ok(())
}

/// A fresh copy of the fork template, with `branch` checked out and the
/// index refreshed (a copy changes inodes; git would rehash every file).
fn copy_fork(root: &Path, dir: &Path, branch: &str) -> Result<()> {
    let status = Command::new("cp").arg("-a").arg(root.join("fork")).arg(dir).status()?;
    if !status.success() {
        bail!("failed to copy the fork to {}", dir.display());
    }
    repo(dir).git(&["checkout", "--quiet", branch])?;
    repo(dir).git(&["update-index", "-q", "--refresh"])?;
    Ok(())
}

fn timed<T>(work: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let value = work()?;
    Ok((start.elapsed(), value))
}

#[derive(Default)]
struct Samples {
    fetch: Vec<Duration>,
    git: Vec<Duration>,
    /// patchmoi with the release's objects already here, as git had them.
    patchmoi: Vec<Duration>,
    /// patchmoi fetching the release itself.
    cold: Vec<Duration>,
}

fn median(samples: &[Duration]) -> f64 {
    let mut secs: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    secs[secs.len() / 2]
}

/// One measurement of each side for `branch`, on fresh copies of the fork:
/// `git rebase` and patchmoi each after the same fetch of the tag, and
/// patchmoi once more on a copy without it, fetching it itself.
fn measure(root: &Path, run_no: usize, branch: &str, samples: &mut Samples) -> Result<Vec<Measured>> {
    let upstream = root.join("upstream").to_str().context("temp path is not UTF-8")?.to_string();
    let dirs = ["git", "patchmoi", "cold"].map(|side| root.join(format!("{side}-{run_no}")));
    let [git_dir, patchmoi_dir, cold_dir] = &dirs;
    for dir in &dirs {
        copy_fork(root, dir, branch)?;
    }
    let tag = "refs/tags/v2.0.0:refs/tags/v2.0.0";
    let git_side = repo(git_dir);
    let (fetch, _) = timed(|| git_side.git(&["fetch", "--quiet", "--no-tags", &upstream, tag]))?;
    repo(patchmoi_dir).git(&["fetch", "--quiet", "--no-tags", &upstream, tag])?;
    let (git_time, out) = timed(|| git_side.git_output(&["rebase", "--onto", "v2.0.0", "v1.0.0", branch]))?;
    let (git_tree, git_commits, git_stop) = if out.status.success() {
        let count = git_side.git(&["rev-list", "--count", "v2.0.0..HEAD"])?.parse()?;
        (Some(git_side.rev("HEAD^{tree}")?), count, None)
    } else {
        (None, 0, Some(git_side.git(&["log", "-1", "--format=%s", "REBASE_HEAD"])?))
    };
    let (remote, tag, candidate) = ("origin".into(), "v2.0.0".into(), "patchmoi/v2.0.0".into());
    let spec = StackSpec { upstream, branch: branch.into(), remote, tag, candidate, options: StackOptions::default() };
    let mut measured = Vec::new();
    for (dir, times) in [(patchmoi_dir, &mut samples.patchmoi), (cold_dir, &mut samples.cold)] {
        let (took, outcome) = timed(|| rebase(&Git::open(dir)?, &spec))?;
        times.push(took);
        let tree = match &outcome {
            RebaseOutcome::Clean { candidate, .. } => Some(repo(dir).rev(&format!("{}^{{tree}}", candidate.sha))?),
            _ => None,
        };
        let (git_tree, git_stop) = (git_tree.clone(), git_stop.clone());
        measured.push(Measured { git_tree, git_commits, git_stop, outcome, tree });
    }
    samples.fetch.push(fetch);
    samples.git.push(git_time);
    for dir in &dirs {
        std::fs::remove_dir_all(dir).with_context(|| format!("failed to remove {}", dir.display()))?;
    }
    Ok(measured)
}

/// What each side made of the same stack.
struct Measured {
    git_tree: Option<String>,
    git_commits: usize,
    /// Subject of the patch `git rebase` stopped at.
    git_stop: Option<String>,
    outcome: RebaseOutcome,
    /// The candidate's tree.
    tree: Option<String>,
}

/// What the fixture planted, checked on both sides; empty means OK.
fn check(sizes: &Sizes, m: &Measured) -> Vec<String> {
    let mut wrong = Vec::new();
    match &m.outcome {
        RebaseOutcome::Clean { carried, dropped, .. } => {
            if m.tree.is_none() || m.tree != m.git_tree {
                wrong.push(format!("candidate tree {:?}, git rebase made {:?}", m.tree, m.git_tree));
            }
            if (carried.len(), dropped.len(), m.git_commits) != (sizes.patches - DUPS, DUPS, sizes.patches - DUPS) {
                wrong.push(format!("carried {}, dropped {}, git kept {}", carried.len(), dropped.len(), m.git_commits));
            }
        }
        RebaseOutcome::Conflicted { report, .. } => {
            if report.patch.subject != "fork: conflict 0" || m.git_stop.as_deref() != Some("fork: conflict 0") {
                wrong.push(format!("stopped at {:?}, git at {:?}", report.patch.subject, m.git_stop));
            }
            if report.culprit.as_ref().map(|c| c.subject.as_str()) != Some("upstream: conflict 0") {
                wrong.push(format!("culprit {:?}", report.culprit));
            }
            let surveyed: Vec<&str> = report.survey.iter().map(|entry| entry.subject.as_str()).collect();
            if surveyed != ["fork: conflict 0", "fork: conflict 1"] {
                wrong.push(format!("survey {surveyed:?}"));
            }
        }
        other => wrong.push(format!("unexpected outcome {other:?}")),
    }
    wrong
}

fn main() -> Result<()> {
    // The user's global and system config could change either side (signing,
    // rerere, autosquash); both sides run with none. Set before any thread.
    std::env::set_var("GIT_CONFIG_GLOBAL", "/dev/null");
    std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let sizes = sizes()?;
    let root = tempfile::Builder::new().prefix("patchmoi-bench-").tempdir()?;
    let (took, _) = timed(|| build(&sizes, root.path()))?;
    let Sizes { files, upstream_commits, patches, .. } = sizes;
    eprintln!("fixture: {files} files, {upstream_commits} upstream commits, {patches} patches ({DUPS} upstreamed)");
    eprintln!("conflict branch: {CONFLICTS} of them conflict; built in {:.1} s", took.as_secs_f64());
    let scenarios = [("clean", "patches", 5.0), ("conflict report", "patches-conflict", 0.5)];
    let mut results: Vec<(Samples, Vec<String>)> = scenarios.iter().map(|_| Default::default()).collect();
    for run_no in 0..sizes.runs {
        for ((name, branch, _), (samples, wrong)) in scenarios.iter().zip(&mut results) {
            for measured in measure(root.path(), run_no, branch, samples)? {
                wrong.extend(check(&sizes, &measured));
            }
            let secs = |times: &[Duration]| times[run_no].as_secs_f64();
            let (git, patchmoi, cold) = (secs(&samples.git), secs(&samples.patchmoi), secs(&samples.cold));
            eprintln!(
                "run {}: {name}: git rebase {git:.2} s, patchmoi {patchmoi:.2} s ({cold:.2} s fetching)",
                run_no + 1
            );
        }
    }
    println!("\nmedians of {} runs", sizes.runs);
    println!(
        "{:<16} {:>11} {:>9} {:>7} {:>10} {:>14} {:>8} {:>8} {:>4} {:>6}",
        "scenario", "git rebase", "patchmoi", "ratio", "git fetch", "patchmoi+fetch", "ratio", "target", "met", "check"
    );
    let mut failed = false;
    for ((name, _, target), (samples, wrong)) in scenarios.iter().zip(&results) {
        let (fetch, git, patchmoi) = (median(&samples.fetch), median(&samples.git), median(&samples.patchmoi));
        let cold = median(&samples.cold);
        // Rebase against rebase, the release's objects already fetched on
        // both sides; then each with its fetch of the tag.
        let ratio = git / patchmoi;
        println!(
            "{name:<16} {git:>9.2} s {patchmoi:>7.2} s {ratio:>6.2}x {fetch:>8.2} s {cold:>12.2} s {:>7.2}x {:>8} {:>4} {:>6}",
            (fetch + git) / cold,
            format!(">={target}x"),
            if ratio >= *target { "yes" } else { "no" },
            if wrong.is_empty() { "OK" } else { "MISMATCH" },
        );
        for problem in wrong {
            println!("  {name}: {problem}");
        }
        failed |= !wrong.is_empty();
    }
    if std::env::var_os("PATCHMOI_BENCH_KEEP").is_some() {
        eprintln!("fixture kept in {}", root.keep().display());
    }
    if failed {
        bail!("patchmoi's results differ from what the fixture expects");
    }
    Ok(())
}
