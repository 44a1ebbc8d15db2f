//! Talking to the fork's remote from a workflow: credentials handed to git
//! through the environment only, deepening a shallow checkout, and the
//! questions asked before a push (which workflow files it changes, how the
//! old stack compares with the new one).

use anyhow::{Context, Result};
use base64::Engine;

use super::Git;

impl Git {
    /// The same repository, sending `token` as an HTTP header to `server`
    /// (`https://github.com`) on every fetch and push. It goes through
    /// `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`: never on a
    /// command line, in a remote URL or in a file. The empty value first
    /// resets headers a checkout may have configured (actions/checkout's
    /// `persist-credentials`): two Authorization headers are refused.
    pub fn with_http_auth(&self, server: &str, token: &str) -> Git {
        let mut git = self.clone();
        for (key, value) in http_auth_env(server, token) {
            git = git.with_env(&key, value);
        }
        git
    }

    /// Fetches the whole history of `remote`'s branches into a shallow
    /// repository (actions/checkout fetches one commit by default).
    pub fn unshallow(&self, remote: &str) -> Result<()> {
        self.run(&["fetch", "--unshallow", "--no-tags", "--quiet", "--end-of-options", remote])
            .with_context(|| format!("failed to fetch the full history from {remote}"))?;
        Ok(())
    }

    /// Paths under `prefix` that commits reachable from `tips`, and not yet
    /// known on `remote` (its remote-tracking refs), add, change or delete:
    /// what a push of `tips` would bring to the remote.
    pub fn paths_new_to_remote(&self, tips: &[&str], remote: &str, prefix: &str) -> Result<Vec<String>> {
        // `--not` must stay an option, so no `--end-of-options`: the tips are
        // object ids we computed, checked here to be hex.
        if let Some(bad) = tips.iter().find(|tip| tip.is_empty() || !tip.chars().all(|c| c.is_ascii_hexdigit())) {
            anyhow::bail!("not an object id: {bad:?}");
        }
        let not_remote = format!("--remotes={remote}");
        let mut args = vec!["log", "--no-renames", "--format=", "--name-only", "-z"];
        args.extend_from_slice(tips);
        args.extend(["--not", &not_remote, "--", prefix]);
        let out = self.with_env("GIT_LITERAL_PATHSPECS", "1").run_bytes(&args, None)?;
        let mut paths: Vec<String> = String::from_utf8_lossy(&out)
            .split(['\0', '\n'])
            .filter(|path| !path.is_empty())
            .map(str::to_string)
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// `git range-diff` of the old stack (`old_base..old_head`) against the
    /// new one (`new_base..new_head`), without colour.
    pub fn range_diff(&self, old_base: &str, old_head: &str, new_base: &str, new_head: &str) -> Result<String> {
        let old = format!("{old_base}..{old_head}");
        let new = format!("{new_base}..{new_head}");
        self.run(&["range-diff", "--no-color", "--no-notes", &old, &new])
    }
}

/// The environment of [`Git::with_http_auth`], for handles made elsewhere
/// (the runner's workspace).
pub fn http_auth_env(server: &str, token: &str) -> Vec<(String, String)> {
    let key = format!("http.{}/.extraheader", server.trim_end_matches('/'));
    vec![
        ("GIT_CONFIG_COUNT".into(), "2".into()),
        ("GIT_CONFIG_KEY_0".into(), key.clone()),
        ("GIT_CONFIG_VALUE_0".into(), String::new()),
        ("GIT_CONFIG_KEY_1".into(), key),
        ("GIT_CONFIG_VALUE_1".into(), format!("AUTHORIZATION: basic {}", basic_credential(token))),
    ]
}

/// The credential git sends for `token`: base64 of `x-access-token:<token>`.
/// As secret as the token itself (masked and scrubbed alike).
pub fn basic_credential(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_travel_in_the_environment_only() {
        let git = Git::at(std::path::Path::new(".")).with_http_auth("https://github.com/", "ghs_x");
        let env: Vec<(String, String)> =
            git.env.iter().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect();
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("GIT_CONFIG_COUNT"), Some("2"));
        assert_eq!(get("GIT_CONFIG_KEY_0"), Some("http.https://github.com/.extraheader"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some(""));
        // base64("x-access-token:ghs_x")
        assert_eq!(get("GIT_CONFIG_VALUE_1"), Some("AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3g="));
        assert!(git.dir.to_string_lossy().find("ghs_x").is_none());
    }
}
