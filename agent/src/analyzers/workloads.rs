//! Failure classes on workloads, autoscaling, disruption budgets, quotas and traffic.

use super::{Analyzer, FindingBuilder, Item, Observations, events, nodes, obj, pods, workloads};
use crate::protocol::{Confidence, Finding};
use medic_tools::k8s::core::WorkloadSummary;
use medic_tools::k8s::net::ServiceSummary;
use medic_tools::k8s::tools::Summary;
use medic_tools::k8s::types::Health;
use serde_json::json;

/// Every workload analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(BadRollout),
        Box::new(HpaAtMax),
        Box::new(KedaAtMax),
        Box::new(PdbBlocking),
        Box::new(QuotaExceeded),
        Box::new(ServiceNoEndpoints),
        Box::new(RouteToUnhealthyBackend),
        Box::new(RegionalOutage),
    ]
}

fn revision(w: &WorkloadSummary) -> i64 {
    w.revision
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn services<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (Item<'a>, &'a ServiceSummary)> + 'a {
    obs.summaries().filter_map(|i| match i.summary {
        Summary::Service(s) => Some((i, s)),
        _ => None,
    })
}

/// The newest ReplicaSet of a Deployment is unhealthy while an older revision exists.
struct BadRollout;

impl Analyzer for BadRollout {
    fn name(&self) -> &'static str {
        "bad-rollout"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (item, d) in workloads(obs).filter(|(_, w)| w.kind == "Deployment") {
            let mut sets: Vec<&WorkloadSummary> = workloads(obs)
                .filter(|(i, w)| {
                    i.cluster == item.cluster
                        && w.kind == "ReplicaSet"
                        && w.namespace == d.namespace
                        && w.owner
                            .as_ref()
                            .is_some_and(|o| o.kind == "Deployment" && o.name == d.name)
                })
                .map(|(_, w)| w)
                .collect();
            sets.sort_by_key(|w| std::cmp::Reverse(revision(w)));
            let (Some(newest), Some(previous)) = (sets.first(), sets.get(1)) else {
                continue;
            };
            // A mostly-ready new revision is not a bad rollout (one pod on a failed node is not).
            if newest.desired == 0 || newest.ready * 2 > newest.desired {
                continue;
            }
            let broken_pods: Vec<String> = pods(obs)
                .filter(|(i, p)| {
                    i.cluster == item.cluster
                        && p.namespace == d.namespace
                        && p.owner.as_ref().is_some_and(|o| o.name == newest.name)
                        && p.health() == Health::Broken
                })
                .map(|(_, p)| p.name.clone())
                .collect();
            let stalled = d.conditions.iter().any(|c| {
                c.type_ == "Progressing"
                    && (c.status == "False"
                        || c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            });
            if broken_pods.is_empty() && !stalled {
                continue;
            }
            let target = obj(item.cluster, "Deployment", Some(&d.namespace), &d.name);
            let images_new = newest.images.join(", ");
            let images_old = previous.images.join(", ");
            let mut b = FindingBuilder::new(
                self.name(),
                &target,
                format!(
                    "rollout of {}/{} revision {} is failing ({}/{} ready)",
                    d.namespace,
                    d.name,
                    revision(newest),
                    newest.ready,
                    newest.desired
                ),
                format!(
                    "revision {} ({images_new}) does not become ready; revision {} ({images_old}) is the last known-good template",
                    revision(newest),
                    revision(previous)
                ),
            )
            .confidence(if broken_pods.is_empty() { Confidence::MEDIUM } else { Confidence::HIGH })
            .call(item.call_id, "k8s_list")
            .object(obj(item.cluster, "ReplicaSet", Some(&d.namespace), &newest.name))
            .object(obj(item.cluster, "ReplicaSet", Some(&d.namespace), &previous.name));
            if let Some(p) = broken_pods.first() {
                b = b.object(obj(item.cluster, "Pod", Some(&d.namespace), p));
            }
            if let Some(repo) = d.annotations.get("medic.dev/repo") {
                b = b.quote(format!("workload source repository: {repo}"));
            }
            out.push(
                b.suggest(
                    "rollback",
                    json!({"to_revision": revision(previous)}),
                    Some(target.clone()),
                )
                .build(),
            );
        }
        out
    }
}

/// A plain HPA pinned at its maximum.
struct HpaAtMax;

impl Analyzer for HpaAtMax {
    fn name(&self) -> &'static str {
        "hpa-at-max"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Hpa(h) = i.summary else { continue };
            // KEDA-owned HPAs are reported by keda-at-max.
            if h.name.starts_with("keda-hpa-")
                || h.max <= 0
                || h.current < h.max
                || h.desired < h.max
            {
                continue;
            }
            let target_name = h.target.rsplit('/').next().unwrap_or(&h.target).to_string();
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "HorizontalPodAutoscaler", Some(&h.namespace), &h.name),
                    format!("HPA {}/{} is at its maximum ({} replicas)", h.namespace, h.name, h.max),
                    format!(
                        "load exceeds what {} replicas of {} can serve; the autoscaler cannot add more ({})",
                        h.max,
                        h.target,
                        h.metrics.join(", ")
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .suggest(
                    "scale",
                    json!({"max_replicas": h.max + (h.max / 2).max(1)}),
                    Some(obj(i.cluster, "Deployment", Some(&h.namespace), &target_name)),
                )
                .build(),
            );
        }
        out
    }
}

/// A KEDA ScaledObject whose HPA is at the ScaledObject's maximum.
struct KedaAtMax;

impl Analyzer for KedaAtMax {
    fn name(&self) -> &'static str {
        "keda-at-max"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::ScaledObject(so) = i.summary else {
                continue;
            };
            let Some(max) = so.max.filter(|m| *m > 0) else {
                continue;
            };
            let hpa_name = so
                .hpa
                .clone()
                .unwrap_or_else(|| format!("keda-hpa-{}", so.name));
            let at_max = obs.summaries().any(|j| {
                matches!(j.summary, Summary::Hpa(h) if j.cluster == i.cluster
                    && h.namespace == so.namespace && h.name == hpa_name
                    && i64::from(h.current) >= max && i64::from(h.desired) >= max)
            });
            if !at_max {
                continue;
            }
            let target_name = so
                .target
                .rsplit('/')
                .next()
                .unwrap_or(&so.target)
                .to_string();
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "ScaledObject", Some(&so.namespace), &so.name),
                    format!(
                        "KEDA ScaledObject {}/{} is at its maximum ({max})",
                        so.namespace, so.name
                    ),
                    format!(
                        "the triggers ({}) ask for more than {max} replicas of {}",
                        so.triggers.join(", "),
                        so.target
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .suggest(
                    "scale",
                    json!({"max_replicas": max + (max / 2).max(1)}),
                    Some(obj(
                        i.cluster,
                        "Deployment",
                        Some(&so.namespace),
                        &target_name,
                    )),
                )
                .build(),
            );
        }
        out
    }
}

/// A PDB allowing no disruptions while a node is being drained (cordoned).
struct PdbBlocking;

impl Analyzer for PdbBlocking {
    fn name(&self) -> &'static str {
        "pdb-blocking-drain"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Pdb(p) = i.summary else { continue };
            if p.disruptions_allowed > 0 || p.expected_pods == 0 {
                continue;
            }
            let draining: Vec<String> = nodes(obs)
                .filter(|(n, s)| n.cluster == i.cluster && s.unschedulable)
                .map(|(_, s)| s.name.clone())
                .collect();
            if draining.is_empty() {
                continue;
            }
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "PodDisruptionBudget", Some(&p.namespace), &p.name),
                    format!("PDB {}/{} allows 0 disruptions while {} is drained", p.namespace, p.name, draining.join(", ")),
                    format!(
                        "{} of {} pods healthy with {} required: evictions from the cordoned node(s) are refused, so the drain cannot finish",
                        p.current_healthy, p.expected_pods, p.desired_healthy
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

/// Pods not created because a ResourceQuota is exhausted.
struct QuotaExceeded;

impl Analyzer for QuotaExceeded {
    fn name(&self) -> &'static str {
        "quota-exceeded"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (call, cluster, e) in events(obs) {
            if !e.message.to_ascii_lowercase().contains("exceeded quota") {
                continue;
            }
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(cluster, &e.kind, Some(&e.namespace), &e.name),
                    format!(
                        "{} {}/{} cannot create pods: quota exceeded",
                        e.kind, e.namespace, e.name
                    ),
                    format!(
                        "a ResourceQuota in namespace {} is exhausted: {}",
                        e.namespace, e.message
                    ),
                )
                .confidence(Confidence::HIGH)
                .call(call, "k8s_events")
                .quote(e.message.clone())
                .build(),
            );
        }
        out
    }
}

/// A Service with a selector and no ready endpoints.
struct ServiceNoEndpoints;

impl Analyzer for ServiceNoEndpoints {
    fn name(&self) -> &'static str {
        "service-no-endpoints"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, s) in services(obs) {
            if s.selector.is_empty() || s.type_ == "ExternalName" || s.ready_endpoints > 0 {
                continue;
            }
            let selector: Vec<String> =
                s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let why = if s.not_ready_endpoints > 0 {
                format!(
                    "{} matching pods exist but none is Ready",
                    s.not_ready_endpoints
                )
            } else {
                format!("no pod matches the selector {}", selector.join(","))
            };
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "Service", Some(&s.namespace), &s.name),
                    format!("Service {}/{} has no ready endpoints", s.namespace, s.name),
                    format!("traffic to {} fails: {why}", s.name),
                )
                .confidence(Confidence::HIGH)
                .call(i.call_id, "k8s_list")
                .build(),
            );
        }
        out
    }
}

/// An HTTPRoute sending weight to a backend Service with no ready endpoints while another
/// backend of the same rule is healthy.
struct RouteToUnhealthyBackend;

impl Analyzer for RouteToUnhealthyBackend {
    fn name(&self) -> &'static str {
        "httproute-unhealthy-backend"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::HttpRoute(r) = i.summary else {
                continue;
            };
            for rule in &r.rules {
                let ready = |b: &medic_tools::k8s::crd::Backend| {
                    let ns = b.namespace.clone().unwrap_or_else(|| r.namespace.clone());
                    services(obs)
                        .find(|(j, s)| {
                            j.cluster == i.cluster && s.namespace == ns && s.name == b.name
                        })
                        .map(|(_, s)| s.ready_endpoints)
                };
                let bad = rule
                    .backends
                    .iter()
                    .find(|b| b.kind == "Service" && b.weight > 0 && ready(b) == Some(0));
                let good = rule
                    .backends
                    .iter()
                    .find(|b| b.kind == "Service" && ready(b).is_some_and(|n| n > 0));
                let (Some(bad), Some(good)) = (bad, good) else {
                    continue;
                };
                let route = obj(i.cluster, "HTTPRoute", Some(&r.namespace), &r.name);
                out.push(
                    FindingBuilder::new(
                        self.name(),
                        &route,
                        format!(
                            "HTTPRoute {}/{} sends weight {} to backend {} which has no ready endpoints",
                            r.namespace, r.name, bad.weight, bad.name
                        ),
                        format!("requests routed to {} fail; {} is healthy", bad.name, good.name),
                    )
                    .confidence(Confidence::HIGH)
                    .call(i.call_id, "k8s_list")
                    .suggest(
                        "failover",
                        json!({"from_backend": bad.name, "to_backend": good.name}),
                        Some(route.clone()),
                    )
                    .build(),
                );
            }
        }
        out
    }
}

/// The same Deployment broken in one cluster and serving in another: fail over to that
/// standby, only where the placement label `residency` (when set) matches.
struct RegionalOutage;

impl Analyzer for RegionalOutage {
    fn name(&self) -> &'static str {
        "regional-outage"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let deps: Vec<(Item<'_>, &WorkloadSummary)> = workloads(obs)
            .filter(|(_, w)| w.kind == "Deployment")
            .collect();
        for (i, d) in &deps {
            if d.desired == 0 || d.ready * 2 > d.desired {
                continue;
            }
            let residency = obs.cluster_label(i.cluster, "residency");
            let peer = deps.iter().find(|(j, p)| {
                j.cluster != i.cluster
                    && p.namespace == d.namespace
                    && p.name == d.name
                    && p.desired > 0
                    && p.ready >= p.desired
                    && (residency.is_none()
                        || obs.cluster_label(j.cluster, "residency") == residency)
            });
            let Some((j, p)) = peer else { continue };
            let broken = obj(i.cluster, "Deployment", Some(&d.namespace), &d.name);
            let standby = obj(j.cluster, "Deployment", Some(&p.namespace), &p.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &broken,
                    format!(
                        "{}/{} is down in {} ({}/{} ready); {} can serve it",
                        d.namespace, d.name, i.cluster, d.ready, d.desired, j.cluster
                    ),
                    format!(
                        "an outage local to cluster {} (regional outage); the standby in {} is healthy{}",
                        i.cluster,
                        j.cluster,
                        residency.map(|r| format!(" and has the same residency ({r})")).unwrap_or_default()
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .object(standby.clone())
                .suggest(
                    "failover",
                    json!({"from_cluster": i.cluster, "to_cluster": j.cluster, "replicas": d.desired}),
                    Some(standby.clone()),
                )
                .build(),
            );
        }
        out
    }
}
