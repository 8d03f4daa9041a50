//! The approval policy: who may approve what, where, how many must agree, and when
//! nothing may change. Parsing and validation live in `parse`; line lookup in `locate`.

mod locate;
mod parse;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::glob::any_match;
use crate::identity::Identity;
use crate::plan::{PlanSummary, Risk};

pub use parse::parse_duration;

/// Default lifetime of an approval request.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// A validated approval policy. Build it with [`Policy::load`], [`Policy::parse`] or
/// [`Policy::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// How long a request (and the approval it gathers) stays valid.
    pub expiry: Duration,
    /// Roles and their members.
    pub roles: Vec<Role>,
    /// How many approvals which plans need.
    pub thresholds: Vec<Threshold>,
    /// Change freezes.
    pub freezes: Vec<Freeze>,
    /// Plans runbooks may run without a human (empty = off).
    pub auto_approve: Vec<AutoApprove>,
}

/// Who a role contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Member {
    /// `*`: every mapped identity except the agent.
    Any,
    /// A plain identity name from the identity map.
    Identity(String),
    /// `user:<kube user>`.
    User(String),
    /// `group:<kube group>`.
    Group(String),
}

impl Member {
    /// True when the identity is this member.
    pub fn matches(&self, id: &Identity) -> bool {
        if id.agent {
            return false;
        }
        match self {
            Member::Any => true,
            Member::Identity(n) => &id.name == n,
            Member::User(u) => &id.kube.user == u,
            Member::Group(g) => id.kube.groups.iter().any(|x| x == g),
        }
    }
}

/// A role: its members and what they may approve.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Members.
    pub members: Vec<Member>,
    /// Playbook globs this role may approve.
    pub playbooks: Vec<String>,
    /// Cluster globs; every cluster a plan acts on must match.
    pub clusters: Vec<String>,
    /// Namespace globs; a plan touching cluster-scoped objects needs `*`.
    pub namespaces: Vec<String>,
    /// Highest risk this role may approve.
    pub max_risk: Risk,
}

impl Role {
    /// `Ok` when this role may approve the plan, else why not.
    pub fn covers(&self, plan: &PlanSummary) -> Result<(), String> {
        if !any_match(&self.playbooks, &plan.playbook) {
            return Err(format!(
                "role {} may not approve playbook {}",
                self.name, plan.playbook
            ));
        }
        // A plan spanning clusters (failover) needs a role covering every one of them.
        if let Some(c) = plan
            .clusters()
            .into_iter()
            .find(|c| !any_match(&self.clusters, c))
        {
            return Err(format!("role {} may not approve on cluster {c}", self.name));
        }
        if let Some(ns) = plan
            .namespaces
            .iter()
            .find(|ns| !any_match(&self.namespaces, ns))
        {
            return Err(format!(
                "role {} may not approve in namespace {ns}",
                self.name
            ));
        }
        if plan.touches_cluster_scope() && !self.namespaces.iter().any(|n| n == "*") {
            return Err(format!(
                "role {} may not approve cluster-scoped changes (its namespaces are not `*`)",
                self.name
            ));
        }
        if plan.risk > self.max_risk {
            return Err(format!(
                "role {} may approve up to risk {}, the plan is {}",
                self.name, self.max_risk, plan.risk
            ));
        }
        Ok(())
    }

    /// True when the identity is a member.
    pub fn has_member(&self, id: &Identity) -> bool {
        self.members.iter().any(|m| m.matches(id))
    }
}

/// "Plans at or above `min_risk` (in this scope) need `approvals` distinct approvers
/// from `from_roles`."
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Name shown in messages.
    pub name: String,
    /// Lowest risk the threshold applies to.
    pub min_risk: Risk,
    /// Distinct approvers needed.
    pub approvals: u32,
    /// Roles whose approvals count (empty = any role that may approve the plan).
    pub from_roles: Vec<String>,
    /// Playbook globs.
    pub playbooks: Vec<String>,
    /// Cluster globs (matches when any cluster of the plan matches).
    pub clusters: Vec<String>,
    /// Namespace globs (matches when any namespace of the plan matches).
    pub namespaces: Vec<String>,
}

/// A change freeze: approval and execution are blocked in its scope while it lasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Freeze {
    /// Name.
    pub name: String,
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Cluster globs (a plan acting on any matching cluster is blocked).
    pub clusters: Vec<String>,
    /// Namespace globs; `*` also freezes cluster-scoped changes.
    pub namespaces: Vec<String>,
    /// Why, shown to whoever is refused.
    pub reason: String,
}

impl Freeze {
    /// True when the freeze blocks this plan at `now` (on any cluster the plan acts on).
    pub fn blocks(&self, plan: &PlanSummary, now: DateTime<Utc>) -> bool {
        self.start <= now
            && now < self.end
            && plan
                .clusters()
                .into_iter()
                .any(|c| any_match(&self.clusters, c))
            && (self.namespaces.iter().any(|n| n == "*")
                || plan
                    .namespaces
                    .iter()
                    .any(|ns| any_match(&self.namespaces, ns)))
    }
}

/// A low-risk plan a named runbook may run without a human.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoApprove {
    /// Runbook name.
    pub runbook: String,
    /// Playbook globs.
    pub playbooks: Vec<String>,
    /// Cluster globs; every cluster a plan acts on must match.
    pub clusters: Vec<String>,
    /// Namespace globs.
    pub namespaces: Vec<String>,
    /// Highest risk (validation allows only `low`).
    pub max_risk: Risk,
    /// Identity name the execution runs (and is access-reviewed) as.
    pub run_as: String,
}

impl AutoApprove {
    /// True when this rule pre-approves the plan for the runbook.
    pub fn allows(&self, runbook: &str, plan: &PlanSummary) -> bool {
        self.runbook == runbook
            && any_match(&self.playbooks, &plan.playbook)
            && plan
                .clusters()
                .into_iter()
                .all(|c| any_match(&self.clusters, c))
            && plan
                .namespaces
                .iter()
                .all(|ns| any_match(&self.namespaces, ns))
            && (!plan.touches_cluster_scope() || self.namespaces.iter().any(|n| n == "*"))
            && plan.risk <= self.max_risk
    }
}

/// One approval requirement of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Need {
    /// Threshold name (`default` when no threshold applies).
    pub threshold: String,
    /// Distinct approvers needed.
    pub approvals: u32,
    /// Roles whose approvals count (empty = any role that may approve the plan).
    pub from_roles: Vec<String>,
}

impl Policy {
    /// Every requirement the plan must meet; when no threshold applies, one approval from
    /// any role that may approve it.
    pub fn requirement(&self, plan: &PlanSummary) -> Vec<Need> {
        let needs: Vec<Need> = self
            .thresholds
            .iter()
            .filter(|t| {
                plan.risk >= t.min_risk
                    && any_match(&t.playbooks, &plan.playbook)
                    && plan
                        .clusters()
                        .into_iter()
                        .any(|c| any_match(&t.clusters, c))
                    && (t.namespaces.iter().any(|n| n == "*")
                        || plan
                            .namespaces
                            .iter()
                            .any(|ns| any_match(&t.namespaces, ns)))
            })
            .map(|t| Need {
                threshold: t.name.clone(),
                approvals: t.approvals,
                from_roles: t.from_roles.clone(),
            })
            .collect();
        if needs.is_empty() {
            vec![Need {
                threshold: "default".into(),
                approvals: 1,
                from_roles: Vec::new(),
            }]
        } else {
            needs
        }
    }

    /// Roles that may approve this plan.
    pub fn eligible_roles(&self, plan: &PlanSummary) -> Vec<&Role> {
        self.roles
            .iter()
            .filter(|r| r.covers(plan).is_ok())
            .collect()
    }

    /// Roles the identity holds that may approve this plan, or why none does.
    pub fn approver_roles(&self, id: &Identity, plan: &PlanSummary) -> Result<Vec<String>, String> {
        let held: Vec<&Role> = self.roles.iter().filter(|r| r.has_member(id)).collect();
        if held.is_empty() {
            return Err(format!("{} holds no approver role", id.name));
        }
        let mut reasons = Vec::new();
        let mut ok = Vec::new();
        for r in held {
            match r.covers(plan) {
                Ok(()) => ok.push(r.name.clone()),
                Err(why) => reasons.push(why),
            }
        }
        if ok.is_empty() {
            Err(reasons.join("; "))
        } else {
            Ok(ok)
        }
    }

    /// The first freeze blocking the plan at `now`.
    pub fn freeze_at(&self, plan: &PlanSummary, now: DateTime<Utc>) -> Option<&Freeze> {
        self.freezes.iter().find(|f| f.blocks(plan, now))
    }

    /// The auto-approval rule letting `runbook` run the plan without a human.
    pub fn auto_rule(&self, runbook: &str, plan: &PlanSummary) -> Option<&AutoApprove> {
        self.auto_approve.iter().find(|a| a.allows(runbook, plan))
    }
}

impl Default for Policy {
    /// Any mapped identity (not the agent) whose access reviews pass may approve; low and
    /// medium plans need one approval, high and critical two distinct approvers; requests
    /// expire after 15 minutes; no freezes; no auto-approval.
    fn default() -> Self {
        let all = || vec!["*".to_owned()];
        Policy {
            expiry: DEFAULT_EXPIRY,
            roles: vec![Role {
                name: "approvers".into(),
                members: vec![Member::Any],
                playbooks: all(),
                clusters: all(),
                namespaces: all(),
                max_risk: Risk::Critical,
            }],
            thresholds: vec![Threshold {
                name: "two-person-rule".into(),
                min_risk: Risk::High,
                approvals: 2,
                from_roles: Vec::new(),
                playbooks: all(),
                clusters: all(),
                namespaces: all(),
            }],
            freezes: Vec::new(),
            auto_approve: Vec::new(),
        }
    }
}
