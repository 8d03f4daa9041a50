//! Approval state as the views hold it, and the pure rules that move it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identity::KubeIdentity;
use crate::plan::{PlanHash, PlanSummary};
use crate::policy::Need;

/// A request for approval of one exact plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Request id (a UUID).
    pub id: String,
    /// The hash every approval must name.
    pub plan_hash: PlanHash,
    /// What is being approved.
    pub summary: PlanSummary,
    /// Who asked (actor string).
    pub requester: String,
    /// The requester's identity name, when mapped.
    pub requester_identity: Option<String>,
    /// When it was requested.
    pub created: DateTime<Utc>,
    /// After this nobody may approve or execute it.
    pub expires_at: DateTime<Utc>,
    /// Approvals needed (every one must be met).
    pub required: Vec<Need>,
    /// Roles that may approve it.
    pub eligible_roles: Vec<String>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals; may be executed (after a re-check).
    Approved,
    /// Denied (or withdrawn, or revoked before execution).
    Denied,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
        })
    }
}

/// One counted approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Actor string as the front end gave it (or `runbook:<name>`).
    pub actor: String,
    /// Identity name (for automatic approvals, the `run_as` identity).
    pub identity: String,
    /// Kubernetes identity reviewed and to impersonate.
    pub kube: KubeIdentity,
    /// Roles that made the approver eligible.
    pub roles: Vec<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Seq of the decision record.
    pub seq: u64,
    /// The runbook, for an automatic approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
}

/// A deny.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// Actor string.
    pub actor: String,
    /// Identity name.
    pub identity: String,
    /// The reason given.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Seq of the decision record.
    pub seq: u64,
}

/// A request and everything decided about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalState {
    /// The request.
    pub request: ApprovalRequest,
    /// Where it stands.
    pub status: Status,
    /// Counted approvals, one per identity, in order.
    pub grants: Vec<Grant>,
    /// The deny, if denied.
    pub denial: Option<Denial>,
    /// Seq of the decision that completed the approval.
    pub approved_seq: Option<u64>,
    /// True once the executor wrote an execution intent for it.
    pub executing: bool,
    /// How its execution ended (`executed`, `refused`, `failed`, `undone`), from the
    /// executor's `execution_finished` record; `None` until then. Every process reading
    /// the same log sees it, not only the one that executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

/// How far a request is from approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Distinct approvals counted toward the least-satisfied requirement.
    pub have: u32,
    /// Approvals that requirement needs.
    pub need: u32,
    /// Roles that still need to approve (union over unmet requirements).
    pub missing_roles: Vec<String>,
    /// Every requirement met.
    pub complete: bool,
}

/// The payload of a `decision` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DecisionPayload {
    pub decision: DecisionKind,
    pub identity: String,
    pub kube: KubeIdentity,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<String>,
    /// The status after this decision (informational; views recompute it).
    pub outcome: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DecisionKind {
    Approve,
    Deny,
}

impl ApprovalState {
    /// A fresh pending state.
    pub(crate) fn new(request: ApprovalRequest) -> Self {
        ApprovalState {
            request,
            status: Status::Pending,
            grants: Vec::new(),
            denial: None,
            approved_seq: None,
            executing: false,
            finished: None,
        }
    }

    /// Progress toward approval.
    pub fn progress(&self) -> Progress {
        progress(
            &self.request.required,
            &self.grants,
            &self.request.eligible_roles,
        )
    }

    /// The grant whose approval completed the request: the identity execution impersonates.
    pub fn final_grant(&self) -> Option<&Grant> {
        let seq = self.approved_seq?;
        self.grants.iter().find(|g| g.seq == seq)
    }

    /// Applies one decision record (the only way state moves; views and the book share it).
    pub(crate) fn apply_decision(
        &mut self,
        seq: u64,
        actor: &str,
        at: DateTime<Utc>,
        d: &DecisionPayload,
    ) {
        match d.decision {
            DecisionKind::Approve => {
                if self.status != Status::Pending
                    || self.grants.iter().any(|g| g.identity == d.identity)
                {
                    return;
                }
                self.grants.push(Grant {
                    actor: actor.to_owned(),
                    identity: d.identity.clone(),
                    kube: d.kube.clone(),
                    roles: d.roles.clone(),
                    at,
                    seq,
                    automatic: d.automatic.clone(),
                });
                if self.progress().complete {
                    self.status = Status::Approved;
                    self.approved_seq = Some(seq);
                }
            }
            DecisionKind::Deny => {
                if self.status == Status::Denied || self.executing {
                    return;
                }
                self.status = Status::Denied;
                self.denial = Some(Denial {
                    actor: actor.to_owned(),
                    identity: d.identity.clone(),
                    reason: d.reason.clone().unwrap_or_default(),
                    at,
                    seq,
                });
            }
        }
    }
}

/// Progress of `grants` against `required`. An automatic grant meets everything (the
/// policy's auto_approve rule replaces thresholds for the low-risk plans it names).
pub fn progress(required: &[Need], grants: &[Grant], eligible_roles: &[String]) -> Progress {
    if grants.iter().any(|g| g.automatic.is_some()) {
        return Progress {
            have: 1,
            need: 1,
            missing_roles: Vec::new(),
            complete: true,
        };
    }
    let mut worst: Option<(u32, u32)> = None;
    let mut missing: Vec<String> = Vec::new();
    for need in required {
        let counts = |g: &Grant| {
            need.from_roles.is_empty() || g.roles.iter().any(|r| need.from_roles.contains(r))
        };
        let have = grants.iter().filter(|g| counts(g)).count() as u32;
        if have < need.approvals {
            let roles = if need.from_roles.is_empty() {
                eligible_roles
            } else {
                &need.from_roles
            };
            for r in roles {
                if !missing.contains(r) {
                    missing.push(r.clone());
                }
            }
        }
        let short = need.approvals.saturating_sub(have);
        if worst.is_none_or(|(h, n)| short > n.saturating_sub(h)) {
            worst = Some((have, need.approvals));
        }
    }
    let (have, need) = worst.unwrap_or((0, 0));
    Progress {
        have,
        need,
        complete: missing.is_empty()
            && required.iter().all(|n| {
                grants
                    .iter()
                    .filter(|g| {
                        n.from_roles.is_empty() || g.roles.iter().any(|r| n.from_roles.contains(r))
                    })
                    .count() as u32
                    >= n.approvals
            }),
        missing_roles: missing,
    }
}

impl ApprovalState {
    /// A multi-line description for `medic approvals show` (and one line per request for
    /// `list` is its first line).
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        use std::fmt::Write;
        let r = &self.request;
        let s = &r.summary;
        let p = self.progress();
        let expired = if now >= r.expires_at {
            " (expired)"
        } else {
            ""
        };
        let mut out = format!(
            "{}  {}  [{} risk]  {}  {}/{} approvals  expires {}{expired}\n",
            r.id,
            self.status,
            s.risk,
            s.title,
            p.have,
            p.need,
            r.expires_at.to_rfc3339()
        );
        let _ = writeln!(out, "  playbook:   {}", s.playbook);
        let _ = writeln!(out, "  cluster:    {}", s.clusters().join(", "));
        let _ = writeln!(out, "  namespaces: {}", s.namespaces.join(", "));
        let _ = writeln!(out, "  plan hash:  {}", r.plan_hash);
        let _ = writeln!(
            out,
            "  requested:  by {} at {}",
            r.requester,
            r.created.to_rfc3339()
        );
        let _ = writeln!(out, "  approvers:  roles {}", r.eligible_roles.join(", "));
        for need in &r.required {
            let from = if need.from_roles.is_empty() {
                "any eligible role".to_owned()
            } else {
                need.from_roles.join(", ")
            };
            let _ = writeln!(
                out,
                "  requires:   {} approval(s) from {from} ({})",
                need.approvals, need.threshold
            );
        }
        for (i, a) in s.access.iter().enumerate() {
            let _ = writeln!(out, "  step {}:     {a}", i + 1);
        }
        for g in &self.grants {
            let auto = g
                .automatic
                .as_ref()
                .map(|rb| format!(" automatically for runbook {rb}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  approved:   by {} ({}){auto} at {}",
                g.identity,
                g.kube.user,
                g.at.to_rfc3339()
            );
        }
        if let Some(d) = &self.denial {
            let _ = writeln!(
                out,
                "  denied:     by {} at {}: {}",
                d.identity,
                d.at.to_rfc3339(),
                d.reason
            );
        }
        out
    }
}
