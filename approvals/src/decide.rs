//! The decisions of the [`ApprovalBook`]: `decide`, `auto_approve` and `recheck`, and the
//! checks they share (plan hash, expiry, freeze, SubjectAccessReviews).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::approved::{Approved, Decision, Outcome};
use crate::audit::{AuditRecord, RecordDraft, RecordKind};
use crate::book::ApprovalBook;
use crate::error::{Error, Result};
use crate::identity::{Actor, Identity};
use crate::plan::{Approvable, FromRecorded, PlanHash, PlanSummary};
use crate::refusal::Refusal;
use crate::state::{ApprovalState, DecisionKind, DecisionPayload, Grant, Status, progress};

/// Upper bound on one SubjectAccessReview, on top of the reviewer's own timeout.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(15);

impl ApprovalBook {
    /// Approves or denies request `id` as `actor`, who saw the plan with hash
    /// `plan_hash_seen`. Approval checks, in order: not already decided; actor mapped; not
    /// medic; not the requester; the hash seen and the stored plan's hash equal the
    /// request's; not expired; no freeze; a role of the actor covers the plan; a
    /// SubjectAccessReview as the actor passes for every operation. A deny needs a role
    /// covering the plan (or being the requester, to withdraw) and wins over approvals.
    pub async fn decide<P: FromRecorded>(
        &self,
        id: &str,
        actor: &Actor,
        decision: Decision,
        plan_hash_seen: &PlanHash,
        now: DateTime<Utc>,
    ) -> Result<Outcome<P>> {
        let _g = self.exclusive().await?;
        let (state, plan_json) = self.load(id).await?;
        let who = actor.to_string();
        let summary = state.request.summary.clone();
        let deny = matches!(decision, Decision::Deny { .. });
        let decided = match state.status {
            Status::Denied => true,
            Status::Approved => !deny || state.executing,
            Status::Pending => false,
        };
        if decided {
            let refusal = Refusal::NotApproved {
                status: format!("already {}", state.status),
            };
            self.write_refusal(&state, &who, "decide", &refusal, now)
                .await?;
            return Ok(Outcome::AlreadyDecided {
                approval_id: id.to_owned(),
                status: state.status,
            });
        }
        let Some(identity) = self.identities().resolve(actor).cloned() else {
            return self
                .refuse(
                    &state,
                    &who,
                    "decide",
                    Refusal::Unmapped { actor: who.clone() },
                    now,
                )
                .await;
        };
        if identity.agent {
            let r = Refusal::AgentCannotApprove {
                identity: identity.name.clone(),
            };
            return self.refuse(&state, &who, "decide", r, now).await;
        }
        let is_requester =
            state.request.requester_identity.as_deref() == Some(identity.name.as_str());
        let roles = self.policy().approver_roles(&identity, &summary);

        if let Decision::Deny { reason } = decision {
            let roles = match roles {
                Ok(r) => r,
                Err(_) if is_requester => Vec::new(),
                Err(why) => {
                    let r = Refusal::RoleNotAllowed {
                        identity: identity.name.clone(),
                        why,
                    };
                    return self.refuse(&state, &who, "decide", r, now).await;
                }
            };
            let payload = DecisionPayload {
                decision: DecisionKind::Deny,
                identity: identity.name.clone(),
                kube: identity.kube.clone(),
                roles,
                reason: Some(reason.clone()),
                plan_hash_seen: Some(plan_hash_seen.to_string()),
                automatic: None,
                outcome: Status::Denied,
            };
            self.write_decision(&state, &who, &payload, now).await?;
            return Ok(Outcome::Denied {
                approval_id: id.to_owned(),
                by: identity.name,
                reason,
            });
        }

        if is_requester {
            let r = Refusal::SelfApproval {
                identity: identity.name.clone(),
            };
            return self.refuse(&state, &who, "decide", r, now).await;
        }
        let plan = match self.check_plan::<P>(&state, plan_json, Some(plan_hash_seen))? {
            Ok(plan) => plan,
            Err(r) => return self.refuse(&state, &who, "decide", r, now).await,
        };
        if let Some(r) = self.time_refusal(&state, now) {
            return self.refuse(&state, &who, "decide", r, now).await;
        }
        let roles = match roles {
            Ok(r) => r,
            Err(why) => {
                let r = Refusal::RoleNotAllowed {
                    identity: identity.name.clone(),
                    why,
                };
                return self.refuse(&state, &who, "decide", r, now).await;
            }
        };
        if let Some(r) = self.review(&state, &identity, &who, now).await? {
            return self.refuse(&state, &who, "decide", r, now).await;
        }

        let mut next = state.clone();
        let payload = DecisionPayload {
            decision: DecisionKind::Approve,
            identity: identity.name.clone(),
            kube: identity.kube.clone(),
            roles,
            reason: None,
            plan_hash_seen: Some(plan_hash_seen.to_string()),
            automatic: None,
            outcome: Status::Pending,
        };
        next.apply_decision(0, &who, now, &payload);
        let payload = DecisionPayload {
            outcome: next.status,
            ..payload
        };
        self.write_decision(&state, &who, &payload, now).await?;
        self.outcome(id, plan).await
    }

    /// Approves request `id` without a human, for `runbook`, when the policy's
    /// `auto_approve` allows it. Expiry, freezes, the plan hash and SubjectAccessReviews
    /// (as the rule's `run_as` identity) are checked as for a human; the decision is
    /// recorded as automatic.
    pub async fn auto_approve<P: FromRecorded>(
        &self,
        id: &str,
        runbook: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome<P>> {
        let _g = self.exclusive().await?;
        let (state, plan_json) = self.load(id).await?;
        let who = Actor::Runbook(runbook.to_owned()).to_string();
        if state.status != Status::Pending {
            return Ok(Outcome::AlreadyDecided {
                approval_id: id.to_owned(),
                status: state.status,
            });
        }
        let plan = match self.check_plan::<P>(&state, plan_json, None)? {
            Ok(plan) => plan,
            Err(r) => return self.refuse(&state, &who, "auto_approve", r, now).await,
        };
        let run_as = match self.auto_identity(runbook, &state.request.summary) {
            Ok(id) => id,
            Err(r) => return self.refuse(&state, &who, "auto_approve", r, now).await,
        };
        if let Some(r) = self.time_refusal(&state, now) {
            return self.refuse(&state, &who, "auto_approve", r, now).await;
        }
        if let Some(r) = self.review(&state, &run_as, &who, now).await? {
            return self.refuse(&state, &who, "auto_approve", r, now).await;
        }
        let payload = DecisionPayload {
            decision: DecisionKind::Approve,
            identity: run_as.name.clone(),
            kube: run_as.kube.clone(),
            roles: Vec::new(),
            reason: None,
            plan_hash_seen: Some(state.request.plan_hash.to_string()),
            automatic: Some(runbook.to_owned()),
            outcome: Status::Approved,
        };
        self.write_decision(&state, &who, &payload, now).await?;
        self.outcome(id, plan).await
    }

    /// Runs every check again right before execution: the plan's hash, the request still
    /// approved (no later deny), not expired, no freeze, each approver still mapped, not
    /// medic, in a role covering the plan under the current policy, enough of them, and
    /// SubjectAccessReviews as each approver. A failure is recorded and returned as
    /// [`Error::Refused`].
    pub async fn recheck<P: Approvable>(
        &self,
        approved: &Approved<P>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let _g = self.exclusive().await?;
        let id = approved.approval_id().to_owned();
        let (state, _) = self.load(&id).await?;
        let actor = "medic:recheck";
        let refusal = self.recheck_refusal(approved, &state, now).await?;
        match refusal {
            None => Ok(()),
            Some(r) => {
                self.write_refusal(&state, actor, "recheck", &r, now)
                    .await?;
                Err(Error::Refused {
                    approval_id: id,
                    refusal: Box::new(r),
                })
            }
        }
    }

    async fn recheck_refusal<P: Approvable>(
        &self,
        approved: &Approved<P>,
        state: &ApprovalState,
        now: DateTime<Utc>,
    ) -> Result<Option<Refusal>> {
        let summary = &state.request.summary;
        let hash = PlanHash::of(approved.plan())?;
        if hash != state.request.plan_hash || approved.plan_hash() != &state.request.plan_hash {
            return Ok(Some(Refusal::PlanChanged {
                expected: state.request.plan_hash.to_string(),
                found: hash.to_string(),
            }));
        }
        if state.status != Status::Approved {
            return Ok(Some(Refusal::NotApproved {
                status: state.status.to_string(),
            }));
        }
        if let Some(r) = self.time_refusal(state, now) {
            return Ok(Some(r));
        }
        let actor = "medic:recheck";
        if let Some(runbook) = approved.automatic() {
            let run_as = match self.auto_identity(runbook, summary) {
                Ok(id) => id,
                Err(r) => return Ok(Some(r)),
            };
            return self.review(state, &run_as, actor, now).await;
        }
        let mut regranted: Vec<Grant> = Vec::new();
        let mut reviewed: Vec<Identity> = Vec::new();
        for g in &state.grants {
            let Some(id) = self.identities().by_name(&g.identity).cloned() else {
                return Ok(Some(Refusal::Unmapped {
                    actor: g.actor.clone(),
                }));
            };
            if id.agent {
                return Ok(Some(Refusal::AgentCannotApprove { identity: id.name }));
            }
            match self.policy().approver_roles(&id, summary) {
                Ok(roles) => regranted.push(Grant { roles, ..g.clone() }),
                Err(why) => {
                    return Ok(Some(Refusal::RoleNotAllowed {
                        identity: id.name,
                        why,
                    }));
                }
            }
            reviewed.push(id);
        }
        let required = self.policy().requirement(summary);
        let eligible: Vec<String> = self
            .policy()
            .eligible_roles(summary)
            .into_iter()
            .map(|r| r.name.clone())
            .collect();
        let p = progress(&required, &regranted, &eligible);
        if !p.complete {
            return Ok(Some(Refusal::NotApproved {
                status: format!(
                    "short of approvals under the current policy ({} of {}; still needed from {})",
                    p.have,
                    p.need,
                    p.missing_roles.join(", ")
                ),
            }));
        }
        for id in &reviewed {
            if let Some(r) = self.review(state, id, actor, now).await? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn auto_identity(
        &self,
        runbook: &str,
        summary: &PlanSummary,
    ) -> std::result::Result<Identity, Refusal> {
        let policy = self.policy();
        let rule = policy
            .auto_rule(runbook, summary)
            .ok_or_else(|| Refusal::NoAutoRule {
                runbook: runbook.to_owned(),
            })?;
        let id = self
            .identities()
            .by_name(&rule.run_as)
            .cloned()
            .ok_or_else(|| Refusal::Unmapped {
                actor: rule.run_as.clone(),
            })?;
        if id.agent {
            return Err(Refusal::AgentCannotApprove { identity: id.name });
        }
        Ok(id)
    }

    /// Decodes the stored plan and checks its hash (and the hash the decider saw).
    /// `Ok(Err(refusal))` for a mismatch; `Err` when the plan cannot be decoded.
    fn check_plan<P: FromRecorded>(
        &self,
        state: &ApprovalState,
        plan_json: Value,
        seen: Option<&PlanHash>,
    ) -> Result<std::result::Result<P, Refusal>> {
        let expected = &state.request.plan_hash;
        if let Some(seen) = seen.filter(|s| *s != expected) {
            return Ok(Err(Refusal::PlanChanged {
                expected: expected.to_string(),
                found: seen.to_string(),
            }));
        }
        let plan = P::from_recorded(&state.request.summary, plan_json).map_err(|source| {
            Error::PlanType {
                id: state.request.id.clone(),
                source,
            }
        })?;
        let found = PlanHash::of(&plan)?;
        if &found != expected {
            return Ok(Err(Refusal::PlanChanged {
                expected: expected.to_string(),
                found: found.to_string(),
            }));
        }
        Ok(Ok(plan))
    }

    fn time_refusal(&self, state: &ApprovalState, now: DateTime<Utc>) -> Option<Refusal> {
        if now >= state.request.expires_at {
            return Some(Refusal::Expired {
                expires_at: state.request.expires_at,
            });
        }
        self.policy()
            .freeze_at(&state.request.summary, now)
            .map(|f| Refusal::Frozen {
                freeze: f.name.clone(),
                reason: f.reason.clone(),
                until: f.end,
            })
    }

    /// SubjectAccessReviews as `id` for every operation of the plan, stopping at the first
    /// denial; the results are recorded. A review that fails to run counts as denied.
    async fn review(
        &self,
        state: &ApprovalState,
        id: &Identity,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Refusal>> {
        let summary = &state.request.summary;
        let mut results = Vec::new();
        let mut refusal = None;
        for (i, check) in summary.access.iter().enumerate() {
            // Each operation is reviewed by the API server of the cluster it runs on.
            let cluster = check.cluster_or(&summary.cluster);
            let call = self.reviewer.review_boxed(cluster, &id.kube, check);
            let (allowed, reason) = match tokio::time::timeout(REVIEW_TIMEOUT, call).await {
                Ok(Ok(v)) => (v.allowed, v.reason),
                Ok(Err(e)) => (false, format!("review failed: {e}")),
                Err(_) => (false, format!("review timed out after {REVIEW_TIMEOUT:?}")),
            };
            results.push(json!({ "step": i + 1, "cluster": cluster, "check": check, "allowed": allowed, "reason": reason }));
            if !allowed {
                refusal = Some(Refusal::AccessDenied {
                    identity: id.name.clone(),
                    kube_user: id.kube.user.clone(),
                    cluster: cluster.to_owned(),
                    step: i + 1,
                    check: Box::new(check.clone()),
                    reason,
                });
                break;
            }
        }
        let payload = json!({
            "identity": id.name,
            "kube": id.kube,
            "cluster": summary.cluster,
            "clusters": summary.clusters(),
            "allowed": refusal.is_none(),
            "results": results,
        });
        self.log
            .append(
                RecordDraft::new(now, actor, RecordKind::AccessReview, payload)
                    .approval(&state.request.id)
                    .plan_hash(state.request.plan_hash.as_str())
                    .proposal(&summary.plan_id),
            )
            .await?;
        Ok(refusal)
    }

    async fn write_decision(
        &self,
        state: &ApprovalState,
        actor: &str,
        payload: &DecisionPayload,
        now: DateTime<Utc>,
    ) -> Result<AuditRecord> {
        let value = serde_json::to_value(payload).map_err(|e| Error::json("decision", e))?;
        self.log
            .append(
                RecordDraft::new(now, actor, RecordKind::Decision, value)
                    .approval(&state.request.id)
                    .plan_hash(state.request.plan_hash.as_str())
                    .proposal(&state.request.summary.plan_id),
            )
            .await
    }

    /// The outcome after a decision was written: read back from the views.
    async fn outcome<P>(&self, id: &str, plan: P) -> Result<Outcome<P>> {
        let (state, _) = self.load(id).await?;
        match state.status {
            Status::Approved => {
                let Some(last) = state.final_grant().cloned() else {
                    return Err(Error::Invalid {
                        what: "approval state",
                        message: format!("{id} is approved but has no final approval"),
                    });
                };
                Ok(Outcome::Approved(Box::new(Approved {
                    plan,
                    impersonate: last.kube.clone(),
                    audit_seq: last.seq,
                    grants: state.grants,
                    request: state.request,
                })))
            }
            Status::Pending => {
                let p = state.progress();
                Ok(Outcome::Pending {
                    approval_id: id.to_owned(),
                    have: p.have,
                    need: p.need,
                    missing_roles: p.missing_roles,
                })
            }
            Status::Denied => {
                let d = state.denial.unwrap_or_else(|| crate::state::Denial {
                    actor: String::new(),
                    identity: String::new(),
                    reason: String::new(),
                    at: state.request.created,
                    seq: 0,
                });
                Ok(Outcome::Denied {
                    approval_id: id.to_owned(),
                    by: d.identity,
                    reason: d.reason,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;
    use crate::audit::{ExportFilter, export};
    use crate::identity::{IdentityMap, KubeIdentity};
    use crate::plan::{AccessCheck, RecordedPlan, Risk};
    use crate::policy::Policy;
    use crate::review::{AccessReviewer, AccessVerdict, shared};

    struct AllowAll;

    impl AccessReviewer for AllowAll {
        async fn review(
            &self,
            _: &str,
            _: &KubeIdentity,
            _: &AccessCheck,
        ) -> Result<AccessVerdict> {
            Ok(AccessVerdict {
                allowed: true,
                reason: String::new(),
            })
        }
    }

    /// Only this crate can touch an `Approved`'s plan, so only here can a plan be edited
    /// after approval: the re-check before execution must refuse it and record why.
    #[tokio::test]
    async fn a_plan_edited_after_approval_is_refused_before_execution() {
        let dir = tempfile::tempdir().unwrap();
        let ids = IdentityMap::from_yaml(
            "- { name: medic, kube_user: medic, agent: true }\n- { name: alice, kube_user: alice }\n- { name: bob, kube_user: bob }\n",
        )
        .unwrap();
        let book = ApprovalBook::open(dir.path(), Policy::default(), ids, shared(AllowAll))
            .await
            .unwrap();
        let check = AccessCheck {
            verb: "patch".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            subresource: Some("scale".into()),
            namespace: Some("ai".into()),
            name: Some("llama".into()),
            cluster: None,
        };
        let body = json!({"replicas": 3});
        let plan = RecordedPlan {
            summary: PlanSummary {
                plan_id: "p1".into(),
                hash: PlanHash::of(&body).unwrap(),
                playbook: "scale".into(),
                cluster: "c1".into(),
                namespaces: vec!["ai".into()],
                risk: Risk::Low,
                access: vec![check],
                title: "scale llama to 3".into(),
            },
            plan: body,
        };
        let now = Utc::now();
        let req = book
            .request(&plan, &"alice".parse().unwrap(), now)
            .await
            .unwrap();
        let out = book
            .decide::<RecordedPlan>(
                &req.id,
                &"bob".parse().unwrap(),
                Decision::Approve,
                &req.plan_hash,
                now,
            )
            .await
            .unwrap();
        let Outcome::Approved(approved) = out else {
            panic!("expected approval, got {}", out.describe());
        };
        book.recheck(&*approved, now).await.unwrap();

        let mut edited = (*approved).clone();
        edited.plan.plan["replicas"] = json!(30);
        let found = PlanHash::of(&edited.plan).unwrap();
        match book.recheck(&edited, now).await {
            Err(Error::Refused { refusal, .. }) => assert_eq!(
                *refusal,
                Refusal::PlanChanged {
                    expected: req.plan_hash.to_string(),
                    found: found.to_string(),
                }
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let last = export(book.audit().path(), ExportFilter::default())
            .unwrap()
            .last()
            .unwrap()
            .unwrap();
        assert_eq!(last.kind, RecordKind::Refusal);
        assert_eq!(last.payload["stage"], "recheck");
        assert!(
            last.payload["message"]
                .as_str()
                .unwrap()
                .starts_with("the plan changed since it was shown; re-review"),
            "{last:?}"
        );
        // The untouched approval still holds.
        book.recheck(&*approved, now).await.unwrap();
    }
}
