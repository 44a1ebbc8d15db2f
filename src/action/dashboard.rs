//! The dashboard issue, as pure functions: one per repository, a table per
//! flow of the releases it tracks (status, pull request, checks, conflict,
//! memory reuse), the releases skipped and why, and the checkboxes that act
//! (`promote` a candidate, `retry` a blocked or failed release). The Action
//! keeps no state between runs, so the rows it wrote are kept in the body as
//! JSON inside an HTML comment and read back by the next run; the JSON is
//! escaped so no text in it can end the comment.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::outcome::FlowOutcome;
use crate::core::status::ResultStatus;
use crate::core::tag_order::Version;
use crate::engine::stack::short;

pub const TITLE: &str = "patchmoi dashboard";

/// Where the rows are kept in the body.
const DATA_OPEN: &str = "<!-- patchmoi:dashboard-data ";
const DATA_CLOSE: &str = " -->";

/// Releases kept per flow, newest first.
const ROWS_PER_FLOW: usize = 10;

/// One release of one flow as the dashboard shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub flow: String,
    pub tag: String,
    pub status: String,
    #[serde(default)]
    pub pr_url: Option<String>,
    /// The steps after the rebase: `build: completed, test: failed`.
    #[serde(default)]
    pub checks: Option<String>,
    #[serde(default)]
    pub conflict: Option<Conflict>,
    /// The flow's tracking issue, which holds the whole conflict report.
    #[serde(default)]
    pub tracking: Option<String>,
    /// Patches whose conflicts the memory of resolutions resolved.
    #[serde(default)]
    pub memory: usize,
    /// What a checkbox did last (promoted, refused, retried).
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub updated: String,
}

/// The conflict of a release: the patch, the files, the culprit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub patch: String,
    pub subject: String,
    pub files: Vec<String>,
    #[serde(default)]
    pub culprit: Option<String>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Board {
    pub rows: Vec<Row>,
    /// Releases a run skipped, and why.
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub last_run: String,
    #[serde(default)]
    pub run_url: Option<String>,
}

/// What a ticked checkbox asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Promote,
    Retry,
}

/// A checkbox ticked by someone: the verb, the tag, the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub verb: Verb,
    pub tag: String,
    pub flow: String,
}

/// The row of a flow's outcome for release `tag`.
pub fn row(outcome: &FlowOutcome, tag: &str, now: &str) -> Row {
    let rebase = outcome.runs.iter().find(|run| run.artifacts.upstream.is_some());
    let checks: Vec<String> = outcome
        .runs
        .iter()
        .filter(|run| run.artifacts.upstream.is_none())
        .map(|run| format!("{}: {}", run.step, run.status))
        .collect();
    let conflict = rebase.and_then(|run| run.artifacts.conflict.as_ref()).map(|report| Conflict {
        patch: short(&report.patch.sha).to_string(),
        subject: report.patch.subject.clone(),
        files: report.files.iter().map(|file| file.path.clone()).collect(),
        culprit: report.culprit.as_ref().map(|c| format!("{} {}", short(&c.sha), c.subject)),
    });
    Row {
        flow: outcome.flow.clone(),
        tag: tag.to_string(),
        status: outcome.status.map(|status| status.to_string()).unwrap_or_else(|| "skipped".into()),
        pr_url: outcome.pr_url.clone(),
        checks: (!checks.is_empty()).then(|| checks.join(", ")),
        tracking: outcome.tracking_issue.clone().filter(|_| conflict.is_some()),
        conflict,
        memory: rebase.map_or(0, |run| run.artifacts.resolved_from_memory.len()),
        note: None,
        updated: now.to_string(),
    }
}

impl Board {
    /// Puts `row` in, replacing the row of the same flow and release.
    pub fn put(&mut self, row: Row) {
        self.rows.retain(|old| (old.flow.as_str(), old.tag.as_str()) != (row.flow.as_str(), row.tag.as_str()));
        self.rows.push(row);
    }

    /// Takes in the rows of `other` (a copy a racing run wrote): a release
    /// this board lacks, or has an older row of.
    pub fn absorb(&mut self, other: Board) {
        for row in other.rows {
            match self.row_mut(&row.flow, &row.tag) {
                Some(have) if have.updated >= row.updated => {}
                Some(have) => *have = row,
                None => self.rows.push(row),
            }
        }
    }

    /// The board kept in the bodies of the dashboard issues found (the one
    /// kept first), merged.
    pub fn from_bodies(bodies: &[String]) -> Board {
        let mut board = Board::default();
        bodies.iter().for_each(|body| board.absorb(parse(body)));
        board
    }

    /// The row of `flow` and `tag`, if the dashboard has it.
    pub fn row_mut(&mut self, flow: &str, tag: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|row| row.flow == flow && row.tag == tag)
    }

    /// Rows by flow, newest release first, at most [`ROWS_PER_FLOW`] each.
    fn by_flow(&self) -> BTreeMap<&str, Vec<&Row>> {
        let mut flows: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in &self.rows {
            flows.entry(row.flow.as_str()).or_default().push(row);
        }
        for rows in flows.values_mut() {
            rows.sort_by(|a, b| {
                let (va, vb) = (Version::parse_from_tag(&a.tag), Version::parse_from_tag(&b.tag));
                vb.cmp(&va).then_with(|| b.updated.cmp(&a.updated))
            });
            rows.truncate(ROWS_PER_FLOW);
        }
        flows
    }
}

/// The board kept in an issue body; an empty one when there is none or it
/// does not parse (the next write starts over).
pub fn parse(body: &str) -> Board {
    let Some(start) = body.find(DATA_OPEN) else { return Board::default() };
    let rest = &body[start + DATA_OPEN.len()..];
    let Some(end) = rest.find(DATA_CLOSE) else { return Board::default() };
    serde_json::from_str(&rest[..end]).unwrap_or_default()
}

/// JSON that cannot end an HTML comment: `<`, `>` and `&` only ever occur
/// inside JSON strings, where their `\u` escapes mean the same.
fn hidden_json(board: &Board) -> String {
    let mut kept = board.clone();
    kept.rows = board.by_flow().into_values().flatten().cloned().collect();
    let json = serde_json::to_string(&kept).expect("a board serializes");
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Untrusted text (subjects, paths, tags, messages) as inert Markdown on one
/// line: no HTML, no links, no mentions, no table cell breaks, no list items.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("&#124;"),
            '@' => out.push_str("&#64;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '~' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether a tag can stand in a checkbox line as it is (patchmoi reads the
/// line back to learn which release a tick is for).
fn plain_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '+'))
}

fn plain_flow(flow: &str) -> bool {
    !flow.is_empty() && flow.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The checkbox line of `verb` for `tag` of `flow`, unticked.
pub fn checkbox(verb: Verb, tag: &str, flow: &str) -> String {
    let word = match verb {
        Verb::Promote => "promote",
        Verb::Retry => "retry",
    };
    format!("- [ ] {word} {tag} in flow {flow}")
}

/// The checkbox a row offers: `promote` for a candidate with a pull request,
/// `retry` for a release that is blocked, failed or needs intervention.
fn offer(row: &Row) -> Option<Verb> {
    let status: Option<ResultStatus> = serde_json::from_value(serde_json::Value::String(row.status.clone())).ok();
    match status? {
        ResultStatus::Changed | ResultStatus::Completed if row.pr_url.is_some() => Some(Verb::Promote),
        ResultStatus::Blocked | ResultStatus::Failed | ResultStatus::NeedsIntervention => Some(Verb::Retry),
        _ => None,
    }
}

/// The issue body (without the marker, which the GitHub verb appends).
pub fn render(board: &Board) -> String {
    let mut out = String::new();
    let _ = write!(out, "patchmoi keeps this issue up to date. Last run: {}", inert(&board.last_run));
    if let Some(url) = &board.run_url {
        let _ = write!(out, " ([workflow run]({url}))");
    }
    out.push_str(".\n\nTick a box to act: `promote` makes the candidate the maintained branch (its checks must have passed), `retry` runs the release again. Only people who may write to this repository can.\n");
    for (flow, rows) in board.by_flow() {
        let _ = writeln!(out, "\n## Flow `{}`\n", inert(flow));
        out.push_str("| release | status | pull request | checks | conflict | memory | updated |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        let mut boxes = Vec::new();
        for row in &rows {
            let pr =
                row.pr_url.as_deref().map_or("—".to_string(), |url| format!("[pull request]({})", inert_url(url)));
            let conflict = row.conflict.as_ref().map_or("—".to_string(), |c| {
                let files = c.files.iter().map(|f| inert(f)).collect::<Vec<_>>().join(", ");
                let mut text = format!("patch {} {} in {files}", inert(&c.patch), inert(&c.subject));
                if let Some(culprit) = &c.culprit {
                    let _ = write!(text, "; culprit {}", inert(culprit));
                }
                if let Some(url) = &row.tracking {
                    let _ = write!(text, " ([whole report]({}))", inert_url(url));
                }
                text
            });
            let memory = if row.memory == 0 { "—".to_string() } else { format!("{} reused", row.memory) };
            let mut status = inert(&row.status);
            if let Some(note) = &row.note {
                let _ = write!(status, " ({})", inert(note));
            }
            let _ = writeln!(
                out,
                "| {} | {status} | {pr} | {} | {conflict} | {memory} | {} |",
                inert(&row.tag),
                row.checks.as_deref().map_or("—".to_string(), inert),
                inert(&row.updated)
            );
            match offer(row) {
                Some(verb) if plain_tag(&row.tag) && plain_flow(flow) => boxes.push(checkbox(verb, &row.tag, flow)),
                _ => {}
            }
        }
        if !boxes.is_empty() {
            out.push('\n');
            for line in boxes {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    if !board.skipped.is_empty() {
        out.push_str("\n## Skipped\n\n");
        for reason in &board.skipped {
            let _ = writeln!(out, "- {}", inert(reason));
        }
    }
    let _ = write!(out, "\n{DATA_OPEN}{}{DATA_CLOSE}\n", hidden_json(board));
    out
}

/// A URL we made (the server's own), kept as a link target without
/// characters that would end it.
fn inert_url(url: &str) -> String {
    url.chars().filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '<' | '>' | '"')).collect()
}

/// The checkboxes in `body` ticked now but not in `before`: only boxes that
/// went from `[ ]` to `[x]`, each once.
pub fn ticked(before: &str, body: &str) -> Vec<Tick> {
    let was: Vec<Tick> = boxes(before, true);
    let mut ticks: Vec<Tick> = Vec::new();
    for tick in boxes(body, true) {
        if !was.contains(&tick) && !ticks.contains(&tick) && boxes(before, false).contains(&tick) {
            ticks.push(tick);
        }
    }
    ticks
}

/// The checkbox lines of `body`, ticked ones (or unticked ones).
fn boxes(body: &str, ticked: bool) -> Vec<Tick> {
    body.lines()
        .filter_map(|line| {
            let line = line.trim_end();
            let rest = match ticked {
                true => line.strip_prefix("- [x] ").or_else(|| line.strip_prefix("- [X] ")),
                false => line.strip_prefix("- [ ] "),
            }?;
            let mut words = rest.split(' ');
            let verb = match words.next()? {
                "promote" => Verb::Promote,
                "retry" => Verb::Retry,
                _ => return None,
            };
            let tag = words.next()?;
            let (Some("in"), Some("flow"), Some(flow), None) = (words.next(), words.next(), words.next(), words.next())
            else {
                return None;
            };
            (plain_tag(tag) && plain_flow(flow)).then(|| Tick { verb, tag: tag.into(), flow: flow.into() })
        })
        .collect()
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
