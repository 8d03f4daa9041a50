//! medic-engine: what answers the session protocol — investigation, plans, approvals and
//! execution — behind every front end.
//!
//! The TUI, the chat bots, `medic ask` and the evals send [`medic_agent::protocol::Op`]s
//! and read [`medic_agent::protocol::Event`]s; this crate is what answers them. It joins
//! `medic-agent` (the model-facing investigation) with `medic-playbooks` (plans and the
//! executor) and `medic-approvals` (policy, decisions, audit). It is its own crate so that
//! the model-facing code in `medic-agent` cannot even link the executor — the one code path
//! that mutates a cluster.
//!
//! Layout:
//! - `remediation`: [`Remediation`] — proposal → plan (live state, dry-run) → approval
//!   request → decision → execution as the approver, one path for every front end.
//! - `view`: [`view::plan_view`] and [`view::approval_status`], the shapes front ends show.
//! - `session`: [`Engine::connect`] → [`EngineLink`], one front end's Op/Event channel pair.

mod error;
mod remediation;
pub mod view;

pub use error::{Error, Result};
pub use remediation::{Clock, Remediation, Requested};
mod session;

pub use session::EngineLink;

use medic_agent::session::Session;
use medic_approvals::Actor;

/// The engine: an investigation session template plus the remediation path.
#[derive(Clone, Debug)]
pub struct Engine {
    session: Session,
    remediation: Remediation,
}

impl Engine {
    /// Joins an investigation session (analyzers and/or a model over the tools) with the
    /// remediation path (plans, approvals, executor).
    pub fn new(session: Session, remediation: Remediation) -> Self {
        Self {
            session,
            remediation,
        }
    }

    /// Opens a conversation for `requester` (the person or runbook asking).
    pub fn connect(&self, requester: Actor) -> EngineLink {
        session::connect(self.session.clone(), self.remediation.clone(), requester)
    }

    /// The remediation path, for front ends that decide without a session (the CLI).
    pub fn remediation(&self) -> &Remediation {
        &self.remediation
    }
}
