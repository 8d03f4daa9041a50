//! The executor: the only code path in medic that mutates a cluster or a repository.
//!
//! It accepts only an [`Approved<Plan>`]. Order of work, every step in the audit log first:
//!
//! 1. [`ApprovalBook::recheck`] (hash, expiry, freeze, roles, SubjectAccessReviews as the
//!    approvers); a refusal there executes nothing.
//! 2. Pre-flight: every precondition (uid + resourceVersion, branch heads) and a dry-run of
//!    every step as the approver; any failure executes nothing.
//! 3. Per step: `execution_intent` record → the step's target re-checked → dry-run → apply
//!    impersonating the approver → `step_applied` with the status and `Audit-Id`. A 409 (the
//!    object changed), 429 (a disruption budget) or 403 stops: no retry, no force.
//! 4. Post-checks polled with backoff until their deadlines (as medic); on failure the undo
//!    steps run, each recorded.
//!
//! [`Executor::resume`] (module `resume`) replays the records of an approval and finishes it
//! without applying any step twice. Both entry points first take the plan's execution lock
//! (an `flock` under the data directory); while another executor holds it they refuse.

mod checks;
mod resume;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use medic_approvals::audit::{RecordDraft, RecordKind};
use medic_approvals::{ApprovalBook, Approved, KubeIdentity};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::github::GitHub;
use crate::kube::{ApiResponse, Clusters};
use crate::plan::{DryRunResult, Plan, Precondition};
use crate::playbooks::dry_run_step;
use crate::step::{Operation, Step};

/// Actor string on every record the executor writes.
pub(crate) const ACTOR: &str = "medic:executor";

/// Which list of steps a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The plan's steps.
    Step,
    /// The undo steps.
    Undo,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepOutcome {
    /// Applied; the API server's status and `Audit-Id`.
    Applied {
        /// HTTP status (0 for a pull request).
        status: u16,
        /// `Audit-Id` header, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audit_id: Option<String>,
        /// Short detail (pull request URL, new resourceVersion).
        detail: String,
    },
    /// Found already in effect when resuming after a crash; not applied again.
    AlreadyApplied,
    /// A wait whose condition held.
    Waited {
        /// What was seen.
        detail: String,
    },
    /// Failed; execution stopped here.
    Failed {
        /// HTTP status (0 when there was no API answer).
        status: u16,
        /// Why.
        reason: String,
    },
}

/// Progress events for the agent's session protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// Execution starts (after the re-check and pre-flight passed).
    Started {
        /// Approval id.
        approval_id: String,
        /// Number of steps.
        steps: usize,
        /// Who is impersonated.
        as_user: String,
    },
    /// Nothing was executed, and why.
    Refused {
        /// Why.
        reason: String,
    },
    /// A step starts.
    StepStarted {
        /// Which list.
        phase: Phase,
        /// 1-based step.
        step: usize,
        /// What it does.
        description: String,
    },
    /// A step ended.
    StepFinished {
        /// Which list.
        phase: Phase,
        /// 1-based step.
        step: usize,
        /// How.
        outcome: StepOutcome,
    },
    /// A post-check result.
    PostCheck {
        /// What was checked.
        description: String,
        /// Whether it held before its deadline.
        passed: bool,
        /// What was seen.
        detail: String,
    },
    /// Undo starts.
    UndoStarted {
        /// Why.
        reason: String,
    },
    /// Execution ended.
    Finished {
        /// How.
        outcome: Outcome,
    },
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every step applied and every post-check passed.
    Succeeded,
    /// Nothing was executed.
    Refused {
        /// Why.
        reason: String,
    },
    /// A step failed; the steps before it stay applied; nothing was forced or retried.
    Stopped {
        /// 1-based step that failed.
        step: usize,
        /// Why, and what to do.
        reason: String,
    },
    /// A post-check (or a wait) failed and the undo steps ran.
    RolledBack {
        /// Why.
        reason: String,
        /// True when every undo step applied.
        undo_ok: bool,
    },
}

impl Outcome {
    /// True for [`Outcome::Succeeded`].
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

/// What an execution did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Approval id.
    pub approval_id: String,
    /// Plan id.
    pub plan_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Step results, in order (only the steps that were reached).
    pub steps: Vec<(usize, StepOutcome)>,
    /// Post-check results: description, passed, detail.
    pub post_checks: Vec<(String, bool, String)>,
    /// Undo step results.
    pub undo: Vec<(usize, StepOutcome)>,
}

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Executes approved plans.
#[derive(Clone)]
pub struct Executor {
    clusters: Clusters,
    book: Arc<ApprovalBook>,
    github: Option<GitHub>,
    clock: Clock,
    progress: Option<UnboundedSender<Progress>>,
    post_check_cap: Option<Duration>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("clusters", &self.clusters.names())
            .finish_non_exhaustive()
    }
}

/// The per-plan execution lock (an exclusive `flock`), released when dropped.
pub(crate) struct PlanLock {
    _file: std::fs::File,
}

/// Per-run state shared by the step loop, the post-checks and undo.
pub(crate) struct Run<'a> {
    pub approved: &'a Approved<Plan>,
    pub report: ExecutionReport,
}

impl Executor {
    /// An executor over `clusters` recording into `book`'s audit log; wall-clock time.
    pub fn new(clusters: Clusters, book: Arc<ApprovalBook>) -> Executor {
        Executor {
            clusters,
            book,
            github: None,
            clock: Arc::new(Utc::now),
            progress: None,
            post_check_cap: None,
        }
    }

    /// Uses this clock for re-checks and records (the sandbox's in replays).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Executor {
        self.clock = Arc::new(clock);
        self
    }

    /// GitHub, for revert pull requests.
    pub fn with_github(mut self, github: GitHub) -> Executor {
        self.github = Some(github);
        self
    }

    /// Caps every post-check deadline at `cap`. For replays and evals, where the sandbox's
    /// reactions settle in seconds and a check that has not held by then never will; a
    /// live cluster keeps each plan's own deadline.
    pub fn with_post_check_cap(mut self, cap: Duration) -> Executor {
        self.post_check_cap = Some(cap);
        self
    }

    /// Sends [`Progress`] events to `tx`.
    pub fn with_progress(mut self, tx: UnboundedSender<Progress>) -> Executor {
        self.progress = Some(tx);
        self
    }

    fn emit(&self, p: Progress) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(p);
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Appends one record correlated with the approval; returns once it is fsynced.
    pub(crate) async fn record(
        &self,
        approved: &Approved<Plan>,
        kind: RecordKind,
        payload: Value,
    ) -> Result<()> {
        let draft = RecordDraft::new(self.now(), ACTOR, kind, payload)
            .approval(approved.approval_id())
            .plan_hash(approved.plan_hash().as_str())
            .proposal(approved.plan().id.clone());
        self.book.record(draft).await?;
        Ok(())
    }

    /// Executes an approved plan. Errors are infrastructure failures (audit log, API
    /// unreachable); refusals and failed steps are [`Outcome`]s, all recorded. While
    /// another executor (this process or another) runs the very same plan, it is refused.
    pub async fn execute(&self, approved: &Approved<Plan>) -> Result<ExecutionReport> {
        let Some(_lock) = self.lock_plan(approved).await? else {
            return self.busy(approved).await;
        };
        self.execute_locked(approved).await
    }

    pub(crate) async fn execute_locked(
        &self,
        approved: &Approved<Plan>,
    ) -> Result<ExecutionReport> {
        let mut run = self.start(approved);
        if let Some(reason) = self.gate(approved, 1).await? {
            return self.finish(run, Outcome::Refused { reason }).await;
        }
        self.emit(Progress::Started {
            approval_id: approved.approval_id().to_owned(),
            steps: approved.plan().steps.len(),
            as_user: approved.impersonate().user.clone(),
        });
        let outcome = self.run_from(&mut run, 1, &Default::default()).await?;
        self.finish(run, outcome).await
    }

    /// Takes `<data dir>/executions/<plan hash>.lock` without waiting; `None` when another
    /// executor holds it. A plan is pinned to exact object versions and resumed by its
    /// hash, so two executors of one plan could each see a step "intended, not applied"
    /// and both apply it; the lock makes one of them stand down. The OS drops the lock
    /// when the holder exits, kill -9 included.
    pub(crate) async fn lock_plan(&self, approved: &Approved<Plan>) -> Result<Option<PlanLock>> {
        let dir = self
            .book
            .audit()
            .path()
            .parent()
            .map(|d| d.join("executions"))
            .unwrap_or_else(|| std::path::PathBuf::from("executions"));
        let path = dir.join(format!("{}.lock", approved.plan_hash().as_str()));
        tokio::task::spawn_blocking(move || -> Result<Option<PlanLock>> {
            let io = |op, e| Error::Io {
                op,
                path: path.clone(),
                source: e,
            };
            std::fs::create_dir_all(&dir).map_err(|e| io("create the directory of", e))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io("open", e))?;
            match file.try_lock() {
                Ok(()) => Ok(Some(PlanLock { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(io("lock", e)),
            }
        })
        .await
        .map_err(|e| Error::Precondition(format!("the execution lock task failed: {e}")))?
    }

    /// Refuses (recorded) an execution whose plan another executor is running.
    pub(crate) async fn busy(&self, approved: &Approved<Plan>) -> Result<ExecutionReport> {
        let reason = "another medic executor is running this very plan right now; nothing was executed here — its progress is in the audit log".to_owned();
        self.refuse(approved, "lock", None, &reason).await?;
        let run = self.start(approved);
        self.finish(run, Outcome::Refused { reason }).await
    }

    pub(crate) fn start<'a>(&self, approved: &'a Approved<Plan>) -> Run<'a> {
        Run {
            approved,
            report: ExecutionReport {
                approval_id: approved.approval_id().to_owned(),
                plan_id: approved.plan().id.clone(),
                outcome: Outcome::Succeeded,
                steps: Vec::new(),
                post_checks: Vec::new(),
                undo: Vec::new(),
            },
        }
    }

    /// The re-check and the pre-flight of steps `first..`. `Some(reason)` refuses (recorded).
    pub(crate) async fn gate(
        &self,
        approved: &Approved<Plan>,
        first: usize,
    ) -> Result<Option<String>> {
        match self.book.recheck(approved, self.now()).await {
            Ok(()) => {}
            // The book recorded the refusal itself.
            Err(medic_approvals::Error::Refused { refusal, .. }) => {
                return Ok(Some(refusal.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        let plan = approved.plan();
        let remaining: Vec<&Step> = plan.steps.iter().skip(first - 1).collect();
        for pre in &plan.preconditions {
            let relevant = match pre {
                Precondition::Unchanged { target, .. } => {
                    remaining.iter().any(|s| s.target() == Some(target))
                }
                Precondition::BranchAt { .. } => true,
            };
            if !relevant {
                continue;
            }
            if let Some(why) = self.precondition_fails(pre).await? {
                let reason = format!("{why}; nothing was executed — ask for a new proposal");
                self.refuse(approved, "preflight", None, &reason).await?;
                return Ok(Some(reason));
            }
        }
        for (i, step) in plan.steps.iter().enumerate().skip(first - 1) {
            let conn = self.clusters.get(&step.cluster)?;
            let client = conn.impersonating(approved.impersonate())?;
            let dry = dry_run_step(conn, &client, i + 1, step).await?;
            // Refused for state an earlier step changes: dry-run again before it runs.
            if !dry.ok && !DryRunResult::deferrable(&plan.steps, i, dry.api_status) {
                let reason = format!(
                    "the dry-run of step {} as {} was refused ({}): {}; nothing was executed",
                    i + 1,
                    approved.impersonate().user,
                    dry.api_status,
                    dry.message
                );
                self.refuse(approved, "preflight", Some(i + 1), &reason)
                    .await?;
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    async fn precondition_fails(&self, pre: &Precondition) -> Result<Option<String>> {
        match pre {
            Precondition::Unchanged { cluster, target } => {
                checks::unchanged(self.clusters.get(cluster)?, target).await
            }
            Precondition::BranchAt { repo, branch, sha } => {
                let gh = self.github.as_ref().ok_or_else(|| {
                    Error::Precondition(
                        "the plan opens a pull request but no GitHub client is configured".into(),
                    )
                })?;
                let head = gh.branch_head(repo, branch).await?;
                Ok((head != *sha)
                    .then(|| format!("{repo} branch {branch} moved from {sha} to {head}")))
            }
        }
    }

    async fn refuse(
        &self,
        approved: &Approved<Plan>,
        stage: &str,
        step: Option<usize>,
        reason: &str,
    ) -> Result<()> {
        self.record(
            approved,
            RecordKind::Refusal,
            json!({"stage": stage, "step": step, "reason": reason}),
        )
        .await?;
        self.emit(Progress::Refused {
            reason: reason.to_owned(),
        });
        Ok(())
    }

    /// Runs steps `first..` (skipping those in `done`), then the post-checks, then undo on
    /// failure.
    pub(crate) async fn run_from(
        &self,
        run: &mut Run<'_>,
        first: usize,
        done: &std::collections::HashSet<usize>,
    ) -> Result<Outcome> {
        let approved = run.approved;
        let who = approved.impersonate().clone();
        for (i, step) in approved.plan().steps.iter().enumerate().skip(first - 1) {
            let n = i + 1;
            if done.contains(&n) {
                continue;
            }
            match self.run_step(approved, &who, Phase::Step, n, step).await? {
                o @ (StepOutcome::Applied { .. } | StepOutcome::AlreadyApplied) => {
                    run.report.steps.push((n, o))
                }
                StepOutcome::Waited { detail } => {
                    run.report.steps.push((n, StepOutcome::Waited { detail }))
                }
                StepOutcome::Failed { status, reason } => {
                    run.report.steps.push((
                        n,
                        StepOutcome::Failed {
                            status,
                            reason: reason.clone(),
                        },
                    ));
                    if matches!(step.op, Operation::WaitFor { .. }) {
                        return self
                            .undo(run, format!("step {n} did not complete: {reason}"))
                            .await;
                    }
                    return Ok(Outcome::Stopped { step: n, reason });
                }
            }
        }
        self.post_checks(run).await
    }

    /// One step: intent record, target re-check, dry-run, apply as `who`, outcome record.
    pub(crate) async fn run_step(
        &self,
        approved: &Approved<Plan>,
        who: &KubeIdentity,
        phase: Phase,
        n: usize,
        step: &Step,
    ) -> Result<StepOutcome> {
        self.emit(Progress::StepStarted {
            phase,
            step: n,
            description: step.description.clone(),
        });
        // The span carries the ids the audit records carry, so logs and records join up.
        let span = tracing::info_span!("execution_step", approval_id = %approved.approval_id(), plan_id = %approved.plan().id, phase = ?phase, step = n);
        let outcome = self
            .step_inner(approved, who, phase, n, step)
            .instrument(span.clone())
            .await?;
        span.in_scope(|| match &outcome {
            StepOutcome::Failed { status, reason } => {
                tracing::warn!(status, %reason, "step failed")
            }
            other => tracing::info!(outcome = ?other, "step done"),
        });
        let kind = match phase {
            Phase::Step => RecordKind::StepApplied,
            Phase::Undo => RecordKind::Undo,
        };
        self.record(
            approved,
            kind,
            json!({"phase": phase, "step": n, "as_user": who.user, "outcome": outcome}),
        )
        .await?;
        self.emit(Progress::StepFinished {
            phase,
            step: n,
            outcome: outcome.clone(),
        });
        Ok(outcome)
    }

    async fn step_inner(
        &self,
        approved: &Approved<Plan>,
        who: &KubeIdentity,
        phase: Phase,
        n: usize,
        step: &Step,
    ) -> Result<StepOutcome> {
        let conn = self.clusters.get(&step.cluster)?;
        if let Operation::WaitFor {
            check,
            timeout_seconds,
        } = &step.op
        {
            let (ok, detail) =
                checks::poll(conn, check, Duration::from_secs(*timeout_seconds)).await;
            return Ok(if ok {
                StepOutcome::Waited { detail }
            } else {
                StepOutcome::Failed {
                    status: 0,
                    reason: format!("{} did not hold: {detail}", check.describe()),
                }
            });
        }
        // Written and fsynced before anything is sent.
        self.record(
            approved,
            RecordKind::ExecutionIntent,
            json!({"phase": phase, "step": n, "cluster": step.cluster, "description": step.description, "as_user": who.user, "as_groups": who.groups, "target": step.target(), "access": step.access().ok().flatten()}),
        )
        .await?;
        if let Operation::RevertPullRequest(pr) = &step.op {
            let gh = self
                .github
                .as_ref()
                .ok_or_else(|| Error::Precondition("no GitHub client is configured".into()))?;
            return Ok(match gh.open_revert(pr).await {
                Ok(pull) => StepOutcome::Applied {
                    status: 201,
                    audit_id: None,
                    detail: format!("pull request #{} {}", pull.number, pull.url),
                },
                Err(e) => StepOutcome::Failed {
                    status: 0,
                    reason: e.to_string(),
                },
            });
        }
        if let Some(target) = step.target()
            && let Some(why) = checks::unchanged(conn, target).await?
        {
            return Ok(StepOutcome::Failed {
                status: 409,
                reason: format!("{why}; stopped without applying — ask for a new proposal"),
            });
        }
        let client = conn.impersonating(who)?;
        let dry = dry_run_step(conn, &client, n, step).await?;
        if !dry.ok {
            return Ok(StepOutcome::Failed {
                status: dry.api_status,
                reason: failure_reason(dry.api_status, &dry.message, &who.user),
            });
        }
        let Some(call) = step.op.http_call(false)? else {
            return Ok(StepOutcome::Waited {
                detail: String::new(),
            });
        };
        let resp = conn
            .call(
                &client,
                call.method,
                &call.path,
                call.content_type,
                call.body,
            )
            .await?;
        Ok(outcome_of(&resp, &who.user))
    }

    async fn post_checks(&self, run: &mut Run<'_>) -> Result<Outcome> {
        let plan = run.approved.plan();
        // Checks run concurrently so one slow check does not eat another's deadline.
        let mut tasks = Vec::new();
        for c in &plan.post_checks {
            let conn = self.clusters.get(&c.cluster)?.clone();
            let check = c.check.clone();
            let mut deadline = Duration::from_secs(c.deadline_seconds);
            if let Some(cap) = self.post_check_cap {
                deadline = deadline.min(cap);
            }
            tasks.push(tokio::spawn(async move {
                checks::poll(&conn, &check, deadline).await
            }));
        }
        let mut failed = Vec::new();
        for (c, t) in plan.post_checks.iter().zip(tasks) {
            let (passed, detail) = t
                .await
                .unwrap_or_else(|e| (false, format!("check task failed: {e}")));
            self.record(
                run.approved,
                RecordKind::PostCheck,
                json!({"description": c.description, "passed": passed, "detail": detail}),
            )
            .await?;
            self.emit(Progress::PostCheck {
                description: c.description.clone(),
                passed,
                detail: detail.clone(),
            });
            if !passed {
                failed.push(format!("{} ({detail})", c.description));
            }
            run.report
                .post_checks
                .push((c.description.clone(), passed, detail));
        }
        if failed.is_empty() {
            return Ok(Outcome::Succeeded);
        }
        self.undo(run, format!("post-check failed: {}", failed.join("; ")))
            .await
    }

    pub(crate) async fn undo(&self, run: &mut Run<'_>, reason: String) -> Result<Outcome> {
        self.emit(Progress::UndoStarted {
            reason: reason.clone(),
        });
        self.record(
            run.approved,
            RecordKind::Undo,
            json!({"undo": "started", "reason": reason}),
        )
        .await?;
        let who = run.approved.impersonate().clone();
        let mut undo_ok = true;
        for (i, step) in run.approved.plan().undo.iter().enumerate() {
            let o = self
                .run_step(run.approved, &who, Phase::Undo, i + 1, step)
                .await?;
            let failed = matches!(o, StepOutcome::Failed { .. });
            run.report.undo.push((i + 1, o));
            if failed {
                undo_ok = false;
                break;
            }
        }
        Ok(Outcome::RolledBack { reason, undo_ok })
    }

    pub(crate) async fn finish(
        &self,
        mut run: Run<'_>,
        outcome: Outcome,
    ) -> Result<ExecutionReport> {
        self.record(
            run.approved,
            RecordKind::Other("execution_finished".into()),
            json!({"outcome": outcome}),
        )
        .await?;
        self.emit(Progress::Finished {
            outcome: outcome.clone(),
        });
        run.report.outcome = outcome;
        Ok(run.report)
    }
}

fn failure_reason(status: u16, message: &str, user: &str) -> String {
    match status {
        409 => format!(
            "the object changed since approval (409: {message}); stopped without retrying — ask for a new proposal"
        ),
        429 => format!(
            "a PodDisruptionBudget refused the eviction (429: {message}); stopped — nothing is forced; retry once replacements are Ready"
        ),
        403 => format!("forbidden as {user} (403: {message})"),
        s => format!("the API server answered {s}: {message}"),
    }
}

fn outcome_of(resp: &ApiResponse, user: &str) -> StepOutcome {
    if resp.ok() {
        let rv = resp.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        StepOutcome::Applied {
            status: resp.status,
            audit_id: resp.audit_id.clone(),
            detail: if rv.is_empty() {
                resp.body["status"].as_str().unwrap_or("ok").to_owned()
            } else {
                format!("resourceVersion {rv}")
            },
        }
    } else {
        StepOutcome::Failed {
            status: resp.status,
            reason: failure_reason(resp.status, &resp.message(), user),
        }
    }
}
