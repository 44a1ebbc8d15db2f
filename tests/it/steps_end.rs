//! A step's processes never outlive patchmoi (issue 11): each step runs
//! under a re-executed patchmoi supervisor that ends the step's whole
//! process group when the step's program exits, when its time limit
//! passes, and when patchmoi itself dies, even by `kill -9`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Fixture;

/// A step that leaves a grandchild behind, writing both pids to `dir`.
fn hanging_step(dir: &Path, timeout: &str) -> String {
    format!(
        "  - name: hang\n    timeout: {timeout}\n    run: |\n      \
         sleep 300 &\n      echo $! > {dir}/grandchild.pid\n      echo $$ > {dir}/bash.pid\n      sleep 300\n",
        dir = dir.display()
    )
}

fn read_pid(path: &Path) -> Option<libc::pid_t> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Gone, or a zombie nobody has reaped yet (pid 1 in a container may not).
fn gone(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks existence.
    let missing = unsafe { libc::kill(pid, 0) } != 0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    missing || stat.contains(") Z ")
}

fn wait_gone(pids: &[libc::pid_t], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|pid| !gone(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids {
        if !gone(*pid) {
            // Leave nothing behind for the next test either.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
            panic!("process {pid} of the step outlived patchmoi");
        }
    }
}

#[test]
fn kill_9_of_patchmoi_ends_the_steps_whole_process_group() {
    let fx = Fixture::released();
    let pids = fx.tmp.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    fx.install_rebase_flow(&hanging_step(&pids, "10m"));
    let mut patchmoi = Command::new(env!("CARGO_BIN_EXE_patchmoi"))
        .current_dir(&fx.fork.dir)
        .args(["run", "upstream-release", "--repo", "test/upstream", "--tag", "v1.1.0"])
        .args(["--workspace-root", fx.fork.path_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (grandchild, bash) = loop {
        if let (Some(grandchild), Some(bash)) =
            (read_pid(&pids.join("grandchild.pid")), read_pid(&pids.join("bash.pid")))
        {
            break (grandchild, bash);
        }
        if let Some(status) = patchmoi.try_wait().unwrap() {
            panic!("patchmoi ended ({status}) before the step started");
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!gone(grandchild) && !gone(bash), "the step is running");
    patchmoi.kill().unwrap(); // SIGKILL
    patchmoi.wait().unwrap();
    wait_gone(&[grandchild, bash], Duration::from_secs(10));
}

#[test]
fn a_steps_time_limit_and_its_end_stop_what_it_started() {
    let fx = Fixture::released();
    let pids = fx.tmp.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let detached = pids.join("left");
    std::fs::create_dir_all(&detached).unwrap();
    // One step leaves a process running and exits; the next overstays its limit.
    let leaves = format!(
        "  - name: leaves\n    run: |\n      sleep 300 &\n      echo $! > {}/grandchild.pid\n      echo $$ > {}/bash.pid\n",
        detached.display(),
        detached.display()
    );
    fx.install_rebase_flow(&format!("{leaves}{}", hanging_step(&pids, "2s")));
    let start = Instant::now();
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 1, "the timed-out step fails the run: {}\n{}", run.stdout, run.stderr);
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    let hang = run.step("hang");
    assert!(hang.to_string().contains("timed out"), "{hang}");
    let pid = |dir: &Path, name: &str| read_pid(&dir.join(name)).unwrap();
    wait_gone(
        &[pid(&pids, "grandchild.pid"), pid(&pids, "bash.pid"), pid(&detached, "grandchild.pid")],
        Duration::from_secs(10),
    );
}

/// A step killed by a signal fails, through the supervisor as without it:
/// the supervisor dies of the same signal, and the step's log says which.
#[test]
fn a_step_killed_by_a_signal_fails_and_its_log_names_the_signal() {
    let fx = Fixture::released();
    fx.install_rebase_flow("  - name: killed\n    run: kill -TERM $$\n");
    let run = fx.run_release("v1.1.0", &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let killed = run.step("killed");
    assert_eq!(killed["status"], "failed", "{killed}");
    assert!(killed.to_string().contains("killed by signal 15"), "{killed}");
}
