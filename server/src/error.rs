//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `medic-server`.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The server configuration is unusable.
    #[error("invalid server configuration: {0}; fix the `server` section of medic.yaml")]
    Config(String),
    /// A secret could not be read from its environment variable or file.
    #[error("cannot read secret {name} from {from}: {reason}; set the variable or fix the file")]
    Secret {
        /// Which secret (`slack.signing_secret`, …).
        name: &'static str,
        /// The variable or file it was expected in.
        from: String,
        /// What went wrong.
        reason: String,
    },
    /// A file (runbooks, identities, checkpoint) could not be read or written.
    #[error("cannot use {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The runbook folder did not load.
    #[error("runbooks did not load: {0}")]
    Runbooks(String),
    /// The identity map did not load.
    #[error("identities did not load: {0}")]
    Identities(String),
    /// The listener could not be bound or served.
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    /// A call to a chat platform's API failed.
    #[error("{platform} API call {method} failed: {reason}")]
    Chat {
        /// `slack` or `teams`.
        platform: &'static str,
        /// The API method or URL path.
        method: String,
        /// What the platform answered (or the transport error).
        reason: String,
    },
    /// The engine could not start a session or take a decision.
    #[error("engine: {0}")]
    Engine(String),
    /// Bot Framework keys could not be fetched.
    #[error("cannot fetch Bot Framework signing keys from {url}: {reason}")]
    OpenId {
        /// The URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result with [`ServerError`].
pub type Result<T> = std::result::Result<T, ServerError>;
