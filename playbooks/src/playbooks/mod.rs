//! Playbooks: typed parameters (with a JSON schema for the agent) → a [`Plan`] made against
//! live state, with a server-side dry-run of every step.
//!
//! One file per playbook family: `gpu` (gpu-rebalance), `rollback`, `failover`,
//! `everyday` (rollout-restart, scale, raise-memory-limit, uncordon), `vm` (restart-vm,
//! migrate-vm). They share [`PlanContext`] and `Draft::finish`, which derives the
//! preconditions from the pinned step targets and runs the dry-runs.

mod everyday;
mod failover;
mod gpu;
mod rollback;
mod vm;

use chrono::{DateTime, Utc};
use medic_approvals::{KubeIdentity, Risk};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use everyday::{RaiseMemoryLimitParams, RolloutRestartParams, ScaleParams, UncordonParams};
pub use failover::{FailoverParams, PlacementPolicy};
pub use gpu::{GpuRebalanceMode, GpuRebalanceParams};
pub use rollback::RollbackParams;
pub use vm::{MigrateVmParams, RestartVmParams};

use crate::error::{Error, Result};
use crate::github::GitHub;
use crate::kube::{ClusterConn, Clusters};
use crate::plan::{BlastRadius, DryRunResult, Plan, PostCheck, Precondition};
use crate::step::{Operation, Step};

/// What a playbook plans with.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// Every configured cluster (medic's own identity).
    pub clusters: Clusters,
    /// The clock (the sandbox's in replays).
    pub now: DateTime<Utc>,
    /// Field manager recorded on patches.
    pub field_manager: String,
    /// Who plan-time dry-runs impersonate (typically the requester); `None`: medic itself,
    /// whose read-only role makes the API server refuse write dry-runs.
    pub dry_run_as: Option<KubeIdentity>,
    /// GitHub, for GitOps-managed workloads.
    pub github: Option<GitHub>,
    /// Placement policy (data residency).
    pub placement: PlacementPolicy,
}

impl PlanContext {
    /// A context with medic's defaults (field manager `medic`, residency policy on).
    pub fn new(clusters: Clusters, now: DateTime<Utc>) -> PlanContext {
        PlanContext {
            clusters,
            now,
            field_manager: "medic".into(),
            dry_run_as: None,
            github: None,
            placement: PlacementPolicy::default(),
        }
    }
}

/// A playbook: a name, a description, typed parameters and a planner.
pub trait Playbook {
    /// The name policies and the CLI use.
    const NAME: &'static str;
    /// Parameters the agent proposes with.
    type Params: DeserializeOwned + Serialize + JsonSchema;
    /// One terse line for the agent's catalogue.
    fn description() -> &'static str;
    /// Reads live state, validates preconditions, dry-runs every step.
    fn plan(
        ctx: &PlanContext,
        params: Self::Params,
    ) -> impl std::future::Future<Output = Result<Plan>> + Send;
}

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogueEntry {
    /// Playbook name.
    pub name: &'static str,
    /// Terse description.
    pub description: &'static str,
    /// JSON schema of the parameters.
    pub parameters: Value,
}

fn entry<P: Playbook>() -> CatalogueEntry {
    CatalogueEntry {
        name: P::NAME,
        description: P::description(),
        parameters: serde_json::to_value(schemars::schema_for!(P::Params)).unwrap_or(Value::Null),
    }
}

/// Every playbook: name, description, parameter schema.
pub fn catalogue() -> Vec<CatalogueEntry> {
    vec![
        entry::<gpu::GpuRebalance>(),
        entry::<rollback::Rollback>(),
        entry::<failover::Failover>(),
        entry::<everyday::RolloutRestart>(),
        entry::<everyday::Scale>(),
        entry::<everyday::RaiseMemoryLimit>(),
        entry::<everyday::Uncordon>(),
        entry::<vm::RestartVm>(),
        entry::<vm::MigrateVm>(),
    ]
}

async fn run<P: Playbook>(ctx: &PlanContext, params: Value) -> Result<Plan> {
    let typed: P::Params =
        serde_json::from_value(params).map_err(|e| Error::params(P::NAME, e.to_string()))?;
    P::plan(ctx, typed).await
}

/// Plans playbook `name` with JSON parameters (as the agent proposes them).
pub async fn propose(ctx: &PlanContext, name: &str, params: Value) -> Result<Plan> {
    match name {
        gpu::GpuRebalance::NAME => run::<gpu::GpuRebalance>(ctx, params).await,
        rollback::Rollback::NAME => run::<rollback::Rollback>(ctx, params).await,
        failover::Failover::NAME => run::<failover::Failover>(ctx, params).await,
        everyday::RolloutRestart::NAME => run::<everyday::RolloutRestart>(ctx, params).await,
        everyday::Scale::NAME => run::<everyday::Scale>(ctx, params).await,
        everyday::RaiseMemoryLimit::NAME => run::<everyday::RaiseMemoryLimit>(ctx, params).await,
        everyday::Uncordon::NAME => run::<everyday::Uncordon>(ctx, params).await,
        vm::RestartVm::NAME => run::<vm::RestartVm>(ctx, params).await,
        vm::MigrateVm::NAME => run::<vm::MigrateVm>(ctx, params).await,
        other => Err(Error::UnknownPlaybook {
            name: other.to_owned(),
            known: catalogue()
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A plan before its dry-run.
pub(crate) struct Draft {
    pub playbook: &'static str,
    pub cluster: String,
    pub title: String,
    pub rationale: String,
    pub params: Value,
    pub steps: Vec<Step>,
    pub undo: Vec<Step>,
    pub risk: Risk,
    pub blast_radius: BlastRadius,
    pub extra_preconditions: Vec<Precondition>,
    pub post_checks: Vec<PostCheck>,
}

impl Draft {
    /// Derives the preconditions and dry-runs every step.
    pub(crate) async fn finish(self, ctx: &PlanContext) -> Result<Plan> {
        let mut preconditions: Vec<Precondition> = Vec::new();
        for s in &self.steps {
            if let Some(t) = s.target().filter(|t| t.resource_version.is_some()) {
                let p = Precondition::Unchanged {
                    cluster: s.cluster.clone(),
                    target: t.clone(),
                };
                if !preconditions.contains(&p) {
                    preconditions.push(p);
                }
            }
        }
        preconditions.extend(self.extra_preconditions);
        let mut dry_run = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let conn = ctx.clusters.get(&s.cluster)?;
            let client = match &ctx.dry_run_as {
                Some(who) => conn.impersonating(who)?,
                None => conn.client().clone(),
            };
            let mut d = dry_run_step(conn, &client, i + 1, s).await?;
            d.deferred = !d.ok && DryRunResult::deferrable(&self.steps, i, d.api_status);
            dry_run.push(d);
        }
        Ok(Plan {
            id: uuid::Uuid::new_v4().to_string(),
            playbook: self.playbook.to_owned(),
            cluster: self.cluster,
            title: self.title,
            rationale: self.rationale,
            params: self.params,
            steps: self.steps,
            undo: self.undo,
            risk: self.risk,
            blast_radius: self.blast_radius,
            preconditions,
            post_checks: self.post_checks,
            dry_run,
            created_at: ctx.now,
        })
    }
}

/// Server-side dry-run of one step through `client`, with a diff against live state
/// (read as medic).
pub(crate) async fn dry_run_step(
    conn: &ClusterConn,
    client: &kube::Client,
    number: usize,
    step: &Step,
) -> Result<DryRunResult> {
    let Some(call) = step.op.http_call(true)? else {
        let diff = match &step.op {
            Operation::RevertPullRequest(pr) => {
                let mut d = format!(
                    "+ pull request on {} {} <- {}: revert {}\n",
                    pr.repo, pr.base, pr.branch, pr.commit
                );
                for f in &pr.files {
                    d.push_str(&format!("+   restore {f} as it was before {}\n", pr.commit));
                }
                d
            }
            _ => String::new(),
        };
        return Ok(DryRunResult {
            step: number,
            ok: true,
            diff,
            api_status: 0,
            message: String::new(),
            deferred: false,
        });
    };
    let resp = conn
        .call(
            client,
            call.method,
            &call.path,
            call.content_type,
            call.body,
        )
        .await?;
    let label = match step.target() {
        Some(t) => t.display(),
        None => match &step.op {
            Operation::Create { object } => crate::step::ObjectRef::of(object).display(),
            _ => step.description.clone(),
        },
    };
    let diff = if !resp.ok() {
        String::new()
    } else {
        match &step.op {
            Operation::Evict { pod } => crate::kube::diff::removed(
                &label,
                &format!(
                    "pod {} evicted (uid {})",
                    pod.name,
                    pod.uid.as_deref().unwrap_or("?")
                ),
            ),
            Operation::Delete { target } => {
                crate::kube::diff::removed(&label, &format!("{} deleted", target.name))
            }
            Operation::Create { .. } => crate::kube::diff::created(&label, &resp.body),
            Operation::Scale { from, replicas, .. } => crate::kube::diff::unified(
                &format!("{label} scale"),
                &serde_json::json!({"spec": {"replicas": from}}),
                &serde_json::json!({"spec": {"replicas": replicas}}),
            ),
            _ => {
                let live = match step.target() {
                    Some(t) => conn
                        .get(&t.api_version, &t.kind, t.namespace.as_deref(), &t.name)
                        .await?
                        .unwrap_or(Value::Null),
                    None => Value::Null,
                };
                crate::kube::diff::unified(&label, &live, &resp.body)
            }
        }
    };
    Ok(DryRunResult {
        step: number,
        ok: resp.ok(),
        diff,
        api_status: resp.status,
        message: if resp.ok() {
            String::new()
        } else {
            resp.message()
        },
        deferred: false,
    })
}

/// The object's label `key`, if set.
pub(crate) fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

/// The object's annotation `key`, if set.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// `matchLabels` of a selector as `k=v,k2=v2`.
pub(crate) fn selector_string(selector: &Value) -> String {
    selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// True when the pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}
