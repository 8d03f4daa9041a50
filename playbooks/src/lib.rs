//! medic-playbooks: findings → exact, dry-run plans → approved execution. The executor here
//! is the only code in medic that mutates a cluster or a repository.
//!
//! # Layout
//!
//! - `plan` / `step`: the [`Plan`] model — typed [`Step`]s ([`Operation`]: patch, cordon,
//!   evict, scale, route weights, create/delete, waits, revert pull requests), each with its
//!   [`medic_approvals::AccessCheck`]; [`Precondition`]s (uid + resourceVersion, branch
//!   heads), [`PostCheck`]s with deadlines, the dry-run diff per step, risk, blast radius and
//!   the undo steps. [`Plan`] implements [`medic_approvals::Approvable`]; its hash is the
//!   [`medic_approvals::PlanHash`] of its canonical JSON (which has no hash field).
//! - `kube`: [`Clusters`] built from a kubeconfig (one context per cluster), raw API calls
//!   that keep the status code and `Audit-Id`, impersonating clients, YAML diffs.
//! - `github`: [`GitHub`] (octocrab, configurable base URL) for revert pull requests.
//! - `playbooks`: one typed parameter struct per playbook (JSON schema for the agent),
//!   [`catalogue`], [`propose`]; every plan is made against live state read as medic, with
//!   a server-side `dryRun=All` of each step.
//! - `executor`: [`Executor::execute`] takes only an
//!   [`medic_approvals::Approved<Plan>`]; it re-checks the approval, pre-flights every
//!   step, then per step writes an intent record, re-checks the target, dry-runs, applies as
//!   the approver, and records the answer; then post-checks, and undo on failure.
//!   [`Executor::resume`] finishes an execution a crash interrupted without applying any
//!   step twice. Both hold `<data dir>/executions/<plan hash>.lock` while they run, so two
//!   executors (two processes, or one plan approved twice) never run one plan at once.

mod error;
mod executor;
mod github;
mod kube;
mod plan;
mod playbooks;
mod step;

pub use error::{Error, Result};
pub use executor::{ExecutionReport, Executor, Outcome, Progress, StepOutcome};
pub use github::{GitHub, PullRef};
pub use kube::{ApiResponse, ClusterConn, ClusterSpec, Clusters, at_path};
pub use plan::{BlastRadius, DryRunResult, Plan, PostCheck, Precondition};
pub use playbooks::{
    CatalogueEntry, FailoverParams, GpuRebalanceMode, GpuRebalanceParams, MigrateVmParams,
    PlacementPolicy, PlanContext, Playbook, RaiseMemoryLimitParams, RestartVmParams,
    RollbackParams, RolloutRestartParams, ScaleParams, UncordonParams, catalogue, propose,
};
pub use step::{Check, ObjectRef, Operation, PatchBody, RevertPr, RouteWeight, Step, Taint};
