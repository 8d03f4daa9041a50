#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plans that act on several clusters (failover: scale a standby in one, shift traffic in
//! another): every SubjectAccessReview goes to its step's own cluster, a role must cover
//! every cluster, and a freeze on any of them blocks the plan.

mod common;

use common::*;
use medic_approvals::audit::{ExportFilter, RecordKind, export};
use medic_approvals::*;
use pretty_assertions::assert_eq;

const WEST: &str = "aks-eu-west";
const NORTH: &str = "aks-eu-north";

/// Scale the standby in `WEST`, then patch the HTTPRoute in `NORTH`.
fn failover_plan() -> TestPlan {
    let mut scale = check("patch", "deployments", Some("scale"), "ai", "llama");
    scale.cluster = Some(WEST.into());
    let mut route = check("patch", "httproutes", None, "ai", "llama");
    route.group = "gateway.networking.k8s.io".into();
    route.cluster = Some(NORTH.into());
    TestPlan {
        id: "failover-llama".into(),
        playbook: "failover".into(),
        cluster: WEST.into(),
        namespace: "ai".into(),
        risk: Risk::Medium,
        steps: vec![scale, route],
        note: "fail llama back to westeurope".into(),
    }
}

fn review_records(book: &ApprovalBook) -> Vec<serde_json::Value> {
    let filter = ExportFilter {
        kind: Some(RecordKind::AccessReview),
        ..Default::default()
    };
    export(book.audit().path(), filter)
        .unwrap()
        .map(|r| r.unwrap().payload)
        .collect()
}

#[tokio::test]
async fn each_review_goes_to_the_cluster_of_its_step() {
    let dir = tempfile::tempdir().unwrap();
    // alice may do anything in west, nothing in north.
    let reviewer = std::sync::Arc::new(FakeReviewer {
        deny_on: vec![(NORTH.into(), "alice@corp.example".into())],
        ..Default::default()
    });
    let book = ApprovalBook::open(
        dir.path(),
        policy(),
        identities(),
        reviewer.clone() as SharedReviewer,
    )
    .await
    .unwrap();
    let plan = failover_plan();
    assert_eq!(plan.summary().clusters(), vec![WEST, NORTH]);
    let req = book.request(&plan, &actor("medic"), t0()).await.unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("slack:U01ALICE"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    match out {
        Outcome::Refused {
            reason:
                Refusal::AccessDenied {
                    ref cluster,
                    step,
                    ref check,
                    ..
                },
            ..
        } => {
            assert_eq!((cluster.as_str(), step), (NORTH, 2));
            assert_eq!(check.resource, "httproutes");
        }
        ref other => panic!("expected an access denial, got {}", other.describe()),
    }
    assert_eq!(*reviewer.clusters.lock().unwrap(), vec![WEST, NORTH]);
    let reviews = review_records(&book);
    assert_eq!(reviews[0]["results"][0]["cluster"], WEST);
    assert_eq!(reviews[0]["results"][1]["cluster"], NORTH);
    assert_eq!(reviews[0]["results"][1]["allowed"], false);
    assert!(
        book.get(&req.id).await.unwrap().unwrap().status == Status::Pending,
        "a refused approval changes nothing"
    );

    // bob passes on both clusters; the re-check before execution asks both again.
    let a = match book
        .decide::<TestPlan>(
            &req.id,
            &actor("teams:29:1bob"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap()
    {
        Outcome::Approved(a) => *a,
        other => panic!("expected approval, got {}", other.describe()),
    };
    book.recheck(&a, t0()).await.unwrap();
    assert_eq!(
        *reviewer.clusters.lock().unwrap(),
        vec![WEST, NORTH, WEST, NORTH, WEST, NORTH]
    );
}

#[tokio::test]
async fn a_role_must_cover_every_cluster_and_a_freeze_on_any_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
version: 1
roles:
  - name: west-oncall
    members: ["group:sre"]
    clusters: [aks-eu-west]
    max_risk: critical
  - name: leads
    members: [bob]
    max_risk: critical
freezes:
  - name: north-maintenance
    start: "2026-06-24T00:00:00Z"
    end: "2026-06-25T00:00:00Z"
    clusters: [aks-eu-north]
    reason: gateway upgrade in swedencentral
"#;
    let policy = Policy::parse(text, "policy.yaml", &identities()).unwrap();
    let book = ApprovalBook::open(
        dir.path(),
        policy,
        identities(),
        shared(FakeReviewer::default()),
    )
    .await
    .unwrap();
    let plan = failover_plan();
    let req = book.request(&plan, &actor("medic"), t0()).await.unwrap();
    assert_eq!(req.eligible_roles, vec!["leads".to_owned()]);
    let r = match book
        .decide::<TestPlan>(
            &req.id,
            &actor("slack:U01ALICE"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap()
    {
        Outcome::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {}", other.describe()),
    };
    assert_eq!(
        r.to_string(),
        "alice may not approve this plan: role west-oncall may not approve on cluster aks-eu-north"
    );

    // The plan's own cluster is not frozen, the other one is: approval is refused.
    let frozen_day = t0() + chrono::Duration::hours(13);
    let req = book
        .request(&plan, &actor("medic"), frozen_day)
        .await
        .unwrap();
    let r = match book
        .decide::<TestPlan>(
            &req.id,
            &actor("teams:29:1bob"),
            Decision::Approve,
            &req.plan_hash,
            frozen_day,
        )
        .await
        .unwrap()
    {
        Outcome::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {}", other.describe()),
    };
    assert!(
        matches!(r, Refusal::Frozen { ref freeze, .. } if freeze == "north-maintenance"),
        "{r:?}"
    );
}
