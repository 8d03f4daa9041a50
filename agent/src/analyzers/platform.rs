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
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, &v.kind, Some(&v.namespace), &v.name),
                    format!("{} {}/{} is {}", v.kind, v.namespace, v.name, v.status),
                    format!("the VM is {} {why}", v.status),
                )
                .confidence(Confidence::HIGH)
                .call(i.call_id, "k8s_list")
                .suggest("restart-vm", json!({}), Some(vm.clone()))
                .build(),
            );
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
            let Some(m) = &v.migration else { continue };
            let stuck = !m.completed
                && m.ended.is_none()
                && m.started
                    .as_deref()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .is_some_and(|t| (obs.now - t.with_timezone(&chrono::Utc)).num_minutes() >= 15);
            if !m.failed && !stuck {
                continue;
            }
            let state = if m.failed {
                "failed"
            } else {
                "has been running for over 15 minutes"
            };
            let vm = obj(i.cluster, "VirtualMachine", Some(&v.namespace), &v.name);
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, &v.kind, Some(&v.namespace), &v.name),
                    format!("live migration of {}/{} {state}", v.namespace, v.name),
                    format!(
                        "migration from {} to {} {state}",
                        m.source_node.clone().unwrap_or_else(|| "?".into()),
                        m.target_node.clone().unwrap_or_else(|| "?".into())
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .suggest("migrate-vm", json!({}), Some(vm.clone()))
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
                    format!(
                        "revision {} of {} is unhealthy: {}",
                        a.revision.clone().unwrap_or_default(),
                        a.repo_url.clone().unwrap_or_default(),
                        a.health_message.clone().unwrap_or_default()
                    ),
                )
                .confidence(Confidence::MEDIUM)
                .call(i.call_id, "k8s_list")
                .suggest(
                    "rollback",
                    json!({"gitops": true, "repo": a.repo_url, "revision": a.revision}),
                    Some(app.clone()),
                )
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
            out.push(
                FindingBuilder::new(
                    self.name(),
                    &obj(i.cluster, "Application", Some(&a.namespace), &a.name),
                    format!("Argo CD application {} is OutOfSync", a.name),
                    format!(
                        "the live state differs from {} at {}{}",
                        a.repo_url.clone().unwrap_or_default(),
                        a.target_revision.clone().unwrap_or_default(),
                        a.operation
                            .as_deref()
                            .map(|o| format!(" (last operation: {o})"))
                            .unwrap_or_default()
                    ),
                )
                .confidence(Confidence::LOW)
                .call(i.call_id, "k8s_list")
                .build(),
            );
        }
        out
    }
}
