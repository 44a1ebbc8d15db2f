//! GitHub Actions I/O, as pure functions: which event a workflow run carries,
//! the text of `$GITHUB_OUTPUT` entries and of workflow commands
//! (annotations, groups, masks, `stop-commands`), and the job summary's size
//! limit. The command writes what these return; nothing here touches the
//! process environment.
//!
//! Workflow commands: <https://docs.github.com/actions/reference/workflow-commands-for-github-actions>.

use serde_json::Value;

use crate::flow::event::{check_repo, FlowEvent, UPSTREAM_RELEASE};
use crate::github::is_dashboard;

pub use crate::core::secrets::scrub;

/// GitHub's limit on a job summary and on a check run's `summary` and `text`.
pub const SUMMARY_LIMIT: usize = 65_535;

/// At most this many `::error` and this many `::warning` per step: GitHub
/// shows no more (the check run carries all of them).
pub const ANNOTATIONS_PER_KIND: usize = 10;

/// What the workflow run asks patchmoi to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Run the flows for this event.
    Event(FlowEvent),
    /// Resolve the newest upstream release of each flow and run it, unless
    /// origin already has its base branch.
    Schedule,
    /// Someone edited the dashboard issue: act on the boxes they ticked.
    DashboardEdited(DashboardEdit),
    /// Nothing to do (a release that was not published); the reason.
    Nothing(String),
}

/// An edit of the dashboard issue, from an `issues: edited` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardEdit {
    pub number: u64,
    pub body: String,
    /// The body before the edit (`changes.body.from`).
    pub before: String,
    /// Who edited it (`sender.login`).
    pub sender: String,
}

/// The `tag`, `repo` and `promote` inputs of the action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventInputs {
    pub tag: Option<String>,
    pub repo: Option<String>,
}

/// Resolves the trigger: the `tag` input wins, whatever started the
/// workflow; otherwise the event name and the event file's JSON decide.
/// `Err` is a message for the person who wrote the workflow (exit 2).
pub fn resolve_trigger(
    inputs: &EventInputs,
    event_name: Option<&str>,
    payload: Option<&Value>,
    now: &str,
) -> Result<Trigger, String> {
    if let Some(tag) = &inputs.tag {
        let repo = inputs.repo.as_deref().ok_or("input `tag` is set but input `repo` (upstream owner/name) is not")?;
        check_repo(repo).map_err(|err| format!("input `repo`: {err}"))?;
        return Ok(Trigger::Event(FlowEvent::upstream_release(repo, tag, now.to_string())));
    }
    let Some(name) = event_name else {
        return Err("neither input `tag` nor GITHUB_EVENT_NAME is set: run patchmoi action inside a workflow, \
                    or set the `tag` and `repo` inputs"
            .into());
    };
    let empty = Value::Null;
    let payload = payload.unwrap_or(&empty);
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    match name {
        "schedule" => Ok(Trigger::Schedule),
        "workflow_dispatch" => {
            let inputs_json = payload.get("inputs").unwrap_or(&empty);
            let tag = text(inputs_json, "tag");
            let repo = text(inputs_json, "repo").or_else(|| inputs.repo.clone());
            match tag {
                Some(tag) => release(repo.as_deref(), &tag, now, "workflow_dispatch input `repo`"),
                None => Ok(Trigger::Schedule),
            }
        }
        "repository_dispatch" => {
            let action = text(payload, "action").unwrap_or_default();
            let client = payload.get("client_payload").unwrap_or(&empty);
            if let Some(event) = client.get("event") {
                let event = FlowEvent::from_value(event.clone(), now.to_string())
                    .map_err(|err| format!("repository_dispatch `client_payload.event`: {err}"))?;
                return Ok(Trigger::Event(event));
            }
            if action != UPSTREAM_RELEASE {
                return Err(format!(
                    "repository_dispatch of type `{action}` has no `client_payload.event`; \
                     patchmoi handles type `{UPSTREAM_RELEASE}` with `client_payload` {{repo, tag}}, or a whole FlowEvent under `client_payload.event`"
                ));
            }
            let tag = text(client, "tag").ok_or("repository_dispatch `client_payload.tag` is missing")?;
            let repo = text(client, "repo").or_else(|| inputs.repo.clone());
            release(repo.as_deref(), &tag, now, "repository_dispatch `client_payload.repo`")
        }
        "issues" => {
            let action = text(payload, "action").unwrap_or_default();
            let issue = payload.get("issue").unwrap_or(&empty);
            let body = text(issue, "body").unwrap_or_default();
            // The dashboard as patchmoi finds it: another issue quoting its
            // marker (a report, a comment pasted in) is not it.
            if action != "edited" || !is_dashboard(issue) {
                return Ok(Trigger::Nothing(format!(
                    "issues event `{action}`: patchmoi acts on edits of its dashboard"
                )));
            }
            let before = payload.pointer("/changes/body/from").and_then(Value::as_str);
            let Some(before) = before else {
                return Ok(Trigger::Nothing("the dashboard's body did not change".into()));
            };
            let sender = payload.get("sender").unwrap_or(&empty);
            if sender["type"] == "Bot" {
                return Ok(Trigger::Nothing("the dashboard was edited by a bot (patchmoi itself)".into()));
            }
            Ok(Trigger::DashboardEdited(DashboardEdit {
                number: issue["number"].as_u64().ok_or("issues event: `issue.number` is missing")?,
                body,
                before: before.to_string(),
                sender: text(sender, "login").ok_or("issues event: `sender.login` is missing")?,
            }))
        }
        "release" => {
            let action = text(payload, "action").unwrap_or_default();
            if action != "published" {
                return Ok(Trigger::Nothing(format!("release event `{action}`: patchmoi acts on `published` only")));
            }
            let release_json = payload.get("release").unwrap_or(&empty);
            let tag = text(release_json, "tag_name").ok_or("release event: `release.tag_name` is missing")?;
            let repo = inputs.repo.clone().or_else(|| payload.get("repository").and_then(|r| text(r, "full_name")));
            release(repo.as_deref(), &tag, now, "release event `repository.full_name`")
        }
        other => Err(format!(
            "event `{other}` is not one patchmoi action handles: use repository_dispatch, workflow_dispatch, \
             schedule or release, or set the `tag` input"
        )),
    }
}

fn release(repo: Option<&str>, tag: &str, now: &str, field: &str) -> Result<Trigger, String> {
    let repo = repo.ok_or_else(|| format!("{field} is missing (or set the `repo` input)"))?;
    check_repo(repo).map_err(|err| format!("{field}: {err}"))?;
    Ok(Trigger::Event(FlowEvent::upstream_release(repo, tag, now.to_string())))
}

/// A `$GITHUB_OUTPUT` entry in the multi-line form, with a delimiter that
/// the value cannot contain (so a value cannot end the entry early).
pub fn output_entry(name: &str, value: &str, token: &str) -> String {
    let mut delimiter = format!("ghadelimiter_{token}");
    while value.contains(&delimiter) {
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Escapes a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The level of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// An annotation on a file and lines, or on the run when `file` is None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub title: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub end_line: Option<usize>,
}

/// `::error file=…,line=…,endLine=…,title=…::message`.
pub fn annotation_command(note: &Annotation) -> String {
    let kind = match note.level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    let mut props = Vec::new();
    if let Some(file) = &note.file {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = note.line {
        props.push(format!("line={line}"));
    }
    if let Some(end) = note.end_line {
        props.push(format!("endLine={end}"));
    }
    if !note.title.is_empty() {
        props.push(format!("title={}", escape_property(&note.title)));
    }
    let props = if props.is_empty() { String::new() } else { format!(" {}", props.join(",")) };
    format!("::{kind}{props}::{}\n", escape_data(&note.message))
}

/// The annotation commands to print: at most [`ANNOTATIONS_PER_KIND`] of each level.
pub fn limited_annotations(notes: &[Annotation]) -> String {
    let mut out = String::new();
    for level in [Level::Error, Level::Warning, Level::Notice] {
        for note in notes.iter().filter(|note| note.level == level).take(ANNOTATIONS_PER_KIND) {
            out.push_str(&annotation_command(note));
        }
    }
    out
}

/// A log group with untrusted `body` inside: `stop-commands` turns workflow
/// commands off for its span, so a commit message or a tool's output cannot
/// set outputs, masks or annotations.
pub fn group(title: &str, body: &str, token: &str) -> String {
    let mut out = format!("::group::{}\n", escape_data(title));
    out.push_str(&untrusted(body, token));
    out.push_str("::endgroup::\n");
    out
}

/// `body` between `::stop-commands::<token>` and `::<token>::`: the runner
/// obeys no command in between but the one that names `token`, which the
/// body cannot guess ([`random_token`]: 128 random bits).
pub fn untrusted(body: &str, token: &str) -> String {
    let mut out = format!("::stop-commands::{token}\n");
    out.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("::{token}::\n"));
    out
}

/// Zero-width space: not whitespace to the runner (.NET's `TrimStart`) nor
/// to Rust, invisible to people.
const BREAK: char = '\u{200B}';

/// `text` with every place the Actions runner would read as a workflow
/// command broken: the runner reads a line (split at `\n`, `\r` or both)
/// as a command when, after its leading whitespace, it starts with `::`
/// (`ActionCommand.TryParseV2`), or when it holds `##[` anywhere
/// (`ActionCommand.TryParse`, the legacy form). A zero-width space goes
/// before such a line's `::` and inside every `##[`; nothing else changes.
/// For untrusted text (event fields, tags, git's and steps' messages)
/// printed outside a `stop-commands` block.
pub fn defuse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive(['\n', '\r']) {
        let rest = line.trim_start();
        let indent = line.len() - rest.len();
        out.push_str(&line[..indent]);
        if rest.starts_with("::") {
            out.push(BREAK);
        }
        out.push_str(&rest.replace("##[", &format!("##{BREAK}[")));
    }
    out
}

/// `::add-mask::` for a secret, one command per line of it (a multi-line
/// value is masked line by line).
pub fn mask(secret: &str) -> String {
    secret.lines().filter(|line| !line.trim().is_empty()).map(|line| format!("::add-mask::{line}\n")).collect()
}

/// `markdown`, cut to [`SUMMARY_LIMIT`] characters (on a line boundary when
/// one is near) with a pointer to where the whole text is.
pub fn truncate_summary(markdown: &str, pointer: &str) -> String {
    truncate_to(markdown, SUMMARY_LIMIT, pointer)
}

/// `text` cut to `limit` characters with `pointer` appended when it is cut.
pub fn truncate_to(text: &str, limit: usize, pointer: &str) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let note = format!("\n\n… truncated: {pointer}\n");
    let keep = limit.saturating_sub(note.chars().count());
    let cut: String = text.chars().take(keep).collect();
    let cut = match cut.rfind('\n') {
        Some(pos) if pos + 2000 > cut.len() => cut[..pos].to_string(),
        _ => cut,
    };
    format!("{cut}{note}")
}

/// 32 hex characters from the OS's random source: delimiters and
/// stop-commands tokens that text we print cannot guess.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
