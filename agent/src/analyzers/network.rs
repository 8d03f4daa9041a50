//! Traffic dropped by network policy: Hubble's `hubble_drop_total` counter (Cilium) with
//! `reason="POLICY_DENIED"` (or `POLICY_DENY`, an explicit deny rule) rising from nothing
//! between two workloads, joined with the network policies of the cluster. The policy that
//! selects either end and whose spec was written most recently before the drops began is the
//! likely cause; its previous spec (the `last-applied-configuration` annotation) shows which
//! peers it stopped admitting.
//!
//! Hubble labels the ends by its `sourceContext` / `destinationContext` options: `source` /
//! `destination` hold `namespace/pod`, `namespace/workload`, a bare namespace, … and the
//! `labelsContext` form has `source_namespace`, `source_workload`, `source_pod`, … — both are
//! read. Drops that were already there when the window opened (a crawler probing a closed
//! port all day) are expected noise and ignored.
//!
//! The policies are listed by the collection; the metric is a follow-up, read only on
//! clusters that have network policies. medic has no playbook that edits policies (they are
//! usually owned by Helm or GitOps), so the finding carries evidence and no remediation.

use super::{Analyzer, FindingBuilder, Observations, obj, owner_target, pod_ref, pods};
use crate::protocol::{Confidence, Finding, ObjectRef};
use chrono::{DateTime, Duration, Utc};
use medic_tools::k8s::core::PodSummary;
use medic_tools::k8s::netpol::NetworkPolicySummary;
use medic_tools::k8s::tools::Summary;
use medic_tools::prom::{MetricsOutput, SeriesSummary};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![Box::new(PolicyDrops)]
}

/// The follow-up query: policy drops per second, per flow.
pub(crate) const DROP_QUERY: &str =
    r#"rate(hubble_drop_total{reason=~"POLICY_DENIED|POLICY_DENY"}[5m])"#;

/// A policy written this long before the drops began is still a suspect.
const RECENT: i64 = 6 * 3600;

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One end of a flow as Hubble labelled it.
#[derive(Debug, Clone, PartialEq)]
struct End {
    namespace: Option<String>,
    name: Option<String>,
}

impl End {
    fn of(labels: &BTreeMap<String, String>, side: &str) -> Option<End> {
        if let Some(v) = labels.get(side).filter(|v| !v.is_empty()) {
            return Some(match v.split_once('/') {
                Some((ns, name)) => End {
                    namespace: Some(ns.to_string()),
                    name: Some(name.to_string()),
                },
                // A bare value is a namespace with the `namespace` context, else a name.
                None => End {
                    namespace: None,
                    name: Some(v.clone()),
                },
            });
        }
        let get = |k: &str| {
            labels
                .get(&format!("{side}_{k}"))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let namespace = get("namespace");
        let name = get("workload")
            .or_else(|| get("pod"))
            .or_else(|| get("app"));
        (namespace.is_some() || name.is_some()).then_some(End { namespace, name })
    }

    fn text(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            (Some(ns), None) => ns.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => "?".into(),
        }
    }

    /// Whether a pod is this end: by namespace, and by pod name, owner or app label.
    fn is(&self, pod: &PodSummary, owner: Option<&ObjectRef>) -> bool {
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != pod.namespace)
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        // A bare name may be a namespace (Hubble's `namespace` context).
        if self.namespace.is_none() && *name == pod.namespace {
            return true;
        }
        pod.name == *name
            || owner.is_some_and(|o| o.name == *name)
            || ["app", "app.kubernetes.io/name", "k8s-app"]
                .iter()
                .any(|k| pod.all_labels.get(*k) == Some(name))
    }
}

/// Policy drops that started inside the window: (series, onset).
fn new_drops(out: &MetricsOutput) -> Vec<(&SeriesSummary, DateTime<Utc>)> {
    let Some(start) = parse(&out.start) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for s in &out.series {
        let reason = s.labels.get("reason").map(|r| r.to_ascii_uppercase());
        if !reason.is_some_and(|r| r.starts_with("POLICY_DEN")) || s.last <= 0.0 {
            continue;
        }
        // The ongoing stretch above zero; it must have begun after the window opened and
        // from (almost) nothing, else these drops are the usual background.
        let ongoing = s
            .crossings
            .last()
            .filter(|w| w.end == s.last_at)
            .and_then(|w| parse(&w.start));
        let onset = match (ongoing, &s.change) {
            (Some(t), _) if t > start && s.first <= 0.0 => Some(t),
            (_, Some(c)) if c.after > 4.0 * c.before.max(0.0) + 0.05 => parse(&c.at),
            _ => None,
        };
        if let Some(t) = onset.filter(|t| *t > start) {
            v.push((s, t));
        }
    }
    v
}

/// Rate in a short human form.
fn rate(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.2}/s")
    }
}

/// Policy-denied drops that began recently, blamed on the policy changed just before.
struct PolicyDrops;

impl Analyzer for PolicyDrops {
    fn name(&self) -> &'static str {
        "policy-drops"
    }

    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let policies: Vec<(&str, &str, &NetworkPolicySummary)> = obs
            .summaries()
            .filter_map(|i| match i.summary {
                Summary::NetworkPolicy(p) => Some((i.cluster, i.call_id, p)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (metrics_call, m) in obs.outputs::<MetricsOutput>() {
            if !m.query.contains("hubble_drop_total") {
                continue;
            }
            for (series, onset) in new_drops(m) {
                let (Some(src), Some(dst)) = (
                    End::of(&series.labels, "source"),
                    End::of(&series.labels, "destination"),
                ) else {
                    continue;
                };
                let mut src_pods = Vec::new();
                let mut dst_pods = Vec::new();
                for (item, pod) in pods(obs) {
                    if item.cluster != m.cluster {
                        continue;
                    }
                    let owner = owner_target(obs, &item, pod);
                    if dst.is(pod, owner.as_ref()) {
                        dst_pods.push((pod_ref(&item, pod), pod));
                    } else if src.is(pod, owner.as_ref()) {
                        src_pods.push((pod_ref(&item, pod), pod));
                    }
                }
                // Policies on either end: ingress at the destination, egress at the source.
                let on_end = |p: &NetworkPolicySummary| {
                    dst_pods
                        .iter()
                        .any(|(_, pod)| p.selects_pod(&pod.namespace, &pod.all_labels))
                        || (!p.egress_to.is_empty()
                            && src_pods
                                .iter()
                                .any(|(_, pod)| p.selects_pod(&pod.namespace, &pod.all_labels)))
                };
                let slack = Duration::minutes(2);
                let suspect = policies
                    .iter()
                    .filter(|(c, _, p)| *c == m.cluster && on_end(p))
                    .filter_map(|(c, call, p)| {
                        let t = parse(p.spec_changed.as_deref()?)?;
                        (t <= onset + slack).then_some((t, *c, *call, *p))
                    })
                    .max_by_key(|(t, ..)| *t);
                let flow = format!("{} to {}", src.text(), dst.text());
                let reason = series
                    .labels
                    .get("reason")
                    .cloned()
                    .unwrap_or_else(|| "POLICY_DENIED".into());
                let dst_ns = dst
                    .namespace
                    .clone()
                    .or_else(|| dst_pods.first().map(|(_, p)| p.namespace.clone()));
                // The source pods' labels that no ingress rule at the destination admits.
                let refused: Vec<String> = src_pods
                    .iter()
                    .take(1)
                    .filter(|(_, sp)| {
                        !policies.iter().any(|(c, _, p)| {
                            *c == m.cluster
                                && dst_pods
                                    .iter()
                                    .any(|(_, dp)| p.selects_pod(&dp.namespace, &dp.all_labels))
                                && p.admits(&sp.namespace, &sp.all_labels)
                        })
                    })
                    .map(|(_, sp)| {
                        format!(
                            "no ingress rule of a policy selecting {} admits {} pods (labels {})",
                            dst.text(),
                            src.text(),
                            medic_tools::k8s::types::kv(&sp.labels)
                        )
                    })
                    .collect();
                let drops = format!(
                    "Hubble reports {reason} drops from {flow} since {} ({} now, none before)",
                    onset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    rate(series.last)
                );
                let series_text = format!(
                    "hubble_drop_total{{{}}}",
                    series
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let (subject, summary, root_cause, confidence, policy_call) = match suspect {
                    Some((t, c, call, p)) => {
                        let r = obj(
                            c,
                            &p.kind,
                            (!p.namespace.is_empty()).then_some(p.namespace.as_str()),
                            &p.name,
                        );
                        let pname = if p.namespace.is_empty() {
                            p.name.clone()
                        } else {
                            format!("{}/{}", p.namespace, p.name)
                        };
                        let before = onset - t;
                        let recent = before.num_seconds() <= RECENT;
                        let removed: Vec<String> = p
                            .removed_peers()
                            .iter()
                            .map(|l| medic_tools::k8s::types::kv(l))
                            .collect();
                        let added: Vec<String> = p
                            .added_peers()
                            .iter()
                            .map(|l| medic_tools::k8s::types::kv(l))
                            .collect();
                        let mut rc = format!(
                            "network policy change: {} {} (generation {}) was changed at {}{}, {} before {reason} (policy denied) drops from {flow} began",
                            p.kind,
                            pname,
                            p.generation.map_or_else(|| "?".into(), |g| g.to_string()),
                            p.spec_changed.as_deref().unwrap_or("?"),
                            p.spec_changed_by
                                .as_deref()
                                .filter(|m| !m.is_empty())
                                .map(|m| format!(" by {m}"))
                                .unwrap_or_default(),
                            human(before),
                        );
                        if !removed.is_empty() {
                            rc.push_str(&format!(
                                "; it no longer admits {} (its previous spec did){}",
                                removed.join(" | "),
                                if added.is_empty() {
                                    String::new()
                                } else {
                                    format!(" and now admits {} instead", added.join(" | "))
                                }
                            ));
                        }
                        if let Some(x) = refused.first() {
                            rc.push_str(&format!("; {x}"));
                        }
                        if !p.change_notes.is_empty() {
                            rc.push_str(&format!(
                                "; change notes: {}",
                                medic_tools::k8s::types::kv(&p.change_notes)
                            ));
                        }
                        rc.push_str(
                            "; fix or revert the policy where it is managed (medic has no playbook that edits network policies)",
                        );
                        let summary = format!(
                            "{} {} changed at {}; since then {reason} drops from {flow} ({} now)",
                            p.kind,
                            pname,
                            p.spec_changed.as_deref().unwrap_or("?"),
                            rate(series.last)
                        );
                        let conf = if recent {
                            Confidence(0.85)
                        } else {
                            Confidence::MEDIUM
                        };
                        (r, summary, rc, conf, Some(call))
                    }
                    None => {
                        let r = obj(
                            &m.cluster,
                            "Namespace",
                            None,
                            dst_ns.as_deref().unwrap_or("-"),
                        );
                        let mut rc = format!(
                            "network policy denies traffic: {drops}; no network policy selecting either end was changed shortly before"
                        );
                        if let Some(x) = refused.first() {
                            rc.push_str(&format!("; {x}"));
                        }
                        (
                            r,
                            format!(
                                "{reason} drops from {flow} since {}",
                                onset.format("%H:%M:%SZ")
                            ),
                            rc,
                            Confidence::MEDIUM,
                            None,
                        )
                    }
                };
                if !seen.insert(format!("{}|{flow}", subject.display())) {
                    continue;
                }
                let mut b = FindingBuilder::new(self.name(), &subject, summary, root_cause)
                    .confidence(confidence)
                    .call(metrics_call, "metrics");
                if let Some(call) = policy_call {
                    b = b.call(call, "k8s_list");
                }
                b = b
                    .series(&m.cluster, &m.query, &m.start, &m.end)
                    .quote(format!("{series_text}: {drops}"));
                for (r, _) in dst_pods.iter().take(3).chain(src_pods.iter().take(3)) {
                    b = b.object(r.clone());
                }
                out.push(b.build());
            }
        }
        out
    }

    fn follow_ups(
        &self,
        _findings: &[Finding],
        obs: &Observations<'_>,
        _tools: &[&str],
    ) -> Vec<(String, Value)> {
        let have: BTreeSet<&str> = obs
            .outputs::<MetricsOutput>()
            .filter(|(_, m)| m.query.contains("hubble_drop_total"))
            .map(|(_, m)| m.cluster.as_str())
            .collect();
        let with_policies: BTreeSet<&str> = obs
            .summaries()
            .filter(|i| matches!(i.summary, Summary::NetworkPolicy(_)))
            .map(|i| i.cluster)
            .collect();
        with_policies
            .difference(&have)
            .map(|c| {
                (
                    "metrics".to_string(),
                    json!({"cluster": c, "query": DROP_QUERY, "range_minutes": 60,
                           "step_seconds": 60, "threshold": 0}),
                )
            })
            .collect()
    }
}

/// A duration as `25 s`, `12 min`, `3 h`.
fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}
