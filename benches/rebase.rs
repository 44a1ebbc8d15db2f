//! Speed benchmark: patchmoi's in-memory rebase against plain `git rebase
//! --onto <tag>`, side by side in one run, on generated repositories of three
//! sizes (the matrix): demo-size (8 files, a 3-patch stack),
//! ripgrep-size (100 files, 2,000 upstream commits, stacks of 4 and 45) and
//! codex-size (3,000 files, 3,500 upstream commits, stacks of 45 and 200),
//! each stack clean and with patches that conflict with upstream.
//!
//! The `git rebase` side is `git rebase v2.0.0 <branch>`, the rebase
//! patchmoi does (and the differential test compares with): the release is
//! the upstream, so git's cherry-pick detection looks for each patch in it.
//! `git rebase --onto v2.0.0 v1.0.0` is also timed, for reference: it looks
//! for no patch in the release (its upstream is the old one) and is cheaper
//! on long upstream histories.
//!
//! Each run copies the fork for each side, fetches the tag into the copies, and runs
//! each side in a process of its own (this benchmark, re-executed as
//! `child`), so that its peak memory (getrusage: the process and the git
//! processes it waited for) is its own; the order of the sides rotates from run to run, each after a `sync`.
//! patchmoi runs as `uses: rebase` does: its own fetch of the tag (nothing
//! to transfer) and, on a conflict, the full report (culprits and survey),
//! where `git rebase` stops at the first conflict.
//!
//! A second table gives each side its fetch of the tag: `git fetch` of the
//! tag then `git rebase` (both timed, one process after the other) against
//! patchmoi on a third copy without the tag, fetching it itself.
//!
//! A third table gives, for each clean row, the floor of a run that keeps
//! git's cherry-pick walk and git's merges: the two run alone on a fourth
//! copy (CPU seconds each, `getrusage`), and their sum spread over the
//! machine's cores, with the ratio to `git rebase` such a run would reach.
//! The first table's "ours CPU" is patchmoi's own, with its git processes.
//!
//! Speed targets are reported as ratios, not asserted: timings depend on the
//! machine, ratios much less. Correctness is checked and fails the run: the
//! candidate's tree must equal the tree `git rebase` made, both must stop at
//! the same patch, and the report must name what the fixture planted.
//!
//! `cargo bench --bench rebase`. Knobs: PATCHMOI_BENCH_SHAPES (default
//! `demo,ripgrep,codex`), PATCHMOI_BENCH_RUNS (default 5), and for the codex
//! shape PATCHMOI_BENCH_FILES, PATCHMOI_BENCH_UPSTREAM_COMMITS,
//! PATCHMOI_BENCH_PATCHES. `RUST_LOG=patchmoi=debug` logs every git command
//! patchmoi runs, numbered, with times; PATCHMOI_BENCH_KEEP=1 keeps the
//! fixtures for profiling by hand.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use patchmoi::engine::stack::{rebase, RebaseOutcome, StackOptions, StackSpec};
use patchmoi::git::fixture::{Clock, FastImport, FixtureRepo, Init, Person, EPOCH};
use patchmoi::git::{spawned, Git};
use serde::{Deserialize, Serialize};

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

/// `len` commit slots with `dups` dups spread evenly and the conflicts at
/// the fractions `conflicts_at` of the history.
fn plan(len: usize, dups: usize, conflicts_at: &[(usize, usize)]) -> Vec<Option<Special>> {
    let mut slots = vec![None; len];
    let dups = (0..dups).map(|k| ((k + 1, dups + 1), Special::Dup(k)));
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

/// One history shape: an upstream tree and history, and the fork's stacks on it.
struct Shape {
    name: &'static str,
    files: usize,
    upstream_commits: usize,
    stacks: Vec<Stack>,
}

/// A stack of the fork on `v1.0.0`, measured clean and with `conflicts`
/// of its patches colliding with upstream.
#[derive(Clone, Copy)]
struct Stack {
    /// The size class, as the table names it.
    label: &'static str,
    patches: usize,
    /// Patches upstream also has (dropped by both sides).
    dups: usize,
    conflicts: usize,
}

impl Stack {
    fn branch(&self, conflicts: bool) -> String {
        format!("p{}{}", self.patches, if conflicts { "-conflict" } else { "" })
    }
}

fn var(name: &str, default: usize, min: usize) -> Result<usize> {
    let value = std::env::var(name).map_or(Ok(default), |text| text.parse().with_context(|| name.to_string()))?;
    Ok(value.max(min))
}

/// The matrix: demo-size, ripgrep-size and codex-size histories, each with
/// a small and a long stack. PATCHMOI_BENCH_SHAPES (`demo,ripgrep,codex`)
/// picks some; the codex shape's sizes follow PATCHMOI_BENCH_FILES,
/// PATCHMOI_BENCH_UPSTREAM_COMMITS and PATCHMOI_BENCH_PATCHES.
fn shapes() -> Result<Vec<Shape>> {
    let small = |label, patches, dups, conflicts| Stack { label, patches, dups, conflicts };
    let all = vec![
        Shape { name: "demo", files: 8, upstream_commits: 30, stacks: vec![small("3", 3, 0, 1)] },
        Shape {
            name: "ripgrep",
            files: 100,
            upstream_commits: 2000,
            stacks: vec![small("1-5", 4, 1, 1), small("31-60", 45, 3, 2)],
        },
        Shape {
            name: "codex",
            // Below 20 the planted commits no longer fit between ordinary ones.
            files: var("PATCHMOI_BENCH_FILES", 3000, 20)?,
            upstream_commits: var("PATCHMOI_BENCH_UPSTREAM_COMMITS", 3500, 20)?,
            stacks: vec![small("31-60", 45, 3, 2), small("200", var("PATCHMOI_BENCH_PATCHES", 200, 20)?, DUPS, 2)],
        },
    ];
    let wanted = std::env::var("PATCHMOI_BENCH_SHAPES").unwrap_or_else(|_| "demo,ripgrep,codex".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    Ok(all.into_iter().filter(|shape| wanted.contains(&shape.name)).collect())
}

/// Upstream: `v1.0.0` with every file, then random edits with the dups and
/// the conflict triggers planted among them, tagged `v2.0.0`.
fn upstream_stream(shape: &Shape, base: &Files) -> FastImport {
    let mut files = base.clone();
    let mut stream = FastImport::new(1_700_000_000, 60);
    let all: Vec<(String, String)> = (0..shape.files).map(|f| (path(f), files.0[f].join("\n") + "\n")).collect();
    stream.commit("refs/heads/main", None, &UPSTREAM, "initial import", &all);
    stream.reset("refs/tags/v1.0.0", "refs/heads/main");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (c, slot) in plan(shape.upstream_commits, DUPS, &[(1, 4), (2, 4)]).into_iter().enumerate() {
        let (message, changes) = match slot {
            Some(special) => files.plant(special, "upstream"),
            None => {
                let changes = (0..=rng.below(3))
                    .map(|_| {
                        let (file, line) = (rng.below(shape.files), rng.below(UPSTREAM_LINES));
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

/// A fork stack on `v1.0.0`: ordinary patches, the dups, and, when
/// `conflicts`, the patches that collide with upstream's triggers.
fn stack_stream(stream: &mut FastImport, files: usize, stack: &Stack, base: &Files, v1: &str, conflicts: bool) {
    let mut contents = base.clone();
    let conflicts_at: &[(usize, usize)] = match (conflicts, stack.conflicts) {
        (false, _) | (true, 0) => &[],
        (true, 1) => &[(1, 2)],
        (true, _) => &[(3, 5), (4, 5)],
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut used = HashSet::new();
    for (i, slot) in plan(stack.patches, stack.dups, conflicts_at).into_iter().enumerate() {
        let (message, changes) = match slot {
            Some(special) => contents.plant(special, "fork"),
            None => {
                let (want, mut changes) = (1 + rng.below(2), Vec::new());
                while changes.len() < want {
                    let (file, line) = (rng.below(files), PATCH_SLOTS[rng.below(PATCH_SLOTS.len())]);
                    if used.insert((file, line)) {
                        changes.push(contents.set(file, line, format!("fork patch {i}")));
                    }
                }
                (format!("fork: patch {i}"), changes)
            }
        };
        let from = if i == 0 { Some(v1) } else { None };
        stream.commit(&format!("refs/heads/{}", stack.branch(conflicts)), from, &FORK, &message, &changes);
    }
}

/// The comparison side's git: the fixture kit's, which runs it as
/// patchmoi's own wrapper does (hooks, signing and auto-gc off, a fixed
/// identity and clock).
fn repo(dir: &Path) -> FixtureRepo {
    let bench = Person::new("Bench", "bench@example.com");
    FixtureRepo::open(dir, Clock::starting_at(EPOCH)).with_author(bench.clone()).with_committer(bench)
}

/// Builds upstream (bare) and the fork template under `root`: `v1.0.0`, one
/// branch per stack and variant, the first checked out.
fn build(shape: &Shape, root: &Path) -> Result<()> {
    let (upstream_dir, fork_dir) = (root.join("upstream"), root.join("fork"));
    let base = Files::new(shape.files);
    let upstream =
        FixtureRepo::init_with(&upstream_dir, Init { bare: true, ..Init::default() }, Clock::starting_at(EPOCH))?;
    upstream.fast_import(&upstream_stream(shape, &base))?;
    // Fully repacked, as a hosting server keeps it, so fetches cost what they would.
    upstream.git(&["repack", "-adq"])?;
    let fork = FixtureRepo::init_with(&fork_dir, Init::default(), Clock::starting_at(EPOCH))?;
    let upstream_url = upstream_dir.to_str().context("temp path is not UTF-8")?;
    fork.fetch_tag(upstream_url, "v1.0.0")?;
    let v1 = fork.rev("v1.0.0^{commit}")?;
    let mut stream = FastImport::new(1_800_000_000, 60);
    for stack in &shape.stacks {
        for conflicts in [false, true] {
            stack_stream(&mut stream, shape.files, stack, &base, &v1, conflicts);
        }
    }
    fork.fast_import(&stream)?;
    fork.git(&["checkout", "--quiet", &shape.stacks[0].branch(false)])?;
    // As a clone would have it: packed, so both sides read the same packs.
    fork.git(&["repack", "-adq"])?;
    Ok(())
}

/// A fresh copy of the fork template, with `branch` checked out and the
/// index refreshed (a copy changes inodes; git would rehash every file),
/// and, when `fetch`, the release's tag fetched, as both sides of the
/// rebase-against-rebase comparison start from it. Returns how long that
/// fetch took (zero without it).
fn copy_fork(root: &Path, dir: &Path, branch: &str, fetch: bool) -> Result<f64> {
    let status = Command::new("cp").arg("-a").arg(root.join("fork")).arg(dir).status()?;
    if !status.success() {
        bail!("failed to copy the fork to {}", dir.display());
    }
    let fork = repo(dir);
    fork.git(&["checkout", "--quiet", branch])?;
    fork.git(&["update-index", "-q", "--refresh"])?;
    if !fetch {
        return Ok(0.0);
    }
    let upstream = root.join("upstream");
    let upstream = upstream.to_str().context("temp path is not UTF-8")?;
    let start = Instant::now();
    fork.git(&["fetch", "--quiet", "--no-tags", upstream, "refs/tags/v2.0.0:refs/tags/v2.0.0"])?;
    Ok(start.elapsed().as_secs_f64())
}

/// What one side made of a stack, measured in a process of its own (so
/// that its peak memory is its own), printed as one JSON line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sample {
    secs: f64,
    /// Peak resident memory, KiB: the largest of the process and the git
    /// processes it ran.
    max_rss_kib: i64,
    /// git processes started (patchmoi's side only).
    spawned: usize,
    /// CPU seconds, user and system, of the process and the git processes
    /// it ran, over the measured part.
    cpu_secs: f64,
    /// The floor side's: CPU seconds of git's cherry-pick walk and of `git
    /// replay` of the stack, each run alone; None when git replay could
    /// not take the stack.
    floor: Option<(f64, f64)>,
    /// The final tree when clean.
    tree: Option<String>,
    carried: usize,
    dropped: usize,
    /// Subject of the patch it stopped at.
    stop: Option<String>,
    culprit: Option<String>,
    survey: Vec<String>,
    /// Anything else (blocked, up to date).
    other: Option<String>,
}

/// This process's own peak, KiB. Not getrusage(RUSAGE_SELF): that counts
/// the memory of the process that started this one (the benchmark, with
/// the fixtures it built) from before the exec.
fn own_peak_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:")).unwrap_or_default();
    line.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)
}

/// `getrusage(who)`; None when it fails.
fn usage(who: i32) -> Option<libc::rusage> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    (unsafe { libc::getrusage(who, &mut usage) } == 0).then_some(usage)
}

/// The largest peak of the git processes this process waited for, KiB.
fn max_rss_kib(who: i32) -> i64 {
    usage(who).map_or(0, |usage| usage.ru_maxrss)
}

/// CPU seconds (user and system) of this process and of the git
/// processes it waited for, so far.
fn cpu_secs() -> f64 {
    let time = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let secs = |who| usage(who).map_or(0.0, |usage| time(usage.ru_utime) + time(usage.ru_stime));
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// The floor side: the two steps of a clean run that patchmoi leaves to
/// git, each run alone on this copy, CPU seconds each: git's cherry-pick
/// walk of `v2.0.0...<branch>` (the one `git rebase v2.0.0` runs too) and
/// `git replay` of the whole stack onto the release, writing into an
/// object directory of its own, uncompressed, in memory where there is
/// one, as patchmoi's quarantine does. Whatever patchmoi does besides,
/// its run cannot take less than their sum over the machine's cores.
fn run_floor(dir: &Path, branch: &str) -> Result<Sample> {
    let git = repo(dir);
    let range = format!("v2.0.0...{branch}");
    let base = git.git(&["merge-base", "v2.0.0", branch])?;
    let before = cpu_secs();
    git.git(&["log", "--left-right", "--cherry-mark", "--no-merges", "--format=%m%H", &range])?;
    let walk_cpu = cpu_secs() - before;
    let objects = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
    let replay = Command::new("git")
        .current_dir(dir)
        .env("GIT_OBJECT_DIRECTORY", objects.path())
        .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", dir.join(".git/objects"))
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .args(["-c", "core.looseCompression=0", "replay", "--onto", "v2.0.0", &format!("{base}..{branch}")])
        .output()?;
    let replay_cpu = cpu_secs() - before - walk_cpu;
    if !replay.status.success() {
        // Said, and left out of the table: the other tables still print.
        eprintln!("note: git replay of {branch} failed: {}", String::from_utf8_lossy(&replay.stderr).trim());
        return Ok(Sample::default());
    }
    Ok(Sample { floor: Some((walk_cpu, replay_cpu)), cpu_secs: walk_cpu + replay_cpu, ..Sample::default() })
}

/// The measured side, run in this (child) process: `git` (`git rebase
/// v2.0.0 <branch>`, what patchmoi does: the release is the upstream, so
/// git drops what git's cherry-pick detection finds in it), `git-onto`
/// (`git rebase --onto v2.0.0 v1.0.0 <branch>`: upstream is the old
/// release, so git looks for no patch in the new one and drops a patch
/// upstream has only when it becomes empty; cheaper, and not the same
/// rebase: a patch upstream made and then reverted is kept) or `patchmoi`.
fn run_side(side: &str, dir: &Path, branch: &str, upstream: &str) -> Result<Sample> {
    if side == "floor" {
        return run_floor(dir, branch);
    }
    let mut sample = Sample::default();
    let cpu = cpu_secs();
    if let Some(args) = git_rebase_args(side, branch) {
        let git = repo(dir);
        let start = Instant::now();
        let out = git.git_output(&args)?;
        sample.secs = start.elapsed().as_secs_f64();
        sample.cpu_secs = cpu_secs() - cpu;
        sample.max_rss_kib = max_rss_kib(libc::RUSAGE_CHILDREN);
        if out.status.success() {
            sample.tree = Some(git.rev("HEAD^{tree}")?);
            sample.carried = git.git(&["rev-list", "--count", "v2.0.0..HEAD"])?.parse()?;
        } else {
            sample.stop = Some(git.git(&["log", "-1", "--format=%s", "REBASE_HEAD"])?);
        }
        return Ok(sample);
    }
    let (remote, tag, candidate) = ("origin".into(), "v2.0.0".into(), "patchmoi/v2.0.0".into());
    let upstream = upstream.to_string();
    let spec = StackSpec { upstream, branch: branch.into(), remote, tag, candidate, options: StackOptions::default() };
    let (before, start) = (spawned(), Instant::now());
    let outcome = rebase(&Git::open(dir)?, &spec)?;
    sample.secs = start.elapsed().as_secs_f64();
    sample.cpu_secs = cpu_secs() - cpu;
    sample.spawned = spawned() - before;
    sample.max_rss_kib = own_peak_kib().max(max_rss_kib(libc::RUSAGE_CHILDREN));
    match outcome {
        RebaseOutcome::Clean { candidate, carried, dropped, .. } => {
            sample.tree = Some(repo(dir).rev(&format!("{}^{{tree}}", candidate.sha))?);
            (sample.carried, sample.dropped) = (carried.len(), dropped.len());
        }
        RebaseOutcome::Conflicted { report, dropped, .. } => {
            sample.dropped = dropped.len();
            sample.stop = Some(report.patch.subject.clone());
            sample.culprit = report.culprit.map(|culprit| culprit.subject);
            sample.survey = report.survey.into_iter().map(|entry| entry.subject).collect();
        }
        other => sample.other = Some(format!("{other:?}")),
    }
    Ok(sample)
}

/// The command line of a `git rebase` side, `None` for patchmoi's.
fn git_rebase_args<'a>(side: &str, branch: &'a str) -> Option<Vec<&'a str>> {
    match side {
        "git" => Some(vec!["rebase", "v2.0.0", branch]),
        "git-onto" => Some(vec!["rebase", "--onto", "v2.0.0", "v1.0.0", branch]),
        _ => None,
    }
}

/// Runs one side in a child process of this benchmark, on a fresh copy.
fn measure(side: &str, dir: &Path, branch: &str, upstream: &Path) -> Result<Sample> {
    // Each side starts with nothing left to write back from the copies made
    // for it (or from the last side): `git rebase` syncs the index it writes,
    // and behind a backlog that sync alone took 40 ms on the demo history.
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let out = Command::new(std::env::current_exe()?)
        .arg("child")
        .args([side, &dir.to_string_lossy(), branch, &upstream.to_string_lossy()])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the {side} side failed on {branch}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("the child printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("bad child output {line:?}"))
}

/// Both sides' samples for one scenario.
#[derive(Default)]
struct Samples {
    git: Vec<Sample>,
    /// `git rebase --onto v2.0.0 v1.0.0`, for reference (no target).
    onto: Vec<Sample>,
    patchmoi: Vec<Sample>,
    wrong: Vec<String>,
    /// The git side's fetch of the tag, seconds, one per run.
    git_fetch: Vec<f64>,
    /// patchmoi on a copy without the tag, fetching it itself.
    cold: Vec<Sample>,
    /// Where the cold run disagrees with git rebase or the fixture.
    cold_wrong: Vec<String>,
    /// git's own steps of a clean run, alone (clean scenarios only).
    floor: Vec<Sample>,
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(value).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Where the two sides, or the fixture's plan, disagree; empty means OK.
fn check(stack: &Stack, conflicts: bool, git: &Sample, ours: &Sample) -> Vec<String> {
    let mut wrong = Vec::new();
    if let Some(other) = &ours.other {
        wrong.push(format!("unexpected outcome {other}"));
    }
    if !conflicts {
        if ours.tree.is_none() || ours.tree != git.tree {
            wrong.push(format!("candidate tree {:?}, git rebase made {:?}", ours.tree, git.tree));
        }
        let kept = stack.patches - stack.dups;
        if (ours.carried, ours.dropped, git.carried) != (kept, stack.dups, kept) {
            wrong.push(format!("carried {}, dropped {}, git kept {}", ours.carried, ours.dropped, git.carried));
        }
        return wrong;
    }
    let first = Some("fork: conflict 0");
    if ours.stop.as_deref() != first || git.stop.as_deref() != first {
        wrong.push(format!("stopped at {:?}, git at {:?}", ours.stop, git.stop));
    }
    if ours.culprit.as_deref() != Some("upstream: conflict 0") {
        wrong.push(format!("culprit {:?}", ours.culprit));
    }
    let planted: Vec<String> = (0..stack.conflicts).map(|k| format!("fork: conflict {k}")).collect();
    if ours.survey != planted {
        wrong.push(format!("survey {:?}", ours.survey));
    }
    wrong
}

/// One row of the matrix.
struct Scenario<'a> {
    shape: &'a Shape,
    stack: Stack,
    conflicts: bool,
    samples: Samples,
}

impl Scenario<'_> {
    fn case(&self) -> &'static str {
        if self.conflicts {
            "conflict (report)"
        } else {
            "clean"
        }
    }

    /// The target, as a ratio git rebase over patchmoi, if any.
    fn target(&self) -> Option<f64> {
        match (self.shape.name, self.stack.label, self.conflicts) {
            ("codex", "200", false) => Some(20.0),
            (_, _, false) => Some(1.0),
            ("codex", "31-60", true) => Some(1.0),
            _ => None,
        }
    }
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
    let args: Vec<String> = std::env::args().collect();
    if let [_, child, side, dir, branch, upstream] = args.as_slice() {
        if child == "child" {
            let sample = run_side(side, Path::new(dir), branch, upstream)?;
            println!("{}", serde_json::to_string(&sample)?);
            return Ok(());
        }
    }
    let runs = var("PATCHMOI_BENCH_RUNS", 5, 1)?;
    let shapes = shapes()?;
    let root = tempfile::Builder::new().prefix("patchmoi-bench-").tempdir()?;
    let mut scenarios = Vec::new();
    for shape in &shapes {
        let dir = root.path().join(shape.name);
        let start = Instant::now();
        build(shape, &dir)?;
        let (files, commits) = (shape.files, shape.upstream_commits);
        let stacks: Vec<String> = shape.stacks.iter().map(|stack| stack.patches.to_string()).collect();
        eprintln!(
            "{}: {files} files, {commits} upstream commits, stacks of {} patches; built in {:.1} s",
            shape.name,
            stacks.join(" and "),
            start.elapsed().as_secs_f64()
        );
        for stack in &shape.stacks {
            for conflicts in [false, true] {
                scenarios.push(Scenario { shape, stack: *stack, conflicts, samples: Samples::default() });
            }
        }
    }
    for run_no in 0..runs {
        for scenario in &mut scenarios {
            let root = root.path().join(scenario.shape.name);
            let branch = scenario.stack.branch(scenario.conflicts);
            let dirs = ["git", "onto", "patchmoi", "cold"].map(|side| root.join(format!("{side}-{run_no}")));
            // The git side's fetch of the tag, timed: with its rebase, one
            // process after the other, it is git's run with its fetch.
            let git_fetch = copy_fork(&root, &dirs[0], &branch, true)?;
            copy_fork(&root, &dirs[1], &branch, true)?;
            copy_fork(&root, &dirs[2], &branch, true)?;
            // patchmoi's run with its fetch: a copy without the tag.
            copy_fork(&root, &dirs[3], &branch, false)?;
            // Interleaved, in an order that rotates from run to run.
            let upstream = root.join("upstream");
            let sides = ["git", "git-onto", "patchmoi", "patchmoi"];
            let mut samples: [Option<Sample>; 4] = Default::default();
            for k in 0..sides.len() {
                let i = (k + run_no) % sides.len();
                samples[i] = Some(measure(sides[i], &dirs[i], &branch, &upstream)?);
            }
            let [git, onto, ours, cold] = samples.map(|sample| sample.expect("every side ran"));
            let wrong = check(&scenario.stack, scenario.conflicts, &git, &ours);
            // The two forms may differ (a patch upstream made and reverted);
            // on these fixtures they should not: said, not failed.
            if (&onto.tree, &onto.stop) != (&git.tree, &git.stop) {
                eprintln!("note: git rebase --onto made {onto:?}, git rebase <tag> {git:?}");
            }
            let cold_wrong = check(&scenario.stack, scenario.conflicts, &git, &cold);
            eprintln!(
                "run {}: {} {} {}: git rebase {:.3} s (--onto {:.3} s), patchmoi {:.3} s ({} git processes); \
                 git fetch+rebase {:.3} s, patchmoi fetching {:.3} s{}",
                run_no + 1,
                scenario.shape.name,
                scenario.stack.label,
                scenario.case(),
                git.secs,
                onto.secs,
                ours.secs,
                ours.spawned,
                git_fetch + git.secs,
                cold.secs,
                if wrong.is_empty() && cold_wrong.is_empty() { "" } else { ", MISMATCH" }
            );
            scenario.samples.wrong.extend(wrong);
            scenario.samples.cold_wrong.extend(cold_wrong);
            scenario.samples.git.push(git);
            scenario.samples.onto.push(onto);
            scenario.samples.patchmoi.push(ours);
            scenario.samples.git_fetch.push(git_fetch);
            scenario.samples.cold.push(cold);
            for dir in &dirs {
                std::fs::remove_dir_all(dir).with_context(|| format!("failed to remove {}", dir.display()))?;
            }
            if !scenario.conflicts {
                let dir = root.join(format!("floor-{run_no}"));
                copy_fork(&root, &dir, &branch, true)?;
                scenario.samples.floor.push(measure("floor", &dir, &branch, &upstream)?);
                std::fs::remove_dir_all(&dir).with_context(|| format!("failed to remove {}", dir.display()))?;
            }
        }
    }
    print_table(&scenarios, runs);
    if std::env::var_os("PATCHMOI_BENCH_KEEP").is_some() {
        eprintln!("fixtures kept in {}", root.keep().display());
    }
    let wrong = |scenario: &Scenario| !scenario.samples.wrong.is_empty() || !scenario.samples.cold_wrong.is_empty();
    if scenarios.iter().any(wrong) {
        bail!("patchmoi's results differ from git rebase's or from what the fixture planted");
    }
    Ok(())
}

fn print_table(scenarios: &[Scenario], runs: usize) {
    println!("\nmedians of {runs} runs, each side in its own process on a fresh copy, interleaved");
    println!(
        "ratio: `git rebase v2.0.0 <branch>` over patchmoi; --onto: `git rebase --onto v2.0.0 v1.0.0`, for reference"
    );
    println!(
        "{:<8} {:>5} {:<17} {:>10} {:>9} {:>9} {:>7} {:>7} {:>4} {:>7} {:>9} {:>9} {:>5} {:>8}",
        "history",
        "stack",
        "case",
        "git rebase",
        "--onto",
        "patchmoi",
        "ratio",
        "target",
        "met",
        "git MB",
        "ours MB",
        "ours CPU",
        "procs",
        "check"
    );
    for scenario in scenarios {
        let Samples { git, onto, patchmoi, wrong, .. } = &scenario.samples;
        let (git_secs, ours_secs) = (median(git, |s| s.secs), median(patchmoi, |s| s.secs));
        let mib = |samples: &[Sample]| median(samples, |s| s.max_rss_kib as f64) / 1024.0;
        let ratio = git_secs / ours_secs;
        let (target, met) = match scenario.target() {
            Some(target) => (format!(">={target}x"), if ratio >= target { "yes" } else { "no" }),
            None => ("-".to_string(), "-"),
        };
        println!(
            "{:<8} {:>5} {:<17} {:>8.3} s {:>7.3} s {:>7.3} s {:>6.2}x {:>7} {:>4} {:>7.1} {:>9.1} {:>7.3} s {:>5} {:>8}",
            scenario.shape.name,
            scenario.stack.label,
            scenario.case(),
            git_secs,
            median(onto, |s| s.secs),
            ours_secs,
            ratio,
            target,
            met,
            mib(git),
            mib(patchmoi),
            median(patchmoi, |s| s.cpu_secs),
            median(patchmoi, |s| s.spawned as f64) as usize,
            if wrong.is_empty() { "OK" } else { "MISMATCH" },
        );
        for problem in wrong {
            println!("  {} {} {}: {problem}", scenario.shape.name, scenario.stack.label, scenario.case());
        }
    }
    print_fetch_table(scenarios, runs);
    print_floor_table(scenarios, runs);
}

/// The third table: for each clean row, what the two steps patchmoi leaves
/// to git cost alone (see [`run_floor`]), and so the least time any run
/// that keeps them could take on this machine's cores, with the ratio to
/// `git rebase` that would give. A target above that ratio cannot be met
/// while the cherry-pick walk and the merges stay git's.
fn print_floor_table(scenarios: &[Scenario], runs: usize) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "\nthe floor of a clean run: git's cherry-pick walk and git replay of the stack, each alone (CPU seconds)"
    );
    println!("(medians of {runs} runs; floor: their sum over the machine's {cores} cores, as if nothing else ran;");
    println!(" the replay takes the whole stack, the patches upstream has too: a few percent above the least)");
    println!(
        "{:<8} {:>5} {:>10} {:>10} {:>12} {:>9} {:>10} {:>8} {:>9} {:>7}",
        "history", "stack", "walk CPU", "replay CPU", "ours CPU", "floor", "git rebase", "best", "patchmoi", "target"
    );
    for scenario in scenarios.iter().filter(|scenario| !scenario.samples.floor.is_empty()) {
        let Samples { git, patchmoi, floor, .. } = &scenario.samples;
        let floor: Vec<(f64, f64)> = floor.iter().filter_map(|sample| sample.floor).collect();
        if floor.is_empty() {
            println!("{:<8} {:>5} (git replay could not take the stack)", scenario.shape.name, scenario.stack.label);
            continue;
        }
        let (walk, replay) =
            (median_of(floor.iter().map(|f| f.0).collect()), median_of(floor.iter().map(|f| f.1).collect()));
        let least = median_of(floor.iter().map(|(walk, replay)| walk + replay).collect()) / cores as f64;
        let git_secs = median(git, |s| s.secs);
        println!(
            "{:<8} {:>5} {:>8.3} s {:>8.3} s {:>10.3} s {:>7.3} s {:>8.3} s {:>7.2}x {:>8.2}x {:>7}",
            scenario.shape.name,
            scenario.stack.label,
            walk,
            replay,
            median(patchmoi, |s| s.cpu_secs),
            least,
            git_secs,
            git_secs / least,
            git_secs / median(patchmoi, |s| s.secs),
            scenario.target().map_or("-".to_string(), |target| format!(">={target}x")),
        );
    }
}

/// The second table: each side with its fetch of the tag. git's fetch and
/// rebase are medians of their sums per run; the targets are about
/// the first table.
fn print_fetch_table(scenarios: &[Scenario], runs: usize) {
    println!("\nwith each side's fetch of the tag: git fetch + git rebase against patchmoi fetching it itself");
    println!("(medians of {runs} runs; the issue's targets are rebase against rebase, in the table above)");
    println!(
        "{:<8} {:>5} {:<17} {:>9} {:>10} {:>9} {:>14} {:>7} {:>5} {:>8}",
        "history", "stack", "case", "git fetch", "git rebase", "git both", "patchmoi+fetch", "ratio", "procs", "check"
    );
    for scenario in scenarios {
        let Samples { git, git_fetch, cold, cold_wrong, .. } = &scenario.samples;
        let fetch = median_of(git_fetch.clone());
        let both = median_of(git_fetch.iter().zip(git).map(|(fetch, git)| fetch + git.secs).collect());
        let ours = median(cold, |s| s.secs);
        println!(
            "{:<8} {:>5} {:<17} {:>7.3} s {:>8.3} s {:>7.3} s {:>12.3} s {:>6.2}x {:>5} {:>8}",
            scenario.shape.name,
            scenario.stack.label,
            scenario.case(),
            fetch,
            median(git, |s| s.secs),
            both,
            ours,
            both / ours,
            median(cold, |s| s.spawned as f64) as usize,
            if cold_wrong.is_empty() { "OK" } else { "MISMATCH" },
        );
        for problem in cold_wrong {
            println!("  {} {} {} (fetching): {problem}", scenario.shape.name, scenario.stack.label, scenario.case());
        }
    }
}
