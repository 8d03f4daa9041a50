#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Proposal → plan with server-side dry-run, per starter bundle, against the sandbox.
//! Prints the median and p90 in milliseconds. `PLAN_BENCH_ITERATIONS` (default 50).

use std::path::Path;
use std::time::Instant;

use medic_playbooks::{ClusterSpec, Clusters, PlanContext, propose};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use serde_json::{Value, json};

async fn bench(bundle: &str, playbook: &str, params: Value, n: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sandbox/bundles")
        .join(bundle);
    let b = Bundle::load(&dir).unwrap();
    let sandbox = Sandbox::start(&b, SandboxOptions::default()).await.unwrap();
    let specs = b
        .scenario
        .clusters
        .iter()
        .map(|c| ClusterSpec {
            name: c.name.clone(),
            labels: c.labels.clone(),
        })
        .collect();
    let clusters = Clusters::from_kubeconfig(sandbox.kubeconfig_path(), specs)
        .await
        .unwrap();
    let alice = b
        .scenario
        .identities
        .iter()
        .find(|i| i.name == "alice")
        .unwrap();
    let mut ctx = PlanContext::new(clusters, sandbox.now());
    ctx.dry_run_as = Some(medic_approvals::KubeIdentity {
        user: alice.kube_user.clone(),
        groups: alice.groups.clone(),
    });
    // Warm-up (connection pools, TLS).
    propose(&ctx, playbook, params.clone()).await.unwrap();
    let mut ms: Vec<f64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let plan = propose(&ctx, playbook, params.clone()).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(plan.dry_run_ok());
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = ms[ms.len() / 2];
    let p90 = ms[(ms.len() * 9 / 10).min(ms.len() - 1)];
    println!("{bundle:<12} {playbook:<14} median {median:>7.2} ms   p90 {p90:>7.2} ms   (n={n})");
    sandbox.shutdown().await;
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let n: usize = std::env::var("PLAN_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        bench("gpu-xid79", "gpu-rebalance", json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}), n).await;
        bench("bad-rollout", "rollback", json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "6c8d7f9b54"}), n).await;
        bench(
            "eu-failover",
            "failover",
            json!({"route_cluster": "aks-eu-north", "route_namespace": "ai", "route": "llama", "to_backend": "llama",
                   "standby_cluster": "aks-eu-north", "standby_namespace": "ai", "standby_deployment": "llama", "replicas": 4}),
            n,
        )
        .await;
    });
}
