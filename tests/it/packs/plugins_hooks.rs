//! Plugins and hooks from a pack, through the real binary: a plugin
//! (`plugins/<n>/.codex-plugin/plugin.json`) goes to `plugins/<n>` with an
//! entry in `.agents/plugins/marketplace.json`; a hook pack
//! (`hooks/<n>/hooks.json`) goes to `.codex/hooks/<n>` and its groups are
//! merged into `.codex/hooks.json`, recorded under `codexPack` so that
//! installing it again replaces them. Both are locked with codex-flows'
//! `contentHash` (checked by the Node implementation in `install.rs`);
//! broken JSON makes `pack doctor` fail naming the fix and `pack add`
//! change nothing; nothing in the pack runs at install.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::install::{check_lock_with_node, files};
use super::Workspace;
use crate::common::Run;

/// A command that would leave a trace if anything ran it.
fn trap(marker: &Path) -> String {
    format!("touch {}", marker.display())
}

/// A pack with one plugin (bundling a hook of its own, a postinstall
/// script and a script) and one hook pack; every command in it touches
/// `marker`. Returns its root.
fn tool_pack(ws: &Workspace, marker: &Path) -> PathBuf {
    let root = ws.tmp.path().join("tool-pack");
    let trap = trap(marker);
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    };
    write(
        "plugins/repo-policy/.codex-plugin/plugin.json",
        &json!({"name": "repo-policy", "version": "0.1.0", "description": "House rules", "hooks": "./hooks.json"})
            .to_string(),
    );
    write("plugins/repo-policy/skills/policy/SKILL.md", "---\nname: policy\n---\nFollow the house rules.\n");
    write(
        "plugins/repo-policy/hooks.json",
        &json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": trap}]}]}}).to_string(),
    );
    write(
        "plugins/repo-policy/package.json",
        &json!({"scripts": {"preinstall": trap, "postinstall": trap}}).to_string(),
    );
    write("plugins/repo-policy/scripts/setup.sh", &format!("#!/bin/sh\n{trap}\n"));
    write(
        "hooks/guard/hooks.json",
        &serde_json::to_string_pretty(&json!({"hooks": {
            "PreToolUse": [{"matcher": "shell", "hooks": [{"type": "command", "command": format!("sh guard.sh; {trap}")}]}],
            "Stop": [{"hooks": [{"type": "command", "command": trap}]}],
            "NotACodexEvent": [{"hooks": [{"type": "command", "command": trap}]}],
        }}))
        .unwrap(),
    );
    write("hooks/guard/guard.sh", &format!("#!/bin/sh\n{trap}\n"));
    // A hooks.json at the top of hooks/ is not a hook pack (codex-flows skips it).
    write("hooks/hooks.json", "{\"hooks\": {}}\n");
    use std::os::unix::fs::PermissionsExt;
    for script in ["plugins/repo-policy/scripts/setup.sh", "hooks/guard/guard.sh"] {
        std::fs::set_permissions(root.join(script), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

fn add(ws: &Workspace, pack: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["pack", "add", pack.to_str().unwrap()];
    args.extend_from_slice(extra);
    ws.patchmoi(&args, &[])
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const MARKETPLACE: &str = ".agents/plugins/marketplace.json";
const HOOKS: &str = ".codex/hooks.json";

/// The workspace's own marketplace and hooks, there before any pack.
fn seed_workspace(ws: &Workspace) -> (Value, Value) {
    let own_plugin = json!({"name": "team-tools", "source": {"source": "local", "path": "./vendor/team-tools"}});
    let own_stop = json!({"hooks": [{"type": "command", "command": "echo bye"}]});
    ws.repo.write(
        MARKETPLACE,
        &json!({"name": "team", "interface": {"displayName": "Team"}, "plugins": [own_plugin]}).to_string(),
    );
    ws.repo.write(HOOKS, &json!({"hooks": {"Stop": [own_stop]}}).to_string());
    (own_plugin, own_stop)
}

#[test]
fn plugins_and_hooks_land_where_codex_flows_puts_them_locked_and_never_run() {
    let ws = Workspace::new();
    let marker = ws.tmp.path().join("executed");
    let pack = tool_pack(&ws, &marker);
    let (own_plugin, own_stop) = seed_workspace(&ws);
    let before = files(ws.root());

    let plan = add(&ws, &pack, &["--json"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let plan = plan.json();
    let items: Vec<String> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!(
                "{}:{}:{} -> {}",
                item["action"].as_str().unwrap(),
                item["kind"].as_str().unwrap(),
                item["name"].as_str().unwrap(),
                item["destinationRelativePath"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(items, ["add:hook:guard -> .codex/hooks/guard", "add:plugin:repo-policy -> plugins/repo-policy"]);
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("Plugin repo-policy includes plugin-bundled hooks"), "{warnings}");
    assert!(warnings.contains("enable [features].hooks = true"), "{warnings}");
    assert_eq!(files(ws.root()), before, "a plan writes nothing");

    let applied = add(&ws, &pack, &["--apply"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    // Each kind where the reference puts it, byte for byte.
    for (from, to) in [("plugins/repo-policy", "plugins/repo-policy"), ("hooks/guard", ".codex/hooks/guard")] {
        let mut want: Vec<String> = files(&pack.join(from));
        want.sort();
        assert_eq!(files(&ws.root().join(to)), want, "{to}");
        for file in &want {
            assert_eq!(
                std::fs::read(pack.join(from).join(file)).unwrap(),
                std::fs::read(ws.root().join(to).join(file)).unwrap()
            );
        }
    }
    assert!(!ws.root().join(".codex/hooks/hooks").exists(), "hooks/hooks.json is not a hook pack");

    // The marketplace keeps its own name and entries, and lists the plugin.
    let marketplace = read_json(&ws.root().join(MARKETPLACE));
    assert_eq!(marketplace["name"], "team");
    assert_eq!(marketplace["interface"]["displayName"], "Team");
    assert_eq!(
        marketplace["plugins"],
        json!([own_plugin, {"name": "repo-policy", "source": {"source": "local", "path": "./plugins/repo-policy"},
            "policy": {"installation": "AVAILABLE", "authentication": "ON_INSTALL"}, "category": "Productivity"}])
    );
    // hooks.json keeps the workspace's groups and adds the pack's, for Codex's events only.
    let hooks = read_json(&ws.root().join(HOOKS));
    let guard = read_json(&pack.join("hooks/guard/hooks.json"));
    assert_eq!(hooks["hooks"]["Stop"], json!([own_stop, guard["hooks"]["Stop"][0]]));
    assert_eq!(hooks["hooks"]["PreToolUse"], guard["hooks"]["PreToolUse"]);
    assert!(hooks["hooks"].get("NotACodexEvent").is_none(), "{hooks}");
    assert_eq!(hooks["codexPack"]["version"], 1);
    assert_eq!(
        hooks["codexPack"]["hooks"]["guard"],
        json!({"kind": "hook", "destinationPath": ".codex/hooks/guard",
               "events": {"PreToolUse": guard["hooks"]["PreToolUse"], "Stop": guard["hooks"]["Stop"]}})
    );

    // The lock, against the independent implementation.
    let lock = read_json(&ws.root().join(".codex/pack-lock.json"));
    let locked: Vec<String> = lock["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!(
                "{}:{} {}",
                item["kind"].as_str().unwrap(),
                item["name"].as_str().unwrap(),
                item["destinationPath"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(locked, ["hook:guard .codex/hooks/guard", "plugin:repo-policy plugins/repo-policy"]);
    check_lock_with_node(ws.root(), &pack);

    let doctor = ws.patchmoi(&["pack", "doctor", "--json"], &[]);
    assert_eq!(doctor.code, 0, "{}\n{}", doctor.stdout, doctor.stderr);
    let report = doctor.json();
    assert_eq!(report["installedItems"], 2);
    assert_eq!(report["marketplace"]["exists"], true);
    assert_eq!(report["marketplace"]["valid"], true);
    assert_eq!(report["hooks"]["valid"], true);

    // Installed again: unchanged, and neither shared file grows.
    let (marketplace_text, hooks_text) = (ws.repo.read(MARKETPLACE), ws.repo.read(HOOKS));
    let again = add(&ws, &pack, &["--apply", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.json()["items"].as_array().unwrap().iter().all(|item| item["action"] == "unchanged"),
        "{}",
        again.stdout
    );
    assert_eq!(ws.repo.read(MARKETPLACE), marketplace_text);
    assert_eq!(ws.repo.read(HOOKS), hooks_text);

    // A new version of the hook pack replaces its groups instead of adding to them.
    let new_stop = json!({"hooks": [{"type": "command", "command": "echo guard v2"}]});
    let mut v2 = guard.clone();
    v2["hooks"]["Stop"] = json!([new_stop]);
    std::fs::write(pack.join("hooks/guard/hooks.json"), v2.to_string()).unwrap();
    let overwrite = add(&ws, &pack, &["--apply", "--overwrite", "--include", "hook:guard"]);
    assert_eq!(overwrite.code, 0, "{}\n{}", overwrite.stdout, overwrite.stderr);
    let hooks = read_json(&ws.root().join(HOOKS));
    assert_eq!(hooks["hooks"]["Stop"], json!([own_stop, new_stop]));
    assert_eq!(hooks["hooks"]["PreToolUse"], guard["hooks"]["PreToolUse"]);
    check_lock_with_node(ws.root(), &pack);
    assert_eq!(ws.patchmoi(&["pack", "doctor"], &[]).code, 0);

    assert!(!marker.exists(), "something from the pack ran at install");
}

#[test]
fn broken_marketplace_or_hooks_json_fail_doctor_with_the_fix_and_add_changes_nothing() {
    let ws = Workspace::new();
    let marker = ws.tmp.path().join("executed");
    let pack = tool_pack(&ws, &marker);
    assert_eq!(add(&ws, &pack, &["--apply", "--include", "repo-policy"]).code, 0);

    for (file, key) in [(MARKETPLACE, "marketplace"), (HOOKS, "hooks")] {
        let path = ws.root().join(file);
        let good = std::fs::read_to_string(&path).ok();
        std::fs::write(&path, "{\"plugins\": [\n").unwrap();
        let doctor = ws.patchmoi(&["pack", "doctor", "--json"], &[]);
        assert_eq!(doctor.code, 1, "{file}: {}", doctor.stdout);
        let report = doctor.json();
        assert_eq!(report[key]["exists"], true, "{report}");
        assert_eq!(report[key]["valid"], false, "{report}");
        assert!(report[key]["error"].as_str().is_some_and(|e| !e.is_empty()), "{report}");
        let fix = format!("fix the JSON of {}", path.display());
        assert!(report["fixes"].as_array().unwrap().iter().any(|f| *f == fix.as_str()), "{fix}: {report}");
        let text = ws.patchmoi(&["pack", "doctor"], &[]);
        assert_eq!(text.code, 1);
        assert!(text.stdout.contains(&format!("fix                   {fix}")), "{}", text.stdout);
        assert!(text.stdout.contains(&format!("{key:<22}invalid (")), "{}", text.stdout);

        // Installing what would update that file fails first, naming it, and writes nothing.
        let before = files(ws.root());
        let lock_before = ws.repo.read(".codex/pack-lock.json");
        let run = add(&ws, &pack, &["--apply", "--overwrite"]);
        assert_ne!(run.code, 0, "{file}: {}", run.stdout);
        assert!(run.stderr.contains(path.to_str().unwrap()), "{file}: {}", run.stderr);
        assert_eq!(files(ws.root()), before, "{file}: nothing on disk");
        assert_eq!(ws.repo.read(".codex/pack-lock.json"), lock_before);
        match good {
            Some(good) => std::fs::write(&path, good).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
    }
    assert_eq!(ws.patchmoi(&["pack", "doctor"], &[]).code, 0);
    assert!(!marker.exists(), "something from the pack ran at install");
}

/// Valid JSON of another shape than Codex reads (a list where an object
/// is, `plugins` not a list, `hooks` not an object) is not taken for an
/// empty file and replaced: the install fails naming the file and the
/// field, and changes nothing.
#[test]
fn a_marketplace_or_hooks_json_of_another_shape_is_refused_not_replaced() {
    let ws = Workspace::new();
    let marker = ws.tmp.path().join("executed");
    let pack = tool_pack(&ws, &marker);
    let cases = [
        (MARKETPLACE, json!([{"name": "team-tools"}]), "not a JSON object"),
        (MARKETPLACE, json!({"plugins": {"team-tools": {}}}), "`plugins`"),
        (HOOKS, json!([]), "not a JSON object"),
        (HOOKS, json!({"hooks": [{"type": "command", "command": "echo bye"}]}), "`hooks`"),
        (HOOKS, json!({"hooks": {"Stop": {"type": "command"}}}), "`hooks.Stop`"),
    ];
    for (file, odd, field) in cases {
        let path = ws.root().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, odd.to_string()).unwrap();
        let before = files(ws.root());
        let run = add(&ws, &pack, &["--apply"]);
        assert_ne!(run.code, 0, "{file} {odd}: {}", run.stdout);
        assert!(run.stderr.contains(path.to_str().unwrap()), "{file} {odd}: {}", run.stderr);
        assert!(run.stderr.contains(field), "{file} {odd}: {}", run.stderr);
        assert_eq!(files(ws.root()), before, "{file} {odd}: nothing on disk changed");
        assert_eq!(read_json(&path), odd);
        std::fs::remove_file(&path).unwrap();
    }
    assert!(!marker.exists(), "something from the pack ran at install");
}

#[test]
fn a_pack_with_broken_hook_or_plugin_json_is_refused_and_changes_nothing() {
    let ws = Workspace::new();
    let marker = ws.tmp.path().join("executed");
    let pack = tool_pack(&ws, &marker);
    let before = files(ws.root());
    for (file, broken) in
        [("hooks/guard/hooks.json", "{\"hooks\": "), ("plugins/repo-policy/.codex-plugin/plugin.json", "{name")]
    {
        let path = pack.join(file);
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, broken).unwrap();
        let run = add(&ws, &pack, &["--apply"]);
        assert_eq!(run.code, 2, "{file}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(path.to_str().unwrap()), "{file}: {}", run.stderr);
        assert_eq!(files(ws.root()), before, "{file}: nothing on disk");
        std::fs::write(&path, good).unwrap();
    }
    assert!(!marker.exists());
}

#[test]
fn a_marketplace_entry_of_another_source_is_a_conflict_until_overwritten() {
    let ws = Workspace::new();
    let pack = tool_pack(&ws, &ws.tmp.path().join("executed"));
    let theirs = json!({"name": "repo-policy", "source": {"source": "local", "path": "./vendor/repo-policy"}});
    ws.repo.write(MARKETPLACE, &json!({"name": "team", "plugins": [theirs]}).to_string());
    let original = ws.repo.read(MARKETPLACE);

    let run = add(&ws, &pack, &["--apply", "--include", "repo-policy", "--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let item = &run.json()["items"][1];
    assert_eq!(item["action"], "conflict", "{item}");
    assert_eq!(
        item["reason"],
        "marketplace already has plugin repo-policy from ./vendor/repo-policy; rerun with --overwrite to replace it"
    );
    assert!(!ws.root().join("plugins/repo-policy").exists());
    assert_eq!(ws.repo.read(MARKETPLACE), original);

    let run = add(&ws, &pack, &["--apply", "--include", "repo-policy", "--overwrite", "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let backup = run.json()["marketplaceBackupPath"].as_str().unwrap().to_string();
    assert!(backup.contains(".codex/pack-backups/") && backup.ends_with(MARKETPLACE), "{backup}");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    let plugins = read_json(&ws.root().join(MARKETPLACE))["plugins"].clone();
    assert_eq!(plugins.as_array().unwrap().len(), 1, "{plugins}");
    assert_eq!(plugins[0]["source"]["path"], "./plugins/repo-policy");
    // Locked now: installing again is no conflict.
    let again = add(&ws, &pack, &["--apply", "--include", "repo-policy", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(again.json()["items"][1]["action"], "unchanged");
}

/// The marketplace entry of a plugin the pack installed is the person's
/// to tune (its policy, its category): installing the pack again, or an
/// update of the plugin, keeps the entry as they left it.
#[test]
fn a_plugins_marketplace_entry_edited_by_hand_survives_reinstall_and_update() {
    let ws = Workspace::new();
    let marker = ws.tmp.path().join("executed");
    let pack = tool_pack(&ws, &marker);
    assert_eq!(add(&ws, &pack, &["--apply", "--include", "repo-policy"]).code, 0);
    let path = ws.root().join(MARKETPLACE);
    let mut marketplace = read_json(&path);
    let entry = &mut marketplace["plugins"][0];
    assert_eq!(entry["name"], "repo-policy");
    entry["policy"]["installation"] = json!("INSTALLED_BY_DEFAULT");
    entry["category"] = json!("Team");
    let tuned = entry.clone();
    std::fs::write(&path, serde_json::to_string_pretty(&marketplace).unwrap()).unwrap();

    assert_eq!(add(&ws, &pack, &["--apply", "--include", "repo-policy"]).code, 0);
    assert_eq!(read_json(&path)["plugins"], json!([tuned]), "reinstalled");
    std::fs::write(pack.join("plugins/repo-policy/skills/policy/SKILL.md"), "---\nname: policy\n---\nv2\n").unwrap();
    let updated = ws.patchmoi(&["pack", "update", "--apply"], &[]);
    assert_eq!(updated.code, 0, "{}\n{}", updated.stdout, updated.stderr);
    assert!(updated.stdout.contains("update"), "{}", updated.stdout);
    assert_eq!(read_json(&path)["plugins"], json!([tuned]), "updated");
}
