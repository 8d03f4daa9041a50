//! How decisions add up: N-of-M, deny wins, execution freezes the decision, withdrawal, auto-approval, the CLI path.

use chrono::Duration;
use medic_approvals::audit::{ExportFilter, RecordKind, export, verify};
use medic_approvals::*;
use pretty_assertions::assert_eq;

use crate::common::*;
use crate::{approved, refused};

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
    let reopened = crate::common::book(dir.path()).await;
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
