//! Table tests of the Actions I/O, with GitHub's own example payloads
//! (`tests/fixtures/webhook-*.json`, from npm `@octokit/webhooks-examples`).

use serde_json::{json, Value};

use super::*;
use crate::flow::event;

fn example(name: &str) -> Value {
    let text = match name {
        "repository_dispatch" => include_str!("../../tests/fixtures/webhook-repository_dispatch.json"),
        "workflow_dispatch" => include_str!("../../tests/fixtures/webhook-workflow_dispatch.json"),
        "release" => include_str!("../../tests/fixtures/webhook-release.json"),
        _ => unreachable!(),
    };
    serde_json::from_str(text).unwrap()
}

fn tag_of(trigger: &Trigger) -> (&str, &str) {
    match trigger {
        Trigger::Event(event) => (event.repo().unwrap(), event.tag().unwrap()),
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn events_from_githubs_example_payloads() {
    let none = EventInputs::default();
    // repository_dispatch: the example's type is `on-demand-test`; ours is upstream.release.
    let mut dispatch = example("repository_dispatch");
    let err = resolve_trigger(&none, Some("repository_dispatch"), Some(&dispatch), "now").unwrap_err();
    assert!(err.contains("`on-demand-test`") && err.contains("upstream.release"), "{err}");
    dispatch["action"] = json!("upstream.release");
    dispatch["client_payload"] = json!({"repo": "openai/codex", "tag": "rust-v0.130.0"});
    let trigger = resolve_trigger(&none, Some("repository_dispatch"), Some(&dispatch), "now").unwrap();
    assert_eq!(tag_of(&trigger), ("openai/codex", "rust-v0.130.0"));
    dispatch["client_payload"] = json!({"event": {"id": "x", "type": "upstream.release",
        "payload": {"repo": "openai/codex", "tag": "rust-v0.131.0"}}});
    let Trigger::Event(event) = resolve_trigger(&none, Some("repository_dispatch"), Some(&dispatch), "now").unwrap()
    else {
        panic!()
    };
    assert_eq!(event.id, "patch:upstream.release:openai/codex:rust-v0.131.0");
    // What patchmoi's own service sends (dispatch.rs): the whole event, plus repo and tag.
    let event = event::FlowEvent::upstream_release("openai/codex", "rust-v0.132.0", "then".into());
    dispatch["client_payload"] = json!({"event": event, "repo": "openai/codex", "tag": "rust-v0.132.0"});
    let trigger = resolve_trigger(&none, Some("repository_dispatch"), Some(&dispatch), "now").unwrap();
    assert_eq!(trigger, Trigger::Event(event));

    // workflow_dispatch: the example has no inputs, which means "the newest release".
    let mut manual = example("workflow_dispatch");
    assert_eq!(resolve_trigger(&none, Some("workflow_dispatch"), Some(&manual), "now").unwrap(), Trigger::Schedule);
    manual["inputs"] = json!({"tag": "v2.0.0", "repo": "o/up"});
    assert_eq!(
        tag_of(&resolve_trigger(&none, Some("workflow_dispatch"), Some(&manual), "now").unwrap()),
        ("o/up", "v2.0.0")
    );

    // release: the published example names its tag and repository.
    let published = example("release");
    let trigger = resolve_trigger(&none, Some("release"), Some(&published), "now").unwrap();
    let want_tag = published["release"]["tag_name"].as_str().unwrap();
    let want_repo = published["repository"]["full_name"].as_str().unwrap();
    assert_eq!(tag_of(&trigger), (want_repo, want_tag));
    let mut created = published.clone();
    created["action"] = json!("created");
    assert!(matches!(resolve_trigger(&none, Some("release"), Some(&created), "now").unwrap(), Trigger::Nothing(_)));
}

#[test]
fn inputs_win_and_bad_events_are_named() {
    let inputs = EventInputs { tag: Some("v1.2.0".into()), repo: Some("o/up".into()) };
    let trigger = resolve_trigger(&inputs, Some("push"), None, "now").unwrap();
    assert_eq!(tag_of(&trigger), ("o/up", "v1.2.0"));
    let cases: Vec<(EventInputs, Option<&str>, Value, &str)> = vec![
        (EventInputs { tag: Some("v1".into()), repo: None }, None, Value::Null, "input `repo`"),
        (EventInputs { tag: Some("v1".into()), repo: Some("bad".into()) }, None, Value::Null, "owner/name"),
        (EventInputs::default(), None, Value::Null, "GITHUB_EVENT_NAME"),
        (EventInputs::default(), Some("push"), json!({}), "event `push` is not one"),
        (
            EventInputs::default(),
            Some("repository_dispatch"),
            json!({"action": "upstream.release", "client_payload": {"repo": "o/r"}}),
            "client_payload.tag",
        ),
        (
            EventInputs::default(),
            Some("repository_dispatch"),
            json!({"action": "upstream.release", "client_payload": {"tag": "v1"}}),
            "client_payload.repo",
        ),
        (EventInputs::default(), Some("release"), json!({"action": "published", "release": {}}), "tag_name"),
    ];
    for (inputs, name, payload, want) in cases {
        let err = resolve_trigger(&inputs, name, Some(&payload), "now").unwrap_err();
        assert!(err.contains(want), "{name:?} {payload}: {err}");
    }
    assert_eq!(resolve_trigger(&EventInputs::default(), Some("schedule"), None, "now").unwrap(), Trigger::Schedule);
}

#[test]
fn outputs_use_a_delimiter_the_value_cannot_contain() {
    assert_eq!(output_entry("status", "changed", "abc"), "status<<ghadelimiter_abc\nchanged\nghadelimiter_abc\n");
    let sneaky = "x\nghadelimiter_abc\nstatus=completed";
    let entry = output_entry("report", sneaky, "abc");
    assert!(entry.starts_with("report<<ghadelimiter_abc_\n"), "{entry}");
    assert!(entry.ends_with("\nghadelimiter_abc_\n"));
}

#[test]
fn workflow_commands_escape_what_they_carry() {
    let note = Annotation {
        level: Level::Error,
        title: "conflict: a, b".into(),
        message: "50% done\nnext".into(),
        file: Some("src/a:b.rs".into()),
        line: Some(3),
        end_line: Some(5),
    };
    assert_eq!(
        annotation_command(&note),
        "::error file=src/a%3Ab.rs,line=3,endLine=5,title=conflict%3A a%2C b::50%25 done%0Anext\n"
    );
    let bare = Annotation {
        level: Level::Warning,
        title: String::new(),
        message: "m".into(),
        file: None,
        line: None,
        end_line: None,
    };
    assert_eq!(annotation_command(&bare), "::warning::m\n");
    let many: Vec<Annotation> = (0..25).map(|_| note.clone()).chain((0..3).map(|_| bare.clone())).collect();
    let printed = limited_annotations(&many);
    assert_eq!(printed.matches("::error").count(), ANNOTATIONS_PER_KIND);
    assert_eq!(printed.matches("::warning").count(), 3);
}

#[test]
fn untrusted_text_cannot_issue_commands() {
    let body = "commit: ::set-output name=x::y\n::add-mask::z";
    let out = group("fork / build", body, "tok123");
    assert_eq!(
        out,
        "::group::fork / build\n::stop-commands::tok123\ncommit: ::set-output name=x::y\n::add-mask::z\n::tok123::\n::endgroup::\n"
    );
    assert_eq!(mask("ghs_abc\n"), "::add-mask::ghs_abc\n");
    assert_eq!(random_token().len(), 32);
    assert_ne!(random_token(), random_token());
}

#[test]
fn summaries_are_cut_to_githubs_limit_with_a_pointer() {
    assert_eq!(truncate_summary("short", "see the artifact"), "short");
    let long = "line of text é\n".repeat(10_000);
    let cut = truncate_summary(&long, "the whole report is in the artifact");
    assert!(cut.chars().count() <= SUMMARY_LIMIT, "{}", cut.chars().count());
    assert!(cut.ends_with("… truncated: the whole report is in the artifact\n"));
    assert!(cut.contains("line of text é\n\n… truncated"), "cut on a line boundary");
}

#[test]
fn scrub_hides_secrets() {
    let secrets = vec!["ghs_secret123".to_string(), "".to_string()];
    assert_eq!(scrub("token ghs_secret123 in text", &secrets), "token *** in text");
}

/// Whether the runner could read `line` as a command, in either of its
/// forms (a superset of what it obeys: `tests/it/action/injection.rs` has the
/// runner's exact parsers).
fn runner_obeys(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

/// Lines as the runner reads them: split at `\n`, `\r` or `\r\n`.
fn runner_lines(text: &str) -> Vec<&str> {
    text.split(['\n', '\r']).collect()
}

#[test]
fn defused_text_holds_no_command_in_either_form() {
    let hostile = [
        " ::add-mask::PWNED",
        "##[warning]forged",
        "a\r::error::split on a lone CR",
        "ok\r\n  ::set-output name=x::y",
        "\t\u{a0}\u{2003}::warning::unicode spaces",
        "::stop-commands::guess\n::guess::",
        "text ###[error]x and ##[group]y",
        "patch:upstream.release:o/r: ::add-mask::PWNED ##[warning]forged",
    ];
    for text in hostile {
        assert!(runner_lines(text).iter().any(|line| runner_obeys(line)), "{text:?} is not hostile");
        let safe = defuse(text);
        for line in runner_lines(&safe) {
            assert!(!runner_obeys(line), "{text:?} still gives the command {line:?}");
        }
        assert_eq!(safe.replace('\u{200B}', ""), text, "only zero-width spaces are added");
    }
    assert_eq!(defuse("nothing to do\n"), "nothing to do\n");
}

#[test]
fn dashboard_edits_resolve_to_the_edit_and_other_issue_events_to_nothing() {
    let none = EventInputs::default();
    let example: Value = serde_json::from_str(include_str!("../../tests/fixtures/webhook-issues.json")).unwrap();
    let marked = "- [x] promote v1 in flow fork\n<!-- patchmoi:dashboard -->";
    let edit = |body: &str, from: Option<&str>, kind: &str| {
        let mut event = example.clone();
        event["issue"]["body"] = json!(body);
        event["issue"]["labels"] = json!([{"name": "bug"}, {"name": "patchmoi"}]);
        event["changes"] = from.map_or(json!({}), |from| json!({"body": {"from": from}}));
        event["sender"]["type"] = json!(kind);
        resolve_trigger(&none, Some("issues"), Some(&event), "now").unwrap()
    };
    let Trigger::DashboardEdited(got) = edit(marked, Some("before"), "User") else { panic!("not an edit") };
    assert_eq!((got.before.as_str(), got.sender.as_str(), got.number), ("before", "Codertocat", 1));
    assert!(matches!(edit("an ordinary issue", Some("before"), "User"), Trigger::Nothing(_)));
    let quoting =
        "- [x] promote v1 in flow fork\nquoting <!-- patchmoi:dashboard --> here\n<!-- patchmoi:tracking flow=f -->";
    assert!(matches!(edit(quoting, Some("before"), "User"), Trigger::Nothing(_)), "a marker quoted inside");
    let mut unlabelled = example.clone();
    unlabelled["issue"]["body"] = json!(marked);
    unlabelled["changes"] = json!({"body": {"from": "before"}});
    let got = resolve_trigger(&none, Some("issues"), Some(&unlabelled), "now").unwrap();
    assert!(matches!(got, Trigger::Nothing(_)), "an issue without the label");
    assert!(matches!(edit(marked, None, "User"), Trigger::Nothing(_)), "the title changed, not the body");
    assert!(matches!(edit(marked, Some("before"), "Bot"), Trigger::Nothing(_)), "patchmoi's own edit");
}
