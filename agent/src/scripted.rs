//! A scripted model: a local OpenAI-compatible HTTP server that replays a script.
//!
//! Tests and evals point a real [`crate::RigClient`] at it, so the whole HTTP path is
//! exercised. Requests and responses use async-openai's Chat Completions types; every
//! request is recorded with its prompt size in tokens (o200k_base) so tests can count what
//! was sent.
//!
//! A script (YAML or JSON):
//!
//! ```yaml
//! native_tools: true        # false: behave like a small model (tool calls as JSON text)
//! steps:
//!   - tool_calls:
//!       - {name: k8s_list, arguments: {kind: Pod, namespace: shop}}
//!   - when_last_tool_result_contains: OOMKilled   # only used when the last result matches
//!     final: {answer: "...", findings: [...]}
//!   - content: "raw text the model writes"
//!   - echo_last_tool_result: true                 # repeat the last tool output verbatim
//! ```
//!
//! Each request takes the first unused step whose condition holds. When the request offers
//! no tools (structured mode) or `native_tools` is false, tool calls are written as JSON
//! text, one object per line, the way small models write them. A request offering the probe
//! tool ([`crate::model::probe::PROBE_TOOL`]) is answered natively without using a step when
//! `native_tools` is true.

use crate::error::{AgentError, Result};
use crate::model::probe::PROBE_TOOL;
use async_openai::types::chat::{
    ChatChoice, ChatChoiceStream, ChatCompletionMessageToolCall,
    ChatCompletionMessageToolCallChunk, ChatCompletionMessageToolCalls,
    ChatCompletionResponseMessage, ChatCompletionStreamResponseDelta, CompletionUsage,
    CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
    FinishReason, FunctionCall, FunctionCallStream, FunctionType, Role,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// A scripted conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Whether the "model" supports native tool calls (default true).
    #[serde(default = "yes")]
    pub native_tools: bool,
    /// The turns, in order.
    pub steps: Vec<ScriptStep>,
}

fn yes() -> bool {
    true
}

/// One scripted model turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// Use this step only when the latest tool result contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_last_tool_result_contains: Option<String>,
    /// Tool calls to make.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ScriptedCall>,
    /// A final answer, written as `{"final": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#final: Option<Value>,
    /// Raw text to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Write the latest tool result back verbatim (prompt-injection tests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo_last_tool_result: bool,
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    /// Tool name.
    pub name: String,
    /// Arguments.
    #[serde(default)]
    pub arguments: Value,
}

impl Script {
    /// Parse YAML (JSON is YAML too).
    pub fn from_yaml(text: &str) -> Result<Self> {
        let s: Script = serde_yaml::from_str(text).map_err(|e| {
            AgentError::Script(format!(
                "expected `steps:` with tool_calls / final / content entries: {e}"
            ))
        })?;
        for (i, step) in s.steps.iter().enumerate() {
            let kinds = usize::from(!step.tool_calls.is_empty())
                + usize::from(step.r#final.is_some())
                + usize::from(step.content.is_some())
                + usize::from(step.echo_last_tool_result);
            if kinds != 1 {
                return Err(AgentError::Script(format!(
                    "step {i} must have exactly one of tool_calls, final, content, \
                     echo_last_tool_result; found {kinds}"
                )));
            }
        }
        Ok(s)
    }

    /// Read a script file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// The request body as sent.
    pub body: Value,
    /// Tokens of the messages and tool schemas (o200k_base).
    pub prompt_tokens: u64,
    /// Index of the step that answered it (`None` for probes and errors).
    pub step: Option<usize>,
}

#[derive(Default)]
struct Inner {
    script: Script,
    used: Vec<bool>,
    requests: Vec<RecordedRequest>,
}

/// A running scripted server.
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT/v1`, the base URL for an OpenAI-compatible client.
    pub base_url: String,
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl ScriptedServer {
    /// Start on 127.0.0.1 with an ephemeral port.
    pub async fn start(script: Script) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| AgentError::Io {
                path: "127.0.0.1:0".into(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Io {
            path: "127.0.0.1:0".into(),
            source,
        })?;
        let used = vec![false; script.steps.len()];
        let inner = Arc::new(Mutex::new(Inner {
            script,
            used,
            requests: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/chat/completions", post(handle))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "scripted model server stopped");
            }
        });
        Ok(ScriptedServer {
            base_url: format!("http://{addr}/v1"),
            addr,
            inner,
            task,
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .lock()
            .map(|i| i.requests.clone())
            .unwrap_or_default()
    }

    /// Steps not used yet.
    pub fn unused_steps(&self) -> usize {
        self.inner
            .lock()
            .map(|i| i.used.iter().filter(|u| !**u).count())
            .unwrap_or(0)
    }

    /// Stop the server.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Text of the messages after the last assistant turn (tool results / quoted data).
fn last_tool_result(body: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        for m in msgs.iter().rev() {
            if m.get("role").and_then(Value::as_str) == Some("assistant") {
                break;
            }
            parts.push(content_text(m.get("content").unwrap_or(&Value::Null)));
        }
    }
    parts.reverse();
    parts.join("\n")
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn count_prompt_tokens(body: &Value) -> u64 {
    let mut text = String::new();
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        for m in msgs {
            text.push_str(&content_text(m.get("content").unwrap_or(&Value::Null)));
            if let Some(calls) = m.get("tool_calls") {
                text.push_str(&calls.to_string());
            }
            text.push('\n');
        }
    }
    if let Some(tools) = body.get("tools") {
        text.push_str(&tools.to_string());
    }
    if let Some(rf) = body.get("response_format") {
        text.push_str(&rf.to_string());
    }
    medic_tools::count_tokens(&text) as u64
}

enum Reply {
    Text(String),
    Calls(Vec<(String, String, Value)>),
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, Json(body): Json<Value>) -> Response {
    // Parse with async-openai's types: a request they cannot read is a wire bug worth a 400.
    let typed: CreateChatCompletionRequest = match serde_json::from_value(body.clone()) {
        Ok(t) => t,
        Err(e) => {
            return error_response(format!("not a Chat Completions request: {e}"));
        }
    };
    let offered: Vec<String> = typed
        .tools
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    let stream = typed.stream.unwrap_or(false);
    let model = typed.model.clone();
    let prompt_tokens = count_prompt_tokens(&body);
    let last = last_tool_result(&body);

    let reply = {
        let Ok(mut g) = inner.lock() else {
            return error_response("scripted server state poisoned".into());
        };
        let native = g.script.native_tools;
        if native && offered.iter().any(|t| t == PROBE_TOOL) {
            g.requests.push(RecordedRequest {
                body: body.clone(),
                prompt_tokens,
                step: None,
            });
            Reply::Calls(vec![(
                "probe_1".into(),
                PROBE_TOOL.into(),
                json!({"ok": true}),
            )])
        } else {
            let found = g.script.steps.iter().enumerate().position(|(i, s)| {
                !g.used[i]
                    && s.when_last_tool_result_contains
                        .as_ref()
                        .is_none_or(|w| last.contains(w.as_str()))
            });
            let Some(i) = found else {
                let n = g.requests.len();
                g.requests.push(RecordedRequest {
                    body: body.clone(),
                    prompt_tokens,
                    step: None,
                });
                return error_response(format!(
                    "script exhausted: no unused step matches request {n}"
                ));
            };
            g.used[i] = true;
            g.requests.push(RecordedRequest {
                body: body.clone(),
                prompt_tokens,
                step: Some(i),
            });
            let step = g.script.steps[i].clone();
            let as_text = !native || offered.is_empty();
            if !step.tool_calls.is_empty() {
                if as_text {
                    Reply::Text(
                        step.tool_calls
                            .iter()
                            .map(|c| json!({"tool": c.name, "arguments": c.arguments}).to_string())
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )
                } else {
                    Reply::Calls(
                        step.tool_calls
                            .iter()
                            .enumerate()
                            .map(|(k, c)| {
                                (
                                    format!("call_s{i}_{k}"),
                                    c.name.clone(),
                                    c.arguments.clone(),
                                )
                            })
                            .collect(),
                    )
                }
            } else if let Some(f) = step.r#final {
                Reply::Text(json!({ "final": f }).to_string())
            } else if let Some(c) = step.content {
                Reply::Text(c)
            } else {
                Reply::Text(last.clone())
            }
        }
    };
    let completion_tokens = match &reply {
        Reply::Text(t) => medic_tools::count_tokens(t) as u64,
        Reply::Calls(c) => c
            .iter()
            .map(|(_, n, a)| medic_tools::count_tokens(&format!("{n}{a}")) as u64)
            .sum(),
    };
    let usage = CompletionUsage {
        prompt_tokens: prompt_tokens as u32,
        completion_tokens: completion_tokens as u32,
        total_tokens: (prompt_tokens + completion_tokens) as u32,
        prompt_tokens_details: None,
        completion_tokens_details: None,
    };
    if stream {
        stream_response(model, reply, usage)
    } else {
        Json(full_response(model, reply, usage)).into_response()
    }
}

fn error_response(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

#[allow(deprecated)] // async-openai marks `function_call` / `system_fingerprint` deprecated.
fn full_response(
    model: String,
    reply: Reply,
    usage: CompletionUsage,
) -> CreateChatCompletionResponse {
    let (content, tool_calls, finish) = match reply {
        Reply::Text(t) => (Some(t), None, FinishReason::Stop),
        Reply::Calls(calls) => (
            None,
            Some(
                calls
                    .into_iter()
                    .map(|(id, name, args)| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id,
                            function: FunctionCall {
                                name,
                                arguments: args.to_string(),
                            },
                        })
                    })
                    .collect(),
            ),
            FinishReason::ToolCalls,
        ),
    };
    CreateChatCompletionResponse {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        choices: vec![ChatChoice {
            index: 0,
            message: ChatCompletionResponseMessage {
                content,
                refusal: None,
                tool_calls,
                annotations: None,
                role: Role::Assistant,
                function_call: None,
                audio: None,
            },
            finish_reason: Some(finish),
            logprobs: None,
        }],
        created: chrono::Utc::now().timestamp() as u32,
        model,
        service_tier: None,
        system_fingerprint: None,
        object: "chat.completion".into(),
        usage: Some(usage),
        metadata: None,
        moderation: None,
    }
}

#[allow(deprecated)]
fn chunk(
    id: &str,
    model: &str,
    delta: ChatCompletionStreamResponseDelta,
    finish: Option<FinishReason>,
    usage: Option<CompletionUsage>,
) -> CreateChatCompletionStreamResponse {
    CreateChatCompletionStreamResponse {
        id: id.to_string(),
        choices: if usage.is_some() {
            Vec::new()
        } else {
            vec![ChatChoiceStream {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }]
        },
        created: chrono::Utc::now().timestamp() as u32,
        model: model.to_string(),
        service_tier: None,
        system_fingerprint: None,
        object: "chat.completion.chunk".into(),
        usage,
        obfuscation: None,
        ..Default::default()
    }
}

#[allow(deprecated)]
fn delta(
    role: Option<Role>,
    content: Option<String>,
    tool_calls: Option<Vec<ChatCompletionMessageToolCallChunk>>,
) -> ChatCompletionStreamResponseDelta {
    ChatCompletionStreamResponseDelta {
        content,
        function_call: None,
        tool_calls,
        role,
        refusal: None,
        audio: None,
    }
}

fn stream_response(model: String, reply: Reply, usage: CompletionUsage) -> Response {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let mut chunks = vec![chunk(
        &id,
        &model,
        delta(Some(Role::Assistant), None, None),
        None,
        None,
    )];
    let finish = match reply {
        Reply::Text(text) => {
            // Several small deltas, split on char boundaries, like a real server.
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(16) {
                let s: String = piece.iter().collect();
                chunks.push(chunk(&id, &model, delta(None, Some(s), None), None, None));
            }
            FinishReason::Stop
        }
        Reply::Calls(calls) => {
            for (k, (call_id, name, args)) in calls.into_iter().enumerate() {
                let args = args.to_string();
                let (a, b) = args.split_at(args.len() / 2);
                let first = ChatCompletionMessageToolCallChunk {
                    index: k as u32,
                    id: Some(call_id),
                    r#type: Some(FunctionType::Function),
                    function: Some(FunctionCallStream {
                        name: Some(name),
                        arguments: Some(a.to_string()),
                    }),
                };
                let second = ChatCompletionMessageToolCallChunk {
                    index: k as u32,
                    id: None,
                    r#type: None,
                    function: Some(FunctionCallStream {
                        name: None,
                        arguments: Some(b.to_string()),
                    }),
                };
                chunks.push(chunk(
                    &id,
                    &model,
                    delta(None, None, Some(vec![first])),
                    None,
                    None,
                ));
                chunks.push(chunk(
                    &id,
                    &model,
                    delta(None, None, Some(vec![second])),
                    None,
                    None,
                ));
            }
            FinishReason::ToolCalls
        }
    };
    chunks.push(chunk(
        &id,
        &model,
        delta(None, None, None),
        Some(finish),
        None,
    ));
    chunks.push(chunk(
        &id,
        &model,
        delta(None, None, None),
        None,
        Some(usage),
    ));
    let mut events: Vec<std::result::Result<SseEvent, Infallible>> = chunks
        .iter()
        .map(|c| Ok(SseEvent::default().data(serde_json::to_string(c).unwrap_or_default())))
        .collect();
    events.push(Ok(SseEvent::default().data("[DONE]")));
    Sse::new(futures::stream::iter(events)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn script_validation() {
        let s = Script::from_yaml(
            "steps:\n  - content: hi\n  - tool_calls: [{name: a, arguments: {}}]\n",
        )
        .unwrap();
        assert!(s.native_tools);
        assert_eq!(s.steps.len(), 2);
        let e = Script::from_yaml("steps:\n  - content: hi\n    final: {answer: x}\n").unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        let e = Script::from_yaml("stepz: []").unwrap_err();
        assert!(e.to_string().contains("steps"), "{e}");
    }

    #[test]
    fn last_tool_result_takes_messages_after_the_last_assistant_turn() {
        let body = json!({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "x"},
            {"role": "tool", "content": "A"},
            {"role": "tool", "content": [{"type": "text", "text": "B"}]}
        ]});
        assert_eq!(last_tool_result(&body), "A\nB");
    }
}
