#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Everything that must execute nothing — and record why — against the sandbox.

mod common;

use chrono::Duration;
use common::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, Patch, PatchParams};
use medic_approvals::audit::RecordKind;
use medic_approvals::{Decision, Outcome as BookOutcome, Refusal, Status};
use medic_playbooks::{Outcome, Plan, StepOutcome, propose};
use pretty_assertions::assert_eq;
use serde_json::json;

async fn gpu_plan(w: &World, node: &str) -> Plan {
    propose(
        &w.ctx(),
        "gpu-rebalance",
        json!({"cluster": "aks-eu-west", "node": node, "selector": "app=llama"}),
    )
    .await
    .unwrap()
}

fn refused<P>(o: BookOutcome<P>) -> Refusal {
    match o {
        BookOutcome::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {}", other.describe()),
    }
}

/// What the refusal records of an approval say (the book's `message`, the executor's
/// `reason`), in order.
fn recorded_why(book: &medic_approvals::ApprovalBook, approval_id: &str) -> Vec<String> {
    records(book, approval_id)
        .iter()
        .filter(|r| r.kind == RecordKind::Refusal)
        .map(|r| {
            r.payload["message"]
                .as_str()
                .or(r.payload["reason"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Nothing reached the point of mutating: no intent, no step, no undo recorded.
fn assert_nothing_executed(book: &medic_approvals::ApprovalBook, approval_id: &str) {
    let recs = records(book, approval_id);
    for kind in [
        RecordKind::ExecutionIntent,
        RecordKind::StepApplied,
        RecordKind::Undo,
    ] {
        assert_eq!(count(&recs, kind.clone()), 0, "{kind} recorded: {recs:#?}");
    }
}

fn refusal_reason(o: &Outcome) -> &str {
    match o {
        Outcome::Refused { reason } => reason,
        other => panic!("expected a refused execution, got {other:?}"),
    }
}

#[tokio::test]
async fn self_approval_medic_and_a_failing_sar_are_refused() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    let req = book.request(&plan, &actor("alice"), w.now()).await.unwrap();
    let r = refused(
        book.decide::<Plan>(
            &req.id,
            &actor("alice"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r,
        Refusal::SelfApproval {
            identity: "alice".into()
        }
    );
    let r = refused(
        book.decide::<Plan>(
            &req.id,
            &actor("medic"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        r,
        Refusal::AgentCannotApprove {
            identity: "medic".into()
        }
    );
    // carol's role covers the plan, but Kubernetes RBAC does not let her cordon a node.
    let r = refused(
        book.decide::<Plan>(
            &req.id,
            &actor("slack:U03CAROL"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap(),
    );
    match r {
        Refusal::AccessDenied {
            identity,
            step,
            check,
            ..
        } => {
            assert_eq!(identity, "carol");
            assert_eq!(step, 1);
            assert_eq!(
                (check.verb.as_str(), check.resource.as_str()),
                ("patch", "nodes")
            );
        }
        other => panic!("expected an access denial, got {other:?}"),
    }
    assert_eq!(
        book.get(&req.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    let why = recorded_why(&book, &req.id);
    assert_eq!(why.len(), 3, "{why:?}");
    assert!(why[0].contains("requested this plan and cannot approve it"));
    assert!(why[1].contains("medic's own identity, which can never approve"));
    assert!(
        why[2].starts_with("SubjectAccessReview on cluster aks-eu-west denied step 1 for carol")
    );
    assert_nothing_executed(&book, &req.id);
    assert_eq!(w.mutations(), vec![]);
    assert_verified(&book);
}

#[tokio::test]
async fn expired_approvals_execute_nothing() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    // Approving after expiry is refused.
    let req = book.request(&plan, &actor("alice"), w.now()).await.unwrap();
    let late = w.now() + Duration::minutes(16);
    let r = refused(
        book.decide::<Plan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            late,
        )
        .await
        .unwrap(),
    );
    assert!(matches!(r, Refusal::Expired { .. }), "{r:?}");
    // An approval that expires before execution starts runs nothing.
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w
        .executor(&book)
        .with_clock(move || late)
        .execute(&approved)
        .await
        .unwrap();
    assert!(
        refusal_reason(&report.outcome).contains("expired"),
        "{:?}",
        report.outcome
    );
    assert_eq!(w.mutations(), vec![]);
    let why = recorded_why(&book, approved.approval_id());
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].starts_with("the request expired at"), "{why:?}");
    assert_nothing_executed(&book, approved.approval_id());
    let why = recorded_why(&book, &req.id);
    assert!(why[0].starts_with("the request expired at"), "{why:?}");
    assert_verified(&book);
}

#[tokio::test]
async fn a_plan_edited_after_it_was_shown_needs_a_new_approval() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    let req = book.request(&plan, &actor("alice"), w.now()).await.unwrap();
    assert_eq!(req.plan_hash, plan.hash().unwrap());
    // Bob is shown a plan with one more eviction; its hash differs by construction.
    let mut edited = plan.clone();
    edited.steps.push(edited.steps[1].clone());
    let seen = edited.hash().unwrap();
    assert_ne!(seen, req.plan_hash);
    let r = refused(
        book.decide::<Plan>(&req.id, &actor("bob"), Decision::Approve, &seen, w.now())
            .await
            .unwrap(),
    );
    assert!(matches!(r, Refusal::PlanChanged { .. }), "{r:?}");
    assert_eq!(w.mutations(), vec![]);
    assert_eq!(
        book.get(&req.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    let why = recorded_why(&book, &req.id);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with("the plan changed since it was shown; re-review"),
        "{why:?}"
    );
    // The same proposal planned again (a new plan id and clock) is another plan: an
    // approval of one never runs the other.
    let again = gpu_plan(&w, "gpu-node-3").await;
    assert_ne!(again.hash().unwrap(), req.plan_hash);
    assert_nothing_executed(&book, &req.id);
    assert_verified(&book);
}

#[tokio::test]
async fn a_freeze_after_approval_stops_execution() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let dir = tempfile::tempdir().unwrap();
    let approved = {
        let book = w.book_in(dir.path(), POLICY).await;
        approve(&book, &plan, "alice", "bob", w.now()).await
    };
    let frozen = policy_with(
        r#"
freezes:
  - name: gpu-maintenance
    start: "2026-06-23T00:00:00Z"
    end: "2026-06-24T00:00:00Z"
    clusters: [aks-eu-west]
    namespaces: ["*"]
    reason: GPU firmware rollout in progress
"#,
    );
    let book = w.book_in(dir.path(), &frozen).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    let reason = refusal_reason(&report.outcome);
    assert!(reason.contains("gpu-maintenance"), "{reason}");
    assert_eq!(w.mutations(), vec![]);
    let why = recorded_why(&book, approved.approval_id());
    assert_eq!(
        why,
        vec![
            "change freeze gpu-maintenance is active until 2026-06-24 00:00:00 UTC: GPU firmware rollout in progress"
        ]
    );
    assert_nothing_executed(&book, approved.approval_id());
    assert_verified(&book);
}

#[tokio::test]
async fn a_resource_changed_since_approval_is_not_touched() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    // Someone labels the node between approval and execution.
    let nodes: Api<Node> = Api::all(client_as(&w, "aks-eu-west", "alice").await);
    nodes
        .patch(
            "gpu-node-3",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"triage": "alice"}}})),
        )
        .await
        .unwrap();
    let before = w.mutations().len();
    let report = w.executor(&book).execute(&approved).await.unwrap();
    let reason = refusal_reason(&report.outcome);
    assert!(
        reason.contains("changed since the plan was made"),
        "{reason}"
    );
    assert_eq!(w.mutations().len(), before, "the executor must not write");
    assert_eq!(recorded_why(&book, approved.approval_id()), vec![reason]);
    assert_nothing_executed(&book, approved.approval_id());
    let node = w
        .sandbox
        .object("aks-eu-west", "v1", "Node", "", "gpu-node-3")
        .unwrap();
    assert!(node["spec"]["unschedulable"].is_null());
    // The API server enforces the same pin: the planned cordon itself now gets a 409.
    let conn = w.clusters.get("aks-eu-west").unwrap();
    let bob = conn.impersonating(&w.kube("bob")).unwrap();
    let nodes_as_bob: Api<Node> = Api::all(bob);
    let rv = plan.steps[0]
        .target()
        .unwrap()
        .resource_version
        .clone()
        .unwrap();
    let err = nodes_as_bob
        .patch(
            "gpu-node-3",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": true}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("409") || err.to_string().to_lowercase().contains("conflict"),
        "{err}"
    );
    assert_verified(&book);
}

#[tokio::test]
async fn a_disruption_budget_429_before_execution_runs_nothing() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-1").await;
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    // Another healthy llama pod goes away first: the budget (minAvailable 4) is now exhausted.
    let pods: Api<Pod> = Api::namespaced(client_as(&w, "aks-eu-west", "alice").await, "ai");
    pods.evict("llama-7c6d9b8f4d-m4wzr", &EvictParams::default())
        .await
        .unwrap();
    let before = w.mutations().len();
    let report = w.executor(&book).execute(&approved).await.unwrap();
    let reason = refusal_reason(&report.outcome);
    assert!(reason.contains("429"), "{reason}");
    assert_eq!(w.mutations().len(), before);
    assert_eq!(recorded_why(&book, approved.approval_id()), vec![reason]);
    assert_nothing_executed(&book, approved.approval_id());
    assert_verified(&book);
}

#[tokio::test]
async fn a_disruption_budget_429_mid_plan_stops_and_never_forces() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-1").await;
    assert_eq!(plan.steps.len(), 3);
    // The planner saw it coming and said so.
    assert!(
        plan.rationale.contains(
            "PodDisruptionBudget ai/llama allows 1 disruption(s) now but the plan evicts 2"
        ),
        "{}",
        plan.rationale
    );
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    match &report.outcome {
        Outcome::Stopped { step, reason } => {
            assert_eq!(*step, 3);
            assert!(
                reason.contains("PodDisruptionBudget") && reason.contains("nothing is forced"),
                "{reason}"
            );
        }
        other => panic!("expected a stop, got {other:?}"),
    }
    assert!(matches!(
        report.steps[2].1,
        StepOutcome::Failed { status: 429, .. }
    ));
    // Cordon and one eviction happened; the 429 was not retried and nothing was deleted.
    let ok = w.successful_mutations();
    assert_eq!(ok.len(), 2, "{ok:?}");
    assert!(w.mutations().iter().all(|m| m.verb != "delete"));
    assert_eq!(
        w.mutations()
            .iter()
            .filter(|m| m.subresource == "eviction")
            .count(),
        1
    );
    assert!(
        w.sandbox
            .object("aks-eu-west", "v1", "Pod", "ai", "llama-7c6d9b8f4d-9hv5t")
            .is_some()
    );
    // Recorded: an intent per step tried, step 3's 429 with its reason, and no undo (the
    // budget said no; stopping is not a failed post-check).
    let recs = records(&book, approved.approval_id());
    assert_eq!(count(&recs, RecordKind::ExecutionIntent), 3);
    let last = recs
        .iter()
        .rfind(|r| r.kind == RecordKind::StepApplied)
        .unwrap();
    assert_eq!(last.payload["step"], 3);
    assert_eq!(last.payload["outcome"]["result"], "failed");
    assert_eq!(last.payload["outcome"]["status"], 429);
    assert!(
        last.payload["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("nothing is forced"),
        "{last:?}"
    );
    assert_eq!(count(&recs, RecordKind::Undo), 0);
    assert_verified(&book);
}

const TWO: &str = r#"
thresholds:
  - name: two-person-rule
    min_risk: high
    approvals: 2
    from_roles: [sre, platform-leads]
"#;

#[tokio::test]
async fn one_of_two_required_approvals_runs_nothing_and_deny_wins() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(&policy_with(TWO)).await;
    let req = book.request(&plan, &actor("medic"), w.now()).await.unwrap();
    match book
        .decide::<Plan>(
            &req.id,
            &actor("alice"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap()
    {
        BookOutcome::Pending { have, need, .. } => assert_eq!((have, need), (1, 2)),
        other => panic!("expected pending, got {}", other.describe()),
    }
    // Bob denies: the deny wins over alice's approval.
    let out = book
        .decide::<Plan>(
            &req.id,
            &actor("bob"),
            Decision::Deny {
                reason: "drain gpu-node-3 after the batch job".into(),
            },
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap();
    assert!(
        matches!(out, BookOutcome::Denied { .. }),
        "{}",
        out.describe()
    );
    assert_eq!(
        book.get(&req.id).await.unwrap().unwrap().status,
        Status::Denied
    );
    // A later approval cannot bring it back.
    let late = book
        .decide::<Plan>(
            &req.id,
            &actor("slack:U01ALICE"),
            Decision::Approve,
            &req.plan_hash,
            w.now(),
        )
        .await
        .unwrap();
    assert!(
        matches!(late, BookOutcome::AlreadyDecided { .. }),
        "{}",
        late.describe()
    );
    assert_eq!(w.mutations(), vec![]);
    let recs = records(&book, &req.id);
    let decisions: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Decision)
        .map(|r| {
            (
                r.payload["decision"].as_str().unwrap().to_owned(),
                r.payload["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("approve".to_owned(), "pending".to_owned()),
            ("deny".to_owned(), "denied".to_owned())
        ]
    );
    assert_eq!(
        recorded_why(&book, &req.id),
        vec!["the request is already denied, not approved"]
    );
    assert_nothing_executed(&book, &req.id);
    assert_verified(&book);
}

#[tokio::test]
async fn a_deny_after_approval_revokes_it_before_execution() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "medic", "bob", w.now()).await;
    let out = book
        .decide::<Plan>(
            approved.approval_id(),
            &actor("alice"),
            Decision::Deny {
                reason: "wrong node".into(),
            },
            approved.plan_hash(),
            w.now(),
        )
        .await
        .unwrap();
    assert!(
        matches!(out, BookOutcome::Denied { .. }),
        "{}",
        out.describe()
    );
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert!(
        refusal_reason(&report.outcome).contains("denied"),
        "{:?}",
        report.outcome
    );
    assert_eq!(w.mutations(), vec![]);
    assert_eq!(
        recorded_why(&book, approved.approval_id()),
        vec!["the request is denied, not approved"]
    );
    assert_nothing_executed(&book, approved.approval_id());
    assert_verified(&book);
}

#[tokio::test]
async fn a_plan_another_executor_is_running_is_not_run_twice() {
    let w = world("gpu-xid79").await;
    let plan = gpu_plan(&w, "gpu-node-3").await;
    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    // Another process executing this plan holds its lock.
    let dir = book.audit().path().parent().unwrap().join("executions");
    std::fs::create_dir_all(&dir).unwrap();
    let held = std::fs::File::create(dir.join(format!("{}.lock", approved.plan_hash()))).unwrap();
    held.lock().unwrap();
    for report in [
        w.executor(&book).execute(&approved).await.unwrap(),
        w.executor(&book).resume(&approved).await.unwrap(),
    ] {
        assert!(
            refusal_reason(&report.outcome)
                .contains("another medic executor is running this very plan"),
            "{:?}",
            report.outcome
        );
    }
    assert_eq!(w.mutations(), vec![]);
    assert_nothing_executed(&book, approved.approval_id());
    assert_eq!(recorded_why(&book, approved.approval_id()).len(), 2);
    // Once it is released (the holder finished or died), execution proceeds.
    drop(held);
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_verified(&book);
}
