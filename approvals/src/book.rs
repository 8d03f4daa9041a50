//! [`ApprovalBook`]: the approval workflow over the audit log and its views.
//!
//! Every mutating operation runs under an in-process mutex and an exclusive `flock` on
//! `<data_dir>/approvals.lock`, brings the views up to date with the log, checks, appends
//! (fsynced) and only then answers — so decisions from several processes (the CLI, the
//! TUI, `medic serve`) are linearised and each sees the others'.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::approved::Outcome;
use crate::audit::{AuditLog, AuditRecord, OpenReport, RecordDraft, RecordKind, lock};
use crate::error::{Error, Result};
use crate::identity::{Actor, IdentityMap};
use crate::plan::{Approvable, PlanHash, RecordedPlan};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::review::SharedReviewer;
use crate::state::{ApprovalRequest, ApprovalState};
use crate::views::{RequestedPayload, Views};

/// The audit log's file name inside the data directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The sled views' directory name inside the data directory.
pub const VIEWS_DIR: &str = "views.sled";
const LOCK_FILE: &str = "approvals.lock";

/// The approval workflow. Cheap to share behind an `Arc`.
pub struct ApprovalBook {
    pub(crate) log: AuditLog,
    pub(crate) report: OpenReport,
    pub(crate) views: Arc<Mutex<Views>>,
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) lock_path: PathBuf,
    /// The policy and the identities in force, swapped together by [`ApprovalBook::reload`].
    pub(crate) people: std::sync::RwLock<(Arc<Policy>, Arc<IdentityMap>)>,
    pub(crate) reviewer: SharedReviewer,
}

pub(crate) struct OpGuard<'a> {
    _mem: tokio::sync::MutexGuard<'a, ()>,
    // Closing the file releases the flock.
    _file: std::fs::File,
}

impl ApprovalBook {
    /// The audit log path for a data directory (for `medic audit verify|export`).
    pub fn audit_path(data_dir: &Path) -> PathBuf {
        data_dir.join(AUDIT_FILE)
    }

    /// Opens the book in `data_dir` (created if missing): the audit log (torn tail
    /// truncated with a warning, see [`ApprovalBook::open_report`]) and the views (sled,
    /// or in memory when another process holds them).
    pub async fn open(
        data_dir: impl AsRef<Path>,
        policy: Policy,
        identities: IdentityMap,
        reviewer: SharedReviewer,
    ) -> Result<ApprovalBook> {
        let dir = data_dir.as_ref().to_owned();
        let log_path = dir.join(AUDIT_FILE);
        let views_dir = dir.join(VIEWS_DIR);
        let (log, report, views) = tokio::task::spawn_blocking(move || -> Result<_> {
            let (log, report) = AuditLog::open(&log_path)?;
            let views = Views::open(&views_dir, &log_path)?;
            Ok((log, report, views))
        })
        .await
        .map_err(|e| join_error(&e))??;
        for w in report.warnings() {
            tracing::warn!("{w}");
        }
        Ok(ApprovalBook {
            log,
            report,
            views: Arc::new(Mutex::new(views)),
            op: tokio::sync::Mutex::new(()),
            lock_path: dir.join(LOCK_FILE),
            people: std::sync::RwLock::new((Arc::new(policy), Arc::new(identities))),
            reviewer,
        })
    }

    /// What opening the audit log found (warnings about a truncated torn tail).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The audit log (for records the book does not write itself).
    pub fn audit(&self) -> &AuditLog {
        &self.log
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.people
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// The identity map in force.
    pub fn identities(&self) -> Arc<IdentityMap> {
        self.people
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// Swaps in a new policy and identity map (e.g. `medic serve` on SIGHUP) without a
    /// restart. It waits for any decision in progress, records a `config_reloaded` audit
    /// record naming who was added, removed or changed, and only then swaps: every later
    /// decision and pre-execution re-check uses the new lists. Approvals already given stay
    /// given; their re-check before execution (SubjectAccessReview as the approver, role,
    /// freeze) runs under the new policy.
    pub async fn reload(
        &self,
        policy: Policy,
        identities: IdentityMap,
        actor: &Actor,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<AuditRecord> {
        let _g = self.exclusive().await?;
        let diff = identities.diff(&self.identities());
        let payload = serde_json::json!({
            "source": source,
            "identities": identities.iter().count(),
            "added": diff.added,
            "removed": diff.removed,
            "changed": diff.changed,
            "policy_roles": policy.roles.len(),
        });
        let record = self
            .log
            .append(RecordDraft::new(
                now,
                actor,
                RecordKind::Other("config_reloaded".into()),
                payload,
            ))
            .await?;
        *self
            .people
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Arc::new(policy), Arc::new(identities));
        Ok(record)
    }

    /// True when the views are the persistent sled ones, false when this process uses
    /// in-memory views because another process holds sled.
    pub async fn views_persistent(&self) -> Result<bool> {
        self.with_views(|v| Ok(v.persistent)).await
    }

    /// Seq of the last record the views reflect.
    pub async fn views_seq(&self) -> Result<u64> {
        self.with_views(|v| Ok(v.applied_seq())).await
    }

    async fn with_views<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Views) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let views = self.views.clone();
        tokio::task::spawn_blocking(move || {
            let mut v = views.lock().map_err(|_| Error::Invalid {
                what: "views",
                message: "a previous operation panicked while holding them; restart".into(),
            })?;
            v.catch_up()?;
            f(&mut v)
        })
        .await
        .map_err(|e| join_error(&e))?
    }

    pub(crate) async fn exclusive(&self) -> Result<OpGuard<'_>> {
        let mem = self.op.lock().await;
        let path = self.lock_path.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("open", &path, e))?;
            lock(&f, &path, true)?;
            Ok(f)
        })
        .await
        .map_err(|e| join_error(&e))??;
        Ok(OpGuard {
            _mem: mem,
            _file: file,
        })
    }

    /// Appends a record (e.g. the executor's intent, step, post-check and undo records;
    /// set `approval_id` so the views see an execution started). Returns once fsynced.
    pub async fn record(&self, draft: RecordDraft) -> Result<AuditRecord> {
        self.log.append(draft).await
    }

    /// Records a proposal (`proposal_made`) so it can be found by id.
    pub async fn record_proposal(
        &self,
        proposal_id: &str,
        actor: &Actor,
        payload: Value,
        now: DateTime<Utc>,
    ) -> Result<AuditRecord> {
        self.log
            .append(
                RecordDraft::new(now, actor, RecordKind::ProposalMade, payload)
                    .proposal(proposal_id),
            )
            .await
    }

    /// A recorded proposal: `{seq, at, actor, payload}`.
    pub async fn proposal(&self, proposal_id: &str) -> Result<Option<Value>> {
        let id = proposal_id.to_owned();
        self.with_views(move |v| v.proposal(&id)).await
    }

    /// Requests approval of the exact plan. Anyone may request; the request (with the
    /// plan's JSON) is in the audit log before this returns.
    pub async fn request(
        &self,
        plan: &impl Approvable,
        requester: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest> {
        let hash = PlanHash::of(plan)?;
        let mut summary = plan.summary();
        summary.hash = hash.clone();
        let plan_json = serde_json::to_value(plan).map_err(|e| Error::json("plan", e))?;
        let expiry =
            chrono::Duration::from_std(self.policy().expiry).map_err(|_| Error::Invalid {
                what: "expiry",
                message: "too long".into(),
            })?;
        let request = ApprovalRequest {
            id: uuid::Uuid::new_v4().to_string(),
            plan_hash: hash.clone(),
            required: self.policy().requirement(&summary),
            eligible_roles: self
                .policy()
                .eligible_roles(&summary)
                .into_iter()
                .map(|r| r.name.clone())
                .collect(),
            requester: requester.to_string(),
            requester_identity: self.identities().resolve(requester).map(|i| i.name.clone()),
            created: now,
            expires_at: now + expiry,
            summary,
        };
        let payload = serde_json::to_value(RequestedPayload {
            request: request.clone(),
            plan: plan_json,
        })
        .map_err(|e| Error::json("approval request", e))?;
        self.log
            .append(
                RecordDraft::new(now, requester, RecordKind::ApprovalRequested, payload)
                    .approval(&request.id)
                    .plan_hash(hash.as_str())
                    .proposal(&request.summary.plan_id),
            )
            .await?;
        Ok(request)
    }

    /// Requests not yet decided and not expired at `now`, oldest first.
    pub async fn list_pending(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalState>> {
        let all = self.with_views(|v| v.pending()).await?;
        Ok(all
            .into_iter()
            .filter(|s| s.request.expires_at > now)
            .collect())
    }

    /// A request and its decisions.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalState>> {
        let id = id.to_owned();
        self.with_views(move |v| v.get(&id)).await
    }

    /// The plan recorded with a request, for callers without the concrete plan type.
    pub async fn recorded_plan(&self, id: &str) -> Result<Option<RecordedPlan>> {
        let id = id.to_owned();
        self.with_views(move |v| {
            Ok(match (v.get(&id)?, v.plan(&id)?) {
                (Some(s), Some(plan)) => Some(RecordedPlan {
                    summary: s.request.summary,
                    plan,
                }),
                _ => None,
            })
        })
        .await
    }

    /// Seqs of the audit records written by `actor`, oldest first.
    pub async fn records_by_actor(&self, actor: &str) -> Result<Vec<u64>> {
        let a = actor.to_owned();
        self.with_views(move |v| v.by_actor(&a)).await
    }

    /// Records `key` (a Slack retry id, an alert fingerprint) for `ttl` unless it is
    /// already live. True when it was new. The key is in the audit log before this
    /// returns true, so a restart never forgets it.
    pub async fn check_and_set_dedup(
        &self,
        key: &str,
        ttl: Duration,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _g = self.exclusive().await?;
        let k = key.to_owned();
        if let Some(e) = self.with_views(move |v| v.dedup(&k)).await?
            && e.expires_at > now
        {
            return Ok(false);
        }
        let expires_at = now
            + chrono::Duration::from_std(ttl).map_err(|_| Error::Invalid {
                what: "ttl",
                message: format!("{ttl:?} is too long"),
            })?;
        self.log
            .append(RecordDraft::new(
                now,
                actor,
                RecordKind::Dedup,
                json!({ "key": key, "expires_at": expires_at }),
            ))
            .await?;
        Ok(true)
    }

    pub(crate) async fn load(&self, id: &str) -> Result<(ApprovalState, Value)> {
        let i = id.to_owned();
        let (state, plan) = self
            .with_views(move |v| Ok((v.get(&i)?, v.plan(&i)?)))
            .await?;
        match (state, plan) {
            (Some(s), Some(p)) => Ok((s, p)),
            _ => Err(Error::UnknownApproval { id: id.to_owned() }),
        }
    }

    pub(crate) async fn refuse<P>(
        &self,
        state: &ApprovalState,
        actor: &str,
        stage: &str,
        refusal: Refusal,
        now: DateTime<Utc>,
    ) -> Result<Outcome<P>> {
        self.write_refusal(state, actor, stage, &refusal, now)
            .await?;
        Ok(Outcome::Refused {
            approval_id: state.request.id.clone(),
            reason: refusal,
        })
    }

    pub(crate) async fn write_refusal(
        &self,
        state: &ApprovalState,
        actor: &str,
        stage: &str,
        refusal: &Refusal,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let payload = json!({ "stage": stage, "reason": refusal, "message": refusal.to_string() });
        self.log
            .append(
                RecordDraft::new(now, actor, RecordKind::Refusal, payload)
                    .approval(&state.request.id)
                    .plan_hash(state.request.plan_hash.as_str())
                    .proposal(&state.request.summary.plan_id),
            )
            .await?;
        Ok(())
    }
}

impl Drop for ApprovalBook {
    fn drop(&mut self) {
        if let Ok(v) = self.views.lock() {
            v.flush();
        }
    }
}

fn join_error(e: &tokio::task::JoinError) -> Error {
    Error::Invalid {
        what: "background task",
        message: e.to_string(),
    }
}
