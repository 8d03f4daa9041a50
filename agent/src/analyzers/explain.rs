//! Causes explain symptoms: a finding that is a consequence of another one keeps its
//! evidence but loses its own remediation, so only the root cause's playbook is proposed.
//!
//! - A fault on node X (GPU Xid / ECC / lost GPU, NotReady, pressure) explains crash loops
//!   and failing probes of pods scheduled on X.
//! - Several nodes NotReady at once (a zone outage) explains pod symptoms in that cluster.
//! - A GPU fault explains pods Pending for `nvidia.com/gpu` in the same cluster.
//! - A crash (OOM kill, configuration error, exit) of pod P explains P's failing probes.
//! - A bad rollout of Deployment D explains the crash loops, failing probes and image pulls
//!   of D's pods (their remediation targets D too).

use super::{Observations, pods};
use crate::protocol::{EvidenceRef, Finding, ObjectRef};
use std::collections::{HashMap, HashSet};

/// Faults of one node.
const NODE_CAUSES: &[&str] = &[
    "gpu-xid",
    "gpu-xid-event",
    "gpu-lost",
    "gpu-ecc",
    "node-not-ready",
    "node-pressure",
];

/// GPU faults.
const GPU_CAUSES: &[&str] = &["gpu-xid", "gpu-xid-event", "gpu-lost", "gpu-ecc"];

/// Pod-level symptoms a node fault or a bad rollout can cause.
const POD_SYMPTOMS: &[&str] = &["crashloop", "probe-failing"];

/// Causes visible on one pod; a failing probe of the same pod is their consequence.
const POD_CAUSES: &[&str] = &["crashloop-oom", "missing-config", "image-pull", "crashloop"];

/// Symptoms a bad rollout explains (pod-level, targeting the Deployment).
const ROLLOUT_SYMPTOMS: &[&str] = &["crashloop", "probe-failing", "image-pull"];

fn class(f: &Finding) -> &str {
    f.id.split(':').next().unwrap_or_default()
}

/// The object a finding is about (its first object evidence).
fn subject(f: &Finding) -> Option<&ObjectRef> {
    f.evidence.iter().find_map(|e| match e {
        EvidenceRef::Source(medic_tools::EvidenceRef::Object(o)) => Some(o),
        _ => None,
    })
}

/// Strip the remediation of every finding explained by another; note which one explains it.
pub(crate) fn explain(findings: &mut [Finding], obs: &Observations<'_>) {
    // (cluster, node) → cause index; cluster → zone-outage / GPU-fault cause index.
    let mut node_causes: HashMap<(String, String), usize> = HashMap::new();
    let mut zone_causes: HashMap<String, usize> = HashMap::new();
    let mut gpu_causes: HashMap<String, usize> = HashMap::new();
    let mut rollouts: HashMap<ObjectRef, usize> = HashMap::new();
    let mut pod_causes: HashMap<ObjectRef, usize> = HashMap::new();
    let mut rollout_sets: HashMap<(String, String, String), usize> = HashMap::new();
    let mut rollout_apps: HashMap<ObjectRef, usize> = HashMap::new();
    for (i, f) in findings.iter().enumerate() {
        let Some(s) = subject(f) else { continue };
        let c = class(f);
        if POD_CAUSES.contains(&c) && s.kind == "Pod" {
            pod_causes.entry(s.clone()).or_insert(i);
        }
        if NODE_CAUSES.contains(&c) && s.kind == "Node" {
            node_causes
                .entry((s.cluster.clone(), s.name.clone()))
                .or_insert(i);
        }
        if c == "node-not-ready" && s.kind == "Cluster" {
            zone_causes.entry(s.cluster.clone()).or_insert(i);
        }
        if GPU_CAUSES.contains(&c) {
            gpu_causes.entry(s.cluster.clone()).or_insert(i);
        }
        if c == "bad-rollout" {
            rollouts.entry(s.clone()).or_insert(i);
            // Its ReplicaSets (the failing one first): pods they own are its symptoms. The
            // Argo CD Application that deploys it is Degraded because of it.
            for e in &f.evidence {
                if let EvidenceRef::Source(medic_tools::EvidenceRef::Object(o)) = e
                    && o.kind == "Application"
                {
                    rollout_apps.entry(o.clone()).or_insert(i);
                }
                if let EvidenceRef::Source(medic_tools::EvidenceRef::Object(o)) = e
                    && o.kind == "ReplicaSet"
                {
                    rollout_sets
                        .entry((
                            o.cluster.clone(),
                            o.namespace.clone().unwrap_or_default(),
                            o.name.clone(),
                        ))
                        .or_insert(i);
                }
            }
        }
    }
    if node_causes.is_empty()
        && zone_causes.is_empty()
        && rollouts.is_empty()
        && pod_causes.is_empty()
    {
        return;
    }
    // Where the symptomatic pods run.
    let wanted: HashSet<(String, String, String)> = findings
        .iter()
        .filter(|f| POD_SYMPTOMS.contains(&class(f)) || ROLLOUT_SYMPTOMS.contains(&class(f)))
        .filter_map(subject)
        .filter(|s| s.kind == "Pod")
        .map(|s| {
            (
                s.cluster.clone(),
                s.namespace.clone().unwrap_or_default(),
                s.name.clone(),
            )
        })
        .collect();
    // Where the symptomatic pods run, and which ReplicaSet owns them.
    let mut node_of: HashMap<(String, String, String), String> = HashMap::new();
    let mut owner_of: HashMap<(String, String, String), String> = HashMap::new();
    if !wanted.is_empty() {
        for (item, p) in pods(obs) {
            let key = (
                item.cluster.to_string(),
                p.namespace.clone(),
                p.name.clone(),
            );
            if !wanted.contains(&key) {
                continue;
            }
            if let Some(node) = &p.node {
                node_of.insert(key.clone(), node.clone());
            }
            if let Some(o) = &p.owner {
                owner_of.insert(key, o.name.clone());
            }
        }
    }
    let mut explained: Vec<(usize, usize)> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if f.root_cause.contains(" — a symptom of: ") {
            continue;
        }
        let c = class(f);
        let Some(s) = subject(f) else { continue };
        let mut by: Option<usize> = None;
        if POD_SYMPTOMS.contains(&c) && s.kind == "Pod" {
            let key = (
                s.cluster.clone(),
                s.namespace.clone().unwrap_or_default(),
                s.name.clone(),
            );
            by = node_of
                .get(&key)
                .and_then(|n| node_causes.get(&(s.cluster.clone(), n.clone())))
                .or_else(|| zone_causes.get(&s.cluster))
                .copied();
        }
        if by.is_none() && c == "probe-failing" {
            by = pod_causes.get(s).copied();
        }
        if by.is_none() && c == "argocd-degraded" && s.kind == "Application" {
            by = rollout_apps.get(s).copied();
        }
        if by.is_none() && c == "pending-gpu" {
            by = gpu_causes.get(&s.cluster).copied();
        }
        if by.is_none() && ROLLOUT_SYMPTOMS.contains(&c) {
            let key = (
                s.cluster.clone(),
                s.namespace.clone().unwrap_or_default(),
                s.name.clone(),
            );
            by = owner_of
                .get(&key)
                .and_then(|rs| rollout_sets.get(&(key.0.clone(), key.1.clone(), rs.clone())))
                .or_else(|| {
                    f.suggests
                        .iter()
                        .filter_map(|p| p.target.as_ref())
                        .find_map(|t| rollouts.get(t))
                })
                .copied();
        }
        if let Some(by) = by.filter(|b| *b != i) {
            explained.push((i, by));
        }
    }
    for (i, by) in explained {
        let (cause_id, cause_summary) = (findings[by].id.clone(), findings[by].summary.clone());
        let f = &mut findings[i];
        f.suggests.clear();
        f.root_cause = format!(
            "{} — a symptom of: {cause_summary} (finding {cause_id})",
            f.root_cause
        );
    }
}
