//! medic-approvals: who may approve which remediation plan, the approval workflow, the
//! SubjectAccessReviews behind it, and the audit log that is medic's source of truth.
//!
//! It depends on no other medic crate; `medic-playbooks` builds its executor on it, and
//! the front ends call [`ApprovalBook`] for `medic approvals list|show|approve|deny` and
//! [`audit::verify`] / [`audit::export`] for `medic audit verify|export`.
//!
//! # Layout
//!
//! - `plan`: what a plan exposes to be approved — [`Risk`], [`AccessCheck`], [`PlanHash`]
//!   (SHA-256 of [`canonical_json`]), the [`Approvable`] trait and [`PlanSummary`];
//!   [`RecordedPlan`] for callers that do not know the concrete plan type.
//! - `identity`: [`Actor`] (`slack:U01`, `teams:…`, `terminal:alice`, `alice`,
//!   `runbook:x`) → [`Identity`] / [`KubeIdentity`] through an [`IdentityMap`].
//! - `policy`: [`Policy`] parsed from `policy.yaml` (format below), validated with every
//!   problem named by key and line; [`Policy::default`].
//! - `review`: [`AccessReviewer`] (SubjectAccessReview), [`KubeAccessReviewer`] for real
//!   clusters, [`SharedReviewer`] for trait objects.
//! - `book` (open, request, queries, dedup) / `decide` (decide, auto-approve, re-check and
//!   their checks) / `approved` / `state` / `refusal`: the workflow — [`ApprovalBook::request`],
//!   [`ApprovalBook::decide`] → [`Outcome`] (`Approved(Approved<P>)`, `Pending`, `Denied`,
//!   `Refused(Refusal)`, `AlreadyDecided`), [`ApprovalBook::auto_approve`],
//!   [`ApprovalBook::recheck`] right before execution.
//! - `audit`: the JSON Lines hash-chained log ([`audit::AuditLog`]), [`audit::verify`],
//!   [`audit::export`].
//! - `views`: sled views rebuilt from the log.
//!
//! # Workflow
//!
//! ```text
//! request(plan, requester)            → approval_requested (plan JSON + summary + hash)
//! decide(id, actor, Approve, hash)    → access_review, decision   | refusal
//!                                       → Outcome::Approved(Approved<P>) when thresholds met
//! recheck(&approved, now)             → access_review             | refusal + Err(Refused)
//! executor: record(execution_intent with approval_id), step_applied, post_check, undo …
//! ```
//!
//! Checks at approval and again at re-check: the approver is mapped, is not medic (the
//! `agent: true` identity), is not the requester; the hash they saw and the stored plan's
//! hash equal the request's (one changed byte means "the plan changed since it was shown;
//! re-review"); the request has not expired; no change freeze covers the plan; one of
//! their roles covers the plan's playbook, every cluster it acts on, its namespaces and
//! risk; and a SubjectAccessReview *as them* passes for every operation — each sent to the
//! API server of the cluster that operation runs on ([`AccessCheck::cluster`]), so a
//! failover that scales in one cluster and shifts traffic in another is reviewed by both. Two approvals by one person
//! count once. A deny from anyone in a covering role (or the requester, withdrawing) wins,
//! and revokes an approval whose execution has not started. Execution impersonates the
//! approver whose approval completed the request ([`Approved::impersonate`]); for an
//! automatic approval, the policy's `run_as` identity.
//!
//! # Wiring the CLI
//!
//! ```no_run
//! use medic_approvals::{
//!     audit, Actor, ApprovalBook, Decision, IdentityMap, KubeAccessReviewer, Outcome,
//!     PlanHash, Policy, RecordedPlan, shared,
//! };
//!
//! # async fn cli(kube: kube::Client) -> medic_approvals::Result<()> {
//! let data_dir = std::path::Path::new("/var/lib/medic");
//! let identities = IdentityMap::from_yaml(&std::fs::read_to_string("identities.yaml").unwrap())?;
//! let policy = Policy::load("policy.yaml".as_ref(), &identities)?; // or Policy::default()
//! let reviewer = KubeAccessReviewer::new().with_cluster("aks-eu-west", kube);
//! let book = ApprovalBook::open(data_dir, policy, identities, shared(reviewer)).await?;
//! let now = chrono::Utc::now();
//!
//! // medic approvals list / show <id>
//! for state in book.list_pending(now).await? {
//!     println!("{}", state.describe(now));
//! }
//! // medic approvals approve <id> (the terminal user; the hash the user was shown)
//! let id = "3f0a8f2e-2b55-4d1c-8d3b-6a1f0c9e7a10";
//! let shown = book.get(id).await?.expect("known id").request.plan_hash;
//! let me: Actor = format!("terminal:{}", std::env::var("USER").unwrap_or_default()).parse()?;
//! let outcome = book.decide::<RecordedPlan>(id, &me, Decision::Approve, &shown, now).await?;
//! println!("{}", outcome.describe());
//! // medic approvals deny <id> --reason "…"
//! let deny = Decision::Deny { reason: "wrong node".into() };
//! book.decide::<RecordedPlan>(id, &me, deny, &shown, now).await?;
//!
//! // medic audit verify / export --actor alice
//! let log = ApprovalBook::audit_path(data_dir);
//! let report = audit::verify(&log)?;
//! println!("{report}");
//! let filter = audit::ExportFilter { actor: Some("alice".into()), ..Default::default() };
//! for record in audit::export(&log, filter)? {
//!     println!("{}", serde_json::to_string(&record?).unwrap());
//! }
//! # let _ = PlanHash::of(&1); let _: Option<Outcome<RecordedPlan>> = None;
//! # Ok(()) }
//! ```
//!
//! # Audit log
//!
//! `<data_dir>/audit.jsonl`, one [`audit::AuditRecord`] per line:
//! `hash = sha256(prev_hash || canonical_json(record without hash))`. Appends are
//! `fdatasync`ed before they return; concurrent appenders share one sync (group commit by
//! one writer thread). Several processes may append: each batch is written under an
//! exclusive `flock`, after re-reading records other processes appended, so the chain stays
//! linear. Opening truncates a torn last line (with a `tracing` warning and
//! [`audit::OpenReport::torn_tail`]) and refuses a log corrupt anywhere else.
//!
//! # Views and several processes
//!
//! `<data_dir>/views.sled` holds pending requests, request state and plans, proposals,
//! dedup keys and an index by actor, plus the seq/hash of the last record applied; it is
//! replayed from the log when behind and rebuilt when missing or inconsistent. sled locks
//! its directory per process, so a second process (the CLI while `medic serve` runs)
//! builds the same views in memory from the log instead. Mutating operations also take
//! `<data_dir>/approvals.lock`, so decisions from different processes are linearised.
//!
//! # Policy format (`policy.yaml`)
//!
//! See `approvals/policy.example.yaml` for a commented example. Top-level keys:
//!
//! | key | meaning |
//! |---|---|
//! | `version` | `1` |
//! | `expiry` | request lifetime, e.g. `15m`, `1h30m` (units s, m, h, d); default 15m |
//! | `roles[]` | `name`, `members` (identity names, `user:<kube user>`, `group:<kube group>`, `*`), `playbooks` / `clusters` / `namespaces` globs (default `["*"]`; cluster-scoped plans need namespaces `*`; a plan acting on several clusters needs every one covered), `max_risk` |
//! | `thresholds[]` | `name`, `min_risk`, `approvals` (distinct people), `from_roles` (default: any covering role), `playbooks` / `clusters` / `namespaces` globs; all applicable thresholds must be met, else one approval suffices |
//! | `freezes[]` | `name`, `start`, `end` (RFC 3339, end exclusive), `clusters` / `namespaces` globs, `reason`; blocks approval and execution |
//! | `auto_approve[]` | `runbook`, `playbooks` / `clusters` / `namespaces` globs, `max_risk` (must be `low`), `run_as` (identity executed and reviewed as; not medic). Off when empty |
//!
//! Validation reports every problem with its key path and line: unknown keys, unknown
//! roles or identities, the agent as a member, unknown risks, bad durations or times,
//! thresholds of 0 or larger than the eligible identities, freezes that end before they
//! start or overlap another in time and scope, freezes without a reason, auto-approval
//! above low risk or running as medic.

mod approved;
pub mod audit;
mod book;
mod decide;
mod error;
mod glob;
mod identity;
mod plan;
mod policy;
mod refusal;
mod review;
mod state;
mod views;

pub use approved::{Approved, Decision, Outcome};
pub use book::{AUDIT_FILE, ApprovalBook, VIEWS_DIR};
pub use error::{ConfigProblem, Error, Result};
pub use identity::{Actor, Identity, IdentityDiff, IdentityEntry, IdentityMap, KubeIdentity};
pub use plan::{
    AccessCheck, Approvable, FromRecorded, PlanHash, PlanSummary, RecordedPlan, Risk,
    canonical_json,
};
pub use policy::{
    AutoApprove, DEFAULT_EXPIRY, Freeze, Member, Need, Policy, Role, Threshold, parse_duration,
};
pub use refusal::Refusal;
pub use review::{
    AccessReviewer, AccessVerdict, DynAccessReviewer, KubeAccessReviewer, SharedReviewer, shared,
    subject_access_review,
};
pub use state::{ApprovalRequest, ApprovalState, Denial, Grant, Progress, Status};
