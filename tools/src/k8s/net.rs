//! Services with endpoints, PDBs, HPAs, events, and metadata-only views of Secrets and
//! ConfigMaps (their data is never requested).

use super::types::*;
use crate::redact::clean;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Endpoints, Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn ios(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// A Service with its endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// `ClusterIP`, `LoadBalancer`, …
    pub type_: String,
    /// Pod selector.
    pub selector: BTreeMap<String, String>,
    /// Ports (`name port→target/proto`).
    pub ports: Vec<String>,
    /// Ready endpoint addresses.
    pub ready_endpoints: u32,
    /// Not-ready endpoint addresses.
    pub not_ready_endpoints: u32,
    /// Pods behind ready endpoints (first few).
    pub ready_pods: Vec<String>,
    /// Pods behind not-ready endpoints (first few).
    pub not_ready_pods: Vec<String>,
}

impl ServiceSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if !self.selector.is_empty() && self.ready_endpoints == 0 {
            Health::Broken
        } else if self.not_ready_endpoints > 0 {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "Service {}/{} {} selector {} ports {} endpoints ready {} not-ready {}{}",
            self.namespace,
            self.name,
            self.type_,
            kv(&self.selector),
            self.ports.join(","),
            self.ready_endpoints,
            self.not_ready_endpoints,
            if self.not_ready_pods.is_empty() {
                String::new()
            } else {
                format!(" (not ready: {})", self.not_ready_pods.join(","))
            }
        )
    }
}

/// The EndpointSlices of a Service (labelled `kubernetes.io/service-name`).
pub fn slices_of<'a>(s: &Service, slices: &'a [EndpointSlice]) -> Vec<&'a EndpointSlice> {
    slices
        .iter()
        .filter(|e| {
            e.metadata.namespace == s.metadata.namespace
                && e.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    == s.metadata.name.as_ref()
        })
        .collect()
}

/// Summarise a Service with its Endpoints object (same name) or, when there is none (the
/// Endpoints API is deprecated since 1.33), its EndpointSlices.
pub fn service_summary(
    s: &Service,
    ep: Option<&Endpoints>,
    slices: &[&EndpointSlice],
) -> ServiceSummary {
    let spec = s.spec.as_ref();
    let mut out = ServiceSummary {
        name: s.metadata.name.clone().unwrap_or_default(),
        namespace: s.metadata.namespace.clone().unwrap_or_default(),
        uid: s.metadata.uid.clone(),
        type_: spec
            .and_then(|s| s.type_.clone())
            .unwrap_or_else(|| "ClusterIP".into()),
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        ports: spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}{}→{}/{}",
                    p.name
                        .as_deref()
                        .map(|n| format!("{n} "))
                        .unwrap_or_default(),
                    p.port,
                    p.target_port
                        .as_ref()
                        .map(ios)
                        .unwrap_or_else(|| p.port.to_string()),
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect(),
        ready_endpoints: 0,
        not_ready_endpoints: 0,
        ready_pods: vec![],
        not_ready_pods: vec![],
    };
    if ep.is_none() {
        for e in slices.iter().flat_map(|s| s.endpoints.iter().flatten()) {
            // An unknown readiness is ready, as the API documents.
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            let (count, names) = if ready {
                (&mut out.ready_endpoints, &mut out.ready_pods)
            } else {
                (&mut out.not_ready_endpoints, &mut out.not_ready_pods)
            };
            *count += 1;
            if names.len() < 5
                && let Some(t) = &e.target_ref
            {
                names.push(t.name.clone().unwrap_or_default());
            }
        }
    }
    for sub in ep.and_then(|e| e.subsets.as_ref()).into_iter().flatten() {
        for a in sub.addresses.iter().flatten() {
            out.ready_endpoints += 1;
            if out.ready_pods.len() < 5
                && let Some(t) = &a.target_ref
            {
                out.ready_pods.push(t.name.clone().unwrap_or_default());
            }
        }
        for a in sub.not_ready_addresses.iter().flatten() {
            out.not_ready_endpoints += 1;
            if out.not_ready_pods.len() < 5
                && let Some(t) = &a.target_ref
            {
                out.not_ready_pods.push(t.name.clone().unwrap_or_default());
            }
        }
    }
    out
}

/// A PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdbSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Selector (`k=v,…`).
    pub selector: String,
    /// minAvailable.
    pub min_available: Option<String>,
    /// maxUnavailable.
    pub max_unavailable: Option<String>,
    /// Healthy pods now.
    pub current_healthy: i32,
    /// Healthy pods required.
    pub desired_healthy: i32,
    /// Evictions allowed now.
    pub disruptions_allowed: i32,
    /// Pods counted.
    pub expected_pods: i32,
}

impl PdbSummary {
    /// Problems first: a PDB that allows no disruption blocks drains.
    pub fn health(&self) -> Health {
        if self.disruptions_allowed == 0 {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "PDB {}/{} selector {} minAvailable {} maxUnavailable {} healthy {}/{} (expected {}) disruptionsAllowed {}",
            self.namespace,
            self.name,
            self.selector,
            self.min_available.as_deref().unwrap_or("-"),
            self.max_unavailable.as_deref().unwrap_or("-"),
            self.current_healthy,
            self.desired_healthy,
            self.expected_pods,
            self.disruptions_allowed
        )
    }
}

/// Summarise a PDB.
pub fn pdb_summary(p: &PodDisruptionBudget) -> PdbSummary {
    let spec = p.spec.as_ref();
    let st = p.status.as_ref();
    PdbSummary {
        name: p.metadata.name.clone().unwrap_or_default(),
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone(),
        selector: spec
            .and_then(|s| s.selector.as_ref())
            .map(|s| {
                s.match_labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        min_available: spec.and_then(|s| s.min_available.as_ref()).map(ios),
        max_unavailable: spec.and_then(|s| s.max_unavailable.as_ref()).map(ios),
        current_healthy: st.and_then(|s| s.current_healthy).unwrap_or(0),
        desired_healthy: st.and_then(|s| s.desired_healthy).unwrap_or(0),
        disruptions_allowed: st.and_then(|s| s.disruptions_allowed).unwrap_or(0),
        expected_pods: st.and_then(|s| s.expected_pods).unwrap_or(0),
    }
}

/// A HorizontalPodAutoscaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HpaSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// `Kind/name` scaled.
    pub target: String,
    /// Minimum replicas.
    pub min: i32,
    /// Maximum replicas.
    pub max: i32,
    /// Current replicas.
    pub current: i32,
    /// Desired replicas.
    pub desired: i32,
    /// Metrics as `name current/target`.
    pub metrics: Vec<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

impl HpaSummary {
    /// At its maximum.
    pub fn at_max(&self) -> bool {
        self.current >= self.max || self.desired >= self.max
    }
    /// Problems first.
    pub fn health(&self) -> Health {
        if self
            .conditions
            .iter()
            .any(|c| c.type_ == "ScalingActive" && c.status == "False")
        {
            Health::Broken
        } else if self.at_max() {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "HPA {}/{} → {} replicas {} (desired {}) min {} max {}{} metrics {}",
            self.namespace,
            self.name,
            self.target,
            self.current,
            self.desired,
            self.min,
            self.max,
            if self.at_max() { " AT MAX" } else { "" },
            self.metrics.join("; ")
        );
        for c in self
            .conditions
            .iter()
            .filter(|c| (c.status == "False") != (c.type_ == "ScalingLimited"))
        {
            s.push_str(&format!(" — {}", c.line()));
        }
        s
    }
}

/// Summarise an HPA (autoscaling/v2).
pub fn hpa_summary(h: &HorizontalPodAutoscaler) -> HpaSummary {
    let spec = Some(&h.spec);
    let st = h.status.as_ref();
    let mut metrics = Vec::new();
    let currents = st
        .and_then(|s| s.current_metrics.clone())
        .unwrap_or_default();
    for (i, m) in spec
        .and_then(|s| s.metrics.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (name, target) = if let Some(r) = &m.resource {
            (
                r.name.clone(),
                r.target
                    .average_utilization
                    .map(|u| format!("{u}%"))
                    .or_else(|| r.target.average_value.as_ref().map(|q| q.0.clone())),
            )
        } else if let Some(e) = &m.external {
            (
                e.metric.name.clone(),
                e.target
                    .average_value
                    .as_ref()
                    .or(e.target.value.as_ref())
                    .map(|q| q.0.clone()),
            )
        } else if let Some(p) = &m.pods {
            (
                p.metric.name.clone(),
                p.target.average_value.as_ref().map(|q| q.0.clone()),
            )
        } else {
            (m.type_.clone(), None)
        };
        let current = currents.get(i).and_then(|c| {
            c.resource
                .as_ref()
                .and_then(|r| {
                    r.current
                        .average_utilization
                        .map(|u| format!("{u}%"))
                        .or_else(|| r.current.average_value.as_ref().map(|q| q.0.clone()))
                })
                .or_else(|| {
                    c.external.as_ref().and_then(|e| {
                        e.current
                            .average_value
                            .as_ref()
                            .or(e.current.value.as_ref())
                            .map(|q| q.0.clone())
                    })
                })
                .or_else(|| {
                    c.pods
                        .as_ref()
                        .and_then(|p| p.current.average_value.as_ref().map(|q| q.0.clone()))
                })
        });
        metrics.push(format!(
            "{name} {}/{}",
            current.as_deref().unwrap_or("?"),
            target.as_deref().unwrap_or("?")
        ));
    }
    HpaSummary {
        name: h.metadata.name.clone().unwrap_or_default(),
        namespace: h.metadata.namespace.clone().unwrap_or_default(),
        uid: h.metadata.uid.clone(),
        target: spec
            .map(|s| format!("{}/{}", s.scale_target_ref.kind, s.scale_target_ref.name))
            .unwrap_or_default(),
        min: spec.and_then(|s| s.min_replicas).unwrap_or(1),
        max: spec.map_or(0, |s| s.max_replicas),
        current: st.and_then(|s| s.current_replicas).unwrap_or(0),
        desired: st.map_or(0, |s| s.desired_replicas),
        metrics,
        conditions: st
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                cond(
                    &c.type_,
                    &c.status,
                    c.reason.as_ref(),
                    c.message.as_ref(),
                    c.last_transition_time.as_ref(),
                )
            })
            .collect(),
    }
}

/// An event (deduplicated by the API server into counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// Reason (`BackOff`, `FailedScheduling`, …).
    pub reason: String,
    /// Kind of the object involved.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name of the object involved.
    pub name: String,
    /// Uid of the object involved.
    pub uid: Option<String>,
    /// Message (cleaned).
    pub message: String,
    /// Occurrences.
    pub count: i32,
    /// First seen.
    pub first_seen: Option<String>,
    /// Last seen.
    pub last_seen: Option<String>,
    /// Reporting component.
    pub source: Option<String>,
}

impl EventSummary {
    /// One line; the message is quoted as data.
    pub fn line(&self) -> String {
        format!(
            "{} {} {}/{} x{} first {} last {}: {}",
            self.type_,
            self.reason,
            self.kind,
            self.name,
            self.count,
            self.first_seen.as_deref().unwrap_or("-"),
            self.last_seen.as_deref().unwrap_or("-"),
            serde_json::to_string(&short(&self.message, 300)).unwrap_or_default()
        )
    }
}

/// Summarise a core/v1 Event.
pub fn event_summary(e: &Event) -> EventSummary {
    let first = e
        .first_timestamp
        .as_ref()
        .map(time)
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()));
    let last = e
        .last_timestamp
        .as_ref()
        .map(time)
        .or_else(|| {
            e.series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0.to_string())
        })
        .or_else(|| first.clone());
    EventSummary {
        type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: e.reason.clone().unwrap_or_default(),
        kind: e.involved_object.kind.clone().unwrap_or_default(),
        namespace: e
            .involved_object
            .namespace
            .clone()
            .or_else(|| e.metadata.namespace.clone())
            .unwrap_or_default(),
        name: e.involved_object.name.clone().unwrap_or_default(),
        uid: e.involved_object.uid.clone(),
        message: clean(e.message.as_deref().unwrap_or("")),
        count: e
            .count
            .or_else(|| e.series.as_ref().and_then(|s| s.count))
            .unwrap_or(1),
        first_seen: first,
        last_seen: last,
        source: e
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .or_else(|| e.reporting_component.clone()),
    }
}

/// Order events: warnings first, then most recent, then most frequent.
pub fn sort_events(ev: &mut [EventSummary]) {
    ev.sort_by(|a, b| {
        (a.type_ != "Warning")
            .cmp(&(b.type_ != "Warning"))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(b.count.cmp(&a.count))
    });
}

/// An object of which only metadata was read (Secrets, ConfigMaps, Namespaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaSummary {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Uid.
    pub uid: Option<String>,
    /// Key labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: Option<String>,
    /// ConfigMaps and Secrets: when their data was last written (from managed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_changed: Option<String>,
    /// The field manager of that write (`kubectl-edit`, `helm`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_changed_by: Option<String>,
}

impl MetaSummary {
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "{} {}{} created {}{}",
            self.kind,
            self.namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            self.name,
            self.created.as_deref().unwrap_or("-"),
            self.data_changed
                .as_deref()
                .map(|t| format!(
                    " data changed {t}{}",
                    self.data_changed_by
                        .as_deref()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(" by {m}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        )
    }
}
