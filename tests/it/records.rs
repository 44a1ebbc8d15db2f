//! A full disk or an unwritable data dir loses nothing (issue 11, item
//! 12): the attempt is recorded before the work starts, an error writing
//! names the database, and the read-only commands still read. `promote`
//! and `resolve` record their attempt as `started` before they act, as
//! `run` and `continue` do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::common::{patchmoi, Fixture};

/// What is in `dir`: names, sizes and modification times.
fn listing(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            (entry.file_name().to_string_lossy().into_owned(), (meta.len(), meta.modified().unwrap()))
        })
        .collect()
}

/// Makes `dir` and what is in it unwritable, for root too: `chattr +i`
/// as root (root ignores modes), modes otherwise. Undone on drop.
struct Frozen {
    paths: Vec<PathBuf>,
    root: bool,
    /// Whether writing there is really refused (an `chattr` on a file
    /// system without the flag is not).
    refused: bool,
}

impl Frozen {
    fn new(dir: &Path) -> Frozen {
        let root = unsafe { libc::geteuid() } == 0;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
        paths.push(dir.to_path_buf());
        for path in &paths {
            if root {
                let _ = std::process::Command::new("chattr").arg("+i").arg(path).status();
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = if path.is_dir() { 0o555 } else { 0o444 };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        let probe = dir.join("probe");
        let refused = std::fs::write(&probe, "x").is_err();
        let _ = std::fs::remove_file(&probe);
        Frozen { paths, root, refused }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for path in &self.paths {
            if self.root {
                let _ = std::process::Command::new("chattr").arg("-i").arg(path).status();
            } else {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

#[test]
fn a_run_is_recorded_as_started_before_its_work_so_a_killed_run_still_shows() {
    let fx = Fixture::released();
    // The step kills patchmoi (its supervisor's parent) outright.
    fx.install_rebase_flow("  - name: die\n    run: kill -9 $(cut -d' ' -f4 /proc/$PPID/stat); sleep 30\n");
    let data = fx.tmp.path().join("data");
    let run = fx.run_release("v1.1.0", &["--data-dir", data.to_str().unwrap()]);
    assert_eq!(run.code, -1, "patchmoi was killed: {}", run.stderr);
    let attempts = patchmoi(fx.tmp.path(), &["attempts", "--data-dir", data.to_str().unwrap(), "--json"], &[]);
    assert_eq!(attempts.code, 0, "{}", attempts.stderr);
    let list = attempts.json()["attempts"].clone();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "the killed run's attempt is there: {list:?}");
    assert_eq!(list[0]["status"], "started");
    assert_eq!(list[0]["eventId"], "patch:upstream.release:test/upstream:v1.1.0");
}

#[test]
fn an_unwritable_data_dir_stops_the_run_naming_the_database_and_still_reads() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let data = fx.tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let first = fx.run_release("v1.1.0", &["--data-dir", data_arg]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    fx.upstream.git(&["tag", "v1.2.0"]);

    let frozen = Frozen::new(&data);
    let before = listing(&data);
    let tmp = fx.tmp.path();
    let status = patchmoi(tmp, &["status", "--data-dir", data_arg, "--json"], &[]);
    assert_eq!(status.code, 0, "status reads a read-only data dir: {}", status.stderr);
    assert_eq!(status.json()["attemptStatusCounts"]["changed"], 1, "{}", status.stdout);
    let attempts = patchmoi(tmp, &["attempts", "--data-dir", data_arg, "--json"], &[]);
    assert_eq!(attempts.code, 0, "{}", attempts.stderr);
    assert_eq!(attempts.json()["attempts"][0]["status"], "changed", "{}", attempts.stdout);
    let events = patchmoi(tmp, &["events", "--data-dir", data_arg], &[]);
    assert_eq!(events.code, 0, "{}", events.stderr);
    assert!(events.stdout.contains("v1.1.0"), "{}", events.stdout);
    let history = fx.patchmoi(&["history", "--flow", "fork", "--data-dir", data_arg], &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(history.stdout.contains("v1.1.0"), "{}", history.stdout);
    assert_eq!(listing(&data), before, "reading wrote nothing");

    if !frozen.refused {
        eprintln!("the data dir could not be made read-only here: the failing run is not tested");
        return;
    }
    let run = fx.run_release("v1.2.0", &["--data-dir", data_arg]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let database = data.join("patchmoi.sqlite3");
    assert!(run.stderr.contains(database.to_str().unwrap()), "the error names the database: {}", run.stderr);
    assert!(fx.fork.git(&["branch", "--list", "patchmoi/v1.2.0"]).is_empty(), "no work was done unrecorded");
    drop(frozen);
}

#[test]
fn promote_is_recorded_as_started_before_the_branch_moves_and_completed_after() {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let origin = fx.with_origin();
    fx.fork.git(&["checkout", "--quiet", "--detach"]);
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // While promote pushes, the remote's hook reads the attempts; it
    // refuses the push until `allow` exists.
    let data = fx.fork.dir.join("data");
    let (seen, allow) = (fx.tmp.path().join("seen.json"), fx.tmp.path().join("allow"));
    let hook = format!(
        "#!/bin/sh\n'{}' attempts --data-dir '{}' --json > '{}'\ntest -e '{}'\n",
        env!("CARGO_BIN_EXE_patchmoi"),
        data.display(),
        seen.display(),
        allow.display()
    );
    let hook_path = origin.dir.join("hooks/pre-receive");
    std::fs::write(&hook_path, hook).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let promotions = |list: &serde_json::Value| -> Vec<serde_json::Value> {
        list["attempts"].as_array().unwrap().iter().filter(|a| a["operation"] == "promote").cloned().collect()
    };
    let attempts =
        || patchmoi(fx.tmp.path(), &["attempts", "--data-dir", data.to_str().unwrap(), "--json"], &[]).json();

    // A promotion the remote refuses: started while it pushed, failed after.
    let refused = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0", "--push"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let during: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    let during = promotions(&during);
    assert_eq!(during.len(), 1, "{during:?}");
    assert_eq!(during[0]["status"], "started", "{during:?}");
    let after = promotions(&attempts());
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["id"], during[0]["id"]);
    assert_eq!(after[0]["status"], "failed", "{after:?}");
    assert!(after[0]["error"].as_str().unwrap().contains("origin"), "{after:?}");

    // Accepted: the same again, completed after its creation.
    std::fs::write(&allow, "").unwrap();
    let promoted = fx.patchmoi(&["promote", "--flow", "fork", "--tag", "v1.1.0", "--push"], &[]);
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    let during: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    let started: Vec<_> = promotions(&during).into_iter().filter(|a| a["status"] == "started").collect();
    assert_eq!(started.len(), 1, "{during}");
    let after = promotions(&attempts());
    let done = after.iter().find(|a| a["id"] == started[0]["id"]).unwrap();
    assert_eq!(done["status"], "changed", "{done}");
    let (created, completed) = (done["createdAt"].as_str().unwrap(), done["completedAt"].as_str().unwrap());
    assert!(created < completed, "created {created}, completed {completed}");
}

/// A run killed outright leaves its `started` record in the database's
/// `-wal` file. Where the data dir is then read-only, reading the database
/// file alone would show a history without that attempt: the read commands
/// say so and name the `-wal` file instead of showing stale records.
#[test]
fn a_read_only_data_dir_with_unapplied_writes_is_not_read_stale() {
    let fx = Fixture::released();
    // The step kills patchmoi once `die` exists: the first run completes.
    let die = fx.tmp.path().join("die");
    fx.install_rebase_flow(&format!(
        "  - name: die\n    run: if test -e '{}'; then kill -9 $(cut -d' ' -f4 /proc/$PPID/stat); sleep 30; fi\n",
        die.display()
    ));
    let data = fx.tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let first = fx.run_release("v1.1.0", &["--data-dir", data_arg]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    std::fs::write(&die, "").unwrap();
    fx.upstream.git(&["tag", "v1.2.0"]);
    let run = fx.run_release("v1.2.0", &["--data-dir", data_arg]);
    assert_eq!(run.code, -1, "patchmoi was killed: {}", run.stderr);
    let wal = data.join("patchmoi.sqlite3-wal");
    if !std::fs::metadata(&wal).is_ok_and(|meta| meta.len() > 0) {
        eprintln!("the killed run left no -wal here: nothing to test");
        return;
    }
    let _ = std::fs::remove_file(data.join("patchmoi.sqlite3-shm"));
    let frozen = Frozen::new(&data);
    if !frozen.refused {
        eprintln!("the data dir could not be made read-only here: not tested");
        return;
    }
    let attempts = patchmoi(fx.tmp.path(), &["attempts", "--data-dir", data_arg, "--json"], &[]);
    let shown = attempts.stdout.contains("\"started\"");
    assert!(
        shown || (attempts.code != 0 && attempts.stderr.contains(wal.to_str().unwrap())),
        "either the started attempt is shown or the -wal is named: code {} stdout {} stderr {}",
        attempts.code,
        attempts.stdout,
        attempts.stderr
    );
    drop(frozen);
}
