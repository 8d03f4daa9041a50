//! Failure classes on nodes: NotReady, pressure, cordoned nodes that are needed.

use super::{Analyzer, FindingBuilder, Observations, nodes, obj, pods};
use crate::protocol::{Confidence, Finding};
use serde_json::json;

/// Every node analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(NodeNotReady),
        Box::new(NodePressure),
        Box::new(CordonedNeeded),
    ]
}

/// A node that is not Ready.
struct NodeNotReady;

impl Analyzer for NodeNotReady {
    fn name(&self) -> &'static str {
        "node-not-ready"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut clusters: Vec<&str> = nodes(obs).map(|(i, _)| i.cluster).collect();
        clusters.dedup();
        for cluster in clusters {
            let all: Vec<_> = nodes(obs).filter(|(i, _)| i.cluster == cluster).collect();
            let down: Vec<_> = all.iter().filter(|(_, n)| !n.ready).collect();
            let Some((first_item, first)) = down.first() else {
                continue;
            };
            let why = first
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| {
                    format!(
                        "{} {}",
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            if down.len() > 1 {
                // Several nodes at once: a zone / network outage, not one bad machine.
                let names: Vec<&str> = down.iter().map(|(_, n)| n.name.as_str()).collect();
                let mut b = FindingBuilder::new(
                    self.name(),
                    &obj(cluster, "Cluster", None, cluster),
                    format!("{} of {} nodes in {cluster} are NotReady", down.len(), all.len()),
                    format!(
                        "{} nodes stopped reporting Ready together ({}): a zone or network outage in {cluster}",
                        down.len(),
                        why.trim()
                    ),
                )
                .confidence(Confidence::HIGH)
                .call(first_item.call_id, "k8s_list");
                for n in names.iter().take(8) {
                    b = b.object(obj(cluster, "Node", None, n));
                }
                out.push(b.build());
                continue;
            }
            let n = first;
            let node = obj(cluster, "Node", None, &n.name);
            let affected = pods(obs)
                .filter(|(pi, p)| {
                    pi.cluster == cluster && p.node.as_deref() == Some(n.name.as_str())
                })
                .count();
            let mut b = FindingBuilder::new(
                self.name(),
                &node,
                format!("node {} is NotReady ({affected} pods on it)", n.name),
                format!(
                    "the kubelet on {} stopped reporting Ready: {}",
                    n.name,
                    why.trim()
                ),
            )
            .confidence(Confidence::HIGH)
            .call(first_item.call_id, "k8s_list");
            let gpu_node = n.allocatable.gpu > 0 || n.capacity.gpu > 0;
            let healthy_gpu_peer = all
                .iter()
                .any(|(_, p)| p.ready && !p.unschedulable && p.allocatable.gpu > 0);
            if gpu_node && healthy_gpu_peer {
                b = b.suggest("gpu-rebalance", json!({"node": n.name}), Some(node.clone()));
            }
            out.push(b.build());
        }
        out
    }
}

/// Memory / disk / PID pressure.
struct NodePressure;

impl Analyzer for NodePressure {
    fn name(&self) -> &'static str {
        "node-pressure"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, n) in nodes(obs) {
            for c in &n.conditions {
                if !c.type_.ends_with("Pressure") || c.status != "True" {
                    continue;
                }
                out.push(
                    FindingBuilder::new(
                        self.name(),
                        &obj(i.cluster, "Node", None, &n.name),
                        format!("node {} has {}", n.name, c.type_),
                        format!(
                            "{} on {}: the kubelet evicts pods and refuses new ones ({})",
                            c.type_,
                            n.name,
                            c.message.clone().unwrap_or_default()
                        ),
                    )
                    .confidence(Confidence::HIGH)
                    .call(i.call_id, "k8s_list")
                    .build(),
                );
            }
        }
        out
    }
}

/// Whether a cordoned node still runs workload pods (not DaemonSet or static ones): a drain
/// in progress, not a node forgotten after maintenance.
pub(crate) fn draining(obs: &Observations<'_>, cluster: &str, node: &str) -> bool {
    pods(obs).any(|(i, p)| {
        i.cluster == cluster
            && p.node.as_deref() == Some(node)
            && matches!(p.phase.as_str(), "Running" | "Pending")
            && p.owner
                .as_ref()
                .is_some_and(|o| o.kind != "DaemonSet" && o.kind != "Node")
    })
}

/// A healthy node left cordoned while pods cannot be scheduled.
struct CordonedNeeded;

impl Analyzer for CordonedNeeded {
    fn name(&self) -> &'static str {
        "node-cordoned"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, n) in nodes(obs) {
            let healthy = n.ready
                && !n
                    .conditions
                    .iter()
                    .any(|c| c.type_.ends_with("Pressure") && c.status == "True");
            // A node cordoned because its GPUs failed stays cordoned; one still being
            // drained is someone's maintenance in progress.
            if !n.unschedulable
                || !healthy
                || super::gpu::gpu_fault(obs, i.cluster, &n.name)
                || draining(obs, i.cluster, &n.name)
            {
                continue;
            }
            let pending: Vec<_> = pods(obs)
                .filter(|(pi, p)| {
                    pi.cluster == i.cluster && p.phase == "Pending" && p.node.is_none()
                })
                .collect();
            if pending.is_empty() {
                continue;
            }
            // The scheduler says the cordon is what keeps them out.
            let blocked = pending.iter().any(|(_, p)| {
                p.conditions.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains("unschedulable"))
                })
            }) || super::events(obs).any(|(_, c, e)| {
                c == i.cluster
                    && e.reason == "FailedScheduling"
                    && e.message.contains("unschedulable")
            });
            let pending = pending.len();
            let node = obj(i.cluster, "Node", None, &n.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &node,
                    format!(
                        "node {} is cordoned while {pending} pods are Pending",
                        n.name
                    ),
                    format!(
                        "{} is Ready with no pressure but unschedulable; its capacity is unused",
                        n.name
                    ),
                )
                .confidence(if blocked {
                    Confidence::MEDIUM
                } else {
                    Confidence::LOW
                })
                .call(i.call_id, "k8s_list")
                .suggest("uncordon", json!({}), Some(node.clone()))
                .build(),
            );
        }
        out
    }
}
