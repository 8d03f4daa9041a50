//! The engine's error type.

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No approval request has this id.
    #[error("no approval request `{0}`; `medic approvals list` shows the pending ones")]
    UnknownApproval(String),
    /// The approval workflow or audit log failed.
    #[error(transparent)]
    Approvals(#[from] medic_approvals::Error),
    /// Planning or execution failed.
    #[error(transparent)]
    Playbooks(#[from] medic_playbooks::Error),
    /// A value could not be converted to JSON.
    #[error("cannot serialise: {0}")]
    Json(#[source] serde_json::Error),
}

/// Results of the engine.
pub type Result<T> = std::result::Result<T, Error>;
