//! The everyday playbooks: rollout-restart, scale, raise-memory-limit, uncordon.

use medic_approvals::Risk;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Draft, PlanContext, Playbook};
use crate::error::{Error, Result};
use crate::plan::{BlastRadius, Plan, PostCheck};
use crate::step::{Check, ObjectRef, Operation, PatchBody, Step};

/// Parameters of rollout-restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRestartParams {
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
}

/// Parameters of scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleParams {
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// New replica count (0..=100).
    pub replicas: i64,
    /// Seconds the rollout may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
}

/// Parameters of raise-memory-limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseMemoryLimitParams {
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// Container whose limit is raised.
    pub container: String,
    /// Percent increase, 1..=100 (default 25): bounded so a leak is not fed forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increase_percent: Option<u32>,
}

/// Parameters of uncordon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UncordonParams {
    /// Cluster.
    pub cluster: String,
    /// Node name.
    pub node: String,
}

pub(crate) struct RolloutRestart;
pub(crate) struct Scale;
pub(crate) struct RaiseMemoryLimit;
pub(crate) struct Uncordon;

fn rollout_check(cluster: &str, dep: &ObjectRef, replicas: i64) -> PostCheck {
    let check = Check::RolloutComplete {
        deployment: dep.unpinned(),
        replicas,
    };
    PostCheck {
        cluster: cluster.to_owned(),
        description: check.describe(),
        check,
        deadline_seconds: 600,
    }
}

fn with_deadline(mut c: PostCheck, seconds: Option<u64>) -> PostCheck {
    if let Some(s) = seconds {
        c.deadline_seconds = s;
    }
    c
}

fn blast(ns: &str, pods: i64) -> BlastRadius {
    BlastRadius {
        pods: pods.max(0) as u32,
        replicas: pods.max(0) as u32,
        traffic_share_percent: 0,
        namespaces: vec![ns.to_owned()],
        nodes: Vec::new(),
    }
}

impl Playbook for RolloutRestart {
    const NAME: &'static str = "rollout-restart";
    type Params = RolloutRestartParams;

    fn description() -> &'static str {
        "Restart a Deployment's pods with a rolling update (restartedAt annotation)."
    }

    async fn plan(ctx: &PlanContext, p: RolloutRestartParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let dep = conn
            .must_get("apps/v1", "Deployment", Some(&p.namespace), &p.deployment)
            .await?;
        let r = ObjectRef::of(&dep);
        let replicas = dep["spec"]["replicas"].as_i64().unwrap_or(1);
        let previous =
            dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .clone();
        let at = ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let patch = |v: Value| {
            PatchBody::Strategic(
                json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": v}}}}}),
            )
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Restart {} on {}", r.display(), p.cluster),
            rationale: format!("A rolling restart replaces the {replicas} pods one surge at a time, honouring the rollout strategy."),
            params,
            steps: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("set restartedAt={at} on the pod template of {}", r.display()),
                op: Operation::Patch { target: r.clone(), patch: patch(at.clone().into()), field_manager: ctx.field_manager.clone() },
            }],
            // A restart cannot be taken back; restoring the annotation would restart again.
            undo: Vec::new(),
            risk: if replicas > 1 { Risk::Low } else { Risk::Medium },
            blast_radius: blast(&p.namespace, replicas),
            extra_preconditions: Vec::new(),
            post_checks: vec![rollout_check(&p.cluster, &r, replicas)],
        }
        .finish(ctx)
        .await
        .map(|mut plan| {
            if !previous.is_null() {
                plan.rationale.push_str(&format!(" Last restart: {previous}."));
            }
            plan
        })
    }
}

impl Playbook for Scale {
    const NAME: &'static str = "scale";
    type Params = ScaleParams;

    fn description() -> &'static str {
        "Set a Deployment's replicas through the scale subresource."
    }

    async fn plan(ctx: &PlanContext, p: ScaleParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        if !(0..=100).contains(&p.replicas) {
            return Err(Error::params(
                Self::NAME,
                format!("replicas must be 0..=100, found {}", p.replicas),
            ));
        }
        let conn = ctx.clusters.get(&p.cluster)?;
        let dep = conn
            .must_get("apps/v1", "Deployment", Some(&p.namespace), &p.deployment)
            .await?;
        let r = ObjectRef::of(&dep);
        let from = dep["spec"]["replicas"].as_i64().unwrap_or(1);
        if from == p.replicas {
            return Err(Error::Precondition(format!(
                "{} already has {from} replicas",
                r.display()
            )));
        }
        let risk = if p.replicas == 0 {
            Risk::High
        } else if p.replicas < from {
            Risk::Medium
        } else {
            Risk::Low
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!(
                "Scale {} from {from} to {} on {}",
                r.display(),
                p.replicas,
                p.cluster
            ),
            rationale: format!(
                "Change capacity of {} from {from} to {} replicas.",
                r.display(),
                p.replicas
            ),
            params,
            steps: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("scale {} to {}", r.display(), p.replicas),
                op: Operation::Scale {
                    target: r.clone(),
                    replicas: p.replicas,
                    from,
                },
            }],
            undo: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("scale {} back to {from}", r.display()),
                op: Operation::Scale {
                    target: r.unpinned(),
                    replicas: from,
                    from: p.replicas,
                },
            }],
            risk,
            blast_radius: blast(&p.namespace, (p.replicas - from).abs()),
            extra_preconditions: Vec::new(),
            post_checks: vec![with_deadline(
                rollout_check(&p.cluster, &r, p.replicas),
                p.deadline_seconds,
            )],
        }
        .finish(ctx)
        .await
    }
}

/// Parses a Kubernetes memory quantity into bytes (binary and decimal suffixes).
pub(crate) fn memory_bytes(q: &str) -> Option<u128> {
    let units: [(&str, u128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u128>().ok().map(|n| n * mult);
        }
    }
    q.parse::<u128>().ok()
}

/// Renders bytes as Mi (rounded up), the unit people read limits in.
fn as_mebibytes(bytes: u128) -> String {
    format!("{}Mi", bytes.div_ceil(1 << 20))
}

impl Playbook for RaiseMemoryLimit {
    const NAME: &'static str = "raise-memory-limit";
    type Params = RaiseMemoryLimitParams;

    fn description() -> &'static str {
        "After OOMKill: raise one container's memory limit by a bounded percentage (default 25%, max 100%)."
    }

    async fn plan(ctx: &PlanContext, p: RaiseMemoryLimitParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let pct = p.increase_percent.unwrap_or(25);
        if !(1..=100).contains(&pct) {
            return Err(Error::params(
                Self::NAME,
                format!("increase_percent must be 1..=100, found {pct}"),
            ));
        }
        let conn = ctx.clusters.get(&p.cluster)?;
        let dep = conn
            .must_get("apps/v1", "Deployment", Some(&p.namespace), &p.deployment)
            .await?;
        let r = ObjectRef::of(&dep);
        let containers = dep["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (idx, c) = containers
            .iter()
            .enumerate()
            .find(|(_, c)| c["name"] == p.container.as_str())
            .ok_or_else(|| {
                Error::Precondition(format!("{} has no container {}", r.display(), p.container))
            })?;
        let current = c["resources"]["limits"]["memory"].as_str().ok_or_else(|| {
            Error::Precondition(format!(
                "container {} has no memory limit to raise",
                p.container
            ))
        })?;
        let bytes = memory_bytes(current)
            .ok_or_else(|| Error::Precondition(format!("cannot read memory limit {current:?}")))?;
        let new = as_mebibytes(bytes * (100 + pct as u128) / 100);
        let path = format!("/spec/template/spec/containers/{idx}/resources/limits/memory");
        let replicas = dep["spec"]["replicas"].as_i64().unwrap_or(1);
        let op = |from: &str, to: &str| {
            PatchBody::Json(json!([
                {"op": "test", "path": format!("/spec/template/spec/containers/{idx}/name"), "value": p.container},
                {"op": "test", "path": path, "value": from},
                {"op": "replace", "path": path, "value": to},
            ]))
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Raise memory limit of {}/{} from {current} to {new}", r.display(), p.container),
            rationale: format!("The container was OOMKilled; raise its limit by {pct}% (bounded), which rolls the pods."),
            params,
            steps: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("set memory limit of container {} to {new}", p.container),
                op: Operation::Patch { target: r.clone(), patch: op(current, &new), field_manager: ctx.field_manager.clone() },
            }],
            undo: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("restore memory limit {current}"),
                op: Operation::Patch { target: r.unpinned(), patch: op(&new, current), field_manager: ctx.field_manager.clone() },
            }],
            risk: Risk::Medium,
            blast_radius: blast(&p.namespace, replicas),
            extra_preconditions: Vec::new(),
            post_checks: vec![rollout_check(&p.cluster, &r, replicas)],
        }
        .finish(ctx)
        .await
    }
}

impl Playbook for Uncordon {
    const NAME: &'static str = "uncordon";
    type Params = UncordonParams;

    fn description() -> &'static str {
        "Make a repaired node schedulable again."
    }

    async fn plan(ctx: &PlanContext, p: UncordonParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let node = conn.must_get("v1", "Node", None, &p.node).await?;
        if node["spec"]["unschedulable"] != true {
            return Err(Error::Precondition(format!(
                "node {} is not cordoned",
                p.node
            )));
        }
        let r = ObjectRef::of(&node);
        let check = Check::FieldEquals {
            target: r.unpinned(),
            path: "spec.unschedulable".into(),
            value: Value::Null,
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Uncordon node {} on {}", p.node, p.cluster),
            rationale: format!("Node {} is cordoned; make it schedulable again.", p.node),
            params,
            steps: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("uncordon node {}", p.node),
                op: Operation::Uncordon {
                    node: r.clone(),
                    set_taints: None,
                },
            }],
            undo: vec![Step {
                cluster: p.cluster.clone(),
                description: format!("cordon node {} again", p.node),
                op: Operation::Cordon {
                    node: r.unpinned(),
                    set_taints: None,
                },
            }],
            risk: Risk::Medium,
            blast_radius: BlastRadius {
                nodes: vec![p.node.clone()],
                ..Default::default()
            },
            extra_preconditions: Vec::new(),
            post_checks: vec![PostCheck {
                cluster: p.cluster.clone(),
                description: check.describe(),
                check,
                deadline_seconds: 120,
            }],
        }
        .finish(ctx)
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn memory_quantities() {
        assert_eq!(memory_bytes("64Gi"), Some(64 << 30));
        assert_eq!(memory_bytes("500M"), Some(500_000_000));
        assert_eq!(memory_bytes("1024"), Some(1024));
        assert_eq!(memory_bytes("x"), None);
        assert_eq!(as_mebibytes(64 << 30), "65536Mi");
    }
}
