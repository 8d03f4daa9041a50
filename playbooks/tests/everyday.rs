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

fn scenario_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evals/scenarios")
        .join(name)
}

#[tokio::test]
async fn migrate_vm_cancels_a_stuck_migration_before_starting_its_own() {
    let w = world_from(&scenario_dir("kubevirt-migration-stuck")).await;
    let params = json!({"cluster": "ocp-virt-ams2", "namespace": "vms", "vm": "pg-analytics-02"});

    // The stuck migration has been Scheduling for 40 minutes: with a longer patience it is
    // still "in flight", and the plan waits rather than cancelling someone's migration.
    let mut patient = params.clone();
    patient["stuck_after_minutes"] = 60.into();
    let err = propose(&w.ctx(), "migrate-vm", patient).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("pg-analytics-02-to-worker-3 of VM vms/pg-analytics-02 is in flight (phase Scheduling for 40 min)"),
        "{err}"
    );

    let plan = propose(&w.ctx(), "migrate-vm", params).await.unwrap();
    let ops: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match &s.op {
            Operation::Delete { .. } => "delete",
            Operation::WaitFor { .. } => "wait",
            Operation::Create { .. } => "create",
            _ => "other",
        })
        .collect();
    assert_eq!(ops, vec!["delete", "wait", "create"], "{}", plan.render());
    assert!(
        plan.rationale
            .contains("pinned by addedNodeSelector kubernetes.io/hostname=worker-3"),
        "{}",
        plan.rationale
    );
    // KubeVirt refuses a second migration while the stuck one exists: the create's dry-run
    // is deferred until the steps before it ran, and the plan still counts as dry-run clean.
    assert!(
        !plan.dry_run[2].ok && plan.dry_run[2].deferred,
        "{:?}",
        plan.dry_run
    );
    assert_eq!(plan.dry_run[2].api_status, 422);
    assert!(plan.dry_run_ok(), "{}", plan.render());
    assert!(
        plan.render().contains("dry-run deferred (422)"),
        "{}",
        plan.render()
    );

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let gone = w.sandbox.object(
        "ocp-virt-ams2",
        "kubevirt.io/v1",
        "VirtualMachineInstanceMigration",
        "vms",
        "pg-analytics-02-to-worker-3",
    );
    assert!(
        gone.is_none(),
        "the stuck migration is still there: {gone:?}"
    );
    let muts: Vec<(String, String, u16)> = w
        .mutations()
        .into_iter()
        .map(|m| (m.verb, m.effective_user, m.status))
        .collect();
    assert_eq!(
        muts,
        vec![
            ("delete".to_owned(), "bob@corp.example".to_owned(), 200),
            ("create".to_owned(), "bob@corp.example".to_owned(), 201),
        ]
    );
    let vmi = w
        .sandbox
        .object(
            "ocp-virt-ams2",
            "kubevirt.io/v1",
            "VirtualMachineInstance",
            "vms",
            "pg-analytics-02",
        )
        .unwrap();
    assert_eq!(vmi["status"]["nodeName"], "worker-1.virt.ams2.corp.example");
}

#[tokio::test]
async fn a_second_migration_is_refused_by_the_preflight_without_a_cancel_step() {
    // Without medic's cancel step the sandbox's KubeVirt admission refuses the create, and
    // since nothing precedes it the refusal is not deferred: nothing is executed.
    let w = world_from(&scenario_dir("kubevirt-migration-stuck")).await;
    let create_only = {
        let mut p = propose(
            &w.ctx(),
            "migrate-vm",
            json!({"cluster": "ocp-virt-ams2", "namespace": "vms", "vm": "pg-analytics-02"}),
        )
        .await
        .unwrap();
        // Keep only the create step: what a plan without the cancellation would be.
        p.steps.drain(..2);
        p.dry_run.drain(..2);
        p
    };
    assert_eq!(create_only.steps.len(), 1);
    let book = w.book(POLICY).await;
    let approved = approve(&book, &create_only, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_eq!(w.successful_mutations(), vec![]);
}
