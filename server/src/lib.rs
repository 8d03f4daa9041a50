//! medic-server: medic's HTTP front door — a Slack bot, a Microsoft Teams bot, and alert
//! receivers (Alertmanager, PagerDuty) that run on-call runbooks — all clients of the same
//! session protocol ([`medic_agent::protocol`]) as the CLI and the TUI.
//!
//! The server does not investigate, plan or execute anything itself: it talks to an
//! [`Engine`] (start a session, forward a decision), so a pending approval is one object
//! wherever it is shown and the first valid decision wins.
//!
//! Layout:
//! - [`app`]: [`Server`] — shared state, the router, `/healthz` `/readyz` `/metrics`,
//!   graceful shutdown with a checkpoint of unstarted alert groups, reload, and
//!   [`Server::serve_with_signals`] (SIGTERM/SIGINT drain, SIGHUP reload) for `medic serve`.
//! - [`config`]: [`ServerConfig`], the `server` section of `medic.yaml`.
//! - [`engine`]: the [`Engine`] trait and the types crossing it.
//! - `session`: runs one session — one progress message updated in place, approval cards
//!   with buttons, the execution result — for any chat surface (`chat`).
//! - `card`: platform-neutral messages; `slack::blocks` and `teams::cards` render them,
//!   escaping everything that came from a cluster or a model.
//! - [`slack`]: signature v0 verification, replay guard, Events API + interactivity;
//!   [`slack::slack_signature`] signs requests the way Slack does.
//! - `teams`: Bot Framework JWT validation (OpenID keys, cached), activities, replies.
//! - `alerts`: Alertmanager (bearer token) and PagerDuty (HMAC, rotation) receivers; the
//!   dispatcher (dedup by fingerprint, grouping, one investigation per group, bounded
//!   queue, spend cap, resolve handling) and its workers; runbook matching.
//! - `decide`: a button click → identity mapping → one decision through the engine.
//! - [`metrics`]: Prometheus text exposition.

mod alerts;
pub mod app;
mod card;
mod chat;
pub mod config;
mod decide;
mod dedup;
pub mod engine;
mod error;
pub mod metrics;
mod session;
pub mod slack;
mod spend;
mod teams;

pub use app::{CHECKPOINT_FILE, Server, ShutdownReport};
pub use config::{AlertsConfig, SecretRef, ServerConfig, SlackConfig, SpendConfig, TeamsConfig};
pub use engine::{DecisionReply, DecisionRequest, Engine, Origin, SessionLink, SessionRequest};
pub use error::{Result, ServerError};
pub use metrics::Metrics;
