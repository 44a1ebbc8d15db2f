//! The files people copy: action.yml stays thin and passes every input to
//! the binary, no `run:` script interpolates event data, and the example
//! flows load with patchmoi's own flow parser.

use serde_yaml::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

#[test]
fn action_yml_passes_every_input_through_env_and_interpolates_no_event_data() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let run = steps.iter().find(|step| step["id"] == "run").expect("a step with id run");
    let env = run["env"].as_mapping().unwrap();
    for (name, _) in action["inputs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if name == "version" {
            continue; // for the install step
        }
        let key = format!("INPUT_{}", name.to_uppercase().replace('-', "_"));
        assert_eq!(
            env.get(Value::from(key.as_str())).and_then(Value::as_str),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "{key}"
        );
    }
    for step in steps {
        if let Some(script) = step["run"].as_str() {
            assert!(!script.contains("${{"), "no expression inside a run: script: {script}");
        }
    }
    let upload =
        steps.iter().find(|step| step["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")));
    let upload = upload.expect("the state folder is uploaded");
    let pin = upload["uses"].as_str().unwrap().split_once('@').unwrap().1;
    assert!(pin.len() == 40 && pin.chars().all(|c| c.is_ascii_hexdigit()), "pinned to a commit: {pin}");
    assert_eq!(upload["with"]["include-hidden-files"], true);
    let outputs: Vec<&str> = action["outputs"].as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
    assert_eq!(outputs, ["status", "candidate-ref", "candidate-sha", "pr-number", "pr-url", "report", "results"]);
}

#[test]
fn example_flows_load() {
    for name in ["codex-fork", "generic"] {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/flows/{name}/flow.yml"));
        let flow = patchmoi::flow::flows::Flow::load(&path).unwrap_or_else(|err| panic!("{name}: {err:#}"));
        assert!(flow.has_rebase(), "{name}");
    }
}
