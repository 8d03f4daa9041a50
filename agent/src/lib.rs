//! medic-agent: the investigation engine — model clients, the loop, analyzers, and the
//! session protocol every front end speaks.
//!
//! Layout:
//! - [`protocol`]: [`Op`]s in, [`Event`]s out; [`Finding`], [`Proposal`]. Plain serde types.
//! - [`model`]: the [`ModelClient`] trait, [`ModelConfig`], the rig-core client (the one
//!   production path), structured-output tool calling for small models and its tolerant
//!   parser, and the once-per-endpoint tool-mode probe.
//! - [`session`]: [`Session`] — the investigation loop (analyzers first, then model ⇄
//!   tools under hard [`Budgets`]), and the `Op` → `Event` serving loop. Every finished
//!   call is followed by its `ToolOutput`; model replies stream, and the final answer's text
//!   reaches clients as `AnswerDelta`s while the model writes it (both tool modes).
//! - [`analyzers`]: deterministic detectors over typed tool outputs (no model): a fixed
//!   collection (each cluster's pods read once for pods, node requests and the GPU view),
//!   follow-up reads where a finding needs them (the GPU view on GPU clusters, a bad
//!   rollout's GitHub history, Hubble policy drops where network policies exist, the
//!   ConfigMaps / Secrets behind `subPath` mounts), and causes that silence their symptoms'
//!   remediations.
//! - [`prompt`]: the system prompt (`prompt/system.md`).
//! - [`scripted`]: an OpenAI-compatible HTTP server replaying a script, for tests and evals.
//! - [`error`]: [`AgentError`] and [`Result`].
//!
//! A front end builds a session from configuration and a [`medic_tools::ToolContext`], sends
//! it a question, and renders the events:
//!
//! ```no_run
//! use medic_agent::{ModelConfig, Session, SessionConfig};
//! use medic_agent::protocol::{Event, Op};
//!
//! # async fn ask(ctx: medic_tools::ToolContext) -> medic_agent::Result<()> {
//! let model = ModelConfig::from_env()?; // `None`: analyzers only
//! let session = Session::from_model_config(
//!     model.as_ref(),
//!     medic_tools::Registry::standard(),
//!     ctx,
//!     SessionConfig::default(),
//! )
//! .await?;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let printer = tokio::spawn(async move {
//!     while let Some(event) = rx.recv().await {
//!         if let Event::AnswerDelta { text } = event {
//!             print!("{text}");
//!         }
//!     }
//! });
//! let outcome = session
//!     .investigate(Op::UserQuestion { text: "why is checkout failing?".into() }, tx)
//!     .await?;
//! printer.await.ok();
//! println!("{} proposals, {} tokens", outcome.proposals.len(), outcome.usage.input_tokens);
//! # Ok(())
//! # }
//! ```
//!
//! Two rules hold: tool output is data, never instructions; and nothing here mutates a
//! cluster — the session only proposes catalogue playbooks ([`PLAYBOOK_CATALOGUE`]).

pub mod analyzers;
pub mod error;
pub mod model;
pub mod prompt;
pub mod protocol;
pub mod scripted;
pub mod session;

pub use error::{AgentError, Result};
pub use model::{
    ChatMessage, ChatRequest, ChatResponse, DynModelClient, ModelClient, ModelConfig, Provider,
    RigClient, ToolMode,
};
pub use protocol::{Event, Finding, Op, Proposal, StopReason, Usage};
pub use session::{Budgets, Outcome, Session, SessionConfig};

/// The playbooks a proposal may name; anything else is dropped with a warning.
pub const PLAYBOOK_CATALOGUE: &[&str] = &[
    "gpu-rebalance",
    "rollback",
    "failover",
    "rollout-restart",
    "scale",
    "raise-memory-limit",
    "uncordon",
    "restart-vm",
    "migrate-vm",
];
