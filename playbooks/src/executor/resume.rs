//! Resuming after a crash: the audit log says which steps were intended and which
//! finished; live state decides the ones in between. No step is ever applied twice.

use std::collections::{HashMap, HashSet};

use medic_approvals::Approved;
use medic_approvals::audit::{ExportFilter, RecordKind, export};
use serde_json::json;

use super::{ExecutionReport, Executor, Outcome, Phase, Progress, StepOutcome, checks};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// What the log says about one approval's execution.
#[derive(Debug, Default)]
struct Recorded {
    intents: HashSet<(Phase, usize)>,
    outcomes: HashMap<(Phase, usize), StepOutcome>,
    undo_reason: Option<String>,
    finished: Option<Outcome>,
}

/// Reads the executor's records of every execution of the plan with `plan_hash`: a plan
/// is pinned to exact object versions, so a second approval of the very same plan
/// continues the first execution rather than starting over.
fn read(path: &std::path::Path, plan_hash: &str) -> Result<Recorded> {
    let mut r = Recorded::default();
    for rec in export(path, ExportFilter::default())? {
        let rec = rec?;
        if rec.actor != super::ACTOR || rec.plan_hash.as_deref() != Some(plan_hash) {
            continue;
        }
        let p = &rec.payload;
        let key = || -> Option<(Phase, usize)> {
            let phase: Phase = serde_json::from_value(p["phase"].clone()).ok()?;
            Some((phase, p["step"].as_u64()? as usize))
        };
        match &rec.kind {
            RecordKind::ExecutionIntent => {
                if let Some(k) = key() {
                    r.intents.insert(k);
                }
            }
            RecordKind::StepApplied | RecordKind::Undo => {
                if p["undo"] == "started" {
                    r.undo_reason = p["reason"].as_str().map(str::to_owned);
                } else if let Some(k) = key()
                    && let Ok(o) = serde_json::from_value::<StepOutcome>(p["outcome"].clone())
                {
                    r.outcomes.insert(k, o);
                }
            }
            RecordKind::Other(k) if k == "execution_finished" => {
                r.finished = serde_json::from_value(p["outcome"].clone()).ok();
            }
            _ => {}
        }
    }
    Ok(r)
}

impl Executor {
    /// Finishes an execution of `approved`'s plan that a crash interrupted (or starts it,
    /// when the log shows it never started). The log is searched by plan hash, so a new
    /// approval of the same plan after a crash continues where the old one stopped. Steps with an outcome record are skipped; a step with an
    /// intent but no outcome is checked against live state: if its effect is there it is
    /// recorded as already applied, otherwise it runs (its target re-checked first, so a
    /// changed object stops instead). A finished execution is reported, not re-run.
    pub async fn resume(&self, approved: &Approved<Plan>) -> Result<ExecutionReport> {
        let Some(_lock) = self.lock_plan(approved).await? else {
            return self.busy(approved).await;
        };
        let path = self.book.audit().path().to_owned();
        let hash = approved.plan_hash().as_str().to_owned();
        let recorded = tokio::task::spawn_blocking(move || read(&path, &hash))
            .await
            .map_err(|e| Error::Precondition(format!("reading the audit log failed: {e}")))??;
        let mut run = self.start(approved);
        if let Some(outcome) = recorded.finished {
            for ((phase, n), o) in &recorded.outcomes {
                match phase {
                    Phase::Step => run.report.steps.push((*n, o.clone())),
                    Phase::Undo => run.report.undo.push((*n, o.clone())),
                }
            }
            run.report.steps.sort_by_key(|s| s.0);
            run.report.undo.sort_by_key(|s| s.0);
            run.report.outcome = outcome;
            return Ok(run.report);
        }
        if recorded.intents.is_empty() && recorded.outcomes.is_empty() {
            return self.execute_locked(approved).await;
        }
        let plan = approved.plan();
        if let Some(reason) = recorded.undo_reason.clone() {
            return self.resume_undo(run, &recorded, reason).await;
        }
        let mut done = HashSet::new();
        let mut first_open = None;
        for (i, step) in plan.steps.iter().enumerate() {
            let n = i + 1;
            match recorded.outcomes.get(&(Phase::Step, n)) {
                Some(StepOutcome::Failed { reason, .. }) => {
                    // It stopped there before the crash; the crash only lost the final record.
                    let outcome = Outcome::Stopped {
                        step: n,
                        reason: reason.clone(),
                    };
                    return self.finish(run, outcome).await;
                }
                Some(o) => {
                    run.report.steps.push((n, o.clone()));
                    done.insert(n);
                }
                None if recorded.intents.contains(&(Phase::Step, n)) => {
                    if checks::effect_observed(&self.clusters, self.github.as_ref(), step).await? {
                        self.record(approved, RecordKind::StepApplied, json!({"phase": Phase::Step, "step": n, "outcome": StepOutcome::AlreadyApplied, "recovered": true})).await?;
                        self.emit(Progress::StepFinished {
                            phase: Phase::Step,
                            step: n,
                            outcome: StepOutcome::AlreadyApplied,
                        });
                        run.report.steps.push((n, StepOutcome::AlreadyApplied));
                        done.insert(n);
                    } else if first_open.is_none() {
                        first_open = Some(n);
                    }
                }
                None => {
                    if first_open.is_none() {
                        first_open = Some(n);
                    }
                }
            }
        }
        if let Some(first) = first_open
            && let Some(reason) = self.gate(approved, first).await?
        {
            let outcome = Outcome::Stopped {
                step: first,
                reason,
            };
            return self.finish(run, outcome).await;
        }
        let outcome = self
            .run_from(&mut run, first_open.unwrap_or(plan.steps.len() + 1), &done)
            .await?;
        self.finish(run, outcome).await
    }

    async fn resume_undo(
        &self,
        mut run: super::Run<'_>,
        recorded: &Recorded,
        reason: String,
    ) -> Result<ExecutionReport> {
        let approved = run.approved;
        let who = approved.impersonate().clone();
        let mut undo_ok = true;
        for (i, step) in approved.plan().undo.iter().enumerate() {
            let n = i + 1;
            let o = match recorded.outcomes.get(&(Phase::Undo, n)) {
                Some(o) => o.clone(),
                None if recorded.intents.contains(&(Phase::Undo, n))
                    && checks::effect_observed(&self.clusters, self.github.as_ref(), step)
                        .await? =>
                {
                    self.record(approved, RecordKind::Undo, json!({"phase": Phase::Undo, "step": n, "outcome": StepOutcome::AlreadyApplied, "recovered": true})).await?;
                    StepOutcome::AlreadyApplied
                }
                None => self.run_step(approved, &who, Phase::Undo, n, step).await?,
            };
            let failed = matches!(o, StepOutcome::Failed { .. });
            run.report.undo.push((n, o));
            if failed {
                undo_ok = false;
                break;
            }
        }
        self.finish(run, Outcome::RolledBack { reason, undo_ok })
            .await
    }
}
