//! patchmoi against `git rebase <tag>` on generated stacks: a seeded
//! generator builds an upstream history and a fork stack of real-shaped
//! commits (edits that may conflict, cherry-picks of release commits,
//! reverts, renames, deletes, binary files, modes, symlinks, `.gitattributes`
//! merge rules, a sync merge of upstream, empty commits), then compares the result tree, the dropped
//! list, the stopping patch, its conflicted paths and index stages.
//!
//! CI runs a few stacks; `PATCHMOI_DIFF_STACKS=300 cargo test --test it
//! differential -- --nocapture` runs more and prints `N/N agree`
//! (`PATCHMOI_DIFF_SEED` picks the first seed).

use std::collections::BTreeSet;

use crate::common;

use common::{lines, Fixture, Repo};

/// Stacks per CI run: enough to cover every kind of commit, under ~20 s.
const CI_STACKS: u64 = 12;

/// splitmix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a String {
        &items[self.below(items.len())]
    }
}

fn text_files(repo: &Repo) -> Vec<String> {
    repo.git(&["ls-files", "*.txt"]).lines().map(str::to_string).collect()
}

/// One change of the kinds both sides make; returns its label.
fn change(repo: &Repo, rng: &mut Rng, who: &str, n: usize) -> String {
    let files = text_files(repo);
    match rng.below(9) {
        0..=2 if !files.is_empty() => {
            let file = rng.pick(&files).clone();
            let mut text: Vec<String> = repo.read(&file).lines().map(str::to_string).collect();
            if text.is_empty() {
                text.push(String::new());
            }
            let at = rng.below(text.len());
            text[at] = format!("{who} {n}");
            repo.write(&file, &(text.join("\n") + "\n"));
            format!("edit {file}")
        }
        3 if files.len() > 2 => {
            let file = rng.pick(&files).clone();
            repo.git(&["rm", "--quiet", &file]);
            format!("delete {file}")
        }
        4 if !files.is_empty() => {
            let file = rng.pick(&files).clone();
            repo.git(&["mv", &file, &format!("{who}-moved-{n}.txt")]);
            format!("rename {file}")
        }
        5 => {
            repo.write("bin.dat", &format!("\0{who} {n}\n"));
            "binary".into()
        }
        6 => {
            let mode = if rng.below(2) == 0 { "+x" } else { "-x" };
            repo.git(&["update-index", &format!("--chmod={mode}"), "tool.sh"]);
            format!("mode {mode}")
        }
        7 => {
            // Attributes that change how later merges go: `git rebase`
            // reads them from the state each patch lands on.
            let rules = ["*.txt merge=union\n", "f1.txt merge=union\nf2.txt merge=binary\n", "f3.txt -merge\n", ""];
            let rule = rules[rng.below(rules.len())];
            if rule.is_empty() {
                let _ = std::fs::remove_file(repo.dir.join(".gitattributes"));
            } else {
                repo.write(".gitattributes", rule);
            }
            "attributes".into()
        }
        _ => {
            let link = repo.dir.join("link");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("target-{who}-{n}"), &link).unwrap();
            "symlink".into()
        }
    }
}

fn commit_change(repo: &Repo, rng: &mut Rng, who: &str, n: usize) {
    let label = change(repo, rng, who, n);
    repo.git(&["add", "--all"]);
    repo.git(&["commit", "--quiet", "--allow-empty", "-m", &format!("{who} {n}: {label}")]);
}

/// Builds one history from `seed`; returns the fixture.
fn generate(seed: u64) -> Fixture {
    let mut rng = Rng(seed);
    let mut initial: Vec<(String, String)> =
        (0..5).map(|i| (format!("f{i}.txt"), lines(&format!("f{i}"), 8))).collect();
    initial.push(("bin.dat".into(), "\0binary\n".into()));
    initial.push(("tool.sh".into(), "echo tool\n".into()));
    let files: Vec<(&str, &str)> = initial.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let fx = Fixture::new(&files);
    for repo in [&fx.upstream, &fx.fork] {
        std::os::unix::fs::symlink("f0.txt", repo.dir.join("link")).unwrap();
    }
    fx.upstream.git(&["add", "link"]);
    fx.upstream.git(&["commit", "--quiet", "-m", "link"]);
    fx.upstream.git(&["tag", "-f", "v1.0.0"]);
    fx.fork.git(&["fetch", "--quiet", "--force", "origin", "refs/tags/v1.0.0:refs/tags/v1.0.0"]);
    fx.fork.git(&["reset", "--quiet", "--hard", "v1.0.0"]);

    for n in 1..=2 + rng.below(4) {
        commit_change(&fx.upstream, &mut rng, "upstream", n);
    }
    // Merge rules only the release has, or only the maintainer's checkout
    // (the fork's last patch): `git rebase` reads neither from the checkout.
    let (union_upstream, union_fork) = (rng.below(4) == 0, rng.below(4) == 0);
    if union_upstream {
        fx.upstream.commit("upstream: union merges", &[(".gitattributes", "*.txt merge=union\n")]);
    }
    fx.upstream.git(&["tag", "v2"]);
    fx.fork.git(&["fetch", "--quiet", "origin", "main"]);
    let released: Vec<String> =
        fx.fork.git(&["rev-list", "--reverse", "v1.0.0..origin/main"]).lines().map(str::to_string).collect();
    let mut merged = false;
    for n in 1..=2 + rng.below(5) {
        let label = format!("fork {n}");
        match rng.below(10) {
            0 => {
                let pick = rng.pick(&released).clone();
                if !fx.fork.git_output(&["cherry-pick", "--allow-empty", &pick]).status.success() {
                    fx.fork.git(&["cherry-pick", "--abort"]);
                    commit_change(&fx.fork, &mut rng, "fork", n);
                } else {
                    fx.fork.git(&["commit", "--quiet", "--amend", "--allow-empty", "-m", &format!("{label}: pick")]);
                }
            }
            1 if n > 1 => {
                let message = format!("{label}: revert");
                if !fx.fork.git_output(&["revert", "--no-edit", "HEAD"]).status.success() {
                    let _ = fx.fork.git_output(&["revert", "--abort"]);
                    fx.fork.git(&["commit", "--quiet", "--allow-empty", "-m", &message]);
                } else {
                    fx.fork.git(&["commit", "--quiet", "--amend", "--allow-empty", "-m", &message]);
                }
            }
            2 => {
                fx.fork.git(&["commit", "--quiet", "--allow-empty", "-m", &format!("{label}: empty")]);
            }
            3 if !merged => {
                merged = true;
                let upto = rng.pick(&released).clone();
                if !fx.fork.git_output(&["merge", "--quiet", "--no-edit", &upto]).status.success() {
                    fx.fork.git(&["merge", "--abort"]);
                }
                commit_change(&fx.fork, &mut rng, "fork", n);
            }
            _ => commit_change(&fx.fork, &mut rng, "fork", n),
        }
    }
    if union_fork {
        fx.fork.commit("fork: union merges", &[(".gitattributes", "f0.txt merge=union\nf1.txt merge=union\n")]);
    }
    // patchmoi's own drops (by provenance, regenerated files) are
    // documented differences from `git rebase`: off here.
    let yaml = format!(
        "name: fork\non:\n  type: upstream.release\n  payload: {{repo: test/upstream, tag: \"v*\"}}\n\
         stack:\n  upstream: {}\n  branch: patches\n  provenance: false\nsteps:\n  - name: rebase\n    uses: rebase\n",
        fx.upstream.path_str()
    );
    fx.install_flow("fork", &yaml);
    fx
}

fn subjects(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| p["subject"].as_str().unwrap().into())
        .collect()
}

/// Compares patchmoi with `git rebase v2` on one history; Err says how they differ.
fn compare(seed: u64) -> Result<Outcome, String> {
    let fx = generate(seed);
    let check = Repo { dir: fx.tmp.path().join("check") };
    fx.fork.git(&["clone", "--quiet", "--branch", "patches", fx.fork.path_str(), check.dir.to_str().unwrap()]);
    check.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v2:refs/tags/v2"]);
    let stack: BTreeSet<String> =
        check.git(&["log", "--no-merges", "--format=%s", "v2..patches"]).lines().map(str::to_string).collect();
    let contains_release = check.git_output(&["merge-base", "--is-ancestor", "v2", "patches"]).status.success();
    let git_clean = check.git_output(&["rebase", "--quiet", "v2"]).status.success();
    let git_carried: Vec<String> =
        check.git(&["log", "--reverse", "--format=%s", "v2..HEAD"]).lines().map(str::to_string).collect();

    // A third of the histories have the release's tag in the fork already:
    // the run works ahead on it while its fetch confirms it
    // (`engine::ahead`). A third have a tag of that name of the fork's own
    // (on the branch's second commit): the work ahead is on the wrong
    // commit, and must be thrown away. The results must be the same.
    match seed % 3 {
        0 => fx.fork.git(&["fetch", "--quiet", fx.upstream.path_str(), "refs/tags/v2:refs/tags/v2"]),
        1 => fx.fork.git(&["tag", "v2", "patches~1"]),
        _ => String::new(),
    };
    let run = fx.run_release("v2", &[]);
    let rebase = run.step("rebase");
    let status = rebase["status"].as_str().unwrap_or_default();
    let artifacts = &rebase["artifacts"];
    let dropped: BTreeSet<String> = artifacts["dropped"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|drop| drop["reason"] != "merged upstream, left out")
        .map(|drop| drop["subject"].as_str().unwrap().to_string())
        .collect();
    // A documented difference: a branch that already contains the release
    // (it merged the release commit itself) is left as it is; `git rebase`
    // would still flatten it.
    if contains_release {
        return match status {
            "completed" => Ok(Outcome::ContainsRelease),
            _ => Err(format!("the branch contains v2, patchmoi says {status}: {}", rebase["message"])),
        };
    }
    if git_clean {
        if status != "changed" {
            return Err(format!("git rebase is clean, patchmoi says {status}: {}", rebase["message"]));
        }
        let carried = subjects(&artifacts["carried"]);
        if carried != git_carried {
            return Err(format!("carried {carried:?}, git rebase {git_carried:?}"));
        }
        let git_dropped: BTreeSet<String> = stack.iter().filter(|s| !git_carried.contains(s)).cloned().collect();
        if dropped != git_dropped {
            return Err(format!("dropped {dropped:?}, git rebase {git_dropped:?}"));
        }
        let sha = artifacts["candidateRefs"][0]["sha"].as_str().unwrap();
        if fx.fork.rev(&format!("{sha}^{{tree}}")) != check.rev("HEAD^{tree}") {
            return Err("the result trees differ".into());
        }
        return Ok(Outcome::Clean);
    }
    if status != "needs_intervention" {
        return Err(format!("git rebase stops, patchmoi says {status}: {}", rebase["message"]));
    }
    let report = &artifacts["conflict"];
    let git_stop = check.git(&["log", "-1", "--format=%s", "REBASE_HEAD"]);
    if report["patch"]["subject"] != git_stop.as_str() {
        return Err(format!("stopped at {}, git rebase at {git_stop:?}", report["patch"]["subject"]));
    }
    let applied = subjects(&report["applied"]);
    if applied != git_carried {
        return Err(format!("applied {applied:?} before the stop, git rebase {git_carried:?}"));
    }
    let stopped = std::fs::read_to_string(fx.state_dir().join("stopped/fork-v2.json")).map_err(|e| e.to_string())?;
    let stopped: serde_json::Value = serde_json::from_str(&stopped).unwrap();
    let mut stages: Vec<String> = stopped["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}\t{}",
                e["mode"].as_str().unwrap(),
                e["oid"].as_str().unwrap(),
                e["stage"],
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    stages.sort();
    let mut git_stages: Vec<String> = check.git(&["ls-files", "-u"]).lines().map(str::to_string).collect();
    git_stages.sort();
    if stages != git_stages {
        return Err(format!("index stages {stages:#?}, git rebase {git_stages:#?}"));
    }
    Ok(Outcome::Stopped)
}

/// How a history that agrees came out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Clean,
    Stopped,
    /// The branch merged the release itself: up to date (a documented difference).
    ContainsRelease,
}

fn run_stacks(count: u64) {
    let first: u64 = std::env::var("PATCHMOI_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let (mut failures, mut outcomes) = (Vec::new(), Vec::new());
    for seed in first..first + count {
        match compare(seed) {
            Ok(outcome) => outcomes.push(outcome),
            Err(why) => failures.push(format!("seed {seed}: {why}")),
        }
    }
    let of = |kind: Outcome| outcomes.iter().filter(|outcome| **outcome == kind).count();
    println!(
        "{}/{count} agree ({} clean, {} stop on a conflict, {} already contain the release)",
        outcomes.len(),
        of(Outcome::Clean),
        of(Outcome::Stopped),
        of(Outcome::ContainsRelease)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn generated_stacks_agree_with_git_rebase() {
    let count = std::env::var("PATCHMOI_DIFF_STACKS").ok().and_then(|s| s.parse().ok()).unwrap_or(CI_STACKS);
    run_stacks(count);
}
