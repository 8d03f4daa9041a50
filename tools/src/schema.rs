//! Argument schemas: generation (schemars, subschemas inlined), a compact form for the
//! model's request, and validation with errors a model can act on.

use crate::error::{Result, ToolError};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The full JSON schema of `T`, subschemas inlined.
pub fn schema_for<T: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Drop what the model does not need (titles, formats, nulls in optional types, defaults of
/// null) so all schemas together stay small.
pub fn compact_schema(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("$schema");
                m.remove("title");
                m.remove("format");
                // Validation uses the full schema; the model does not need to be told.
                if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                    m.remove("additionalProperties");
                }
                if m.get("default").is_some_and(Value::is_null) {
                    m.remove("default");
                }
                if let Some(Value::Array(types)) = m.get("type") {
                    let non_null: Vec<Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .cloned()
                        .collect();
                    if non_null.len() == 1 {
                        m.insert("type".into(), non_null[0].clone());
                    }
                }
                if let Some(Value::Array(e)) = m.get_mut("enum") {
                    e.retain(|x| !x.is_null());
                }
                // `anyOf: [X, {type: null}]` (optional enums) → X
                if let Some(Value::Array(any)) = m.get("anyOf") {
                    let non_null: Vec<Value> = any
                        .iter()
                        .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                        .cloned()
                        .collect();
                    if non_null.len() == 1 {
                        m.remove("anyOf");
                        if let Value::Object(inner) = &non_null[0] {
                            for (k, val) in inner {
                                m.entry(k.clone()).or_insert(val.clone());
                            }
                        }
                    }
                }
                if m.get("minimum").and_then(Value::as_f64) == Some(0.0) {
                    m.remove("minimum");
                }
                for (_, child) in m.iter_mut() {
                    walk(child);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(expected: &str, v: &Value) -> bool {
    let actual = type_name(v);
    expected == actual || (expected == "number" && actual == "integer")
}

/// Check `value` against `schema`; `path` names the field in messages.
fn check(schema: &Value, value: &Value, path: &str) -> Result<()> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = s.get(key) {
            let mut first_err = None;
            for alt in alts {
                match check(alt, value, path) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        if first_err.is_none() && !value.is_null() {
                            first_err = Some(e)
                        }
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
            return Err(ToolError::InvalidArgs(format!(
                "`{path}` has an unexpected value"
            )));
        }
    }
    if let Some(t) = s.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.is_empty() && !allowed.iter().any(|a| type_ok(a, value)) {
            return Err(ToolError::InvalidArgs(format!(
                "`{path}` must be {}, found {} `{}`",
                allowed.join(" or "),
                type_name(value),
                truncate(&value.to_string())
            )));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        let opts: Vec<String> = options
            .iter()
            .filter(|o| !o.is_null())
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
            .collect();
        return Err(ToolError::InvalidArgs(format!(
            "`{path}` must be one of: {}; found `{}`",
            opts.join(", "),
            truncate(&value.to_string())
        )));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        return Err(ToolError::InvalidArgs(format!(
            "`{path}` must be at least {min}, found {n}"
        )));
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), value.as_f64())
        && n > max
    {
        return Err(ToolError::InvalidArgs(format!(
            "`{path}` must be at most {max}, found {n}"
        )));
    }
    if let Value::Object(obj) = value {
        let empty = Map::new();
        let props = s
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if obj.get(r).is_none_or(Value::is_null) {
                    let hint = props
                        .get(r)
                        .and_then(|p| p.get("description"))
                        .and_then(Value::as_str)
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default();
                    return Err(ToolError::InvalidArgs(format!(
                        "`{}` is required{hint}",
                        join(path, r)
                    )));
                }
            }
        }
        let closed = s.get("additionalProperties") == Some(&Value::Bool(false));
        for (k, v) in obj {
            match props.get(k) {
                Some(p) => check(p, v, &join(path, k))?,
                None if closed => {
                    let names: Vec<&str> = props.keys().map(String::as_str).collect();
                    return Err(ToolError::InvalidArgs(format!(
                        "unknown argument `{}`; valid arguments: {}",
                        join(path, k),
                        names.join(", ")
                    )));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, s.get("items")) {
        for (i, it) in items.iter().enumerate() {
            check(item_schema, it, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Validate tool arguments against a schema; the error says what to change.
pub fn validate(schema: &Value, args: &Value) -> Result<()> {
    if !args.is_object() {
        return Err(ToolError::InvalidArgs(format!(
            "arguments must be a JSON object, found {}",
            type_name(args)
        )));
    }
    check(schema, args, "")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct A {
        /// Namespace to read.
        namespace: String,
        kind: Option<K>,
        limit: Option<u32>,
    }
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum K {
        Pods,
        Nodes,
    }

    fn err(v: Value) -> String {
        validate(&schema_for::<A>(), &v).unwrap_err().to_string()
    }

    #[test]
    fn messages_are_actionable() {
        assert_eq!(
            err(json!({})),
            "invalid arguments: `namespace` is required (Namespace to read.)"
        );
        assert_eq!(
            err(json!({"namespace": "ai", "kind": "pod"})),
            "invalid arguments: `kind` must be one of: pods, nodes; found `\"pod\"`"
        );
        assert_eq!(
            err(json!({"namespace": "ai", "nmsp": 1})),
            "invalid arguments: unknown argument `nmsp`; valid arguments: namespace, kind, limit"
        );
        assert_eq!(
            err(json!({"namespace": 3})),
            "invalid arguments: `namespace` must be string, found integer `3`"
        );
        assert!(err(json!({"namespace": "a", "limit": -1})).contains("`limit`"));
        validate(
            &schema_for::<A>(),
            &json!({"namespace": "ai", "kind": null}),
        )
        .unwrap();
        validate(
            &schema_for::<A>(),
            &json!({"namespace": "ai", "kind": "nodes", "limit": 3}),
        )
        .unwrap();
    }

    #[test]
    fn compact_drops_noise() {
        let c = compact_schema(schema_for::<A>());
        let s = c.to_string();
        assert!(
            !s.contains("$schema") && !s.contains("format") && !s.contains("null"),
            "{s}"
        );
    }
}
