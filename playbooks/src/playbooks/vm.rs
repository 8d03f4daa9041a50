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
}

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
        "Live-migrate a running KubeVirt VM off its node (VirtualMachineInstanceMigration)."
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
        let name = format!("medic-migrate-{}-{}", p.vm, ctx.now.format("%Y%m%d%H%M%S"));
        let object = json!({
            "apiVersion": VM, "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": name, "namespace": p.namespace},
            "spec": {"vmiName": p.vm},
        });
        let moved = Check::FieldEquals {
            target: ObjectRef::new(
                VM,
                "VirtualMachineInstanceMigration",
                Some(&p.namespace),
                &name,
            ),
            path: "status.phase".into(),
            value: "Succeeded".into(),
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Live-migrate VM {}/{} off {node}", p.namespace, p.vm),
            rationale: format!("Create a VirtualMachineInstanceMigration so KubeVirt moves the running VM from {node} to another node without a restart."),
            params,
            steps: vec![Step { cluster: p.cluster.clone(), description: format!("create VirtualMachineInstanceMigration {name}"),
                op: Operation::Create { object } }],
            // A finished migration cannot be undone; an unfinished one is cancelled by deleting it.
            undo: vec![Step { cluster: p.cluster.clone(), description: format!("delete migration {name} (cancels it if unfinished)"),
                op: Operation::Delete { target: ObjectRef::new(VM, "VirtualMachineInstanceMigration", Some(&p.namespace), &name) } }],
            risk: Risk::Medium,
            blast_radius: BlastRadius { pods: 1, namespaces: vec![p.namespace.clone()], nodes: vec![node], ..Default::default() },
            extra_preconditions: Vec::new(),
            post_checks: vec![PostCheck { cluster: p.cluster.clone(), description: moved.describe(), check: moved, deadline_seconds: 900 }],
        }
        .finish(ctx)
        .await
    }
}
