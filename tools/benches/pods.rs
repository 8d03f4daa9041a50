//! Listing and summarising 10,000 pods (on 1,000 nodes) through the `k8s_list` tool from the
//! sandbox API server (harness = false). Prints medians of `MEDIC_BENCH_RUNS` (default 7) runs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use medic_tools::{Registry, ToolContext};
use serde_json::{Value, json};
use std::time::Instant;

fn write_bundle(dir: &std::path::Path, pods: usize, nodes: usize) {
    let objs = dir.join("clusters/big/objects");
    std::fs::create_dir_all(&objs).unwrap();
    std::fs::write(
        dir.join("scenario.yaml"),
        "version: 1\ntitle: big\ndescription: 10k pods\nnow: \"2026-06-23T12:00:00Z\"\nclusters:\n  - name: big\nstart:\n  question: \"list\"\nidentities:\n  - { name: medic, kube_user: \"system:serviceaccount:medic:medic\", agent: true }\n",
    )
    .unwrap();
    let mut items: Vec<Value> = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "medic"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "r"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "medic", "namespace": "medic"}]}),
    ];
    for ns in 0..20 {
        items.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("team-{ns}")}}));
    }
    for n in 0..nodes {
        items.push(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}"), "labels": {"topology.kubernetes.io/zone": format!("z{}", n % 3)}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"}, "allocatable": {"cpu": "31", "memory": "120Gi", "pods": "110"}}}));
    }
    for p in 0..pods {
        let crash = p % 97 == 0;
        let state = if crash {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}})
        } else {
            json!({"running": {"startedAt": "2026-06-23T10:00:00Z"}})
        };
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("app-{p}"), "namespace": format!("team-{}", p % 20), "labels": {"app": format!("app-{}", p % 50)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{}-5d8f7c", p % 50), "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]},
            "spec": {"nodeName": format!("node-{}", p % nodes), "containers": [{"name": "main", "image": "ghcr.io/acme/app:v1", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "main", "image": "ghcr.io/acme/app:v1", "imageID": "", "ready": !crash, "restartCount": if crash { 12 } else { 0 }, "state": state}]}}));
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(objs.join("all.yaml"), serde_json::to_string(&list).unwrap()).unwrap();
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("MEDIC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), 10_000, 1_000);
    let t = Instant::now();
    let bundle = Bundle::load(dir.path()).unwrap();
    let sandbox = Sandbox::start(&bundle, SandboxOptions::default())
        .await
        .unwrap();
    println!(
        "bundle loaded and sandbox started in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let ctx = ToolContext::from_kubeconfig(sandbox.kubeconfig_path(), &["big"])
        .await
        .unwrap();
    let reg = Registry::standard();
    for (name, args) in [
        (
            "k8s_list pods (10,000, all namespaces)",
            json!({"kind": "pods"}),
        ),
        (
            "k8s_list nodes (1,000 + requested from 10,000 pods)",
            json!({"kind": "nodes"}),
        ),
    ] {
        let mut times = Vec::new();
        let mut tokens = 0;
        let mut items = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = reg.call(&ctx, "k8s_list", args.clone()).await.unwrap();
            times.push(t.elapsed().as_secs_f64());
            assert!(r.error.is_none(), "{}", r.text);
            tokens = r.tokens;
            items = r.json["items"].as_array().map_or(0, Vec::len);
        }
        println!(
            "{name:<52} median {:>7.1} ms  ({items} items summarised, {tokens} tokens returned)",
            median(times) * 1000.0
        );
    }
    sandbox.shutdown().await;
}
