//! Why an approval (or an execution re-check) was refused.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::AccessCheck;

/// A refused decision: the actor may not approve this plan, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The approver requested the plan.
    SelfApproval {
        /// Identity name.
        identity: String,
    },
    /// medic's own identity tried to approve.
    AgentCannotApprove {
        /// Identity name.
        identity: String,
    },
    /// The actor maps to no identity; they may read but never approve.
    Unmapped {
        /// The actor as given.
        actor: String,
    },
    /// No role of the approver may approve this plan.
    RoleNotAllowed {
        /// Identity name.
        identity: String,
        /// Why each held role does not cover the plan.
        why: String,
    },
    /// A SubjectAccessReview as the approver denied one step of the plan.
    AccessDenied {
        /// Identity name.
        identity: String,
        /// Kubernetes user reviewed.
        kube_user: String,
        /// The cluster whose API server answered (the step's own cluster).
        #[serde(default)]
        cluster: String,
        /// 1-based step (index into the plan's access checks).
        step: usize,
        /// The operation denied.
        check: Box<AccessCheck>,
        /// The API server's reason, if any.
        reason: String,
    },
    /// The request expired.
    Expired {
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// A change freeze is active for the plan's scope.
    Frozen {
        /// Freeze name.
        freeze: String,
        /// The freeze's reason.
        reason: String,
        /// When it ends.
        until: DateTime<Utc>,
    },
    /// The plan's hash differs from what was approved or shown.
    PlanChanged {
        /// The hash on record.
        expected: String,
        /// The hash seen or computed.
        found: String,
    },
    /// At re-check: the request is no longer approved (e.g. a later deny revoked it).
    NotApproved {
        /// Its status now.
        status: String,
    },
    /// No auto-approval rule lets this runbook run this plan.
    NoAutoRule {
        /// The runbook.
        runbook: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::SelfApproval { identity } => write!(
                f,
                "{identity} requested this plan and cannot approve it; ask someone else in an eligible role"
            ),
            Refusal::AgentCannotApprove { identity } => {
                write!(
                    f,
                    "{identity} is medic's own identity, which can never approve"
                )
            }
            Refusal::Unmapped { actor } => write!(
                f,
                "{actor} is not mapped to a Kubernetes identity; unmapped users can read but never approve (add them to the identity map)"
            ),
            Refusal::RoleNotAllowed { identity, why } => {
                write!(f, "{identity} may not approve this plan: {why}")
            }
            Refusal::AccessDenied {
                identity,
                kube_user,
                cluster,
                step,
                check,
                reason,
            } => {
                write!(
                    f,
                    "SubjectAccessReview on cluster {cluster} denied step {step} for {identity} (as {kube_user}): {check}"
                )?;
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
            Refusal::Expired { expires_at } => write!(
                f,
                "the request expired at {expires_at}; ask for a new proposal"
            ),
            Refusal::Frozen {
                freeze,
                reason,
                until,
            } => write!(
                f,
                "change freeze {freeze} is active until {until}: {reason}"
            ),
            Refusal::PlanChanged { expected, found } => write!(
                f,
                "the plan changed since it was shown; re-review (expected plan hash {expected}, found {found})"
            ),
            Refusal::NotApproved { status } => {
                write!(f, "the request is {status}, not approved")
            }
            Refusal::NoAutoRule { runbook } => write!(
                f,
                "no auto_approve rule in the policy lets runbook {runbook} run this plan without a human"
            ),
        }
    }
}
