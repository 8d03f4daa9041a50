//! A session: the engine behind every front end.
//!
//! Build one with [`Session::new`] (or [`Session::from_model_config`]), then either call
//! [`Session::investigate`] for one question, or [`Session::run`] to serve a stream of
//! [`Op`]s and answer with [`Event`]s.

mod answer;
mod investigate;
mod stream;

use crate::analyzers::AnalyzerSet;
use crate::error::Result;
use crate::model::probe::resolve_tool_mode;
use crate::model::{DynModelClient, ModelConfig, RigClient, ToolMode};
use crate::protocol::{Event, Finding, Op, Proposal, StopReason, Usage};
use medic_tools::{Registry, ToolContext};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Hard limits of one investigation. When one is hit the model is asked for its final
/// answer (one more call, with no tools), and the session ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgets {
    /// Model calls that may request tools.
    pub max_steps: u32,
    /// Prompt + completion tokens over all model calls.
    pub max_tokens: u64,
    /// Wall time.
    pub max_wall: Duration,
    /// Cost in USD, when the provider reports costs.
    pub max_cost_usd: Option<f64>,
    /// Tool calls run at once.
    pub max_parallel_tools: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            max_steps: 10,
            max_tokens: 80_000,
            max_wall: Duration::from_secs(300),
            max_cost_usd: None,
            max_parallel_tools: 4,
        }
    }
}

/// How a session runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Limits.
    pub budgets: Budgets,
    /// `Native` or `Json` (resolve `Auto` with [`Session::from_model_config`]).
    pub tool_mode: ToolMode,
    /// Run the deterministic analyzers before (or instead of) the model.
    pub analyzers: bool,
    /// Namespace to focus the analyzers' collection on (`None`: all).
    pub namespace: Option<String>,
    /// Where the tool-mode probe result is cached (`None`: no cache).
    pub probe_cache: Option<PathBuf>,
    /// Output token cap per model call.
    pub max_output_tokens: Option<u64>,
    /// Stream model replies, so the final answer reaches clients as `AnswerDelta` events
    /// while it is written (default `true`).
    pub stream: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            budgets: Budgets::default(),
            tool_mode: ToolMode::Native,
            analyzers: true,
            namespace: None,
            probe_cache: crate::model::probe::default_cache_path(),
            max_output_tokens: Some(1500),
            stream: true,
        }
    }
}

/// What one investigation concluded.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Analyzer and model findings.
    pub findings: Vec<Finding>,
    /// Catalogue proposals.
    pub proposals: Vec<Proposal>,
    /// The answer text (Markdown).
    pub answer: String,
    /// Counters.
    pub usage: Usage,
    /// Why it ended.
    pub stop_reason: Option<StopReason>,
}

/// The investigation engine.
#[derive(Clone)]
pub struct Session {
    pub(crate) id: String,
    pub(crate) model: Option<Arc<dyn DynModelClient>>,
    pub(crate) model_config: Option<ModelConfig>,
    pub(crate) registry: Registry,
    pub(crate) ctx: ToolContext,
    pub(crate) config: SessionConfig,
    pub(crate) analyzers: Arc<AnalyzerSet>,
    pub(crate) cluster: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("model", &self.model.as_ref().map(|m| m.describe()))
            .field("tools", &self.registry.names())
            .finish()
    }
}

impl Session {
    /// A session over `registry` and `ctx`, with `model` (or analyzers only when `None`).
    pub fn new(
        registry: Registry,
        ctx: ToolContext,
        model: Option<Arc<dyn DynModelClient>>,
        config: SessionConfig,
    ) -> Self {
        Session {
            id: format!("ses_{}", uuid::Uuid::new_v4().simple()),
            model,
            model_config: None,
            registry,
            ctx,
            config,
            analyzers: Arc::new(AnalyzerSet::standard()),
            cluster: None,
        }
    }

    /// Build the rig client from `model` (resolving `tool_mode: auto` with a cached probe)
    /// and a session around it. `model = None` gives an analyzers-only session.
    pub async fn from_model_config(
        model: Option<&ModelConfig>,
        registry: Registry,
        ctx: ToolContext,
        mut config: SessionConfig,
    ) -> Result<Self> {
        let Some(mc) = model else {
            return Ok(Session::new(registry, ctx, None, config));
        };
        let client: Arc<dyn DynModelClient> = Arc::new(RigClient::new(mc.clone())?);
        config.tool_mode =
            resolve_tool_mode(client.as_ref(), mc, config.probe_cache.as_deref()).await?;
        let mut s = Session::new(registry, ctx, Some(client), config);
        s.model_config = Some(mc.clone());
        Ok(s)
    }

    /// Focus on one cluster (kubeconfig context) instead of all of the context's clusters.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Focus the analyzers' collection on one namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = Some(namespace.into());
        self
    }

    /// Replace the analyzer set.
    pub fn with_analyzers(mut self, analyzers: AnalyzerSet) -> Self {
        self.analyzers = Arc::new(analyzers);
        self
    }

    /// Session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The resolved tool mode.
    pub fn tool_mode(&self) -> ToolMode {
        self.config.tool_mode
    }

    /// `provider/model` or `none`.
    pub fn model_name(&self) -> String {
        self.model
            .as_ref()
            .map_or_else(|| "none".to_string(), |m| m.describe())
    }

    fn started_event(&self) -> Event {
        Event::SessionStarted {
            session_id: self.id.clone(),
            model: self.model_name(),
            tool_mode: if self.model.is_some() {
                self.config.tool_mode.name().to_string()
            } else {
                "none".into()
            },
        }
    }

    /// Serve `ops` until `Shutdown` or until the op channel closes. Questions and alerts
    /// run one at a time; `Cancel` stops the running one (it ends with `Done { Cancelled }`).
    /// Approval decisions are forwarded to `approvals` (the approval workflow lives in
    /// the playbooks / approvals crates), or answered with an error event when none is set.
    pub async fn run(
        mut self,
        mut ops: UnboundedReceiver<Op>,
        events: UnboundedSender<Event>,
        approvals: Option<UnboundedSender<Op>>,
    ) {
        let _ = events.send(self.started_event());
        while let Some(op) = ops.recv().await {
            match op {
                Op::UserQuestion { .. } | Op::Alert { .. } => {
                    let usage = Arc::new(std::sync::Mutex::new(Usage::default()));
                    let mut pending: Vec<Op> = Vec::new();
                    let shutdown = {
                        let fut = self.investigate_tracked(op, events.clone(), usage.clone());
                        tokio::pin!(fut);
                        loop {
                            tokio::select! {
                                _ = &mut fut => break false,
                                next = ops.recv() => match next {
                                    Some(Op::Cancel) | None => {
                                        let usage = usage.lock().map(|u| u.clone()).unwrap_or_default();
                                        let _ = events.send(Event::Done { usage, stop_reason: StopReason::Cancelled });
                                        break false;
                                    }
                                    Some(Op::Shutdown) => {
                                        let usage = usage.lock().map(|u| u.clone()).unwrap_or_default();
                                        let _ = events.send(Event::Done { usage, stop_reason: StopReason::Cancelled });
                                        break true;
                                    }
                                    Some(other) => pending.push(other),
                                }
                            }
                        }
                    };
                    if shutdown {
                        return;
                    }
                    // Ops that arrived mid-investigation are handled after it.
                    for op in pending {
                        self.handle_side_op(op, &events, approvals.as_ref());
                    }
                }
                Op::Shutdown => return,
                Op::Cancel => {}
                other => self.handle_side_op(other, &events, approvals.as_ref()),
            }
        }
    }

    fn handle_side_op(
        &mut self,
        op: Op,
        events: &UnboundedSender<Event>,
        approvals: Option<&UnboundedSender<Op>>,
    ) {
        match op {
            Op::ApprovalDecision { .. } => match approvals {
                Some(tx) if tx.send(op).is_ok() => {}
                _ => {
                    let _ = events.send(Event::Error {
                        message: "no approval workflow is attached to this session; approve \
                                  through the front end that requested the approval"
                            .into(),
                    });
                }
            },
            Op::SwitchContext {
                cluster,
                namespace,
                model,
            } => {
                if let Some(c) = cluster {
                    if self.ctx.cluster(Some(&c)).is_ok() {
                        self.cluster = Some(c);
                    } else {
                        let _ = events.send(Event::Error {
                            message: format!(
                                "unknown cluster `{c}`; known: {}",
                                self.ctx.cluster_names().join(", ")
                            ),
                        });
                    }
                }
                if namespace.is_some() {
                    self.config.namespace = namespace;
                }
                if let Some(m) = model {
                    match self.model_config.clone() {
                        Some(mut mc) => {
                            mc.model = m;
                            match RigClient::new(mc.clone()) {
                                Ok(c) => {
                                    self.model = Some(Arc::new(c));
                                    self.model_config = Some(mc);
                                }
                                Err(e) => {
                                    let _ = events.send(Event::Error {
                                        message: e.to_string(),
                                    });
                                }
                            }
                        }
                        None => {
                            let _ = events.send(Event::Error {
                                message: "this session has no model configuration to switch; \
                                          configure `model:` in medic.yaml"
                                    .into(),
                            });
                        }
                    }
                }
                let _ = events.send(self.started_event());
            }
            _ => {}
        }
    }
}
