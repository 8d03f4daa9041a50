#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The smaller playbooks against the sandbox, and automatic undo after a failed post-check.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use medic_approvals::audit::RecordKind;
use medic_playbooks::{Operation, Outcome, StepOutcome, propose};
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn a_failed_post_check_runs_the_undo_plan() {
    let w = world("gpu-xid79").await;
    // Nothing in the bundle makes a 7th replica Ready, so the rollout check must fail.
    let plan = propose(&w.ctx(), "scale", json!({"cluster": "aks-eu-west", "namespace": "ai", "deployment": "llama", "replicas": 7, "deadline_seconds": 1}))
        .await
        .unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    match &report.outcome {
        Outcome::RolledBack { reason, undo_ok } => {
            assert!(reason.contains("rollout complete"), "{reason}");
            assert!(undo_ok);
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert!(matches!(report.undo[0].1, StepOutcome::Applied { .. }));
    let dep = w
        .sandbox
        .object("aks-eu-west", "apps/v1", "Deployment", "ai", "llama")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], 6);
    let scales: Vec<_> = w
        .successful_mutations()
        .into_iter()
        .filter(|m| m.subresource == "scale")
        .collect();
    assert_eq!(scales.len(), 2, "scale up, then undo");
    assert!(
        scales
            .iter()
            .all(|m| m.effective_user == "bob@corp.example")
    );
    let recs = records(&book, approved.approval_id());
    assert_eq!(count(&recs, RecordKind::PostCheck), 1);
    // "undo started" plus the undo step's outcome; the undo step had its own intent.
    assert_eq!(count(&recs, RecordKind::Undo), 2);
    assert_eq!(count(&recs, RecordKind::ExecutionIntent), 2);
    assert_verified(&book);
}

#[tokio::test]
async fn uncordon_executes_and_smaller_playbooks_plan_with_dry_runs() {
    let w = world("gpu-xid79").await;
    let nodes: Api<Node> = Api::all(client_as(&w, "aks-eu-west", "alice").await);
    nodes
        .patch(
            "gpu-node-4",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    let plan = propose(
        &w.ctx(),
        "uncordon",
        json!({"cluster": "aks-eu-west", "node": "gpu-node-4"}),
    )
    .await
    .unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let node = w
        .sandbox
        .object("aks-eu-west", "v1", "Node", "", "gpu-node-4")
        .unwrap();
    assert!(node["spec"]["unschedulable"].is_null());

    let restart = propose(
        &w.ctx(),
        "rollout-restart",
        json!({"cluster": "aks-eu-west", "namespace": "ai", "deployment": "llama"}),
    )
    .await
    .unwrap();
    assert!(restart.dry_run_ok(), "{}", restart.render());
    assert!(
        restart.dry_run[0]
            .diff
            .contains("+        kubectl.kubernetes.io/restartedAt: 2026-06-23T12:00:00Z"),
        "{}",
        restart.dry_run[0].diff
    );

    let mem = propose(&w.ctx(), "raise-memory-limit", json!({"cluster": "aks-eu-west", "namespace": "ai", "deployment": "llama", "container": "vllm"})).await.unwrap();
    assert!(mem.dry_run_ok(), "{}", mem.render());
    assert!(mem.title.contains("from 64Gi to 81920Mi"), "{}", mem.title);
    let too_much = propose(&w.ctx(), "raise-memory-limit", json!({"cluster": "aks-eu-west", "namespace": "ai", "deployment": "llama", "container": "vllm", "increase_percent": 300})).await;
    assert!(too_much.unwrap_err().to_string().contains("1..=100"));

    let skew = propose(&w.ctx(), "gpu-rebalance", json!({"cluster": "aks-eu-west", "node": "gpu-node-1", "mode": "skew", "selector": "app=llama", "move_pods": 1})).await.unwrap();
    assert!(skew.dry_run_ok(), "{}", skew.render());
    let ops: Vec<&str> = skew
        .steps
        .iter()
        .map(|s| match s.op {
            Operation::Cordon { .. } => "cordon",
            Operation::Evict { .. } => "evict",
            Operation::WaitFor { .. } => "wait",
            Operation::Uncordon { .. } => "uncordon",
            _ => "other",
        })
        .collect();
    assert_eq!(ops, vec!["cordon", "evict", "wait", "uncordon"]);

    let unknown = propose(&w.ctx(), "reboot-cluster", json!({}))
        .await
        .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("known playbooks: gpu-rebalance"),
        "{unknown}"
    );
}

#[tokio::test]
async fn kubevirt_restart_and_migrate_plans() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bundle_dir("gpu-xid79"), tmp.path());
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm.yaml"),
        tmp.path().join("clusters/aks-eu-west/objects/vm.yaml"),
    )
    .unwrap();
    let w = world_from(tmp.path()).await;
    let restart = propose(
        &w.ctx(),
        "restart-vm",
        json!({"cluster": "aks-eu-west", "namespace": "ai", "vm": "build-win11"}),
    )
    .await
    .unwrap();
    assert!(restart.dry_run_ok(), "{}", restart.render());
    assert!(
        restart.dry_run[0].diff.contains("+  runStrategy: Halted"),
        "{}",
        restart.dry_run[0].diff
    );
    let migrate = propose(
        &w.ctx(),
        "migrate-vm",
        json!({"cluster": "aks-eu-west", "namespace": "ai", "vm": "build-win11"}),
    )
    .await
    .unwrap();
    assert!(migrate.dry_run_ok(), "{}", migrate.render());
    assert!(migrate.title.contains("off gpu-node-1"));
    let s = &migrate.steps[0];
    assert_eq!(
        s.access().unwrap().unwrap().resource,
        "virtualmachineinstancemigrations"
    );
    assert_eq!(w.mutations(), vec![]);
}
