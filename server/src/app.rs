//! The server: shared state, the router, readiness and metrics endpoints, serving with
//! graceful shutdown (finish or checkpoint running work), and configuration reload.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medic_agent::protocol::Op;
use tokio::sync::{Notify, mpsc, watch};

use crate::alerts::dispatch::{AlertBatch, Dispatcher};
use crate::alerts::{self, alertmanager, pagerduty};
use crate::config::{Resolved, ServerConfig};
use crate::dedup::Dedup;
use crate::engine::{DynEngine, Engine};
use crate::error::{Result, ServerError};
use crate::metrics::Metrics;
use crate::session::ApprovalPost;
use crate::slack;
use crate::slack::verify::ReplayGuard;
use crate::spend::SpendMeter;
use crate::teams;
use crate::teams::api::TokenCache;
use crate::teams::auth::KeyCache;

/// File (under `state_dir`) holding alert groups that still need an investigation.
pub const CHECKPOINT_FILE: &str = "alert-queue.json";

/// State shared by every handler, worker and session.
pub(crate) struct Shared {
    resolved: RwLock<Arc<Resolved>>,
    pub engine: DynEngine,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    pub replay: ReplayGuard,
    pub dedup: Dedup,
    pub teams_keys: KeyCache,
    pub teams_token: TokenCache,
    pub spend: SpendMeter,
    pub dispatcher: Dispatcher,
    approvals: Mutex<HashMap<String, Arc<tokio::sync::Mutex<ApprovalPost>>>>,
    sessions: Mutex<HashMap<String, mpsc::Sender<Op>>>,
    pub running: AtomicIsize,
    running_changed: Notify,
    drain: watch::Sender<bool>,
    cancelled_by_shutdown: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The current configuration (a reload swaps it whole).
    pub fn resolved(&self) -> Arc<Resolved> {
        self.resolved
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn is_draining(&self) -> bool {
        *self.drain.borrow()
    }

    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }

    pub fn was_cancelled_by_shutdown(&self) -> bool {
        self.cancelled_by_shutdown.load(Ordering::SeqCst)
    }

    pub fn running_add(&self, by: isize) {
        let now = self.running.fetch_add(by, Ordering::SeqCst) + by;
        self.metrics.set(
            crate::metrics::Name::InvestigationsRunning,
            &[],
            now.max(0) as f64,
        );
        self.running_changed.notify_waiters();
    }

    pub fn approval_insert(&self, id: &str, post: ApprovalPost) {
        lock(&self.approvals).insert(id.to_owned(), Arc::new(tokio::sync::Mutex::new(post)));
    }

    pub fn approval_get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<ApprovalPost>>> {
        lock(&self.approvals).get(id).cloned()
    }

    pub fn sessions_insert(&self, key: &str, ops: mpsc::Sender<Op>) {
        lock(&self.sessions).insert(key.to_owned(), ops);
    }

    pub fn sessions_remove(&self, key: &str) {
        lock(&self.sessions).remove(key);
    }

    pub fn session_ops(&self, key: &str) -> Option<mpsc::Sender<Op>> {
        lock(&self.sessions).get(key).cloned()
    }

    pub fn sessions_snapshot(&self) -> Vec<mpsc::Sender<Op>> {
        lock(&self.sessions).values().cloned().collect()
    }

    async fn wait_idle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.running_changed.notified();
            if self.running.load(Ordering::SeqCst) <= 0 {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            // Re-check periodically: a notify between the load and the wait is not lost
            // for long.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

/// What shutdown did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Investigations that finished within the grace period.
    pub finished_in_grace: bool,
    /// Investigations cancelled after the grace period (their partial results were posted).
    pub cancelled: usize,
    /// Alert groups written to the checkpoint for the next start.
    pub checkpointed: usize,
    /// The checkpoint file, when one was written.
    pub checkpoint: Option<PathBuf>,
}

/// medic's HTTP front door.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Builds the server: reads every secret and file the configuration names, starts the
    /// investigation workers, and re-queues alert groups checkpointed by the last shutdown.
    /// Must be called inside a Tokio runtime.
    pub fn new(config: ServerConfig, engine: impl Engine) -> Result<Server> {
        let resolved = Resolved::load(config)?;
        let http = reqwest::Client::builder()
            .timeout(resolved.http_timeout())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ServerError::Config(format!("cannot build the HTTP client: {e}")))?;
        let (drain, _) = watch::channel(false);
        let workers = resolved.config.alerts.max_concurrent;
        let shared = Arc::new(Shared {
            dispatcher: Dispatcher::new(resolved.config.alerts.queue_size),
            resolved: RwLock::new(Arc::new(resolved)),
            engine: Arc::new(engine),
            metrics: Arc::new(Metrics::default()),
            http,
            replay: ReplayGuard::default(),
            dedup: Dedup::default(),
            teams_keys: KeyCache::default(),
            teams_token: TokenCache::default(),
            spend: SpendMeter::default(),
            approvals: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            running: AtomicIsize::new(0),
            running_changed: Notify::new(),
            drain,
            cancelled_by_shutdown: AtomicBool::new(false),
        });
        for _ in 0..workers {
            tokio::spawn(alerts::worker(shared.clone()));
        }
        let server = Server { shared };
        server.restore_checkpoint()?;
        Ok(server)
    }

    fn checkpoint_path(&self) -> Option<PathBuf> {
        self.shared
            .resolved()
            .config
            .state_dir
            .as_ref()
            .map(|d| d.join(CHECKPOINT_FILE))
    }

    fn restore_checkpoint(&self) -> Result<()> {
        let Some(path) = self.checkpoint_path() else {
            return Ok(());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ServerError::File {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let batches: Vec<AlertBatch> =
            serde_json::from_str(&text).map_err(|e| ServerError::File {
                path: path.clone(),
                reason: format!("not a medic alert checkpoint: {e}"),
            })?;
        let n = batches.len();
        for b in batches {
            let _ = alerts::admit(&self.shared, b);
        }
        std::fs::remove_file(&path).map_err(|e| ServerError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(groups = n, "re-queued alert groups from the last shutdown");
        Ok(())
    }

    /// The routes: `/slack/events`, `/slack/interactivity`, `/teams/messages`,
    /// `/alerts/alertmanager`, `/alerts/pagerduty`, `/healthz`, `/readyz`, `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/slack/events", post(slack::events::events))
            .route("/slack/interactivity", post(slack::events::interactivity))
            .route("/teams/messages", post(teams::handler::messages))
            .route("/alerts/alertmanager", post(alertmanager::receive))
            .route("/alerts/pagerduty", post(pagerduty::receive))
            .route_layer(middleware::from_fn_with_state(self.shared.clone(), timed))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.shared.clone())
    }

    /// The metrics registry (also served on `/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Swaps in a new configuration (SIGHUP): secrets and files are re-read; on error the
    /// old configuration stays and the error says why. Queue size and worker count keep
    /// their start-up values.
    pub async fn reload(&self, config: ServerConfig) -> Result<()> {
        let old = self.shared.resolved();
        let openid_changed = old.config.teams.as_ref().map(|t| &t.openid_config_url)
            != config.teams.as_ref().map(|t| &t.openid_config_url);
        let resolved = Resolved::load(config)?;
        *self
            .shared
            .resolved
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(resolved);
        if openid_changed {
            self.shared.teams_keys.clear().await;
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Serves on `listener` until `shutdown` resolves, then drains: stops taking alerts,
    /// waits up to `shutdown_grace_secs` for running investigations, cancels the rest (the
    /// engine answers with what it has, which is posted), and checkpoints alert groups that
    /// still need an investigation to `state_dir`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ShutdownReport> {
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        self.drain().await
    }

    /// [`Server::serve`] driven by Unix signals: SIGTERM or SIGINT shut down (drain and
    /// checkpoint); SIGHUP awaits `reload_config` and swaps the result in, logging (and
    /// otherwise ignoring) a configuration that does not load. The caller's future may
    /// reload its own state too (`medic serve` swaps the approval book's people).
    pub async fn serve_with_signals<F, Fut>(
        self,
        listener: tokio::net::TcpListener,
        reload_config: F,
    ) -> Result<ShutdownReport>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<ServerConfig>> + Send,
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = self.clone();
        let signals = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                    _ = hup.recv() => {
                        match reload_config().await {
                            Ok(cfg) => {
                                if let Err(e) = server.reload(cfg).await {
                                    tracing::error!(error = %e, "reload refused; the previous configuration stays");
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "reload refused; the previous configuration stays"),
                        }
                    }
                }
            }
            tracing::info!("shutdown signal received; draining");
            let _ = stop_tx.send(());
        });
        let report = self
            .serve(listener, async move {
                let _ = stop_rx.await;
            })
            .await;
        signals.abort();
        report
    }

    /// The drain half of [`Server::serve`], for callers that run the router themselves.
    pub async fn drain(&self) -> Result<ShutdownReport> {
        let _ = self.shared.drain.send(true);
        let grace = Duration::from_secs(self.shared.resolved().config.shutdown_grace_secs);
        let mut report = ShutdownReport {
            finished_in_grace: self.shared.wait_idle(grace).await,
            ..ShutdownReport::default()
        };
        if !report.finished_in_grace {
            self.shared
                .cancelled_by_shutdown
                .store(true, Ordering::SeqCst);
            report.cancelled = crate::session::cancel_all(&self.shared);
            self.shared.wait_idle(Duration::from_secs(5)).await;
        }
        let pending = self.shared.dispatcher.checkpoint();
        if let Some(path) = self.checkpoint_path()
            && !pending.is_empty()
        {
            let text = serde_json::to_string_pretty(&pending).map_err(|e| ServerError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| ServerError::File {
                    path: dir.to_owned(),
                    reason: e.to_string(),
                })?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, text).map_err(|e| ServerError::File {
                path: tmp.clone(),
                reason: e.to_string(),
            })?;
            std::fs::rename(&tmp, &path).map_err(|e| ServerError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            report.checkpointed = pending.len();
            report.checkpoint = Some(path);
        }
        tracing::info!(?report, "server drained");
        Ok(report)
    }
}

async fn timed(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().trim_start_matches('/').replace('/', "_"))
        .unwrap_or_else(|| "other".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    shared
        .metrics
        .observe_webhook(&endpoint, resp.status().as_u16(), start.elapsed());
    resp
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let r = shared.resolved();
    if shared.dispatcher.queued() >= r.config.alerts.queue_size {
        return (StatusCode::SERVICE_UNAVAILABLE, "alert queue full").into_response();
    }
    (StatusCode::OK, "ready").into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.metrics.set(
        crate::metrics::Name::QueueDepth,
        &[],
        shared.dispatcher.queued() as f64,
    );
    shared.metrics.set(
        crate::metrics::Name::SpendHour,
        &[],
        shared.spend.tokens_last_hour() as f64,
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}
