//! The first model request stays within its token budget (system prompt + tool schemas).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use medic_agent::model::{ChatMessage, ToolMode};
use medic_agent::{Session, SessionConfig};
use medic_tools::{Registry, ToolContext, count_tokens};
use serde_json::json;

#[test]
fn first_request_is_at_most_2500_tokens() {
    for mode in [ToolMode::Native, ToolMode::Json] {
        let s = Session::new(
            Registry::standard(),
            ToolContext::new(),
            None,
            SessionConfig {
                tool_mode: mode,
                probe_cache: None,
                ..SessionConfig::default()
            },
        );
        let r = s.first_request("Why is checkout returning 503s in namespace shop?");
        let mut text = String::new();
        for m in &r.messages {
            if let ChatMessage::System { content } | ChatMessage::User { content } = m {
                text.push_str(content);
            }
        }
        let tools: Vec<_> = r
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        text.push_str(&serde_json::to_string(&tools).unwrap());
        if let Some(schema) = &r.response_schema {
            text.push_str(&schema.to_string());
        }
        let tokens = count_tokens(&text);
        assert!(
            tokens <= 2500,
            "{} mode: first request is {tokens} tokens",
            mode.name()
        );
        assert!(tokens > 300, "suspiciously small first request: {tokens}");
    }
}
