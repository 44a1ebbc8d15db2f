//! Runs a flow's `run:` step commands: bash with a timeout that kills the whole process group, output captured to a log file.
//!
//! Output goes straight to the log file rather than through pipes, so a
//! grandchild that keeps the log open after its parent exits can never make
//! us hang: we only ever wait on the bash process itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::core::secrets::scrub_held;
use crate::flow::supervise::{wait_until, StepCommand};

/// How many log lines a result carries.
const TAIL_LINES: usize = 50;
/// `tail_lines` stops reading backwards after this much, so one enormous
/// line (progress bars written with `\r`) cannot pull a huge log into memory.
const MAX_TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// One command to run.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// The step name, used in messages.
    pub name: String,
    /// The shell command; run as `bash -eo pipefail -c <command>`.
    pub command: String,
    /// Working directory (must exist; error naming it otherwise).
    pub cwd: PathBuf,
    /// Variables to set: on top of patchmoi's environment with
    /// `inherit_env`, else the whole environment of the command.
    pub env: Vec<(String, String)>,
    /// Whether the command starts from patchmoi's own environment. Flow
    /// steps never do: they get an allowlist (see `core::secrets`).
    pub inherit_env: bool,
    /// Variables to remove from the inherited environment (e.g. GITHUB_TOKEN must never reach flow commands).
    /// Removal wins over `env` when a name is in both.
    pub env_remove: Vec<String>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Where stdout and stderr go, interleaved in one file (parent dirs are created; the file is truncated).
    pub log_path: PathBuf,
    /// Also show the output on patchmoi's stderr as it comes, each line
    /// after `<name> | ` and with every held secret hidden, so a long step
    /// is not silent.
    pub echo: bool,
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed,
    Failed { exit_code: Option<i32>, signal: Option<i32> },
    TimedOut,
}

/// What `run_check` reports back.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub outcome: CheckOutcome,
    pub duration: Duration,
    /// The last 50 lines of the log (lossy UTF-8), without trailing newline characters.
    /// The final entry is always the `[patchmoi] step ...` status line we append.
    pub log_tail: Vec<String>,
}

/// Runs the command. Errors only when it could not be started (bash missing, cwd missing, log not writable): a failing or timed-out command is an Ok outcome.
pub fn run_check(spec: &CheckSpec) -> anyhow::Result<CheckResult> {
    let name = &spec.name;
    let cwd = spec.cwd.display();
    if !spec.cwd.is_dir() {
        bail!("working directory {cwd} for step {name} does not exist");
    }
    let log_path = spec.log_path.display();
    let log =
        open_log(&spec.log_path).with_context(|| format!("failed to create log file {log_path} for step {name}"))?;
    let log_err = log.try_clone().with_context(|| format!("failed to duplicate log file handle for step {name}"))?;

    let mut step = StepCommand::new("bash", &["-eo", "pipefail", "-c", &spec.command])
        .with_context(|| format!("failed to prepare step {name}"))?;
    let command = &mut step.command;
    command.current_dir(&spec.cwd).stdin(Stdio::null()).stdout(log).stderr(log_err);
    if spec.inherit_env {
        command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    } else {
        command.env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    }
    for key in &spec.env_remove {
        command.env_remove(key);
    }

    tracing::debug!(step = %name, %cwd, command = %spec.command, "running check");
    let start = Instant::now();
    // Its own process group, under the supervisor: a timeout, or the end
    // of patchmoi, takes down everything it started.
    let mut child = step.spawn().with_context(|| format!("failed to start bash for step {name}"))?;
    tracing::info!("step {name}: running, log {log_path}");
    let done = Arc::new(AtomicBool::new(false));
    let follower = spec.echo.then(|| follow(spec.log_path.clone(), name.clone(), done.clone()));

    let outcome = match wait_until(&mut child.child, start + spec.timeout)
        .with_context(|| format!("failed to wait for step {name}"))?
    {
        Some(status) => outcome_of(status),
        None => {
            tracing::warn!(step = %name, timeout = %humantime::format_duration(spec.timeout), "check timed out; killing process group");
            child.stop().with_context(|| format!("failed to kill step {name}"))?;
            CheckOutcome::TimedOut
        }
    };
    done.store(true, Ordering::SeqCst);
    if let Some(follower) = follower {
        let _ = follower.join();
    }
    let duration = start.elapsed();
    let line = status_line(name, &outcome, duration, spec.timeout);
    let log_tail = finish_log(&spec.log_path, &line)
        .with_context(|| format!("failed to append status to log file {log_path} for step {name}"))?;
    Ok(CheckResult { outcome, duration, log_tail })
}

/// Prints the log's complete lines to stderr as they are written, until
/// `done`; then what is left.
fn follow(path: PathBuf, name: String, done: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok(mut file) = File::open(&path) else { return };
        let mut pending = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let finished = done.load(Ordering::SeqCst);
            while let Ok(read) = file.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                pending.extend_from_slice(&chunk[..read]);
                while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    echo_line(&name, &line);
                }
            }
            if finished {
                if !pending.is_empty() {
                    echo_line(&name, &pending);
                }
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    })
}

fn echo_line(name: &str, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = scrub_held(text.trim_end_matches(['\n', '\r']));
    let _ = writeln!(io::stderr().lock(), "{name} | {text}");
}

fn open_log(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    File::create(path)
}

/// Appends the status line and returns the tail, which therefore ends with it.
fn finish_log(path: &Path, line: &str) -> io::Result<Vec<String>> {
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    // The command's output may not end in a newline; keep our line on its own.
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
    }
    let sep = if last[0] == b'\n' { "" } else { "\n" };
    writeln!(file, "{sep}{line}")?;
    tail_lines(path, TAIL_LINES)
}

fn outcome_of(status: ExitStatus) -> CheckOutcome {
    if status.success() {
        CheckOutcome::Passed
    } else {
        CheckOutcome::Failed { exit_code: status.code(), signal: status.signal() }
    }
}

/// The line appended to the log for whoever reads it later.
fn status_line(name: &str, outcome: &CheckOutcome, took: Duration, timeout: Duration) -> String {
    let how = match outcome {
        CheckOutcome::Passed => "passed".to_string(),
        CheckOutcome::Failed { exit_code, signal } => match (exit_code, signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "failed".to_string(),
        },
        CheckOutcome::TimedOut => {
            let limit = humantime::format_duration(timeout);
            return format!("[patchmoi] step {name} timed out after {limit}; process group killed");
        }
    };
    format!("[patchmoi] step {name} {how} after {:.1?}", took)
}

/// Parses a flow file timeout such as `30m`, `90s`, `1h`, `1h30m`, `2h 15m` (humantime syntax). Err(reason) for anything else, including zero.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("timeout is empty".to_string());
    }
    let duration = humantime::parse_duration(trimmed).map_err(|e| format!("invalid timeout `{trimmed}`: {e}"))?;
    if duration.is_zero() {
        return Err(format!("timeout `{trimmed}` is zero"));
    }
    Ok(duration)
}

/// The last `n` lines of a file (reads from the end, so a multi-gigabyte log does not get loaded whole).
pub fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    // A trailing newline ends the last line rather than starting an empty one,
    // so we need n + 1 separators (or the file start) to have n whole lines.
    let separators = |buf: &[u8]| {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        body.iter().filter(|&&b| b == b'\n').count()
    };
    while pos > 0 && separators(&buf) < n && len - pos < MAX_TAIL_BYTES {
        let step = pos.min(8192);
        pos -= step;
        let mut chunk = vec![0u8; step as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, command: &str) -> CheckSpec {
        CheckSpec {
            name: "build".to_string(),
            command: command.to_string(),
            cwd: dir.to_path_buf(),
            env: Vec::new(),
            env_remove: Vec::new(),
            inherit_env: true,
            echo: false,
            timeout: Duration::from_secs(30),
            log_path: dir.join("logs/nested/build.log"),
        }
    }

    #[test]
    fn failing_command_reports_exit_code_and_pipefail_applies() {
        let dir = tempfile::tempdir().unwrap();
        let failed = |code| CheckOutcome::Failed { exit_code: Some(code), signal: None };
        let result = run_check(&spec(dir.path(), "printf partial; exit 3")).unwrap();
        assert_eq!(result.outcome, failed(3));
        assert_eq!(result.log_tail[0], "partial");
        assert!(result.log_tail[1].starts_with("[patchmoi] step build exited with code 3 after "));
        let result = run_check(&spec(dir.path(), "false | true")).unwrap();
        assert_eq!(result.outcome, failed(1));
    }

    #[test]
    fn output_is_logged_and_tail_ends_with_status_line() {
        let dir = tempfile::tempdir().unwrap();
        let script = "seq -f 'line %g' 199; echo line 200 >&2";
        let tail = run_check(&spec(dir.path(), script)).unwrap().log_tail;
        assert_eq!(tail.len(), 50);
        // 200 output lines (the last via stderr), then our status line.
        assert_eq!(tail[..2], ["line 152", "line 153"]);
        assert_eq!(tail[47..49], ["line 199", "line 200"]);
        assert!(tail[49].starts_with("[patchmoi] step build passed after "), "{}", tail[49]);
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "sleep 30 & echo $! > grandchild.pid; sleep 30");
        s.timeout = Duration::from_millis(300);
        let start = Instant::now();
        let result = run_check(&s).unwrap();
        assert_eq!(result.outcome, CheckOutcome::TimedOut);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        let last = result.log_tail.last().unwrap();
        assert_eq!(last, "[patchmoi] step build timed out after 300ms; process group killed");

        let pid_text = fs::read_to_string(dir.path().join("grandchild.pid")).unwrap();
        let pid: libc::pid_t = pid_text.trim().parse().unwrap();
        // Reaping the orphan is up to pid 1, which may be slow or absent in a
        // container, so a zombie counts as gone.
        let gone = || {
            // SAFETY: signal 0 only checks existence.
            let missing = unsafe { libc::kill(pid, 0) } != 0;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.contains(") Z ");
            missing || zombie
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while !gone() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "grandchild {pid} still running");
    }

    #[test]
    fn env_is_set_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), r#"echo "FOO=$FOO HOME=${HOME-no} SECRET=${SECRET-no}""#);
        s.env = vec![("FOO".into(), "a b".into()), ("SECRET".into(), "x".into())];
        s.env_remove = vec!["HOME".into(), "SECRET".into()];
        let result = run_check(&s).unwrap();
        assert_eq!(result.log_tail[0], "FOO=a b HOME=no SECRET=no");
    }

    #[test]
    fn missing_cwd_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "true");
        s.cwd = dir.path().join("no-such-dir");
        let err = format!("{:#}", run_check(&s).unwrap_err());
        assert!(err.contains("no-such-dir") && err.contains("build"), "{err}");
    }

    #[test]
    fn parse_timeout_table() {
        let ok = [("30m", 1800), ("90s", 90), ("1h", 3600), ("1h30m", 5400), ("2h 15m", 8100)];
        for (text, secs) in ok {
            assert_eq!(parse_timeout(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for text in ["", "0s", "0", "30", "abc", "-5m", "5 parsecs"] {
            assert!(parse_timeout(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn tail_lines_edge_cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "").unwrap();
        assert!(tail_lines(&path, 5).unwrap().is_empty());
        fs::write(&path, "a\r\nb\n\nc").unwrap();
        assert_eq!(tail_lines(&path, 3).unwrap(), ["b", "", "c"]);
        assert_eq!(tail_lines(&path, 10).unwrap(), ["a", "b", "", "c"]);
        // Chunk boundaries: lines longer than one 8 KiB read.
        let long = "x".repeat(10_000);
        fs::write(&path, format!("{long}1\n{long}2\n{long}3\n")).unwrap();
        let want = [format!("{long}2"), format!("{long}3")];
        assert_eq!(tail_lines(&path, 2).unwrap(), want);
    }
}
