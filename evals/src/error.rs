//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or reporting evals.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario's `expected` block does not have the documented shape.
    #[error(
        "{scenario}: `expected` is invalid at `{field}`: {message} (see BUNDLE.md, `expected`)"
    )]
    Expected {
        /// Scenario name.
        scenario: String,
        /// Dotted field in `expected`, e.g. `never.3.verb`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A scenario has no `expected` block, so it cannot be scored.
    #[error(
        "{scenario}: scenario.yaml has no `expected` block; add one (root_cause, remediation, never) to score it"
    )]
    NoExpected {
        /// Scenario name.
        scenario: String,
    },
    /// A kind named by `expected` is neither built in nor declared by a CRD in the bundle.
    #[error(
        "{scenario}: kind `{kind}` is unknown; add its CustomResourceDefinition to the bundle or the kind to medic-evals' kind table"
    )]
    UnknownKind {
        /// Scenario name.
        scenario: String,
        /// The kind.
        kind: String,
    },
    /// The bundle could not be loaded or served.
    #[error("sandbox: {0}")]
    Sandbox(#[from] medic_sandbox::Error),
    /// The engine factory could not open a session.
    #[error("engine: {0}")]
    Engine(String),
    /// The engine's event stream ended before the scenario was complete.
    #[error("engine: the event stream closed while {while_doing}; the engine stopped or panicked")]
    EngineClosed {
        /// What the runner was waiting for.
        while_doing: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file (report or bar) could not be read or written.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The scenarios folder holds no scenario (or none passed the filter).
    #[error(
        "no scenarios found in {dir} (filter: {filter}); each scenario is a folder with a scenario.yaml"
    )]
    NoScenarios {
        /// Folder searched.
        dir: PathBuf,
        /// The filter in effect, or `none`.
        filter: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
