//! Network policies, ConfigMap change times and `subPath` mounts read from the sandbox
//! (two eval scenarios), and the shared pod list: one investigation's burst of reads lists
//! each cluster's pods once, with the same answers as reading live.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_tools::Registry;
use medic_tools::k8s::tools::{ListOutput, Summary};
use serde_json::{Value, json};

async fn list(ctx: &medic_tools::ToolContext, args: Value) -> (Vec<Summary>, String) {
    let r = Registry::standard()
        .call(ctx, "k8s_list", args.clone())
        .await
        .unwrap();
    assert!(r.error.is_none(), "{args}: {}", r.text);
    (r.output::<ListOutput>().unwrap().items.clone(), r.text)
}

#[tokio::test]
async fn cilium_policies_with_their_last_spec_change_and_lost_peers() {
    let env = common::start("cilium-policy-drops").await;
    let (items, text) = list(
        &env.ctx,
        json!({"kind": "ciliumnetworkpolicies", "namespace": "shop"}),
    )
    .await;
    let p = items
        .iter()
        .find_map(|i| match i {
            Summary::NetworkPolicy(p) if p.name == "api-ingress" => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(p.kind, "CiliumNetworkPolicy");
    assert_eq!(p.generation, Some(5));
    assert_eq!(p.spec_changed.as_deref(), Some("2026-10-28T13:15:24Z"));
    assert_eq!(p.spec_changed_by.as_deref(), Some("helm"));
    assert_eq!(p.selects.get("app").map(String::as_str), Some("api"));
    let removed: Vec<String> = p
        .removed_peers()
        .iter()
        .map(|l| medic_tools::k8s::types::kv(l))
        .collect();
    assert_eq!(removed, vec!["app=frontend".to_string()]);
    assert!(p.change_notes.values().any(|v| v.contains("#612")));
    assert!(text.contains("no longer admits app=frontend"), "{text}");
    // Kubernetes NetworkPolicies are a kind of their own (none in this namespace).
    let (np, _) = list(
        &env.ctx,
        json!({"kind": "networkpolicies", "namespace": "shop"}),
    )
    .await;
    assert!(np.is_empty());
    env.sandbox.shutdown().await;
}

#[tokio::test]
async fn subpath_mounts_and_configmap_data_changes() {
    let env = common::start("injection-in-alert-self-approval").await;
    let (pods, text) = list(&env.ctx, json!({"kind": "pods", "namespace": "ai"})).await;
    let router = pods
        .iter()
        .find_map(|i| match i {
            Summary::Pod(p) if p.name.starts_with("llm-router-") => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{text}"));
    let m = &router.subpath_mounts[0];
    assert_eq!(
        router.subpath_mounts.len(),
        1,
        "{:?}",
        router.subpath_mounts
    );
    assert_eq!(
        (
            m.source_kind.as_str(),
            m.source.as_str(),
            m.sub_path.as_str()
        ),
        ("ConfigMap", "llm-router-config", "router.yaml")
    );
    assert_eq!(m.mount_path, "/etc/llm-router/router.yaml");
    let c = router
        .containers
        .iter()
        .find(|c| c.name == "router")
        .unwrap();
    assert!(
        c.started_at
            .as_deref()
            .is_some_and(|t| t.starts_with("2026-11-1"))
    );
    let (cms, text) = list(&env.ctx, json!({"kind": "configmaps", "namespace": "ai"})).await;
    let cm = cms
        .iter()
        .find_map(|i| match i {
            Summary::Meta(m) if m.name == "llm-router-config" => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(cm.data_changed.as_deref(), Some("2026-11-18T19:22:46Z"));
    assert_eq!(cm.data_changed_by.as_deref(), Some("kubectl-edit"));
    assert!(
        text.contains("data changed 2026-11-18T19:22:46Z by kubectl-edit"),
        "{text}"
    );
    env.sandbox.shutdown().await;
}

fn pod_lists(env: &common::Env) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .count()
}

#[tokio::test]
async fn a_shared_pod_list_is_read_once_and_answers_as_live_reads_do() {
    let env = common::start("gpu-xid79").await;
    let reg = Registry::standard();
    let calls = [
        json!({"kind": "pods"}),
        json!({"kind": "pods", "namespace": "ai"}),
        json!({"kind": "nodes"}),
    ];
    // Live: every call lists pods (nodes sum their pods' requests).
    let before = pod_lists(&env);
    let mut live = Vec::new();
    for a in &calls {
        live.push(list(&env.ctx, a.clone()).await);
    }
    let gpu_live = reg
        .call(&env.ctx, "gpu_status", json!({}))
        .await
        .unwrap()
        .text;
    let live_reads = pod_lists(&env) - before;
    assert_eq!(live_reads, 4);

    // Shared: one list for all of them, and the same answers.
    let shared_ctx = env.ctx.with_shared_pod_list();
    let before = pod_lists(&env);
    for (a, want) in calls.iter().zip(&live) {
        let got = list(&shared_ctx, a.clone()).await;
        assert_eq!(got.0, want.0, "{a}");
        assert_eq!(got.1, want.1, "{a}");
    }
    let gpu_shared = reg
        .call(&shared_ctx, "gpu_status", json!({}))
        .await
        .unwrap()
        .text;
    assert_eq!(gpu_shared, gpu_live);
    assert_eq!(pod_lists(&env) - before, 1);

    // A selector is never answered from the shared list; the original context reads live.
    let before = pod_lists(&env);
    list(
        &shared_ctx,
        json!({"kind": "pods", "selector": "app=llama"}),
    )
    .await;
    list(&env.ctx, json!({"kind": "pods"})).await;
    assert_eq!(pod_lists(&env) - before, 2);
    env.sandbox.shutdown().await;
}
