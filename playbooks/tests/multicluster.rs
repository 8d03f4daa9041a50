#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A failover across two clusters against the sandbox: the standby is scaled in
//! aks-eu-west and the traffic shifted by the HTTPRoute in aks-eu-north. Every
//! SubjectAccessReview goes to its step's own cluster — an approver allowed in one cluster
//! but not in the other is refused — and execution acts on each cluster as the approver.

mod common;

use common::*;
use medic_approvals::audit::RecordKind;
use medic_approvals::{Decision, Outcome as BookOutcome, Refusal};
use medic_playbooks::{Operation, Outcome, Plan, propose};
use pretty_assertions::assert_eq;
use serde_json::json;

const WEST: &str = "aks-eu-west";
const NORTH: &str = "aks-eu-north";

/// eu-failover after the failover: aks-eu-north's route sends everything to its local
/// standby, and the way back to westeurope is a two-cluster plan. In aks-eu-north only
/// platform-leads may change the route (sre lost its binding there); aks-eu-west is
/// unchanged. Once aks-eu-west's llama is scaled to 6, its replicas become Ready.
fn failback_bundle() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bundle_dir("eu-failover"), tmp.path());
    let edit = |rel: &str, from: &str, to: &str| {
        let f = tmp.path().join(rel);
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains(from), "{rel} lacks {from:?}");
        std::fs::write(&f, text.replacen(from, to, 1)).unwrap();
    };
    let gateway = "clusters/aks-eu-north/objects/gateway.yaml";
    edit(
        gateway,
        "name: llama-westeurope\n          port: 8000\n          weight: 100",
        "name: llama-westeurope\n          port: 8000\n          weight: 0",
    );
    edit(
        gateway,
        "kind: Service\n          name: llama\n          port: 8000\n          weight: 0",
        "kind: Service\n          name: llama\n          port: 8000\n          weight: 100",
    );
    edit(
        "clusters/aks-eu-north/objects/rbac.yaml",
        "  name: oncall-remediate\n  namespace: ai\n  creationTimestamp: '2026-04-07T08:30:00Z'\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: oncall-remediate\nsubjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: sre\n",
        "  name: oncall-remediate\n  namespace: ai\n  creationTimestamp: '2026-04-07T08:30:00Z'\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: oncall-remediate\nsubjects:\n",
    );
    edit(
        "scenario.yaml",
        "\nexpected:\n",
        "
  - when:
      - { cluster: aks-eu-west, kind: Deployment, namespace: ai, name: llama, path: spec.replicas, equals: 6 }
    then:
      - patch:
          cluster: aks-eu-west
          kind: Deployment
          namespace: ai
          name: llama
          merge:
            status: { replicas: 6, updatedReplicas: 6, readyReplicas: 6, availableReplicas: 6 }
expected:
",
    );
    tmp
}

/// Clusters of the SubjectAccessReviews the sandbox received, in order.
fn sar_clusters(w: &World) -> Vec<String> {
    w.sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.resource == "subjectaccessreviews")
        .map(|r| r.cluster)
        .collect()
}

#[tokio::test]
async fn a_two_cluster_failover_is_reviewed_and_executed_on_each_cluster() {
    let tmp = failback_bundle();
    let w = world_from(tmp.path()).await;
    let mut ctx = w.ctx();
    ctx.dry_run_as = Some(w.kube("bob"));
    let plan: Plan = propose(
        &ctx,
        "failover",
        json!({
            "route_cluster": NORTH, "route_namespace": "ai", "route": "llama",
            "to_backend": "llama-westeurope",
            "standby_cluster": WEST, "standby_namespace": "ai", "standby_deployment": "llama",
            "replicas": 6,
        }),
    )
    .await
    .unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    let clusters: Vec<&str> = plan.steps.iter().map(|s| s.cluster.as_str()).collect();
    assert_eq!(clusters, vec![WEST, WEST, NORTH]);
    assert!(matches!(plan.steps[0].op, Operation::Scale { .. }));
    let access = plan.access_checks();
    let on: Vec<(&str, &str)> = access
        .iter()
        .map(|a| (a.cluster.as_deref().unwrap(), a.resource.as_str()))
        .collect();
    assert_eq!(on, vec![(WEST, "deployments"), (NORTH, "httproutes")]);

    let book = w.book(POLICY).await;
    let req = book.request(&plan, &actor("carol"), w.now()).await.unwrap();
    assert_eq!(req.summary.clusters(), vec![WEST, NORTH]);
    // alice may scale in aks-eu-west but not touch the route in aks-eu-north: the second
    // review, asked of aks-eu-north, refuses her.
    let out = book
        .decide::<Plan>(
            &req.id,
            &actor("alice"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap();
    match &out {
        BookOutcome::Refused {
            reason:
                Refusal::AccessDenied {
                    cluster,
                    step,
                    check,
                    ..
                },
            ..
        } => {
            assert_eq!((cluster.as_str(), *step), (NORTH, 2));
            assert_eq!(check.resource, "httproutes");
        }
        other => panic!("expected an access denial, got {}", other.describe()),
    }
    assert_eq!(sar_clusters(&w), vec![WEST, NORTH]);
    let recs = records(&book, &req.id);
    assert_eq!(count(&recs, RecordKind::Refusal), 1);
    let review = recs
        .iter()
        .find(|r| r.kind == RecordKind::AccessReview)
        .unwrap();
    assert_eq!(review.payload["results"][0]["cluster"], WEST);
    assert_eq!(review.payload["results"][0]["allowed"], true);
    assert_eq!(review.payload["results"][1]["cluster"], NORTH);
    assert_eq!(review.payload["results"][1]["allowed"], false);
    assert_eq!(w.mutations(), vec![]);

    // bob passes on both; execution re-checks on both, then acts on each cluster as bob.
    let approved = match book
        .decide::<Plan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap()
    {
        BookOutcome::Approved(a) => *a,
        other => panic!("expected approval, got {}", other.describe()),
    };
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_eq!(
        sar_clusters(&w),
        vec![WEST, NORTH, WEST, NORTH, WEST, NORTH]
    );
    let muts = w.successful_mutations();
    let done: Vec<(&str, &str, &str)> = muts
        .iter()
        .map(|m| {
            (
                m.cluster.as_str(),
                m.resource.as_str(),
                m.effective_user.as_str(),
            )
        })
        .collect();
    assert_eq!(
        done,
        vec![
            (WEST, "deployments", "bob@corp.example"),
            (NORTH, "httproutes", "bob@corp.example"),
        ]
    );
    let route = w
        .sandbox
        .object(
            NORTH,
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "ai",
            "llama",
        )
        .unwrap();
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 100);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][1]["weight"], 0);
    let intents: Vec<String> = records(&book, &req.id)
        .iter()
        .filter(|r| r.kind == RecordKind::ExecutionIntent)
        .map(|r| r.payload["access"]["cluster"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(intents, vec![WEST, NORTH]);
    assert_verified(&book);
}
