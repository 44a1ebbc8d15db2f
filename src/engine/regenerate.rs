//! Regenerating generated files instead of stopping: when every conflict of
//! a patch is in files one `regenerate:` rule covers (say `Cargo.lock`),
//! the patch's other changes are kept, those files are taken as they are
//! before the patch (the release with the patches below it), and the
//! rule's command runs in a full checkout of that state. Its result is
//! accepted only when the command exits 0, leaves no conflict markers and
//! changes nothing but files the rule covers; then the replay goes on.
//!
//! The engine knows nothing of steps: the command runs through a
//! [`Regenerator`] the caller passes (the flow runs it as it runs `run:`
//! steps, with the same environment, time limit and log).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::tag_order::glob_match;
use crate::engine::markers::has_markers;
use crate::engine::patch::Patch;
use crate::git::{Git, MergeResult, Quarantine};

/// One `regenerate:` rule of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegenerateRule {
    /// Globs of the files the command regenerates (`*` also crosses `/`).
    pub paths: Vec<String>,
    /// The command, run with `bash -eo pipefail -c`.
    pub run: String,
    /// Where it runs, relative to the checkout's root.
    #[serde(default, rename = "working-directory")]
    pub working_directory: Option<String>,
}

impl RegenerateRule {
    pub fn covers(&self, path: &str) -> bool {
        self.paths.iter().any(|pattern| glob_match(pattern, path))
    }
}

/// How a rule's command ended.
#[derive(Debug, Clone)]
pub struct CommandRun {
    pub passed: bool,
    /// One line: how it ended.
    pub summary: String,
    pub log: Option<PathBuf>,
}

/// Runs a rule's command in a checkout; given by the caller.
pub trait Regenerator {
    fn run(&self, rule: &RegenerateRule, checkout: &Path, patch: &Patch) -> Result<CommandRun>;
}

/// A patch whose generated files were regenerated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regenerated {
    pub sha: String,
    pub subject: String,
    pub paths: Vec<String>,
    pub command: String,
}

impl Regenerated {
    /// `regenerated `Cargo.lock` in patch X with `cargo update …``.
    pub fn text(&self) -> String {
        let paths: Vec<String> = self.paths.iter().map(|path| format!("`{path}`")).collect();
        format!("regenerated {} in patch \"{}\" with `{}`", paths.join(", "), self.subject, self.command)
    }

    /// The trailer the regenerated commit gains.
    pub fn trailer(&self) -> String {
        format!("Patchmoi-Regenerated: {} (`{}`)", self.paths.join(", "), self.command)
    }
}

/// What trying the rules on a stopped patch gave.
pub enum Attempt {
    /// No rule covers every conflicted path.
    NoRule,
    /// The new tree of the patch.
    Regenerated(String, Regenerated),
    /// The rule's command failed or its result was refused: why.
    Refused(String),
}

/// Tries the rule that covers every conflicted path of `merge`, the stopped
/// merge of `patch` onto `current` (the tree before it).
pub fn regenerate(
    quarantine: &Quarantine,
    rules: &[RegenerateRule],
    regenerator: &dyn Regenerator,
    merge: &MergeResult,
    patch: &Patch,
) -> Result<Attempt> {
    let conflicted = merge.conflicted_paths();
    let Some(rule) = rules.iter().find(|rule| conflicted.iter().all(|path| rule.covers(path))) else {
        return Ok(Attempt::NoRule);
    };
    let git = &quarantine.git;
    // The conflicted files as they were before the patch (stage 2).
    let files: Vec<(String, Option<String>, String)> = conflicted
        .iter()
        .map(|path| {
            let ours = merge.conflicts.iter().find(|entry| entry.path == *path && entry.stage == 2);
            match ours {
                Some(entry) => Ok((path.clone(), Some(blob_text(git, &entry.oid)?), entry.mode.clone())),
                None => Ok((path.clone(), None, String::new())),
            }
        })
        .collect::<Result<_>>()?;
    let start = git.tree_with_replaced_paths(&merge.tree, &files, &quarantine.staging)?;
    let scratch = tempfile::Builder::new()
        .prefix("patchmoi-regenerate-")
        .tempdir_in(&quarantine.staging)
        .context("failed to make a checkout to regenerate in")?;
    let (checkout, index) = (scratch.path().join("checkout"), scratch.path().join("index"));
    std::fs::create_dir_all(&checkout).with_context(|| format!("failed to create {}", checkout.display()))?;
    git.checkout_scratch(&start, &checkout, &index)?;
    let ran = regenerator.run(rule, &checkout, patch)?;
    if !ran.passed {
        return Ok(Attempt::Refused(format!("`{}` {}", rule.run, ran.summary)));
    }
    let tree = git.scratch_tree(&checkout, &index)?;
    let changed = git.changed_paths(&start, &tree)?;
    let outside: Vec<&String> = changed.iter().filter(|path| !rule.covers(path)).collect();
    if !outside.is_empty() {
        let outside: Vec<&str> = outside.iter().map(|path| path.as_str()).collect();
        return Ok(Attempt::Refused(format!(
            "`{}` changed files its rule does not cover: {}",
            rule.run,
            outside.join(", ")
        )));
    }
    for path in &conflicted {
        let file = checkout.join(path);
        if let Ok(text) = std::fs::read(&file) {
            if has_markers(&String::from_utf8_lossy(&text)) {
                return Ok(Attempt::Refused(format!("`{}` left conflict markers in {path}", rule.run)));
            }
        }
    }
    let regenerated = Regenerated {
        sha: patch.sha.clone(),
        subject: patch.subject.clone(),
        paths: conflicted,
        command: rule.run.clone(),
    };
    Ok(Attempt::Regenerated(tree, regenerated))
}

fn blob_text(git: &Git, oid: &str) -> Result<String> {
    let objects = git.read_objects(&[oid.to_string()])?;
    let (_, body) = objects.into_iter().next().flatten().with_context(|| format!("blob {oid} is missing"))?;
    String::from_utf8(body).with_context(|| format!("blob {oid} is not text"))
}

/// `message` with `trailer` added to its trailer block (or a new one).
pub fn with_trailer(raw: &[u8], trailer: &str) -> Vec<u8> {
    let mut out = raw.to_vec();
    while out.ends_with(b"\n") {
        out.pop();
    }
    let body_start = raw.windows(2).position(|w| w == b"\n\n").map_or(raw.len(), |at| at + 2);
    let message = String::from_utf8_lossy(&raw[body_start.min(raw.len())..]).into_owned();
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or_default();
    let in_block = message.trim_end().contains("\n\n")
        && last.lines().all(|line| line.split_once(": ").is_some_and(|(key, _)| !key.contains(' ')));
    out.extend_from_slice(if in_block { b"\n" } else { b"\n\n" });
    out.extend_from_slice(trailer.as_bytes());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_join_the_block_or_start_one() {
        let plain = b"tree t\n\nSubject\n\nBody text.\n";
        assert_eq!(with_trailer(plain, "K: v"), b"tree t\n\nSubject\n\nBody text.\n\nK: v\n");
        let block = b"tree t\n\nSubject\n\nSigned-off-by: A <a@x>\n";
        assert_eq!(with_trailer(block, "K: v"), b"tree t\n\nSubject\n\nSigned-off-by: A <a@x>\nK: v\n");
        assert_eq!(with_trailer(b"tree t\n\nSubject\n", "K: v"), b"tree t\n\nSubject\n\nK: v\n");
    }

    #[test]
    fn rules_cover_paths_by_glob() {
        let rule = RegenerateRule {
            paths: vec!["Cargo.lock".into(), "**/Cargo.lock".into()],
            run: "cargo update --workspace --offline".into(),
            working_directory: None,
        };
        assert!(rule.covers("Cargo.lock"));
        assert!(rule.covers("codex-rs/Cargo.lock"));
        assert!(!rule.covers("Cargo.toml"));
    }
}
