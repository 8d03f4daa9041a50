//! The boundary between the runner and whatever answers [`Op`]s (the engine).
//!
//! The runner does not know how medic investigates: a binary or a test hands it an
//! [`EngineFactory`], and for each scenario the factory opens a session wired to that
//! scenario's sandbox and returns the two ends of the session protocol.

use std::path::Path;

use chrono::{DateTime, Utc};
use medic_agent::protocol::{Event, Op};
use medic_sandbox::bundle::Identity;
use medic_sandbox::{Bundle, SandboxHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::error::Result;

/// How the engine answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "model", rename_all = "kebab-case")]
pub enum EvalMode {
    /// Analyzers only, no model.
    NoModel,
    /// The scripted model (deterministic, offline).
    Scripted,
    /// A real model endpoint (`provider/model` or a URL, as the binary understands it).
    Model(String),
}

impl std::fmt::Display for EvalMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalMode::NoModel => f.write_str("no-model"),
            EvalMode::Scripted => f.write_str("scripted"),
            EvalMode::Model(m) => write!(f, "model:{m}"),
        }
    }
}

/// What a factory gets for one scenario.
///
/// `bundle` is a copy with `title`, `description` and `expected` removed: those are for
/// people and the scorer, and nothing of them may reach the investigation.
pub struct ScenarioRun<'a> {
    /// Scenario name (its folder name).
    pub name: &'a str,
    /// The scenario folder.
    pub dir: &'a Path,
    /// The bundle, without `title`, `description` and `expected`.
    pub bundle: &'a Bundle,
    /// The running sandbox serving this scenario.
    pub sandbox: &'a SandboxHandle,
    /// How the engine should answer.
    pub mode: &'a EvalMode,
    /// Who starts the session (`expected.requester`), so the approval workflow knows whose
    /// own plan it is. This is the one fact of `expected` an engine receives: it decides
    /// who may approve, never what the investigation finds.
    pub requester: Option<&'a str>,
}

impl ScenarioRun<'_> {
    /// The sandbox's kubeconfig (default context: the agent identity on the first cluster).
    pub fn kubeconfig_path(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    /// Who is who in this replay.
    pub fn identities(&self) -> &[Identity] {
        &self.bundle.scenario.identities
    }

    /// The scenario clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.bundle.now()
    }
}

/// The client ends of one session: send [`Op`]s, receive [`Event`]s (the same channel types
/// `medic_agent::Session::run` takes).
pub struct EngineLink {
    /// Ops to the session.
    pub ops: UnboundedSender<Op>,
    /// Events from the session.
    pub events: UnboundedReceiver<Event>,
}

/// Opens one engine session per scenario.
///
/// The runner drives its scenarios concurrently inside one task, so the returned future
/// need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait EngineFactory: Send + Sync {
    /// Opens a session wired to `run.sandbox`, ready to receive the start op.
    async fn open(&self, run: &ScenarioRun<'_>) -> Result<EngineLink>;
}

/// The bundle with `title`, `description` and `expected` removed.
pub(crate) fn redacted(bundle: &Bundle) -> Bundle {
    let mut b = bundle.clone();
    b.scenario.title.clear();
    b.scenario.description.clear();
    b.scenario.expected = None;
    b
}

/// The op that starts a scenario's investigation.
pub fn start_op(bundle: &Bundle) -> Option<Op> {
    let start = &bundle.scenario.start;
    if let Some(q) = &start.question {
        return Some(Op::UserQuestion { text: q.clone() });
    }
    start.alert.as_ref().map(|a| Op::Alert {
        source: a.source.clone(),
        payload: a.payload.clone(),
    })
}
