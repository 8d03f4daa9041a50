//! failover: scale the standby first, wait until it is Ready, then shift Gateway API
//! HTTPRoute weights to it — only to targets whose cluster labels satisfy the placement
//! policy (data residency); anything else is refused with the reason.

use medic_approvals::Risk;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Draft, PlanContext, Playbook, label};
use crate::error::{Error, Result};
use crate::plan::{BlastRadius, Plan, PostCheck};
use crate::step::{Check, ObjectRef, Operation, RouteWeight, Step};

/// Placement policy: an object label naming a requirement, matched against a cluster label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementPolicy {
    /// Label on the route, workload or namespace (default `medic.dev/residency`).
    pub object_label: String,
    /// Cluster label that must carry the same value (default `residency`).
    pub cluster_label: String,
}

impl Default for PlacementPolicy {
    fn default() -> Self {
        PlacementPolicy {
            object_label: "medic.dev/residency".into(),
            cluster_label: "residency".into(),
        }
    }
}

/// Parameters of failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverParams {
    /// Cluster holding the HTTPRoute (the traffic entry point).
    pub route_cluster: String,
    /// Namespace of the HTTPRoute.
    pub route_namespace: String,
    /// HTTPRoute name.
    pub route: String,
    /// backendRef that should receive all traffic (a Service, or a ServiceImport).
    pub to_backend: String,
    /// Cluster of the standby Deployment.
    pub standby_cluster: String,
    /// Namespace of the standby Deployment.
    pub standby_namespace: String,
    /// Standby Deployment name.
    pub standby_deployment: String,
    /// Replicas the standby needs before traffic moves.
    pub replicas: i64,
    /// Seconds to wait for the standby and for post-checks (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
}

pub(crate) struct Failover;

impl Playbook for Failover {
    const NAME: &'static str = "failover";
    type Params = FailoverParams;

    fn description() -> &'static str {
        "Unhealthy cluster/region: scale the standby, wait Ready, shift HTTPRoute weights to it; refuses targets that break residency."
    }

    async fn plan(ctx: &PlanContext, p: FailoverParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let rconn = ctx.clusters.get(&p.route_cluster)?;
        let sconn = ctx.clusters.get(&p.standby_cluster)?;
        let route = rconn
            .must_get(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some(&p.route_namespace),
                &p.route,
            )
            .await?;
        let route_ref = ObjectRef::of(&route);
        let standby = sconn
            .must_get(
                "apps/v1",
                "Deployment",
                Some(&p.standby_namespace),
                &p.standby_deployment,
            )
            .await?;
        let standby_ref = ObjectRef::of(&standby);

        // What placement the traffic requires: the route, the standby or the namespace says.
        let pol = &ctx.placement;
        let ns = rconn
            .get("v1", "Namespace", None, &p.route_namespace)
            .await?
            .unwrap_or(Value::Null);
        let required = [&route, &standby, &ns]
            .iter()
            .find_map(|o| label(o, &pol.object_label).map(|v| v.to_owned()));
        let satisfies = |cluster: &str| -> Result<()> {
            let Some(req) = &required else { return Ok(()) };
            let c = ctx.clusters.get(cluster).map_err(|_| {
                Error::Policy(format!(
                    "{} requires {}={req}, and cluster {cluster} is not configured, so its labels are unknown",
                    route_ref.display(),
                    pol.cluster_label
                ))
            })?;
            match c.spec.labels.get(&pol.cluster_label) {
                Some(v) if v == req => Ok(()),
                found => Err(Error::Policy(format!(
                    "{} carries {}={req}, but cluster {cluster} has {}={}; traffic may only fail over to clusters labelled {}={req}",
                    route_ref.display(),
                    pol.object_label,
                    pol.cluster_label,
                    found.map(String::as_str).unwrap_or("(unset)"),
                    pol.cluster_label
                ))),
            }
        };
        satisfies(&p.standby_cluster)?;
        // Where the new backend serves from: a Service is local to the route's cluster; a
        // ServiceImport names its source cluster.
        let backend_cluster = match rconn
            .get("multicluster.x-k8s.io/v1alpha1", "ServiceImport", Some(&p.route_namespace), &p.to_backend)
            .await
        {
            Ok(Some(si)) => label(&si, "multicluster.kubernetes.io/source-cluster")
                .map(str::to_owned)
                .or_else(|| si["status"]["clusters"][0]["cluster"].as_str().map(str::to_owned))
                .ok_or_else(|| Error::Policy(format!("ServiceImport {} names no source cluster, so its placement cannot be checked", p.to_backend)))?,
            _ => p.route_cluster.clone(),
        };
        satisfies(&backend_cluster)?;
        if backend_cluster != p.standby_cluster {
            return Err(Error::Precondition(format!(
                "backend {} serves from cluster {backend_cluster}, but the standby is in {}; name the backend that routes to the standby",
                p.to_backend, p.standby_cluster
            )));
        }

        // New weights: everything to the target backend, in every rule that has it.
        let mut weights = Vec::new();
        let mut undo_weights = Vec::new();
        let (mut moved, mut total) = (0i64, 0i64);
        for (ri, rule) in route["spec"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let refs = rule["backendRefs"].as_array().cloned().unwrap_or_default();
            if !refs.iter().any(|b| b["name"] == p.to_backend.as_str()) {
                continue;
            }
            for (bi, b) in refs.iter().enumerate() {
                let name = b["name"].as_str().unwrap_or_default().to_owned();
                let old = b["weight"].as_i64().unwrap_or(1);
                let new = if name == p.to_backend { 100 } else { 0 };
                total += old;
                if name != p.to_backend {
                    moved += old;
                }
                weights.push(RouteWeight {
                    rule: ri,
                    backend: bi,
                    name: name.clone(),
                    weight: new,
                });
                undo_weights.push(RouteWeight {
                    rule: ri,
                    backend: bi,
                    name,
                    weight: old,
                });
            }
        }
        if weights.is_empty() {
            return Err(Error::Precondition(format!(
                "{} has no backendRef named {}; its backends are the failover targets",
                route_ref.display(),
                p.to_backend
            )));
        }
        if moved == 0 {
            return Err(Error::Precondition(format!(
                "{} already sends all traffic to {}",
                route_ref.display(),
                p.to_backend
            )));
        }
        let share = if total > 0 {
            (moved * 100 / total) as u32
        } else {
            0
        };
        let deadline = p.deadline_seconds.unwrap_or(600);
        let current = standby["spec"]["replicas"].as_i64().unwrap_or(1);
        let mut steps = Vec::new();
        let mut undo = vec![Step {
            cluster: p.route_cluster.clone(),
            description: format!("restore the weights of {}", route_ref.display()),
            op: Operation::SetRouteWeights {
                route: route_ref.unpinned(),
                weights: undo_weights,
            },
        }];
        if current < p.replicas {
            steps.push(Step {
                cluster: p.standby_cluster.clone(),
                description: format!(
                    "scale standby {} from {current} to {} replicas",
                    standby_ref.display(),
                    p.replicas
                ),
                op: Operation::Scale {
                    target: standby_ref.clone(),
                    replicas: p.replicas,
                    from: current,
                },
            });
            undo.push(Step {
                cluster: p.standby_cluster.clone(),
                description: format!("scale {} back to {current}", standby_ref.display()),
                op: Operation::Scale {
                    target: standby_ref.unpinned(),
                    replicas: current,
                    from: p.replicas,
                },
            });
        }
        let ready = Check::FieldAtLeast {
            target: standby_ref.unpinned(),
            path: "status.readyReplicas".into(),
            value: p.replicas,
        };
        steps.push(Step {
            cluster: p.standby_cluster.clone(),
            description: format!(
                "wait until {} has {} Ready replicas",
                standby_ref.display(),
                p.replicas
            ),
            op: Operation::WaitFor {
                check: ready.clone(),
                timeout_seconds: deadline,
            },
        });
        steps.push(Step {
            cluster: p.route_cluster.clone(),
            description: format!(
                "send 100% of {} to {} ({share}% of traffic moves)",
                route_ref.display(),
                p.to_backend
            ),
            op: Operation::SetRouteWeights {
                route: route_ref.clone(),
                weights: weights.clone(),
            },
        });
        let mut post_checks = vec![PostCheck {
            cluster: p.standby_cluster.clone(),
            description: ready.describe(),
            check: ready,
            deadline_seconds: deadline,
        }];
        for w in &weights {
            let check = Check::FieldEquals {
                target: route_ref.unpinned(),
                path: format!("spec.rules.{}.backendRefs.{}.weight", w.rule, w.backend),
                value: w.weight.into(),
            };
            post_checks.push(PostCheck {
                cluster: p.route_cluster.clone(),
                description: check.describe(),
                check,
                deadline_seconds: deadline,
            });
        }
        let mut namespaces = vec![p.route_namespace.clone()];
        if !namespaces.contains(&p.standby_namespace) {
            namespaces.push(p.standby_namespace.clone());
        }
        Draft {
            playbook: Self::NAME,
            cluster: p.standby_cluster.clone(),
            title: format!("Fail {} over to {} on {}", route_ref.display(), p.to_backend, p.standby_cluster),
            rationale: format!(
                "Move {share}% of the traffic of {} to {} ({}), which satisfies the placement requirement {}. The standby {} is scaled to {} and must be Ready before any traffic moves.",
                route_ref.display(),
                p.to_backend,
                backend_cluster,
                required.as_deref().map(|r| format!("{}={r}", pol.cluster_label)).unwrap_or_else(|| "(none)".into()),
                standby_ref.display(),
                p.replicas
            ),
            params,
            steps,
            undo,
            risk: Risk::Critical,
            blast_radius: BlastRadius {
                pods: (p.replicas - current).max(0) as u32,
                replicas: (p.replicas - current).max(0) as u32,
                traffic_share_percent: share,
                namespaces,
                nodes: Vec::new(),
            },
            extra_preconditions: Vec::new(),
            post_checks,
        }
        .finish(ctx)
        .await
    }
}
