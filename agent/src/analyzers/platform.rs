//! Failure classes of platform add-ons: KubeVirt VMs and Argo CD applications.

use super::{Analyzer, FindingBuilder, Observations, obj};
use crate::protocol::{Confidence, Finding};
use medic_tools::k8s::tools::Summary;
use serde_json::json;

/// Every platform analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(VmFailed),
        Box::new(VmMigrationStuck),
        Box::new(ArgoDegraded),
        Box::new(ArgoOutOfSync),
    ]
}

const VM_BAD: &[&str] = &[
    "Failed",
    "CrashLoopBackOff",
    "ErrorUnschedulable",
    "ErrImagePull",
    "Unknown",
];

/// A KubeVirt VM / VMI that failed.
struct VmFailed;

impl Analyzer for VmFailed {
    fn name(&self) -> &'static str {
        "vm-failed"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Vm(v) = i.summary else { continue };
            if !VM_BAD.contains(&v.status.as_str()) {
                continue;
            }
            let why = v
                .conditions
                .iter()
                .find(|c| c.status == "False" || c.type_ == "Failure")
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            let vm = obj(i.cluster, "VirtualMachine", Some(&v.namespace), &v.name);
            // What the events say about the VM and about its node's qemu process (an OOM
            // kill, a lock held by a stale domain).
            let said: Vec<(&str, String)> = super::events(obs)
                .filter(|(_, c, e)| {
                    *c == i.cluster
                        && e.type_ != "Normal"
                        && ((e.namespace == v.namespace
                            && (e.name == v.name
                                || e.name.starts_with(&format!("virt-launcher-{}-", v.name))))
                            || e.message.contains(&v.name)
                            || (e.kind == "Node"
                                && v.node.as_deref() == Some(e.name.as_str())
                                && e.message.to_ascii_lowercase().contains("qemu")))
                })
                .map(|(call, _, e)| (call, format!("{}: {}", e.reason, e.message)))
                .take(3)
                .collect();
            let because = said
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let mut b = FindingBuilder::new(
                self.name(),
                &obj(i.cluster, &v.kind, Some(&v.namespace), &v.name),
                format!("{} {}/{} is {}", v.kind, v.namespace, v.name, v.status),
                if because.is_empty() {
                    format!("the VM is {} {why}", v.status)
                } else {
                    format!("the VM is {} {why}; events: {because}", v.status)
                },
            )
            .confidence(Confidence::HIGH)
            .call(i.call_id, "k8s_list");
            if let Some((call, m)) = said.first() {
                b = b.call(call, "k8s_events").quote(m.clone());
            }
            out.push(b.suggest("restart-vm", json!({}), Some(vm.clone())).build());
        }
        out
    }
}

/// A live migration that failed or never finished.
struct VmMigrationStuck;

impl Analyzer for VmMigrationStuck {
    fn name(&self) -> &'static str {
        "vm-migration-stuck"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Vm(v) = i.summary else { continue };
            // The migration object, as its events name it (the VMI's status may not show a
            // migration whose target pod never started).
            let migration = super::events(obs).find(|(_, c, e)| {
                *c == i.cluster
                    && e.kind == "VirtualMachineInstanceMigration"
                    && e.namespace == v.namespace
                    && (e.name.starts_with(&v.name) || e.message.contains(&v.name))
            });
            let none = medic_tools::k8s::crd::Migration {
                source_node: v.node.clone(),
                target_node: None,
                completed: false,
                failed: false,
                started: None,
                ended: None,
            };
            let m = match (&v.migration, migration) {
                (Some(m), _) => m,
                (None, Some(_)) => &none,
                (None, None) => continue,
            };
            let stuck = !m.completed
                && m.ended.is_none()
                && m.started
                    .as_deref()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .is_some_and(|t| (obs.now - t.with_timezone(&chrono::Utc)).num_minutes() >= 15);
            // A target virt-launcher pod that cannot be scheduled keeps the migration pending.
            let launcher = super::pods(obs).find(|(pi, p)| {
                pi.cluster == i.cluster
                    && p.namespace == v.namespace
                    && p.phase == "Pending"
                    && p.node.is_none()
                    && p.name.starts_with(&format!("virt-launcher-{}-", v.name))
            });
            let unschedulable = launcher.and_then(|(_, p)| {
                p.conditions
                    .iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                    .and_then(|c| c.message.clone())
            });
            if m.completed || (!m.failed && !stuck && unschedulable.is_none()) {
                continue;
            }
            let state = if m.failed {
                "failed"
            } else if unschedulable.is_some() {
                "is stuck: its target pod cannot be scheduled"
            } else {
                "has been running for over 15 minutes"
            };
            let vmi = obj(i.cluster, &v.kind, Some(&v.namespace), &v.name);
            let mut b = FindingBuilder::new(
                self.name(),
                &vmi,
                format!("live migration of {}/{} {state}", v.namespace, v.name),
                format!(
                    "migration from {}{} {state}{}",
                    m.source_node.clone().unwrap_or_else(|| "?".into()),
                    // No target node until the target pod is scheduled.
                    m.target_node
                        .as_deref()
                        .map(|t| format!(" to {t}"))
                        .unwrap_or_default(),
                    unschedulable
                        .as_deref()
                        .map(|u| format!(" ({u}); the migration's node selector or the VM's CPU model matches no other node"))
                        .unwrap_or_default()
                ),
            )
            .confidence(Confidence::MEDIUM)
            .call(i.call_id, "k8s_list");
            if let Some((call, _, e)) = migration {
                b = b
                    .call(call, "k8s_events")
                    .object(obj(i.cluster, &e.kind, Some(&e.namespace), &e.name))
                    .quote(e.message.clone());
            }
            if let Some((pi, p)) = launcher {
                b = b.object(obj(pi.cluster, "Pod", Some(&p.namespace), &p.name));
            }
            out.push(
                b.suggest("migrate-vm", json!({}), Some(vmi.clone()))
                    .build(),
            );
        }
        out
    }
}

/// An Argo CD application reporting Degraded health.
struct ArgoDegraded;

impl Analyzer for ArgoDegraded {
    fn name(&self) -> &'static str {
        "argocd-degraded"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Application(a) = i.summary else {
                continue;
            };
            if !matches!(a.health.as_deref(), Some("Degraded" | "Missing")) {
                continue;
            }
            let app = obj(i.cluster, "Application", Some(&a.namespace), &a.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &app,
                    format!(
                        "Argo CD application {} is {}",
                        a.name,
                        a.health.clone().unwrap_or_default()
                    ),
                    match a.health_message.as_deref().filter(|m| !m.trim().is_empty()) {
                        Some(m) => format!(
                            "revision {} of {} is unhealthy: {m}",
                            a.revision.clone().unwrap_or_default(),
                            a.repo_url.clone().unwrap_or_default(),
                        ),
                        None => format!(
                            "revision {} of {} is unhealthy (Argo CD gives no message; the workloads it manages say why)",
                            a.revision.clone().unwrap_or_default(),
                            a.repo_url.clone().unwrap_or_default(),
                        ),
                    },
                )
                // No playbook acts on an Application: the fix is a commit in its repository.
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .build(),
            );
        }
        out
    }
}

/// An Argo CD application out of sync (live state drifted from Git, or a sync failed).
struct ArgoOutOfSync;

impl Analyzer for ArgoOutOfSync {
    fn name(&self) -> &'static str {
        "argocd-out-of-sync"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for i in obs.summaries() {
            let Summary::Application(a) = i.summary else {
                continue;
            };
            if a.sync.as_deref() != Some("OutOfSync") {
                continue;
            }
            // The app's Deployment in its destination namespace, and a hand scaling of it.
            let dest_ns = a
                .destination
                .as_deref()
                .and_then(|d| d.rsplit('/').next())
                .filter(|n| !n.is_empty());
            let drifted = dest_ns.and_then(|ns| {
                super::workloads(obs).find(|(j, w)| {
                    j.cluster == i.cluster
                        && w.kind == "Deployment"
                        && w.namespace == ns
                        && w.name == a.name
                })
            });
            let scaled = drifted.and_then(|(_, w)| {
                super::events(obs).find_map(|(_, c, e)| {
                    (c == i.cluster
                        && e.reason == "ScalingReplicaSet"
                        && e.namespace == w.namespace
                        && e.name == w.name)
                        .then(|| e.message.clone())
                })
            });
            let mut b = FindingBuilder::new(
                self.name(),
                &obj(i.cluster, "Application", Some(&a.namespace), &a.name),
                format!("Argo CD application {} is OutOfSync", a.name),
                format!(
                    "drift: the live state differs from {} at {}{}{}",
                    a.repo_url.clone().unwrap_or_default(),
                    a.target_revision.clone().unwrap_or_default(),
                    match (&drifted, &scaled) {
                        (Some((_, w)), Some(m)) => format!(
                            "; Deployment {}/{} runs {} replicas after a scaling outside Git ({m})",
                            w.namespace, w.name, w.desired
                        ),
                        (Some((_, w)), None) => format!(
                            "; Deployment {}/{} was changed outside Git",
                            w.namespace, w.name
                        ),
                        _ => String::new(),
                    },
                    a.operation
                        .as_deref()
                        .map(|o| format!(" (last operation: {o})"))
                        .unwrap_or_default()
                ),
            )
            .confidence(if drifted.is_some() {
                Confidence::MEDIUM
            } else {
                Confidence::LOW
            })
            .call(i.call_id, "k8s_list");
            if let Some((j, w)) = drifted {
                b = b.object(obj(j.cluster, "Deployment", Some(&w.namespace), &w.name));
            }
            if let Some(m) = scaled {
                b = b.quote(m);
            }
            out.push(b.build());
        }
        out
    }
}
