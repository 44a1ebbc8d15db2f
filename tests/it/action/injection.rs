//! Untrusted text never reaches the runner as a workflow command: hostile
//! event fields from a dispatch payload, read back from everything the
//! job printed with a port of the runner's own command parsers.

use serde_json::json;

use super::Setup;

/// The runner's two command parsers (actions/runner,
/// src/Runner.Common/ActionCommand.cs): `TryParseV2`, a line that starts
/// with `::name…::` after its leading whitespace, and `TryParse`, `##[name…]`
/// anywhere in a line. Returns the command's name.
fn command_of(line: &str) -> Option<&str> {
    fn name(info: &str) -> Option<&str> {
        info.split(' ').next().filter(|name| !name.is_empty())
    }
    if let Some(rest) = line.trim_start().strip_prefix("::") {
        if let Some(end) = rest.find("::") {
            return name(&rest[..end]);
        }
    }
    let at = line.find("##[")?;
    let rest = &line[at + 3..];
    rest.find(']').and_then(|end| name(&rest[..end]))
}

/// The commands the runner would obey in `output` (lines split at `\n` and
/// `\r`), with `stop-commands` blocks honoured as it honours them.
fn obeyed(output: &str) -> Vec<String> {
    let mut obeyed = Vec::new();
    let mut stopped: Option<String> = None;
    for line in output.split(['\n', '\r']) {
        let Some(command) = command_of(line) else { continue };
        match &stopped {
            Some(token) if command.eq_ignore_ascii_case(token) => stopped = None,
            Some(_) => {}
            None if command.eq_ignore_ascii_case("stop-commands") => {
                stopped = line.split_once("::stop-commands::").map(|(_, token)| token.trim().to_string());
            }
            None => obeyed.push(line.to_string()),
        }
    }
    obeyed
}

#[test]
fn the_parser_port_reads_what_the_runner_reads() {
    assert_eq!(command_of("  ::add-mask::x"), Some("add-mask"));
    assert_eq!(command_of("text ##[warning]forged"), Some("warning"));
    assert_eq!(command_of("::no-end"), None);
    assert_eq!(command_of("\u{200B}::add-mask::x"), None);
    assert_eq!(obeyed("::stop-commands::t1\n::warning::x\n::t1::\n::notice::y\n"), ["::notice::y"]);
}

#[test]
fn hostile_event_fields_give_no_command_outside_a_protected_block() {
    let s = Setup::new();
    let hostile = "x\n ::add-mask::PWNED\r##[warning]forged\n\t::error::owned";
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dispatch("v1.1.0")).unwrap()).unwrap();
    // A tag is refused, with the tag in the error; an event's own fields
    // (its id is replaced by the deterministic one) ride along in the run.
    for (client_payload, printed) in [
        (json!({"repo": "test/upstream", "tag": hostile}), true),
        (
            json!({"event": {"id": hostile, "type": "upstream.release", "source": hostile,
                             "payload": {"repo": "test/upstream", "tag": "v1.1.0", "title": hostile}}}),
            false,
        ),
    ] {
        event["client_payload"] = client_payload;
        let path = s.dir.join("hostile.json");
        std::fs::write(&path, event.to_string()).unwrap();
        let run = s.action(&path, &[]);
        for line in obeyed(&run.stdout).into_iter().chain(obeyed(&run.stderr)) {
            assert!(
                !line.contains("PWNED") && !line.contains("forged") && !line.contains("owned"),
                "the runner would obey {line:?}\nstdout:\n{}\nstderr:\n{}",
                run.stdout,
                run.stderr
            );
        }
        if printed {
            assert!(run.stderr.contains("PWNED"), "the hostile text is shown, defused: {}", run.stderr);
        }
    }
}
