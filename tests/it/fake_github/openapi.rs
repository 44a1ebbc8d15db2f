//! Request-body validation against GitHub's published OpenAPI description
//! (a trimmed copy in tests/fixtures/github-openapi.json; regenerate it
//! with tests/fixtures/trim-openapi.py). OpenAPI 3.0 schemas are JSON
//! Schema with `nullable`; this validator knows the subset GitHub's request
//! bodies use, and is stricter than GitHub in one way: a property the
//! schema does not list is an error, so a misspelt field fails a test
//! instead of being silently ignored.

use serde_json::Value;

pub struct Spec {
    pub doc: Value,
}

impl Spec {
    pub fn load() -> Spec {
        let text = include_str!("../../fixtures/github-openapi.json");
        Spec { doc: serde_json::from_str(text).expect("the trimmed OpenAPI description is JSON") }
    }

    /// The path template (`/repos/{owner}/{repo}/pulls`) that `path` matches
    /// for `method`, with its parameters.
    pub fn operation(&self, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        let paths = self.doc["paths"].as_object()?;
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (template, ops) in paths {
            if ops.get(method).is_none() {
                continue;
            }
            let pattern: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            // `{ref}` of git/refs and git/ref may hold slashes (`heads/a/b`): it is the last segment.
            let greedy = pattern.last().is_some_and(|last| *last == "{ref}")
                && (template.contains("/git/refs/") || template.contains("/git/ref/"));
            if (!greedy && pattern.len() != parts.len()) || (greedy && parts.len() < pattern.len()) {
                continue;
            }
            let mut params = Vec::new();
            let mut ok = true;
            for (i, segment) in pattern.iter().enumerate() {
                let actual = if greedy && i == pattern.len() - 1 { parts[i..].join("/") } else { parts[i].to_string() };
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    params.push((name.to_string(), actual));
                } else if *segment != actual {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Some((template.clone(), params));
            }
        }
        None
    }

    /// Validates a request body against the operation's schema.
    pub fn validate_body(&self, method: &str, template: &str, body: &Value) -> Result<(), String> {
        let op = &self.doc["paths"][template][method];
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        if schema.is_null() {
            return if body.is_null() { Ok(()) } else { Err(format!("{method} {template} takes no body")) };
        }
        self.validate(schema, body, "body")
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let mut node = &self.doc;
                for part in reference.trim_start_matches("#/").split('/') {
                    node = &node[part];
                }
                self.resolve(node)
            }
            None => schema,
        }
    }

    pub fn validate(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if value.is_null() && schema["nullable"] == true {
            return Ok(());
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let matching = options.iter().filter(|option| self.validate(option, value, at).is_ok()).count();
            if matching != 1 {
                return Err(format!("{at}: matches {matching} of oneOf's schemas, not exactly one: {value}"));
            }
        }
        if let Some(options) = schema["anyOf"].as_array() {
            if !options.iter().any(|option| self.validate(option, value, at).is_ok()) {
                return Err(format!("{at}: matches none of anyOf's schemas: {value}"));
            }
        }
        if let Some(all) = schema["allOf"].as_array() {
            for option in all {
                self.validate(option, value, at)?;
            }
        }
        if let Some(kind) = schema["type"].as_str() {
            let ok = match kind {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                "null" => value.is_null(),
                _ => true,
            };
            if !ok {
                return Err(format!("{at}: expected {kind}, got {value}"));
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {}", Value::Array(allowed.clone())));
            }
        }
        if let (Some(min), Some(text)) = (schema["minLength"].as_u64(), value.as_str()) {
            if (text.chars().count() as u64) < min {
                return Err(format!("{at}: shorter than {min} characters"));
            }
        }
        if let (Some(max), Some(text)) = (schema["maxLength"].as_u64(), value.as_str()) {
            if text.chars().count() as u64 > max {
                return Err(format!("{at}: longer than {max} characters"));
            }
        }
        if let (Some(max), Some(fields)) = (schema["maxProperties"].as_u64(), value.as_object()) {
            if fields.len() as u64 > max {
                return Err(format!("{at}: more than {max} properties"));
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    return Err(format!("{at}: more than {max} items"));
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.validate(item_schema, item, &format!("{at}[{i}]"))?;
                }
            }
        }
        if let (Some(fields), true) =
            (value.as_object(), schema.get("properties").is_some() || schema["type"] == "object")
        {
            let properties = schema["properties"].as_object();
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(required) {
                    return Err(format!("{at}: missing required property `{required}`"));
                }
            }
            for (key, field) in fields {
                match properties.and_then(|props| props.get(key)) {
                    Some(field_schema) => self.validate(field_schema, field, &format!("{at}.{key}"))?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(true)) => {}
                        Some(extra) if extra.is_object() => self.validate(extra, field, &format!("{at}.{key}"))?,
                        _ => return Err(format!("{at}: property `{key}` is not in the schema")),
                    },
                }
            }
        }
        Ok(())
    }
}
