//! The environment, read once: everything else receives values, so tests
//! build settings instead of mutating the process environment.

use std::collections::BTreeMap;

/// Variables that hold credentials: never passed to a flow's `run:` steps.
pub const SECRET_VARIABLES: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "PATCH_ADMIN_TOKEN",
    "PATCH_WEBHOOK_SECRET",
    "PATCH_WORKSPACE_BACKEND_SECRET",
    "PATCH_FLOW_DISPATCH_SECRET",
];

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

/// A snapshot of the process environment.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The one place that reads `std::env`.
    pub fn capture() -> Env {
        let mut vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k != TOKEN_FD)
            .collect();
        if let Some(token) = take_handed_over_token() {
            vars.insert("INPUT_TOKEN".into(), token);
        }
        Env { vars }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env { vars: pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// Whether the Code Mode gate is open.
    pub fn code_mode(&self) -> bool {
        crate::flow::flows::code_mode_enabled(self.get("CODEX_FLOWS_MODE"), self.get("CODEX_FLOWS_ENABLE_CODE_MODE"))
    }

    /// Values of the secret variables that are set: logs replace them by `***`.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_names().iter().filter_map(|name| self.get(name)).map(str::to_string).collect()
    }

    /// Names of variables a `run:` step must not see: the known ones, and
    /// any set variable whose name says it holds a credential (a feed
    /// source's `tokenEnv`, a CI's own `*_TOKEN`, …).
    pub fn secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = SECRET_VARIABLES.iter().map(|name| name.to_string()).collect();
        let by_name: Vec<String> =
            self.vars.keys().filter(|name| looks_secret(name) && !names.contains(name)).cloned().collect();
        names.extend(by_name);
        names
    }
}

/// Whether a variable's name says it holds a credential: one of its
/// `_`-separated words is TOKEN, SECRET, PASSWORD, … (so `GH_TOKEN` is one
/// and `TOKENIZER_THREADS` is not), or it ends in `API_KEY`/`PRIVATE_KEY`.
fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS"];
    upper.split('_').any(|word| words.contains(&word)) || upper.ends_with("API_KEY") || upper.ends_with("PRIVATE_KEY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "x"), ("CODEX_FLOWS_MODE", "code-mode")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert!(env.code_mode());
        assert!(!Env::default().code_mode());
    }

    #[test]
    fn credential_variables_are_secret_by_name() {
        let env = Env::from_pairs([
            ("FORK_DISPATCH_TOKEN", "ghp_x"),
            ("npm_config_password", "p"),
            ("OPENAI_API_KEY", "sk"),
            ("PATH", "/bin"),
            ("TOKENIZER_THREADS", "4"),
        ]);
        let names = env.secret_names();
        for secret in ["GITHUB_TOKEN", "FORK_DISPATCH_TOKEN", "npm_config_password", "OPENAI_API_KEY"] {
            assert!(names.iter().any(|name| name == secret), "{secret}");
        }
        assert!(!names.iter().any(|name| name == "PATH"));
        assert_eq!(env.secret_values().len(), 3);
    }
}
