//! `metrics` and `gpu_status` against a real Prometheus holding the gpu-xid79 bundle's samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::prometheus;
use medic_tools::Registry;
use medic_tools::gpu::GpuOutput;
use medic_tools::prom::MetricsOutput;
use serde_json::json;

#[tokio::test]
async fn metrics_and_gpu_view_over_real_prometheus() {
    if !prometheus::available() {
        return;
    }
    let env = common::start("gpu-xid79").await;
    let prom = prometheus::start(&common::bundle_dir("gpu-xid79")).await;
    let ctx = env
        .ctx
        .clone()
        .with_prometheus("aks-eu-west", &prom.url)
        .unwrap();
    let reg = Registry::standard();

    // Range query with a threshold: the Xid series of gpu-node-3 comes first, crossing at 11:42.
    let r = reg
        .call(
            &ctx,
            "metrics",
            json!({"query": "DCGM_FI_DEV_XID_ERRORS", "range_minutes": 60, "threshold": 0}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    let m = r.output::<MetricsOutput>().unwrap();
    assert_eq!(m.series.len(), 32, "{}", r.text);
    let top = &m.series[0];
    assert_eq!(
        top.labels.get("node").map(String::as_str),
        Some("gpu-node-3"),
        "{}",
        r.text
    );
    assert_eq!(top.max, 79.0);
    assert_eq!(top.crossings.len(), 1);
    assert_eq!(top.crossings[0].start, "2026-06-23T11:42:00Z");
    assert!(top.change.is_some());
    assert!(r.tokens <= 2_000, "{}", r.tokens);
    assert!(r.text.contains("more series omitted") || m.series.len() <= 200);

    // Instant PromQL.
    let r = reg
        .call(
            &ctx,
            "metrics",
            json!({"query": "max by (node) (DCGM_FI_DEV_GPU_TEMP)"}),
        )
        .await
        .unwrap();
    let m = r.output::<MetricsOutput>().unwrap();
    assert_eq!(m.series.len(), 4, "{}", r.text);

    // GPU view joins DCGM with nodes and pods; the faulty node is first.
    let r = reg.call(&ctx, "gpu_status", json!({})).await.unwrap();
    let g = r.output::<GpuOutput>().unwrap();
    assert!(g.metrics_available, "{}", r.text);
    assert_eq!(g.nodes[0].node.name, "gpu-node-3", "{}", r.text);
    assert!(
        g.nodes[0]
            .flags
            .iter()
            .any(|f| f.starts_with("Xid 79 on gpu")),
        "{:?}",
        g.nodes[0].flags
    );
    assert_eq!(g.nodes[0].gpus.len(), 8);
    assert!(r.tokens <= 2_000);

    // A query Prometheus rejects is the model's to fix.
    let r = reg
        .call(&ctx, "metrics", json!({"query": "rate(up[5m]"}))
        .await
        .unwrap();
    let e = r.error.unwrap();
    assert_eq!(e.kind, "invalid_args");
    assert!(
        e.message
            .starts_with("invalid arguments: Prometheus rejected the query \"rate(up[5m]\": "),
        "{}",
        e.message
    );

    // Prometheus down: a clear upstream error, and the GPU view degrades instead of failing.
    drop(prom);
    let r = reg
        .call(&ctx, "metrics", json!({"query": "up"}))
        .await
        .unwrap();
    let e = r.error.unwrap();
    assert_eq!(e.kind, "upstream");
    assert!(
        e.message.contains("is unreachable") && e.message.contains("metrics are unavailable"),
        "{}",
        e.message
    );
    let r = reg.call(&ctx, "gpu_status", json!({})).await.unwrap();
    let g = r.output::<GpuOutput>().unwrap();
    assert!(!g.metrics_available);
    assert!(r.text.contains("DCGM metrics unavailable"), "{}", r.text);
}
