//! Custom resources read as dynamic objects: KEDA ScaledObjects, Gateway API Gateways and
//! HTTPRoutes, KubeVirt VMs and VMIs, DRA ResourceClaims and ResourceSlices, KAITO Workspaces,
//! Argo CD Applications. Each gets a typed summary.

use super::types::*;
use crate::redact::clean;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn name(v: &Value) -> String {
    str_at(v, &["metadata", "name"]).unwrap_or_default()
}
fn ns(v: &Value) -> String {
    str_at(v, &["metadata", "namespace"]).unwrap_or_default()
}
fn uid(v: &Value) -> Option<String> {
    str_at(v, &["metadata", "uid"])
}
fn arr<'a>(v: &'a Value, ptr: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}
fn cond_true(c: &[Condition], t: &str) -> Option<bool> {
    c.iter().find(|c| c.type_ == t).map(|c| c.status == "True")
}
fn bad_conditions(c: &[Condition]) -> String {
    c.iter()
        .filter(|c| c.status != "True")
        .map(|c| format!(" — {}", c.line()))
        .collect()
}

/// A KEDA ScaledObject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaledObjectSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Scale target `Kind/name`.
    pub target: String,
    /// Minimum replicas.
    pub min: Option<i64>,
    /// Maximum replicas.
    pub max: Option<i64>,
    /// Trigger types (`prometheus`, `kafka`, …) with their key metadata.
    pub triggers: Vec<String>,
    /// HPA KEDA created.
    pub hpa: Option<String>,
    /// Paused by annotation.
    pub paused: bool,
    /// Conditions (Ready, Active, Fallback).
    pub conditions: Vec<Condition>,
}

impl ScaledObjectSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        match cond_true(&self.conditions, "Ready") {
            Some(false) => Health::Broken,
            _ if self.paused || cond_true(&self.conditions, "Fallback") == Some(true) => {
                Health::Degraded
            }
            _ => Health::Healthy,
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "ScaledObject {}/{} → {} min {} max {} triggers {}{}{}",
            self.namespace,
            self.name,
            self.target,
            self.min.map_or("-".into(), |v| v.to_string()),
            self.max.map_or("-".into(), |v| v.to_string()),
            self.triggers.join("; "),
            if self.paused { " PAUSED" } else { "" },
            self.conditions
                .iter()
                .map(|c| format!(" {}={}", c.type_, c.status))
                .collect::<String>()
        )
    }
}

/// Summarise a ScaledObject.
pub fn scaledobject_summary(v: &Value) -> ScaledObjectSummary {
    ScaledObjectSummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        target: format!(
            "{}/{}",
            str_at(v, &["spec", "scaleTargetRef", "kind"]).unwrap_or_else(|| "Deployment".into()),
            str_at(v, &["spec", "scaleTargetRef", "name"]).unwrap_or_default()
        ),
        min: int_at(v, &["spec", "minReplicaCount"]),
        max: int_at(v, &["spec", "maxReplicaCount"]),
        triggers: arr(v, "/spec/triggers")
            .map(|t| {
                let kind = str_at(t, &["type"]).unwrap_or_default();
                let meta = t.get("metadata").and_then(Value::as_object).map(|m| {
                    m.iter()
                        .filter(|(k, _)| {
                            [
                                "query",
                                "threshold",
                                "metricName",
                                "topic",
                                "queueName",
                                "lagThreshold",
                            ]
                            .contains(&k.as_str())
                        })
                        .map(|(k, v)| {
                            format!(
                                "{k}={}",
                                short(&clean(v.as_str().unwrap_or(&v.to_string())), 120)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                format!("{kind} {}", meta.unwrap_or_default())
                    .trim()
                    .to_string()
            })
            .collect(),
        hpa: str_at(v, &["status", "hpaName"]),
        paused: v
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| {
                a.contains_key("autoscaling.keda.sh/paused")
                    || a.contains_key("autoscaling.keda.sh/paused-replicas")
            }),
        conditions: Condition::all_json(v),
    }
}

/// A Gateway API Gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewaySummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// GatewayClass.
    pub class: String,
    /// Listeners (`name proto:port host`).
    pub listeners: Vec<String>,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

impl GatewaySummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if cond_true(&self.conditions, "Programmed") == Some(false)
            || cond_true(&self.conditions, "Accepted") == Some(false)
        {
            Health::Broken
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "Gateway {}/{} class {} listeners {} addresses {}{}",
            self.namespace,
            self.name,
            self.class,
            self.listeners.join(","),
            self.addresses.join(","),
            bad_conditions(&self.conditions)
        )
    }
}

/// Summarise a Gateway.
pub fn gateway_summary(v: &Value) -> GatewaySummary {
    GatewaySummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        class: str_at(v, &["spec", "gatewayClassName"]).unwrap_or_default(),
        listeners: arr(v, "/spec/listeners")
            .map(|l| {
                format!(
                    "{} {}:{}{}",
                    str_at(l, &["name"]).unwrap_or_default(),
                    str_at(l, &["protocol"]).unwrap_or_default(),
                    str_at(l, &["port"]).unwrap_or_default(),
                    str_at(l, &["hostname"])
                        .map(|h| format!(" {h}"))
                        .unwrap_or_default()
                )
            })
            .collect(),
        addresses: arr(v, "/status/addresses")
            .filter_map(|a| str_at(a, &["value"]))
            .collect(),
        conditions: Condition::all_json(v),
    }
}

/// A backend of an HTTPRoute rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Kind (`Service` by default).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace when it differs from the route's.
    pub namespace: Option<String>,
    /// Port.
    pub port: Option<i64>,
    /// Weight (1 when unset).
    pub weight: i64,
}

/// One rule of an HTTPRoute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRule {
    /// Matches (`PathPrefix /v1`, `header x=y`).
    pub matches: Vec<String>,
    /// Backends with weights.
    pub backends: Vec<Backend>,
}

/// A Gateway API HTTPRoute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Parent gateways.
    pub parents: Vec<String>,
    /// Hostnames.
    pub hostnames: Vec<String>,
    /// Rules.
    pub rules: Vec<RouteRule>,
    /// Conditions reported by parents (Accepted, ResolvedRefs).
    pub conditions: Vec<Condition>,
}

impl HttpRouteSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if self.conditions.iter().any(|c| c.status == "False") {
            Health::Broken
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                let b: Vec<String> = r
                    .backends
                    .iter()
                    .map(|b| {
                        format!(
                            "{}{}{} w={}",
                            b.namespace
                                .as_deref()
                                .map(|n| format!("{n}/"))
                                .unwrap_or_default(),
                            b.name,
                            b.port.map(|p| format!(":{p}")).unwrap_or_default(),
                            b.weight
                        )
                    })
                    .collect();
                format!("[{}] → {}", r.matches.join(" "), b.join(", "))
            })
            .collect();
        format!(
            "HTTPRoute {}/{} parents {} hosts {} rules {}{}",
            self.namespace,
            self.name,
            self.parents.join(","),
            self.hostnames.join(","),
            rules.join(" | "),
            bad_conditions(&self.conditions)
        )
    }
}

/// Summarise an HTTPRoute.
pub fn httproute_summary(v: &Value) -> HttpRouteSummary {
    HttpRouteSummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        parents: arr(v, "/spec/parentRefs")
            .map(|p| {
                format!(
                    "{}{}",
                    str_at(p, &["namespace"])
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default(),
                    str_at(p, &["name"]).unwrap_or_default()
                )
            })
            .collect(),
        hostnames: arr(v, "/spec/hostnames")
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect(),
        rules: arr(v, "/spec/rules")
            .map(|r| RouteRule {
                matches: arr(r, "/matches")
                    .map(|m| {
                        let mut parts = Vec::new();
                        if let Some(p) = m.get("path") {
                            parts.push(format!(
                                "{} {}",
                                str_at(p, &["type"]).unwrap_or_else(|| "PathPrefix".into()),
                                str_at(p, &["value"]).unwrap_or_else(|| "/".into())
                            ));
                        }
                        for h in arr(m, "/headers") {
                            parts.push(format!(
                                "header {}={}",
                                str_at(h, &["name"]).unwrap_or_default(),
                                str_at(h, &["value"]).unwrap_or_default()
                            ));
                        }
                        parts.join(" ")
                    })
                    .collect(),
                backends: arr(r, "/backendRefs")
                    .map(|b| Backend {
                        kind: str_at(b, &["kind"]).unwrap_or_else(|| "Service".into()),
                        name: str_at(b, &["name"]).unwrap_or_default(),
                        namespace: str_at(b, &["namespace"]),
                        port: int_at(b, &["port"]),
                        weight: int_at(b, &["weight"]).unwrap_or(1),
                    })
                    .collect(),
            })
            .collect(),
        conditions: arr(v, "/status/parents")
            .flat_map(|p| {
                arr(p, "/conditions")
                    .filter_map(Condition::from_json)
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

/// Live migration state of a VMI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// Source node.
    pub source_node: Option<String>,
    /// Target node.
    pub target_node: Option<String>,
    /// Completed.
    pub completed: bool,
    /// Failed.
    pub failed: bool,
    /// Start time.
    pub started: Option<String>,
    /// End time.
    pub ended: Option<String>,
}

/// A KubeVirt VirtualMachine or VirtualMachineInstance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSummary {
    /// `VirtualMachine` or `VirtualMachineInstance`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// VM: printableStatus (`Running`, `Stopped`, `CrashLoopBackOff`…); VMI: phase.
    pub status: String,
    /// VM: runStrategy / running.
    pub run_strategy: Option<String>,
    /// VMI: node.
    pub node: Option<String>,
    /// Ready.
    pub ready: Option<bool>,
    /// VMI: live migration state.
    pub migration: Option<Migration>,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

impl VmSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        let bad = [
            "Failed",
            "CrashLoopBackOff",
            "ErrorUnschedulable",
            "ErrImagePull",
            "ErrorPvcNotFound",
            "ErrorDataVolumeNotFound",
            "Unknown",
        ];
        if bad.contains(&self.status.as_str()) || self.migration.as_ref().is_some_and(|m| m.failed)
        {
            Health::Broken
        } else if self.ready == Some(false) || self.migration.as_ref().is_some_and(|m| !m.completed)
        {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {}/{} {}",
            self.kind, self.namespace, self.name, self.status
        );
        if let Some(r) = &self.run_strategy {
            s.push_str(&format!(" runStrategy {r}"));
        }
        if let Some(n) = &self.node {
            s.push_str(&format!(" node {n}"));
        }
        if let Some(r) = self.ready {
            s.push_str(&format!(" ready {r}"));
        }
        if let Some(m) = &self.migration {
            s.push_str(&format!(
                " migration {}→{} {}",
                m.source_node.as_deref().unwrap_or("?"),
                m.target_node.as_deref().unwrap_or("?"),
                if m.failed {
                    "FAILED"
                } else if m.completed {
                    "completed"
                } else {
                    "in progress"
                }
            ));
            if let Some(st) = &m.started {
                s.push_str(&format!(" since {st}"));
            }
        }
        s.push_str(&bad_conditions(&self.conditions));
        s
    }
}

/// Summarise a VirtualMachine.
pub fn vm_summary(v: &Value) -> VmSummary {
    let conditions = Condition::all_json(v);
    VmSummary {
        kind: "VirtualMachine".into(),
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        status: str_at(v, &["status", "printableStatus"]).unwrap_or_else(|| "Unknown".into()),
        run_strategy: str_at(v, &["spec", "runStrategy"])
            .or_else(|| str_at(v, &["spec", "running"]).map(|r| format!("running={r}"))),
        node: None,
        ready: v
            .pointer("/status/ready")
            .and_then(Value::as_bool)
            .or_else(|| cond_true(&conditions, "Ready")),
        migration: None,
        conditions,
    }
}

/// Summarise a VirtualMachineInstance.
pub fn vmi_summary(v: &Value) -> VmSummary {
    let conditions = Condition::all_json(v);
    VmSummary {
        kind: "VirtualMachineInstance".into(),
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        status: str_at(v, &["status", "phase"]).unwrap_or_else(|| "Unknown".into()),
        run_strategy: None,
        node: str_at(v, &["status", "nodeName"]),
        ready: cond_true(&conditions, "Ready"),
        migration: v.pointer("/status/migrationState").map(|m| Migration {
            source_node: str_at(m, &["sourceNode"]),
            target_node: str_at(m, &["targetNode"]),
            completed: m.get("completed").and_then(Value::as_bool).unwrap_or(false),
            failed: m.get("failed").and_then(Value::as_bool).unwrap_or(false),
            started: str_at(m, &["startTimestamp"]),
            ended: str_at(m, &["endTimestamp"]),
        }),
        conditions,
    }
}

/// A DRA ResourceClaim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceClaimSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Requests (`name: deviceClass xN`).
    pub requests: Vec<String>,
    /// Allocated.
    pub allocated: bool,
    /// Allocated devices (`driver/pool/device`).
    pub devices: Vec<String>,
    /// Consumers (`Pod/name`).
    pub reserved_for: Vec<String>,
}

impl ResourceClaimSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if self.allocated {
            Health::Healthy
        } else {
            Health::Broken
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "ResourceClaim {}/{} requests {} {} devices {} reservedFor {}",
            self.namespace,
            self.name,
            self.requests.join(","),
            if self.allocated {
                "allocated"
            } else {
                "NOT ALLOCATED"
            },
            self.devices.join(","),
            self.reserved_for.join(",")
        )
    }
}

/// Summarise a ResourceClaim (resource.k8s.io v1 or v1beta1 shapes).
pub fn resourceclaim_summary(v: &Value) -> ResourceClaimSummary {
    let devices: Vec<String> = arr(v, "/status/allocation/devices/results")
        .map(|r| {
            format!(
                "{}/{}/{}",
                str_at(r, &["driver"]).unwrap_or_default(),
                str_at(r, &["pool"]).unwrap_or_default(),
                str_at(r, &["device"]).unwrap_or_default()
            )
        })
        .collect();
    ResourceClaimSummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        requests: arr(v, "/spec/devices/requests")
            .map(|r| {
                let class = str_at(r, &["exactly", "deviceClassName"])
                    .or_else(|| str_at(r, &["deviceClassName"]))
                    .unwrap_or_default();
                let count = int_at(r, &["exactly", "count"])
                    .or_else(|| int_at(r, &["count"]))
                    .unwrap_or(1);
                format!(
                    "{}: {class} x{count}",
                    str_at(r, &["name"]).unwrap_or_default()
                )
            })
            .collect(),
        allocated: v.pointer("/status/allocation").is_some(),
        devices,
        reserved_for: arr(v, "/status/reservedFor")
            .map(|r| {
                format!(
                    "{}/{}",
                    str_at(r, &["resource"]).unwrap_or_default(),
                    str_at(r, &["name"]).unwrap_or_default()
                )
            })
            .collect(),
    }
}

/// A DRA ResourceSlice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSliceSummary {
    /// Name.
    pub name: String,
    /// Uid.
    pub uid: Option<String>,
    /// Node.
    pub node: Option<String>,
    /// Driver.
    pub driver: String,
    /// Pool.
    pub pool: String,
    /// Device names.
    pub devices: Vec<String>,
}

impl ResourceSliceSummary {
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "ResourceSlice {} node {} driver {} pool {} devices {} ({})",
            self.name,
            self.node.as_deref().unwrap_or("-"),
            self.driver,
            self.pool,
            self.devices.len(),
            short(&self.devices.join(","), 200)
        )
    }
}

/// Summarise a ResourceSlice.
pub fn resourceslice_summary(v: &Value) -> ResourceSliceSummary {
    ResourceSliceSummary {
        name: name(v),
        uid: uid(v),
        node: str_at(v, &["spec", "nodeName"]),
        driver: str_at(v, &["spec", "driver"]).unwrap_or_default(),
        pool: str_at(v, &["spec", "pool", "name"]).unwrap_or_default(),
        devices: arr(v, "/spec/devices")
            .filter_map(|d| str_at(d, &["name"]))
            .collect(),
    }
}

/// A KAITO Workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// GPU instance type.
    pub instance_type: Option<String>,
    /// Node count.
    pub count: Option<i64>,
    /// Inference preset (model).
    pub preset: Option<String>,
    /// Conditions (ResourceReady, InferenceReady, WorkspaceSucceeded).
    pub conditions: Vec<Condition>,
}

impl WorkspaceSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        if self.conditions.iter().any(|c| c.status == "False") {
            Health::Broken
        } else if cond_true(&self.conditions, "WorkspaceSucceeded") == Some(true) {
            Health::Healthy
        } else {
            Health::Degraded
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "Workspace {}/{} preset {} instanceType {} count {}{}",
            self.namespace,
            self.name,
            self.preset.as_deref().unwrap_or("-"),
            self.instance_type.as_deref().unwrap_or("-"),
            self.count.map_or("-".into(), |c| c.to_string()),
            self.conditions
                .iter()
                .map(|c| format!(" — {}", c.line()))
                .collect::<String>()
        )
    }
}

/// Summarise a KAITO Workspace.
pub fn workspace_summary(v: &Value) -> WorkspaceSummary {
    WorkspaceSummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        instance_type: str_at(v, &["resource", "instanceType"])
            .or_else(|| str_at(v, &["spec", "resource", "instanceType"])),
        count: int_at(v, &["resource", "count"])
            .or_else(|| int_at(v, &["spec", "resource", "count"])),
        preset: str_at(v, &["inference", "preset", "name"])
            .or_else(|| str_at(v, &["spec", "inference", "preset", "name"])),
        conditions: Condition::all_json(v),
    }
}

/// An Argo CD Application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationSummary {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Source repository URL.
    pub repo_url: Option<String>,
    /// Path in the repository.
    pub path: Option<String>,
    /// Target revision.
    pub target_revision: Option<String>,
    /// Sync status (`Synced`, `OutOfSync`).
    pub sync: Option<String>,
    /// Revision synced.
    pub revision: Option<String>,
    /// Health (`Healthy`, `Degraded`, `Progressing`, `Missing`).
    pub health: Option<String>,
    /// Health message.
    pub health_message: Option<String>,
    /// Destination `server/namespace`.
    pub destination: Option<String>,
    /// Last operation phase and message.
    pub operation: Option<String>,
    /// Auto-sync enabled.
    pub automated: bool,
    /// Conditions (e.g. SyncError).
    pub conditions: Vec<Condition>,
}

impl ApplicationSummary {
    /// Problems first.
    pub fn health(&self) -> Health {
        match self.health.as_deref() {
            Some("Degraded") | Some("Missing") => Health::Broken,
            Some("Healthy") if self.sync.as_deref() == Some("Synced") => Health::Healthy,
            _ => Health::Degraded,
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        format!(
            "Application {}/{} repo {} path {} target {} sync {} rev {} health {}{}{}",
            self.namespace,
            self.name,
            self.repo_url.as_deref().unwrap_or("-"),
            self.path.as_deref().unwrap_or("-"),
            self.target_revision.as_deref().unwrap_or("HEAD"),
            self.sync.as_deref().unwrap_or("-"),
            self.revision.as_deref().unwrap_or("-"),
            self.health.as_deref().unwrap_or("-"),
            self.health_message
                .as_deref()
                .map(|m| format!(" ({})", short(m, 160)))
                .unwrap_or_default(),
            self.operation
                .as_deref()
                .map(|o| format!(" op {}", short(o, 200)))
                .unwrap_or_default()
        )
    }
}

/// Summarise an Argo CD Application.
pub fn application_summary(v: &Value) -> ApplicationSummary {
    let src = v
        .pointer("/spec/source")
        .or_else(|| v.pointer("/spec/sources/0"))
        .cloned()
        .unwrap_or(Value::Null);
    ApplicationSummary {
        name: name(v),
        namespace: ns(v),
        uid: uid(v),
        project: str_at(v, &["spec", "project"]),
        repo_url: str_at(&src, &["repoURL"]).map(|u| clean(&u)),
        path: str_at(&src, &["path"]).or_else(|| str_at(&src, &["chart"])),
        target_revision: str_at(&src, &["targetRevision"]),
        sync: str_at(v, &["status", "sync", "status"]),
        revision: str_at(v, &["status", "sync", "revision"]),
        health: str_at(v, &["status", "health", "status"]),
        health_message: str_at(v, &["status", "health", "message"]).map(|m| clean(&m)),
        destination: v.pointer("/spec/destination").map(|d| {
            format!(
                "{}/{}",
                str_at(d, &["server"])
                    .or_else(|| str_at(d, &["name"]))
                    .unwrap_or_default(),
                str_at(d, &["namespace"]).unwrap_or_default()
            )
        }),
        operation: v.pointer("/status/operationState").map(|o| {
            format!(
                "{}: {}",
                str_at(o, &["phase"]).unwrap_or_default(),
                clean(&str_at(o, &["message"]).unwrap_or_default())
            )
        }),
        automated: v.pointer("/spec/syncPolicy/automated").is_some(),
        conditions: arr(v, "/status/conditions")
            .filter_map(|c| {
                Some(Condition {
                    type_: str_at(c, &["type"])?,
                    status: "True".into(),
                    reason: None,
                    message: str_at(c, &["message"]).map(|m| clean(&m)),
                    since: str_at(c, &["lastTransitionTime"]),
                })
            })
            .collect(),
    }
}
