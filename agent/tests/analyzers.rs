//! Every analyzer class fires on a fixture object set and stays silent on a healthy one.
//!
//! Fixture tools stand in for `k8s_list`, `k8s_events` and `gpu_status` and return the tools'
//! own typed outputs, so the analyzers read exactly what they read in a session. (The
//! starter bundles are covered end to end through the sandbox in `bundles.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use medic_agent::analyzers::{AnalyzerSet, Observations};
use medic_tools::gpu::{GpuNode, GpuOutput};
use medic_tools::k8s::net::EventSummary;
use medic_tools::k8s::tools::{EventsOutput, Kind, ListOutput, Summary};
use medic_tools::prom::{MetricsOutput, SeriesSummary};
use medic_tools::{Registry, Tool, ToolContext, ToolResult};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type World = Arc<BTreeMap<(String, String), Vec<Value>>>;

#[derive(Deserialize, JsonSchema)]
struct ListArgs {
    cluster: Option<String>,
    kind: String,
    #[allow(dead_code)]
    namespace: Option<String>,
}

struct FakeList(World);

impl Tool for FakeList {
    const NAME: &'static str = "k8s_list";
    type Args = ListArgs;
    type Output = ListOutput;
    fn description() -> &'static str {
        "fixture list"
    }
    async fn call(&self, _ctx: &ToolContext, a: ListArgs) -> medic_tools::Result<ListOutput> {
        let cluster = a.cluster.unwrap_or_else(|| "c1".into());
        let items = self
            .0
            .get(&(cluster.clone(), a.kind.clone()))
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| serde_json::from_value::<Summary>(v).unwrap())
            .collect();
        Ok(ListOutput {
            cluster,
            kind: serde_json::from_value::<Kind>(json!(a.kind)).unwrap(),
            namespace: None,
            items,
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct ClusterArgs {
    cluster: Option<String>,
}

struct FakeEvents(World);

impl Tool for FakeEvents {
    const NAME: &'static str = "k8s_events";
    type Args = ClusterArgs;
    type Output = EventsOutput;
    fn description() -> &'static str {
        "fixture events"
    }
    async fn call(&self, _ctx: &ToolContext, a: ClusterArgs) -> medic_tools::Result<EventsOutput> {
        let cluster = a.cluster.unwrap_or_else(|| "c1".into());
        let events = self
            .0
            .get(&(cluster.clone(), "events".into()))
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| serde_json::from_value::<EventSummary>(v).unwrap())
            .collect();
        Ok(EventsOutput {
            cluster,
            namespace: None,
            events,
        })
    }
}

struct FakeGpu(World);

impl Tool for FakeGpu {
    const NAME: &'static str = "gpu_status";
    type Args = ClusterArgs;
    type Output = GpuOutput;
    fn description() -> &'static str {
        "fixture gpu"
    }
    async fn call(&self, _ctx: &ToolContext, a: ClusterArgs) -> medic_tools::Result<GpuOutput> {
        let cluster = a.cluster.unwrap_or_else(|| "c1".into());
        let nodes = self
            .0
            .get(&(cluster.clone(), "gpu".into()))
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| serde_json::from_value::<GpuNode>(v).unwrap())
            .collect();
        Ok(GpuOutput {
            cluster,
            metrics_available: true,
            metrics_note: None,
            nodes,
            pending_pods: Vec::new(),
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct MetricsArgs {
    cluster: Option<String>,
    query: String,
    range_minutes: Option<u32>,
    step_seconds: Option<u32>,
    threshold: Option<f64>,
    below: Option<bool>,
}

/// Prometheus stand-in: the world's `metrics` entries are the series of any query.
struct FakeMetrics(World);

impl Tool for FakeMetrics {
    const NAME: &'static str = "metrics";
    type Args = MetricsArgs;
    type Output = MetricsOutput;
    fn description() -> &'static str {
        "fixture metrics"
    }
    async fn call(&self, _ctx: &ToolContext, a: MetricsArgs) -> medic_tools::Result<MetricsOutput> {
        let cluster = a.cluster.unwrap_or_else(|| "c1".into());
        let series = self
            .0
            .get(&(cluster.clone(), "metrics".into()))
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| serde_json::from_value::<SeriesSummary>(v).unwrap())
            .collect();
        Ok(MetricsOutput {
            cluster,
            query: a.query,
            start: "2026-06-01T11:00:00Z".into(),
            end: "2026-06-01T12:00:00Z".into(),
            common_labels: BTreeMap::new(),
            series,
        })
    }
}

// ---------------------------------------------------------------- fixture builders

/// A network policy summary selecting `selects`, admitting `from` (previously `previous`),
/// its spec last written at `changed`.
fn netpol(
    kind: &str,
    name: &str,
    selects: Value,
    from: Value,
    previous: Value,
    changed: &str,
) -> Value {
    json!({"NetworkPolicy": {
        "kind": kind, "name": name, "namespace": "shop", "uid": null, "generation": 4,
        "created": "2026-01-01T00:00:00Z", "spec_changed": changed, "spec_changed_by": "helm",
        "change_notes": {"meta.helm.sh/release-name": "shop-policies"},
        "selects": selects, "selects_by_expression": false, "ingress_rules": 1,
        "ingress_from": from, "egress_to": [], "previous_ingress_from": previous, "valid": true
    }})
}

/// A `rate(hubble_drop_total[5m])` series summary from `source` to `destination`.
fn drop_series(source: &str, destination: &str, first: f64, last: f64, since: &str) -> Value {
    json!({
        "name": source,
        "labels": {"reason": "POLICY_DENIED", "protocol": "TCP", "source": source, "destination": destination},
        "samples": 61, "min": first, "max": last, "mean": last / 2.0, "first": first, "last": last,
        "last_at": "2026-06-01T12:00:00Z",
        "change": if first == 0.0 {json!({"at": since, "before": 0.0, "after": last})} else {Value::Null},
        "crossings": [{"start": since, "end": "2026-06-01T12:00:00Z", "peak": last}],
        "score": 1.0
    })
}

/// A frontend pod in `shop` (the source of the dropped flows).
fn frontend_pod(name: &str) -> Value {
    pod(
        name,
        "Running",
        true,
        Some("node-1"),
        Some(("ReplicaSet", "frontend-6c9d")),
        vec![container("web", "running", true, 0, json!({}))],
        json!({"labels": {"app": "frontend"}, "all_labels": {"app": "frontend"}}),
    )
}

/// The api pods with every label, so policies can select them.
fn labelled_api_pods() -> Objects {
    ["api-5d8f7-a", "api-5d8f7-b"]
        .into_iter()
        .map(|n| {
            let Value::Object(mut p) = healthy_pod(n, "node-1") else {
                unreachable!()
            };
            merge(&mut p["Pod"], json!({"all_labels": {"app": "api"}}));
            ("c1", "pods", Value::Object(p))
        })
        .collect()
}

/// The policy-drops world: `api-ingress` changed at 11:30 no longer admits app=frontend and
/// frontend → api drops began at 11:32; `default-deny` and a crawler's steady drops are noise.
fn policy_drop_world() -> Objects {
    let mut v = labelled_api_pods();
    v.extend([
        ("c1", "pods", frontend_pod("frontend-6c9d-a")),
        (
            "c1",
            "ciliumnetworkpolicies",
            netpol(
                "CiliumNetworkPolicy",
                "api-ingress",
                json!({"app": "api"}),
                json!([{"app": "storefront"}]),
                json!([{"app": "frontend"}]),
                "2026-06-01T11:30:00Z",
            ),
        ),
        (
            "c1",
            "ciliumnetworkpolicies",
            netpol(
                "CiliumNetworkPolicy",
                "default-deny",
                json!({}),
                json!([]),
                Value::Null,
                "2026-01-01T00:00:00Z",
            ),
        ),
        (
            "c1",
            "metrics",
            drop_series(
                "shop/frontend",
                "shop/api",
                0.0,
                42.0,
                "2026-06-01T11:32:00Z",
            ),
        ),
        (
            "c1",
            "metrics",
            drop_series("shop/crawler", "shop/api", 0.3, 0.3, "2026-06-01T11:00:00Z"),
        ),
    ]);
    v
}

/// The stale-subPath world: ConfigMap `api-config`, mounted with subPath, written at 11:00,
/// after the api pods' containers started at 10:00.
fn stale_subpath_world(data_changed: &str) -> Objects {
    let mount = json!({"subpath_mounts": [{"container": "api", "source_kind": "ConfigMap", "source": "api-config", "mount_path": "/etc/api/app.yaml", "sub_path": "app.yaml"}]});
    let mut v: Objects = ["api-5d8f7-a", "api-5d8f7-b"]
        .into_iter()
        .map(|n| {
            (
                "c1",
                "pods",
                pod(
                    n,
                    "Running",
                    true,
                    Some("node-1"),
                    Some(("ReplicaSet", "api-5d8f7")),
                    vec![container(
                        "api",
                        "running",
                        true,
                        0,
                        json!({"started_at": "2026-06-01T10:00:05Z"}),
                    )],
                    mount.clone(),
                ),
            )
        })
        .collect();
    v.push((
        "c1",
        "configmaps",
        json!({"Meta": {"kind": "ConfigMap", "name": "api-config", "namespace": "shop", "uid": null, "labels": {}, "created": "2026-05-01T00:00:00Z", "data_changed": data_changed, "data_changed_by": "kubectl-edit"}}),
    ));
    v
}

fn res(cpu: u64, mem_mi: u64, gpu: u64) -> Value {
    json!({"cpu_milli": cpu, "memory_bytes": mem_mi << 20, "gpu": gpu})
}

fn container(name: &str, state: &str, ready: bool, restarts: i32, extra: Value) -> Value {
    let mut c = json!({
        "name": name, "image": format!("registry.example/{name}:v2"), "init": false,
        "ready": ready, "restarts": restarts, "state": state,
        "requests": res(100, 128, 0), "limits": res(500, 256, 0)
    });
    merge(&mut c, extra);
    c
}

fn pod(
    name: &str,
    phase: &str,
    ready: bool,
    node: Option<&str>,
    owner: Option<(&str, &str)>,
    containers: Vec<Value>,
    extra: Value,
) -> Value {
    let mut p = json!({
        "name": name, "namespace": "shop", "uid": null, "node": node, "phase": phase,
        "ready": ready, "restarts": containers.iter().map(|c| c["restarts"].as_i64().unwrap()).sum::<i64>(),
        "containers": containers,
        "owner": owner.map(|(k, n)| json!({"kind": k, "name": n})),
        "conditions": [], "requests": res(100, 128, 0), "labels": {"app": "api"},
        "created": "2026-06-01T10:00:00Z", "started": "2026-06-01T10:00:05Z"
    });
    merge(&mut p, extra);
    json!({"Pod": p})
}

fn healthy_pod(name: &str, node: &str) -> Value {
    pod(
        name,
        "Running",
        true,
        Some(node),
        Some(("ReplicaSet", "api-5d8f7")),
        vec![container("api", "running", true, 0, json!({}))],
        json!({}),
    )
}

fn workload(kind: &str, name: &str, desired: i32, ready: i32, extra: Value) -> Value {
    let mut w = json!({
        "kind": kind, "name": name, "namespace": "shop", "uid": null,
        "desired": desired, "ready": ready, "updated": ready, "available": ready,
        "images": [format!("registry.example/{name}:v2")], "selector": "app=api",
        "revision": null, "stale_generation": false, "paused": false, "strategy": null,
        "conditions": [], "labels": {}, "annotations": {}, "owner": null, "created": null
    });
    merge(&mut w, extra);
    json!({"Workload": w})
}

fn node(name: &str, ready: bool, extra: Value) -> Value {
    let mut n = json!({
        "name": name, "uid": null, "ready": ready, "unschedulable": false,
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"Unknown"}, "reason": if ready {"KubeletReady"} else {"NodeStatusUnknown"}, "message": "kubelet status"}],
        "taints": [], "capacity": res(8000, 32768, 0), "allocatable": res(7800, 30000, 0),
        "requested": res(2000, 4096, 0), "pods": 10, "gpu": null, "labels": {},
        "kubelet": "v1.31.2", "created": null
    });
    merge(&mut n, extra);
    json!({"Node": n})
}

fn service(name: &str, ready: u32, not_ready: u32) -> Value {
    json!({"Service": {
        "name": name, "namespace": "shop", "uid": null, "type_": "ClusterIP",
        "selector": {"app": name}, "ports": ["80/TCP"], "ready_endpoints": ready,
        "not_ready_endpoints": not_ready, "ready_pods": [], "not_ready_pods": []
    }})
}

fn event(kind: &str, name: &str, reason: &str, message: &str) -> Value {
    json!({
        "type_": "Warning", "reason": reason, "kind": kind, "namespace": "shop", "name": name,
        "uid": null, "message": message, "count": 5, "first_seen": "2026-06-01T10:00:00Z",
        "last_seen": "2026-06-01T10:05:00Z", "source": null
    })
}

fn gpu_node(name: &str, util: f64, extra_gpu: Value) -> Value {
    let mut g = json!({"gpu": "0", "uuid": null, "model": "A100", "util": util, "util_avg_30m": util,
        "fb_used_mib": 1000.0, "temp_c": 60.0, "power_w": 200.0, "xid": 0.0, "ecc_dbe": 0.0, "ecc_sbe": 0.0});
    merge(&mut g, extra_gpu);
    let Value::Object(mut n) = node(
        name,
        true,
        json!({"capacity": res(96000, 900000, 8), "allocatable": res(96000, 900000, 8)}),
    ) else {
        unreachable!()
    };
    let n = n.remove("Node").unwrap();
    json!({"node": n, "gpus": [g], "pods": [{"namespace": "ai", "name": "llama-1", "gpus": 1, "phase": "Running", "ready": true, "restarts": 0, "owner": "ReplicaSet/llama-7c"}], "flags": []})
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// The healthy baseline every fixture starts from.
fn healthy() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("c1", "pods", healthy_pod("api-5d8f7-a", "node-1")),
        ("c1", "pods", healthy_pod("api-5d8f7-b", "node-2")),
        (
            "c1",
            "deployments",
            workload("Deployment", "api", 2, 2, json!({})),
        ),
        (
            "c1",
            "replicasets",
            workload(
                "ReplicaSet",
                "api-5d8f7",
                2,
                2,
                json!({"revision": "3", "owner": {"kind": "Deployment", "name": "api"}}),
            ),
        ),
        (
            "c1",
            "replicasets",
            workload(
                "ReplicaSet",
                "api-4c7e6",
                0,
                0,
                json!({"revision": "2", "owner": {"kind": "Deployment", "name": "api"}}),
            ),
        ),
        ("c1", "nodes", node("node-1", true, json!({}))),
        ("c1", "nodes", node("node-2", true, json!({}))),
        (
            "c1",
            "nodes",
            node(
                "gpu-1",
                true,
                json!({"capacity": res(96000, 900000, 8), "allocatable": res(96000, 900000, 8), "labels": {"nvidia.com/gpu.product": "A100"}}),
            ),
        ),
        (
            "c1",
            "nodes",
            node(
                "gpu-2",
                true,
                json!({"capacity": res(96000, 900000, 8), "allocatable": res(96000, 900000, 8), "labels": {"nvidia.com/gpu.product": "A100"}}),
            ),
        ),
        ("c1", "services", service("api", 2, 0)),
        (
            "c1",
            "hpas",
            json!({"Hpa": {"name": "api", "namespace": "shop", "uid": null, "target": "Deployment/api", "min": 2, "max": 10, "current": 2, "desired": 2, "metrics": ["cpu 40%/70%"], "conditions": []}}),
        ),
        (
            "c1",
            "pdbs",
            json!({"Pdb": {"name": "api", "namespace": "shop", "uid": null, "selector": "app=api", "min_available": "1", "max_unavailable": null, "current_healthy": 2, "desired_healthy": 1, "disruptions_allowed": 1, "expected_pods": 2}}),
        ),
        ("c1", "gpu", gpu_node("gpu-1", 50.0, json!({}))),
        ("c1", "gpu", gpu_node("gpu-2", 45.0, json!({}))),
        (
            "c1",
            "applications",
            json!({"Application": {"name": "api", "namespace": "argocd", "uid": null, "project": "default", "repo_url": "https://github.com/acme/deploy", "path": "api", "target_revision": "main", "sync": "Synced", "revision": "abc123", "health": "Healthy", "health_message": null, "destination": "in-cluster/shop", "operation": null, "automated": true, "conditions": []}}),
        ),
        (
            "c1",
            "vmis",
            json!({"Vm": {"kind": "VirtualMachineInstance", "name": "db-vm", "namespace": "shop", "uid": null, "status": "Running", "run_strategy": "Always", "node": "node-1", "ready": true, "migration": null, "conditions": []}}),
        ),
        (
            "c1",
            "resourceclaims",
            json!({"ResourceClaim": {"name": "gpu-claim", "namespace": "ai", "uid": null, "requests": ["gpu.nvidia.com"], "allocated": true, "devices": ["gpu-0"], "reserved_for": ["pod/llama-1"]}}),
        ),
    ]
}

/// Replace the baseline entry of (cluster, kind, name) or add the object.
fn with(
    mut world: Vec<(&'static str, &'static str, Value)>,
    changes: Vec<(&'static str, &'static str, Value)>,
) -> Vec<(&'static str, &'static str, Value)> {
    fn name_of(v: &Value) -> String {
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|inner| {
                inner
                    .get("name")
                    .or_else(|| inner.get("node").and_then(|n| n.get("name")))
            })
            .and_then(Value::as_str)
            .or_else(|| {
                v.get("node")
                    .and_then(|n| n.get("name"))
                    .and_then(Value::as_str)
            })
            .or_else(|| v.get("name").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string()
    }
    for (c, k, v) in changes {
        let n = name_of(&v);
        if let Some(slot) = world
            .iter_mut()
            .find(|(wc, wk, wv)| *wc == c && *wk == k && name_of(wv) == n && k != "events")
        {
            slot.2 = v;
        } else {
            world.push((c, k, v));
        }
    }
    world
}

async fn analyze(world: Vec<(&'static str, &'static str, Value)>) -> Vec<medic_agent::Finding> {
    let mut map: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut clusters: Vec<String> = Vec::new();
    for (c, k, v) in world {
        if !clusters.contains(&c.to_string()) {
            clusters.push(c.to_string());
        }
        map.entry((c.into(), k.into())).or_default().push(v);
    }
    let world: World = Arc::new(map);
    let mut reg = Registry::new();
    reg.register(FakeList(world.clone()));
    reg.register(FakeEvents(world.clone()));
    reg.register(FakeGpu(world.clone()));
    reg.register(FakeMetrics(world));
    let set = AnalyzerSet::standard();
    let plan = set.collection(&reg.names(), &clusters, None);
    let ctx = ToolContext::new();
    let mut results: Vec<(String, ToolResult)> = Vec::new();
    for (i, (tool, args)) in plan.into_iter().enumerate() {
        let r = reg.call(&ctx, &tool, args).await.unwrap();
        assert!(r.error.is_none(), "{}", r.text);
        results.push((format!("c{}", i + 1), r));
    }
    let now = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    // Follow-ups (the GPU view where there are GPU nodes), as a session runs them.
    let first = set.run(&Observations::new(&results, now));
    let more = set.follow_ups(&first, &Observations::new(&results, now), &reg.names());
    for (tool, args) in more {
        let r = reg.call(&ctx, &tool, args).await.unwrap();
        assert!(r.error.is_none(), "{}", r.text);
        results.push((format!("c{}", results.len() + 1), r));
    }
    let labels = BTreeMap::from([
        (
            "c1".to_string(),
            BTreeMap::from([("residency".to_string(), "eu".to_string())]),
        ),
        (
            "c2".to_string(),
            BTreeMap::from([("residency".to_string(), "eu".to_string())]),
        ),
    ]);
    set.run(&Observations::new(&results, now).with_cluster_labels(labels))
}

fn classes(findings: &[medic_agent::Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| f.id.split(':').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn healthy_world_has_no_findings() {
    let f = analyze(healthy()).await;
    assert!(f.is_empty(), "{f:#?}");
}

fn crashing(reason: &str, exit: i32, term_reason: &str) -> Value {
    pod(
        "api-7f9c2-x",
        "Running",
        false,
        Some("node-1"),
        Some(("ReplicaSet", "api-7f9c2")),
        vec![container(
            "api",
            "waiting",
            false,
            6,
            json!({"reason": reason, "last_terminated": {"reason": term_reason, "exit_code": exit, "finished_at": "2026-06-01T11:59:00Z"}}),
        )],
        json!({}),
    )
}

fn pending(msg: &str) -> Value {
    pod(
        "api-5d8f7-p",
        "Pending",
        false,
        None,
        Some(("ReplicaSet", "api-5d8f7")),
        vec![container(
            "api",
            "waiting",
            false,
            0,
            json!({"reason": "ContainerCreating"}),
        )],
        json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}),
    )
}

/// (class, changes to the healthy world, expected playbook if any)
/// (cluster, kind, object) entries of a fixture world.
type Objects = Vec<(&'static str, &'static str, Value)>;

fn cases() -> Vec<(&'static str, Objects, Option<&'static str>)> {
    vec![
        (
            "stale-subpath-config",
            stale_subpath_world("2026-06-01T11:00:00Z"),
            Some("rollout-restart"),
        ),
        ("policy-drops", policy_drop_world(), None),
        (
            "crashloop-oom",
            vec![("c1", "pods", crashing("CrashLoopBackOff", 137, "OOMKilled"))],
            Some("raise-memory-limit"),
        ),
        (
            "crashloop",
            vec![("c1", "pods", crashing("CrashLoopBackOff", 1, "Error"))],
            None,
        ),
        (
            "missing-config",
            vec![(
                "c1",
                "pods",
                pod(
                    "api-5d8f7-c",
                    "Pending",
                    false,
                    Some("node-1"),
                    Some(("ReplicaSet", "api-5d8f7")),
                    vec![container(
                        "api",
                        "waiting",
                        false,
                        0,
                        json!({"reason": "CreateContainerConfigError", "message": "configmap \"api-config\" not found"}),
                    )],
                    json!({}),
                ),
            )],
            None,
        ),
        (
            "image-pull",
            vec![(
                "c1",
                "pods",
                pod(
                    "api-5d8f7-i",
                    "Pending",
                    false,
                    Some("node-1"),
                    Some(("ReplicaSet", "api-5d8f7")),
                    vec![container(
                        "api",
                        "waiting",
                        false,
                        0,
                        json!({"reason": "ImagePullBackOff", "message": "manifest unknown"}),
                    )],
                    json!({}),
                ),
            )],
            None,
        ),
        (
            "pending-cpu",
            vec![(
                "c1",
                "pods",
                pending("0/2 nodes are available: 2 Insufficient cpu."),
            )],
            None,
        ),
        (
            "pending-memory",
            vec![(
                "c1",
                "pods",
                pending("0/2 nodes are available: 2 Insufficient memory."),
            )],
            None,
        ),
        (
            "pending-gpu",
            vec![(
                "c1",
                "pods",
                pending("0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
            )],
            None,
        ),
        (
            "pending-taint",
            vec![(
                "c1",
                "pods",
                pending(
                    "0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}.",
                ),
            )],
            None,
        ),
        (
            "pending-affinity",
            vec![(
                "c1",
                "pods",
                pending(
                    "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
                ),
            )],
            None,
        ),
        (
            "pending-pvc",
            vec![(
                "c1",
                "pods",
                pending(
                    "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                ),
            )],
            None,
        ),
        (
            "probe-failing",
            vec![
                (
                    "c1",
                    "pods",
                    pod(
                        "api-5d8f7-a",
                        "Running",
                        false,
                        Some("node-1"),
                        Some(("ReplicaSet", "api-5d8f7")),
                        vec![container("api", "running", false, 0, json!({}))],
                        json!({}),
                    ),
                ),
                (
                    "c1",
                    "events",
                    event(
                        "Pod",
                        "api-5d8f7-a",
                        "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    ),
                ),
            ],
            Some("rollout-restart"),
        ),
        (
            "bad-rollout",
            vec![
                (
                    "c1",
                    "replicasets",
                    workload(
                        "ReplicaSet",
                        "api-7f9c2",
                        1,
                        0,
                        json!({"revision": "4", "owner": {"kind": "Deployment", "name": "api"}}),
                    ),
                ),
                ("c1", "pods", crashing("CrashLoopBackOff", 1, "Error")),
            ],
            Some("rollback"),
        ),
        (
            "hpa-at-max",
            vec![(
                "c1",
                "hpas",
                json!({"Hpa": {"name": "api", "namespace": "shop", "uid": null, "target": "Deployment/api", "min": 2, "max": 10, "current": 10, "desired": 10, "metrics": ["cpu 180%/70%"], "conditions": []}}),
            )],
            None,
        ),
        (
            "keda-at-max",
            vec![
                (
                    "c1",
                    "scaledobjects",
                    json!({"ScaledObject": {"name": "llama", "namespace": "shop", "uid": null, "target": "Deployment/llama", "min": 2, "max": 6, "triggers": ["prometheus"], "hpa": "keda-hpa-llama", "paused": false, "conditions": []}}),
                ),
                (
                    "c1",
                    "hpas",
                    json!({"Hpa": {"name": "keda-hpa-llama", "namespace": "shop", "uid": null, "target": "Deployment/llama", "min": 2, "max": 6, "current": 6, "desired": 6, "metrics": ["external"], "conditions": []}}),
                ),
            ],
            None,
        ),
        (
            "pdb-blocking-drain",
            vec![
                (
                    "c1",
                    "pdbs",
                    json!({"Pdb": {"name": "api", "namespace": "shop", "uid": null, "selector": "app=api", "min_available": "2", "max_unavailable": null, "current_healthy": 2, "desired_healthy": 2, "disruptions_allowed": 0, "expected_pods": 2}}),
                ),
                (
                    "c1",
                    "nodes",
                    node("node-2", true, json!({"unschedulable": true})),
                ),
            ],
            None,
        ),
        (
            "quota-exceeded",
            vec![(
                "c1",
                "events",
                event(
                    "ReplicaSet",
                    "api-5d8f7",
                    "FailedCreate",
                    "pods \"api-5d8f7-z\" is forbidden: exceeded quota: shop-quota, requested: cpu=500m, used: cpu=4, limited: cpu=4",
                ),
            )],
            None,
        ),
        (
            "service-no-endpoints",
            vec![("c1", "services", service("web", 0, 2))],
            None,
        ),
        (
            "httproute-unhealthy-backend",
            vec![
                ("c1", "services", service("api-canary", 0, 1)),
                (
                    "c1",
                    "httproutes",
                    json!({"HttpRoute": {"name": "api", "namespace": "shop", "uid": null, "parents": ["gw"], "hostnames": ["api.example"], "rules": [{"matches": ["/"], "backends": [
                {"kind": "Service", "name": "api-canary", "namespace": null, "port": 80, "weight": 50},
                {"kind": "Service", "name": "api", "namespace": null, "port": 80, "weight": 50}]}], "conditions": []}}),
                ),
            ],
            Some("failover"),
        ),
        (
            "regional-outage",
            vec![
                (
                    "c1",
                    "deployments",
                    workload("Deployment", "api", 2, 0, json!({})),
                ),
                (
                    "c2",
                    "deployments",
                    workload("Deployment", "api", 1, 1, json!({})),
                ),
                ("c2", "services", service("api", 1, 0)),
                (
                    "c2",
                    "httproutes",
                    json!({"HttpRoute": {"name": "api", "namespace": "shop", "uid": null, "parents": ["gw"], "hostnames": ["api.example"], "rules": [{"matches": ["/"], "backends": [
                {"kind": "ServiceImport", "name": "api-c1", "namespace": null, "port": 80, "weight": 100},
                {"kind": "Service", "name": "api", "namespace": null, "port": 80, "weight": 0}]}], "conditions": []}}),
                ),
            ],
            Some("failover"),
        ),
        (
            "node-not-ready",
            vec![("c1", "nodes", node("node-2", false, json!({})))],
            None,
        ),
        (
            "node-pressure",
            vec![(
                "c1",
                "nodes",
                node(
                    "node-2",
                    true,
                    json!({"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True", "message": "available memory 90Mi"}]}),
                ),
            )],
            None,
        ),
        (
            "node-cordoned",
            vec![
                (
                    "c1",
                    "nodes",
                    node("node-2", true, json!({"unschedulable": true})),
                ),
                // Drained: its workload pod now runs elsewhere.
                ("c1", "pods", healthy_pod("api-5d8f7-b", "node-1")),
                (
                    "c1",
                    "pods",
                    pending(
                        "0/2 nodes are available: 1 node(s) were unschedulable, 1 Insufficient cpu.",
                    ),
                ),
            ],
            Some("uncordon"),
        ),
        (
            "gpu-xid",
            vec![("c1", "gpu", gpu_node("gpu-2", 0.0, json!({"xid": 79.0})))],
            Some("gpu-rebalance"),
        ),
        (
            "gpu-ecc",
            vec![(
                "c1",
                "gpu",
                gpu_node("gpu-2", 40.0, json!({"ecc_dbe": 3.0})),
            )],
            Some("gpu-rebalance"),
        ),
        (
            "gpu-thermal",
            vec![(
                "c1",
                "gpu",
                gpu_node("gpu-2", 40.0, json!({"temp_c": 91.0})),
            )],
            Some("gpu-rebalance"),
        ),
        (
            "gpu-skew",
            vec![
                ("c1", "gpu", gpu_node("gpu-1", 98.0, json!({}))),
                ("c1", "gpu", gpu_node("gpu-2", 2.0, json!({}))),
            ],
            Some("gpu-rebalance"),
        ),
        (
            "gpu-lost",
            vec![(
                "c1",
                "nodes",
                node(
                    "gpu-3",
                    true,
                    json!({"capacity": res(96000, 900000, 8), "allocatable": res(96000, 900000, 7)}),
                ),
            )],
            Some("gpu-rebalance"),
        ),
        (
            "gpu-plugin-missing",
            vec![(
                "c1",
                "nodes",
                node(
                    "gpu-2",
                    true,
                    json!({"labels": {"nvidia.com/gpu.product": "A100"}, "kubelet": "v1.32.1"}),
                ),
            )],
            None,
        ),
        (
            "gpu-xid-event",
            vec![(
                "c1",
                "events",
                json!({"type_": "Warning", "reason": "GPUXidError", "kind": "Node", "namespace": "", "name": "gpu-2", "uid": null,
            "message": "NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.", "count": 1, "first_seen": null, "last_seen": null, "source": "node-problem-detector"}),
            )],
            Some("gpu-rebalance"),
        ),
        (
            "dra-unallocated",
            vec![(
                "c1",
                "resourceclaims",
                json!({"ResourceClaim": {"name": "gpu-claim", "namespace": "ai", "uid": null, "requests": ["gpu.nvidia.com"], "allocated": false, "devices": [], "reserved_for": []}}),
            )],
            None,
        ),
        (
            "vm-failed",
            vec![(
                "c1",
                "vmis",
                json!({"Vm": {"kind": "VirtualMachineInstance", "name": "db-vm", "namespace": "shop", "uid": null, "status": "Failed", "run_strategy": "Always", "node": null, "ready": false, "migration": null, "conditions": []}}),
            )],
            Some("restart-vm"),
        ),
        (
            "vm-migration-stuck",
            vec![(
                "c1",
                "vmis",
                json!({"Vm": {"kind": "VirtualMachineInstance", "name": "db-vm", "namespace": "shop", "uid": null, "status": "Running", "run_strategy": "Always", "node": "node-1", "ready": true,
            "migration": {"source_node": "node-1", "target_node": "node-2", "completed": false, "failed": true, "started": "2026-06-01T11:00:00Z", "ended": null}, "conditions": []}}),
            )],
            Some("migrate-vm"),
        ),
        (
            "argocd-degraded",
            vec![(
                "c1",
                "applications",
                json!({"Application": {"name": "api", "namespace": "argocd", "uid": null, "project": "default", "repo_url": "https://github.com/acme/deploy", "path": "api", "target_revision": "main", "sync": "Synced", "revision": "def456", "health": "Degraded", "health_message": "Deployment api exceeded its progress deadline", "destination": "in-cluster/shop", "operation": null, "automated": true, "conditions": []}}),
            )],
            None,
        ),
        (
            "argocd-out-of-sync",
            vec![(
                "c1",
                "applications",
                json!({"Application": {"name": "api", "namespace": "argocd", "uid": null, "project": "default", "repo_url": "https://github.com/acme/deploy", "path": "api", "target_revision": "main", "sync": "OutOfSync", "revision": "abc123", "health": "Healthy", "health_message": null, "destination": "in-cluster/shop", "operation": "Sync failed", "automated": true, "conditions": []}}),
            )],
            None,
        ),
    ]
}

#[tokio::test]
async fn every_class_fires_on_its_fixture() {
    let all = cases();
    let names = AnalyzerSet::standard().names();
    assert!(names.len() >= 25, "{names:?}");
    // Every built-in class has a fixture.
    for n in &names {
        assert!(
            all.iter().any(|(c, _, _)| c == n),
            "class {n} has no fixture"
        );
    }
    for (class, changes, playbook) in all {
        let findings = analyze(with(healthy(), changes)).await;
        let f = findings
            .iter()
            .find(|f| f.id.starts_with(&format!("{class}:")))
            .unwrap_or_else(|| panic!("{class} did not fire; got {:?}", classes(&findings)));
        assert!(!f.evidence.is_empty(), "{class}: no evidence");
        assert!(f.source == format!("analyzer:{class}"));
        match playbook {
            Some(p) => assert!(
                f.suggests.iter().any(|s| s.name == p),
                "{class}: expected {p}, got {:?}",
                f.suggests
            ),
            None => assert!(
                f.suggests.is_empty(),
                "{class}: expected no remediation, got {:?}",
                f.suggests
            ),
        }
        for s in &f.suggests {
            assert!(medic_agent::PLAYBOOK_CATALOGUE.contains(&s.name.as_str()));
        }
    }
}

fn bad_rollout_world(
    extra: Vec<(&'static str, &'static str, Value)>,
) -> Vec<(&'static str, &'static str, Value)> {
    let mut changes = vec![
        (
            "c1",
            "replicasets",
            workload(
                "ReplicaSet",
                "api-7f9c2",
                1,
                0,
                json!({"revision": "4", "owner": {"kind": "Deployment", "name": "api"}}),
            ),
        ),
        ("c1", "pods", crashing("CrashLoopBackOff", 1, "Error")),
    ];
    changes.extend(extra);
    with(healthy(), changes)
}

#[tokio::test]
async fn rollback_pins_the_last_healthy_replicaset_and_symptoms_propose_nothing() {
    let f = analyze(bad_rollout_world(vec![])).await;
    let rollout = f.iter().find(|f| f.id.starts_with("bad-rollout:")).unwrap();
    // Revision 3 (api-5d8f7) serves 2/2; revision 2 is older and scaled to 0.
    assert_eq!(
        rollout.suggests[0].params,
        json!({"to_revision": 3, "pod_template_hash": "5d8f7"})
    );
    let symptom = f.iter().find(|f| f.id.starts_with("crashloop:")).unwrap();
    assert!(symptom.suggests.is_empty(), "{symptom:#?}");
    assert!(
        symptom
            .root_cause
            .contains("bad-rollout:Deployment/shop/api")
    );
}

#[tokio::test]
async fn a_completed_rollout_is_not_a_bad_rollout() {
    let f = analyze(bad_rollout_world(vec![(
        "c1",
        "deployments",
        workload(
            "Deployment",
            "api",
            2,
            2,
            json!({"conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet \"api-7f9c2\" has successfully progressed."}]}),
        ),
    )]))
    .await;
    assert!(
        !classes(&f).contains(&"bad-rollout".to_string()),
        "{:?}",
        classes(&f)
    );
}

#[tokio::test]
async fn a_config_crash_cites_the_configmap_and_proposes_nothing() {
    let crash = pod(
        "api-5d8f7-c",
        "Running",
        false,
        Some("node-1"),
        Some(("ReplicaSet", "api-5d8f7")),
        vec![container(
            "api",
            "waiting",
            false,
            4,
            json!({"reason": "CrashLoopBackOff", "last_terminated": {"reason": "Error", "exit_code": 2, "message": "yaml: line 14: did not find expected key"}}),
        )],
        json!({"configmaps": ["cart-config"]}),
    );
    let f = analyze(with(healthy(), vec![("c1", "pods", crash)])).await;
    let c = f.iter().find(|f| f.id.starts_with("crashloop:")).unwrap();
    assert!(c.suggests.is_empty());
    assert!(c.root_cause.contains("cart-config"), "{}", c.root_cause);
    assert!(c.evidence.iter().any(|e| matches!(
        e,
        medic_agent::protocol::EvidenceRef::Source(medic_tools::EvidenceRef::Object(o))
            if o.kind == "ConfigMap" && o.name == "cart-config"
    )));
}

#[tokio::test]
async fn a_node_cordoned_for_a_gpu_fault_is_neither_uncordoned_nor_drained_again() {
    let f = analyze(with(
        healthy(),
        vec![
            (
                "c1",
                "nodes",
                node(
                    "gpu-2",
                    true,
                    json!({"unschedulable": true, "capacity": res(96000, 900000, 8), "allocatable": res(96000, 900000, 7), "labels": {"nvidia.com/gpu.product": "A100"}}),
                ),
            ),
            (
                "c1",
                "pods",
                pending("0/4 nodes are available: 1 node(s) were unschedulable, 3 Insufficient nvidia.com/gpu."),
            ),
        ],
    ))
    .await;
    assert!(
        classes(&f).contains(&"gpu-lost".to_string()),
        "{:?}",
        classes(&f)
    );
    for x in &f {
        assert!(x.suggests.iter().all(|s| s.name != "uncordon"), "{x:#?}");
        if x.id.starts_with("gpu-lost:") {
            // Cordoned with no GPU pods left: nothing for a drain to do.
            assert!(x.suggests.is_empty(), "{x:#?}");
        }
    }
}

#[tokio::test]
async fn a_node_still_being_drained_is_not_uncordoned() {
    let f = analyze(with(
        healthy(),
        vec![
            (
                "c1",
                "nodes",
                node("node-2", true, json!({"unschedulable": true})),
            ),
            (
                "c1",
                "pods",
                pending(
                    "0/2 nodes are available: 1 node(s) were unschedulable, 1 Insufficient cpu.",
                ),
            ),
        ],
    ))
    .await;
    // api-5d8f7-b still runs on node-2: someone's drain is in progress.
    for x in &f {
        assert!(x.suggests.iter().all(|s| s.name != "uncordon"), "{x:#?}");
    }
}

#[tokio::test]
async fn replicas_timing_out_together_are_scaled_not_restarted() {
    let slow = |name: &'static str| {
        pod(
            name,
            "Running",
            false,
            Some("node-1"),
            Some(("ReplicaSet", "web-6b5c4")),
            vec![container("web", "running", false, 3, json!({}))],
            json!({}),
        )
    };
    let probe = |name: &'static str| {
        (
            "c1",
            "events",
            event(
                "Pod",
                name,
                "Unhealthy",
                "Liveness probe failed: Get \"http://10.0.0.9:8080/healthz\": context deadline exceeded",
            ),
        )
    };
    let world = |n: usize| {
        let mut changes = vec![
            (
                "c1",
                "deployments",
                workload("Deployment", "web", 3, 1, json!({})),
            ),
            (
                "c1",
                "replicasets",
                workload(
                    "ReplicaSet",
                    "web-6b5c4",
                    3,
                    1,
                    json!({"revision": "1", "owner": {"kind": "Deployment", "name": "web"}}),
                ),
            ),
            ("c1", "pods", slow("web-6b5c4-a")),
            probe("web-6b5c4-a"),
        ];
        if n > 1 {
            changes.push(("c1", "pods", slow("web-6b5c4-b")));
            changes.push(probe("web-6b5c4-b"));
        }
        with(healthy(), changes)
    };
    // One replica timing out: a restart.
    let f = analyze(world(1)).await;
    let p = f
        .iter()
        .find(|f| f.id.starts_with("probe-failing:"))
        .unwrap();
    assert_eq!(p.suggests[0].name, "rollout-restart", "{p:#?}");
    // Two at once: overloaded, more replicas (3 → 4).
    let f = analyze(world(2)).await;
    let p = f
        .iter()
        .find(|f| f.id.starts_with("probe-failing:"))
        .unwrap();
    assert_eq!(p.suggests[0].name, "scale", "{p:#?}");
    assert_eq!(p.suggests[0].params, json!({"replicas": 4}));
    assert!(p.root_cause.contains("overloaded"), "{}", p.root_cause);
}

// ---------------------------------------------------------------- policy drops

fn finding<'a>(
    findings: &'a [medic_agent::Finding],
    class: &str,
) -> Option<&'a medic_agent::Finding> {
    findings
        .iter()
        .find(|f| f.id.starts_with(&format!("{class}:")))
}

fn cites(f: &medic_agent::Finding, kind: &str, name: &str) -> bool {
    use medic_agent::protocol::EvidenceRef as E;
    f.evidence.iter().any(|e| {
        matches!(e, E::Source(medic_tools::EvidenceRef::Object(o)) if o.kind == kind && o.name == name)
    })
}

#[tokio::test]
async fn the_policy_changed_just_before_policy_denied_drops_is_named_with_evidence() {
    use medic_agent::protocol::EvidenceRef as E;
    let findings = analyze(with(healthy(), policy_drop_world())).await;
    let f = finding(&findings, "policy-drops").unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f.id, "policy-drops:CiliumNetworkPolicy/shop/api-ingress");
    assert!(
        f.summary.contains("shop/frontend to shop/api"),
        "{}",
        f.summary
    );
    for want in [
        "policy denied",
        "2026-06-01T11:30:00Z by helm",
        "2 min before",
        "no longer admits app=frontend",
        "now admits app=storefront instead",
        "meta.helm.sh/release-name=shop-policies",
        "medic has no playbook",
    ] {
        assert!(
            f.root_cause.contains(want),
            "{want:?} not in {}",
            f.root_cause
        );
    }
    assert!(f.confidence.0 >= 0.8);
    assert!(f.suggests.is_empty(), "{:?}", f.suggests);
    // The metric, the policy and both ends' pods are cited.
    assert!(
        f.evidence
            .iter()
            .any(|e| matches!(e, E::ToolCall { tool, .. } if tool == "metrics"))
    );
    assert!(f.evidence.iter().any(|e| matches!(e, E::Source(medic_tools::EvidenceRef::Series { query, .. }) if query.contains("hubble_drop_total"))));
    assert!(cites(f, "Pod", "api-5d8f7-a") && cites(f, "Pod", "frontend-6c9d-a"));
    // The crawler's all-day drops are background, not a second finding.
    assert_eq!(
        classes(&findings)
            .iter()
            .filter(|c| *c == "policy-drops")
            .count(),
        1
    );
}

#[tokio::test]
async fn steady_background_drops_are_not_a_finding() {
    let world: Objects = policy_drop_world()
        .into_iter()
        .filter(|(_, k, v)| *k != "metrics" || v["labels"]["source"] == "shop/crawler")
        .collect();
    let findings = analyze(with(healthy(), world)).await;
    assert!(
        finding(&findings, "policy-drops").is_none(),
        "{findings:#?}"
    );
}

#[tokio::test]
async fn a_policy_changed_after_the_drops_began_is_not_blamed() {
    let mut world = policy_drop_world();
    for (_, _, v) in world.iter_mut() {
        if v["NetworkPolicy"]["name"] == "api-ingress" {
            v["NetworkPolicy"]["spec_changed"] = json!("2026-06-01T11:50:00Z");
        }
    }
    let findings = analyze(with(healthy(), world)).await;
    let f = finding(&findings, "policy-drops").unwrap();
    // Only the months-old default-deny is left: named, with less confidence.
    assert_eq!(f.id, "policy-drops:CiliumNetworkPolicy/shop/default-deny");
    assert!(f.confidence.0 < 0.8, "{}", f.confidence.0);
}

// ---------------------------------------------------------------- stale subPath config

#[tokio::test]
async fn a_configmap_written_after_its_subpath_pods_started_asks_for_a_restart() {
    let findings = analyze(with(healthy(), stale_subpath_world("2026-06-01T11:00:00Z"))).await;
    let f = finding(&findings, "stale-subpath-config").unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f.id, "stale-subpath-config:Deployment/shop/api");
    assert!(
        f.summary.contains("stale config") && f.summary.contains("subPath"),
        "{}",
        f.summary
    );
    for want in [
        "ConfigMap shop/api-config",
        "key app.yaml",
        "/etc/api/app.yaml",
        "2026-06-01T11:00:00Z by kubectl-edit",
        "all 2 pod(s)",
        "never updates subPath mounts",
    ] {
        assert!(
            f.root_cause.contains(want),
            "{want:?} not in {}",
            f.root_cause
        );
    }
    assert!(cites(f, "ConfigMap", "api-config") && cites(f, "Pod", "api-5d8f7-a"));
    let s = &f.suggests[0];
    assert_eq!(s.name, "rollout-restart");
    let t = s.target.as_ref().unwrap();
    assert_eq!((t.kind.as_str(), t.name.as_str()), ("Deployment", "api"));
    // A cause: it comes before symptoms.
    assert_eq!(findings[0].id, f.id);
}

#[tokio::test]
async fn a_configmap_written_before_the_pods_started_is_not_stale() {
    let findings = analyze(with(healthy(), stale_subpath_world("2026-06-01T09:00:00Z"))).await;
    assert!(
        finding(&findings, "stale-subpath-config").is_none(),
        "{findings:#?}"
    );
}
