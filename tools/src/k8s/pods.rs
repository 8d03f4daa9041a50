//! Pods: containers (spec and status joined), env with secret references, probes, requests.

use super::types::*;
use crate::redact::{SECRET_VALUE, clean, clean_named};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, Probe};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Owner of an object (first controller reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    /// Kind, e.g. `ReplicaSet`.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// The last terminated instance of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminated {
    /// Reason (`OOMKilled`, `Error`, `Completed`).
    pub reason: Option<String>,
    /// Exit code.
    pub exit_code: i32,
    /// Signal, if killed by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Finish time.
    pub finished_at: Option<String>,
    /// Message (cleaned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An environment variable: plain values cleaned, secret-sourced values never shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value (cleaned) or [`SECRET_VALUE`] for `secretKeyRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the value comes from: `secret NAME/KEY`, `configmap NAME/KEY`, `field PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A ConfigMap or Secret file mounted with `subPath`: the kubelet copies it when the
/// container starts and never updates it, so later edits of the source are not seen until
/// the container restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubPathMount {
    /// Container that mounts it.
    pub container: String,
    /// `ConfigMap` or `Secret`.
    pub source_kind: String,
    /// Name of the ConfigMap or Secret.
    pub source: String,
    /// Where it is mounted.
    pub mount_path: String,
    /// The `subPath` (or `subPathExpr`) inside the volume.
    pub sub_path: String,
}

/// One container of a pod, spec and status joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Init container.
    pub init: bool,
    /// Ready.
    pub ready: bool,
    /// Restart count.
    pub restarts: i32,
    /// `running`, `waiting`, `terminated` or `unknown`.
    pub state: String,
    /// Reason of the current state (`CrashLoopBackOff`, `ImagePullBackOff`, `OOMKilled`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Message of the current state (cleaned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Exit code when terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When the running instance started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The previous instance, when it terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_terminated: Option<Terminated>,
    /// Requests.
    pub requests: Resources,
    /// Limits.
    pub limits: Resources,
    /// Probes, e.g. `readiness http GET :8080/healthz`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// `envFrom` sources (`secret NAME`, `configmap NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<String>,
}

/// A pod, as an analyzer or a model needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Node it runs on.
    pub node: Option<String>,
    /// Phase.
    pub phase: String,
    /// Pod-level reason (`Evicted`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Pod-level message (cleaned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// All containers ready.
    pub ready: bool,
    /// Restarts summed over containers.
    pub restarts: i32,
    /// Containers (init first).
    pub containers: Vec<ContainerSummary>,
    /// Controller.
    pub owner: Option<Owner>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Requests summed over app containers.
    pub requests: Resources,
    /// Labels worth showing.
    pub labels: BTreeMap<String, String>,
    /// All labels (for selector matching by analyzers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub all_labels: BTreeMap<String, String>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations (`key=value:Effect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<String>,
    /// PersistentVolumeClaims mounted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pvcs: Vec<String>,
    /// Secrets referenced (volumes, env, envFrom, image pull) — names only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// ConfigMaps referenced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configmaps: Vec<String>,
    /// ConfigMap / Secret files mounted with `subPath` (never reloaded by the kubelet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subpath_mounts: Vec<SubPathMount>,
    /// DRA resource claims (`name → claim`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_claims: Vec<String>,
    /// Creation time.
    pub created: Option<String>,
    /// Start time.
    pub started: Option<String>,
}

impl PodSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        let bad_state = self.containers.iter().any(|c| {
            c.state == "waiting"
                && c.reason
                    .as_deref()
                    .is_some_and(|r| r != "ContainerCreating" && r != "PodInitializing")
                || (c.state == "terminated" && c.exit_code.is_some_and(|e| e != 0))
        });
        if self.phase == "Failed" || bad_state || (self.phase == "Pending" && self.node.is_none()) {
            Health::Broken
        } else if self.phase == "Succeeded" || self.ready {
            if self.restarts > 0 {
                Health::Degraded
            } else {
                Health::Healthy
            }
        } else {
            Health::Degraded
        }
    }

    /// One line: `ns/name phase ready 1/2 restarts 5 node n1 — api: waiting CrashLoopBackOff (last exit 137 OOMKilled)`.
    pub fn line(&self) -> String {
        let app: Vec<&ContainerSummary> = self.containers.iter().filter(|c| !c.init).collect();
        let ready = app.iter().filter(|c| c.ready).count();
        let mut s = format!(
            "{}/{} {} ready {}/{} restarts {} node {}",
            self.namespace,
            self.name,
            self.phase,
            ready,
            app.len(),
            self.restarts,
            self.node.as_deref().unwrap_or("-")
        );
        if let Some(r) = &self.reason {
            s.push_str(&format!(" reason {r}"));
        }
        for c in &self.containers {
            let notable = c.state != "running" || !c.ready || c.last_terminated.is_some();
            if !notable || (c.init && c.state == "terminated" && c.exit_code == Some(0)) {
                continue;
            }
            s.push_str(&format!(" — {}: {}", c.name, c.state));
            if let Some(r) = &c.reason {
                s.push_str(&format!(" {r}"));
            }
            if let Some(e) = c.exit_code {
                s.push_str(&format!(" exit {e}"));
            }
            if let Some(t) = &c.last_terminated {
                s.push_str(&format!(
                    " (last exit {} {}{})",
                    t.exit_code,
                    t.reason.as_deref().unwrap_or(""),
                    t.finished_at
                        .as_deref()
                        .map(|f| format!(" at {f}"))
                        .unwrap_or_default()
                ));
            }
        }
        if self.node.is_none()
            && let Some(c) = self
                .conditions
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        {
            s.push_str(&format!(
                " — unschedulable: {}",
                short(c.message.as_deref().unwrap_or(""), 200)
            ));
        }
        s
    }

    /// Multi-line detail.
    pub fn describe(&self) -> String {
        let mut s = format!("Pod {}\n", self.line());
        if let Some(o) = &self.owner {
            s.push_str(&format!("owner: {}/{}\n", o.kind, o.name));
        }
        if let Some(m) = &self.message {
            s.push_str(&format!(
                "message: {}\n",
                serde_json::to_string(m).unwrap_or_default()
            ));
        }
        s.push_str(&format!("requests: {}\n", self.requests.line()));
        if !self.labels.is_empty() {
            s.push_str(&format!("labels: {}\n", kv(&self.labels)));
        }
        if !self.node_selector.is_empty() {
            s.push_str(&format!("nodeSelector: {}\n", kv(&self.node_selector)));
        }
        if !self.tolerations.is_empty() {
            s.push_str(&format!("tolerations: {}\n", self.tolerations.join(", ")));
        }
        for c in &self.conditions {
            if c.status != "True" {
                s.push_str(&format!("condition {}\n", c.line()));
            }
        }
        for c in &self.containers {
            s.push_str(&format!(
                "container {}{} image {} {} ready={} restarts={}",
                c.name,
                if c.init { " (init)" } else { "" },
                c.image,
                c.state,
                c.ready,
                c.restarts
            ));
            if let Some(r) = &c.reason {
                s.push_str(&format!(" reason {r}"));
            }
            if let Some(e) = c.exit_code {
                s.push_str(&format!(" exit {e}"));
            }
            if let Some(m) = &c.message {
                s.push_str(&format!(
                    " message {}",
                    serde_json::to_string(&short(m, 300)).unwrap_or_default()
                ));
            }
            s.push('\n');
            if let Some(t) = &c.last_terminated {
                s.push_str(&format!(
                    "  last terminated: exit {} {} at {}\n",
                    t.exit_code,
                    t.reason.as_deref().unwrap_or("-"),
                    t.finished_at.as_deref().unwrap_or("-")
                ));
            }
            s.push_str(&format!(
                "  requests {} limits {}\n",
                c.requests.line(),
                c.limits.line()
            ));
            if !c.probes.is_empty() {
                s.push_str(&format!("  probes: {}\n", c.probes.join("; ")));
            }
            let env: Vec<String> = c
                .env
                .iter()
                .map(|e| match (&e.from, &e.value) {
                    (Some(f), _) => format!("{}←{f}", e.name),
                    (None, Some(v)) => format!("{}={}", e.name, short(v, 80)),
                    _ => e.name.clone(),
                })
                .collect();
            if !env.is_empty() {
                s.push_str(&format!("  env: {}\n", env.join(", ")));
            }
            if !c.env_from.is_empty() {
                s.push_str(&format!("  envFrom: {}\n", c.env_from.join(", ")));
            }
        }
        for m in &self.subpath_mounts {
            s.push_str(&format!(
                "subPath mount (not reloaded on change): {} {} key {} at {} in {}\n",
                m.source_kind, m.source, m.sub_path, m.mount_path, m.container
            ));
        }
        for (label, v) in [
            ("pvcs", &self.pvcs),
            ("secrets", &self.secrets),
            ("configmaps", &self.configmaps),
            ("claims", &self.resource_claims),
        ] {
            if !v.is_empty() {
                s.push_str(&format!("{label}: {}\n", v.join(", ")));
            }
        }
        s
    }
}

fn probe(kind: &str, p: Option<&Probe>) -> Option<String> {
    let p = p?;
    let what = if let Some(h) = &p.http_get {
        let port = match &h.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
        };
        format!("http GET :{port}{}", h.path.as_deref().unwrap_or("/"))
    } else if let Some(t) = &p.tcp_socket {
        format!("tcp {:?}", t.port)
            .replace("Int(", ":")
            .replace(')', "")
    } else if p.exec.is_some() {
        "exec".to_string()
    } else if p.grpc.is_some() {
        "grpc".to_string()
    } else {
        "?".to_string()
    };
    Some(format!(
        "{kind} {what} delay={}s period={}s failures={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.period_seconds.unwrap_or(10),
        p.failure_threshold.unwrap_or(3)
    ))
}

fn container(
    c: &Container,
    st: Option<&ContainerStatus>,
    init: bool,
    secrets: &mut Vec<String>,
    cms: &mut Vec<String>,
) -> ContainerSummary {
    let res = c.resources.as_ref();
    let mut env = Vec::new();
    for e in c.env.iter().flatten() {
        let (value, from) = match &e.value_from {
            Some(vf) => {
                if let Some(s) = &vf.secret_key_ref {
                    secrets.push(s.name.clone());
                    (
                        Some(SECRET_VALUE.to_string()),
                        Some(format!("secret {}/{}", s.name, s.key)),
                    )
                } else if let Some(cm) = &vf.config_map_key_ref {
                    cms.push(cm.name.clone());
                    (None, Some(format!("configmap {}/{}", cm.name, cm.key)))
                } else if let Some(f) = &vf.field_ref {
                    (None, Some(format!("field {}", f.field_path)))
                } else if let Some(r) = &vf.resource_field_ref {
                    (None, Some(format!("resource {}", r.resource)))
                } else {
                    (None, None)
                }
            }
            None => (e.value.as_deref().map(|v| clean_named(&e.name, v)), None),
        };
        env.push(EnvVar {
            name: e.name.clone(),
            value,
            from,
        });
    }
    let mut env_from = Vec::new();
    for ef in c.env_from.iter().flatten() {
        if let Some(s) = &ef.secret_ref {
            secrets.push(s.name.clone());
            env_from.push(format!("secret {}", s.name));
        }
        if let Some(cm) = &ef.config_map_ref {
            cms.push(cm.name.clone());
            env_from.push(format!("configmap {}", cm.name));
        }
    }
    let started_at = st
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(time);
    let (state, reason, message, exit_code) = match st.and_then(|s| s.state.as_ref()) {
        Some(s) if s.running.is_some() => ("running", None, None, None),
        Some(s) if s.waiting.is_some() => {
            let w = s.waiting.as_ref();
            (
                "waiting",
                w.and_then(|w| w.reason.clone()),
                w.and_then(|w| w.message.as_deref().map(clean)),
                None,
            )
        }
        Some(s) => match &s.terminated {
            Some(t) => (
                "terminated",
                t.reason.clone(),
                t.message.as_deref().map(clean),
                Some(t.exit_code),
            ),
            None => ("unknown", None, None, None),
        },
        None => ("unknown", None, None, None),
    };
    let last_terminated = st
        .and_then(|s| s.last_state.as_ref())
        .and_then(|l| l.terminated.as_ref())
        .map(|t| Terminated {
            reason: t.reason.clone(),
            exit_code: t.exit_code,
            signal: t.signal,
            finished_at: t.finished_at.as_ref().map(time),
            message: t.message.as_deref().map(|m| short(&clean(m), 300)),
        });
    ContainerSummary {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        init,
        ready: st.is_some_and(|s| s.ready),
        restarts: st.map_or(0, |s| s.restart_count),
        state: state.to_string(),
        reason,
        message,
        exit_code,
        started_at,
        last_terminated,
        requests: Resources::from_map(res.and_then(|r| r.requests.as_ref())),
        limits: Resources::from_map(res.and_then(|r| r.limits.as_ref())),
        probes: [
            probe("liveness", c.liveness_probe.as_ref()),
            probe("readiness", c.readiness_probe.as_ref()),
            probe("startup", c.startup_probe.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        env,
        env_from,
    }
}

/// ConfigMap / Secret files the pod's containers mount with `subPath`.
fn subpath_mounts(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<SubPathMount> {
    // Volume name → its ConfigMap / Secret sources (a projected volume may have several).
    let mut sources: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for v in spec.volumes.iter().flatten() {
        let e = sources.entry(v.name.as_str()).or_default();
        if let Some(c) = &v.config_map {
            e.push(("ConfigMap", c.name.as_str()));
        }
        if let Some(n) = v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) {
            e.push(("Secret", n));
        }
        for p in v
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(c) = &p.config_map {
                e.push(("ConfigMap", c.name.as_str()));
            }
            if let Some(s) = &p.secret {
                e.push(("Secret", s.name.as_str()));
            }
        }
    }
    let mut out = Vec::new();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in all {
        for m in c.volume_mounts.iter().flatten() {
            let sub = m
                .sub_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .or(m.sub_path_expr.as_deref().filter(|p| !p.is_empty()));
            let Some(sub) = sub else { continue };
            for (kind, name) in sources.get(m.name.as_str()).into_iter().flatten() {
                out.push(SubPathMount {
                    container: c.name.clone(),
                    source_kind: (*kind).to_string(),
                    source: (*name).to_string(),
                    mount_path: clean(&m.mount_path),
                    sub_path: clean(sub),
                });
            }
        }
    }
    out
}

/// Summarise a pod.
pub fn pod_summary(p: &Pod) -> PodSummary {
    let md = &p.metadata;
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let mut secrets = Vec::new();
    let mut cms = Vec::new();
    let mut containers = Vec::new();
    let find = |list: Option<&Vec<ContainerStatus>>, name: &str| {
        list.and_then(|l| l.iter().find(|s| s.name == name))
            .cloned()
    };
    if let Some(spec) = spec {
        for c in spec.init_containers.iter().flatten() {
            let st = find(
                status.and_then(|s| s.init_container_statuses.as_ref()),
                &c.name,
            );
            containers.push(container(c, st.as_ref(), true, &mut secrets, &mut cms));
        }
        for c in &spec.containers {
            let st = find(status.and_then(|s| s.container_statuses.as_ref()), &c.name);
            containers.push(container(c, st.as_ref(), false, &mut secrets, &mut cms));
        }
    }
    let mut pvcs = Vec::new();
    for v in spec.and_then(|s| s.volumes.as_ref()).into_iter().flatten() {
        if let Some(c) = &v.persistent_volume_claim {
            pvcs.push(c.claim_name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.push(s);
        }
        if let Some(c) = &v.config_map {
            cms.push(c.name.clone());
        }
    }
    for s in spec
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
    {
        secrets.push(s.name.clone());
    }
    let subpath_mounts = spec.map(subpath_mounts).unwrap_or_default();
    secrets.sort();
    secrets.dedup();
    cms.sort();
    cms.dedup();
    let mut requests = Resources::default();
    for c in containers.iter().filter(|c| !c.init) {
        requests.add(&c.requests);
    }
    let app: Vec<&ContainerSummary> = containers.iter().filter(|c| !c.init).collect();
    let ready = !app.is_empty() && app.iter().all(|c| c.ready);
    let restarts = app.iter().map(|c| c.restarts).sum();
    let conditions: Vec<Condition> = status
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
    PodSummary {
        name: md.name.clone().unwrap_or_default(),
        namespace: md.namespace.clone().unwrap_or_default(),
        uid: md.uid.clone(),
        node: spec.and_then(|s| s.node_name.clone()),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        reason: status.and_then(|s| s.reason.clone()),
        message: status.and_then(|s| s.message.as_deref().map(clean)),
        ready,
        restarts,
        containers,
        owner: md
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .or_else(|| md.owner_references.as_ref().and_then(|o| o.first()))
            .map(|o| Owner {
                kind: o.kind.clone(),
                name: o.name.clone(),
            }),
        conditions,
        requests,
        labels: key_labels(md.labels.as_ref()),
        all_labels: md
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, clean(&v)))
            .collect(),
        node_selector: spec
            .and_then(|s| s.node_selector.clone())
            .unwrap_or_default(),
        tolerations: spec
            .and_then(|s| s.tolerations.as_ref())
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{}{}{}:{}",
                    t.key.as_deref().unwrap_or("*"),
                    if t.operator.as_deref() == Some("Exists") {
                        ""
                    } else {
                        "="
                    },
                    t.value.as_deref().unwrap_or(""),
                    t.effect.as_deref().unwrap_or("*")
                )
            })
            .collect(),
        pvcs,
        secrets,
        configmaps: cms,
        subpath_mounts,
        resource_claims: spec
            .and_then(|s| s.resource_claims.as_ref())
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{} → {}",
                    c.name,
                    c.resource_claim_name
                        .clone()
                        .or_else(|| c.resource_claim_template_name.clone())
                        .unwrap_or_default()
                )
            })
            .collect(),
        created: md.creation_timestamp.as_ref().map(time),
        started: status.and_then(|s| s.start_time.as_ref().map(time)),
    }
}
