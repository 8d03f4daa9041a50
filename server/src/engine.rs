//! The engine boundary: the server starts sessions and forwards approval decisions; it does
//! not care what investigates, plans or executes behind it.
//!
//! A session is a [`SessionLink`] (the same two channels the TUI uses): the server sends
//! [`Op`]s, the engine answers with [`Event`]s until it closes the event channel. A session
//! stays open after `Done` while its approvals are pending, so decisions taken anywhere
//! (Slack, Teams, the CLI) and the execution that follows still reach the thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use medic_agent::protocol::{ApprovalStatus, ApprovalVerdict, Event, Op};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::Result;

/// The two channels of one session.
#[derive(Debug)]
pub struct SessionLink {
    /// Ops to the engine (cancel, shutdown; decisions go through [`Engine::decide`]).
    pub ops: mpsc::Sender<Op>,
    /// Events from the engine, in order; closed when the session ends.
    pub events: mpsc::Receiver<Event>,
}

/// Where a session came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A Slack mention or DM.
    Slack,
    /// A Teams message.
    Teams,
    /// An Alertmanager group.
    Alertmanager,
    /// A PagerDuty incident.
    Pagerduty,
}

/// What the server asks the engine to start.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRequest {
    /// Stable key (`slack:C1:1700000000.1`, `alert:<groupKey>`); also the tracing span id.
    pub key: String,
    /// Where it came from.
    pub origin: Origin,
    /// Who asked: the identity name when the chat user is mapped, else the raw actor
    /// (`slack:U…`, `teams:…`), or `runbook:<name>` / `medic` for alerts. The engine uses it
    /// as the requester, so the requester can never approve their own plan.
    pub requester: String,
    /// The first op: [`Op::UserQuestion`] or [`Op::Alert`] (whose payload carries the
    /// alerts and, when one matched, the runbook's hints, allowed playbooks and approvers).
    pub op: Op,
}

/// A decision from a chat user, already mapped to an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    /// The approval (the opaque id the button carried).
    pub approval_id: String,
    /// The identity name the policy knows (`alice`).
    pub actor: String,
    /// The chat actor it came from (`slack:U01ALICE`), for the audit trail.
    pub via: String,
    /// Approve or deny.
    pub verdict: ApprovalVerdict,
    /// Why, if given.
    pub reason: Option<String>,
}

/// The engine's answer to a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionReply {
    /// Recorded; the approval now stands here (pending more approvals, approved, denied…).
    Accepted(ApprovalStatus),
    /// Refused, with the reason to show the person (self-approval, role, SAR, expired…).
    Refused {
        /// Why, in words.
        reason: String,
        /// Where the approval stands, if known.
        status: Option<ApprovalStatus>,
    },
    /// No such approval.
    Unknown,
}

/// Whatever answers ops: investigation → proposals → plans → approvals → execution.
pub trait Engine: Send + Sync + 'static {
    /// Starts a session for a question or an alert.
    fn start(&self, request: SessionRequest) -> impl Future<Output = Result<SessionLink>> + Send;
    /// Takes a decision on a pending approval. The first valid decision wins; the engine
    /// runs every approval check (identity, requester, role, access review, hash, expiry).
    fn decide(
        &self,
        decision: DecisionRequest,
    ) -> impl Future<Output = Result<DecisionReply>> + Send;
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`Engine`], implemented for every engine.
pub(crate) trait ErasedEngine: Send + Sync + 'static {
    fn start(&self, request: SessionRequest) -> BoxFut<'_, Result<SessionLink>>;
    fn decide(&self, decision: DecisionRequest) -> BoxFut<'_, Result<DecisionReply>>;
}

impl<E: Engine> ErasedEngine for E {
    fn start(&self, request: SessionRequest) -> BoxFut<'_, Result<SessionLink>> {
        Box::pin(Engine::start(self, request))
    }
    fn decide(&self, decision: DecisionRequest) -> BoxFut<'_, Result<DecisionReply>> {
        Box::pin(Engine::decide(self, decision))
    }
}

/// A shared, type-erased engine.
pub(crate) type DynEngine = Arc<dyn ErasedEngine>;
