//! A snapshot of the environment as a plain value: the CLI captures it once
//! and resolves settings from it; tests build one instead of mutating the
//! process environment. Its Debug shows names only.

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
    /// Variables as given.
    pub fn from_map(vars: BTreeMap<String, String>) -> Env {
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
        code_mode_enabled(self.get("CODEX_FLOWS_MODE"), self.get("CODEX_FLOWS_ENABLE_CODE_MODE"))
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

/// Whether `runner: code-mode` steps may run, from the two variables that
/// open the gate.
pub fn code_mode_enabled(flows_mode: Option<&str>, enable_code_mode: Option<&str>) -> bool {
    let mode = flows_mode.map(|value| value.trim().to_ascii_lowercase());
    let enable = enable_code_mode.map(|value| value.trim().to_ascii_lowercase());
    mode.as_deref() == Some("code-mode") || matches!(enable.as_deref(), Some("1" | "true" | "yes" | "on"))
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
