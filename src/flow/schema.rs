//! The JSON-schema subset codex-flows matches event payloads with: `type`
//! (one name or a list), `required`, `properties` (recursive) and `enum`.
//! Every other keyword (`minLength`, `pattern`, `additionalProperties`, …)
//! is ignored, as codex-flows ignores it, so a flow matches the same events
//! under both runtimes.

use serde_json::Value;

/// Why `value` does not satisfy `schema`: one line per problem, with the
/// JSON path (`$.repo must be one of openai/codex`). Empty when it does.
pub fn violations(value: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(value, schema, "$", &mut errors);
    errors
}

fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        // JavaScript's Object.is: 1 and 1.0 are the same number there.
        if !allowed.iter().any(|entry| same_value(entry, value)) {
            let listed: Vec<String> = allowed.iter().map(js_string).collect();
            errors.push(format!("{path} must be one of {}", listed.join(", ")));
            return;
        }
    }
    if let Some(kind) = schema.get("type") {
        let names: Vec<&str> = match kind {
            Value::String(name) => vec![name.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| type_matches(value, name)) {
            errors.push(format!("{path} must be {}", names.join(" or ")));
            return;
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let declared_object = schema.get("type").and_then(Value::as_str) == Some("object");
    if declared_object || (properties.is_some() && value.is_object()) {
        let Some(object) = value.as_object() else {
            errors.push(format!("{path} must be object"));
            return;
        };
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                errors.push(format!("{path}.{key} is required"));
            }
        }
        for (key, child) in properties.into_iter().flatten() {
            if let Some(field) = object.get(key) {
                check(field, child, &format!("{path}.{key}"), errors);
            }
        }
    }
}

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "array" => value.is_array(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0 && n.is_finite()),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        // Object.is compares objects by identity: a schema's literal object never equals the payload's.
        (Value::Object(_) | Value::Array(_), _) => false,
        _ => a == b,
    }
}

/// How JavaScript's `String(v)` shows an enum entry in the message.
fn js_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn release_schema() -> Value {
        json!({
            "type": "object",
            "required": ["repo", "tag"],
            "properties": {
                "repo": {"type": "string", "enum": ["openai/codex"]},
                "tag": {"type": "string", "minLength": 100, "pattern": "^never$"},
                "draft": {"type": ["boolean", "null"]},
                "count": {"type": "integer"}
            }
        })
    }

    #[test]
    fn the_subset_of_codex_flows() {
        let schema = release_schema();
        let cases: Vec<(Value, Vec<&str>)> = vec![
            // minLength and pattern are ignored, as codex-flows ignores them.
            (json!({"repo": "openai/codex", "tag": "rust-v0.130.0"}), vec![]),
            (json!({"repo": "openai/codex", "tag": "x", "extra": 1, "draft": null, "count": 3.0}), vec![]),
            (json!({"repo": "other/codex", "tag": "x"}), vec!["$.repo must be one of openai/codex"]),
            (json!({"repo": "openai/codex"}), vec!["$.tag is required"]),
            (json!({}), vec!["$.repo is required", "$.tag is required"]),
            (json!({"repo": "openai/codex", "tag": 5}), vec!["$.tag must be string"]),
            (json!({"repo": "openai/codex", "tag": "t", "draft": "no"}), vec!["$.draft must be boolean or null"]),
            (json!({"repo": "openai/codex", "tag": "t", "count": 1.5}), vec!["$.count must be integer"]),
            (json!("text"), vec!["$ must be object"]),
        ];
        for (payload, want) in cases {
            assert_eq!(violations(&payload, &schema), want, "{payload}");
        }
    }

    #[test]
    fn properties_without_type_apply_to_objects_only() {
        let schema = json!({"properties": {"a": {"enum": [1]}}, "required": ["a"]});
        assert!(violations(&json!("not an object"), &schema).is_empty());
        assert_eq!(violations(&json!({"a": 2}), &schema), ["$.a must be one of 1"]);
        assert_eq!(violations(&json!({}), &schema), ["$.a is required"]);
        assert!(violations(&json!({"a": 1.0}), &schema).is_empty());
    }
}
