//! `prune`: retention of old releases' refs, run folders and records.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::shared::{github_endpoint, Exit, LocalRecords};
use crate::core::env::Env;
use crate::core::error::usage;
use crate::flow::event::check_repo;
use crate::flow::flows::{self, Flow};
use crate::flow::prune::{apply, plan, PullCheck};
use crate::git::Git;
use crate::service::store::{Store, DB_FILE};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// How many of each flow's newest releases to keep (at least 1).
    #[arg(long, default_value_t = 5)]
    pub keep: usize,
    /// Also delete on the fork's remote (`stack.remote`): old candidate,
    /// `patchmoi/upstream/<tag>` and backup branches.
    #[arg(long)]
    pub push: bool,
    /// Delete; without it, only show what would be deleted.
    #[arg(long)]
    pub apply: bool,
    /// The fork on GitHub (`owner/name`) whose open pull requests keep
    /// their releases (default: GITHUB_REPOSITORY, else read from the
    /// remote's URL).
    #[arg(long)]
    pub repo: Option<String>,
    /// Do not look for open pull requests: with `--push --apply`, delete
    /// the remote's old candidate and base branches even when open pull
    /// requests could not be listed (no GITHUB_TOKEN).
    #[arg(long)]
    pub ignore_prs: bool,
    #[command(flatten)]
    pub records: LocalRecords,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `prune`.
pub fn cmd_prune(args: PruneArgs, env: &Env) -> Result<Exit> {
    if args.keep == 0 {
        return Err(usage("--keep must be at least 1: the newest release is always kept"));
    }
    if let Some(repo) = &args.repo {
        check_repo(repo).map_err(|err| usage(format!("--repo: {err}")))?;
    }
    let (root, data) = args.records.resolve(env)?;
    let flows = flows::discover(&root)?;
    let store = Store::open_to_read(&data)?;
    let pulls = open_pulls(&args, env, &Git::open(&root)?, &flows)?;
    let plan = plan(&root, &flows, &store.all_events()?, args.keep, args.push, &pulls)?;
    if args.apply && !plan.unchecked_refs.is_empty() {
        let refs: Vec<String> =
            plan.unchecked_refs.iter().map(|(remote, refname)| format!("{refname} on {remote}")).collect();
        let why: Vec<&str> = plan.unchecked.values().map(String::as_str).collect();
        return Err(usage(format!(
            "refusing to delete {} without knowing which are used by open pull requests ({}): \
             set GITHUB_TOKEN (and --repo if the remote's URL does not name the GitHub repository), \
             or pass --ignore-prs to delete them anyway; nothing was deleted",
            refs.join(", "),
            why.join("; ")
        )));
    }
    let (events, dispatches, attempts) = store.records_of(&plan.events)?;
    drop(store);
    if args.json {
        let records = json!({"events": events, "dispatches": dispatches, "attempts": attempts});
        println!("{}", json!({"applied": args.apply, "plan": plan, "database": records}));
    } else {
        let verb = if args.apply { "deleted" } else { "would delete" };
        for (remote, why) in &plan.unchecked {
            let refuse = if args.push {
                "; with --apply the remote's candidate and base branches stay unless --ignore-prs"
            } else {
                ""
            };
            println!("open pull requests on {remote} not checked: {why}{refuse}");
        }
        for kept in &plan.kept {
            println!("keep {}: {}", kept.tag, kept.why);
        }
        for tag in &plan.pruned {
            println!("prune {tag}");
        }
        for (refname, sha) in &plan.refs {
            println!("{verb} {refname} ({})", &sha[..sha.len().min(12)]);
        }
        for (remote, refs) in &plan.remote_refs {
            for (refname, sha) in refs {
                println!("{verb} {refname} on {remote} ({})", &sha[..sha.len().min(12)]);
            }
        }
        for path in &plan.files {
            println!("{verb} {}", path.display());
        }
        if !plan.events.is_empty() {
            println!(
                "{verb} the records of {} event(s): {events} stored event(s), {dispatches} dispatch(es), {attempts} attempt(s)",
                plan.events.len()
            );
        }
        if plan.is_empty() {
            println!("nothing to prune (keeping the newest {} release(s) of each flow)", args.keep);
        } else if !args.apply {
            println!("(a dry run: add --apply to delete)");
        }
    }
    if args.apply && !plan.is_empty() {
        apply(&root, &plan)?;
        if events + dispatches + attempts > 0 && data.join(DB_FILE).exists() {
            Store::open(&data)?.forget_events(&plan.events)?;
        }
    }
    Ok(Exit::Done)
}

/// What is known of the open pull requests of each remote the flows push
/// to: listed on GitHub when `GITHUB_TOKEN` is set and the repository is
/// known, else why not (or `--ignore-prs`). A failed listing is not an
/// error: it only leaves the remote's branches unchecked.
fn open_pulls(args: &PruneArgs, env: &Env, git: &Git, flows: &[Flow]) -> Result<BTreeMap<String, PullCheck>> {
    let mut checks = BTreeMap::new();
    let endpoint = github_endpoint(env);
    for flow in flows {
        let Some(stack) = &flow.stack else { continue };
        if checks.contains_key(&stack.remote) {
            continue;
        }
        let repo = match (&args.repo, env.get("GITHUB_REPOSITORY").filter(|repo| check_repo(repo).is_ok())) {
            (Some(repo), _) => Some(repo.clone()),
            (None, Some(repo)) => Some(repo.to_string()),
            (None, None) => git.remote_url(&stack.remote)?.as_deref().and_then(repo_of_url),
        };
        let check = match (args.ignore_prs, &endpoint, repo) {
            (true, _, _) => PullCheck::Ignored,
            (false, None, _) => PullCheck::Unchecked { why: "GITHUB_TOKEN is not set".to_string() },
            (false, Some(_), None) => PullCheck::Unchecked {
                why: format!("the URL of remote {} names no GitHub repository (pass --repo OWNER/NAME)", stack.remote),
            },
            (false, Some(endpoint), Some(repo)) => match endpoint.connect(&repo).and_then(|github| github.open_pulls())
            {
                Ok(pulls) => PullCheck::Listed { repo, pulls },
                Err(err) => {
                    PullCheck::Unchecked { why: format!("listing the open pull requests of {repo} failed: {err:#}") }
                }
            },
        };
        checks.insert(stack.remote.clone(), check);
    }
    Ok(checks)
}

/// `owner/name` of a remote URL on a GitHub host: `https://host/o/r(.git)`,
/// `ssh://git@host/o/r`, `git@host:o/r.git`. None for a local path.
fn repo_of_url(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((scheme, rest)) if ["https", "http", "ssh", "git"].contains(&scheme) => rest.split_once('/')?.1,
        Some(_) => return None,
        None => {
            // scp-like `user@host:path`; a local path has no `:` before its first `/`.
            let (host, path) = url.split_once(':')?;
            if host.is_empty() || host.contains('/') {
                return None;
            }
            path
        }
    };
    let repo = path.trim_matches('/').trim_end_matches(".git");
    check_repo(repo).is_ok().then(|| repo.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_url_names_its_repository_and_a_path_none() {
        let cases = [
            ("https://github.com/peezy-tech/codex.git", Some("peezy-tech/codex")),
            ("https://x-access-token:t@ghe.example/api-owner/fork", Some("api-owner/fork")),
            ("ssh://git@github.com/o/r.git", Some("o/r")),
            ("git@github.com:o/r.git", Some("o/r")),
            ("/tmp/x/origin.git", None),
            ("../origin.git", None),
            ("file:///tmp/o/r.git", None),
            ("https://github.com/o", None),
            ("https://github.com/o/r/extra", None),
        ];
        for (url, want) in cases {
            assert_eq!(repo_of_url(url).as_deref(), want, "{url}");
        }
    }
}
