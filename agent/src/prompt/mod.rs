//! The system prompt, kept in Markdown files next to this module and rendered compactly.
//!
//! `system.md` is the whole prompt for native tool calling; `json_mode.md` is appended in
//! structured mode, listing each tool as a one-line signature (the JSON schema in
//! `response_format` carries the exact argument types).

use crate::PLAYBOOK_CATALOGUE;
use crate::model::ToolSpec;
use serde_json::Value;

const SYSTEM: &str = include_str!("system.md");
const JSON_MODE: &str = include_str!("json_mode.md");

/// The system prompt. `json_tools`: the tools to list inline (structured mode), or `None`
/// when tools are passed natively.
pub fn system_prompt(json_tools: Option<&[ToolSpec]>) -> String {
    let mut s = SYSTEM.replace("{{PLAYBOOKS}}", &PLAYBOOK_CATALOGUE.join(", "));
    if let Some(tools) = json_tools {
        let lines: Vec<String> = tools.iter().map(signature).collect();
        s.push('\n');
        s.push_str(&JSON_MODE.replace("{{TOOLS}}", &lines.join("\n")));
    }
    s.trim_end().to_string()
}

/// `- name(arg: a|b, opt?): description`
pub fn signature(tool: &ToolSpec) -> String {
    let props = tool.parameters.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = tool
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let args: Vec<String> = props
        .map(|p| {
            p.iter()
                .map(|(name, schema)| {
                    let opt = if required.contains(&name.as_str()) {
                        ""
                    } else {
                        "?"
                    };
                    let enums = schema
                        .get("enum")
                        .and_then(Value::as_array)
                        .map(|e| {
                            e.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .filter(|e| !e.is_empty());
                    match enums {
                        Some(e) => format!("{name}{opt}: {e}"),
                        None => format!("{name}{opt}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let desc = tool.description.lines().next().unwrap_or_default();
    format!("- {}({}): {}", tool.name, args.join(", "), desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "k8s_list".into(),
                description: "List objects of one kind with health.".into(),
                parameters: json!({"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["pods", "nodes"]},
                    "namespace": {"type": "string"}
                }, "required": ["kind"]}),
            },
            ToolSpec {
                name: "logs".into(),
                description: "Container logs, clustered.\nMore detail.".into(),
                parameters: json!({"type": "object", "properties": {"pod": {"type": "string"}}, "required": ["pod"]}),
            },
        ]
    }

    #[test]
    fn native_prompt_snapshot() {
        insta::assert_snapshot!(system_prompt(None));
    }

    #[test]
    fn json_mode_prompt_snapshot() {
        insta::assert_snapshot!(system_prompt(Some(&tools())));
    }

    #[test]
    fn signatures() {
        assert_eq!(
            signature(&tools()[0]),
            "- k8s_list(kind: pods|nodes, namespace?): List objects of one kind with health."
        );
        assert_eq!(
            signature(&tools()[1]),
            "- logs(pod): Container logs, clustered."
        );
    }
}
