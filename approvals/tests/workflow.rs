#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The approval workflow end to end over a real audit log and sled views.

mod common;

use chrono::Duration;
use common::*;
use medic_approvals::audit::{ExportFilter, RecordKind, export, verify};
use medic_approvals::*;
use pretty_assertions::assert_eq;

fn refused<P>(o: Outcome<P>) -> Refusal {
    match o {
        Outcome::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got: {}", other.describe()),
    }
}

fn approved<P>(o: Outcome<P>) -> Approved<P> {
    match o {
        Outcome::Approved(a) => *a,
        other => panic!("expected approval, got: {}", other.describe()),
    }
}

async fn last_refusal_message(book: &ApprovalBook) -> String {
    let filter = ExportFilter {
        kind: Some(RecordKind::Refusal),
        ..Default::default()
    };
    let last = export(book.audit().path(), filter)
        .unwrap()
        .last()
        .unwrap()
        .unwrap();
    last.payload["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn self_approval_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let p = plan("scale", "ai", Risk::Medium);
    let req = book
        .request(&p, &actor("slack:U01ALICE"), t0())
        .await
        .unwrap();
    assert_eq!(req.requester_identity.as_deref(), Some("alice"));
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("terminal:alice"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    let r = refused(out);
    assert_eq!(
        r,
        Refusal::SelfApproval {
            identity: "alice".into()
        }
    );
    assert_eq!(
        last_refusal_message(&book).await,
        "alice requested this plan and cannot approve it; ask someone else in an eligible role"
    );
    assert_eq!(
        book.get(&req.id).await.unwrap().unwrap().status,
        Status::Pending
    );
}

#[tokio::test]
async fn medic_cannot_approve() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(
            &plan("scale", "ai", Risk::Low),
            &actor("slack:U01ALICE"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("medic"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "medic is medic's own identity, which can never approve"
    );
}

#[tokio::test]
async fn unmapped_identity_can_read_but_not_approve() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("scale", "ai", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("slack:U0NOBODY"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "slack:U0NOBODY is not mapped to a Kubernetes identity; unmapped users can read but never approve (add them to the identity map)"
    );
    // Reading works.
    assert_eq!(book.list_pending(t0()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn role_not_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("scale", "ai", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("dave"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "dave may not approve this plan: dave holds no approver role"
    );

    let crit = book
        .request(
            &plan("failover", "ai", Risk::Critical),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &crit.id,
            &actor("slack:U03CAROL"),
            Decision::Approve,
            &crit.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "carol may not approve this plan: role sre may approve up to risk high, the plan is critical"
    );
}

#[tokio::test]
async fn failed_access_review_names_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let reviewer = FakeReviewer {
        deny: vec![("carol@corp.example".into(), "create".into(), "pods".into())],
        ..Default::default()
    };
    let book = book_with(dir.path(), reviewer).await;
    let req = book
        .request(
            &plan("gpu-rebalance", "ai", Risk::Medium),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("slack:U03CAROL"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "SubjectAccessReview on cluster aks-eu-west denied step 2 for carol (as carol@corp.example): create pods/eviction llama-0 in namespace ai (RBAC: no rule allows it)"
    );
    // The SAR results are in the log before the refusal.
    let kinds: Vec<RecordKind> = export(book.audit().path(), ExportFilter::default())
        .unwrap()
        .map(|r| r.unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            RecordKind::ApprovalRequested,
            RecordKind::AccessReview,
            RecordKind::Refusal
        ]
    );
}

#[tokio::test]
async fn expired_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("scale", "ai", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    assert_eq!(req.expires_at, t0() + Duration::minutes(15));
    let later = t0() + Duration::minutes(15);
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            later,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r,
        Refusal::Expired {
            expires_at: req.expires_at
        }
    );
    assert!(book.list_pending(later).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_plan_changed_by_one_byte_needs_a_new_approval() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let p = plan("scale", "ai", Risk::Low);
    let req = book.request(&p, &actor("medic"), t0()).await.unwrap();
    let mut edited = p.clone();
    edited.note = "y".into();
    let seen = PlanHash::of(&edited).unwrap();
    let r = refused(
        book.decide::<TestPlan>(&req.id, &actor("bob"), Decision::Approve, &seen, t0())
            .await
            .unwrap(),
    );
    assert!(
        r.to_string()
            .starts_with("the plan changed since it was shown; re-review (expected plan hash "),
        "{r}"
    );
    assert_eq!(
        r,
        Refusal::PlanChanged {
            expected: req.plan_hash.to_string(),
            found: seen.to_string()
        }
    );
}

#[tokio::test]
async fn freeze_blocks_approval_and_execution() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let in_freeze = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 6, 24, 9, 0, 0).unwrap();
    let req = book
        .request(
            &plan("scale", "payments", Risk::Low),
            &actor("medic"),
            in_freeze,
        )
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            in_freeze,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r.to_string(),
        "change freeze payments-freeze is active until 2026-06-25 00:00:00 UTC: quarter close"
    );

    // Approved just before the freeze starts, then executed inside it: the re-check refuses.
    let before = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 6, 23, 23, 55, 0).unwrap();
    let req = book
        .request(
            &plan("scale", "payments", Risk::Low),
            &actor("medic"),
            before,
        )
        .await
        .unwrap();
    let a = approved(
        book.decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            before,
        )
        .await
        .unwrap(),
    );
    book.recheck(&a, before).await.unwrap();
    let at = before + Duration::minutes(6);
    match book.recheck(&a, at).await {
        Err(Error::Refused { refusal, .. }) => assert!(
            matches!(*refusal, Refusal::Frozen { ref freeze, .. } if freeze == "payments-freeze"),
            "{refusal}"
        ),
        other => panic!("expected a freeze refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn two_of_m_pending_then_approved_and_duplicates_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let p = plan("gpu-rebalance", "ai", Risk::High);
    let req = book.request(&p, &actor("medic"), t0()).await.unwrap();
    assert_eq!(req.eligible_roles, vec!["sre", "leads"]);
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("slack:U03CAROL"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    match out {
        Outcome::Pending {
            have,
            need,
            missing_roles,
            ..
        } => {
            assert_eq!((have, need), (1, 2));
            assert_eq!(missing_roles, vec!["sre", "leads"]);
        }
        other => panic!("{}", other.describe()),
    }
    // Carol again (from another front end): still one.
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("carol"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::Pending {
                have: 1,
                need: 2,
                ..
            }
        ),
        "{}",
        out.describe()
    );
    let a = approved(
        book.decide::<TestPlan>(
            &req.id,
            &actor("slack:U01ALICE"),
            Decision::Approve,
            &req.plan_hash,
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap(),
    );
    assert_eq!(a.plan(), &p);
    let who: Vec<&str> = a.approvers().iter().map(|g| g.identity.as_str()).collect();
    assert_eq!(who, vec!["carol", "alice"]);
    // The final approver is impersonated.
    assert_eq!(
        a.impersonate(),
        &KubeIdentity {
            user: "alice@corp.example".into(),
            groups: vec!["sre".into()]
        }
    );
    assert!(a.audit_seq() > 0);
    book.recheck(&a, t0() + Duration::minutes(2)).await.unwrap();
    assert!(book.list_pending(t0()).await.unwrap().is_empty());
    let shown = book.get(&req.id).await.unwrap().unwrap().describe(t0());
    let first = shown.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}  approved  [high risk]  gpu-rebalance in ai  2/2 approvals  expires 2026-06-23T12:15:00+00:00",
            req.id
        )
    );
    assert!(
        shown.contains("  requires:   2 approval(s) from sre, leads (two-person-rule)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  step 2:     create pods/eviction llama-0 in namespace ai\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  approved:   by alice (alice@corp.example) at "),
        "{shown}"
    );

    // After expiry the approval no longer holds.
    let late = t0() + Duration::minutes(20);
    assert!(
        matches!(book.recheck(&a, late).await, Err(Error::Refused { refusal, .. }) if matches!(*refusal, Refusal::Expired { .. }))
    );

    // A deny before execution revokes it.
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Deny {
                reason: "wrong node".into(),
            },
            &req.plan_hash,
            t0() + Duration::minutes(3),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Denied { .. }), "{}", out.describe());
    match book.recheck(&a, t0() + Duration::minutes(3)).await {
        Err(Error::Refused { refusal, .. }) => {
            assert_eq!(refusal.to_string(), "the request is denied, not approved")
        }
        other => panic!("{other:?}"),
    }
    assert!(verify(book.audit().path()).unwrap().is_ok());
}

#[tokio::test]
async fn deny_wins_over_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("rollback", "ai", Risk::High), &actor("medic"), t0())
        .await
        .unwrap();
    book.decide::<TestPlan>(
        &req.id,
        &actor("carol"),
        Decision::Approve,
        &req.plan_hash,
        t0(),
    )
    .await
    .unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("teams:29:1bob"),
            Decision::Deny {
                reason: "GitOps-managed".into(),
            },
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    match out {
        Outcome::Denied { by, reason, .. } => {
            assert_eq!((by.as_str(), reason.as_str()), ("bob", "GitOps-managed"))
        }
        other => panic!("{}", other.describe()),
    }
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("alice"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::AlreadyDecided {
                status: Status::Denied,
                ..
            }
        ),
        "{}",
        out.describe()
    );
    let state = book.get(&req.id).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Denied);
    assert_eq!(state.grants.len(), 1);
    // Someone outside the eligible roles cannot deny.
    let req2 = book
        .request(&plan("scale", "ai", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    let r = refused(
        book.decide::<TestPlan>(
            &req2.id,
            &actor("dave"),
            Decision::Deny {
                reason: "no".into(),
            },
            &req2.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert!(matches!(r, Refusal::RoleNotAllowed { .. }));
}

#[tokio::test]
async fn execution_intent_freezes_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("scale", "ai", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    let a = approved(
        book.decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    book.recheck(&a, t0()).await.unwrap();
    book.record(
        audit::RecordDraft::new(
            t0(),
            "medic",
            RecordKind::ExecutionIntent,
            serde_json::json!({"step": 1}),
        )
        .approval(a.approval_id()),
    )
    .await
    .unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("alice"),
            Decision::Deny {
                reason: "late".into(),
            },
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::AlreadyDecided {
                status: Status::Approved,
                ..
            }
        ),
        "{}",
        out.describe()
    );
    assert!(book.get(&req.id).await.unwrap().unwrap().executing);
    assert_eq!(book.get(&req.id).await.unwrap().unwrap().finished, None);
    // The executor's final record is materialised, so every process reading the log (another
    // terminal, the server) sees how the execution ended, not a perpetual "executing".
    book.record(
        audit::RecordDraft::new(
            t0(),
            "medic",
            RecordKind::Other("execution_finished".into()),
            serde_json::json!({"outcome": {"outcome": "rolled_back", "reason": "post-check failed"}}),
        )
        .approval(a.approval_id()),
    )
    .await
    .unwrap();
    let state = book.get(&req.id).await.unwrap().unwrap();
    assert_eq!(state.finished.as_deref(), Some("undone"));
    // And the views rebuilt from the log agree.
    drop(book);
    std::fs::remove_dir_all(dir.path().join(medic_approvals::VIEWS_DIR)).unwrap();
    let reopened = common::book(dir.path()).await;
    assert_eq!(
        reopened
            .get(&req.id)
            .await
            .unwrap()
            .unwrap()
            .finished
            .as_deref(),
        Some("undone")
    );
}

#[tokio::test]
async fn requester_may_withdraw() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(&plan("scale", "ai", Risk::Low), &actor("dave"), t0())
        .await
        .unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("dave"),
            Decision::Deny {
                reason: "not needed".into(),
            },
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Denied { .. }));
}

#[tokio::test]
async fn auto_approval_for_a_low_risk_runbook_plan() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let req = book
        .request(
            &plan("rollout-restart", "ai", Risk::Low),
            &actor("runbook:crashloop"),
            t0(),
        )
        .await
        .unwrap();
    let a = approved(
        book.auto_approve::<TestPlan>(&req.id, "crashloop", t0())
            .await
            .unwrap(),
    );
    assert_eq!(a.automatic(), Some("crashloop"));
    assert_eq!(a.impersonate().user, "system:serviceaccount:medic:runbooks");
    book.recheck(&a, t0()).await.unwrap();
    let decision = export(
        book.audit().path(),
        ExportFilter {
            kind: Some(RecordKind::Decision),
            ..Default::default()
        },
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    assert_eq!(decision.actor, "runbook:crashloop");
    assert_eq!(decision.payload["automatic"], "crashloop");

    // Other runbooks, playbooks or risks need a human.
    let req = book
        .request(
            &plan("rollout-restart", "ai", Risk::Medium),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.auto_approve::<TestPlan>(&req.id, "crashloop", t0())
            .await
            .unwrap(),
    );
    assert_eq!(
        r,
        Refusal::NoAutoRule {
            runbook: "crashloop".into()
        }
    );
    let req = book
        .request(
            &plan("rollout-restart", "ai", Risk::Low),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.auto_approve::<TestPlan>(&req.id, "other", t0())
            .await
            .unwrap(),
    );
    assert_eq!(
        r,
        Refusal::NoAutoRule {
            runbook: "other".into()
        }
    );
}

#[tokio::test]
async fn default_policy_auto_approval_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let book = ApprovalBook::open(
        dir.path(),
        Policy::default(),
        identities(),
        shared(FakeReviewer::default()),
    )
    .await
    .unwrap();
    let req = book
        .request(
            &plan("rollout-restart", "ai", Risk::Low),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    let r = refused(
        book.auto_approve::<TestPlan>(&req.id, "crashloop", t0())
            .await
            .unwrap(),
    );
    assert!(matches!(r, Refusal::NoAutoRule { .. }));
    // Default: any mapped human approves low risk alone, high risk needs two.
    let a = book
        .decide::<TestPlan>(
            &req.id,
            &actor("dave"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(a, Outcome::Approved(_)));
    let req = book
        .request(&plan("rollback", "ai", Risk::High), &actor("medic"), t0())
        .await
        .unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("dave"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Outcome::Pending {
                have: 1,
                need: 2,
                ..
            }
        ),
        "{}",
        out.describe()
    );
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Approved(_)));
}

#[tokio::test]
async fn cli_can_decide_without_the_plan_type() {
    let dir = tempfile::tempdir().unwrap();
    let book = book(dir.path()).await;
    let p = plan("scale", "ai", Risk::Low);
    let req = book.request(&p, &actor("medic"), t0()).await.unwrap();
    let shown = book.recorded_plan(&req.id).await.unwrap().unwrap();
    assert_eq!(PlanHash::of(&shown).unwrap(), req.plan_hash);
    let a = approved(
        book.decide::<RecordedPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(a.plan().plan, serde_json::to_value(&p).unwrap());
    book.recheck(&a, t0()).await.unwrap();
    assert!(matches!(
        book.decide::<RecordedPlan>(
            "nope",
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            t0()
        )
        .await,
        Err(Error::UnknownApproval { .. })
    ));
}
