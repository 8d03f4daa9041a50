//! KubeVirt: restart a VirtualMachine (runStrategy patch cycle) or live-migrate its
//! instance (VirtualMachineInstanceMigration).

use medic_approvals::Risk;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Draft, PlanContext, Playbook};
use crate::error::{Error, Result};
use crate::plan::{BlastRadius, Plan, PostCheck};
use crate::step::{Check, ObjectRef, Operation, PatchBody, Step};

/// Parameters of restart-vm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartVmParams {
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// VirtualMachine name.
    pub vm: String,
}

/// Parameters of migrate-vm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateVmParams {
    /// Cluster.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// VirtualMachine (and instance) name.
    pub vm: String,
    /// An unfinished migration of this VM older than this many minutes counts as stuck and
    /// is cancelled first (default 10); a younger one makes the plan wait for it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_after_minutes: Option<u32>,
}

/// Minutes an unfinished migration may take before migrate-vm calls it stuck.
const STUCK_AFTER_MINUTES: u32 = 10;

/// Label medic puts on the migrations it creates.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub(crate) struct RestartVm;
pub(crate) struct MigrateVm;

const VM: &str = "kubevirt.io/v1";

impl Playbook for RestartVm {
    const NAME: &'static str = "restart-vm";
    type Params = RestartVmParams;

    fn description() -> &'static str {
        "Restart a KubeVirt VirtualMachine: runStrategy Halted, wait stopped, back to its running strategy."
    }

    async fn plan(ctx: &PlanContext, p: RestartVmParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let vm = conn
            .must_get(VM, "VirtualMachine", Some(&p.namespace), &p.vm)
            .await?;
        let r = ObjectRef::of(&vm);
        let strategy = vm["spec"]["runStrategy"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if vm["spec"]["running"] == true {
                    "Always".into()
                } else {
                    "Halted".into()
                }
            });
        if strategy == "Halted" {
            return Err(Error::Precondition(format!(
                "{} is halted; restarting it would start it, which is not a restart",
                r.display()
            )));
        }
        let set = |s: &str| {
            // `running` and `runStrategy` are mutually exclusive; clear the legacy field.
            PatchBody::Merge(json!({"spec": {"runStrategy": s, "running": null}}))
        };
        let stopped = Check::FieldEquals {
            target: r.unpinned(),
            path: "status.printableStatus".into(),
            value: "Stopped".into(),
        };
        let running = Check::FieldEquals {
            target: r.unpinned(),
            path: "status.printableStatus".into(),
            value: "Running".into(),
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Restart VM {} on {}", r.display(), p.cluster),
            rationale: format!("Stop the VM by setting runStrategy Halted, wait until it is stopped, then restore runStrategy {strategy}."),
            params,
            steps: vec![
                Step { cluster: p.cluster.clone(), description: format!("set runStrategy Halted on {}", r.display()),
                    op: Operation::Patch { target: r.clone(), patch: set("Halted"), field_manager: ctx.field_manager.clone() } },
                Step { cluster: p.cluster.clone(), description: "wait until the VM is stopped".into(),
                    op: Operation::WaitFor { check: stopped, timeout_seconds: 300 } },
                Step { cluster: p.cluster.clone(), description: format!("restore runStrategy {strategy}"),
                    op: Operation::Patch { target: r.unpinned(), patch: set(&strategy), field_manager: ctx.field_manager.clone() } },
            ],
            undo: vec![Step { cluster: p.cluster.clone(), description: format!("set runStrategy {strategy}"),
                op: Operation::Patch { target: r.unpinned(), patch: set(&strategy), field_manager: ctx.field_manager.clone() } }],
            risk: Risk::Medium,
            blast_radius: BlastRadius { pods: 1, namespaces: vec![p.namespace.clone()], ..Default::default() },
            extra_preconditions: Vec::new(),
            post_checks: vec![PostCheck { cluster: p.cluster.clone(), description: running.describe(), check: running, deadline_seconds: 600 }],
        }
        .finish(ctx)
        .await
    }
}

impl Playbook for MigrateVm {
    const NAME: &'static str = "migrate-vm";
    type Params = MigrateVmParams;

    fn description() -> &'static str {
        "Live-migrate a running KubeVirt VM off its node (VirtualMachineInstanceMigration), cancelling a stuck migration of it first."
    }

    async fn plan(ctx: &PlanContext, p: MigrateVmParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let vmi = conn
            .must_get(VM, "VirtualMachineInstance", Some(&p.namespace), &p.vm)
            .await?;
        if vmi["status"]["phase"] != "Running" {
            return Err(Error::Precondition(format!(
                "VirtualMachineInstance {}/{} is not Running",
                p.namespace, p.vm
            )));
        }
        let node = vmi["status"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stuck_after = p.stuck_after_minutes.unwrap_or(STUCK_AFTER_MINUTES);
        let migrations = conn
            .list(
                VM,
                "VirtualMachineInstanceMigration",
                Some(&p.namespace),
                None,
                None,
            )
            .await?;
        let mut stuck = Vec::new();
        for m in migrations.iter().filter(|m| in_flight(m, &p.vm)) {
            let since = last_transition(m);
            let minutes = since.map(|t| (ctx.now - t).num_minutes()).unwrap_or(0);
            let phase = m["status"]["phase"].as_str().unwrap_or("Pending");
            let name = m["metadata"]["name"].as_str().unwrap_or_default();
            if minutes < i64::from(stuck_after) {
                return Err(Error::Precondition(format!(
                    "migration {name} of VM {}/{} is in flight (phase {phase} for {minutes} min); \
                     wait for it to finish, or set stuck_after_minutes to {minutes} or less to cancel it",
                    p.namespace, p.vm
                )));
            }
            stuck.push((m, phase.to_owned(), minutes));
        }

        let name = format!("medic-migrate-{}-{}", p.vm, ctx.now.format("%Y%m%d%H%M%S"));
        let object = json!({
            "apiVersion": VM, "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": name, "namespace": p.namespace, "labels": {MANAGED_BY: "medic"}},
            "spec": {"vmiName": p.vm},
        });
        let created = ObjectRef::new(
            VM,
            "VirtualMachineInstanceMigration",
            Some(&p.namespace),
            &name,
        );
        let moved = Check::FieldEquals {
            target: created.clone(),
            path: "status.phase".into(),
            value: "Succeeded".into(),
        };
        let mut steps = Vec::new();
        let mut why_cancel = String::new();
        for (m, phase, minutes) in &stuck {
            let r = ObjectRef::of(m);
            let pin = match m["spec"]["addedNodeSelector"].as_object() {
                Some(sel) if !sel.is_empty() => format!(
                    ", pinned by addedNodeSelector {}",
                    sel.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                _ => String::new(),
            };
            why_cancel.push_str(&format!(
                "Migration {} has been in phase {phase} for {minutes} min{pin}: it is stuck, and KubeVirt runs one migration per VM at a time, so it is deleted first (KubeVirt aborts it; the VM keeps running on {node}). ",
                r.name
            ));
            steps.push(Step {
                cluster: p.cluster.clone(),
                description: format!(
                    "delete stuck migration {} (phase {phase} for {minutes} min); KubeVirt aborts it",
                    r.name
                ),
                op: Operation::Delete { target: r.clone() },
            });
            steps.push(Step {
                cluster: p.cluster.clone(),
                description: format!("wait until migration {} is gone", r.name),
                op: Operation::WaitFor {
                    check: Check::Gone {
                        target: r.unpinned(),
                    },
                    timeout_seconds: 180,
                },
            });
        }
        steps.push(Step {
            cluster: p.cluster.clone(),
            description: format!("create VirtualMachineInstanceMigration {name}"),
            op: Operation::Create { object },
        });
        let title = if stuck.is_empty() {
            format!("Live-migrate VM {}/{} off {node}", p.namespace, p.vm)
        } else {
            format!(
                "Cancel the stuck migration of VM {}/{} and live-migrate it off {node}",
                p.namespace, p.vm
            )
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title,
            rationale: format!("{why_cancel}Create a VirtualMachineInstanceMigration without a node pin so KubeVirt moves the running VM from {node} to a node the scheduler finds suitable, without a restart."),
            params,
            steps,
            // A finished migration cannot be undone; an unfinished one is cancelled by
            // deleting it. A cancelled stuck migration is not re-created: it could not finish.
            undo: vec![Step { cluster: p.cluster.clone(), description: format!("delete migration {name} (cancels it if unfinished)"),
                op: Operation::Delete { target: created } }],
            risk: Risk::Medium,
            blast_radius: BlastRadius { pods: 1, namespaces: vec![p.namespace.clone()], nodes: vec![node], ..Default::default() },
            extra_preconditions: Vec::new(),
            post_checks: vec![PostCheck { cluster: p.cluster.clone(), description: moved.describe(), check: moved, deadline_seconds: 900 }],
        }
        .finish(ctx)
        .await
    }
}

/// An unfinished migration of VMI `vm` (KubeVirt's final phases are Succeeded and Failed).
fn in_flight(m: &serde_json::Value, vm: &str) -> bool {
    m["spec"]["vmiName"] == vm
        && !matches!(m["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// When a migration last changed phase (its creation when it never did).
fn last_transition(m: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let parse = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    m["status"]["phaseTransitionTimestamps"]
        .as_array()
        .and_then(|ts| {
            ts.iter()
                .filter_map(|t| parse(&t["phaseTransitionTimestamp"]))
                .max()
        })
        .or_else(|| parse(&m["metadata"]["creationTimestamp"]))
}
