//! From a proposal to an executed plan: planning, approval requests, decisions, execution.
//!
//! This is the one path every front end takes — the TUI and the bots through a session, the
//! CLI's `medic approvals approve` directly — so the first valid decision wins wherever it
//! was made, and execution can only follow an [`medic_approvals::Outcome::Approved`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use medic_agent::protocol::{ApprovalStatus, Event, PlanView};
use medic_approvals::audit::{RecordDraft, RecordKind};
use medic_approvals::{Actor, ApprovalBook, ApprovalState, Decision, Outcome, PlanHash};
use medic_playbooks::{Executor, Plan, PlanContext, Progress};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::view::{approval_status, plan_view};

/// The clock: the scenario's in replays, the wall clock otherwise.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Plans, approvals and execution over one set of clusters and one audit log.
#[derive(Clone)]
pub struct Remediation {
    book: Arc<ApprovalBook>,
    plan_ctx: Arc<PlanContext>,
    executor: Executor,
    clock: Clock,
}

/// A plan that is waiting for approval.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The exact plan.
    pub plan: Plan,
    /// What people see.
    pub view: PlanView,
    /// Its approval status right after the request.
    pub status: ApprovalStatus,
}

impl std::fmt::Debug for Remediation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remediation").finish_non_exhaustive()
    }
}

impl Remediation {
    /// Builds the remediation path. `executor` must record into `book`.
    pub fn new(
        book: Arc<ApprovalBook>,
        plan_ctx: PlanContext,
        executor: Executor,
        clock: Clock,
    ) -> Self {
        Self {
            book,
            plan_ctx: Arc::new(plan_ctx),
            executor,
            clock,
        }
    }

    /// The approval book (audit log and views).
    pub fn book(&self) -> &Arc<ApprovalBook> {
        &self.book
    }

    /// Now, by this engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Turns a proposal into an exact plan (live state, dry-run), records it, and requests
    /// approval as `requester`. A playbook that refuses (e.g. a failover target that breaks
    /// residency) is an error carrying the playbook's reason.
    pub async fn plan_and_request(
        &self,
        proposal_id: &str,
        playbook: &str,
        params: Value,
        requester: &Actor,
    ) -> Result<Requested> {
        // A server-side dry-run needs write permission, which medic's own read-only
        // identity lacks: plan-time dry-runs run as the requester when they are mapped,
        // else as the context's default (see `PlanContext::dry_run_as`).
        let mut ctx = (*self.plan_ctx).clone();
        ctx.now = self.now();
        let fallback = ctx.dry_run_as.clone();
        if let Some(who) = self.book.identities().resolve(requester)
            && !who.agent
        {
            ctx.dry_run_as = Some(who.kube.clone());
        }
        let proposed = async {
            let plan = medic_playbooks::propose(&ctx, playbook, params.clone()).await?;
            // A requester who may not make these changes themselves (the usual reason
            // someone else approves) would see only 403s; show what an on-call approver
            // would meet.
            if plan.dry_run.iter().any(|d| d.api_status == 403)
                && fallback.is_some()
                && fallback != ctx.dry_run_as
            {
                ctx.dry_run_as = fallback;
                return medic_playbooks::propose(&ctx, playbook, params.clone()).await;
            }
            Ok(plan)
        }
        .await;
        let plan = match proposed {
            Ok(plan) => plan,
            Err(e) => {
                // A refused proposal (a residency breach, a revert that needs a merge, a
                // stuck migration someone else owns) is part of the trail too.
                let payload =
                    json!({"playbook": playbook, "params": params, "reason": e.to_string()});
                self.book
                    .record(
                        RecordDraft::new(
                            self.now(),
                            requester,
                            RecordKind::Other("proposal_refused".into()),
                            payload,
                        )
                        .proposal(proposal_id),
                    )
                    .await?;
                return Err(e.into());
            }
        };
        let now = self.now();
        let plan_json = serde_json::to_value(&plan).map_err(Error::Json)?;
        self.book
            .record_proposal(proposal_id, requester, plan_json, now)
            .await?;
        let request = self.book.request(&plan, requester, now).await?;
        let hash = request.plan_hash.to_string();
        let view = plan_view(&plan, &hash);
        let state = self
            .book
            .get(&request.id)
            .await?
            .ok_or_else(|| Error::UnknownApproval(request.id.clone()))?;
        let status = approval_status(&state, Some(proposal_id), None, None, now);
        Ok(Requested { plan, view, status })
    }

    /// The current status of an approval request.
    pub async fn status(&self, approval_id: &str) -> Result<(ApprovalState, ApprovalStatus)> {
        let state = self
            .book
            .get(approval_id)
            .await?
            .ok_or_else(|| Error::UnknownApproval(approval_id.to_string()))?;
        let status = approval_status(&state, None, None, None, self.now());
        Ok((state, status))
    }

    /// Approves or denies as `actor`, who saw the plan with hash `hash_seen` (the request's
    /// hash when `None`: the CLI shows the stored plan right before asking). When this
    /// decision completes the approval, the plan executes at once — impersonating the
    /// approver, with every check re-run first — and `events` receives each step.
    pub async fn decide(
        &self,
        approval_id: &str,
        actor: &Actor,
        approve: bool,
        reason: Option<String>,
        hash_seen: Option<&str>,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<ApprovalStatus> {
        let (state, _) = self.status(approval_id).await?;
        let hash = match hash_seen {
            Some(h) => PlanHash::from_hex(h)?,
            None => state.request.plan_hash.clone(),
        };
        let decision = if approve {
            Decision::Approve
        } else {
            Decision::Deny {
                reason: reason.unwrap_or_else(|| "no reason given".to_string()),
            }
        };
        let outcome = self
            .book
            .decide::<Plan>(approval_id, actor, decision, &hash, self.now())
            .await?;
        let refusal = match &outcome {
            Outcome::Refused { reason, .. } => Some(reason.to_string()),
            Outcome::AlreadyDecided { status, .. } => Some(format!("already {status}")),
            _ => None,
        };
        let Outcome::Approved(approved) = outcome else {
            let (state, _) = self.status(approval_id).await?;
            return Ok(approval_status(&state, None, None, refusal, self.now()));
        };
        let _ = events.send(Event::ApprovalDecided {
            approval_id: approval_id.to_string(),
            actor: actor.to_string(),
            decision: medic_agent::protocol::ApprovalVerdict::Approve,
            reason: None,
        });
        self.execute(approval_id, &approved, events).await
    }

    /// Approves `approval_id` for `runbook` without a human when the policy's
    /// `auto_approve` rules allow it (they are off unless the policy says so), then executes
    /// as the rule's identity. The decision — or the refusal — is in the audit log as
    /// automatic, like any other. A refusal comes back in the status's `refusal`.
    pub async fn auto_approve(
        &self,
        approval_id: &str,
        runbook: &str,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<ApprovalStatus> {
        let outcome = self
            .book
            .auto_approve::<Plan>(approval_id, runbook, self.now())
            .await?;
        let refusal = match &outcome {
            Outcome::Refused { reason, .. } => Some(reason.to_string()),
            Outcome::AlreadyDecided { status, .. } => Some(format!("already {status}")),
            _ => None,
        };
        let Outcome::Approved(approved) = outcome else {
            let (state, _) = self.status(approval_id).await?;
            return Ok(approval_status(&state, None, None, refusal, self.now()));
        };
        let _ = events.send(Event::ApprovalDecided {
            approval_id: approval_id.to_string(),
            actor: Actor::Runbook(runbook.to_string()).to_string(),
            decision: medic_agent::protocol::ApprovalVerdict::Approve,
            reason: Some("pre-approved by policy for this runbook".to_string()),
        });
        self.execute(approval_id, &approved, events).await
    }

    /// Executes an approved plan, forwarding the executor's progress to `events`, and
    /// reports where the approval ended (`executed`, `refused`, `failed`, `undone`).
    async fn execute(
        &self,
        approval_id: &str,
        approved: &medic_approvals::Approved<Plan>,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<ApprovalStatus> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let executor = self.executor.clone().with_progress(tx);
        let plan_id = approved.plan().id.clone();
        let forward = {
            let events = events.clone();
            let plan_id = plan_id.clone();
            tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    if let Some(e) = progress_event(&plan_id, p) {
                        let _ = events.send(e);
                    }
                }
            })
        };
        // `resume` runs a fresh plan like `execute`; when the log already holds an
        // interrupted execution of this very plan (a crash, then the same plan approved
        // again) it continues it without applying any step twice.
        let report = executor.resume(approved).await;
        drop(executor);
        let _ = forward.await;
        let report = report?;
        let phase = match &report.outcome {
            medic_playbooks::Outcome::Succeeded => "executed",
            medic_playbooks::Outcome::Refused { .. } => "refused",
            medic_playbooks::Outcome::Stopped { .. } => "failed",
            medic_playbooks::Outcome::RolledBack { .. } => "undone",
        };
        let why = match &report.outcome {
            medic_playbooks::Outcome::Succeeded => None,
            medic_playbooks::Outcome::Refused { reason }
            | medic_playbooks::Outcome::Stopped { reason, .. }
            | medic_playbooks::Outcome::RolledBack { reason, .. } => Some(reason.clone()),
        };
        let (state, _) = self.status(approval_id).await?;
        Ok(approval_status(&state, None, Some(phase), why, self.now()))
    }
}

/// Executor progress as session events.
fn progress_event(plan_id: &str, p: Progress) -> Option<Event> {
    let step = |n: usize, description: String, status: &str| Event::ExecutionStep {
        proposal_id: plan_id.to_string(),
        step: n,
        description,
        status: status.to_string(),
    };
    Some(match p {
        Progress::Started { steps, as_user, .. } => step(
            0,
            format!("executing {steps} step(s) as {as_user}"),
            "started",
        ),
        Progress::Refused { reason, .. } => step(0, reason, "refused"),
        Progress::StepStarted {
            step: n,
            description,
            phase,
        } => step(
            n,
            format!("{phase:?}: {description}").to_lowercase(),
            "running",
        ),
        Progress::StepFinished {
            step: n, outcome, ..
        } => {
            let (status, detail) = match outcome {
                medic_playbooks::StepOutcome::Applied { status, detail, .. } => {
                    ("applied", format!("HTTP {status} {detail}"))
                }
                medic_playbooks::StepOutcome::AlreadyApplied => {
                    ("applied", "already in effect".to_string())
                }
                medic_playbooks::StepOutcome::Waited { detail } => ("applied", detail),
                medic_playbooks::StepOutcome::Failed { status, reason } => {
                    ("failed", format!("HTTP {status}: {reason}"))
                }
            };
            step(n, detail, status)
        }
        Progress::PostCheck {
            description,
            passed,
            detail,
        } => step(
            0,
            format!("post-check: {description} — {detail}"),
            if passed { "passed" } else { "failed" },
        ),
        Progress::UndoStarted { reason } => step(0, format!("undo: {reason}"), "undo"),
        Progress::Finished { outcome } => step(0, format!("{outcome:?}"), "finished"),
    })
}

/// Completes a proposal's parameters from its target object: the model and the analyzers
/// name the object they mean (`target`), while playbooks take named parameters. Values the
/// proposal gave win; nothing is guessed beyond what the target says.
pub fn complete_params(
    playbook: &str,
    params: Value,
    target: Option<&medic_tools::ObjectRef>,
) -> Value {
    let mut map = match params {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => return other,
    };
    if let Some(t) = target {
        let mut put = |k: &str, v: &str| {
            map.entry(k.to_string())
                .or_insert_with(|| Value::String(v.to_string()));
        };
        if playbook == "failover" {
            put("standby_cluster", &t.cluster);
            if let Some(ns) = &t.namespace {
                put("standby_namespace", ns);
            }
            if t.kind == "Deployment" {
                put("standby_deployment", &t.name);
            }
        } else {
            put("cluster", &t.cluster);
            if let Some(ns) = &t.namespace {
                put("namespace", ns);
            }
            let key = match t.kind.as_str() {
                "Node" => Some("node"),
                "Deployment" => Some("deployment"),
                "VirtualMachine" | "VirtualMachineInstance" => Some("vm"),
                _ => None,
            };
            if let Some(k) = key {
                put(k, &t.name);
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn target(kind: &str, ns: Option<&str>, name: &str) -> medic_tools::ObjectRef {
        serde_json::from_value(json!({
            "cluster": "aks-eu-west", "kind": kind, "namespace": ns, "name": name
        }))
        .unwrap()
    }

    #[test]
    fn params_are_completed_from_the_target_without_overriding() {
        let t = target("Node", None, "gpu-node-3");
        assert_eq!(
            complete_params("gpu-rebalance", json!({"mode": "drain"}), Some(&t)),
            json!({"mode": "drain", "cluster": "aks-eu-west", "node": "gpu-node-3"})
        );
        let t = target("Deployment", Some("payments"), "api");
        assert_eq!(
            complete_params(
                "rollback",
                json!({"cluster": "other", "to_revision": 6}),
                Some(&t)
            ),
            json!({"cluster": "other", "to_revision": 6, "namespace": "payments", "deployment": "api"})
        );
        assert_eq!(
            complete_params("scale", json!({"replicas": 3}), None),
            json!({"replicas": 3})
        );
    }
}
