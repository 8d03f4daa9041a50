//! Every kind the tools summarise, read from the sandbox (tests/bundles/kinds), and several
//! clusters in one session (the eu-failover starter bundle).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_tools::Registry;
use medic_tools::k8s::tools::{ListOutput, Summary};
use medic_tools::k8s::types::Health;
use serde_json::json;

async fn list(
    reg: &Registry,
    ctx: &medic_tools::ToolContext,
    kind: &str,
) -> (Vec<Summary>, String) {
    let r = reg
        .call(ctx, "k8s_list", json!({"kind": kind, "namespace": "apps"}))
        .await
        .unwrap();
    assert!(r.error.is_none(), "{kind}: {}", r.text);
    (r.output::<ListOutput>().unwrap().items.clone(), r.text)
}

#[tokio::test]
async fn every_kind_is_summarised() {
    let env = common::start("kinds").await;
    let reg = Registry::standard();
    let ctx = &env.ctx;

    let (items, text) = list(&reg, ctx, "vmis").await;
    let Summary::Vm(vmi) = &items[0] else {
        panic!("{text}")
    };
    let m = vmi.migration.as_ref().unwrap();
    assert!(
        m.failed
            && m.source_node.as_deref() == Some("node-a")
            && m.target_node.as_deref() == Some("node-b")
    );
    assert_eq!(vmi.health(), Health::Broken);
    assert!(text.contains("migration node-a→node-b FAILED"), "{text}");

    let (items, _) = list(&reg, ctx, "vms").await;
    assert!(
        matches!(&items[0], Summary::Vm(v) if v.status == "Running" && v.run_strategy.as_deref() == Some("Always"))
    );

    let (items, text) = list(&reg, ctx, "resourceclaims").await;
    let Summary::ResourceClaim(c) = &items[0] else {
        panic!("{text}")
    };
    assert!(!c.allocated);
    assert_eq!(c.requests, vec!["gpus: gpu.nvidia.com x2"]);

    let r = reg
        .call(ctx, "k8s_list", json!({"kind": "resourceslices"}))
        .await
        .unwrap();
    let items = &r.output::<ListOutput>().unwrap().items;
    assert!(
        matches!(&items[0], Summary::ResourceSlice(s) if s.node.as_deref() == Some("node-b") && s.devices.len() == 2),
        "{}",
        r.text
    );

    let (items, text) = list(&reg, ctx, "workspaces").await;
    let Summary::Workspace(w) = &items[0] else {
        panic!("{text}")
    };
    assert_eq!(w.preset.as_deref(), Some("phi-3-mini-128k-instruct"));
    assert_eq!(w.health(), Health::Broken);
    assert!(
        text.contains("no capacity for Standard_NC24ads_A100_v4"),
        "{text}"
    );

    let (items, text) = list(&reg, ctx, "applications").await;
    let Summary::Application(a) = &items[0] else {
        panic!("{text}")
    };
    assert_eq!(
        a.repo_url.as_deref(),
        Some("https://github.com/acme-corp/web-deploy.git")
    );
    assert_eq!(
        (a.sync.as_deref(), a.health.as_deref()),
        (Some("OutOfSync"), Some("Degraded"))
    );
    assert!(a.automated);

    let (items, text) = list(&reg, ctx, "httproutes").await;
    let Summary::HttpRoute(h) = &items[0] else {
        panic!("{text}")
    };
    let weights: Vec<(String, i64)> = h.rules[0]
        .backends
        .iter()
        .map(|b| (b.name.clone(), b.weight))
        .collect();
    assert_eq!(
        weights,
        vec![("web-v1".to_string(), 90), ("web-v2".to_string(), 10)]
    );
    assert_eq!(h.health(), Health::Broken);
    assert!(
        text.contains("web-v1:8080 w=90, web-v2:8080 w=10"),
        "{text}"
    );

    let (items, _) = list(&reg, ctx, "gateways").await;
    assert!(
        matches!(&items[0], Summary::Gateway(g) if g.class == "istio" && g.addresses == vec!["203.0.113.10"])
    );

    let (items, text) = list(&reg, ctx, "scaledobjects").await;
    let Summary::ScaledObject(s) = &items[0] else {
        panic!("{text}")
    };
    assert_eq!(
        (s.min, s.max, s.target.as_str()),
        (Some(1), Some(10), "Deployment/worker")
    );
    assert!(s.triggers[0].starts_with("prometheus"), "{:?}", s.triggers);

    let (items, text) = list(&reg, ctx, "hpas").await;
    let Summary::Hpa(h) = &items[0] else {
        panic!("{text}")
    };
    assert!(h.at_max());
    assert_eq!(h.metrics, vec!["cpu 97%/70%"]);

    let (items, _) = list(&reg, ctx, "pdbs").await;
    assert!(
        matches!(&items[0], Summary::Pdb(p) if p.disruptions_allowed == 0 && p.min_available.as_deref() == Some("3"))
    );

    let (items, text) = list(&reg, ctx, "services").await;
    let Summary::Service(s) = &items[0] else {
        panic!("{text}")
    };
    assert_eq!((s.ready_endpoints, s.health()), (0, Health::Broken));
    // Known only through EndpointSlices: unknown readiness counts as ready (the API's rule).
    let v2 = items
        .iter()
        .find_map(|i| match i {
            Summary::Service(s) if s.name == "web-v2" => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!((v2.ready_endpoints, v2.not_ready_endpoints), (2, 1));
    assert_eq!(v2.not_ready_pods, vec!["web-v2-5d8f-fghij"]);
    assert_eq!(v2.health(), Health::Degraded);
    let r = reg
        .call(
            ctx,
            "k8s_describe",
            json!({"kind": "services", "namespace": "apps", "name": "web-v2"}),
        )
        .await
        .unwrap();
    assert!(r.text.contains("ready 2 not-ready 1"), "{}", r.text);

    let (items, _) = list(&reg, ctx, "statefulsets").await;
    assert!(
        matches!(&items[0], Summary::Workload(w) if w.kind == "StatefulSet" && w.ready == 3 && w.health() == Health::Healthy)
    );
    let (items, _) = list(&reg, ctx, "daemonsets").await;
    assert!(
        matches!(&items[0], Summary::Workload(w) if w.kind == "DaemonSet" && w.ready == 1 && w.desired == 2)
    );
    let (items, text) = list(&reg, ctx, "jobs").await;
    let Summary::Job(j) = &items[0] else {
        panic!("{text}")
    };
    assert_eq!((j.failed, j.health()), (3, Health::Broken));
    assert!(text.contains("BackoffLimitExceeded"), "{text}");

    let r = reg
        .call(
            ctx,
            "k8s_describe",
            json!({"kind": "vmis", "namespace": "apps", "name": "db-vm"}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
}

#[tokio::test]
async fn several_clusters_in_one_session() {
    let env = common::start("eu-failover").await;
    let reg = Registry::standard();
    let names = env.ctx.cluster_names();
    assert_eq!(names.len(), 3, "{names:?}");
    for c in &names {
        let r = reg
            .call(&env.ctx, "k8s_list", json!({"kind": "nodes", "cluster": c}))
            .await
            .unwrap();
        assert!(r.error.is_none(), "{c}: {}", r.text);
        assert!(r.text.starts_with(&format!("cluster {c}:")), "{}", r.text);
        assert!(!r.output::<ListOutput>().unwrap().items.is_empty());
    }
    let r = reg
        .call(&env.ctx, "k8s_list", json!({"kind": "httproutes"}))
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
}

#[tokio::test]
async fn a_kind_the_cluster_does_not_serve_lists_empty_and_describes_as_not_installed() {
    // eu-failover has no Cilium: listing its policies is an empty answer, not "API server
    // unreachable"; asking for one by name says what is missing.
    let env = common::start("eu-failover").await;
    let reg = Registry::standard();
    let c = env.ctx.cluster_names()[0].clone();
    let r = reg
        .call(
            &env.ctx,
            "k8s_list",
            json!({"kind": "ciliumnetworkpolicies", "cluster": c}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    assert!(r.output::<ListOutput>().unwrap().items.is_empty());
    let r = reg
        .call(
            &env.ctx,
            "k8s_describe",
            json!({"kind": "ciliumnetworkpolicies", "cluster": c, "namespace": "default", "name": "x"}),
        )
        .await
        .unwrap();
    assert!(
        r.text.contains("does not serve API group cilium.io"),
        "{}",
        r.text
    );
}
