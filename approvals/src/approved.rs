//! [`Approved`]: the proof of approval the executor demands, and decision outcomes.

use serde::Serialize;

use crate::identity::KubeIdentity;
use crate::plan::PlanHash;
use crate::refusal::Refusal;
use crate::state::{ApprovalRequest, Grant, Status};

/// A decision someone makes on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve the exact plan whose hash the decider saw.
    Approve,
    /// Deny (or, by the requester, withdraw; or revoke an approval not yet executing).
    Deny {
        /// Why; recorded and shown.
        reason: String,
    },
}

/// A plan together with the approvals that let it run.
///
/// Only this crate can construct one (private fields, no `Deserialize`, no public
/// constructor), so holding an `Approved<P>` proves the book checked everything at
/// approval time. The executor must still call [`crate::ApprovalBook::recheck`] right
/// before executing.
///
/// Impersonation rule: execution impersonates the approver whose approval completed the
/// request (the final approval); for an automatic approval, the policy's `run_as` identity.
#[derive(Debug, Clone, Serialize)]
pub struct Approved<P> {
    pub(crate) plan: P,
    pub(crate) request: ApprovalRequest,
    pub(crate) grants: Vec<Grant>,
    pub(crate) impersonate: KubeIdentity,
    pub(crate) audit_seq: u64,
}

impl<P> Approved<P> {
    /// The approved plan.
    pub fn plan(&self) -> &P {
        &self.plan
    }

    /// The request it was approved under.
    pub fn request(&self) -> &ApprovalRequest {
        &self.request
    }

    /// The approval request id (put it on every execution record as `approval_id`).
    pub fn approval_id(&self) -> &str {
        &self.request.id
    }

    /// The plan hash the approvals name.
    pub fn plan_hash(&self) -> &PlanHash {
        &self.request.plan_hash
    }

    /// Who approved: identity, Kubernetes user/groups, when, and the decision's seq.
    pub fn approvers(&self) -> &[Grant] {
        &self.grants
    }

    /// The Kubernetes user and groups to impersonate (`Impersonate-User` / `-Group`).
    pub fn impersonate(&self) -> &KubeIdentity {
        &self.impersonate
    }

    /// Seq of the audit record of the decision that completed the approval.
    pub fn audit_seq(&self) -> u64 {
        self.audit_seq
    }

    /// The runbook, when the plan was approved automatically.
    pub fn automatic(&self) -> Option<&str> {
        self.grants.iter().find_map(|g| g.automatic.as_deref())
    }
}

/// What a decision led to. Every outcome is in the audit log before it is returned.
#[derive(Debug, Clone)]
pub enum Outcome<P> {
    /// The request is approved; here is the proof.
    Approved(Box<Approved<P>>),
    /// Counted, but more approvals are needed.
    Pending {
        /// The request.
        approval_id: String,
        /// Approvals counted toward the least-satisfied requirement.
        have: u32,
        /// Approvals that requirement needs.
        need: u32,
        /// Roles that still need to approve.
        missing_roles: Vec<String>,
    },
    /// Denied; nothing will run.
    Denied {
        /// The request.
        approval_id: String,
        /// Identity who denied.
        by: String,
        /// Their reason.
        reason: String,
    },
    /// The decision was refused and changed nothing.
    Refused {
        /// The request.
        approval_id: String,
        /// Why.
        reason: Refusal,
    },
    /// The request was already decided.
    AlreadyDecided {
        /// The request.
        approval_id: String,
        /// Its status.
        status: Status,
    },
}

impl<P> Outcome<P> {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Approved(a) => format!(
                "approved {} (plan {}); execution will run as {}",
                a.approval_id(),
                a.plan_hash().short(),
                a.impersonate().user
            ),
            Outcome::Pending {
                approval_id,
                have,
                need,
                missing_roles,
            } => format!(
                "approval recorded for {approval_id}: {have} of {need} approvals; still needed from: {}",
                missing_roles.join(", ")
            ),
            Outcome::Denied {
                approval_id,
                by,
                reason,
            } => format!("{approval_id} denied by {by}: {reason}"),
            Outcome::Refused {
                approval_id,
                reason,
            } => format!("refused for {approval_id}: {reason}"),
            Outcome::AlreadyDecided {
                approval_id,
                status,
            } => format!("{approval_id} was already decided: {status}"),
        }
    }
}
