//! Choosing native or structured tool calling, once per endpoint + model.
//!
//! Hosted APIs (OpenAI, Azure, Anthropic, Gemini) support native tool calls, so `auto`
//! picks native for them without a request. For Ollama and OpenAI-compatible endpoints,
//! `auto` sends one tiny request offering a single tool and asking for it to be called; a
//! native `tool_calls` answer means native mode, anything else structured (JSON) mode. The
//! verdict is cached in `<data dir>/medic/tool-mode.json`, keyed by a hash of provider, base
//! URL and model, so the probe runs once per endpoint + model.

use super::config::{ModelConfig, ToolMode};
use super::{ChatMessage, ChatRequest, DynModelClient, ToolSpec};
use crate::error::{AgentError, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Name of the tool the probe offers.
pub const PROBE_TOOL: &str = "medic_probe";

/// Default cache file: `<data dir>/medic/tool-mode.json`.
pub fn default_cache_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("medic").join("tool-mode.json"))
}

fn cache_key(config: &ModelConfig) -> String {
    use sha2::{Digest, Sha256};
    let raw = format!(
        "{}|{}|{}",
        config.provider.name(),
        config.effective_base_url(),
        config.model
    );
    hex::encode(&Sha256::digest(raw.as_bytes())[..12])
}

fn read_cache(path: &Path) -> BTreeMap<String, ToolMode> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_cache(path: &Path, cache: &BTreeMap<String, ToolMode>) -> Result<()> {
    let io = |source| AgentError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(cache)
        .map_err(|e| AgentError::Parse(format!("tool-mode cache: {e}")))?;
    // Write then rename so a crash never leaves a half-written cache.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Resolve `config.tool_mode` to `Native` or `Json`, probing at most once per endpoint +
/// model (`cache`: where to remember; `None` disables caching).
pub async fn resolve_tool_mode(
    client: &dyn DynModelClient,
    config: &ModelConfig,
    cache: Option<&Path>,
) -> Result<ToolMode> {
    if config.tool_mode != ToolMode::Auto {
        return Ok(config.tool_mode);
    }
    if !matches!(
        config.provider,
        super::Provider::Ollama | super::Provider::OpenaiCompatible
    ) {
        return Ok(ToolMode::Native);
    }
    let key = cache_key(config);
    if let Some(path) = cache
        && let Some(mode) = read_cache(path).get(&key)
    {
        return Ok(*mode);
    }
    let mode = probe(client).await?;
    if let Some(path) = cache {
        let mut c = read_cache(path);
        c.insert(key, mode);
        if let Err(e) = write_cache(path, &c) {
            tracing::warn!(error = %e, "could not cache the tool-mode probe result");
        }
    }
    Ok(mode)
}

/// Send the probe request and classify the answer.
pub async fn probe(client: &dyn DynModelClient) -> Result<ToolMode> {
    let request = ChatRequest {
        messages: vec![
            ChatMessage::System {
                content: "You are a test harness. Use the tool you are given.".into(),
            },
            ChatMessage::User {
                content: format!("Call the `{PROBE_TOOL}` tool with ok=true."),
            },
        ],
        tools: vec![ToolSpec {
            name: PROBE_TOOL.into(),
            description: "Report that tool calling works.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"]
            }),
        }],
        response_schema: None,
        max_tokens: Some(64),
        temperature: Some(0.0),
    };
    let reply = client.complete_boxed(&request, None).await?;
    Ok(if reply.tool_calls.iter().any(|c| c.name == PROBE_TOOL) {
        ToolMode::Native
    } else {
        ToolMode::Json
    })
}
