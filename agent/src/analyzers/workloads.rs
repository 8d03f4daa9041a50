//! Failure classes on workloads, autoscaling, disruption budgets, quotas and traffic.

use super::{Analyzer, FindingBuilder, Item, Observations, events, nodes, obj, pods, workloads};
use crate::protocol::{Confidence, Finding};
use medic_tools::k8s::core::{PodSummary, WorkloadSummary};
use medic_tools::k8s::net::ServiceSummary;
use medic_tools::k8s::tools::Summary;
use serde_json::json;
use std::collections::HashMap;

/// Every workload analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(super::rollout::BadRollout),
        Box::new(HpaAtMax),
        Box::new(KedaAtMax),
        Box::new(PdbBlocking),
        Box::new(QuotaExceeded),
        Box::new(ServiceNoEndpoints),
        Box::new(RouteToUnhealthyBackend),
        Box::new(RegionalOutage),
    ]
}

fn services<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (Item<'a>, &'a ServiceSummary)> + 'a {
    obs.summaries().filter_map(|i| match i.summary {
        Summary::Service(s) => Some((i, s)),
        _ => None,
    })
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
                // No scale: the autoscaler would undo it; raising maxReplicas is a
                // human's change to the HPA.
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .object(obj(i.cluster, "Deployment", Some(&h.namespace), &target_name))
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
                // No scale: KEDA owns the replica count.
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .object(obj(
                    i.cluster,
                    "Deployment",
                    Some(&so.namespace),
                    &target_name,
                ))
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
            // "exceeded quota: team-quota, requested: …" names the ResourceQuota.
            let quota = e
                .message
                .split_once("exceeded quota: ")
                .map(|(_, rest)| {
                    rest.split(|c: char| c == ',' || c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                })
                .filter(|q| !q.is_empty());
            if let (Some(q), Some(f)) = (quota, out.last_mut()) {
                f.evidence.push(crate::protocol::EvidenceRef::Source(
                    medic_tools::EvidenceRef::Object(obj(
                        cluster,
                        "ResourceQuota",
                        Some(&e.namespace),
                        q,
                    )),
                ));
                f.root_cause = format!(
                    "ResourceQuota {}/{q} is exhausted: {}",
                    e.namespace, e.message
                );
            }
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
        // Pods by (cluster, namespace), built only when a Service needs checking.
        let mut by_ns: Option<HashMap<(&str, &str), Vec<&PodSummary>>> = None;
        for (i, s) in services(obs) {
            if s.selector.is_empty() || s.type_ == "ExternalName" || s.ready_endpoints > 0 {
                continue;
            }
            // Endpoints may simply be unknown (only EndpointSlices exist): the pods decide.
            let index = by_ns.get_or_insert_with(|| {
                let mut m: HashMap<(&str, &str), Vec<&PodSummary>> = HashMap::new();
                for (pi, p) in pods(obs) {
                    m.entry((pi.cluster, p.namespace.as_str()))
                        .or_default()
                        .push(p);
                }
                m
            });
            let matching: Vec<&PodSummary> = index
                .get(&(i.cluster, s.namespace.as_str()))
                .into_iter()
                .flatten()
                .filter(|p| {
                    s.selector
                        .iter()
                        .all(|(k, v)| p.all_labels.get(k).is_some_and(|pv| pv == v))
                })
                .copied()
                .collect();
            if matching.iter().any(|p| p.ready) {
                continue;
            }
            let selector: Vec<String> =
                s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let not_ready = matching.len().max(s.not_ready_endpoints as usize);
            let (why, confidence) = if not_ready > 0 {
                (
                    format!("{not_ready} matching pods exist but none is Ready"),
                    Confidence::HIGH,
                )
            } else {
                // Possibly pods medic cannot see (another namespace view, a gateway's own
                // proxy): worth a look, not a verdict.
                (
                    format!("no pod matches the selector {}", selector.join(",")),
                    Confidence::LOW,
                )
            };
            let mut b = FindingBuilder::new(
                self.name(),
                &obj(i.cluster, "Service", Some(&s.namespace), &s.name),
                format!("Service {}/{} has no ready endpoints", s.namespace, s.name),
                format!("traffic to {} fails: {why}", s.name),
            )
            .confidence(confidence)
            .call(i.call_id, "k8s_list");
            if let Some(p) = matching.first() {
                b = b.object(obj(i.cluster, "Pod", Some(&p.namespace), &p.name));
            }
            out.push(b.build());
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
                let b = FindingBuilder::new(
                    self.name(),
                    &route,
                    format!(
                        "HTTPRoute {}/{} sends weight {} to backend {} which has no ready endpoints",
                        r.namespace, r.name, bad.weight, bad.name
                    ),
                    format!("requests routed to {} fail; {} is healthy", bad.name, good.name),
                )
                .confidence(Confidence::HIGH)
                .call(i.call_id, "k8s_list");
                // The healthy backend's Deployment is the standby traffic moves to.
                let ns = good
                    .namespace
                    .clone()
                    .unwrap_or_else(|| r.namespace.clone());
                let standby = workloads(obs).find(|(j, w)| {
                    j.cluster == i.cluster
                        && w.kind == "Deployment"
                        && w.namespace == ns
                        && w.name == good.name
                });
                let b = match standby {
                    Some((j, w)) => b.suggest(
                        "failover",
                        json!({
                            "route_cluster": i.cluster,
                            "route_namespace": r.namespace,
                            "route": r.name,
                            "to_backend": good.name,
                            "replicas": w.desired.max(1),
                        }),
                        Some(obj(j.cluster, "Deployment", Some(&w.namespace), &w.name)),
                    ),
                    None => b,
                };
                out.push(b.build());
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
            let route = failover_route(obs, j.cluster, &p.namespace, &p.name);
            let b = FindingBuilder::new(
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
                .object(standby.clone());
            // Traffic moves at the standby's HTTPRoute; with none, nothing can be planned.
            let b = match route {
                Some((ri, r, backend)) => b
                    .object(obj(ri.cluster, "HTTPRoute", Some(&r.namespace), &r.name))
                    .suggest(
                        "failover",
                        json!({
                            "route_cluster": ri.cluster,
                            "route_namespace": r.namespace,
                            "route": r.name,
                            "to_backend": backend,
                            "replicas": d.desired,
                        }),
                        Some(standby.clone()),
                    ),
                None => b,
            };
            out.push(b.build());
        }
        out
    }
}

/// The HTTPRoute in `cluster`/`namespace` with a Service backend serving `deployment`
/// (named after it), and that backend's name.
fn failover_route<'a>(
    obs: &'a Observations<'a>,
    cluster: &str,
    namespace: &str,
    deployment: &str,
) -> Option<(
    Item<'a>,
    &'a medic_tools::k8s::crd::HttpRouteSummary,
    String,
)> {
    let selects = |svc: &str| {
        services(obs).any(|(j, s)| {
            j.cluster == cluster
                && s.namespace == namespace
                && s.name == svc
                && (svc == deployment
                    || workloads(obs).any(|(k, w)| {
                        k.cluster == cluster
                            && w.kind == "Deployment"
                            && w.namespace == namespace
                            && w.name == deployment
                            && !s.selector.is_empty()
                            && s.selector.iter().all(|(key, v)| {
                                w.selector.split(',').any(|kv| kv == format!("{key}={v}"))
                            })
                    }))
        })
    };
    obs.summaries().find_map(|i| {
        let Summary::HttpRoute(r) = i.summary else {
            return None;
        };
        if i.cluster != cluster || r.namespace != namespace {
            return None;
        }
        let backend = r.rules.iter().flat_map(|rule| &rule.backends).find(|b| {
            b.kind == "Service"
                && b.namespace.as_deref().is_none_or(|n| n == namespace)
                && selects(&b.name)
        })?;
        Some((i, r, backend.name.clone()))
    })
}
