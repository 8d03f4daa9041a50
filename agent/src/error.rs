//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in `medic-agent`.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model configuration is incomplete or contradictory.
    #[error("model configuration: {0}")]
    Config(String),
    /// The provider rejected the credentials (HTTP 401/403).
    #[error(
        "{provider} rejected the API key for model `{model}` (HTTP {status}); check {key_hint} \
         and that the key is valid for this endpoint"
    )]
    Auth {
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
        /// HTTP status.
        status: u16,
        /// Where the key comes from (env var or file).
        key_hint: String,
    },
    /// The provider does not know the model or the endpoint path (HTTP 404).
    #[error(
        "{provider} at {base_url} does not serve model `{model}` (HTTP 404: {body}); check the \
         model name (`model:` in medic.yaml or MEDIC_MODEL) and the base URL"
    )]
    UnknownModel {
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
        /// Base URL used.
        base_url: String,
        /// Response body (truncated).
        body: String,
    },
    /// The model call did not finish within the configured timeout, after retries.
    #[error(
        "{provider} model `{model}` did not answer within {timeout:?} ({attempts} attempts); raise `timeout` or check the endpoint"
    )]
    Timeout {
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
        /// Per-attempt timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The provider kept failing (429/5xx/transport) after all retries, or failed permanently.
    #[error("{provider} model `{model}` failed after {attempts} attempt(s): {message}")]
    Provider {
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
        /// Attempts made.
        attempts: u32,
        /// What the provider said.
        message: String,
    },
    /// A model reply could not be understood.
    #[error("model reply could not be parsed: {0}")]
    Parse(String),
    /// A script for the scripted model server is malformed.
    #[error("model script: {0}")]
    Script(String),
    /// A tool failed fatally (not a model-visible error).
    #[error("tool: {0}")]
    Tool(#[from] medic_tools::ToolError),
    /// Reading or writing a local file (probe cache, key file, script) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The session's channels were closed by the client.
    #[error("session closed: {0}")]
    Closed(String),
}

/// Result with [`AgentError`].
pub type Result<T> = std::result::Result<T, AgentError>;
