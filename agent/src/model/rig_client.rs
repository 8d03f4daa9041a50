//! The production model client: rig-core's provider clients behind [`ModelClient`].
//!
//! One path per API family, all built by rig: OpenAI's Chat Completions wire (`.chat()`, not
//! the Responses API) for OpenAI, Azure OpenAI, Ollama and any OpenAI-compatible base URL;
//! Anthropic's Messages API; Gemini's generateContent. medic's own loop does the turns,
//! budgets and gates; this client does one call with a timeout, retries with exponential
//! backoff on 429 / 5xx / transport errors, and turns 401 / 404 into errors that say what to
//! fix.
//!
//! Structured output: on OpenAI-wire endpoints the `response_format` is sent through rig's
//! `additional_params` with `strict: false`, because rig's typed `output_schema` path forces
//! every property to be required (OpenAI strict mode), which would make optional tool
//! arguments mandatory for small models. Other providers use rig's `output_schema`.

use super::config::{ModelConfig, Provider};
use super::{ChatMessage, ChatRequest, ChatResponse, ModelClient, ModelUsage, ToolCallRequest};
use crate::error::{AgentError, Result};
use futures::StreamExt;
use rig_core::DynModel;
use rig_core::completion::{CompletionRequest, CompletionResponse, ToolDefinition};
use rig_core::error::ProviderError;
use rig_core::message::{
    AssistantContent, AssistantMessage, CallId, Message, ToolName, ToolResultContent, UserContent,
};
use rig_core::operation::Completion;
use rig_core::streaming::{Item, StreamEvent};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;

/// A model reached through rig-core.
#[derive(Clone)]
pub struct RigClient {
    config: ModelConfig,
    model: DynModel<Completion>,
}

impl std::fmt::Debug for RigClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RigClient")
            .field("model", &self.config.describe())
            .field("base_url", &self.config.effective_base_url())
            .finish()
    }
}

impl RigClient {
    /// Build a client from a config (reads the key from its file / env var).
    pub fn new(config: ModelConfig) -> Result<Self> {
        use rig_core::providers::{anthropic, gemini, ollama, openai};
        config.validate()?;
        let key = config.api_key()?;
        let base = config.effective_base_url();
        let model: DynModel<Completion> = match config.provider {
            Provider::Openai | Provider::OpenaiCompatible => {
                // Local servers take any key; send a placeholder so no auth header is empty.
                let cfg = openai::OpenAIConfig::new(key.unwrap_or_else(|| "none".into()))
                    .with_base_url(base);
                cfg.client().chat(config.model.clone()).erase()
            }
            Provider::Azure => {
                let mut cfg =
                    openai::OpenAIConfig::with_key(&openai::wire::AZURE, key.unwrap_or_default())
                        .with_base_url(base);
                if let Some(v) = &config.api_version {
                    cfg = cfg.with_api_version(v.clone());
                }
                cfg.client().chat(config.model.clone()).erase()
            }
            Provider::Ollama => {
                let cfg = ollama::OllamaConfig::new().with_base_url(&base);
                cfg.client().completion(config.model.clone()).erase()
            }
            Provider::Anthropic => {
                let cfg =
                    anthropic::AnthropicConfig::new(key.unwrap_or_default()).with_base_url(&base);
                cfg.client().completion(config.model.clone()).erase()
            }
            Provider::Gemini => {
                let cfg = gemini::GeminiConfig::new(key.unwrap_or_default()).with_base_url(base);
                cfg.client().completion(config.model.clone()).erase()
            }
        };
        Ok(RigClient { config, model })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn to_rig(&self, request: &ChatRequest) -> Result<CompletionRequest> {
        let mut history: Vec<Message> = Vec::with_capacity(request.messages.len());
        for m in &request.messages {
            match m {
                ChatMessage::System { content } => history.push(Message::system(content.clone())),
                ChatMessage::User { content } => history.push(Message::user(content.clone())),
                ChatMessage::Assistant {
                    content,
                    tool_calls,
                } => {
                    let mut blocks = Vec::new();
                    if !content.trim().is_empty() {
                        blocks.push(AssistantContent::text(content.clone()));
                    }
                    for c in tool_calls {
                        blocks.push(AssistantContent::tool_call(
                            c.id.clone(),
                            tool_name(&c.name)?,
                            c.arguments.clone(),
                        ));
                    }
                    if blocks.is_empty() {
                        blocks.push(AssistantContent::text("(no answer)"));
                    }
                    history.push(Message::Assistant(AssistantMessage::new(blocks)));
                }
                ChatMessage::Tool {
                    call_id,
                    name,
                    content,
                } => {
                    let result = UserContent::tool_result(
                        CallId::from_wire(call_id.clone()),
                        tool_name(name)?,
                        vec![ToolResultContent::text(content.clone())],
                    );
                    // Consecutive results answer one assistant turn: keep them in one message.
                    if let Some(Message::User { content }) = history.last_mut()
                        && content
                            .iter()
                            .all(|c| matches!(c, UserContent::ToolResult(_)))
                    {
                        content.push(result);
                    } else {
                        history.push(Message::User {
                            content: vec![result],
                        });
                    }
                }
            }
        }
        let Some(prompt) = history.pop() else {
            return Err(AgentError::Config(
                "a model request needs at least one message".into(),
            ));
        };
        let mut req = CompletionRequest::new(prompt).messages(history);
        if !request.tools.is_empty() {
            let mut defs = Vec::with_capacity(request.tools.len());
            for t in &request.tools {
                defs.push(ToolDefinition::new(
                    tool_name(&t.name)?,
                    t.description.clone(),
                    t.parameters.clone(),
                ));
            }
            req = req.tools(defs);
        }
        if let Some(schema) = &request.response_schema {
            if self.config.provider.is_openai_wire() {
                req = req.additional_params(json!({
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "medic_step", "strict": false, "schema": schema}
                    }
                }));
            } else {
                let schema = schemars::Schema::try_from(schema.clone()).map_err(|e| {
                    AgentError::Config(format!("response schema is not a JSON object: {e}"))
                })?;
                req = req.output_schema(schema);
            }
        }
        let temperature = request
            .temperature
            .or(self.config.temperature)
            .unwrap_or(0.1);
        req = req.temperature(temperature);
        if let Some(max) = request.max_tokens.or(self.config.max_tokens) {
            req = req.max_tokens(max);
        }
        Ok(req)
    }

    async fn attempt(
        &self,
        req: CompletionRequest,
        deltas: Option<&UnboundedSender<String>>,
        sent: &mut bool,
    ) -> std::result::Result<CompletionResponse, ProviderError> {
        match deltas {
            None => self.model.call(req).await,
            Some(tx) => {
                let mut stream = self.model.stream(req)?;
                while let Some(item) = stream.next().await {
                    if let Item::Event(StreamEvent::Text { text, .. }) = item? {
                        *sent = true;
                        let _ = tx.send(text);
                    }
                }
                stream.finish().await
            }
        }
    }

    fn map_error(&self, e: &ProviderError, attempts: u32) -> AgentError {
        let provider = self.config.provider.name().to_string();
        let model = self.config.model.clone();
        let status = e
            .provider_response()
            .and_then(|r| r.status)
            .map(|s| s.as_u16());
        match (e, status) {
            (ProviderError::InvalidAuthentication(_), s) | (_, s @ Some(401 | 403)) => {
                AgentError::Auth {
                    provider,
                    model,
                    status: s.unwrap_or(401),
                    key_hint: self.config.key_hint(),
                }
            }
            (_, Some(404)) => AgentError::UnknownModel {
                provider,
                model,
                base_url: self.config.effective_base_url(),
                body: truncate(e.provider_response_body().unwrap_or_default(), 300),
            },
            _ => AgentError::Provider {
                provider,
                model,
                attempts,
                message: truncate(&e.to_string(), 600),
            },
        }
    }
}

fn tool_name(name: &str) -> Result<ToolName> {
    ToolName::new(name).map_err(|_| AgentError::Config("a tool name is empty".into()))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Backoff before retry `attempt` (1-based): 0.5 s, 1 s, 2 s, … capped at 20 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(20_000))
}

fn from_rig(resp: &CompletionResponse) -> ChatResponse {
    let tool_calls = resp
        .tool_calls()
        .map(|c| ToolCallRequest {
            id: c.id.wire().into_owned(),
            name: c.function.name.as_str().to_string(),
            arguments: Value::Object(c.function.arguments.clone()),
        })
        .collect();
    ChatResponse {
        text: resp.text(),
        tool_calls,
        usage: ModelUsage {
            input_tokens: resp.usage.input_tokens.unwrap_or(0),
            output_tokens: resp.usage.output_tokens.unwrap_or(0),
        },
        cost_usd: resp.usage.cost.as_ref().map(|c| c.total),
    }
}

impl ModelClient for RigClient {
    fn describe(&self) -> String {
        self.config.describe()
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse> {
        let span = tracing::info_span!("model_call", model = %self.config.describe());
        self.complete_with_retries(request, deltas)
            .instrument(span)
            .await
    }
}

impl RigClient {
    async fn complete_with_retries(
        &self,
        request: &ChatRequest,
        deltas: Option<UnboundedSender<String>>,
    ) -> Result<ChatResponse> {
        let timeout = self.config.timeout;
        let max_attempts = self.config.max_retries + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self.to_rig(request)?;
            let mut sent = false;
            let outcome =
                tokio::time::timeout(timeout, self.attempt(req, deltas.as_ref(), &mut sent)).await;
            let retryable = match outcome {
                Ok(Ok(resp)) => return Ok(from_rig(&resp)),
                Ok(Err(e)) => {
                    let err = self.map_error(&e, attempt);
                    // Text already streamed cannot be taken back: a retry would repeat it.
                    let retry = !sent
                        && (e.is_retryable()
                            || matches!(
                                e.provider_response()
                                    .and_then(|r| r.status)
                                    .map(|s| s.as_u16()),
                                Some(429 | 500..=599)
                            ));
                    if !retry || attempt >= max_attempts {
                        return Err(err);
                    }
                    tracing::warn!(attempt, error = %e, "model call failed; retrying");
                    true
                }
                Err(_) => {
                    if attempt >= max_attempts || sent {
                        return Err(AgentError::Timeout {
                            provider: self.config.provider.name().into(),
                            model: self.config.model.clone(),
                            timeout,
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(attempt, ?timeout, "model call timed out; retrying");
                    true
                }
            };
            if retryable {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(3), Duration::from_millis(2000));
        assert_eq!(backoff(30), Duration::from_millis(20_000));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
