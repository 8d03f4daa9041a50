//! Evidence references: what a finding cites so people can check it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A pointer to one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    /// Cluster (kubeconfig context) name.
    pub cluster: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Namespace for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// Object uid when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl ObjectRef {
    /// `kind/namespace/name` (or `kind/name`) for display.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// One piece of evidence a tool result carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EvidenceRef {
    /// A Kubernetes object.
    Object(ObjectRef),
    /// A metric series (or query) over a window.
    Series {
        /// Cluster whose Prometheus answered.
        cluster: String,
        /// The selector or PromQL expression.
        query: String,
        /// Window start (RFC 3339).
        start: String,
        /// Window end (RFC 3339).
        end: String,
    },
    /// A range of lines in a container log.
    LogLines {
        /// Cluster name.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// Container name.
        container: String,
        /// Whether the log is the previous (terminated) instance.
        previous: bool,
        /// First line (1-based, within the fetched log).
        first_line: u64,
        /// Last line (inclusive).
        last_line: u64,
    },
    /// A GitHub object (commit, pull request, release, deployment, comparison).
    GitHub {
        /// `owner/repo`.
        repo: String,
        /// `commit`, `pull`, `release`, `deployment` or `compare`.
        item: String,
        /// Sha, number, tag or `base...head`.
        id: String,
    },
    /// A runbook from the library.
    Runbook {
        /// Runbook name.
        name: String,
    },
}
