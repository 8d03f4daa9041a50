//! Plan-facing types: what a playbook's plan must expose to be approved.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How disruptive a plan is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Harmless or trivially undone (e.g. a rollout restart of a replicated service).
    Low,
    /// Affects capacity but not availability.
    Medium,
    /// May affect availability (evictions, rollbacks).
    High,
    /// Moves traffic or touches many workloads (failover).
    Critical,
}

impl Risk {
    /// All levels, lowest first.
    pub const ALL: [Risk; 4] = [Risk::Low, Risk::Medium, Risk::High, Risk::Critical];

    /// The lowercase name used in YAML and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Risk {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Risk::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::Invalid {
                what: "risk",
                message: format!("expected one of low, medium, high, critical; found {s:?}"),
            })
    }
}

/// One API operation of a plan, as a SubjectAccessReview checks it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessCheck {
    /// Kubernetes verb: get, list, create, patch, update, delete, ...
    pub verb: String,
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// Resource (plural), e.g. `pods`, `deployments`.
    pub resource: String,
    /// Subresource, e.g. `eviction`, `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// Namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name; `None` for collection operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The cluster the operation runs on, when it is not the plan's own
    /// ([`PlanSummary::cluster`]): a failover scales a standby in one cluster and shifts
    /// traffic in another, and each SubjectAccessReview must go to the cluster whose RBAC
    /// will authorize the call. `None` means the plan's cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl AccessCheck {
    /// The cluster this operation runs on: its own, else the plan's `default`.
    pub fn cluster_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.cluster.as_deref().unwrap_or(default)
    }
}

impl fmt::Display for AccessCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = &self.subresource {
            write!(f, "/{sub}")?;
        }
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}")?,
            None => f.write_str(" (cluster-scoped)")?,
        }
        if let Some(c) = &self.cluster {
            write!(f, " on cluster {c}")?;
        }
        Ok(())
    }
}

/// SHA-256 (lowercase hex) of a plan's canonical JSON. Approvals are bound to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlanHash(String);

impl PlanHash {
    /// Hash of `value`'s canonical JSON (see [`canonical_json`]).
    pub fn of(value: &impl Serialize) -> Result<PlanHash> {
        let canonical = canonical_json(value)?;
        Ok(PlanHash(hex::encode(Sha256::digest(canonical.as_bytes()))))
    }

    /// Parses a 64-character lowercase hex string.
    pub fn from_hex(s: &str) -> Result<PlanHash> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(PlanHash(s.to_owned()))
        } else {
            Err(Error::Invalid {
                what: "plan hash",
                message: format!("expected 64 lowercase hex characters, found {s:?}"),
            })
        }
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for PlanHash {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        PlanHash::from_hex(&s)
    }
}

impl From<PlanHash> for String {
    fn from(h: PlanHash) -> String {
        h.0
    }
}

impl fmt::Display for PlanHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// JSON with object keys sorted recursively and no insignificant whitespace.
///
/// Two values that serialize to equal JSON documents give the same string whatever the
/// field order of their Rust types, so hashes over it are stable.
pub fn canonical_json(value: &impl Serialize) -> Result<String> {
    let v = serde_json::to_value(value).map_err(|e| Error::json("value for canonical JSON", e))?;
    let sorted = sort_keys(v);
    serde_json::to_string(&sorted).map_err(|e| Error::json("canonical JSON", e))
}

pub(crate) fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// What the approval workflow needs to know about a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// The plan's id (stable across re-renders of the same proposal).
    pub plan_id: String,
    /// [`PlanHash`] of the plan. The book always recomputes it from the plan itself and
    /// overwrites whatever [`Approvable::summary`] put here.
    pub hash: PlanHash,
    /// Playbook name as policies use it (`gpu-rebalance`, `rollback`, ...).
    pub playbook: String,
    /// The cluster the plan acts on.
    pub cluster: String,
    /// Namespaces the plan touches (empty when it only touches cluster-scoped objects).
    pub namespaces: Vec<String>,
    /// Risk level.
    pub risk: Risk,
    /// Every API operation of the plan, in order, as SubjectAccessReviews check them.
    pub access: Vec<AccessCheck>,
    /// One-line human title.
    pub title: String,
}

impl PlanSummary {
    /// Every cluster the plan acts on: its own first, then those its operations name, each
    /// once. Policies look at all of them: a role must cover each, a freeze on any blocks.
    pub fn clusters(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![self.cluster.as_str()];
        for c in self.access.iter().filter_map(|a| a.cluster.as_deref()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// True when some operation of the plan is on a cluster-scoped object.
    pub fn touches_cluster_scope(&self) -> bool {
        self.access.iter().any(|a| a.namespace.is_none())
    }
}

/// A plan that can be approved. Implemented by the playbooks' `Plan`.
///
/// The plan's serialization is what gets hashed and stored in the audit log; it must
/// round-trip through JSON unchanged (so the book can hand the very same plan back in
/// [`crate::Approved`]).
pub trait Approvable: Serialize {
    /// The facts the policy and the access reviews look at.
    fn summary(&self) -> PlanSummary;
}

/// A plan as recorded in the audit log: its summary plus the plan's JSON.
///
/// Lets a caller that does not know the concrete plan type (the CLI) decide on any
/// approval. Its serialization is the recorded plan JSON, so its hash is the plan's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedPlan {
    /// The summary recorded with the request.
    pub summary: PlanSummary,
    /// The plan's JSON.
    pub plan: Value,
}

impl Serialize for RecordedPlan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.plan.serialize(s)
    }
}

impl Approvable for RecordedPlan {
    fn summary(&self) -> PlanSummary {
        self.summary.clone()
    }
}

/// Turns a recorded plan back into a typed plan (used by the book).
pub trait FromRecorded: Approvable + Sized {
    /// Builds the plan from its recorded summary and JSON.
    fn from_recorded(summary: &PlanSummary, plan: Value) -> serde_json::Result<Self>;
}

impl<T: Approvable + serde::de::DeserializeOwned> FromRecorded for T {
    fn from_recorded(_summary: &PlanSummary, plan: Value) -> serde_json::Result<Self> {
        serde_json::from_value(plan)
    }
}

impl FromRecorded for RecordedPlan {
    fn from_recorded(summary: &PlanSummary, plan: Value) -> serde_json::Result<Self> {
        Ok(RecordedPlan {
            summary: summary.clone(),
            plan,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": null}});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":{"c":null,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn plan_hash_ignores_key_order_and_sees_one_byte() {
        let a = PlanHash::of(&json!({"x": 1, "y": "abc"})).unwrap();
        let b = PlanHash::of(&json!({"y": "abc", "x": 1})).unwrap();
        let c = PlanHash::of(&json!({"y": "abd", "x": 1})).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
        assert!(PlanHash::from_hex("xyz").is_err());
    }

    #[test]
    fn risk_is_ordered_and_lowercase() {
        assert!(Risk::Low < Risk::Medium && Risk::High < Risk::Critical);
        assert_eq!(serde_json::to_string(&Risk::High).unwrap(), "\"high\"");
        assert_eq!("critical".parse::<Risk>().unwrap(), Risk::Critical);
        assert!("severe".parse::<Risk>().is_err());
    }
}
