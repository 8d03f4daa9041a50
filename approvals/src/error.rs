//! The crate's one error type.

use std::path::PathBuf;

use crate::refusal::Refusal;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// One problem found in a policy or identity file: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted path of the offending key, e.g. `roles[1].max_risk`.
    pub key: String,
    /// 1-based line in the file, when it could be located.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {p}"))
        .collect::<String>()
}

/// Everything that can go wrong in medic-approvals.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The approval policy is invalid; every problem found is listed.
    #[error("invalid approval policy {file} ({} problem(s)); fix them and restart:{}", problems.len(), list(problems))]
    Policy {
        /// The file (or source name) that was parsed.
        file: String,
        /// All problems found, in file order.
        problems: Vec<ConfigProblem>,
    },
    /// The identity configuration is invalid; every problem found is listed.
    #[error("invalid identity configuration ({} problem(s)):{}", problems.len(), list(problems))]
    Identity {
        /// All problems found.
        problems: Vec<ConfigProblem>,
    },
    /// An I/O operation on a file failed.
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "append to", ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record in the middle of the audit log is corrupt; the log is not trusted.
    #[error("audit log {} is corrupt at line {line}: {problem}; run `medic audit verify` and restore the log from a copy", path.display())]
    AuditCorrupt {
        /// The log file.
        path: PathBuf,
        /// 1-based line of the first bad record.
        line: u64,
        /// Expected vs found.
        problem: String,
    },
    /// The audit writer task stopped, so nothing can be appended any more.
    #[error("the audit log writer has stopped; reopen the log")]
    AuditClosed,
    /// Another process held a lock for longer than the timeout.
    #[error("timed out after {seconds}s waiting for the lock on {}; another medic process holds it", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        seconds: u64,
    },
    /// The sled views failed.
    #[error(
        "approval views (sled) failed: {0}; delete the views directory, it is rebuilt from the audit log"
    )]
    Views(#[from] sled::Error),
    /// A value could not be encoded or decoded as JSON.
    #[error("could not encode or decode {what} as JSON: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// No approval request has this id.
    #[error("no approval request with id {id}; run `medic approvals list` to see pending ones")]
    UnknownApproval {
        /// The id asked for.
        id: String,
    },
    /// The plan stored with a request cannot be read as the plan type asked for.
    #[error("the plan of approval {id} cannot be read as the requested plan type: {source}")]
    PlanType {
        /// The approval id.
        id: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A re-check right before execution refused the approval.
    #[error("approval {approval_id} no longer holds: {refusal}")]
    Refused {
        /// The approval id.
        approval_id: String,
        /// Why it was refused.
        refusal: Box<Refusal>,
    },
    /// The access reviewer has no client for this cluster.
    #[error(
        "no Kubernetes client configured for cluster {cluster:?}; add it to the access reviewer"
    )]
    UnknownCluster {
        /// The cluster named by the plan.
        cluster: String,
    },
    /// A SubjectAccessReview call failed or timed out (not a denial: the call itself failed).
    #[error("SubjectAccessReview on cluster {cluster} failed: {message}")]
    AccessReview {
        /// The cluster.
        cluster: String,
        /// What went wrong.
        message: String,
    },
    /// A value given by the caller is not acceptable.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Expected vs found.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}
