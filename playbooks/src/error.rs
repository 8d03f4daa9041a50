//! The crate's one error type.

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while planning or executing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The parameters given to a playbook do not fit it.
    #[error("invalid parameters for playbook {playbook}: {message}")]
    Params {
        /// Playbook name.
        playbook: String,
        /// What was expected and what was found.
        message: String,
    },
    /// No playbook has this name.
    #[error("no playbook named {name:?}; known playbooks: {known}")]
    UnknownPlaybook {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// The plan's cluster is not among the configured clusters.
    #[error(
        "no cluster named {cluster:?} is configured (known: {known}); add its context to the kubeconfig"
    )]
    UnknownCluster {
        /// The cluster asked for.
        cluster: String,
        /// Comma-separated list of known clusters.
        known: String,
    },
    /// A live-state precondition of the playbook does not hold, so no plan is made.
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// The plan would break a placement policy (e.g. data residency) and is refused.
    #[error("refused by placement policy: {0}")]
    Policy(String),
    /// A Kubernetes API object the playbook needs does not exist.
    #[error("{kind} {name} not found in cluster {cluster}; check the name and namespace")]
    NotFound {
        /// Cluster.
        cluster: String,
        /// Kind.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
    },
    /// A Kubernetes API call failed (transport, TLS, timeout).
    #[error("Kubernetes API call to cluster {cluster} failed: {message}")]
    Kube {
        /// Cluster.
        cluster: String,
        /// What happened.
        message: String,
    },
    /// The API server answered with an unexpected error status.
    #[error("Kubernetes API {method} {path} on {cluster} answered {status}: {message}")]
    Api {
        /// Cluster.
        cluster: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The Status message.
        message: String,
    },
    /// The kubeconfig could not be read or a client could not be built from it.
    #[error("kubeconfig problem: {0}; check the file and the context names")]
    Kubeconfig(String),
    /// A GitHub API call failed.
    #[error("GitHub API call failed while {doing}: {message}")]
    GitHub {
        /// What was being done.
        doing: String,
        /// The error.
        message: String,
    },
    /// The approvals crate (audit log, re-check) failed.
    #[error(transparent)]
    Approvals(#[from] medic_approvals::Error),
    /// A local file the executor needs (its per-plan execution lock) could not be used.
    #[error("could not {op} {}: {source}; check the data directory's permissions and free space", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be encoded or decoded.
    #[error("could not encode or decode {what}: {source}")]
    Json {
        /// What.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn params(playbook: &str, message: impl Into<String>) -> Self {
        Error::Params {
            playbook: playbook.to_owned(),
            message: message.into(),
        }
    }
}
