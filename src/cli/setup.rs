//! `setup fork`: checks a fork's checkout (git version, the branch, origin,
//! the upstream reachable, full history) and says what is missing; with
//! `--apply` it writes a starter flow and workflow, never over a file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::shared::Exit;
use crate::core::env::Env;
use crate::core::error::usage;
use crate::core::redact;
use crate::core::refname;
use crate::flow::event::check_repo;
use crate::git;
use crate::git::Git;

#[derive(Debug, Args)]
pub struct SetupForkArgs {
    /// The fork's checkout (default: the current directory).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The upstream repository's URL.
    #[arg(long)]
    pub upstream_url: String,
    /// The maintained patch branch.
    #[arg(long)]
    pub branch: String,
    /// Write a starter flow and workflow for this fork.
    #[arg(long)]
    pub apply: bool,
    /// The upstream repository, `owner/name`, the written flow follows
    /// (default: read from a GitHub `--upstream-url`).
    #[arg(long)]
    pub upstream_repo: Option<String>,
    /// Which upstream tags the written flow follows (a glob).
    #[arg(long, default_value = "*")]
    pub tags: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SetupReport {
    path: PathBuf,
    branch: String,
    branch_exists: bool,
    origin: Option<String>,
    upstream_url: String,
    upstream_reachable: bool,
    shallow: bool,
    written: Vec<PathBuf>,
    ready: bool,
    issues: Vec<String>,
}

/// `setup fork`.
pub fn cmd_setup_fork(args: SetupForkArgs, _env: &Env) -> Result<Exit> {
    refname::check_ref_name(&args.branch)
        .map_err(|why| usage(format!("--branch `{}` is not a valid branch name: it {why}", args.branch)))?;
    let path = match &args.path {
        Some(path) => path.clone(),
        None => std::env::current_dir()?,
    };
    let git = Git::open(&path).map_err(|err| usage(format!("--path {}: {err:#}", path.display())))?;
    let mut issues = Vec::new();
    if let Err(err) = git::check_version() {
        issues.push(format!("{err:#}"));
    }
    let branch_exists = git.resolve_commit(&format!("refs/heads/{}", args.branch))?.is_some();
    if !branch_exists {
        issues.push(format!("branch {} does not exist here", args.branch));
    }
    let origin = git.remote_url("origin")?.map(|url| redact::redact_url(&url));
    if origin.is_none() {
        issues.push("no `origin` remote: patchmoi pushes candidates there".into());
    }
    let upstream_reachable = git.ls_remote_tags(&args.upstream_url).is_ok();
    if !upstream_reachable {
        issues.push(format!("upstream {} is not reachable", redact::redact_url(&args.upstream_url)));
    }
    let shallow = git.is_shallow()?;
    if shallow {
        issues.push("history is shallow: run `git fetch --unshallow`".into());
    }
    let mut written = Vec::new();
    if args.apply {
        if let Some(repo) = &args.upstream_repo {
            check_repo(repo).map_err(|why| usage(format!("--upstream-repo: {why}")))?;
        }
        let repo = args.upstream_repo.clone().or_else(|| github_repo(&args.upstream_url));
        let name = flow_name(&args.branch);
        let flow = Path::new(".codex/flows").join(&name).join("flow.yml");
        let text = starter_flow(&name, &args.upstream_url, &args.branch, repo.as_deref(), &args.tags);
        write_new(&path, &flow, &text, &mut written)?;
        let workflow = Path::new(".github/workflows/patchmoi.yml");
        write_new(&path, workflow, &starter_workflow(repo.as_deref()), &mut written)?;
    }
    let report = SetupReport {
        path: path.clone(),
        branch: args.branch,
        branch_exists,
        origin,
        upstream_url: redact::redact_url(&args.upstream_url),
        upstream_reachable,
        shallow,
        written,
        ready: issues.is_empty(),
        issues,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("repo: {}", report.path.display());
        println!("branch: {}{}", report.branch, if report.branch_exists { "" } else { " (missing)" });
        println!("origin: {}", report.origin.as_deref().unwrap_or("(none)"));
        println!("upstream: {}{}", report.upstream_url, if report.upstream_reachable { "" } else { " (unreachable)" });
        for file in &report.written {
            println!("wrote {}", file.display());
        }
        println!("ready: {}", report.ready);
        for issue in &report.issues {
            println!("- {issue}");
        }
    }
    Ok(if report.ready { Exit::Done } else { Exit::Attention })
}

fn flow_name(branch: &str) -> String {
    branch.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect()
}

fn write_new(root: &Path, relative: &Path, text: &str, written: &mut Vec<PathBuf>) -> Result<()> {
    let file = root.join(relative);
    if file.exists() {
        return Ok(());
    }
    let dir = file.parent().expect("relative paths have a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    std::fs::write(&file, text).with_context(|| format!("failed to write {}", file.display()))?;
    written.push(relative.to_path_buf());
    Ok(())
}

/// `owner/name` of a GitHub URL (`https://github.com/o/r(.git)`,
/// `git@github.com:o/r.git`), for the flow's `on.payload.repo`.
fn github_repo(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let repo = rest.trim_end_matches('/').trim_end_matches(".git");
    check_repo(repo).is_ok().then(|| repo.to_string())
}

/// The flow `--apply` writes: it follows `repo`'s releases whose tag
/// matches `tags` (any repository's when `repo` is not known).
fn starter_flow(name: &str, upstream: &str, branch: &str, repo: Option<&str>, tags: &str) -> String {
    let repo = repo.map(|repo| format!("    repo: {repo}\n")).unwrap_or_default();
    format!(
        "name: {name}\ndescription: Rebase {branch} onto each upstream release\non:\n  type: upstream.release\n\
         \x20 payload:\n{repo}    tag: \"{tags}\"\n\
         stack:\n  upstream: {upstream}\n  branch: {branch}\n  candidate: \"patchmoi/{{tag}}\"\n\
         steps:\n  - name: rebase-patch-stack\n    uses: rebase\n"
    )
}

/// The workflow `--apply` writes: the example caller of patchmoi's reusable
/// workflow (one text, linted in CI as written), for this upstream.
fn starter_workflow(repo: Option<&str>) -> String {
    const EXAMPLE: &str = include_str!("../../examples/workflows/maintain-fork.yml");
    let example = EXAMPLE.replace(
        "      cache-path: codex-rs/target # the checks' build directory, kept across releases\n      cache-key-files: codex-rs/Cargo.lock\n",
        "",
    );
    match repo {
        Some(repo) => example.replace("repo: openai/codex", &format!("repo: {repo}")),
        None => example.replace("      repo: openai/codex\n", ""),
    }
}
