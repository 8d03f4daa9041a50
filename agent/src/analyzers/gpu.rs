//! GPU failure classes over the `gpu_status` view (DCGM joined with nodes and pods) and DRA
//! claims.

use super::{Analyzer, FindingBuilder, Observations, obj};
use crate::protocol::{Confidence, Finding};
use medic_tools::gpu::{GpuNode, GpuOutput};
use medic_tools::k8s::tools::Summary;
use serde_json::json;

/// Every GPU analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(GpuXid),
        Box::new(GpuEcc),
        Box::new(GpuThermal),
        Box::new(GpuSkew),
        Box::new(DraUnallocated),
        Box::new(GpuLost),
        Box::new(XidEvents),
        Box::new(GpuPluginMissing),
    ]
}

/// Xid codes that mean the GPU needs draining (fell off the bus, double-bit errors, page
/// retirement failures, NVLink errors, contained ECC errors).
const FATAL_XIDS: &[u32] = &[48, 63, 64, 74, 79, 92, 94, 95];

fn gpu_nodes<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a GpuNode)> + 'a {
    obs.outputs::<GpuOutput>()
        .flat_map(|(id, o)| o.nodes.iter().map(move |n| (id, o.cluster.as_str(), n)))
}

/// gpu-rebalance in drain mode (cordon, evict the GPU pods; the node stays cordoned).
fn drain_params(node: &str) -> serde_json::Value {
    json!({"node": node, "mode": "drain"})
}

/// A faulty node that is already cordoned and runs no GPU pods: draining has nothing left
/// to do (a human repairs the node), so no rebalance is proposed.
fn already_drained(obs: &Observations<'_>, cluster: &str, node: &str) -> bool {
    let cordoned =
        super::nodes(obs).any(|(i, n)| i.cluster == cluster && n.name == node && n.unschedulable);
    cordoned
        && !super::pods(obs).any(|(i, p)| {
            i.cluster == cluster
                && p.node.as_deref() == Some(node)
                && p.requests.gpu > 0
                && matches!(p.phase.as_str(), "Running" | "Pending")
        })
}

/// Whether a node shows a GPU fault: a fatal Xid or uncorrectable ECC errors in DCGM, an
/// Xid in its events, or GPUs missing from allocatable. Such a node must not be uncordoned.
pub(crate) fn gpu_fault(obs: &Observations<'_>, cluster: &str, node: &str) -> bool {
    let dcgm = gpu_nodes(obs).any(|(_, c, n)| {
        c == cluster
            && n.node.name == node
            && n.gpus.iter().any(|g| {
                g.xid.is_some_and(|x| FATAL_XIDS.contains(&(x as u32)))
                    || g.ecc_dbe.is_some_and(|e| e > 0.0)
            })
    });
    let lost = super::nodes(obs)
        .any(|(i, n)| i.cluster == cluster && n.name == node && n.allocatable.gpu < n.capacity.gpu);
    dcgm || lost || xid_event(obs, cluster, node).is_some()
}

/// A fatal Xid on a GPU.
struct GpuXid;

impl Analyzer for GpuXid {
    fn name(&self) -> &'static str {
        "gpu-xid"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (id, cluster, n) in gpu_nodes(obs) {
            for g in &n.gpus {
                let Some(x) = g.xid.filter(|x| *x > 0.0) else {
                    continue;
                };
                let code = x as u32;
                let fatal = FATAL_XIDS.contains(&code);
                let node = obj(cluster, "Node", None, &n.node.name);
                let b = FindingBuilder::new(
                        self.name(),
                        &node,
                        format!("GPU {} on {} reports Xid {code}", g.gpu, n.node.name),
                        if code == 79 {
                            format!("GPU {} on {} fell off the bus (Xid 79); pods on it fail until the node is drained and the GPU reset", g.gpu, n.node.name)
                        } else {
                            format!("GPU {} on {} raised Xid {code}{}", g.gpu, n.node.name, if fatal { ", a fault that needs the node drained" } else { "" })
                        },
                    )
                    .confidence(if fatal { Confidence::HIGH } else { Confidence::LOW })
                    .call(id, "gpu_status");
                let b = if already_drained(obs, cluster, &n.node.name) {
                    b
                } else {
                    b.suggest(
                        "gpu-rebalance",
                        drain_params(&n.node.name),
                        Some(node.clone()),
                    )
                };
                out.push(b.build());
                break;
            }
        }
        out
    }
}

/// Uncorrectable (double-bit) ECC errors.
struct GpuEcc;

impl Analyzer for GpuEcc {
    fn name(&self) -> &'static str {
        "gpu-ecc"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (id, cluster, n) in gpu_nodes(obs) {
            let Some(g) = n.gpus.iter().find(|g| g.ecc_dbe.is_some_and(|e| e > 0.0)) else {
                continue;
            };
            let node = obj(cluster, "Node", None, &n.node.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &node,
                    format!(
                        "GPU {} on {} has uncorrectable ECC errors",
                        g.gpu, n.node.name
                    ),
                    format!(
                        "{:.0} double-bit ECC errors on GPU {}: its memory is failing",
                        g.ecc_dbe.unwrap_or(0.0),
                        g.gpu
                    ),
                )
                .confidence(Confidence::HIGH)
                .call(id, "gpu_status")
                .suggest(
                    "gpu-rebalance",
                    drain_params(&n.node.name),
                    Some(node.clone()),
                )
                .build(),
            );
            if already_drained(obs, cluster, &n.node.name)
                && let Some(f) = out.last_mut()
            {
                f.suggests.clear();
            }
        }
        out
    }
}

/// A GPU running hot (≥ 85 °C).
struct GpuThermal;

impl Analyzer for GpuThermal {
    fn name(&self) -> &'static str {
        "gpu-thermal"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (id, cluster, n) in gpu_nodes(obs) {
            let Some(g) = n.gpus.iter().find(|g| g.temp_c.is_some_and(|t| t >= 85.0)) else {
                continue;
            };
            let node = obj(cluster, "Node", None, &n.node.name);
            let b = FindingBuilder::new(
                self.name(),
                &node,
                format!(
                    "GPU {} on {} runs at {:.0}°C",
                    g.gpu,
                    n.node.name,
                    g.temp_c.unwrap_or(0.0)
                ),
                "the GPU is thermally throttling (≥ 85°C), slowing every workload on it".into(),
            )
            .confidence(Confidence::MEDIUM)
            .call(id, "gpu_status");
            // Heat from being packed beside idle GPUs is skew (gpu-skew moves the load);
            // otherwise the node is moved off until it is cooled or repaired.
            let skewed = avg_util(n).is_some_and(|u| u >= 90.0)
                && gpu_nodes(obs).any(|(_, c, m)| {
                    c == cluster
                        && m.node.ready
                        && !m.node.unschedulable
                        && avg_util(m).is_some_and(|u| u <= 10.0)
                });
            let b = if skewed || already_drained(obs, cluster, &n.node.name) {
                b
            } else {
                b.suggest(
                    "gpu-rebalance",
                    drain_params(&n.node.name),
                    Some(node.clone()),
                )
            };
            out.push(b.build());
        }
        out
    }
}

fn avg_util(n: &GpuNode) -> Option<f64> {
    let u: Vec<f64> = n
        .gpus
        .iter()
        .filter_map(|g| g.util_avg_30m.or(g.util))
        .collect();
    (!u.is_empty()).then(|| u.iter().sum::<f64>() / u.len() as f64)
}

/// Saturated GPU nodes beside idle ones in the same cluster.
struct GpuSkew;

impl Analyzer for GpuSkew {
    fn name(&self) -> &'static str {
        "gpu-skew"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let all: Vec<_> = gpu_nodes(obs).collect();
        for (id, cluster, hot) in &all {
            let Some(h) = avg_util(hot).filter(|u| *u >= 90.0) else {
                continue;
            };
            let cold = all.iter().find(|(_, c, n)| {
                c == cluster
                    && n.node.ready
                    && !n.node.unschedulable
                    && avg_util(n).is_some_and(|u| u <= 10.0)
            });
            let Some((_, _, cold)) = cold else { continue };
            let node = obj(cluster, "Node", None, &hot.node.name);
            // Keep one pod per physical GPU; the rest move to the idle node(s).
            let pods = hot.pods.len();
            let physical = hot.gpus.len();
            let move_pods = if physical > 0 && pods > physical {
                pods - physical
            } else {
                (pods / 2).max(1)
            };
            // The workloads packed on it (ReplicaSet `x-hash` → Deployment `x`).
            let mut owners: Vec<(String, String)> = hot
                .pods
                .iter()
                .filter_map(|p| {
                    let (kind, name) = p.owner.as_deref()?.split_once('/')?;
                    let deploy = match kind {
                        "ReplicaSet" => name.rsplit_once('-').map_or(name, |(d, _)| d),
                        _ => name,
                    };
                    Some((p.namespace.clone(), deploy.to_string()))
                })
                .collect();
            owners.sort();
            owners.dedup();
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &node,
                    format!(
                        "GPU skew: {} at {h:.0}% while {} is at {:.0}%",
                        hot.node.name,
                        cold.node.name,
                        avg_util(cold).unwrap_or(0.0)
                    ),
                    format!(
                        "inference replicas are packed on {} ({pods} GPU pods on {physical} physical GPUs{}) while {} idles; their scheduling (node affinity, time-slicing) keeps them there",
                        hot.node.name,
                        if pods > physical && physical > 0 { ", time-sliced" } else { "" },
                        cold.node.name
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(id, "gpu_status")
                .object(obj(cluster, "Node", None, &cold.node.name))
                .suggest(
                    "gpu-rebalance",
                    json!({"node": hot.node.name, "mode": "skew", "move_pods": move_pods}),
                    Some(node.clone()),
                )
                .build(),
            );
            if let Some(f) = out.last_mut() {
                for (ns, d) in owners.iter().take(3) {
                    f.evidence.push(crate::protocol::EvidenceRef::Source(
                        medic_tools::EvidenceRef::Object(obj(cluster, "Deployment", Some(ns), d)),
                    ));
                }
            }
        }
        out
    }
}

/// DRA ResourceClaims that stay unallocated.
struct DraUnallocated;

impl Analyzer for DraUnallocated {
    fn name(&self) -> &'static str {
        "dra-unallocated"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::ResourceClaim(c) = i.summary else {
                continue;
            };
            if c.allocated {
                continue;
            }
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "ResourceClaim", Some(&c.namespace), &c.name),
                    format!("ResourceClaim {}/{} is not allocated", c.namespace, c.name),
                    format!(
                        "no ResourceSlice offers a device matching {}; pods using the claim stay Pending",
                        c.requests.join(", ")
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .build(),
            );
        }
        out
    }
}

/// A node whose allocatable GPUs dropped below its capacity: the device plugin marked a
/// GPU unhealthy (typically after Xid 79, "fell off the bus").
struct GpuLost;

impl Analyzer for GpuLost {
    fn name(&self) -> &'static str {
        "gpu-lost"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, n) in super::nodes(obs) {
            if n.capacity.gpu == 0 || n.allocatable.gpu >= n.capacity.gpu {
                continue;
            }
            let lost = n.capacity.gpu - n.allocatable.gpu;
            let node = obj(i.cluster, "Node", None, &n.name);
            let xid = xid_event(obs, i.cluster, &n.name);
            let mut b = FindingBuilder::new(
                self.name(),
                &node,
                format!("{lost} of {} GPUs on {} are unhealthy", n.capacity.gpu, n.name),
                match &xid {
                    Some((code, _)) => format!(
                        "GPU fault on {}: Xid {code}{}; the device plugin removed {lost} GPU(s) from allocatable",
                        n.name,
                        if *code == 79 { " (the GPU fell off the bus)" } else { "" }
                    ),
                    None => format!("the device plugin reports {lost} GPU(s) on {} unhealthy", n.name),
                },
            )
            .confidence(if xid.is_some() { Confidence::HIGH } else { Confidence::MEDIUM })
            .call(i.call_id, "k8s_list");
            if let Some((_, msg)) = xid {
                b = b.quote(msg);
            }
            if !already_drained(obs, i.cluster, &n.name) {
                b = b.suggest("gpu-rebalance", drain_params(&n.name), Some(node.clone()));
            }
            out.push(b.build());
        }
        out
    }
}

/// A GPU node (NVIDIA labels) that advertises no `nvidia.com/gpu` at all: the device
/// plugin is not registering its GPUs (driver / container runtime mismatch, typically
/// after a node image or containerd upgrade).
struct GpuPluginMissing;

impl Analyzer for GpuPluginMissing {
    fn name(&self) -> &'static str {
        "gpu-plugin-missing"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let all: Vec<_> = super::nodes(obs).collect();
        for (i, n) in &all {
            let gpu_labelled = n.labels.keys().any(|k| {
                k.starts_with("nvidia.com/gpu.product")
                    || k.starts_with("nvidia.com/gpu.present")
                    || k.starts_with("nvidia.com/gpu.count")
            });
            if !gpu_labelled || !n.ready || n.capacity.gpu > 0 || n.allocatable.gpu > 0 {
                continue;
            }
            // Peers that do advertise GPUs, and whether this node runs another kubelet.
            let peers: Vec<_> = all
                .iter()
                .filter(|(j, m)| j.cluster == i.cluster && m.allocatable.gpu > 0)
                .collect();
            let upgraded = n.kubelet.as_ref().and_then(|k| {
                peers
                    .iter()
                    .filter_map(|(_, m)| m.kubelet.as_ref())
                    .find(|pk| *pk != k)
                    .map(|pk| {
                        format!(" after an upgrade (kubelet {k}; GPU nodes still working run {pk})")
                    })
            });
            let node = obj(i.cluster, "Node", None, &n.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &node,
                    format!("GPU node {} advertises no nvidia.com/gpu", n.name),
                    format!(
                        "the NVIDIA device plugin on {} registers no GPUs{}: the driver or the container runtime's nvidia runtime is not working, so GPU pods cannot be scheduled there",
                        n.name,
                        upgraded.unwrap_or_default()
                    ),
                )
                .confidence(if peers.is_empty() { Confidence::MEDIUM } else { Confidence::HIGH })
                .call(i.call_id, "k8s_list")
                .build(),
            );
        }
        out
    }
}

/// The Xid code in an event about `node`, if any.
fn xid_event(obs: &Observations<'_>, cluster: &str, node: &str) -> Option<(u32, String)> {
    super::events(obs)
        .filter(|(_, c, e)| *c == cluster && (e.name == node || e.message.contains(node)))
        .find_map(|(_, _, e)| parse_xid(&e.message).map(|x| (x, e.message.clone())))
}

/// `Xid 79`, `Xid=79`, `Xid: 79`, `Xid (PCI:…): 79`.
fn parse_xid(text: &str) -> Option<u32> {
    let at = text.find("Xid")?;
    let rest = &text[at + 3..];
    let rest = match rest.find(')') {
        Some(close) if rest.trim_start().starts_with('(') => &rest[close + 1..],
        _ => rest,
    };
    let digits: String = rest
        .trim_start_matches([' ', ':', '='])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Xid errors reported in events (node-problem-detector, DCGM exporter, driver logs), when
/// no DCGM metrics are available.
struct XidEvents;

impl Analyzer for XidEvents {
    fn name(&self) -> &'static str {
        "gpu-xid-event"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (call, cluster, e) in super::events(obs) {
            let Some(code) = parse_xid(&e.message) else {
                continue;
            };
            if e.kind != "Node" || !FATAL_XIDS.contains(&code) {
                continue;
            }
            let node = obj(cluster, "Node", None, &e.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &node,
                    format!("node {} reports GPU Xid {code}", e.name),
                    format!(
                        "GPU fault on {}: Xid {code}{}",
                        e.name,
                        if code == 79 {
                            ", the GPU fell off the bus"
                        } else {
                            ""
                        }
                    ),
                )
                .confidence(Confidence::HIGH)
                .call(call, "k8s_events")
                .quote(e.message.clone())
                .suggest("gpu-rebalance", drain_params(&e.name), Some(node.clone()))
                .build(),
            );
            if already_drained(obs, cluster, &e.name)
                && let Some(f) = out.last_mut()
            {
                f.suggests.clear();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::parse_xid;

    #[test]
    fn xid_forms() {
        assert_eq!(
            parse_xid("NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus."),
            Some(79)
        );
        assert_eq!(parse_xid("Xid=48 on GPU 2"), Some(48));
        assert_eq!(parse_xid("Xid: 94"), Some(94));
        assert_eq!(parse_xid("no fault"), None);
    }
}
