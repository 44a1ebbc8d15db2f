//! Secrets are values, not names. Every secret the process holds (the
//! credential variables it started with, tokens it was handed, the HMAC
//! secrets of the service) is registered here once with [`hold`], and
//! [`scrub`] hides each value in everything patchmoi writes or prints:
//! step logs, state.json, reports, the job summary and outputs, the
//! database, stdout and stderr.
//!
//! Children never inherit credentials: `run:` steps get the allowlist of
//! [`step_allowed`] plus the secrets they name in their flow (`secrets:`).

use std::collections::BTreeMap;
use std::sync::{OnceLock, RwLock};

/// Credentials patchmoi knows by name, whatever their pattern.
pub const KNOWN_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "INPUT_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_RUNTIME_URL",
    "PATCH_ADMIN_TOKEN",
    "PATCH_WEBHOOK_SECRET",
    "PATCH_WORKSPACE_BACKEND_SECRET",
    "PATCH_FLOW_DISPATCH_SECRET",
];

/// Whether a variable's name says it holds a credential: a known name; a
/// name ending in `_TOKEN`, `_KEY`, `_SECRET`, `_PASSWORD`, `_PASS`,
/// `_PAT` or `_CREDENTIALS` (any case); `ACTIONS_*_TOKEN`; or one whose
/// `_`-separated words include TOKEN, SECRET, PASSWORD, PASSWD or
/// CREDENTIAL(S) (so `GH_TOKEN_FILE` is one and `TOKENIZER_THREADS` is not).
pub fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if KNOWN_CREDENTIALS.contains(&upper.as_str()) {
        return true;
    }
    const SUFFIXES: [&str; 7] = ["_TOKEN", "_KEY", "_SECRET", "_PASSWORD", "_PASS", "_PAT", "_CREDENTIALS"];
    const WORDS: [&str; 6] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS"];
    SUFFIXES.iter().any(|suffix| upper.ends_with(suffix))
        || (upper.starts_with("ACTIONS_") && upper.ends_with("_TOKEN"))
        || upper.split('_').any(|word| WORDS.contains(&word))
}

/// Whether a variable of patchmoi's environment may reach a `run:` step:
/// what a build needs to find its tools and nothing that grants access.
/// The step's own `env:` and the secrets it names come on top.
pub fn step_allowed(name: &str) -> bool {
    if is_credential_name(name) {
        return false;
    }
    const EXACT: [&str; 21] = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "TZ",
        "LANG",
        "LANGUAGE",
        "TMPDIR",
        "CI",
        "CARGO_HOME",
        "NO_COLOR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    ];
    const PREFIXES: [&str; 4] = ["LC_", "GITHUB_", "RUNNER_", "RUSTUP_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Credentials by variable name, held in memory for the steps that name
/// them. Its Debug shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, String>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    pub fn new(by_name: BTreeMap<String, String>) -> Credentials {
        Credentials(by_name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
}

/// The shortest value worth hiding: shorter ones (`1`, `true`) would blank
/// out ordinary text without protecting anything.
const MIN_LEN: usize = 4;

fn registry() -> &'static RwLock<Vec<String>> {
    static HELD: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    HELD.get_or_init(|| RwLock::new(Vec::new()))
}

/// Registers secret values for the life of the process.
pub fn hold<I, S>(values: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut held = registry().write().unwrap_or_else(|poisoned| poisoned.into_inner());
    for value in values {
        let value = value.into();
        if value.len() >= MIN_LEN && !held.contains(&value) {
            held.push(value);
        }
    }
    // Longest first, so a secret that contains another is hidden whole.
    held.sort_by_key(|value| std::cmp::Reverse(value.len()));
}

/// Whether any secret is held (nothing to scrub otherwise).
pub fn holds_any() -> bool {
    !registry().read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_empty()
}

/// Every value registered with [`hold`].
pub fn held() -> Vec<String> {
    registry().read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// Hides every secret in `text`, the held ones and `secrets`: for logs
/// and files that people read.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = scrub_held(text);
    for secret in secrets.iter().filter(|secret| secret.len() >= MIN_LEN) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Hides every held secret in `text`.
pub fn scrub_held(text: &str) -> String {
    let held = registry().read().unwrap_or_else(|poisoned| poisoned.into_inner());
    if held.is_empty() || !held.iter().any(|secret| text.contains(secret.as_str())) {
        return text.to_string();
    }
    let mut out = text.to_string();
    for secret in held.iter() {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_are_recognised_by_pattern() {
        for name in [
            "GITHUB_TOKEN",
            "OPENAI_API_KEY",
            "npm_config_password",
            "DB_PASS",
            "FORK_PAT",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "ACTIONS_RUNTIME_TOKEN",
            "PATCH_WEBHOOK_SECRET",
            "GH_TOKEN_FILE",
            "SSH_PRIVATE_KEY",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in ["PATH", "TOKENIZER_THREADS", "KEYBOARD", "PASSAGE", "GITHUB_SHA", "PATCHMOI_TAG"] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[test]
    fn steps_get_the_allowlist_only() {
        for name in ["PATH", "HOME", "LC_ALL", "GITHUB_SHA", "RUNNER_TEMP", "RUSTUP_HOME", "https_proxy", "CI"] {
            assert!(step_allowed(name), "{name}");
        }
        for name in [
            "GITHUB_TOKEN",
            "ACTIONS_RUNTIME_TOKEN",
            "SSH_AUTH_SOCK",
            "GIT_SSH_COMMAND",
            "OPENAI_API_KEY",
            "AWS_REGION",
        ] {
            assert!(!step_allowed(name), "{name}");
        }
    }

    #[test]
    fn held_values_are_scrubbed_longest_first() {
        hold(["s3cr3t-value-for-scrub-test", "s3cr3t-value-for-scrub-test-and-more", "ab"]);
        assert_eq!(scrub_held("x s3cr3t-value-for-scrub-test-and-more y"), "x *** y");
        assert_eq!(scrub("ab s3cr3t-value-for-scrub-test", &["other-secret".into()]), "ab ***");
        assert!(!held().contains(&"ab".to_string()), "too short to hold");
    }
}
