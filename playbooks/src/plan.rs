//! The plan: exact operations, their dry-run, risk, blast radius, checks and undo.

use chrono::{DateTime, Utc};
use medic_approvals::{AccessCheck, Approvable, PlanHash, PlanSummary, Risk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::step::{Check, ObjectRef, Operation, Step};

/// What a plan may disturb.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// Pods restarted, evicted or moved.
    pub pods: u32,
    /// Replicas whose count or template changes.
    pub replicas: u32,
    /// Percent of the service's traffic that moves (failover).
    pub traffic_share_percent: u32,
    /// Namespaces touched.
    pub namespaces: Vec<String>,
    /// Nodes touched.
    pub nodes: Vec<String>,
}

/// Something that must still hold right before execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "precondition", rename_all = "snake_case")]
pub enum Precondition {
    /// The object still has the uid and resourceVersion the plan was made against.
    Unchanged {
        /// Cluster.
        cluster: String,
        /// The object, pinned.
        target: ObjectRef,
    },
    /// A git branch is still at the commit the plan was made against.
    BranchAt {
        /// `owner/name`.
        repo: String,
        /// Branch.
        branch: String,
        /// Expected head.
        sha: String,
    },
}

impl Precondition {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Precondition::Unchanged { cluster, target } => format!(
                "{} on {cluster} still has uid {} and resourceVersion {}",
                target.display(),
                target.uid.as_deref().unwrap_or("?"),
                target.resource_version.as_deref().unwrap_or("?")
            ),
            Precondition::BranchAt { repo, branch, sha } => {
                format!("{repo} branch {branch} is still at {sha}")
            }
        }
    }
}

/// A condition that must hold after execution, before its deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostCheck {
    /// Cluster it reads (as medic).
    pub cluster: String,
    /// One line for people.
    pub description: String,
    /// The condition.
    pub check: Check,
    /// Seconds after the last step by which it must hold.
    pub deadline_seconds: u64,
}

/// The server-side dry-run of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunResult {
    /// 1-based step number.
    pub step: usize,
    /// True when the API server accepted the dry-run.
    pub ok: bool,
    /// Unified diff of the object, live → after (empty for waits).
    pub diff: String,
    /// HTTP status of the dry-run (0 when there was no API call).
    pub api_status: u16,
    /// The API server's message when it refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Refused only because of state an earlier step of this plan changes (see
    /// [`DryRunResult::deferrable`]); it is dry-run again just before it runs, and a refusal
    /// then stops the plan.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

impl DryRunResult {
    /// Whether a refusal of step `index` (0-based) of `steps` can wait for the steps before
    /// it: the step comes after a wait (so it depends on what those steps did) and the API
    /// server refused it for the live state — 409 Conflict or 422 Invalid, e.g. KubeVirt
    /// refusing a second migration while the stuck one being cancelled still exists — not
    /// for who asked (401/403) nor for something missing (404).
    pub fn deferrable(steps: &[Step], index: usize, status: u16) -> bool {
        matches!(status, 409 | 422)
            && steps
                .iter()
                .take(index)
                .any(|s| matches!(s.op, Operation::WaitFor { .. }))
    }
}

/// An exact, reviewable remediation plan.
///
/// Its JSON (which has no hash field) is what approvals hash: [`Plan::hash`] is the
/// [`PlanHash`] of the canonical JSON, so the hash never covers itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Plan id (a UUID).
    pub id: String,
    /// Playbook name (`gpu-rebalance`, `rollback`, ...).
    pub playbook: String,
    /// The cluster the plan acts on (failover: the target cluster).
    pub cluster: String,
    /// One-line title.
    pub title: String,
    /// Why this plan, in a few sentences (including why not a live patch, for GitOps).
    pub rationale: String,
    /// The playbook parameters it was made from.
    pub params: Value,
    /// The operations, in order.
    pub steps: Vec<Step>,
    /// What undoes the steps, in order (run automatically when post-checks fail).
    pub undo: Vec<Step>,
    /// Risk level.
    pub risk: Risk,
    /// What it may disturb.
    pub blast_radius: BlastRadius,
    /// What must still hold right before execution.
    pub preconditions: Vec<Precondition>,
    /// What must hold afterwards.
    pub post_checks: Vec<PostCheck>,
    /// Server-side dry-run of every step, against live state at planning time.
    pub dry_run: Vec<DryRunResult>,
    /// When it was made (the context's clock).
    pub created_at: DateTime<Utc>,
}

impl Plan {
    /// The hash approvals bind to.
    pub fn hash(&self) -> Result<PlanHash> {
        Ok(PlanHash::of(self)?)
    }

    /// Every SubjectAccessReview the steps need, in step order.
    pub fn access_checks(&self) -> Vec<AccessCheck> {
        self.steps
            .iter()
            .filter_map(|s| s.access().ok().flatten())
            .collect()
    }

    /// True when every dry-run was accepted.
    pub fn dry_run_ok(&self) -> bool {
        self.dry_run.iter().all(|d| d.ok || d.deferred)
    }

    /// Namespaces the steps touch.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for ns in self.steps.iter().filter_map(Step::namespace) {
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        out
    }

    /// The plan as text for people: title, rationale, steps with their diffs, checks, undo.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} [{}; risk {}]\n{}\n\nSteps:\n",
            self.title, self.playbook, self.risk, self.rationale
        );
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {}. [{}] {}\n", i + 1, s.cluster, s.description));
            if let Some(d) = self.dry_run.iter().find(|d| d.step == i + 1) {
                if d.deferred {
                    out.push_str(&format!(
                        "     dry-run deferred ({}): {} — refused only until the steps before it have run; it is dry-run again just before it runs\n",
                        d.api_status, d.message
                    ));
                } else if !d.ok {
                    out.push_str(&format!(
                        "     dry-run refused ({}): {}\n",
                        d.api_status, d.message
                    ));
                }
                for line in d.diff.lines() {
                    out.push_str(&format!("     {line}\n"));
                }
            }
        }
        out.push_str("Post-checks:\n");
        for c in &self.post_checks {
            out.push_str(&format!(
                "  - {} (within {}s)\n",
                c.description, c.deadline_seconds
            ));
        }
        out.push_str("Undo:\n");
        for s in &self.undo {
            out.push_str(&format!("  - {}\n", s.description));
        }
        out
    }
}

impl Approvable for Plan {
    fn summary(&self) -> PlanSummary {
        PlanSummary {
            plan_id: self.id.clone(),
            // The book recomputes it from the plan; an error here only leaves a placeholder.
            hash: self.hash().unwrap_or_else(|_| zero_hash()),
            playbook: self.playbook.clone(),
            cluster: self.cluster.clone(),
            namespaces: self.namespaces(),
            risk: self.risk,
            access: self.access_checks(),
            title: self.title.clone(),
        }
    }
}

/// Plans are plain JSON and always serialize; should that ever fail, the zero hash can
/// match no approval, so nothing could run under it.
fn zero_hash() -> PlanHash {
    match PlanHash::from_hex(&"0".repeat(64)) {
        Ok(h) => h,
        Err(_) => unreachable!("64 zeros are a valid plan hash"),
    }
}
