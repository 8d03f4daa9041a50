//! Who may not approve, and when not: each refusal executes nothing and is recorded.

use chrono::Duration;
use medic_approvals::audit::{ExportFilter, RecordKind, export};
use medic_approvals::*;
use pretty_assertions::assert_eq;

use crate::common::*;
use crate::{approved, last_refusal_message, refused};

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
