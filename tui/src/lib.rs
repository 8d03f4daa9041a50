//! medic-tui: the terminal front end — a client of the session protocol in
//! [`medic_agent::protocol`]. It sends [`Op`]s and renders [`Event`]s, so whatever engine sits
//! on the other end of an [`EngineLink`] (in-process, replayed, remote) looks the same.
//!
//! Layout:
//! - [`app`]: the state ([`App`]), updated by `App::on_event`, `App::on_key`, `App::on_mouse`;
//!   no terminal, no I/O — handlers return [`Action`]s. Approval rules live in `app::model`.
//! - [`ui`]: `render(&App, &mut Frame)` — chat, trace (each call expandable to its arguments,
//!   result and output, paged with PgUp/PgDn) and proposals panes, overlays; adaptive from
//!   80×24 up.
//! - `markdown`, `text`: Markdown to styled lines; width-aware wrapping.
//! - [`sanitize`]: every string from an event is neutralised (escape sequences never reach
//!   the terminal).
//! - [`history`]: the past-sessions provider the binary plugs in.
//! - `terminal`: [`run`] — raw mode, alternate screen, mouse capture, panic-safe teardown, and
//!   the loop joining keys, engine events and the clock.
//!
//! Tests render into a ratatui `TestBackend` and pin the screens with insta
//! (`tests/screens.rs`); `tests/keys.rs` checks what each key sends. `examples/replay.rs`
//! replays a recorded session (`examples/session.jsonl`) into the real terminal UI.

pub mod app;
mod error;
pub mod history;
mod markdown;
pub mod sanitize;
mod terminal;
mod text;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use medic_agent::protocol::{Event, Op};
use tokio::sync::mpsc;

pub use app::{Action, App, Pane};
pub use error::{Result, TuiError};
pub use history::{HistoryProvider, SessionSummary};
pub use ui::render;

/// The two channels that connect the TUI to an engine.
#[derive(Debug)]
pub struct EngineLink {
    /// Ops the TUI sends (questions, cancel, approval decisions, context switches, shutdown).
    pub ops: mpsc::Sender<Op>,
    /// Events the engine sends, in order.
    pub events: mpsc::Receiver<Event>,
}

/// What the TUI needs to know about its user and surroundings.
#[derive(Clone)]
pub struct TuiOptions {
    /// The terminal user's identity as the approval policy knows it; sent as the `actor` of
    /// every approval decision. Empty means unmapped: the TUI can read but never approve.
    pub identity: String,
    /// Who the session's questions are asked as — the requester of the plans they lead to.
    /// Approvals refuse a plan's requester (four-eyes rule), so approve is not offered to
    /// them on this session's plans. `None`: the session asks as someone else.
    pub requester: Option<String>,
    /// Policy roles the identity holds. When set, approve is offered only on requests whose
    /// approvers name the identity or one of these roles; when empty, the engine decides.
    pub roles: Vec<String>,
    /// The cluster (kubeconfig context) in focus.
    pub cluster: String,
    /// The namespace in focus.
    pub namespace: String,
    /// The model in use.
    pub model: String,
    /// Clusters offered by `:cluster` (empty: any name is sent).
    pub clusters: Vec<String>,
    /// Namespaces offered by `:ns`.
    pub namespaces: Vec<String>,
    /// Models offered by `:model` (empty: any name is sent).
    pub models: Vec<String>,
    /// Past sessions for `:history`.
    pub history: Arc<dyn HistoryProvider>,
    /// A question to ask as soon as the TUI opens.
    pub initial_question: Option<String>,
    /// How often the clock and spinner advance.
    pub tick: Duration,
}

impl TuiOptions {
    /// Options for `identity` with an empty context and no history.
    pub fn new(identity: impl Into<String>) -> Self {
        TuiOptions {
            identity: identity.into(),
            requester: None,
            roles: Vec::new(),
            cluster: String::new(),
            namespace: String::new(),
            model: String::new(),
            clusters: Vec::new(),
            namespaces: Vec::new(),
            models: Vec::new(),
            history: Arc::new(Vec::new),
            initial_question: None,
            tick: Duration::from_millis(150),
        }
    }
}

impl std::fmt::Debug for TuiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TuiOptions")
            .field("identity", &self.identity)
            .field("requester", &self.requester)
            .field("roles", &self.roles)
            .field("cluster", &self.cluster)
            .field("namespace", &self.namespace)
            .field("model", &self.model)
            .field("clusters", &self.clusters)
            .field("namespaces", &self.namespaces)
            .field("models", &self.models)
            .field("initial_question", &self.initial_question)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// Runs the TUI on the current terminal until the user quits (`:q`, or Ctrl-C twice) or
/// stdin closes. Restores the terminal on every exit path, panics included.
pub async fn run(link: EngineLink, opts: TuiOptions) -> Result<()> {
    terminal::run(link, opts).await
}
