//! Structured-output tool calling and the tolerant reply parser.
//!
//! Small local models (Qwen2.5-Coder 0.5B/1.5B under llama.cpp) pick the right tool but do
//! not emit native `tool_calls`. In structured mode each turn asks for one JSON object
//! constrained by [`step_schema`]: either `{"tool": NAME, "arguments": {...}}` for one of the
//! offered tools, or `{"final": {...}}`. The same final-answer object is what native-mode
//! models are asked to write when they are done.
//!
//! [`parse_step`] reads whatever came back: clean JSON, JSON inside a code fence, JSON
//! followed by prose, Python-ish single quotes and `True/False/None`, trailing commas, or
//! several objects in a row (several tool calls).

use super::{ToolCallRequest, ToolSpec};
use crate::PLAYBOOK_CATALOGUE;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

/// The model's final answer, in either tool mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalAnswer {
    /// The answer for the person, in Markdown.
    #[serde(default, alias = "summary", alias = "text")]
    pub answer: String,
    /// Root causes found.
    #[serde(default)]
    pub findings: Vec<ModelFinding>,
}

/// A finding as the model writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelFinding {
    /// One line.
    #[serde(default)]
    pub summary: String,
    /// The cause.
    #[serde(default, alias = "cause")]
    pub root_cause: String,
    /// 0..1, or low / medium / high.
    #[serde(default = "half", deserialize_with = "de_confidence")]
    pub confidence: f32,
    /// Tool call ids or object references (`Pod/ns/name`) supporting it.
    #[serde(default, deserialize_with = "de_strings")]
    pub evidence: Vec<String>,
    /// Suggested remediation.
    #[serde(default, alias = "remediation", alias = "suggests")]
    pub playbook: Option<ModelPlaybook>,
}

/// A remediation as the model writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPlaybook {
    /// Catalogue playbook name.
    #[serde(default, alias = "playbook")]
    pub name: String,
    /// Parameters.
    #[serde(default)]
    pub params: Value,
    /// Target object.
    #[serde(default)]
    pub target: Option<ModelTarget>,
}

/// A target object as the model writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelTarget {
    /// Cluster (defaults to the session's).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
}

fn half() -> f32 {
    0.5
}

fn de_confidence<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.5) as f32;
            // Some models answer in percent.
            if f > 1.0 {
                (f / 100.0).min(1.0)
            } else {
                f.max(0.0)
            }
        }
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "high" | "very high" => 0.9,
            "medium" | "moderate" => 0.6,
            "low" => 0.3,
            other => other
                .trim_end_matches('%')
                .parse::<f32>()
                .map_or(0.5, |f| if f > 1.0 { (f / 100.0).min(1.0) } else { f }),
        },
        _ => 0.5,
    })
}

fn de_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => vec![s],
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    })
}

/// One parsed model turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Call these tools.
    ToolCalls(Vec<ToolCallRequest>),
    /// Done.
    Final(FinalAnswer),
    /// Plain text with no recognisable call or final object.
    Text(String),
}

/// The JSON schema of the final-answer object.
pub fn final_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "summary": {"type": "string"},
                        "root_cause": {"type": "string"},
                        "confidence": {"type": "number"},
                        "evidence": {"type": "array", "items": {"type": "string"}},
                        "playbook": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "enum": PLAYBOOK_CATALOGUE},
                                "params": {"type": "object"},
                                "target": {
                                    "type": "object",
                                    "properties": {
                                        "kind": {"type": "string"},
                                        "namespace": {"type": "string"},
                                        "name": {"type": "string"}
                                    },
                                    "required": ["kind", "name"]
                                }
                            },
                            "required": ["name", "target"]
                        }
                    },
                    "required": ["summary", "root_cause", "confidence"]
                }
            }
        },
        "required": ["answer", "findings"]
    })
}

/// The schema of one structured-mode turn: a call to one of `tools`, or the final answer.
pub fn step_schema(tools: &[ToolSpec]) -> Value {
    let mut choices: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "const": t.name},
                    "arguments": t.parameters
                },
                "required": ["tool", "arguments"]
            })
        })
        .collect();
    choices.push(json!({
        "type": "object",
        "properties": {"final": final_schema()},
        "required": ["final"]
    }));
    json!({"anyOf": choices})
}

/// Only tool calls: used for the first structured-mode turn when nothing has been read
/// yet, because small models otherwise "answer" by restating the question.
pub fn calls_only_schema(tools: &[ToolSpec]) -> Value {
    let mut s = step_schema(tools);
    if let Some(choices) = s.get_mut("anyOf").and_then(Value::as_array_mut)
        && choices.len() > 1
    {
        choices.pop();
    }
    s
}

/// Only the final answer (used when a budget forces the end).
pub fn final_only_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"final": final_schema()},
        "required": ["final"]
    })
}

/// Read a model turn's text. `known_tools` lets a bare `{"name": .., "arguments": ..}` count
/// as a call only when it names a real tool.
pub fn parse_step(text: &str, known_tools: &[&str]) -> Step {
    let objects = extract_json_objects(text);
    let mut calls = Vec::new();
    for obj in &objects {
        if let Some(f) = as_final(obj) {
            if calls.is_empty() {
                return Step::Final(f);
            }
            break;
        }
        collect_calls(obj, known_tools, &mut calls);
    }
    if !calls.is_empty() {
        for (i, c) in calls.iter_mut().enumerate() {
            if c.id.is_empty() {
                c.id = format!("json_{}_{}", i, short_hash(text));
            }
        }
        return Step::ToolCalls(calls);
    }
    Step::Text(text.trim().to_string())
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

fn as_final(v: &Value) -> Option<FinalAnswer> {
    let obj = v.as_object()?;
    let inner = obj
        .get("final")
        .or_else(|| obj.get("final_answer"))
        .or_else(|| obj.get("answer").filter(|a| a.is_object()));
    match inner {
        Some(Value::String(s)) => Some(FinalAnswer {
            answer: s.clone(),
            findings: Vec::new(),
        }),
        Some(inner @ Value::Object(_)) => serde_json::from_value(inner.clone()).ok(),
        Some(_) => None,
        None if obj.contains_key("findings") => serde_json::from_value(v.clone()).ok(),
        None => None,
    }
}

fn collect_calls(v: &Value, known: &[&str], out: &mut Vec<ToolCallRequest>) {
    match v {
        Value::Array(items) => {
            for i in items {
                collect_calls(i, known, out);
            }
        }
        Value::Object(obj) => {
            for key in ["tool_calls", "calls", "tools"] {
                if let Some(Value::Array(items)) = obj.get(key) {
                    for i in items {
                        collect_calls(i, known, out);
                    }
                    return;
                }
            }
            for key in ["function", "tool_call"] {
                if let Some(inner @ Value::Object(_)) = obj.get(key) {
                    let before = out.len();
                    collect_calls(inner, known, out);
                    if out.len() > before {
                        if let (Some(id), Some(last)) =
                            (obj.get("id").and_then(Value::as_str), out.last_mut())
                        {
                            last.id = id.to_string();
                        }
                        return;
                    }
                }
            }
            let name = ["tool", "name", "tool_name", "function"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_str));
            let Some(name) = name else { return };
            // A bare `name` must be a real tool: `{"name": "api"}` in prose is not a call.
            if !obj.contains_key("tool") && !known.contains(&name) {
                return;
            }
            let args = ["arguments", "args", "parameters", "input"]
                .iter()
                .find_map(|k| obj.get(*k))
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let args = match args {
                // Arguments double-encoded as a string.
                Value::String(s) => extract_json_objects(&s)
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Value::Object(Map::new())),
                Value::Null => Value::Object(Map::new()),
                other => other,
            };
            out.push(ToolCallRequest {
                id: obj
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name: name.to_string(),
                arguments: args,
            });
        }
        _ => {}
    }
}

/// Every top-level JSON object (or array of objects) in `text`, repaired where possible.
pub fn extract_json_objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if (c == '{' || c == '[')
            && let Some(end) = balanced_end(&bytes, i)
        {
            let candidate: String = bytes[i..=end].iter().collect();
            if let Some(v) = parse_lenient(&candidate)
                && (v.is_object() || v.as_array().is_some_and(|a| a.iter().any(Value::is_object)))
            {
                out.push(v);
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Index of the bracket closing the one at `start`, honouring both quote styles.
fn balanced_end(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (j, &c) in chars.iter().enumerate().skip(start) {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                // An apostrophe inside a word ("don't") is not a quote.
                let prev_alpha = j > 0 && chars[j - 1].is_alphanumeric();
                if c == '"' || !prev_alpha {
                    quote = Some(c);
                }
            }
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_lenient(s: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return Some(v);
    }
    serde_json::from_str::<Value>(&repair(s)).ok()
}

/// Single quotes → double quotes, Python literals → JSON, trailing commas dropped.
fn repair(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if escaped {
                escaped = false;
                out.push(c);
            } else if c == '\\' {
                escaped = true;
                out.push(c);
            } else if c == q {
                quote = None;
                out.push('"');
            } else if c == '"' && q == '\'' {
                out.push_str("\\\"");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                out.push('"');
            }
            ',' => {
                // Drop a comma followed only by whitespace and a closing bracket.
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                if !matches!(next, Some('}') | Some(']')) {
                    out.push(c);
                }
            }
            _ if c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push_str(match word.as_str() {
                    "True" => "true",
                    "False" => "false",
                    "None" => "null",
                    _ => &word,
                });
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    const TOOLS: &[&str] = &["k8s_list", "logs"];

    fn call(name: &str, args: Value) -> (String, Value) {
        (name.to_string(), args)
    }

    fn calls(step: Step) -> Vec<(String, Value)> {
        match step {
            Step::ToolCalls(c) => c.into_iter().map(|c| (c.name, c.arguments)).collect(),
            other => panic!("expected tool calls, got {other:?}"),
        }
    }

    #[test]
    fn clean_json() {
        let s = parse_step(r#"{"tool":"k8s_list","arguments":{"kind":"Pod"}}"#, TOOLS);
        assert_eq!(calls(s), vec![call("k8s_list", json!({"kind": "Pod"}))]);
    }

    #[test]
    fn code_fence_and_trailing_prose() {
        let text = "I will list the pods.\n```json\n{\"tool\": \"k8s_list\", \"arguments\": {\"namespace\": \"shop\"}}\n```\nThen I'll check logs.";
        assert_eq!(
            calls(parse_step(text, TOOLS)),
            vec![call("k8s_list", json!({"namespace": "shop"}))]
        );
    }

    #[test]
    fn single_quotes_python_literals_trailing_commas() {
        let text =
            "{'name': 'logs', 'arguments': {'pod': 'api-1', 'previous': True, 'grep': None,},}";
        assert_eq!(
            calls(parse_step(text, TOOLS)),
            vec![call(
                "logs",
                json!({"pod": "api-1", "previous": true, "grep": null})
            )]
        );
    }

    #[test]
    fn multiple_objects_and_openai_shapes() {
        let text = r#"{"name":"k8s_list","arguments":"{\"kind\":\"Node\"}"} and also
{"type":"function","id":"c9","function":{"name":"logs","arguments":{"pod":"x"}}}"#;
        let s = parse_step(text, TOOLS);
        let Step::ToolCalls(c) = s else { panic!() };
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].arguments, json!({"kind": "Node"}));
        assert_eq!(c[1].id, "c9");
        assert_eq!(c[1].name, "logs");
    }

    #[test]
    fn unknown_bare_name_is_not_a_call() {
        let s = parse_step(r#"The deployment {"name": "api"} is fine."#, TOOLS);
        assert!(matches!(s, Step::Text(_)));
    }

    #[test]
    fn final_answers() {
        let s = parse_step(
            r#"{"final":{"answer":"OOM","findings":[{"summary":"api OOMKilled","root_cause":"limit too low","confidence":"high","evidence":"call_1","playbook":{"name":"raise-memory-limit","params":{"memory":"512Mi"},"target":{"kind":"Deployment","namespace":"shop","name":"api"}}}]}}"#,
            TOOLS,
        );
        let Step::Final(f) = s else { panic!() };
        assert_eq!(f.findings[0].confidence, 0.9);
        assert_eq!(f.findings[0].evidence, vec!["call_1".to_string()]);
        assert_eq!(
            f.findings[0].playbook.as_ref().unwrap().name,
            "raise-memory-limit"
        );
        let s = parse_step(r#"{"final": "nothing is wrong"}"#, TOOLS);
        assert_eq!(
            s,
            Step::Final(FinalAnswer {
                answer: "nothing is wrong".into(),
                findings: vec![]
            })
        );
        let s = parse_step(
            r#"{"answer":"x","findings":[{"summary":"s","root_cause":"r","confidence":85}]}"#,
            TOOLS,
        );
        let Step::Final(f) = s else { panic!() };
        assert!((f.findings[0].confidence - 0.85).abs() < 1e-6);
    }

    #[test]
    fn prose_is_text() {
        assert_eq!(
            parse_step("  all good  ", TOOLS),
            Step::Text("all good".into())
        );
    }

    #[test]
    fn schema_lists_every_tool_and_the_final_branch() {
        let tools = vec![ToolSpec {
            name: "k8s_list".into(),
            description: "d".into(),
            parameters: json!({"type": "object", "properties": {"kind": {"type": "string"}}}),
        }];
        let s = step_schema(&tools);
        let any = s["anyOf"].as_array().unwrap();
        assert_eq!(any.len(), 2);
        assert_eq!(any[0]["properties"]["tool"]["const"], "k8s_list");
        assert!(any[1]["properties"]["final"].is_object());
    }
}
