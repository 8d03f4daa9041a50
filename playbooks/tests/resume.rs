#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Resuming after a crash, deterministically: the states a kill -9 can leave behind,
//! built by hand, and what `resume` does with each.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use medic_approvals::audit::{RecordDraft, RecordKind};
use medic_playbooks::{Outcome, StepOutcome, propose};
use pretty_assertions::assert_eq;
use serde_json::json;

fn cordons(w: &World) -> usize {
    w.successful_mutations()
        .iter()
        .filter(|m| m.resource == "nodes" && m.verb == "patch")
        .count()
}

#[tokio::test]
async fn a_step_applied_before_the_crash_is_not_applied_again() {
    let w = world("gpu-xid79").await;
    let plan = propose(
        &w.ctx(),
        "gpu-rebalance",
        json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}),
    )
    .await
    .unwrap();
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    // The crashed process wrote the intent of step 1 and its request reached the API server,
    // but it died before recording the answer.
    book.record(
        RecordDraft::new(
            w.now(),
            "medic:executor",
            RecordKind::ExecutionIntent,
            json!({"phase": "step", "step": 1}),
        )
        .approval(approved.approval_id())
        .plan_hash(approved.plan_hash().as_str()),
    )
    .await
    .unwrap();
    let conn = w.clusters.get("aks-eu-west").unwrap();
    let nodes: Api<Node> = Api::all(conn.impersonating(&w.kube("bob")).unwrap());
    nodes
        .patch(
            "gpu-node-3",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    assert_eq!(cordons(&w), 1);

    let report = w.executor(&book).resume(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_eq!(report.steps[0], (1, StepOutcome::AlreadyApplied));
    assert_eq!(cordons(&w), 1, "the cordon must not be sent twice");
    let recs = records(&book, approved.approval_id());
    assert_eq!(
        recs.iter()
            .filter(|r| r.payload["recovered"] == true)
            .count(),
        1
    );

    // Resuming a finished execution reports it and sends nothing.
    let before = w.mutations().len();
    let again = w.executor(&book).resume(&approved).await.unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert_eq!(w.mutations().len(), before);
    assert_verified(&book);
}

#[tokio::test]
async fn an_intent_whose_request_never_left_is_applied_once() {
    let w = world("gpu-xid79").await;
    let plan = propose(
        &w.ctx(),
        "gpu-rebalance",
        json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}),
    )
    .await
    .unwrap();
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    book.record(
        RecordDraft::new(
            w.now(),
            "medic:executor",
            RecordKind::ExecutionIntent,
            json!({"phase": "step", "step": 1}),
        )
        .approval(approved.approval_id())
        .plan_hash(approved.plan_hash().as_str()),
    )
    .await
    .unwrap();
    let report = w.executor(&book).resume(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert!(matches!(report.steps[0].1, StepOutcome::Applied { .. }));
    assert_eq!(cordons(&w), 1);
    assert_verified(&book);
}

#[tokio::test]
async fn an_intent_on_an_object_someone_else_changed_stops() {
    let w = world("gpu-xid79").await;
    let plan = propose(
        &w.ctx(),
        "gpu-rebalance",
        json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}),
    )
    .await
    .unwrap();
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    book.record(
        RecordDraft::new(
            w.now(),
            "medic:executor",
            RecordKind::ExecutionIntent,
            json!({"phase": "step", "step": 1}),
        )
        .approval(approved.approval_id())
        .plan_hash(approved.plan_hash().as_str()),
    )
    .await
    .unwrap();
    // Not our cordon: someone relabelled the node.
    let nodes: Api<Node> = Api::all(client_as(&w, "aks-eu-west", "alice").await);
    nodes
        .patch(
            "gpu-node-3",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let report = w.executor(&book).resume(&approved).await.unwrap();
    assert!(
        matches!(report.outcome, Outcome::Stopped { step: 1, .. }),
        "{report:#?}"
    );
    assert_eq!(cordons(&w), 1, "only alice's label patch");
    assert_verified(&book);
}
