#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plans of the starter bundles, pinned with insta (volatile fields redacted).

mod common;

use common::*;
use medic_approvals::Approvable;
use medic_playbooks::{Plan, catalogue, propose};
use serde_json::{Value, json};

/// Replaces fields that change between runs (plan id, clock, resourceVersions).
fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                match k.as_str() {
                    "id" | "created_at" => *val = json!("[redacted]"),
                    "resource_version" => *val = json!("[rv]"),
                    // Hunk positions depend on every field of the live object; the
                    // changed lines are what the snapshot pins.
                    "diff" => {
                        if let Some(text) = val.as_str() {
                            let lines: Vec<&str> = text
                                .lines()
                                .map(|l| if l.starts_with("@@") { "@@ @@" } else { l })
                                .collect();
                            *val = json!(lines.join("\n"));
                        }
                    }
                    _ => redact(val),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn snapshot_value(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap();
    redact(&mut v);
    v
}

#[tokio::test]
async fn starter_bundle_plans() {
    let w = world("gpu-xid79").await;
    let gpu = propose(&w.ctx(), "gpu-rebalance", json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama", "taint": {"key": "nvidia.com/gpu.unhealthy", "value": "xid79", "effect": "NoSchedule"}}))
        .await
        .unwrap();
    insta::assert_yaml_snapshot!("gpu_rebalance_gpu_node_3", snapshot_value(&gpu));
    // The summary approvals review: one SubjectAccessReview per mutating step.
    let s = gpu.summary();
    assert_eq!(s.access.len(), 3);
    assert_eq!(s.namespaces, vec!["ai".to_owned()]);
    assert_eq!(s.hash, gpu.hash().unwrap());

    let w = world("bad-rollout").await;
    let rb = propose(&w.ctx(), "rollback", json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "6c8d7f9b54"}))
        .await
        .unwrap();
    insta::assert_yaml_snapshot!("rollback_api_revision_6", snapshot_value(&rb));

    let w = world("eu-failover").await;
    let fo = propose(&w.ctx(), "failover", json!({
        "route_cluster": "aks-eu-north", "route_namespace": "ai", "route": "llama", "to_backend": "llama",
        "standby_cluster": "aks-eu-north", "standby_namespace": "ai", "standby_deployment": "llama", "replicas": 4,
    }))
    .await
    .unwrap();
    insta::assert_yaml_snapshot!("failover_llama_eu_north", snapshot_value(&fo));
}

#[test]
fn plan_hash_is_stable_and_sees_one_byte() {
    let plan = Plan {
        id: "p1".into(),
        playbook: "scale".into(),
        cluster: "aks-eu-west".into(),
        title: "Scale ai/llama".into(),
        rationale: "capacity".into(),
        params: json!({"replicas": 4, "cluster": "aks-eu-west"}),
        steps: vec![medic_playbooks::Step {
            cluster: "aks-eu-west".into(),
            description: "scale".into(),
            op: medic_playbooks::Operation::Scale {
                target: medic_playbooks::ObjectRef::new(
                    "apps/v1",
                    "Deployment",
                    Some("ai"),
                    "llama",
                ),
                replicas: 4,
                from: 1,
            },
        }],
        undo: vec![],
        risk: medic_approvals::Risk::Low,
        blast_radius: Default::default(),
        preconditions: vec![],
        post_checks: vec![],
        dry_run: vec![],
        created_at: chrono::DateTime::UNIX_EPOCH,
    };
    let again: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(plan.hash().unwrap(), again.hash().unwrap());
    let mut edited = plan.clone();
    edited.title.push('!');
    assert_ne!(plan.hash().unwrap(), edited.hash().unwrap());
    // The hash is not part of what it hashes.
    assert!(
        !serde_json::to_value(&plan)
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("hash")
    );
}

#[test]
fn catalogue_lists_every_playbook_with_a_schema() {
    let names: Vec<&str> = catalogue().iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        vec![
            "gpu-rebalance",
            "rollback",
            "failover",
            "rollout-restart",
            "scale",
            "raise-memory-limit",
            "uncordon",
            "restart-vm",
            "migrate-vm"
        ]
    );
    for e in catalogue() {
        assert!(
            e.description.len() < 160,
            "{} description is not terse",
            e.name
        );
        assert!(
            e.parameters["properties"]["cluster"].is_object()
                || e.parameters["properties"]["route_cluster"].is_object(),
            "{}",
            e.name
        );
    }
}
