//! A snapshot of the environment as a plain value: the CLI captures it once
//! and resolves settings from it; tests build one instead of mutating the
//! process environment. Its Debug shows names only.

use std::collections::BTreeMap;

use super::secrets::{is_credential_name, step_allowed, Credentials};

/// What the codex-flows backend forwards to its flows by default (HOME and
/// PATH are in the allowlist anyway), and the variable that lists more.
pub const FLOW_FORWARD_ENV: &[&str] = &[
    "CODEX_FLOWS_MODE",
    "CODEX_FLOWS_ENABLE_CODE_MODE",
    "CODEX_FLOW_COMMIT",
    "CODEX_FLOW_PUSH",
    "CODEX_FLOW_PUBLISH",
    "CODEX_FLOW_FORCE",
    "CODEX_FLOW_SQUASH_PATCH_STACK",
    "CODEX_APP_SERVER_CODEX_COMMAND",
    "CODEX_APP_SERVER_CODEX_PACKAGE",
    "CODEX_APP_SERVER_BUNX_COMMAND",
    "CODEX_HOME",
    "PEEZY_CODEX_REPO",
    "PEEZY_CODEX_TARGET_BRANCH",
    "PEEZY_CODEX_CARGO_TARGET_DIR",
    "CODEX_FLOW_BACKEND_FORWARD_ENV",
];

/// Whether the process environment, which every git process patchmoi
/// starts inherits, sets `name`: for the git layer, where it must tell
/// what git would do without asking a git process. Configuration of
/// patchmoi itself comes through [`Env`] from the CLI only.
pub fn inherited_by_git(name: &str) -> bool {
    std::env::var_os(name).is_some()
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

    /// The credential variables that are set (by name or pattern, see
    /// [`is_credential_name`]), with their values.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            self.vars
                .iter()
                .filter(|(name, value)| is_credential_name(name) && !value.is_empty())
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        )
    }

    /// Values of the credential variables that are set: everything written
    /// or printed replaces them by `***`.
    pub fn secret_values(&self) -> Vec<String> {
        self.credentials().values().map(str::to_string).collect()
    }

    /// The variables a step inherits: the allowlist of [`step_allowed`],
    /// the settings codex-flows forwards to its flows ([`FLOW_FORWARD_ENV`]),
    /// and the names listed in `CODEX_FLOW_BACKEND_FORWARD_ENV`; never a
    /// credential (a `flow.toml` step gets those it lists there as secrets).
    pub fn step_env(&self) -> Vec<(String, String)> {
        let listed: Vec<&str> = self
            .get("CODEX_FLOW_BACKEND_FORWARD_ENV")
            .map(|list| list.split([',', ' ', '\n']).filter(|name| !name.is_empty()).collect())
            .unwrap_or_default();
        self.vars
            .iter()
            .filter(|(name, _)| {
                step_allowed(name)
                    || (!is_credential_name(name)
                        && (FLOW_FORWARD_ENV.contains(&name.as_str()) || listed.contains(&name.as_str())))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
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
        let credentials = env.credentials();
        let names: Vec<&str> = credentials.names().collect();
        for secret in ["FORK_DISPATCH_TOKEN", "npm_config_password", "OPENAI_API_KEY"] {
            assert!(names.contains(&secret), "{secret}");
        }
        assert!(!names.contains(&"PATH"));
        assert_eq!(env.secret_values().len(), 3);
        let step: Vec<String> = env.step_env().into_iter().map(|(name, _)| name).collect();
        assert_eq!(step, ["PATH"]);
    }

    #[test]
    fn steps_get_the_codex_flows_settings_and_the_listed_names() {
        let env = Env::from_pairs([
            ("CODEX_HOME", "/h"),
            ("CODEX_FLOW_BACKEND_FORWARD_ENV", "MY_SETTING, OPENAI_API_KEY"),
            ("MY_SETTING", "1"),
            ("OPENAI_API_KEY", "sk-x"),
            ("UNLISTED", "2"),
        ]);
        let step: Vec<String> = env.step_env().into_iter().map(|(name, _)| name).collect();
        assert_eq!(step, ["CODEX_FLOW_BACKEND_FORWARD_ENV", "CODEX_HOME", "MY_SETTING"]);
    }
}
