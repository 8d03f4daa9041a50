//! Model clients behind one small trait.
//!
//! - [`ModelClient`]: one chat completion (messages + tool schemas + optional JSON-schema
//!   response format) → text and/or tool calls + usage, optionally streaming text deltas.
//! - [`config`]: [`ModelConfig`] as it appears in `medic.yaml`, plus the usual env vars.
//! - [`rig_client`]: the one production path, rig-core's provider clients (OpenAI's Chat
//!   Completions for every OpenAI-compatible endpoint, Azure, Anthropic, Gemini, Ollama),
//!   with timeouts, retries and clear errors.
//! - [`structured`]: the structured-output tool-calling mode for small models, and the
//!   tolerant parser for tool calls written as JSON in plain text.
//! - [`probe`]: decides native vs structured tool calling once per endpoint + model and
//!   caches the answer on disk.

pub mod config;
pub mod probe;
pub mod rig_client;
pub mod structured;

pub use config::{ModelConfig, Provider, ToolMode};
pub use rig_client::RigClient;

use crate::error::Result;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON schema of its arguments.
    pub parameters: Value,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// The model's id for the call (generated when the model gave none).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments (a JSON object).
    pub arguments: Value,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    /// System instructions.
    System {
        /// Text.
        content: String,
    },
    /// User text (questions, alerts, quoted tool data in structured mode).
    User {
        /// Text.
        content: String,
    },
    /// An assistant turn.
    Assistant {
        /// Text the model wrote (may be empty).
        content: String,
        /// Native tool calls it made.
        #[serde(default)]
        tool_calls: Vec<ToolCallRequest>,
    },
    /// The result of a native tool call.
    Tool {
        /// The call it answers.
        call_id: String,
        /// The tool.
        name: String,
        /// The (quoted) result text.
        content: String,
    },
}

/// A chat completion request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// Tools offered natively (empty in structured mode).
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// A JSON schema the reply must follow (`response_format: json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    /// Output token cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

/// Tokens of one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

/// What the model answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Text (the answer, or JSON in structured mode).
    pub text: String,
    /// Native tool calls.
    pub tool_calls: Vec<ToolCallRequest>,
    /// Tokens used by this call.
    pub usage: ModelUsage,
    /// Cost in USD, when the provider reported one.
    pub cost_usd: Option<f64>,
}

/// A chat model. Implemented by [`RigClient`]; tests and evals point it at the scripted
/// server ([`crate::scripted`]) rather than mocking this trait.
pub trait ModelClient: Send + Sync {
    /// `provider/model`, for events and errors.
    fn describe(&self) -> String;
    /// One completion. With `deltas`, text fragments are sent as they arrive.
    fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> impl std::future::Future<Output = Result<ChatResponse>> + Send;
}

/// An object-safe [`ModelClient`], for sessions that hold "some model".
pub trait DynModelClient: Send + Sync {
    /// See [`ModelClient::describe`].
    fn describe(&self) -> String;
    /// See [`ModelClient::complete`].
    fn complete_boxed<'a>(
        &'a self,
        request: &'a ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> BoxFuture<'a, Result<ChatResponse>>;
}

impl<T: ModelClient> DynModelClient for T {
    fn describe(&self) -> String {
        ModelClient::describe(self)
    }
    fn complete_boxed<'a>(
        &'a self,
        request: &'a ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(self.complete(request, deltas))
    }
}
