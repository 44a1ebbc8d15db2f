//! `pack update`: each locked item re-resolved at its ref, a diff summary
//! per item (unchanged, update with files added/changed/removed, conflict,
//! gone), installed only with `--apply`, local edits kept unless
//! `--overwrite`, pinned commits kept unless `--ref` moves them. Sources
//! are a local pack directory and a local git repository by URL.

use std::path::Path;

use serde_json::Value;

use super::{copy_dir, fixture_pack, Workspace};
use crate::common::{Repo, Run};

fn pack(ws: &Workspace, args: &[&str]) -> Run {
    let mut full = vec!["pack"];
    full.extend_from_slice(args);
    ws.patchmoi(&full, &[])
}

fn item(report: &Value, name: &str) -> Value {
    report["items"].as_array().unwrap().iter().find(|item| item["name"] == name).cloned().unwrap()
}

fn lock(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.root().join(".codex/pack-lock.json")).unwrap()
}

fn locked(ws: &Workspace, name: &str) -> Value {
    let lock: Value = serde_json::from_str(&lock(ws)).unwrap();
    lock["items"].as_array().unwrap().iter().find(|item| item["name"] == name).cloned().unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

const BINDINGS: &str = ".codex/flows/openai-codex-bindings";
const FORK: &str = ".codex/flows/peezy-codex-fork";

#[test]
fn a_local_pack_update_is_shown_then_applied_and_local_edits_are_kept() {
    let ws = Workspace::new();
    let source = ws.tmp.path().join("codex-flows");
    copy_dir(&fixture_pack(), &source);
    let source_arg = source.to_str().unwrap();
    let installed = pack(
        &ws,
        &["add", source_arg, "--include", "openai-codex-bindings", "--include", "peezy-codex-fork", "--apply"],
    );
    assert_eq!(installed.code, 0, "{}", installed.stderr);

    // The pack moves on: one flow gains, changes and loses a file; the other is as it was.
    std::fs::write(source.join("flows/peezy-codex-fork/NOTES.md"), "new\n").unwrap();
    std::fs::write(source.join("flows/peezy-codex-fork/exec/update-fork.code-mode.js"), "// v2\n").unwrap();
    std::fs::remove_file(source.join("flows/peezy-codex-fork/schemas/upstream-release.json")).unwrap();
    let lock_before = lock(&ws);
    let shown = pack(&ws, &["update", "--json"]);
    assert_eq!(shown.code, 0, "{}\n{}", shown.stdout, shown.stderr);
    let report = shown.json();
    assert_eq!(report["apply"], false);
    assert_eq!(item(&report, "openai-codex-bindings")["action"], "unchanged");
    let fork = item(&report, "peezy-codex-fork");
    assert_eq!(fork["action"], "update");
    assert_eq!(strings(&fork["added"]), ["NOTES.md"]);
    assert_eq!(strings(&fork["changed"]), ["exec/update-fork.code-mode.js"]);
    assert_eq!(strings(&fork["removed"]), ["schemas/upstream-release.json"]);
    assert_eq!(lock(&ws), lock_before, "without --apply nothing is written");
    assert!(!ws.root().join(FORK).join("NOTES.md").exists());
    let text = pack(&ws, &["update"]);
    assert!(text.stdout.contains("update                flow/peezy-codex-fork (+1 ~1 -1)"), "{}", text.stdout);
    assert!(text.stdout.contains("+ NOTES.md") && text.stdout.contains("rerun with --apply"), "{}", text.stdout);

    let applied = pack(&ws, &["update", "--apply", "--json"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(std::fs::read_to_string(ws.root().join(FORK).join("NOTES.md")).unwrap(), "new\n");
    assert!(!ws.root().join(FORK).join("schemas/upstream-release.json").exists());
    let backup = item(&applied.json(), "peezy-codex-fork")["backupPath"].as_str().unwrap().to_string();
    assert!(Path::new(&backup).join("schemas/upstream-release.json").exists(), "the old install is backed up");
    assert_ne!(locked(&ws, "peezy-codex-fork")["contentHash"], "");
    assert_eq!(pack(&ws, &["doctor"]).code, 0, "the lock matches what is installed");
    assert_eq!(item(&pack(&ws, &["update", "--json"]).json(), "peezy-codex-fork")["action"], "unchanged");

    // A hand edit is never overwritten without --overwrite, even with --apply.
    let readme = ws.root().join(BINDINGS).join("README.md");
    std::fs::write(&readme, "edited by hand\n").unwrap();
    std::fs::write(source.join("flows/openai-codex-bindings/README.md"), "pack v2\n").unwrap();
    let refused = pack(&ws, &["update", "openai-codex-bindings", "--apply", "--json"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    let bindings = item(&refused.json(), "openai-codex-bindings");
    assert_eq!(bindings["action"], "conflict");
    assert!(bindings["reason"].as_str().unwrap().contains("edited locally"), "{bindings}");
    assert_eq!(refused.json()["items"].as_array().unwrap().len(), 1, "only the named item");
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "edited by hand\n");
    let overwritten = pack(&ws, &["update", "openai-codex-bindings", "--apply", "--overwrite", "--json"]);
    assert_eq!(overwritten.code, 0, "{}", overwritten.stderr);
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "pack v2\n");
    let backup = item(&overwritten.json(), "openai-codex-bindings")["backupPath"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(Path::new(&backup).join("README.md")).unwrap(), "edited by hand\n");

    // Gone: an item the pack dropped, then the pack itself.
    std::fs::remove_dir_all(source.join("flows/peezy-codex-fork")).unwrap();
    let gone = pack(&ws, &["update", "--json"]);
    assert_eq!(gone.code, 1);
    assert_eq!(item(&gone.json(), "peezy-codex-fork")["action"], "gone");
    assert_eq!(item(&gone.json(), "openai-codex-bindings")["action"], "unchanged");
    std::fs::rename(&source, ws.tmp.path().join("moved")).unwrap();
    let gone = pack(&ws, &["update", "--apply", "--json"]);
    assert_eq!(gone.code, 1);
    for name in ["peezy-codex-fork", "openai-codex-bindings"] {
        let entry = item(&gone.json(), name);
        assert_eq!(entry["action"], "gone", "{entry}");
        assert!(entry["reason"].as_str().unwrap().contains("is not a directory any more"), "{entry}");
    }
    assert!(ws.root().join(FORK).join("NOTES.md").exists(), "a gone source removes nothing");

    let unknown = pack(&ws, &["update", "no-such-item"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("the lock has no item `no-such-item`"), "{}", unknown.stderr);
}

#[test]
fn a_git_pack_follows_its_branch_and_a_pinned_commit_stays_until_ref_moves_it() {
    let ws = Workspace::new();
    let origin = Repo::init(&ws.tmp.path().join("origin"));
    copy_dir(&fixture_pack(), &origin.dir);
    let v1 = origin.commit("Pack v1", &[]);
    let url = format!("file://{}", origin.dir.display());
    let pinned = pack(&ws, &["add", &url, "--include", "peezy-codex-fork", "--ref", &v1, "--apply"]);
    assert_eq!(pinned.code, 0, "{}\n{}", pinned.stdout, pinned.stderr);
    let followed = pack(&ws, &["add", &url, "--include", "openai-codex-bindings", "--apply"]);
    assert_eq!(followed.code, 0, "{}\n{}", followed.stdout, followed.stderr);

    let v2 = origin.commit(
        "Pack v2",
        &[
            ("flows/peezy-codex-fork/NOTES.md", "v2\n"),
            ("flows/openai-codex-bindings/exec/regenerate-bindings.ts", "// v2\n"),
        ],
    );
    let shown = pack(&ws, &["update", "--json"]);
    assert_eq!(shown.code, 0, "{}\n{}", shown.stdout, shown.stderr);
    let bindings = item(&shown.json(), "openai-codex-bindings");
    assert_eq!(bindings["action"], "update");
    assert_eq!(strings(&bindings["changed"]), ["exec/regenerate-bindings.ts"]);
    assert_eq!(bindings["fromCommit"], v1.as_str());
    assert_eq!(bindings["toCommit"], v2.as_str());
    let fork = item(&shown.json(), "peezy-codex-fork");
    assert_eq!(fork["action"], "unchanged");
    assert!(fork["reason"].as_str().unwrap().contains(&format!("pinned at {v1}")), "{fork}");

    assert_eq!(pack(&ws, &["update", "--apply"]).code, 0);
    assert_eq!(locked(&ws, "openai-codex-bindings")["source"]["commit"], v2.as_str());
    assert_eq!(locked(&ws, "peezy-codex-fork")["source"]["commit"], v1.as_str(), "the pin holds");
    assert!(!ws.root().join(FORK).join("NOTES.md").exists());

    // --ref moves the pin.
    let moved = pack(&ws, &["update", "peezy-codex-fork", "--ref", &v2, "--apply", "--json"]);
    assert_eq!(moved.code, 0, "{}\n{}", moved.stdout, moved.stderr);
    assert_eq!(strings(&item(&moved.json(), "peezy-codex-fork")["added"]), ["NOTES.md"]);
    assert_eq!(std::fs::read_to_string(ws.root().join(FORK).join("NOTES.md")).unwrap(), "v2\n");
    let source = &locked(&ws, "peezy-codex-fork")["source"];
    assert_eq!(source["ref"], v2.as_str());
    assert_eq!(source["commit"], v2.as_str());
    assert_eq!(pack(&ws, &["doctor"]).code, 0);
}

/// Bad input is told as such, naming the flag and the item, before
/// anything is resolved: `--ref` on an item from a local directory (which
/// has no refs) is no "gone" source, and an unknown name lists the known.
#[test]
fn ref_on_a_local_item_or_an_unknown_name_is_a_usage_error_naming_them() {
    let ws = Workspace::new();
    let source = ws.tmp.path().join("codex-flows");
    copy_dir(&fixture_pack(), &source);
    let installed = pack(&ws, &["add", source.to_str().unwrap(), "--include", "peezy-codex-fork", "--apply"]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    let lock_before = lock(&ws);

    let moved = pack(&ws, &["update", "--ref", "main", "--apply"]);
    assert_eq!(moved.code, 2, "{}\n{}", moved.stdout, moved.stderr);
    assert!(moved.stderr.contains("--ref") && moved.stderr.contains("flow:peezy-codex-fork"), "{}", moved.stderr);
    assert!(moved.stderr.contains(source.to_str().unwrap()), "{}", moved.stderr);
    let unknown = pack(&ws, &["update", "nope"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("`nope`") && unknown.stderr.contains("flow:peezy-codex-fork"),
        "{}",
        unknown.stderr
    );
    assert_eq!(lock(&ws), lock_before);
}

/// A local pack added from a subdirectory of the checkout (its path given
/// relative to there) is locked relative to the workspace root, where
/// `pack update` and `pack doctor` look for it.
#[test]
fn a_local_pack_added_from_a_subdirectory_is_found_again_by_update() {
    let ws = Workspace::new();
    let source = ws.tmp.path().join("codex-flows");
    copy_dir(&fixture_pack(), &source);
    let sub = ws.root().join("tools/sub");
    std::fs::create_dir_all(&sub).unwrap();
    let installed = crate::common::patchmoi(
        &sub,
        &["pack", "add", "../../../codex-flows", "--include", "peezy-codex-fork", "--apply"],
        &[],
    );
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    assert_eq!(locked(&ws, "peezy-codex-fork")["source"]["input"], "../codex-flows");
    std::fs::write(source.join("flows/peezy-codex-fork/NOTES.md"), "new\n").unwrap();
    let shown = pack(&ws, &["update", "--json"]);
    assert_eq!(shown.code, 0, "{}\n{}", shown.stdout, shown.stderr);
    assert_eq!(item(&shown.json(), "peezy-codex-fork")["action"], "update");
}
