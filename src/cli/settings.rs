//! The environment, read once: everything else receives values, so tests
//! build settings instead of mutating the process environment.

use std::collections::BTreeMap;

use std::ffi::OsString;

pub use crate::core::env::Env;
use crate::core::secrets::{self, is_credential_name};

/// Names the file descriptor a re-executed patchmoi reads its credentials from.
const CREDENTIALS_FD: &str = "PATCHMOI_CREDENTIALS_FD";

/// More than this does not fit a pipe's buffer on every platform, and the
/// write below must not block (nothing reads until after the exec).
const MAX_HANDOFF: usize = 16 * 1024;

/// `run:` steps are patchmoi's children, and a child can read its parent's
/// environment from `/proc/$PPID/environ` (removing a variable later does
/// not change what is there). So when any credential variable is set
/// (`GITHUB_TOKEN`, `INPUT_TOKEN`, `OPENAI_API_KEY`, … see
/// `core::secrets::is_credential_name`), patchmoi execs itself once without
/// them and hands them over on an inherited pipe: after that no process a
/// step can see holds one in its environment (action.yml `exec`s patchmoi,
/// so no shell keeps them either). patchmoi keeps them in memory, and a step
/// gets only those it names in its flow (`secrets:`). Returns only when
/// there is nothing to hand over, or if the exec failed (then they stay in
/// the environment, and the steps still get only the allowlist).
pub fn hand_over_credentials() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    if std::env::var_os(CREDENTIALS_FD).is_some() {
        return;
    }
    let credentials: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, value)| !value.is_empty() && name.to_str().is_some_and(is_credential_name))
        .collect();
    if credentials.is_empty() {
        return;
    }
    let mut payload = Vec::new();
    for (name, value) in &credentials {
        payload.extend_from_slice(name.as_bytes());
        payload.push(0);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
    }
    if payload.len() > MAX_HANDOFF {
        eprintln!("warning: the credential variables are too large to hide from run: steps' /proc; continuing");
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
    // Below MAX_HANDOFF the pipe's buffer takes it all, so this cannot block.
    // SAFETY: writes `payload` to the pipe we just made, then closes its write end.
    let written = unsafe { libc::write(write, payload.as_ptr().cast(), payload.len()) };
    unsafe { libc::close(write) };
    if written != payload.len() as isize {
        unsafe { libc::close(read) };
        return;
    }
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1)).env(CREDENTIALS_FD, read.to_string());
    for (name, _) in &credentials {
        command.env_remove(name);
    }
    let err = command.exec();
    unsafe { libc::close(read) };
    eprintln!("warning: could not hide the credentials from run: steps ({err}); continuing");
}

/// The credentials a [`hand_over_credentials`] exec passed on, read once
/// from its pipe.
fn take_handed_over_credentials() -> Vec<(String, String)> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var(CREDENTIALS_FD).ok().and_then(|fd| fd.parse::<i32>().ok()) else {
        return Vec::new();
    };
    // SAFETY: the descriptor was made for us by the exec above and is read once.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut payload = Vec::new();
    if pipe.read_to_end(&mut payload).is_err() {
        return Vec::new();
    }
    let mut fields = payload.split(|byte| *byte == 0).map(|field| String::from_utf8_lossy(field).into_owned());
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        pairs.push((name, value));
    }
    pairs
}

/// The process environment, read once (the one place that reads
/// `std::env`), with the handed-over credentials put back; their values
/// are held for scrubbing from then on.
pub fn capture_env() -> Env {
    let mut vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != CREDENTIALS_FD)
        .collect();
    vars.extend(take_handed_over_credentials());
    let env = Env::from_map(vars);
    secrets::hold(env.secret_values());
    env
}
