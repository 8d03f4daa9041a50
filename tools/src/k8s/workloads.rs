//! Workloads: Deployments (with rollout history), StatefulSets, DaemonSets, ReplicaSets, Jobs.

use super::pods::Owner;
use super::types::*;
use crate::redact::clean;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A Deployment, StatefulSet, DaemonSet or ReplicaSet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSummary {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Desired replicas (scheduled nodes for DaemonSets).
    pub desired: i32,
    /// Ready.
    pub ready: i32,
    /// Updated to the current template.
    pub updated: i32,
    /// Available.
    pub available: i32,
    /// Images by container.
    pub images: Vec<String>,
    /// Label selector (`k=v,…`).
    pub selector: String,
    /// Current revision (`deployment.kubernetes.io/revision`, or updateRevision).
    pub revision: Option<String>,
    /// Generation not yet observed by the controller.
    pub stale_generation: bool,
    /// Paused (Deployments).
    pub paused: bool,
    /// Strategy.
    pub strategy: Option<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Key labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations (cleaned; includes `medic.dev/repo` when set).
    pub annotations: BTreeMap<String, String>,
    /// Owner (ReplicaSets: their Deployment).
    pub owner: Option<Owner>,
    /// Creation time.
    pub created: Option<String>,
}

impl WorkloadSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if self.desired > 0 && self.ready == 0 {
            Health::Broken
        } else if self.ready < self.desired
            || self.available < self.desired
            || self
                .conditions
                .iter()
                .any(|c| c.status == "False" && c.type_ != "ReplicaFailure")
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {}/{} ready {}/{} updated {} available {} images {}",
            self.kind,
            self.namespace,
            self.name,
            self.ready,
            self.desired,
            self.updated,
            self.available,
            self.images.join(",")
        );
        if let Some(r) = &self.revision {
            s.push_str(&format!(" rev {r}"));
        }
        if self.paused {
            s.push_str(" PAUSED");
        }
        for c in self.conditions.iter().filter(|c| c.status != "True") {
            s.push_str(&format!(" — {}", c.line()));
        }
        s
    }
    /// Multi-line detail.
    pub fn describe(&self) -> String {
        let mut s = format!("{}\nselector: {}\n", self.line(), self.selector);
        if let Some(st) = &self.strategy {
            s.push_str(&format!("strategy: {st}\n"));
        }
        for c in &self.conditions {
            s.push_str(&format!("condition {}\n", c.line()));
        }
        if !self.labels.is_empty() {
            s.push_str(&format!("labels: {}\n", kv(&self.labels)));
        }
        for (k, v) in &self.annotations {
            s.push_str(&format!(
                "annotation {k}: {}\n",
                serde_json::to_string(v).unwrap_or_default()
            ));
        }
        if self.stale_generation {
            s.push_str("controller has not observed the latest generation yet\n");
        }
        s
    }
}

fn images(t: Option<&PodTemplateSpec>) -> Vec<String> {
    t.and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

fn selector_text(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        parts.push(format!(
            "{} {} ({})",
            e.key,
            e.operator.to_lowercase(),
            e.values.clone().unwrap_or_default().join(",")
        ));
    }
    parts.join(",")
}

fn owner(md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Owner> {
    md.owner_references.as_ref()?.first().map(|o| Owner {
        kind: o.kind.clone(),
        name: o.name.clone(),
    })
}

fn base(
    kind: &str,
    md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> WorkloadSummary {
    WorkloadSummary {
        kind: kind.into(),
        name: md.name.clone().unwrap_or_default(),
        namespace: md.namespace.clone().unwrap_or_default(),
        uid: md.uid.clone(),
        desired: 0,
        ready: 0,
        updated: 0,
        available: 0,
        images: vec![],
        selector: String::new(),
        revision: None,
        stale_generation: false,
        paused: false,
        strategy: None,
        conditions: vec![],
        labels: key_labels(md.labels.as_ref()),
        annotations: annotations(md.annotations.as_ref()),
        owner: owner(md),
        created: md.creation_timestamp.as_ref().map(time),
    }
}

/// Summarise a Deployment.
pub fn deployment_summary(d: &Deployment) -> WorkloadSummary {
    let mut w = base("Deployment", &d.metadata);
    let spec = Some(&d.spec);
    let st = d.status.as_ref();
    w.desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    w.ready = st.and_then(|s| s.ready_replicas).unwrap_or(0);
    w.updated = st.and_then(|s| s.updated_replicas).unwrap_or(0);
    w.available = st.and_then(|s| s.available_replicas).unwrap_or(0);
    w.images = images(spec.map(|s| &s.template));
    w.selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
    w.revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned());
    w.stale_generation =
        st.and_then(|s| s.observed_generation).unwrap_or(0) < d.metadata.generation.unwrap_or(0);
    w.paused = spec.and_then(|s| s.paused).unwrap_or(false);
    w.strategy = spec.and_then(|s| s.strategy.as_ref()).map(|s| {
        let mut t = s.type_.clone().unwrap_or_else(|| "RollingUpdate".into());
        if let Some(r) = &s.rolling_update {
            t.push_str(&format!(
                " maxSurge={:?} maxUnavailable={:?}",
                r.max_surge, r.max_unavailable
            ));
        }
        t.replace("Some(Int(", "")
            .replace("Some(String(\"", "")
            .replace("\"))", "")
            .replace("))", "")
    });
    w.conditions = st
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
        .collect();
    w
}

/// Summarise a StatefulSet.
pub fn statefulset_summary(d: &StatefulSet) -> WorkloadSummary {
    let mut w = base("StatefulSet", &d.metadata);
    let spec = Some(&d.spec);
    let st = d.status.as_ref();
    w.desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    w.ready = st.and_then(|s| s.ready_replicas).unwrap_or(0);
    w.updated = st.and_then(|s| s.updated_replicas).unwrap_or(0);
    w.available = st.and_then(|s| s.available_replicas).unwrap_or(0);
    w.images = images(spec.map(|s| &s.template));
    w.selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
    w.revision = st.and_then(|s| s.update_revision.clone());
    w.stale_generation =
        st.and_then(|s| s.observed_generation).unwrap_or(0) < d.metadata.generation.unwrap_or(0);
    w.conditions = st
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
        .collect();
    w
}

/// Summarise a DaemonSet.
pub fn daemonset_summary(d: &DaemonSet) -> WorkloadSummary {
    let mut w = base("DaemonSet", &d.metadata);
    let spec = Some(&d.spec);
    let st = d.status.as_ref();
    w.desired = st.map_or(0, |s| s.desired_number_scheduled);
    w.ready = st.map_or(0, |s| s.number_ready);
    w.updated = st.and_then(|s| s.updated_number_scheduled).unwrap_or(0);
    w.available = st.and_then(|s| s.number_available).unwrap_or(0);
    w.images = images(spec.map(|s| &s.template));
    w.selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
    w.conditions = st
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
        .collect();
    w
}

/// Summarise a ReplicaSet.
pub fn replicaset_summary(r: &ReplicaSet) -> WorkloadSummary {
    let mut w = base("ReplicaSet", &r.metadata);
    let spec = Some(&r.spec);
    let st = r.status.as_ref();
    w.desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    w.ready = st.and_then(|s| s.ready_replicas).unwrap_or(0);
    w.available = st.and_then(|s| s.available_replicas).unwrap_or(0);
    w.updated = st.map_or(0, |s| s.replicas);
    w.images = images(spec.and_then(|s| s.template.as_ref()));
    w.selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
    w.revision = r
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision").cloned());
    w
}

/// A Job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Active pods.
    pub active: i32,
    /// Succeeded pods.
    pub succeeded: i32,
    /// Failed pods.
    pub failed: i32,
    /// Completions wanted.
    pub completions: Option<i32>,
    /// Backoff limit.
    pub backoff_limit: Option<i32>,
    /// Images.
    pub images: Vec<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Owner (CronJob).
    pub owner: Option<Owner>,
    /// Start time.
    pub started: Option<String>,
    /// Completion time.
    pub completed: Option<String>,
}

impl JobSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if self
            .conditions
            .iter()
            .any(|c| c.type_ == "Failed" && c.status == "True")
        {
            Health::Broken
        } else if self.failed > 0 {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "Job {}/{} active {} succeeded {}/{} failed {} (backoffLimit {})",
            self.namespace,
            self.name,
            self.active,
            self.succeeded,
            self.completions.map_or("-".into(), |c| c.to_string()),
            self.failed,
            self.backoff_limit.map_or("-".into(), |c| c.to_string())
        );
        for c in self.conditions.iter().filter(|c| c.status == "True") {
            s.push_str(&format!(" — {}", c.line()));
        }
        s
    }
}

/// Summarise a Job.
pub fn job_summary(j: &Job) -> JobSummary {
    let st = j.status.as_ref();
    JobSummary {
        name: j.metadata.name.clone().unwrap_or_default(),
        namespace: j.metadata.namespace.clone().unwrap_or_default(),
        uid: j.metadata.uid.clone(),
        active: st.and_then(|s| s.active).unwrap_or(0),
        succeeded: st.and_then(|s| s.succeeded).unwrap_or(0),
        failed: st.and_then(|s| s.failed).unwrap_or(0),
        completions: j.spec.as_ref().and_then(|s| s.completions),
        backoff_limit: j.spec.as_ref().and_then(|s| s.backoff_limit),
        images: images(j.spec.as_ref().map(|s| &s.template)),
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
        owner: owner(&j.metadata),
        started: st.and_then(|s| s.start_time.as_ref().map(time)),
        completed: st.and_then(|s| s.completion_time.as_ref().map(time)),
    }
}

/// One ReplicaSet revision of a Deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Revision number.
    pub revision: i64,
    /// ReplicaSet name.
    pub replicaset: String,
    /// Images.
    pub images: Vec<String>,
    /// Desired replicas of the ReplicaSet.
    pub replicas: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Creation time of the ReplicaSet (≈ when the revision rolled out).
    pub created: Option<String>,
    /// `kubernetes.io/change-cause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_cause: Option<String>,
}

/// Template changes between two revisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDiff {
    /// Older revision.
    pub from: i64,
    /// Newer revision.
    pub to: i64,
    /// `path: old → new` (values cleaned, long ones shortened).
    pub changes: Vec<String>,
}

/// Rollout history of a Deployment, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutHistory {
    /// Revisions, newest first.
    pub revisions: Vec<Revision>,
    /// Diffs between consecutive revisions, newest first.
    pub diffs: Vec<TemplateDiff>,
}

impl RolloutHistory {
    /// Render.
    pub fn render(&self, max: usize) -> String {
        let mut s = String::from("rollout history (newest first):\n");
        for r in self.revisions.iter().take(max.max(2)) {
            s.push_str(&format!(
                "  rev {} {} ready {}/{} created {} images {}{}\n",
                r.revision,
                r.replicaset,
                r.ready,
                r.replicas,
                r.created.as_deref().unwrap_or("-"),
                r.images.join(","),
                r.change_cause
                    .as_deref()
                    .map(|c| format!(" cause {}", serde_json::to_string(c).unwrap_or_default()))
                    .unwrap_or_default()
            ));
        }
        for d in self.diffs.iter().take(max.clamp(1, 3)) {
            s.push_str(&format!("  diff rev {} → {}:\n", d.from, d.to));
            for c in d.changes.iter().take(max.max(3)) {
                s.push_str(&format!("    {c}\n"));
            }
            if d.changes.len() > max.max(3) {
                s.push_str(&format!(
                    "    … {} more changes\n",
                    d.changes.len() - max.max(3)
                ));
            }
        }
        s
    }
}

fn template_value(rs: &ReplicaSet) -> Value {
    let mut v = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null);
    if let Some(l) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    v
}

fn leaf(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => "∅".to_string(),
        other => other.to_string(),
    };
    short(&clean(&s), 100)
}

/// Paths that differ between two JSON values; arrays of named objects are keyed by name.
pub fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let named = |arr: &Vec<Value>| {
                arr.iter()
                    .all(|e| e.get("name").and_then(Value::as_str).is_some())
            };
            if named(x) && named(y) {
                let name = |e: &Value| {
                    e.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let mut names: Vec<String> = x.iter().chain(y.iter()).map(name).collect();
                names.sort();
                names.dedup();
                for n in names {
                    let l = x.iter().find(|e| name(e) == n).unwrap_or(&Value::Null);
                    let r = y.iter().find(|e| name(e) == n).unwrap_or(&Value::Null);
                    json_diff(l, r, &format!("{path}[{n}]"), out);
                }
            } else if a != b {
                out.push(format!("{path}: {} → {}", leaf(a), leaf(b)));
            }
        }
        _ if a != b => out.push(format!("{path}: {} → {}", leaf(a), leaf(b))),
        _ => {}
    }
}

/// Build the rollout history of a Deployment from its ReplicaSets.
pub fn rollout_history(d: &Deployment, replicasets: &[ReplicaSet]) -> RolloutHistory {
    let uid = d.metadata.uid.clone();
    let name = d.metadata.name.clone().unwrap_or_default();
    let mut owned: Vec<&ReplicaSet> =
        replicasets
            .iter()
            .filter(|rs| {
                rs.metadata.owner_references.iter().flatten().any(|o| {
                    o.kind == "Deployment" && (Some(&o.uid) == uid.as_ref() || o.name == name)
                })
            })
            .collect();
    let rev = |rs: &ReplicaSet| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    owned.sort_by_key(|rs| std::cmp::Reverse(rev(rs)));
    let revisions = owned
        .iter()
        .map(|rs| Revision {
            revision: rev(rs),
            replicaset: rs.metadata.name.clone().unwrap_or_default(),
            images: images(rs.spec.template.as_ref()),
            replicas: rs.spec.replicas.unwrap_or(0),
            ready: rs
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            created: rs.metadata.creation_timestamp.as_ref().map(time),
            change_cause: rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/change-cause"))
                .map(|c| clean(c)),
        })
        .collect();
    let diffs = owned
        .windows(2)
        .map(|w| {
            let mut changes = Vec::new();
            json_diff(
                &template_value(w[1]),
                &template_value(w[0]),
                "",
                &mut changes,
            );
            TemplateDiff {
                from: rev(w[1]),
                to: rev(w[0]),
                changes,
            }
        })
        .collect();
    RolloutHistory { revisions, diffs }
}
