//! The audit record, its kinds, and how its hash is computed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::plan::canonical_json;

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. Serialized as a snake_case string; unknown strings read as [`RecordKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A proposal (findings → plan) was made.
    ProposalMade,
    /// An approval was requested for a plan.
    ApprovalRequested,
    /// Someone (or a runbook, automatically) approved or denied.
    Decision,
    /// SubjectAccessReview results for an approver.
    AccessReview,
    /// A decision or re-check was refused, and why.
    Refusal,
    /// The executor is about to apply a step (written before it does).
    ExecutionIntent,
    /// A step was applied (API response and its audit id).
    StepApplied,
    /// A post-check result.
    PostCheck,
    /// An undo step.
    Undo,
    /// A dedup key was set (Slack retry id, alert fingerprint).
    Dedup,
    /// Anything else, named freely.
    Other(String),
}

impl RecordKind {
    /// The serialized name.
    pub fn as_str(&self) -> &str {
        match self {
            RecordKind::ProposalMade => "proposal_made",
            RecordKind::ApprovalRequested => "approval_requested",
            RecordKind::Decision => "decision",
            RecordKind::AccessReview => "access_review",
            RecordKind::Refusal => "refusal",
            RecordKind::ExecutionIntent => "execution_intent",
            RecordKind::StepApplied => "step_applied",
            RecordKind::PostCheck => "post_check",
            RecordKind::Undo => "undo",
            RecordKind::Dedup => "dedup",
            RecordKind::Other(s) => s,
        }
    }

    /// Reads a name; anything unknown is [`RecordKind::Other`].
    pub fn parse(s: &str) -> RecordKind {
        match s {
            "proposal_made" => RecordKind::ProposalMade,
            "approval_requested" => RecordKind::ApprovalRequested,
            "decision" => RecordKind::Decision,
            "access_review" => RecordKind::AccessReview,
            "refusal" => RecordKind::Refusal,
            "execution_intent" => RecordKind::ExecutionIntent,
            "step_applied" => RecordKind::StepApplied,
            "post_check" => RecordKind::PostCheck,
            "undo" => RecordKind::Undo,
            "dedup" => RecordKind::Dedup,
            other => RecordKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(RecordKind::parse(&String::deserialize(d)?))
    }
}

/// One line of the audit log.
///
/// `hash = sha256(prev_hash || canonical_json(record without "hash"))`, hex, where
/// `prev_hash` is the previous record's hash ([`GENESIS_HASH`] for the first) as hex text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When it happened (the caller's clock; the sandbox's in replays).
    pub at: DateTime<Utc>,
    /// Who did it (an actor string such as `slack:U01ALICE`, `medic`, `runbook:x`).
    pub actor: String,
    /// What happened.
    pub kind: RecordKind,
    /// Correlation: the proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_id: Option<String>,
    /// Correlation: the plan hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// Correlation: the approval request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Correlation: the tracing span / investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Kind-specific details.
    pub payload: Value,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// A record before the log gives it a seq and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDraft {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub kind: RecordKind,
    /// Details.
    pub payload: Value,
    /// Correlation: proposal.
    pub proposal_id: Option<String>,
    /// Correlation: plan hash.
    pub plan_hash: Option<String>,
    /// Correlation: approval.
    pub approval_id: Option<String>,
    /// Correlation: trace.
    pub trace_id: Option<String>,
}

impl RecordDraft {
    /// A draft without correlation ids.
    pub fn new(
        at: DateTime<Utc>,
        actor: impl fmt::Display,
        kind: RecordKind,
        payload: Value,
    ) -> Self {
        RecordDraft {
            at,
            actor: actor.to_string(),
            kind,
            payload,
            proposal_id: None,
            plan_hash: None,
            approval_id: None,
            trace_id: None,
        }
    }

    /// Sets the proposal id.
    pub fn proposal(mut self, id: impl Into<String>) -> Self {
        self.proposal_id = Some(id.into());
        self
    }

    /// Sets the plan hash.
    pub fn plan_hash(mut self, hash: impl Into<String>) -> Self {
        self.plan_hash = Some(hash.into());
        self
    }

    /// Sets the approval id.
    pub fn approval(mut self, id: impl Into<String>) -> Self {
        self.approval_id = Some(id.into());
        self
    }

    /// Sets the trace id.
    pub fn trace(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }

    /// Gives the draft its place in the chain. Returns the record and its log line
    /// (without the newline). The payload must already have sorted keys (the log sorts it
    /// on the caller's thread, see `AuditLog::append`), so serializing the fields in
    /// alphabetical order yields the canonical JSON directly — one pass, no tree copies.
    pub(crate) fn seal(self, seq: u64, prev_hash: &str) -> Result<(AuditRecord, Vec<u8>)> {
        let canonical = serde_json::to_vec(&CanonicalRecord {
            actor: &self.actor,
            approval_id: self.approval_id.as_deref(),
            at: &self.at,
            kind: &self.kind,
            payload: &self.payload,
            plan_hash: self.plan_hash.as_deref(),
            prev_hash,
            proposal_id: self.proposal_id.as_deref(),
            seq,
            trace_id: self.trace_id.as_deref(),
        })
        .map_err(|e| Error::json("audit record", e))?;
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(&canonical);
        let hash = hex::encode(h.finalize());
        // The line is the canonical record with the hash appended as its last key.
        let mut line = canonical;
        line.pop();
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\"}");
        let rec = AuditRecord {
            seq,
            at: self.at,
            actor: self.actor,
            kind: self.kind,
            proposal_id: self.proposal_id,
            plan_hash: self.plan_hash,
            approval_id: self.approval_id,
            trace_id: self.trace_id,
            payload: self.payload,
            prev_hash: prev_hash.to_owned(),
            hash,
        };
        Ok((rec, line))
    }
}

/// A record's fields in alphabetical order, as canonical JSON wants them.
#[derive(Serialize)]
struct CanonicalRecord<'a> {
    actor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<&'a str>,
    at: &'a DateTime<Utc>,
    kind: &'a RecordKind,
    payload: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_hash: Option<&'a str>,
    prev_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    proposal_id: Option<&'a str>,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

/// The hash a record (as JSON, with or without its `hash` key) should carry.
pub(crate) fn hash_of(prev_hash: &str, mut record: Value) -> Result<String> {
    if let Value::Object(map) = &mut record {
        map.shift_remove("hash");
    }
    let canonical = canonical_json(&record)?;
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn fast_canonical_form_matches_the_generic_one() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 23, 12, 0, 0).unwrap();
        let payload =
            crate::plan::sort_keys(json!({"z": 1, "a": {"y": [ {"b": 2, "a": 1} ], "x": "é\"q"}}));
        for draft in [
            RecordDraft::new(at, "alice", RecordKind::Decision, payload.clone()),
            RecordDraft::new(
                at,
                "slack:U1",
                RecordKind::Other("x".into()),
                payload.clone(),
            )
            .approval("a1")
            .proposal("p1")
            .plan_hash("h")
            .trace("t"),
        ] {
            let (rec, line) = draft.seal(7, GENESIS_HASH).unwrap();
            let generic = hash_of(GENESIS_HASH, serde_json::to_value(&rec).unwrap()).unwrap();
            assert_eq!(rec.hash, generic);
            let parsed: AuditRecord = serde_json::from_slice(&line).unwrap();
            assert_eq!(parsed, rec);
        }
    }
}
