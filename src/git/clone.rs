//! Fetching a pack's source: a temporary, shallow copy of one commit of a
//! repository (the tip of its default branch, or a named ref), nothing else.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Git;
use crate::core::redact::redact_url;

impl Git {
    /// Clones one commit of `url` into the new directory `dir`: the default
    /// branch's tip, or `reference` (a branch, a tag or a commit the server
    /// lets us fetch). Returns a handle on the clone.
    pub fn shallow_clone(url: &str, reference: Option<&str>, dir: &Path) -> Result<Git> {
        super::check_version()?;
        if url.starts_with('-') || reference.is_some_and(|r| r.is_empty() || r.starts_with('-')) {
            bail!("refusing a URL or ref that starts with '-'");
        }
        let target = dir.to_str().context("the clone's directory is not UTF-8")?;
        let parent = Git::at(dir.parent().unwrap_or(dir));
        match reference {
            None => {
                parent
                    .run(&["clone", "--depth", "1", "--quiet", "--no-tags", "--", url, target])
                    .with_context(|| format!("failed to clone {}", redact_url(url)))?;
            }
            Some(reference) => {
                parent.run(&["init", "--quiet", "--", target])?;
                let clone = Git::at(dir);
                clone
                    .run(&["fetch", "--depth", "1", "--no-tags", "--quiet", "--end-of-options", url, reference])
                    .with_context(|| format!("failed to fetch {reference} from {}", redact_url(url)))?;
                clone.run(&["checkout", "--detach", "--quiet", "FETCH_HEAD"])?;
            }
        }
        Ok(Git::at(dir))
    }

    /// The commit checked out, when this is a repository with one.
    pub fn head_commit(&self) -> Option<String> {
        self.resolve_commit("HEAD").ok().flatten()
    }
}
