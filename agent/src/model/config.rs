//! Model configuration: the `model:` section of `medic.yaml` and the usual env vars.
//!
//! ```yaml
//! model:
//!   provider: openai-compatible     # openai | azure | anthropic | gemini | ollama | openai-compatible
//!   model: qwen2.5-coder-1.5b
//!   base_url: http://127.0.0.1:8080/v1
//!   api_key_env: MY_KEY             # or api_key_file: /run/secrets/key
//!   timeout: 60s
//!   max_retries: 3
//!   tool_mode: auto                 # auto | native | json
//! ```
//!
//! Environment: `MEDIC_MODEL` (`provider/model` or just `model`), `MEDIC_MODEL_BASE_URL`,
//! and the providers' usual key variables (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
//! `GEMINI_API_KEY`, `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_ENDPOINT`, `OLLAMA_HOST`).

use crate::error::{AgentError, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

/// Which API family to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// api.openai.com (Chat Completions).
    #[serde(alias = "open-ai")]
    Openai,
    /// Azure OpenAI (deployment = model).
    #[serde(alias = "azure-openai")]
    Azure,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini.
    #[serde(alias = "google")]
    Gemini,
    /// Ollama (its OpenAI-compatible endpoint).
    Ollama,
    /// Any OpenAI-compatible base URL: vLLM, KAITO, llama.cpp server, LiteLLM, …
    #[serde(
        alias = "vllm",
        alias = "kaito",
        alias = "llamacpp",
        alias = "llama-cpp",
        alias = "openai_compatible"
    )]
    OpenaiCompatible,
}

impl Provider {
    /// The name used in messages and `MEDIC_MODEL`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Azure => "azure",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Ollama => "ollama",
            Provider::OpenaiCompatible => "openai-compatible",
        }
    }

    /// Parse a provider name (as in `MEDIC_MODEL=anthropic/claude-…`).
    pub fn parse(name: &str) -> Option<Provider> {
        serde_json::from_value(serde_json::Value::String(name.to_ascii_lowercase())).ok()
    }

    /// The environment variable that usually holds this provider's key.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            Provider::Openai => Some("OPENAI_API_KEY"),
            Provider::Azure => Some("AZURE_OPENAI_API_KEY"),
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::Gemini => Some("GEMINI_API_KEY"),
            Provider::Ollama | Provider::OpenaiCompatible => None,
        }
    }

    /// Whether the endpoint speaks OpenAI's Chat Completions wire.
    pub fn is_openai_wire(self) -> bool {
        matches!(
            self,
            Provider::Openai | Provider::Azure | Provider::Ollama | Provider::OpenaiCompatible
        )
    }
}

/// How tool calls are exchanged with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolMode {
    /// Probe once per endpoint + model and cache the answer.
    #[default]
    Auto,
    /// The API's native `tools` / `tool_calls`.
    Native,
    /// A JSON object constrained by a JSON schema (`response_format: json_schema`), parsed
    /// tolerantly. For small local models without native tool calls.
    Json,
}

impl ToolMode {
    /// `auto`, `native` or `json`.
    pub fn name(self) -> &'static str {
        match self {
            ToolMode::Auto => "auto",
            ToolMode::Native => "native",
            ToolMode::Json => "json",
        }
    }
}

/// The model section of `medic.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// API family.
    pub provider: Provider,
    /// Model name (Azure: the deployment name).
    pub model: String,
    /// Base URL (required for `openai-compatible` and Azure; optional elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Environment variable holding the key (default: the provider's usual one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// File holding the key (wins over `api_key_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Per-attempt timeout (`60s`, `2m`, or seconds as a number).
    #[serde(
        default = "default_timeout",
        serialize_with = "ser_duration",
        deserialize_with = "de_duration"
    )]
    pub timeout: Duration,
    /// Retries on 429 / 5xx / transport errors, with exponential backoff.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// How tool calls are exchanged.
    #[serde(default)]
    pub tool_mode: ToolMode,
    /// Azure `api-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Output token cap per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature (default 0.1: investigations want determinism).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_retries() -> u32 {
    3
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}s", d.as_secs()))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Parse `90`, `90s`, `2m`, `1h`, `500ms`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a duration like `60s` or `2m`, found `{text}`"))?;
    match unit.trim() {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!(
            "unknown duration unit `{other}` in `{text}`; use ms, s, m or h"
        )),
    }
}

impl ModelConfig {
    /// A config with defaults for everything but provider and model.
    pub fn new(provider: Provider, model: impl Into<String>) -> Self {
        ModelConfig {
            provider,
            model: model.into(),
            base_url: None,
            api_key_env: None,
            api_key_file: None,
            timeout: default_timeout(),
            max_retries: default_retries(),
            tool_mode: ToolMode::Auto,
            api_version: None,
            max_tokens: None,
            temperature: None,
        }
    }

    /// An OpenAI-compatible endpoint at `base_url` (vLLM, KAITO, llama.cpp, the scripted
    /// server).
    pub fn openai_compatible(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let mut c = ModelConfig::new(Provider::OpenaiCompatible, model);
        c.base_url = Some(base_url.into());
        c
    }

    /// A config from the environment alone, or `None` when `MEDIC_MODEL` is unset.
    ///
    /// `MEDIC_MODEL=provider/model` picks the provider; a bare model name picks the
    /// provider from `MEDIC_MODEL_BASE_URL` (openai-compatible), `AZURE_OPENAI_ENDPOINT`,
    /// `OLLAMA_HOST`, or whichever of the usual key variables is set.
    pub fn from_env() -> Result<Option<ModelConfig>> {
        let Some(spec) = env_nonempty("MEDIC_MODEL") else {
            return Ok(None);
        };
        let (provider, model) = match spec.split_once('/') {
            Some((p, m)) if Provider::parse(p).is_some() => (
                Provider::parse(p).unwrap_or(Provider::Openai),
                m.to_string(),
            ),
            _ => (infer_provider(), spec.clone()),
        };
        let mut c = ModelConfig::new(provider, model);
        c.apply_env();
        c.validate()?;
        Ok(Some(c))
    }

    /// Overlay `MEDIC_MODEL_BASE_URL`, `AZURE_OPENAI_ENDPOINT` / `OLLAMA_HOST` (when no base
    /// URL is configured) onto this config.
    pub fn apply_env(&mut self) {
        if let Some(url) = env_nonempty("MEDIC_MODEL_BASE_URL") {
            self.base_url = Some(url);
        }
        if self.base_url.is_none() {
            self.base_url = match self.provider {
                Provider::Azure => env_nonempty("AZURE_OPENAI_ENDPOINT"),
                Provider::Ollama => env_nonempty("OLLAMA_HOST"),
                _ => None,
            };
        }
    }

    /// Check the combination is usable.
    pub fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            return Err(AgentError::Config(
                "`model` is empty; set `model:` in medic.yaml or MEDIC_MODEL".into(),
            ));
        }
        match self.provider {
            Provider::OpenaiCompatible if self.base_url.is_none() => Err(AgentError::Config(
                "provider `openai-compatible` needs `base_url` (e.g. http://127.0.0.1:8080/v1) \
                 or MEDIC_MODEL_BASE_URL"
                    .into(),
            )),
            Provider::Azure if self.base_url.is_none() => Err(AgentError::Config(
                "provider `azure` needs `base_url` (https://<resource>.openai.azure.com) or \
                 AZURE_OPENAI_ENDPOINT"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Where the key is read from, for error messages.
    pub fn key_hint(&self) -> String {
        if let Some(f) = &self.api_key_file {
            return format!("the key file {}", f.display());
        }
        match self
            .api_key_env
            .as_deref()
            .or(self.provider.default_key_env())
        {
            Some(var) => format!("the {var} environment variable"),
            None => "the endpoint's key (api_key_env / api_key_file)".into(),
        }
    }

    /// The API key: `api_key_file`, else `api_key_env`, else the provider's usual variable.
    /// `Ok(None)` when the provider needs none and none is configured.
    pub fn api_key(&self) -> Result<Option<String>> {
        if let Some(path) = &self.api_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Some(text.trim().to_string()));
        }
        let var = self
            .api_key_env
            .as_deref()
            .or(self.provider.default_key_env());
        match var {
            Some(var) => match env_nonempty(var) {
                Some(k) => Ok(Some(k)),
                None if self.api_key_env.is_none() && !self.requires_key() => Ok(None),
                None => Err(AgentError::Config(format!(
                    "{} model `{}` needs an API key: set {var} (or api_key_file in medic.yaml)",
                    self.provider.name(),
                    self.model
                ))),
            },
            None => Ok(None),
        }
    }

    fn requires_key(&self) -> bool {
        matches!(
            self.provider,
            Provider::Openai | Provider::Azure | Provider::Anthropic | Provider::Gemini
        )
    }

    /// The base URL requests go to (configured, or the provider's default).
    pub fn effective_base_url(&self) -> String {
        if let Some(u) = &self.base_url {
            return u.trim_end_matches('/').to_string();
        }
        match self.provider {
            Provider::Openai => "https://api.openai.com/v1".into(),
            Provider::Anthropic => "https://api.anthropic.com".into(),
            Provider::Gemini => "https://generativelanguage.googleapis.com".into(),
            Provider::Ollama => "http://localhost:11434".into(),
            Provider::Azure | Provider::OpenaiCompatible => String::new(),
        }
    }

    /// `provider/model`.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.provider.name(), self.model)
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn infer_provider() -> Provider {
    if env_nonempty("MEDIC_MODEL_BASE_URL").is_some() {
        Provider::OpenaiCompatible
    } else if env_nonempty("AZURE_OPENAI_ENDPOINT").is_some() {
        Provider::Azure
    } else if env_nonempty("OPENAI_API_KEY").is_some() {
        Provider::Openai
    } else if env_nonempty("ANTHROPIC_API_KEY").is_some() {
        Provider::Anthropic
    } else if env_nonempty("GEMINI_API_KEY").is_some() {
        Provider::Gemini
    } else if env_nonempty("OLLAMA_HOST").is_some() {
        Provider::Ollama
    } else {
        Provider::Openai
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn yaml_round_trip_and_defaults() {
        let c: ModelConfig = serde_yaml::from_str(
            "provider: vllm\nmodel: qwen\nbase_url: http://127.0.0.1:8000/v1\ntimeout: 2m\ntool_mode: json\n",
        )
        .unwrap();
        assert_eq!(c.provider, Provider::OpenaiCompatible);
        assert_eq!(c.timeout, Duration::from_secs(120));
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.tool_mode, ToolMode::Json);
        c.validate().unwrap();
        let back: ModelConfig = serde_yaml::from_str(&serde_yaml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn bad_config_is_explained() {
        let e = serde_yaml::from_str::<ModelConfig>(
            "provider: openai\nmodel: x\ntimeout: 3 fortnights\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("duration unit"), "{e}");
        let c = ModelConfig::new(Provider::OpenaiCompatible, "m");
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("base_url"), "{e}");
        let e = serde_yaml::from_str::<ModelConfig>("provider: openai\nmodel: x\nmodle: y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("modle"), "{e}");
    }

    #[test]
    fn key_file_wins_and_missing_key_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "sk-test\n").unwrap();
        let mut c = ModelConfig::new(Provider::Anthropic, "claude");
        c.api_key_file = Some(f);
        assert_eq!(c.api_key().unwrap().as_deref(), Some("sk-test"));
        let mut c = ModelConfig::new(Provider::Openai, "gpt");
        c.api_key_env = Some("MEDIC_TEST_SURELY_UNSET_KEY".into());
        let e = c.api_key().unwrap_err().to_string();
        assert!(e.contains("MEDIC_TEST_SURELY_UNSET_KEY"), "{e}");
        let c = ModelConfig::openai_compatible("http://127.0.0.1:1/v1", "m");
        assert_eq!(c.api_key().unwrap(), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("abc").is_err());
    }
}
