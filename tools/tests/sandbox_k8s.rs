//! Kubernetes, logs and GPU tools against the sandbox API server serving a starter bundle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_tools::gpu::GpuOutput;
use medic_tools::k8s::tools::{DescribeOutput, ListOutput, Summary};
use medic_tools::logs::LogsOutput;
use medic_tools::{EvidenceRef, Registry};
use serde_json::json;

#[tokio::test]
async fn pods_describe_events_logs_and_gpu_on_gpu_xid79() {
    let env = common::start("gpu-xid79").await;
    let reg = Registry::standard();
    let ctx = &env.ctx;

    // List pods: the crash-looping llama replica comes first, with its exit reason.
    let r = reg
        .call(ctx, "k8s_list", json!({"kind": "pods", "namespace": "ai"}))
        .await
        .unwrap();
    assert!(r.error.is_none(), "{r:?}");
    let out = r.output::<ListOutput>().unwrap();
    let Summary::Pod(first) = &out.items[0] else {
        panic!("not a pod")
    };
    assert_eq!(first.name, "llama-7c6d9b8f4d-tq8nj", "{}", r.text);
    assert!(first.restarts > 0);
    assert!(r.text.contains("llama-7c6d9b8f4d-tq8nj"));
    assert!(r.tokens <= 2_000);
    assert!(r.call_id.starts_with("call_"));
    assert!(
        matches!(&r.evidence[0], EvidenceRef::Object(o) if o.name == "llama-7c6d9b8f4d-tq8nj" && o.uid.is_some())
    );

    // Nodes: gpu-node-3 lost a GPU from allocatable.
    let r = reg
        .call(ctx, "k8s_list", json!({"kind": "nodes"}))
        .await
        .unwrap();
    let out = r.output::<ListOutput>().unwrap();
    let node3 = out
        .items
        .iter()
        .find_map(|i| match i {
            Summary::Node(n) if n.name == "gpu-node-3" => Some(n.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(node3.capacity.gpu, 8);
    assert_eq!(node3.allocatable.gpu, 7, "{}", r.text);
    assert!(node3.requested.as_ref().unwrap().gpu >= 1);
    assert!(
        node3
            .gpu
            .as_ref()
            .unwrap()
            .product
            .as_deref()
            .unwrap_or("")
            .contains("A100")
    );

    // Describe the Deployment: revisions and pods.
    let r = reg
        .call(
            ctx,
            "k8s_describe",
            json!({"kind": "deployments", "namespace": "ai", "name": "llama"}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    let d = r.output::<DescribeOutput>().unwrap();
    assert!(
        d.history.as_ref().is_some_and(|h| !h.revisions.is_empty()),
        "{}",
        r.text
    );
    assert!(d.pods.iter().any(|p| p.name == "llama-7c6d9b8f4d-tq8nj"));
    assert!(r.tokens <= 2_000);

    // Events for the crashing pod, warnings first.
    let r = reg
        .call(
            ctx,
            "k8s_events",
            json!({"namespace": "ai", "name": "llama-7c6d9b8f4d-tq8nj"}),
        )
        .await
        .unwrap();
    assert!(r.text.contains("Warning"), "{}", r.text);

    // The previous log of the crashing replica shows the CUDA failure.
    let r = reg
        .call(
            ctx,
            "logs",
            json!({"namespace": "ai", "pod": "llama-7c6d9b8f4d-tq8nj", "previous": true}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    let l = r.output::<LogsOutput>().unwrap();
    assert!(l.scan.lines > 0 && l.scan.error_lines > 0, "{}", r.text);
    assert!(r.text.to_lowercase().contains("cuda"), "{}", r.text);
    assert!(matches!(
        &r.evidence[0],
        EvidenceRef::LogLines { previous: true, .. }
    ));

    // GPU view without Prometheus: nodes and pods only, and it says so.
    let r = reg.call(ctx, "gpu_status", json!({})).await.unwrap();
    let g = r.output::<GpuOutput>().unwrap();
    assert!(!g.metrics_available);
    assert!(r.text.contains("DCGM metrics unavailable"), "{}", r.text);
    assert!(
        g.nodes
            .iter()
            .any(|n| n.node.name == "gpu-node-3" && !n.pods.is_empty())
    );
}

#[tokio::test]
async fn bad_input_is_model_actionable() {
    let env = common::start("gpu-xid79").await;
    let reg = Registry::standard();
    let ctx = &env.ctx;
    let err = |r: medic_tools::ToolResult| {
        r.error
            .unwrap_or_else(|| panic!("expected an error, got {}", r.text))
            .message
    };

    let m = err(reg
        .call(
            ctx,
            "k8s_list",
            json!({"kind": "pods", "cluster": "gke-nowhere"}),
        )
        .await
        .unwrap());
    assert_eq!(
        m,
        "invalid arguments: unknown cluster `gke-nowhere`; known clusters: aks-eu-west"
    );

    let m = err(reg
        .call(
            ctx,
            "k8s_list",
            json!({"kind": "pods", "namespace": "paymnts"}),
        )
        .await
        .unwrap());
    assert!(m.starts_with("invalid arguments: unknown namespace `paymnts` in cluster `aks-eu-west`; known namespaces: "), "{m}");
    assert!(m.contains("ai"), "{m}");

    let m = err(reg
        .call(ctx, "k8s_describe", json!({"kind": "pods", "name": "x"}))
        .await
        .unwrap());
    assert!(
        m.starts_with(
            "invalid arguments: `namespace` is required; known namespaces in `aks-eu-west`: "
        ),
        "{m}"
    );

    let m = err(reg
        .call(
            ctx,
            "k8s_describe",
            json!({"kind": "deployments", "namespace": "ai", "name": "nope"}),
        )
        .await
        .unwrap());
    assert_eq!(
        m,
        "not found: deployment `ai/nope` not found in cluster `aks-eu-west`"
    );

    let m = err(reg
        .call(ctx, "k8s_list", json!({"kind": "pod"}))
        .await
        .unwrap());
    assert!(
        m.starts_with("invalid arguments: `kind` must be one of: pods, deployments"),
        "{m}"
    );

    let m = err(reg.call(ctx, "k8s_list", json!({})).await.unwrap());
    assert_eq!(m, "invalid arguments: `kind` is required (What to list.)");

    let m = err(reg
        .call(
            ctx,
            "logs",
            json!({"namespace": "ai", "pod": "llama-7c6d9b8f4d-tq8nj", "container": "sidecar"}),
        )
        .await
        .unwrap());
    assert_eq!(
        m,
        "invalid arguments: pod `ai/llama-7c6d9b8f4d-tq8nj` has no container `sidecar`; containers: vllm"
    );

    let m = err(reg
        .call(
            ctx,
            "logs",
            json!({"namespace": "ai", "pod": "llama-7c6d9b8f4d-tq8nj", "grep": "(unclosed"}),
        )
        .await
        .unwrap());
    assert!(
        m.starts_with("invalid arguments: `grep` is not a valid regex"),
        "{m}"
    );

    let m = err(reg.call(ctx, "nope", json!({})).await.unwrap());
    assert!(m.starts_with("invalid arguments: unknown tool `nope`; available tools: github, gpu_status, k8s_describe"), "{m}");

    let m = err(reg
        .call(ctx, "metrics", json!({"query": "up"}))
        .await
        .unwrap());
    assert!(m.contains("has no Prometheus configured"), "{m}");
}
