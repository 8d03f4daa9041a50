//! The crate's one error type. Variants are split into what the model may see (it can fix its
//! arguments or try another object) and what is fatal for the session (configuration, bugs).

/// Everything that can go wrong in a tool call or while building a [`crate::ToolContext`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema or name something that does not exist in a
    /// list the tool knows (clusters, namespaces, kinds). The message says what to change.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The object, namespace, repository or log asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The credentials medic runs with may not read this (RBAC, GitHub 401/403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An upstream service (API server, Prometheus, GitHub) is down, slow, rate limited or
    /// answered with an error; retrying later or using another source may help.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    /// The session is misconfigured (kubeconfig, context, URLs); the model cannot fix this.
    #[error("configuration error: {0}")]
    Config(String),
    /// An internal failure (serialisation, a broken invariant); the call cannot be retried.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ToolError {
    /// Whether the model may see this error and act on it (true) or the session must stop.
    pub fn is_model_visible(&self) -> bool {
        !matches!(self, ToolError::Config(_) | ToolError::Internal(_))
    }

    /// A short machine-readable kind, used in tool results and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidArgs(_) => "invalid_args",
            ToolError::NotFound(_) => "not_found",
            ToolError::Forbidden(_) => "forbidden",
            ToolError::Upstream(_) => "upstream",
            ToolError::Config(_) => "config",
            ToolError::Internal(_) => "internal",
        }
    }
}

/// Result with [`ToolError`].
pub type Result<T> = std::result::Result<T, ToolError>;
