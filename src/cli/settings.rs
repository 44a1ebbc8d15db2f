//! The environment, read once: everything else receives values, so tests
//! build settings instead of mutating the process environment.

use std::collections::BTreeMap;

pub use crate::core::env::{Env, SECRET_VARIABLES};

/// Names the file descriptor a re-executed patchmoi reads the token from.
const TOKEN_FD: &str = "PATCHMOI_TOKEN_FD";

/// `run:` steps are patchmoi's children, and a child can read its parent's
/// environment from `/proc/$PPID/environ` (removing a variable later does
/// not change what is there). So when `INPUT_TOKEN` is set, patchmoi execs
/// itself once without it and hands the token over on an inherited pipe:
/// after that no process a step can see holds it in its environment
/// (action.yml `exec`s patchmoi, so no shell keeps it either). Returns only
/// when there is nothing to hand over, or if the exec failed (then the token
/// stays in the environment, as before).
pub fn hand_over_token() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let Some(token) = std::env::var_os("INPUT_TOKEN") else { return };
    if token.is_empty() || std::env::var_os(TOKEN_FD).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut fds = [0; 2];
    // SAFETY: plain pipe(2) into a two-element array; no CLOEXEC, so the
    // read end survives the exec below.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let (read, write) = (fds[0], fds[1]);
    let bytes = token.as_bytes();
    // A token is far below the pipe's buffer, so this write cannot block.
    // SAFETY: writes `bytes` to the pipe we just made, then closes its write end.
    let written = unsafe { libc::write(write, bytes.as_ptr().cast(), bytes.len()) };
    unsafe { libc::close(write) };
    if written != bytes.len() as isize {
        unsafe { libc::close(read) };
        return;
    }
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env_remove("INPUT_TOKEN")
        .env(TOKEN_FD, read.to_string())
        .exec();
    unsafe { libc::close(read) };
    eprintln!("warning: could not hide the token from run: steps ({err}); continuing");
}

/// The token a [`hand_over_token`] exec passed on, read once from its pipe.
fn take_handed_over_token() -> Option<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let fd: i32 = std::env::var(TOKEN_FD).ok()?.parse().ok()?;
    // SAFETY: the descriptor was made for us by the exec above and is read once.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut token = String::new();
    pipe.read_to_string(&mut token).ok()?;
    Some(token)
}

/// The process environment, read once (the one place that reads
/// `std::env`), with a handed-over token put back under `INPUT_TOKEN`.
pub fn capture_env() -> Env {
    let mut vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != TOKEN_FD)
        .collect();
    if let Some(token) = take_handed_over_token() {
        vars.insert("INPUT_TOKEN".into(), token);
    }
    Env::from_map(vars)
}
