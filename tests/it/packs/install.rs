//! `pack add` and `pack doctor` with the fixture pack: the tutorial's
//! install (`--include openai-codex-bindings --include peezy-codex-fork
//! --apply`, then `doctor --json`), conflicts and overwrites, bad packs,
//! `owner/repo` sources (offline, through a test-only `insteadOf`), and the
//! lock checked against an independent implementation of codex-flows'
//! format in Node.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{copy_dir, fixture_pack, which, Workspace};
use crate::common::Repo;

const INCLUDE: [&str; 4] = ["--include", "openai-codex-bindings", "--include", "peezy-codex-fork"];

fn add(ws: &Workspace, source: &str, extra: &[&str], env: &[(&str, &str)]) -> crate::common::Run {
    let mut args = vec!["pack", "add", source];
    args.extend_from_slice(extra);
    ws.patchmoi(&args, env)
}

/// The plan's item of that name.
fn item(plan: &Value, name: &str) -> Value {
    plan["items"].as_array().unwrap().iter().find(|item| item["name"] == name).cloned().unwrap()
}

/// Every file under `dir`, relative, for "nothing changed on disk" checks.
pub(super) fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with(".git") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_tutorials_install_then_doctor_is_clean_and_codex_release_selects_both() {
    let ws = Workspace::new();
    let pack = fixture_pack();
    let plan = add(&ws, pack.to_str().unwrap(), &[&INCLUDE[..], &["--json"]].concat(), &[]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let actions: Vec<String> = plan.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!(
                "{}:{}:{}",
                item["action"].as_str().unwrap(),
                item["kind"].as_str().unwrap(),
                item["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "add:flow:openai-codex-bindings",
            "add:flow:peezy-codex-fork",
            "skip:flow:Release-Notes",
            "skip:skill:jojo-development-flow"
        ]
    );
    assert_eq!(plan.json()["apply"], false);
    assert_eq!(files(ws.root()), ["README.md"], "a plan writes nothing");

    let applied = add(&ws, pack.to_str().unwrap(), &[&INCLUDE[..], &["--apply"]].concat(), &[]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(applied.stdout.contains("mode                  apply"), "{}", applied.stdout);
    assert!(ws.root().join(".codex/flows/peezy-codex-fork/exec/update-fork.code-mode.js").is_file());
    assert!(!ws.root().join(".codex/flows/Release-Notes").exists());

    let doctor = ws.patchmoi(&["pack", "doctor", "--json"], &[]);
    assert_eq!(doctor.code, 0, "{}\n{}", doctor.stdout, doctor.stderr);
    let report = doctor.json();
    assert_eq!(report["lockExists"], true);
    assert_eq!(report["installedItems"], 2);
    assert_eq!(report["missingDestinations"], serde_json::json!([]));
    assert_eq!(report["changedDestinations"], serde_json::json!([]));

    let want =
        ["openai-codex-bindings/regenerate-bindings:bun:false", "peezy-codex-fork/rebase-patch-stack:code-mode:true"];
    assert_eq!(ws.codex_release("rust-v0.130.0", &["--dry-run"], &[]).matches(), want);
    let open = ws.codex_release("rust-v0.130.0", &["--dry-run"], &[("CODEX_FLOWS_MODE", "code-mode")]);
    assert_eq!(open.matches()[1], "peezy-codex-fork/rebase-patch-stack:code-mode:false");

    // `flows` lists both, installed from the pack, beside the repository's own.
    let listed = ws.patchmoi(&["flows", "--json"], &[]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let flows = listed.json()["flows"].as_array().unwrap().clone();
    let names: Vec<&str> = flows.iter().map(|flow| flow["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"peezy-codex-fork") && names.contains(&"openai-codex-bindings"), "{names:?}");
    for flow in &flows {
        assert_eq!(flow["format"], "flow.toml", "{flow}");
        let origin = flow["origin"].as_str().unwrap();
        assert!(origin.starts_with("installed from ") && origin.contains(pack.to_str().unwrap()), "{origin}");
    }
    assert_eq!(flows[0]["trigger"]["type"], "upstream.release");

    // Again: unchanged, and the lock keeps both.
    let again = add(&ws, pack.to_str().unwrap(), &[&INCLUDE[..], &["--apply", "--json"]].concat(), &[]);
    assert_eq!(again.json()["items"][0]["action"], "unchanged");
    check_lock_with_node(ws.root(), &pack);
}

/// Rebuilds the lock from the pack with Node, following codex-flows'
/// algorithm (sha256 of `path\0hex(sha256(file))\0` over a walk sorted with
/// `localeCompare`, items sorted by `kind:name`, `JSON.stringify(lock,
/// null, 2)` and a newline), keeping only `installedAt` and the source from
/// patchmoi's lock, and compares the bytes.
pub(super) fn check_lock_with_node(workspace: &Path, pack: &Path) {
    let Ok(node) = which("node") else {
        eprintln!("skipping the Node check of the lock: node is not on PATH");
        return;
    };
    let script = r#"
const fs = require("fs"), path = require("path"), crypto = require("crypto");
const [lockPath, packRoot] = process.argv.slice(1);
const text = fs.readFileSync(lockPath, "utf8");
const lock = JSON.parse(text);
function walk(dir) {
  let files = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name === ".git") continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files = files.concat(walk(full));
    else if (entry.isFile()) files.push(full);
  }
  return files;
}
function hash(root) {
  const outer = crypto.createHash("sha256");
  for (const file of walk(root)) {
    outer.update(path.relative(root, file).split(path.sep).join("/"));
    outer.update("\0");
    outer.update(crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex"));
    outer.update("\0");
  }
  return "sha256:" + outer.digest("hex");
}
const items = lock.items.map((item) => ({
  name: item.name,
  kind: item.kind,
  source: item.source,
  sourcePath: item.sourcePath,
  destinationPath: { flow: ".codex/flows/", skill: ".agents/skills/", plugin: "plugins/", hook: ".codex/hooks/" }[item.kind] + item.name,
  contentHash: hash(path.join(packRoot, item.sourcePath)),
  installedAt: item.installedAt,
})).sort((a, b) => `${a.kind}:${a.name}`.localeCompare(`${b.kind}:${b.name}`));
process.stdout.write(`${JSON.stringify({ version: 1, items }, null, 2)}\n`);
"#;
    let lock_path = workspace.join(".codex/pack-lock.json");
    let out =
        Command::new(node).args(["-e", script, lock_path.to_str().unwrap(), pack.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), theirs);
    assert!(theirs.contains("\"contentHash\": \"sha256:"), "{theirs}");
}

#[test]
fn a_changed_install_is_a_conflict_until_overwritten_with_a_backup() {
    let ws = Workspace::new();
    let pack = fixture_pack();
    let pack = pack.to_str().unwrap();
    assert_eq!(add(&ws, pack, &["--include", "peezy-codex-fork", "--apply"], &[]).code, 0);
    let script = ws.root().join(".codex/flows/peezy-codex-fork/exec/update-fork.code-mode.js");
    std::fs::write(&script, "// edited by hand\n").unwrap();

    let doctor = ws.patchmoi(&["pack", "doctor", "--json"], &[]);
    assert_eq!(doctor.code, 1);
    let changed = &doctor.json()["changedDestinations"][0];
    assert_eq!(changed["name"], "peezy-codex-fork");
    assert_eq!(changed["reason"], "content hash differs");
    assert!(doctor.json()["fixes"][0].as_str().unwrap().contains("--overwrite"), "{}", doctor.stdout);

    let conflict = add(&ws, pack, &["--include", "peezy-codex-fork", "--apply"], &[]);
    assert_eq!(conflict.code, 1);
    assert!(conflict.stdout.contains("conflict              flow/peezy-codex-fork"), "{}", conflict.stdout);
    assert_eq!(std::fs::read_to_string(&script).unwrap(), "// edited by hand\n", "a conflict is not installed");

    let overwrite = add(&ws, pack, &["--include", "peezy-codex-fork", "--apply", "--overwrite", "--json"], &[]);
    assert_eq!(overwrite.code, 0, "{}", overwrite.stderr);
    let backup = item(&overwrite.json(), "peezy-codex-fork")["backupPath"].as_str().unwrap().to_string();
    assert!(backup.contains(".codex/pack-backups/"), "{backup}");
    assert_eq!(
        std::fs::read_to_string(Path::new(&backup).join("exec/update-fork.code-mode.js")).unwrap(),
        "// edited by hand\n"
    );
    assert_ne!(std::fs::read_to_string(&script).unwrap(), "// edited by hand\n");
    assert_eq!(ws.patchmoi(&["pack", "doctor"], &[]).code, 0);

    std::fs::remove_dir_all(ws.root().join(".codex/flows/peezy-codex-fork")).unwrap();
    let doctor = ws.patchmoi(&["pack", "doctor", "--json"], &[]);
    assert_eq!(doctor.code, 1);
    assert_eq!(doctor.json()["missingDestinations"][0]["name"], "peezy-codex-fork");
}

#[test]
fn bad_packs_are_refused_and_change_nothing() {
    let ws = Workspace::new();
    let bad = ws.tmp.path().join("bad-pack");
    copy_dir(&fixture_pack(), &bad);
    let before = files(ws.root());
    let refused = |extra: &[&str], want: &str| {
        let run = add(&ws, bad.to_str().unwrap(), &[extra, &["--apply"]].concat(), &[]);
        assert_eq!(run.code, 2, "{want}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
        assert_eq!(files(ws.root()), before, "{want}: nothing on disk");
    };
    refused(&["--include", "no-such-flow"], "the pack has no item `no-such-flow`");
    std::fs::write(
        bad.join("codex-pack.toml"),
        "[pack]\nname = \"bad\"\nitems = [{name = \"../evil\", kind = \"flow\", path = \"flows/peezy-codex-fork\"}]\n",
    )
    .unwrap();
    refused(&[], "unsafe name");
    std::fs::write(
        bad.join("codex-pack.toml"),
        "[pack]\nitems = [{name = \"docs\", kind = \"flow\", path = \"skills\"}]\n",
    )
    .unwrap();
    refused(&[], "has no flow.toml or flow.yml");
    std::fs::write(
        bad.join("codex-pack.toml"),
        "[pack]\nitems = [{name = \"x\", kind = \"flow\", path = \"../outside\"}]\n",
    )
    .unwrap();
    refused(&[], "leaves the pack");
    let run = add(&ws, "file:///nonexistent/pack.git", &["--apply"], &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("failed to clone file:///nonexistent/pack.git"), "{}", run.stderr);
    assert_eq!(files(ws.root()), before);
}

#[test]
fn owner_repo_sources_are_cloned_shallow_at_a_ref_and_pinned() {
    let ws = Workspace::new();
    // github.com/peezy-tech/codex-flows, mapped to a local repository.
    let mirror = ws.tmp.path().join("github");
    let origin = Repo::init(&ws.tmp.path().join("origin"));
    copy_dir(&fixture_pack(), &origin.dir);
    let first = origin.commit("Pack v1", &[]);
    origin.git(&["tag", "v1"]);
    origin.commit("Pack v2", &[("flows/peezy-codex-fork/NOTES.md", "v2\n")]);
    let bare = mirror.join("peezy-tech/codex-flows.git");
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    origin.git(&["clone", "--quiet", "--bare", origin.path_str(), bare.to_str().unwrap()]);
    let key = format!("url.{}/.insteadOf", mirror.display());
    let env =
        [("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", key.as_str()), ("GIT_CONFIG_VALUE_0", "https://github.com/")];

    let run = add(
        &ws,
        "peezy-tech/codex-flows",
        &["--include", "peezy-codex-fork", "--ref", "v1", "--apply", "--json"],
        &env,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.root().join(".codex/pack-lock.json")).unwrap()).unwrap();
    let source = &lock["items"][0]["source"];
    assert_eq!(source["type"], "github");
    assert_eq!(source["input"], "peezy-tech/codex-flows");
    assert_eq!(source["url"], "https://github.com/peezy-tech/codex-flows.git");
    assert_eq!(source["ref"], "v1");
    assert_eq!(source["commit"], first.as_str());
    assert!(!ws.root().join(".codex/flows/peezy-codex-fork/NOTES.md").exists(), "v1 has no NOTES.md");
    // The default branch's tip, without --ref.
    let run = add(&ws, "peezy-tech/codex-flows", &["--include", "peezy-codex-fork", "--json"], &env);
    assert_eq!(item(&run.json(), "peezy-codex-fork")["action"], "conflict", "v2 differs from the installed v1");
}
