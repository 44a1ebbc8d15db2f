//! Talking to remotes: listing tags, fetching one ref, leased pushes, and,
//! from a workflow, credentials handed to git through the environment only,
//! deepening a shallow checkout, and the questions asked before a push
//! (which workflow files it changes, how the old stack compares with the
//! new one).

use anyhow::{Context, Result};
use base64::Engine;

use super::{FetchOutcome, Git};
use crate::core::redact::redact_url;

impl Git {
    /// Tag names on a remote (URL or path), without the `^{}` peel lines.
    pub fn ls_remote_tags(&self, remote: &str) -> Result<Vec<String>> {
        let out = self
            .run(&["ls-remote", "--tags", "--refs", "--end-of-options", remote])
            .with_context(|| format!("failed to list tags of {}", redact_url(remote)))?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter_map(|(_, name)| name.strip_prefix("refs/tags/"))
            .map(str::to_string)
            .collect())
    }

    /// Fetches one ref from `remote` into `into` (forced: it is our own
    /// namespace), never all tags. `refname` must be a full, validated ref.
    pub fn fetch_ref(&self, remote: &str, refname: &str, into: &str) -> Result<FetchOutcome> {
        self.fetch_refs(remote, &[(refname, into)])
    }

    /// [`Git::fetch_ref`] for several refs in one fetch (one negotiation,
    /// one process): all of them, or, when any is missing, none.
    pub fn fetch_refs(&self, remote: &str, refs: &[(&str, &str)]) -> Result<FetchOutcome> {
        let refspecs: Vec<String> = refs.iter().map(|(refname, into)| format!("+{refname}:{into}")).collect();
        let mut args = vec!["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--end-of-options", remote];
        args.extend(refspecs.iter().map(String::as_str));
        let output = self.output(&args, None)?;
        if output.status.success() {
            return Ok(FetchOutcome::Fetched);
        }
        let stderr = redact_url(String::from_utf8_lossy(&output.stderr).trim());
        // Message from fetch-pack / transport when the ref is absent (stable under LC_ALL=C).
        if stderr.contains("couldn't find remote ref") {
            return Ok(FetchOutcome::Missing);
        }
        Ok(FetchOutcome::Unreachable(stderr))
    }

    /// The configured URL of a remote, or None.
    pub fn remote_url(&self, remote: &str) -> Result<Option<String>> {
        let key = format!("remote.{remote}.url");
        let output = self.output(&["config", "--get", &key], None)?;
        Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// Pushes `src` to `dst` on `remote`, leasing on the value we expect there
    /// (`None` = the ref must not exist yet), so a concurrent push is never
    /// overwritten.
    pub fn push_with_lease(&self, remote: &str, src: &str, dst: &str, expect: Option<&str>) -> Result<()> {
        let lease = format!("--force-with-lease={dst}:{}", expect.unwrap_or(""));
        let refspec = format!("{src}:{dst}");
        self.run(&["push", "--quiet", "--porcelain", &lease, "--end-of-options", remote, &refspec])
            .with_context(|| format!("failed to push {dst} to {remote}"))?;
        Ok(())
    }

    /// Every ref under `prefix` (e.g. `refs/heads/patchmoi/`) on `remote`,
    /// with its value, in name order.
    pub fn remote_refs_under(&self, remote: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .run(&["ls-remote", "--refs", "--end-of-options", remote])
            .with_context(|| format!("failed to list the refs of {}", redact_url(remote)))?;
        let mut found: Vec<(String, String)> = out
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(_, name)| name.starts_with(prefix))
            .map(|(sha, name)| (name.to_string(), sha.to_string()))
            .collect();
        found.sort();
        Ok(found)
    }

    /// Deletes `refs` (name, expected value) on `remote`, each leased on its
    /// value, so a ref someone moved meanwhile is left alone.
    pub fn delete_remote_refs(&self, remote: &str, refs: &[(String, String)]) -> Result<()> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = vec!["push".into(), "--quiet".into(), "--porcelain".into()];
        args.extend(refs.iter().map(|(name, sha)| format!("--force-with-lease={name}:{sha}")));
        args.extend(["--end-of-options".into(), remote.to_string()]);
        args.extend(refs.iter().map(|(name, _)| format!(":{name}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args).with_context(|| format!("failed to delete {} ref(s) on {}", refs.len(), redact_url(remote)))?;
        Ok(())
    }

    /// The value of `refname` on `remote`, or None when it has none.
    pub fn remote_ref(&self, remote: &str, refname: &str) -> Result<Option<String>> {
        let out = self
            .run(&["ls-remote", "--end-of-options", remote, refname])
            .with_context(|| format!("failed to read {refname} from {remote}"))?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(_, name)| *name == refname)
            .map(|(sha, _)| sha.to_string()))
    }

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
