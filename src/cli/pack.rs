//! `pack add`, `pack doctor` and `pack update`: install shared flows from a
//! pack, check what is installed, and bring it up to date with its source.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::shared::{workspace_root, Exit};
use crate::core::env::Env;
use crate::flow::pack::add::{self, AddOptions};
use crate::flow::pack::doctor;
use crate::flow::pack::source::{self, Source};
use crate::flow::pack::update::{self, UpdateOptions};

#[derive(Debug, Args)]
pub struct PackAddArgs {
    /// The pack: a local directory, `owner/repo` (GitHub) or a git URL.
    pub source: String,
    /// Only these items (`name` or `kind:name`); may be repeated.
    #[arg(long)]
    pub include: Vec<String>,
    /// Not these items (`name` or `kind:name`); may be repeated.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Install (without it, only the plan is shown).
    #[arg(long)]
    pub apply: bool,
    /// Replace installed items that differ, after backing them up to
    /// `.codex/pack-backups/<time>/`.
    #[arg(long)]
    pub overwrite: bool,
    /// The branch, tag or commit of an `owner/repo` or git URL source.
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// The checkout to install into (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Print the plan as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PackDoctorArgs {
    /// The checkout to check (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PackUpdateArgs {
    /// Only these locked items (`name` or `kind:name`); all when none is given.
    pub names: Vec<String>,
    /// Install the updates (without it, only what would change is shown).
    #[arg(long)]
    pub apply: bool,
    /// Also replace items edited since they were installed, after backing
    /// them up to `.codex/pack-backups/<time>/`.
    #[arg(long)]
    pub overwrite: bool,
    /// Move the items to this branch, tag or commit (a commit in the lock
    /// is a pin: only --ref moves it).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// The checkout to update (default: the git top level of the current directory).
    #[arg(long)]
    pub workspace_root: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `pack add`.
pub fn cmd_pack_add(args: PackAddArgs, _env: &Env) -> Result<Exit> {
    let workspace = workspace_root(args.workspace_root.as_deref())?;
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let source = match relative_to_workspace(&args.source, &cwd, &workspace) {
        Some(input) => Source::resolve(&input, args.reference.as_deref(), &workspace)?,
        None => Source::resolve(&args.source, args.reference.as_deref(), &cwd)?,
    };
    let inventory = source::inventory(&source.root)?;
    let options =
        AddOptions { include: args.include, exclude: args.exclude, overwrite: args.overwrite, apply: args.apply };
    let plan = add::plan(&source, &inventory, &workspace, &options)?;
    if args.apply {
        add::apply(&plan)?;
    }
    show(args.json, &plan, plan.text(), plan.has_conflicts())
}

/// A local directory given relative to `cwd`, a directory of the checkout
/// other than its root, as the lock keeps it: relative to the workspace
/// root, where `pack update` and `pack doctor` look for it. None when
/// there is nothing to rewrite (an absolute path, a repository, the root).
fn relative_to_workspace(input: &str, cwd: &Path, workspace: &Path) -> Option<String> {
    let path = Path::new(input);
    if path.is_absolute() || !cwd.join(path).is_dir() {
        return None;
    }
    let (cwd, root, target) =
        (cwd.canonicalize().ok()?, workspace.canonicalize().ok()?, cwd.join(path).canonicalize().ok()?);
    if cwd == root {
        return None;
    }
    let (root, target): (Vec<_>, Vec<_>) = (root.components().collect(), target.components().collect());
    let common = root.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); root.len() - common];
    parts.extend(target[common..].iter().map(|part| part.as_os_str().to_string_lossy().into_owned()));
    Some(if parts.is_empty() { ".".to_string() } else { parts.join("/") })
}

/// `pack doctor`.
pub fn cmd_pack_doctor(args: PackDoctorArgs, _env: &Env) -> Result<Exit> {
    let workspace = workspace_root(args.workspace_root.as_deref())?;
    let report = doctor::doctor(&workspace);
    show(args.json, &report, report.text(), !report.healthy())
}

/// `pack update`.
pub fn cmd_pack_update(args: PackUpdateArgs, _env: &Env) -> Result<Exit> {
    let workspace = workspace_root(args.workspace_root.as_deref())?;
    let options =
        UpdateOptions { names: args.names, reference: args.reference, overwrite: args.overwrite, apply: args.apply };
    let report = update::update(&workspace, &options)?;
    show(args.json, &report, report.text(), report.needs_attention())
}

/// Prints a pack command's result, as JSON with `--json` or as `text`; it
/// exits 1 when the result `needs_attention`.
fn show(json: bool, result: &impl serde::Serialize, text: String, needs_attention: bool) -> Result<Exit> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        print!("{text}");
    }
    Ok(if needs_attention { Exit::Attention } else { Exit::Done })
}
