//! gpu-rebalance: move GPU pods off a faulty (drain) or saturated (skew) GPU node through
//! the Eviction API, so PodDisruptionBudgets decide; a 429 stops execution, never forces.

use std::collections::BTreeMap;

use medic_approvals::Risk;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Draft, PlanContext, Playbook, pod_ready, selector_string};
use crate::error::{Error, Result};
use crate::kube::ClusterConn;
use crate::plan::{BlastRadius, Plan, PostCheck};
use crate::step::{Check, ObjectRef, Operation, Step, Taint};

/// How to rebalance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpuRebalanceMode {
    /// Faulty node (Xid, ECC, lost GPU): cordon, optionally taint, evict every GPU pod;
    /// the node stays cordoned for repair.
    #[default]
    Drain,
    /// Saturated node (utilisation skew): cordon, evict `move_pods` GPU pods so their
    /// replacements land on idle GPU nodes, wait until the workload is Ready, uncordon.
    Skew,
}

/// Parameters of gpu-rebalance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuRebalanceParams {
    /// Cluster (kubeconfig context).
    pub cluster: String,
    /// The faulty or saturated GPU node.
    pub node: String,
    /// drain (faulty node, default) or skew (saturated node).
    #[serde(default)]
    pub mode: GpuRebalanceMode,
    /// Only pods matching this label selector (e.g. `app=llama`); default every GPU pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Drain only: a taint to add while cordoning (e.g. key `nvidia.com/gpu.unhealthy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taint: Option<Taint>,
    /// Skew only: how many GPU pods to move (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_pods: Option<u32>,
    /// Extended resource that marks a GPU pod (default `nvidia.com/gpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_resource: Option<String>,
    /// Seconds the post-checks may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
}

pub(crate) struct GpuRebalance;

fn requests_resource(pod: &Value, resource: &str) -> bool {
    pod["spec"]["containers"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            !c["resources"]["requests"][resource].is_null()
                || !c["resources"]["limits"][resource].is_null()
        })
    })
}

fn owned_by_daemonset(pod: &Value) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"))
}

fn is_gpu_node(node: &Value, resource: &str) -> bool {
    !node["status"]["allocatable"][resource].is_null()
        || !node["status"]["capacity"][resource].is_null()
}

/// The Deployment that owns a pod through its ReplicaSet, if any.
pub(crate) async fn owning_deployment(conn: &ClusterConn, pod: &Value) -> Result<Option<Value>> {
    let ns = pod["metadata"]["namespace"].as_str();
    let Some(rs_name) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["kind"] == "ReplicaSet"))
        .and_then(|r| r["name"].as_str())
    else {
        return Ok(None);
    };
    let Some(rs) = conn.get("apps/v1", "ReplicaSet", ns, rs_name).await? else {
        return Ok(None);
    };
    let Some(dep) = rs["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["kind"] == "Deployment"))
        .and_then(|r| r["name"].as_str())
    else {
        return Ok(None);
    };
    conn.get("apps/v1", "Deployment", ns, dep).await
}

fn parse_taints(node: &Value) -> Vec<Taint> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| Taint {
                    key: t["key"].as_str().unwrap_or_default().to_owned(),
                    value: t["value"].as_str().unwrap_or_default().to_owned(),
                    effect: t["effect"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Budgets that will refuse part of the plan: a PodDisruptionBudget covering more Ready
/// pods to evict than it allows disruptions. Execution would stop at the first 429.
async fn budget_warnings(conn: &ClusterConn, pods: &[Value]) -> Result<Vec<String>> {
    let mut namespaces: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["metadata"]["namespace"].as_str())
        .collect();
    namespaces.dedup();
    let mut notes = Vec::new();
    for ns in namespaces {
        for pdb in conn
            .list("policy/v1", "PodDisruptionBudget", Some(ns), None, None)
            .await?
        {
            let Some(want) = pdb["spec"]["selector"]["matchLabels"].as_object() else {
                continue;
            };
            let covered = pods
                .iter()
                .filter(|p| p["metadata"]["namespace"] == ns && pod_ready(p))
                .filter(|p| want.iter().all(|(k, v)| &p["metadata"]["labels"][k] == v))
                .count() as i64;
            let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
            if covered > allowed {
                notes.push(format!(
                    "PodDisruptionBudget {ns}/{} allows {allowed} disruption(s) now but the plan evicts {covered} Ready pod(s) it covers; execution will stop at the first 429 until replacements are Ready.",
                    pdb["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    Ok(notes)
}

impl Playbook for GpuRebalance {
    const NAME: &'static str = "gpu-rebalance";
    type Params = GpuRebalanceParams;

    fn description() -> &'static str {
        "Faulty or saturated GPU node: cordon, evict its GPU pods via the Eviction API (PDBs respected), check replicas Ready elsewhere."
    }

    async fn plan(ctx: &PlanContext, p: GpuRebalanceParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let resource = p
            .gpu_resource
            .clone()
            .unwrap_or_else(|| "nvidia.com/gpu".into());
        let node = conn.must_get("v1", "Node", None, &p.node).await?;
        if !is_gpu_node(&node, &resource) {
            return Err(Error::Precondition(format!(
                "node {} has no {resource} capacity; gpu-rebalance only acts on GPU nodes",
                p.node
            )));
        }
        if p.mode == GpuRebalanceMode::Skew && node["spec"]["unschedulable"] == true {
            return Err(Error::Precondition(format!(
                "node {} is already cordoned; a skew rebalance would uncordon it at the end — uncordon or drain it deliberately instead",
                p.node
            )));
        }
        // Somewhere for the pods to go.
        let nodes = conn.list("v1", "Node", None, None, None).await?;
        let elsewhere: Vec<&Value> = nodes
            .iter()
            .filter(|n| n["metadata"]["name"] != p.node.as_str())
            .filter(|n| is_gpu_node(n, &resource) && n["spec"]["unschedulable"] != true)
            .collect();
        if elsewhere.is_empty() {
            return Err(Error::Precondition(format!(
                "no other schedulable node has {resource}; evicting from {} would leave its GPU pods nowhere to run",
                p.node
            )));
        }
        let field = format!("spec.nodeName={}", p.node);
        let mut pods: Vec<Value> = conn
            .list("v1", "Pod", None, p.selector.as_deref(), Some(&field))
            .await?
            .into_iter()
            .filter(|pod| pod["spec"]["nodeName"] == p.node.as_str())
            .filter(|pod| requests_resource(pod, &resource) && !owned_by_daemonset(pod))
            .filter(|pod| {
                !matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                )
            })
            .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
            .collect();
        if pods.is_empty() {
            return Err(Error::Precondition(format!(
                "no GPU pods{} run on node {}; nothing to rebalance",
                p.selector
                    .as_deref()
                    .map(|s| format!(" matching {s}"))
                    .unwrap_or_default(),
                p.node
            )));
        }
        // Not-Ready pods first: evicting them costs no availability and PDBs always allow it
        // (unhealthyPodEvictionPolicy AlwaysAllow); then by name for a stable plan.
        pods.sort_by_key(|pod| {
            (
                pod_ready(pod),
                pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        });
        // Every GPU pod on the node before anything moves, for the skew post-checks.
        let on_node_before = pods.clone();
        if p.mode == GpuRebalanceMode::Skew {
            let n = p.move_pods.unwrap_or(1).max(1) as usize;
            // Move Ready pods only: the point is to spread load, not to clean up.
            pods.retain(pod_ready);
            pods.truncate(n);
            if pods.is_empty() {
                return Err(Error::Precondition(format!(
                    "no Ready GPU pods on {} to move",
                    p.node
                )));
            }
        }

        // Owning Deployments, for the post-checks, with how many of each one's pods move.
        let key_of = |d: &Value| {
            format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default()
            )
        };
        let mut workloads: BTreeMap<String, Value> = BTreeMap::new();
        let mut moved: BTreeMap<String, i64> = BTreeMap::new();
        for pod in &pods {
            if let Some(d) = owning_deployment(conn, pod).await? {
                *moved.entry(key_of(&d)).or_default() += 1;
                workloads.entry(key_of(&d)).or_insert(d);
            }
        }
        // A skew moves some pods: the rest of each workload may stay on the node.
        let mut stay: BTreeMap<String, i64> = BTreeMap::new();
        if p.mode == GpuRebalanceMode::Skew {
            for pod in &on_node_before {
                if let Some(d) = owning_deployment(conn, pod).await? {
                    *stay.entry(key_of(&d)).or_default() += 1;
                }
            }
            for (k, n) in &moved {
                if let Some(s) = stay.get_mut(k) {
                    *s = (*s - n).max(0);
                }
            }
        }

        let node_ref = ObjectRef::of(&node);
        let old_taints = parse_taints(&node);
        let set_taints = match (&p.taint, p.mode) {
            (Some(t), GpuRebalanceMode::Drain)
                if !old_taints
                    .iter()
                    .any(|o| o.key == t.key && o.effect == t.effect) =>
            {
                let mut all = old_taints.clone();
                all.push(t.clone());
                Some(all)
            }
            _ => None,
        };
        let mut steps = vec![Step {
            cluster: p.cluster.clone(),
            description: match &set_taints {
                Some(_) => format!("cordon node {} and taint it", p.node),
                None => format!("cordon node {}", p.node),
            },
            op: Operation::Cordon {
                node: node_ref.clone(),
                set_taints: set_taints.clone(),
            },
        }];
        let mut namespaces: Vec<String> = Vec::new();
        for pod in &pods {
            let r = ObjectRef::of(pod);
            if let Some(ns) = &r.namespace
                && !namespaces.contains(ns)
            {
                namespaces.push(ns.clone());
            }
            steps.push(Step {
                cluster: p.cluster.clone(),
                description: format!(
                    "evict {} ({}) through the Eviction API",
                    r.display(),
                    if pod_ready(pod) { "Ready" } else { "not Ready" }
                ),
                op: Operation::Evict { pod: r },
            });
        }
        let deadline = p.deadline_seconds.unwrap_or(600);
        let mut post_checks = Vec::new();
        for (key, d) in &workloads {
            let dref = ObjectRef::of(d).unpinned();
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let ns = dref.namespace.clone().unwrap_or_default();
            let max_on_node = stay.get(key).copied().unwrap_or(0);
            let check = Check::ReadyPodsElsewhere {
                namespace: ns,
                selector: selector_string(&d["spec"]["selector"]),
                avoid_node: p.node.clone(),
                min: (replicas - max_on_node).max(0),
                max_on_node,
            };
            post_checks.push(PostCheck {
                cluster: p.cluster.clone(),
                description: check.describe(),
                check,
                deadline_seconds: deadline,
            });
            let check = Check::FieldAtLeast {
                target: dref,
                path: "status.readyReplicas".into(),
                value: replicas,
            };
            post_checks.push(PostCheck {
                cluster: p.cluster.clone(),
                description: check.describe(),
                check,
                deadline_seconds: deadline,
            });
        }
        let uncordon = Step {
            cluster: p.cluster.clone(),
            description: format!("uncordon node {}", p.node),
            op: Operation::Uncordon {
                node: node_ref.unpinned(),
                set_taints: set_taints.as_ref().map(|_| old_taints.clone()),
            },
        };
        let (undo, title) = match p.mode {
            GpuRebalanceMode::Drain => (
                vec![uncordon],
                format!(
                    "Drain GPU node {} ({} pods) on {}",
                    p.node,
                    pods.len(),
                    p.cluster
                ),
            ),
            GpuRebalanceMode::Skew => {
                for d in workloads.values() {
                    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
                    steps.push(Step {
                        cluster: p.cluster.clone(),
                        description: format!(
                            "wait until {} has {replicas} Ready replicas",
                            ObjectRef::of(d).display()
                        ),
                        op: Operation::WaitFor {
                            check: Check::FieldAtLeast {
                                target: ObjectRef::of(d).unpinned(),
                                path: "status.readyReplicas".into(),
                                value: replicas,
                            },
                            timeout_seconds: deadline,
                        },
                    });
                }
                steps.push(uncordon.clone());
                (
                    vec![uncordon],
                    format!(
                        "Move {} GPU pods off saturated node {} on {}",
                        pods.len(),
                        p.node,
                        p.cluster
                    ),
                )
            }
        };
        let budget_notes = budget_warnings(conn, &pods).await?;
        let rationale = match p.mode {
            GpuRebalanceMode::Drain => format!(
                "Node {} is faulty: cordon it so nothing new lands there, then evict its {} GPU pod(s) one at a time through the Eviction API so PodDisruptionBudgets decide; their controllers recreate them on the {} other schedulable GPU node(s). A 429 from a budget stops the plan; nothing is force-deleted. The node stays cordoned for repair.",
                p.node,
                pods.len(),
                elsewhere.len()
            ),
            GpuRebalanceMode::Skew => format!(
                "Node {} is saturated while {} other GPU node(s) are schedulable: cordon it briefly, evict {} Ready GPU pod(s) through the Eviction API so the replacements land elsewhere, wait until the workload is Ready again, then uncordon.",
                p.node,
                elsewhere.len(),
                pods.len()
            ),
        };
        let rationale = if budget_notes.is_empty() {
            rationale
        } else {
            format!("{rationale} Warning: {}", budget_notes.join(" "))
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title,
            rationale,
            params,
            steps,
            undo,
            risk: Risk::High,
            blast_radius: BlastRadius {
                pods: pods.len() as u32,
                replicas: 0,
                traffic_share_percent: 0,
                namespaces,
                nodes: vec![p.node.clone()],
            },
            extra_preconditions: Vec::new(),
            post_checks,
        }
        .finish(ctx)
        .await
    }
}
