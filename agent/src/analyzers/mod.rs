//! Deterministic analyzers: detectors over typed tool outputs that produce findings with
//! evidence and a suggested playbook, with no model.
//!
//! An investigation first runs a fixed, cheap collection of read-only tool calls
//! ([`AnalyzerSet::collection`]), wraps the results in [`Observations`], and runs every
//! [`Analyzer`] over them. With no model configured, these findings are the answer; with a
//! model, they are handed to it first so it spends few tokens re-discovering them.

mod config;
mod explain;
pub(crate) mod gpu;
mod network;
pub(crate) mod nodes;
mod platform;
mod pods;
mod rollout;
mod workloads;

use crate::protocol::{Confidence, EvidenceRef, Finding, ObjectRef, PlaybookRef};
use chrono::{DateTime, Utc};
use medic_tools::ToolResult;
use medic_tools::k8s::core::{NodeSummary, PodSummary, WorkloadSummary};
use medic_tools::k8s::net::EventSummary;
use medic_tools::k8s::tools::Summary;
use medic_tools::k8s::tools::{EventsOutput, ListOutput};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What the collection calls returned, with typed access.
pub struct Observations<'a> {
    results: &'a [(String, ToolResult)],
    /// The investigation's clock.
    pub now: DateTime<Utc>,
    /// Placement labels per cluster (region, residency, …).
    pub cluster_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> Observations<'a> {
    /// Wrap `(call id, result)` pairs.
    pub fn new(results: &'a [(String, ToolResult)], now: DateTime<Utc>) -> Self {
        Observations {
            results,
            now,
            cluster_labels: BTreeMap::new(),
        }
    }

    /// With the clusters' placement labels (used to respect residency in failover).
    pub fn with_cluster_labels(
        mut self,
        labels: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Self {
        self.cluster_labels = labels;
        self
    }

    /// A cluster's label value.
    pub fn cluster_label(&self, cluster: &str, key: &str) -> Option<&str> {
        self.cluster_labels
            .get(cluster)?
            .get(key)
            .map(String::as_str)
    }

    /// Every typed output of type `T`, with its call id.
    pub fn outputs<T: 'static>(&self) -> impl Iterator<Item = (&'a str, &'a T)> + '_ {
        self.results
            .iter()
            .filter_map(|(id, r)| r.output::<T>().map(|o| (id.as_str(), o)))
    }

    /// Every listed object summary, with its cluster and call id.
    pub fn summaries(&self) -> impl Iterator<Item = Item<'a>> + '_ {
        self.outputs::<ListOutput>().flat_map(|(id, out)| {
            out.items.iter().map(move |s| Item {
                call_id: id,
                cluster: out.cluster.as_str(),
                summary: s,
            })
        })
    }

    /// Events, with cluster and call id.
    pub fn events(&self) -> impl Iterator<Item = (&'a str, &'a EventsOutput)> + '_ {
        self.outputs::<EventsOutput>()
    }
}

/// One listed object.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    /// The call that listed it.
    pub call_id: &'a str,
    /// Its cluster.
    pub cluster: &'a str,
    /// Its summary.
    pub summary: &'a Summary,
}

/// A deterministic detector.
pub trait Analyzer: Send + Sync {
    /// Failure class name (`crashloop-oom`, `gpu-xid`, …); finding ids start with it.
    fn name(&self) -> &'static str;
    /// Findings over the observations (empty when healthy).
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding>;
    /// Read-only calls (tool name, arguments) that would sharpen `findings` — e.g. a bad
    /// rollout's repository history. The session runs them, then every analyzer again over
    /// everything read. Only tools in `tools` may be named.
    fn follow_ups(
        &self,
        _findings: &[Finding],
        _obs: &Observations<'_>,
        _tools: &[&str],
    ) -> Vec<(String, Value)> {
        Vec::new()
    }
}

/// The analyzers a session runs.
pub struct AnalyzerSet {
    analyzers: Vec<Box<dyn Analyzer>>,
}

impl std::fmt::Debug for AnalyzerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Every built-in failure class.
fn all() -> Vec<Box<dyn Analyzer>> {
    let mut v = pods::all();
    v.extend(workloads::all());
    v.extend(nodes::all());
    v.extend(gpu::all());
    v.extend(platform::all());
    v.extend(config::all());
    v.extend(network::all());
    v
}

/// Kinds the collection lists (those a cluster lacks just return an error and are skipped).
const COLLECTED_KINDS: &[&str] = &[
    "pods",
    "deployments",
    "replicasets",
    "statefulsets",
    "nodes",
    "services",
    "pdbs",
    "hpas",
    "scaledobjects",
    "httproutes",
    "vmis",
    "resourceclaims",
    "applications",
    "networkpolicies",
    "ciliumnetworkpolicies",
];

impl AnalyzerSet {
    /// No analyzers.
    pub fn empty() -> Self {
        AnalyzerSet {
            analyzers: Vec::new(),
        }
    }

    /// Every built-in failure class.
    pub fn standard() -> Self {
        AnalyzerSet { analyzers: all() }
    }

    /// Add one.
    pub fn push(&mut self, a: Box<dyn Analyzer>) {
        self.analyzers.push(a);
    }

    /// Class names.
    pub fn names(&self) -> Vec<&'static str> {
        self.analyzers.iter().map(|a| a.name()).collect()
    }

    /// The read-only calls that feed the analyzers, for each of `clusters`, limited to the
    /// tools the registry has. The GPU view is a follow-up (see [`AnalyzerSet::follow_ups`]),
    /// read only where the node listing shows GPU nodes.
    pub fn collection(
        &self,
        tools: &[&str],
        clusters: &[String],
        namespace: Option<&str>,
    ) -> Vec<(String, Value)> {
        if self.analyzers.is_empty() {
            return Vec::new();
        }
        let mut calls = Vec::new();
        let all: Vec<Option<&str>> = if clusters.is_empty() {
            vec![None]
        } else {
            clusters.iter().map(|c| Some(c.as_str())).collect()
        };
        for cluster in all {
            let base = |extra: Value| {
                let mut v = extra;
                if let Some(c) = cluster {
                    v["cluster"] = json!(c);
                }
                v
            };
            if tools.contains(&"k8s_list") {
                for kind in COLLECTED_KINDS {
                    let mut args = base(json!({"kind": kind}));
                    if let Some(ns) = namespace
                        && *kind != "nodes"
                    {
                        args["namespace"] = json!(ns);
                    }
                    calls.push(("k8s_list".to_string(), args));
                }
            }
            if tools.contains(&"k8s_events") {
                let mut args = base(json!({}));
                if let Some(ns) = namespace {
                    args["namespace"] = json!(ns);
                }
                calls.push(("k8s_events".to_string(), args));
            }
        }
        calls
    }

    /// Follow-up calls for `findings` (see [`Analyzer::follow_ups`]), without duplicates.
    pub fn follow_ups(
        &self,
        findings: &[Finding],
        obs: &Observations<'_>,
        tools: &[&str],
    ) -> Vec<(String, Value)> {
        let mut calls: Vec<(String, Value)> = Vec::new();
        // The GPU view joins every node and pod with DCGM metrics: read it only for
        // clusters that have GPU nodes (it is the costliest collection call).
        if !self.analyzers.is_empty() && tools.contains(&"gpu_status") {
            let have: std::collections::BTreeSet<&str> = obs
                .outputs::<medic_tools::gpu::GpuOutput>()
                .map(|(_, o)| o.cluster.as_str())
                .collect();
            let gpu_clusters: std::collections::BTreeSet<&str> = nodes(obs)
                .filter(|(_, n)| {
                    n.capacity.gpu > 0
                        || n.allocatable.gpu > 0
                        || n.labels.keys().any(|k| k.starts_with("nvidia.com/"))
                })
                .map(|(i, _)| i.cluster)
                .collect();
            for c in gpu_clusters.difference(&have) {
                calls.push(("gpu_status".to_string(), json!({"cluster": c})));
            }
        }
        for a in &self.analyzers {
            for c in a.follow_ups(findings, obs, tools) {
                if tools.contains(&c.0.as_str()) && !calls.contains(&c) {
                    calls.push(c);
                }
            }
        }
        calls
    }

    /// Run every analyzer; findings sorted by confidence, highest first, ids unique.
    pub fn run(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        for a in &self.analyzers {
            for f in a.analyze(obs) {
                if !out.iter().any(|o| o.id == f.id) {
                    out.push(f);
                }
            }
        }
        explain::explain(&mut out, obs);
        // Causes before symptoms, then by confidence.
        out.sort_by(|a, b| {
            tier(a).cmp(&tier(b)).then(
                b.confidence
                    .0
                    .partial_cmp(&a.confidence.0)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
        });
        out
    }
}

/// When the analyzers found nothing worth acting on, say so as a finding about the
/// namespace in question (the session's, else one the question names): "nothing is wrong"
/// is an answer too, and it cites what was checked.
pub fn healthy_finding(
    findings: &[Finding],
    obs: &Observations<'_>,
    namespace: Option<&str>,
    question: &str,
) -> Option<Finding> {
    if findings.iter().any(|f| f.confidence.0 >= 0.45) {
        return None;
    }
    let listed: std::collections::BTreeSet<(&str, &str)> = pods(obs)
        .map(|(i, p)| (i.cluster, p.namespace.as_str()))
        .chain(workloads(obs).map(|(i, w)| (i.cluster, w.namespace.as_str())))
        .collect();
    let words: Vec<&str> = question
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let (cluster, ns) = listed.iter().copied().find(|(_, ns)| match namespace {
        Some(want) => *ns == want,
        None => words.contains(ns),
    })?;
    let (total, ready) = pods(obs)
        .filter(|(i, p)| i.cluster == cluster && p.namespace == ns)
        .fold((0, 0), |(t, r), (_, p)| {
            (t + 1, r + usize::from(p.ready || p.phase == "Succeeded"))
        });
    let call = obs
        .summaries()
        .find(|i| i.cluster == cluster)
        .map(|i| i.call_id)
        .unwrap_or_default();
    let namespace_ref = obj(cluster, "Namespace", None, ns);
    Some(
        FindingBuilder::new(
            "healthy",
            &namespace_ref,
            format!("No problem found in namespace {ns}: it looks healthy"),
            format!(
                "namespace {ns} on {cluster} looks healthy: {ready} of {total} pods ready, and no failing workload, node, GPU or traffic fault was detected{}",
                if findings.is_empty() {
                    String::new()
                } else {
                    format!(" ({} minor observation(s), low confidence)", findings.len())
                }
            ),
        )
        .confidence(Confidence::MEDIUM)
        .call(call, "k8s_list")
        .build(),
    )
}

/// Classes that name a cause; the rest (Pending pods, missing endpoints, failing probes)
/// are usually symptoms of one of these.
const CAUSE_CLASSES: &[&str] = &[
    "gpu-xid",
    "gpu-xid-event",
    "gpu-lost",
    "gpu-ecc",
    "gpu-plugin-missing",
    "bad-rollout",
    "regional-outage",
    "crashloop-oom",
    "missing-config",
    "image-pull",
    "quota-exceeded",
    "httproute-unhealthy-backend",
    "vm-failed",
    "vm-migration-stuck",
    "argocd-degraded",
    "node-not-ready",
    "node-pressure",
    "stale-subpath-config",
    "policy-drops",
];

fn tier(f: &Finding) -> u8 {
    let class = f.id.split(':').next().unwrap_or_default();
    u8::from(!CAUSE_CLASSES.contains(&class))
}

/// Helper to build analyzer findings.
pub(crate) struct FindingBuilder {
    f: Finding,
}

impl FindingBuilder {
    pub(crate) fn new(
        class: &str,
        object: &ObjectRef,
        summary: String,
        root_cause: String,
    ) -> Self {
        FindingBuilder {
            f: Finding {
                id: format!("{class}:{}", object.display()),
                summary,
                root_cause,
                confidence: Confidence::MEDIUM,
                evidence: vec![EvidenceRef::Source(medic_tools::EvidenceRef::Object(
                    object.clone(),
                ))],
                suggests: Vec::new(),
                source: format!("analyzer:{class}"),
            },
        }
    }
    pub(crate) fn confidence(mut self, c: Confidence) -> Self {
        self.f.confidence = c;
        self
    }
    pub(crate) fn call(mut self, call_id: &str, tool: &str) -> Self {
        self.f.evidence.insert(
            0,
            EvidenceRef::ToolCall {
                call_id: call_id.to_string(),
                tool: tool.to_string(),
            },
        );
        self
    }
    pub(crate) fn object(mut self, o: ObjectRef) -> Self {
        self.f
            .evidence
            .push(EvidenceRef::Source(medic_tools::EvidenceRef::Object(o)));
        self
    }
    pub(crate) fn series(mut self, cluster: &str, query: &str, start: &str, end: &str) -> Self {
        self.f
            .evidence
            .push(EvidenceRef::Source(medic_tools::EvidenceRef::Series {
                cluster: cluster.to_string(),
                query: query.to_string(),
                start: start.to_string(),
                end: end.to_string(),
            }));
        self
    }
    pub(crate) fn quote(mut self, text: impl Into<String>) -> Self {
        let text: String = text.into();
        if !text.is_empty() {
            self.f.evidence.push(EvidenceRef::Quote {
                text: text.chars().take(300).collect(),
            });
        }
        self
    }
    pub(crate) fn suggest(
        mut self,
        playbook: &str,
        params: Value,
        target: Option<ObjectRef>,
    ) -> Self {
        self.f.suggests.push(PlaybookRef {
            name: playbook.to_string(),
            params,
            target,
        });
        self
    }
    pub(crate) fn build(self) -> Finding {
        self.f
    }
}

/// An object reference.
pub(crate) fn obj(cluster: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        cluster: cluster.to_string(),
        kind: kind.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        uid: None,
    }
}

/// Every listed pod.
pub(crate) fn pods<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (Item<'a>, &'a PodSummary)> + 'a {
    obs.summaries().filter_map(|i| match i.summary {
        Summary::Pod(p) => Some((i, p)),
        _ => None,
    })
}

/// Every listed Deployment / ReplicaSet / StatefulSet / DaemonSet.
pub(crate) fn workloads<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (Item<'a>, &'a WorkloadSummary)> + 'a {
    obs.summaries().filter_map(|i| match i.summary {
        Summary::Workload(w) => Some((i, w)),
        _ => None,
    })
}

/// Every listed node.
pub(crate) fn nodes<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (Item<'a>, &'a NodeSummary)> + 'a {
    obs.summaries().filter_map(|i| match i.summary {
        Summary::Node(n) => Some((i, n)),
        _ => None,
    })
}

/// Every event, with its cluster and call id.
pub(crate) fn events<'a>(
    obs: &'a Observations<'a>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a EventSummary)> + 'a {
    obs.events().flat_map(|(id, out)| {
        out.events
            .iter()
            .map(move |e| (id, out.cluster.as_str(), e))
    })
}

/// The Deployment (or other top-level owner) a pod belongs to, for remediation targets:
/// a pod owned by ReplicaSet `api-7d9f8` belongs to Deployment `api`.
pub(crate) fn owner_target(
    obs: &Observations<'_>,
    item: &Item<'_>,
    pod: &PodSummary,
) -> Option<ObjectRef> {
    let owner = pod.owner.as_ref()?;
    if owner.kind == "ReplicaSet" {
        let rs = workloads(obs).find(|(i, w)| {
            i.cluster == item.cluster
                && w.kind == "ReplicaSet"
                && w.namespace == pod.namespace
                && w.name == owner.name
        });
        let deploy_name = match rs.and_then(|(_, w)| w.owner.as_ref()) {
            Some(o) if o.kind == "Deployment" => o.name.clone(),
            _ => owner
                .name
                .rsplit_once('-')
                .map_or(owner.name.clone(), |(d, _)| d.to_string()),
        };
        return Some(obj(
            item.cluster,
            "Deployment",
            Some(&pod.namespace),
            &deploy_name,
        ));
    }
    Some(obj(
        item.cluster,
        &owner.kind,
        Some(&pod.namespace),
        &owner.name,
    ))
}

/// A pod's reference.
pub(crate) fn pod_ref(item: &Item<'_>, pod: &PodSummary) -> ObjectRef {
    obj(item.cluster, "Pod", Some(&pod.namespace), &pod.name)
}
