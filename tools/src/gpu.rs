//! The GPU view: DCGM exporter metrics per node and GPU, joined with node GPU capacity /
//! allocatable / requested and the pods placed on each GPU node. Without Prometheus the view
//! degrades to nodes and pods and says metrics were unavailable.

use crate::context::ToolContext;
use crate::error::{Result, ToolError};
use crate::evidence::{EvidenceRef, ObjectRef};
use crate::k8s::core::{NodeSummary, PodSummary, node_summaries};
use crate::prom::{RawSeries, query};
use crate::tool::{Render, Tool};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The DCGM metrics read, with the field each fills.
const DCGM: &[(&str, &str)] = &[
    ("util", "DCGM_FI_DEV_GPU_UTIL"),
    ("util_avg_30m", "avg_over_time(DCGM_FI_DEV_GPU_UTIL[30m])"),
    ("fb_used_mib", "DCGM_FI_DEV_FB_USED"),
    ("temp_c", "DCGM_FI_DEV_GPU_TEMP"),
    ("power_w", "DCGM_FI_DEV_POWER_USAGE"),
    ("xid", "max_over_time(DCGM_FI_DEV_XID_ERRORS[1h])"),
    ("ecc_dbe", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"),
    ("ecc_sbe", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"),
];

/// One GPU's telemetry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// GPU index (`gpu` label).
    pub gpu: String,
    /// GPU UUID.
    pub uuid: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Utilisation % now.
    pub util: Option<f64>,
    /// Utilisation % averaged over 30 minutes.
    pub util_avg_30m: Option<f64>,
    /// Framebuffer memory used (MiB).
    pub fb_used_mib: Option<f64>,
    /// Temperature (°C).
    pub temp_c: Option<f64>,
    /// Power (W).
    pub power_w: Option<f64>,
    /// Last Xid error code seen in the last hour (0 = none).
    pub xid: Option<f64>,
    /// Volatile double-bit ECC errors.
    pub ecc_dbe: Option<f64>,
    /// Volatile single-bit ECC errors.
    pub ecc_sbe: Option<f64>,
}

/// A pod using GPUs on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// GPUs requested.
    pub gpus: u64,
    /// Phase.
    pub phase: String,
    /// Ready.
    pub ready: bool,
    /// Restarts.
    pub restarts: i32,
    /// Owner `Kind/name`.
    pub owner: Option<String>,
}

/// One GPU node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuNode {
    /// The node summary (capacity, allocatable, requested, GPU labels, MIG).
    pub node: NodeSummary,
    /// GPUs with telemetry (empty without metrics).
    pub gpus: Vec<GpuDevice>,
    /// Pods requesting GPUs here.
    pub pods: Vec<GpuPod>,
    /// What stands out (`Xid 79 on gpu 3`, `ECC DBE 2 on gpu 0`, `idle`, `saturated`).
    pub flags: Vec<String>,
}

/// Result of `gpu_status`.
#[derive(Debug, Clone, Serialize)]
pub struct GpuOutput {
    /// Cluster.
    pub cluster: String,
    /// Whether DCGM metrics were read.
    pub metrics_available: bool,
    /// Why metrics are missing, if they are.
    pub metrics_note: Option<String>,
    /// GPU nodes, flagged first.
    pub nodes: Vec<GpuNode>,
    /// GPU pods not placed on any node (Pending).
    pub pending_pods: Vec<GpuPod>,
}

fn node_of(labels: &BTreeMap<String, String>) -> Option<String> {
    for k in [
        "node",
        "kubernetes_node",
        "Hostname",
        "hostname",
        "instance",
    ] {
        if let Some(v) = labels.get(k) {
            return Some(v.split(':').next().unwrap_or(v).to_string());
        }
    }
    None
}

fn set(d: &mut GpuDevice, field: &str, v: f64) {
    let slot = match field {
        "util" => &mut d.util,
        "util_avg_30m" => &mut d.util_avg_30m,
        "fb_used_mib" => &mut d.fb_used_mib,
        "temp_c" => &mut d.temp_c,
        "power_w" => &mut d.power_w,
        "xid" => &mut d.xid,
        "ecc_dbe" => &mut d.ecc_dbe,
        _ => &mut d.ecc_sbe,
    };
    *slot = Some(v);
}

/// Join DCGM series into per-node GPU devices; series of another cluster (a `cluster` label
/// naming a different one) are ignored.
pub fn join_dcgm(
    cluster: &str,
    by_field: &[(&str, Vec<RawSeries>)],
) -> BTreeMap<String, BTreeMap<String, GpuDevice>> {
    let mut out: BTreeMap<String, BTreeMap<String, GpuDevice>> = BTreeMap::new();
    for (field, series) in by_field {
        for s in series {
            if s.labels.get("cluster").is_some_and(|c| c != cluster) {
                continue;
            }
            let (Some(node), Some(&(_, v))) = (node_of(&s.labels), s.samples.last()) else {
                continue;
            };
            let gpu = s.labels.get("gpu").cloned().unwrap_or_else(|| "0".into());
            let d = out.entry(node).or_default().entry(gpu.clone()).or_default();
            d.gpu = gpu;
            if d.uuid.is_none() {
                d.uuid = s.labels.get("UUID").cloned();
            }
            if d.model.is_none() {
                d.model = s.labels.get("modelName").cloned();
            }
            set(d, field, v);
        }
    }
    out
}

/// Flags for a node: faults first, then utilisation extremes.
pub fn flags(n: &GpuNode) -> Vec<String> {
    let mut f = Vec::new();
    if !n.node.ready {
        f.push("node NotReady".to_string());
    }
    for g in &n.gpus {
        if let Some(x) = g.xid.filter(|x| *x > 0.0) {
            f.push(format!("Xid {x:.0} on gpu {}", g.gpu));
        }
        if let Some(e) = g.ecc_dbe.filter(|x| *x > 0.0) {
            f.push(format!("ECC DBE {e:.0} on gpu {}", g.gpu));
        }
        if let Some(t) = g.temp_c.filter(|t| *t >= 85.0) {
            f.push(format!("temperature {t:.0}C on gpu {}", g.gpu));
        }
    }
    let utils: Vec<f64> = n
        .gpus
        .iter()
        .filter_map(|g| g.util_avg_30m.or(g.util))
        .collect();
    if !utils.is_empty() {
        let avg = utils.iter().sum::<f64>() / utils.len() as f64;
        if avg >= 90.0 {
            f.push(format!("saturated (avg util {avg:.0}%)"));
        } else if avg <= 5.0 {
            f.push(format!("idle (avg util {avg:.0}%)"));
        }
    }
    let cap = n.node.allocatable.gpu;
    if let Some(r) = &n.node.requested
        && cap > 0
        && r.gpu >= cap
    {
        f.push(format!("all {cap} GPUs requested"));
    }
    if n.node.unschedulable {
        f.push("cordoned".into());
    }
    f
}

fn gpu_pod(p: &PodSummary) -> GpuPod {
    GpuPod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        gpus: p.requests.gpu
            + p.requests
                .extended
                .iter()
                .filter(|(k, _)| k.contains("mig-"))
                .map(|(_, v)| v)
                .sum::<u64>(),
        phase: p.phase.clone(),
        ready: p.ready,
        restarts: p.restarts,
        owner: p.owner.as_ref().map(|o| format!("{}/{}", o.kind, o.name)),
    }
}

/// Build the GPU view of a cluster (optionally one node).
pub async fn gpu_view(
    ctx: &ToolContext,
    cluster: Option<&str>,
    only: Option<&str>,
) -> Result<GpuOutput> {
    let c = ctx.cluster(cluster)?;
    let nodes_api: Api<Node> = Api::all(c.client.clone());
    let nodes = tokio::time::timeout(
        crate::context::CALL_TIMEOUT,
        nodes_api.list(&ListParams::default()),
    )
    .await
    .map_err(|_| ToolError::Upstream(format!("listing nodes in `{}` timed out", c.name)))?
    .map_err(|e| crate::k8s::kube_err(&c.name, "nodes", e))?;
    let pods = crate::k8s::tools::all_pods(c).await?;
    let summaries: Vec<NodeSummary> = node_summaries(&nodes.items, &pods);
    if let Some(o) = only
        && !summaries.iter().any(|n| n.name == o)
    {
        let names: Vec<&str> = summaries
            .iter()
            .filter(|n| n.gpu.is_some())
            .map(|n| n.name.as_str())
            .collect();
        return Err(ToolError::InvalidArgs(format!(
            "unknown node `{o}` in cluster `{}`; GPU nodes: {}",
            c.name,
            names.join(", ")
        )));
    }
    let (metrics, note) = if c.prometheus.is_none() {
        (
            None,
            Some(format!(
                "no Prometheus configured for `{}`: DCGM metrics unavailable, showing nodes and pods only",
                c.name
            )),
        )
    } else {
        let now = ctx.clock.now();
        let mut by_field = Vec::new();
        let mut err = None;
        for (field, q) in DCGM {
            match query(ctx, c, q, now, None).await {
                Ok(s) => by_field.push((*field, s)),
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        match err {
            Some(e) => (
                None,
                Some(format!(
                    "DCGM metrics unavailable ({e}); showing nodes and pods only"
                )),
            ),
            None => (Some(join_dcgm(&c.name, &by_field)), None),
        }
    };
    let mut out_nodes = Vec::new();
    for n in summaries {
        if only.is_some_and(|o| o != n.name) {
            continue;
        }
        let devs = metrics
            .as_ref()
            .and_then(|m| m.get(&n.name))
            .map(|m| m.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        if n.gpu.is_none() && n.allocatable.gpu == 0 && devs.is_empty() {
            continue;
        }
        let mut gp: Vec<GpuPod> = pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(n.name.as_str()))
            .map(gpu_pod)
            .filter(|p| p.gpus > 0)
            .collect();
        gp.sort_by(|a, b| a.ready.cmp(&b.ready).then(a.name.cmp(&b.name)));
        let mut g = GpuNode {
            node: n,
            gpus: devs,
            pods: gp,
            flags: Vec::new(),
        };
        g.flags = flags(&g);
        out_nodes.push(g);
    }
    out_nodes.sort_by(|a, b| {
        b.flags
            .len()
            .cmp(&a.flags.len())
            .then(a.node.name.cmp(&b.node.name))
    });
    let pending_pods = pods
        .iter()
        .filter(|p| p.node.is_none())
        .map(gpu_pod)
        .filter(|p| p.gpus > 0)
        .collect();
    Ok(GpuOutput {
        cluster: c.name.clone(),
        metrics_available: metrics.is_some(),
        metrics_note: note,
        nodes: out_nodes,
        pending_pods,
    })
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |x| format!("{x:.0}{unit}"))
}

impl Render for GpuOutput {
    fn render(&self, max: usize) -> String {
        let mut s = format!(
            "GPU view of {}: {} GPU nodes",
            self.cluster,
            self.nodes.len()
        );
        if let Some(n) = &self.metrics_note {
            s.push_str(&format!(" — {n}"));
        }
        s.push('\n');
        for n in self.nodes.iter().take(max.max(1)) {
            let r = n.node.requested.as_ref().map_or(0, |r| r.gpu);
            s.push_str(&format!(
                "node {} {}{} gpu cap {} alloc {} requested {} product {} mig {}{}\n",
                n.node.name,
                if n.node.ready { "Ready" } else { "NotReady" },
                if n.node.unschedulable {
                    " cordoned"
                } else {
                    ""
                },
                n.node.capacity.gpu,
                n.node.allocatable.gpu,
                r,
                n.node
                    .gpu
                    .as_ref()
                    .and_then(|g| g.product.clone())
                    .unwrap_or_else(|| "-".into()),
                n.node
                    .gpu
                    .as_ref()
                    .and_then(|g| g.mig_config.clone())
                    .unwrap_or_else(|| "-".into()),
                if n.flags.is_empty() {
                    String::new()
                } else {
                    format!(" FLAGS: {}", n.flags.join("; "))
                }
            ));
            if max > 0 {
                for g in &n.gpus {
                    s.push_str(&format!(
                        "  gpu {} util {} (30m {}) mem {} temp {} power {} xid {} eccDBE {} eccSBE {}\n",
                        g.gpu,
                        opt(g.util, "%"),
                        opt(g.util_avg_30m, "%"),
                        opt(g.fb_used_mib, "MiB"),
                        opt(g.temp_c, "C"),
                        opt(g.power_w, "W"),
                        opt(g.xid, ""),
                        opt(g.ecc_dbe, ""),
                        opt(g.ecc_sbe, "")
                    ));
                }
                for p in n.pods.iter().take(max) {
                    s.push_str(&format!(
                        "  pod {}/{} gpus {} {} ready {} restarts {}{}\n",
                        p.namespace,
                        p.name,
                        p.gpus,
                        p.phase,
                        p.ready,
                        p.restarts,
                        p.owner
                            .as_deref()
                            .map(|o| format!(" owner {o}"))
                            .unwrap_or_default()
                    ));
                }
                if n.pods.len() > max {
                    s.push_str(&format!("  … {} more pods omitted\n", n.pods.len() - max));
                }
            }
        }
        if self.nodes.len() > max.max(1) {
            s.push_str(&format!(
                "… {} more GPU nodes omitted (no flags first omitted last)\n",
                self.nodes.len() - max.max(1)
            ));
        }
        if !self.pending_pods.is_empty() {
            s.push_str(&format!(
                "{} GPU pods not scheduled:",
                self.pending_pods.len()
            ));
            for p in self.pending_pods.iter().take(max.max(1)) {
                s.push_str(&format!(" {}/{} ({} gpus)", p.namespace, p.name, p.gpus));
            }
            s.push('\n');
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        let mut ev: Vec<EvidenceRef> = self
            .nodes
            .iter()
            .filter(|n| !n.flags.is_empty())
            .map(|n| {
                EvidenceRef::Object(ObjectRef {
                    cluster: self.cluster.clone(),
                    kind: "Node".into(),
                    namespace: None,
                    name: n.node.name.clone(),
                    uid: n.node.uid.clone(),
                })
            })
            .collect();
        if self.metrics_available {
            ev.push(EvidenceRef::Series {
                cluster: self.cluster.clone(),
                query: "DCGM_FI_DEV_*".into(),
                start: String::new(),
                end: String::new(),
            });
        }
        ev
    }
}

/// Arguments of `gpu_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuArgs {
    /// Default: first cluster.
    pub cluster: Option<String>,
    /// Only this node.
    pub node: Option<String>,
}

/// `gpu_status`.
pub struct GpuTool;

impl Tool for GpuTool {
    const NAME: &'static str = "gpu_status";
    type Args = GpuArgs;
    type Output = GpuOutput;
    fn description() -> &'static str {
        "GPU nodes: DCGM per GPU (util, memory, temp, power, Xid, ECC), capacity vs requested, GPU pods; faulty first."
    }
    async fn call(&self, ctx: &ToolContext, a: GpuArgs) -> Result<GpuOutput> {
        gpu_view(ctx, a.cluster.as_deref(), a.node.as_deref()).await
    }
}
