//! Stale configuration: a ConfigMap or Secret file mounted with `subPath` is copied when the
//! container starts and never updated by the kubelet, so an edit made after the pods started
//! is invisible to them until they restart — while the object itself already looks right.
//!
//! The pods' `subPath` mounts come from the pod listing; when some exist, a follow-up lists
//! the ConfigMaps / Secrets of those namespaces (metadata only: when their data was last
//! written, from managed fields) and the analyzer compares that time with each container's
//! start.

use super::{Analyzer, FindingBuilder, Observations, obj, owner_target, pod_ref, pods};
use crate::protocol::{Confidence, Finding, ObjectRef};
use chrono::{DateTime, Utc};
use medic_tools::k8s::tools::{Kind, ListOutput, Summary};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![Box::new(StaleSubPathConfig)]
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// More namespaces with `subPath` mounts than this: list ConfigMaps / Secrets cluster-wide.
const MAX_NAMESPACE_LISTS: usize = 3;

/// Workload kinds a rollout restart applies to.
const RESTARTABLE: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// ConfigMap / Secret mounted with `subPath`, written after the pods using it started.
struct StaleSubPathConfig;

/// One stale pod: (pod ref, container, mount path, sub path, start time).
type StalePod = (ObjectRef, String, String, String, String);

/// (cluster, kind, namespace, name) of a ConfigMap / Secret.
type SourceKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// When a ConfigMap / Secret's data was last written: (time, its text, by whom, call id).
type Written<'a> = (DateTime<Utc>, &'a str, &'a str, &'a str);

/// (target, source kind, source name) → (stale pods, pods using it, pod list call id).
type Group<'a> = ((ObjectRef, String, String), (Vec<StalePod>, usize, &'a str));

impl Analyzer for StaleSubPathConfig {
    fn name(&self) -> &'static str {
        "stale-subpath-config"
    }

    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        // (cluster, kind, namespace, name) → (data written at, by whom, call id).
        let mut written: BTreeMap<SourceKey<'_>, Written<'_>> = BTreeMap::new();
        for i in obs.summaries() {
            if let Summary::Meta(m) = i.summary
                && let (Some(ns), Some(at)) = (m.namespace.as_deref(), m.data_changed.as_deref())
                && let Some(t) = parse(at)
            {
                written.insert(
                    (i.cluster, m.kind.as_str(), ns, m.name.as_str()),
                    (
                        t,
                        at,
                        m.data_changed_by.as_deref().unwrap_or_default(),
                        i.call_id,
                    ),
                );
            }
        }
        if written.is_empty() {
            return Vec::new();
        }
        // In listing order (object refs are not ordered).
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (item, pod) in pods(obs) {
            if pod.phase != "Running" || pod.subpath_mounts.is_empty() {
                continue;
            }
            let target = owner_target(obs, &item, pod).unwrap_or_else(|| pod_ref(&item, pod));
            for m in &pod.subpath_mounts {
                let key = (
                    item.cluster,
                    m.source_kind.as_str(),
                    pod.namespace.as_str(),
                    m.source.as_str(),
                );
                let Some((changed, ..)) = written.get(&key) else {
                    continue;
                };
                let started = pod
                    .containers
                    .iter()
                    .find(|c| c.name == m.container)
                    .and_then(|c| c.started_at.as_deref())
                    .or(pod.started.as_deref());
                let key = (target.clone(), m.source_kind.clone(), m.source.clone());
                let at = match groups.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        groups.push((key, (Vec::new(), 0, item.call_id)));
                        groups.len() - 1
                    }
                };
                let g = &mut groups[at].1;
                g.1 += 1;
                if let Some(s) = started
                    && parse(s).is_some_and(|s| s < *changed)
                {
                    g.0.push((
                        pod_ref(&item, pod),
                        m.container.clone(),
                        m.mount_path.clone(),
                        m.sub_path.clone(),
                        s.to_string(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        for ((target, kind, source), (stale, using, pods_call)) in groups {
            let Some(first) = stale.first() else { continue };
            let ns = target.namespace.as_deref().unwrap_or_default();
            let Some((_, at, by, cm_call)) =
                written.get(&(target.cluster.as_str(), kind.as_str(), ns, source.as_str()))
            else {
                continue;
            };
            let latest_start = stale.iter().map(|s| s.4.as_str()).max().unwrap_or_default();
            let whole = if stale.len() == using {
                format!("all {using} pod(s)")
            } else {
                format!("{} of {using} pod(s)", stale.len())
            };
            let target_text = format!("{} {}/{}", target.kind, ns, target.name);
            let by = if by.is_empty() {
                String::new()
            } else {
                format!(" by {by}")
            };
            let summary = format!(
                "{target_text} runs a stale config: {kind} {source} changed after its pods started, and its subPath mount is never reloaded"
            );
            let root_cause = format!(
                "{kind} {ns}/{source} (key {}, mounted with subPath at {} in container {}) was changed at {at}{by}, after {whole} of {target_text} started (latest start {latest_start}); the kubelet never updates subPath mounts, so those pods still run the old config until they restart",
                first.3, first.2, first.1
            );
            let restartable = RESTARTABLE.contains(&target.kind.as_str());
            let mut b = FindingBuilder::new(self.name(), &target, summary, root_cause)
                .confidence(if stale.len() == using && restartable {
                    Confidence(0.85)
                } else {
                    Confidence::MEDIUM
                })
                .call(cm_call, "k8s_list")
                .call(pods_call, "k8s_list")
                .object(obj(&target.cluster, &kind, Some(ns), &source));
            for (p, ..) in stale.iter().take(5) {
                b = b.object(p.clone());
            }
            if restartable {
                b = b.suggest("rollout-restart", json!({}), Some(target.clone()));
            }
            out.push(b.build());
        }
        out
    }

    fn follow_ups(
        &self,
        _findings: &[Finding],
        obs: &Observations<'_>,
        _tools: &[&str],
    ) -> Vec<(String, Value)> {
        let listed: Vec<(&str, Kind, Option<&str>)> = obs
            .outputs::<ListOutput>()
            .map(|(_, o)| (o.cluster.as_str(), o.kind, o.namespace.as_deref()))
            .collect();
        // (cluster, kind) → namespaces to read.
        let mut wanted: Vec<((&str, Kind), Vec<&str>)> = Vec::new();
        for (item, pod) in pods(obs) {
            for m in &pod.subpath_mounts {
                let kind = if m.source_kind == "Secret" {
                    Kind::Secrets
                } else {
                    Kind::Configmaps
                };
                let have = listed.iter().any(|(c, k, ns)| {
                    *c == item.cluster && *k == kind && ns.is_none_or(|n| n == pod.namespace)
                });
                let key = (item.cluster, kind);
                let at = match wanted.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        wanted.push((key, Vec::new()));
                        wanted.len() - 1
                    }
                };
                let nss = &mut wanted[at].1;
                if !have && !nss.contains(&pod.namespace.as_str()) {
                    nss.push(pod.namespace.as_str());
                }
            }
        }
        let mut calls: Vec<(String, Value)> = Vec::new();
        for ((cluster, kind), nss) in wanted {
            // Many namespaces: one cluster-wide listing (metadata only) instead.
            if nss.len() > MAX_NAMESPACE_LISTS {
                calls.push((
                    "k8s_list".to_string(),
                    json!({"cluster": cluster, "kind": kind}),
                ));
                continue;
            }
            for ns in nss {
                calls.push((
                    "k8s_list".to_string(),
                    json!({"cluster": cluster, "kind": kind, "namespace": ns}),
                ));
            }
        }
        calls
    }
}
