//! A step's processes never outlive patchmoi.
//!
//! Each step command runs under a small supervisor: patchmoi itself,
//! re-executed as `patchmoi __supervise --watch-fd 3 -- <program> <args>`.
//! The supervisor starts the step in a process group of its own, becomes
//! the reaper of everything the step leaves behind, forwards the step's
//! exit status as its own, and ends the whole group:
//!
//! - when the step's program exits (what it left running is stopped with it);
//! - when the pipe on its watch descriptor reaches end of file: patchmoi
//!   holds the only write end, so that happens when patchmoi dies (even by
//!   `kill -9`) or closes it on purpose (a step's time limit).
//!
//! `PR_SET_PDEATHSIG` would reach only the direct child, and fires when the
//! spawning *thread* exits; a pipe's end of file has neither limit.
//!
//! The supervisor runs in its own process group too, so a Ctrl-C at the
//! terminal stops patchmoi, and the supervisor then stops the step rather
//! than dying with patchmoi and leaving it running. It passes the step's
//! environment through unchanged (it is the same process environment) and
//! prints nothing but a failure to start the program.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The hidden subcommand that runs the supervisor.
pub const SUBCOMMAND: &str = "__supervise";
/// The descriptor the supervisor watches for its parent's end.
const WATCH_FD: RawFd = 3;
/// How long a step's process group gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Runs every later step under `program` (the patchmoi binary). Until this
/// is called (the library's own unit tests), steps run directly, in their
/// own process group, as before.
pub fn supervise_steps_with(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

/// A command to start, supervised when supervision is on. Configure
/// `command` (cwd, environment, stdio) as for the step's program itself.
pub struct StepCommand {
    pub command: Command,
    watch: Option<(OwnedFd, OwnedFd)>,
}

/// A started step.
pub struct Step {
    pub child: Child,
    /// The write end of the supervisor's watch pipe; closing it stops the step.
    watch: Option<OwnedFd>,
}

impl StepCommand {
    /// `program args…`, under the supervisor when it is on.
    pub fn new(program: impl AsRef<OsStr>, args: &[impl AsRef<OsStr>]) -> io::Result<StepCommand> {
        let Some(supervisor) = PROGRAM.get() else {
            let mut command = Command::new(program);
            command.args(args);
            return Ok(StepCommand { command, watch: None });
        };
        let (read, write) = pipe()?;
        let mut command = Command::new(supervisor);
        command.args([OsStr::new(SUBCOMMAND), OsStr::new("--watch-fd"), OsStr::new(&WATCH_FD.to_string())]);
        command.arg("--").arg(program).args(args);
        let raw = read.as_raw_fd();
        // SAFETY: dup2 and fcntl are async-signal-safe and touch no memory.
        unsafe {
            command.pre_exec(move || {
                // dup2 clears close-on-exec on the copy; a descriptor that is
                // already the one we want keeps it unless we clear it.
                let done = if raw == WATCH_FD { libc::fcntl(raw, libc::F_SETFD, 0) } else { libc::dup2(raw, WATCH_FD) };
                if done < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(StepCommand { command, watch: Some((read, write)) })
    }

    /// Starts it in a process group of its own.
    pub fn spawn(mut self) -> io::Result<Step> {
        self.command.process_group(0);
        let child = self.command.spawn()?;
        // Only the supervisor keeps the read end.
        let watch = self.watch.map(|(read, write)| {
            drop(read);
            write
        });
        Ok(Step { child, watch })
    }
}

impl Step {
    /// Stops the step and everything it started: SIGTERM, up to
    /// `TERM_GRACE`, then SIGKILL.
    pub fn stop(&mut self) -> io::Result<()> {
        let pgid = self.child.id() as libc::pid_t;
        if self.watch.take().is_some() {
            // The supervisor does the SIGTERM, grace, SIGKILL of the step's
            // group; if it somehow does not exit, it goes too.
            if wait_until(&mut self.child, Instant::now() + TERM_GRACE + Duration::from_secs(2))?.is_none() {
                signal_group(pgid, libc::SIGKILL)?;
                self.child.wait()?;
            }
            return Ok(());
        }
        // Unsupervised: the group is the program's own (its pgid is its pid;
        // the id cannot be reused while any member is alive).
        signal_group(pgid, libc::SIGTERM)?;
        let exited = wait_until(&mut self.child, Instant::now() + TERM_GRACE)?.is_some();
        signal_group(pgid, libc::SIGKILL)?;
        if !exited {
            self.child.wait()?;
        }
        Ok(())
    }
}

/// Polls the child until it exits (`Some`) or the deadline passes (`None`).
/// The sleep grows so long steps cost little.
pub fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Sends `signal` to process group `pgid`; a group already gone is fine.
fn signal_group(pgid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        err if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        err => Err(err),
    }
}

/// A pipe whose both ends close on exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The first executable `name` on `path` (a `PATH` value); a name with a
/// slash is itself, if it is there.
pub fn find_program(name: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |candidate: &Path| {
        candidate.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return executable(Path::new(name)).then(|| PathBuf::from(name));
    }
    path.split(':').filter(|dir| !dir.is_empty()).map(|dir| Path::new(dir).join(name)).find(|c| executable(c))
}

/// The supervisor itself: runs `program` with `args`, and never returns.
/// Its exit status is the program's (a signal is raised again).
pub fn supervise(watch_fd: RawFd, program: &OsStr, args: &[OsString]) -> ! {
    // The step must not inherit the watch descriptor.
    // SAFETY: fcntl on a descriptor number; harmless if it is not open.
    unsafe { libc::fcntl(watch_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments. Orphans of the step are then
    // re-parented to us, so we can reap them and see the group empty.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(err) => {
            eprintln!("[patchmoi] could not start {}: {err}", Path::new(program).display());
            std::process::exit(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    // We reap with waitpid(-1) ourselves from here on.
    std::mem::forget(child);
    let mut status = None;
    loop {
        if parent_gone(watch_fd, Duration::from_millis(100)) {
            end_group(pid, &mut status);
            std::process::exit(1);
        }
        reap(pid, &mut status);
        if let Some(status) = status {
            // What the step left running goes with it.
            end_group(pid, &mut None);
            forward(status);
        }
    }
}

/// Whether the watch pipe reached end of file (or broke) within `wait`.
fn parent_gone(fd: RawFd, wait: Duration) -> bool {
    let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, valid for the call.
    let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis() as libc::c_int) };
    if ready <= 0 {
        return false;
    }
    let mut byte = [0u8; 64];
    // SAFETY: reads into a local buffer of the length given.
    let read = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), byte.len()) };
    read == 0 || (read < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
}

/// Reaps every child that has exited; records the step's own status.
fn reap(step: libc::pid_t, status: &mut Option<libc::c_int>) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes the status into a local.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if pid == step {
            *status = Some(raw);
        }
    }
}

/// SIGTERM to the step's group, up to `TERM_GRACE` for it to empty, then SIGKILL.
fn end_group(pgid: libc::pid_t, status: &mut Option<libc::c_int>) {
    let _ = signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        reap(pgid, status);
        // SAFETY: signal 0 only checks whether the group has members.
        if unsafe { libc::kill(-pgid, 0) } != 0 {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = signal_group(pgid, libc::SIGKILL);
    reap(pgid, status);
}

/// Exits as the step did.
fn forward(raw: libc::c_int) -> ! {
    let status = ExitStatus::from_raw(raw);
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    if let Some(signal) = status.signal() {
        // SAFETY: plain calls on our own process; no core file of ours.
        unsafe {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        std::process::exit(128 + signal);
    }
    std::process::exit(1);
}
