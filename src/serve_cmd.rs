//! `medic serve`: the HTTP front door (`medic-server`) over the engine (`medic-engine`).
//!
//! The server speaks to an engine through two calls — start a session, take a decision —
//! and [`ServeEngine`] answers them with the same engine the CLI and the TUI use, so a
//! pending approval is one object wherever it is shown and the first valid decision wins:
//! - a session is [`medic_engine::Engine::connect`] behind bounded channels; it closes once
//!   the investigation is done and every approval it requested has reached an end
//!   (executed, failed, undone, denied, expired), so finished threads free their memory;
//! - a decision runs [`medic_engine::Remediation::decide`] as the chat actor (the audit
//!   log shows `slack:U…` next to the identity it maps to); when it completes the
//!   approval, the reply goes back at once and the execution's steps flow into the
//!   thread of the session that requested the plan.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use medic_agent::protocol::{ApprovalVerdict, Event, Op, approval_settled};
use medic_approvals::Actor;
use medic_server::{
    DecisionReply, DecisionRequest, Server, ServerConfig, ServerError, SessionLink, SessionRequest,
};
use tokio::sync::{mpsc, oneshot};

use crate::cli::HttpServeArgs;
use crate::config::Config;
use crate::kubectx::KubeTarget;
use crate::wire::{WireOptions, wire};

/// Events a session may queue towards a slow chat surface before the engine waits.
const SESSION_EVENTS: usize = 1024;

/// Runs `medic serve` until SIGTERM/SIGINT; SIGHUP reloads medic.yaml's `server` section.
pub async fn run(
    config_path: Option<PathBuf>,
    target: &KubeTarget,
    args: &HttpServeArgs,
) -> Result<()> {
    let (config, source) = Config::discover(config_path.as_deref())?;
    let opts = WireOptions {
        sandbox: args.sandbox.clone(),
        no_model: args.no_model,
        model: args.model.clone(),
        data_dir: args.data_dir.clone(),
    };
    let wired = wire(&config, target, &opts, target.namespace.clone()).await?;
    // People are the engine's: in a replay the bundle's (plus medic.yaml's chat ids), else
    // `approvals.identities`. The server maps chat users with the same list.
    let state_dir = wired.data_dir.join("server");
    let first = server_config(&config, wired.identities.clone(), &state_dir)?;
    let engine = ServeEngine::new(wired.engine.clone());
    let server = Server::new(first, engine)
        .with_context(|| format!("cannot start the server with the configuration from {source}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // On stdout, so scripts (and tests using port 0) learn the address.
    println!("medic serve listening on http://{addr}");
    tracing::info!(%addr, config = %source, "medic serve listening");
    // SIGHUP: medic.yaml again — the server section, and who may approve what (identities
    // and policy), swapped into the approval book with an audit record. Anything that does
    // not load leaves everything as it was.
    let book = wired.engine.remediation().book().clone();
    let bundle = Arc::new(wired.bundle);
    let reload = move || {
        let (config_path, state_dir, book, bundle) = (
            config_path.clone(),
            state_dir.clone(),
            book.clone(),
            bundle.clone(),
        );
        async move {
            let cfg = |e: anyhow::Error| ServerError::Config(format!("{e:#}"));
            let (config, source) = Config::discover(config_path.as_deref())
                .map_err(|e| ServerError::Config(format!("{e:#}")))?;
            let people = crate::wire::people(&config, bundle.as_ref().as_ref()).map_err(cfg)?;
            let (map, policy) = people.build().map_err(cfg)?;
            let server = server_config(&config, people.identities, &state_dir).map_err(cfg)?;
            let actor: Actor = "medic"
                .parse()
                .map_err(|e| ServerError::Config(format!("{e}")))?;
            let record = book
                .reload(policy, map, &actor, &source.to_string(), chrono::Utc::now())
                .await
                .map_err(|e| ServerError::Config(format!("{e:#}")))?;
            tracing::info!(audit_seq = record.seq, change = %record.payload, "approval identities and policy reloaded");
            Ok(server)
        }
    };
    let report = server.serve_with_signals(listener, reload).await?;
    tracing::info!(?report, "medic serve stopped");
    if let Some(sandbox) = wired.sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}

/// The `server` section as the server takes it: identities from the one list the engine
/// uses, queued work checkpointed under the data directory unless configured elsewhere.
fn server_config(
    config: &Config,
    identities: Vec<medic_approvals::IdentityEntry>,
    state_dir: &std::path::Path,
) -> Result<ServerConfig> {
    let mut server = config.server.clone().unwrap_or_default();
    if !server.identities.is_empty() {
        bail!(
            "server.identities is set in medic.yaml, but people are listed once, under \
             approvals.identities (the terminal, chat and the policy share them); move the \
             entries there"
        );
    }
    server.identities = identities;
    if server.state_dir.is_none() {
        server.state_dir = Some(state_dir.to_path_buf());
    }
    Ok(server)
}

/// [`medic_server::Engine`] over [`medic_engine::Engine`].
#[derive(Clone)]
pub struct ServeEngine {
    engine: medic_engine::Engine,
    /// Approval id → the event channel of the session that requested it, so an execution
    /// started by a click reports into that session's thread.
    sinks: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>>,
}

impl ServeEngine {
    /// Wraps the engine.
    pub fn new(engine: medic_engine::Engine) -> Self {
        Self {
            engine,
            sinks: Arc::default(),
        }
    }

    fn sink(&self, approval_id: &str) -> Option<mpsc::UnboundedSender<Event>> {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(approval_id)
            .cloned()
    }
}

impl medic_server::Engine for ServeEngine {
    async fn start(&self, request: SessionRequest) -> medic_server::Result<SessionLink> {
        let requester: Actor = request
            .requester
            .parse()
            .map_err(|e| ServerError::Engine(format!("requester `{}`: {e}", request.requester)))?;
        let link = self.engine.connect(requester);
        link.ops
            .send(request.op)
            .map_err(|_| ServerError::Engine("the session stopped before it started".into()))?;
        let (ops_tx, mut ops_rx) = mpsc::channel::<Op>(16);
        let (events_tx, events_rx) = mpsc::channel::<Event>(SESSION_EVENTS);
        let (extra_tx, mut extra_rx) = mpsc::unbounded_channel::<Event>();

        let engine_ops = link.ops.clone();
        tokio::spawn(async move {
            while let Some(op) = ops_rx.recv().await {
                if engine_ops.send(op).is_err() {
                    return;
                }
            }
        });

        let sinks = self.sinks.clone();
        let key = request.key;
        let mut engine_events = link.events;
        let engine_ops = link.ops;
        tokio::spawn(async move {
            let mut done = false;
            let mut approvals: HashMap<String, String> = HashMap::new();
            loop {
                let event = tokio::select! {
                    Some(e) = engine_events.recv() => e,
                    Some(e) = extra_rx.recv() => e,
                    else => break,
                };
                match &event {
                    Event::ApprovalRequested { approval_id, .. } => {
                        approvals.insert(approval_id.clone(), "pending".into());
                        sinks
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(approval_id.clone(), extra_tx.clone());
                    }
                    Event::ApprovalStatus(s) => {
                        approvals.insert(s.approval_id.clone(), s.state.clone());
                    }
                    Event::Done { .. } => done = true,
                    _ => {}
                }
                if events_tx.send(event).await.is_err() {
                    break;
                }
                if done && approvals.values().all(|s| approval_settled(s)) {
                    break;
                }
            }
            let mut sinks = sinks.lock().unwrap_or_else(PoisonError::into_inner);
            for id in approvals.keys() {
                sinks.remove(id);
            }
            drop(sinks);
            let _ = engine_ops.send(Op::Shutdown);
            tracing::debug!(session = %key, "session closed");
        });

        Ok(SessionLink {
            ops: ops_tx,
            events: events_rx,
        })
    }

    async fn decide(&self, decision: DecisionRequest) -> medic_server::Result<DecisionReply> {
        let remediation = self.engine.remediation().clone();
        match remediation.status(&decision.approval_id).await {
            Ok(_) => {}
            Err(medic_engine::Error::UnknownApproval(_)) => return Ok(DecisionReply::Unknown),
            Err(e) => return Err(ServerError::Engine(e.to_string())),
        }
        // The chat actor, so the audit log says where the decision came from; the book maps
        // it to the same identity the server did.
        let actor: Actor = decision
            .via
            .parse()
            .unwrap_or_else(|_| Actor::Name(decision.actor.clone()));
        let approve = decision.verdict == ApprovalVerdict::Approve;
        let sink = self.sink(&decision.approval_id);

        // Executor progress goes to the requesting session; the first `ApprovalDecided`
        // means this decision completed the approval and execution has begun.
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (began_tx, began_rx) = oneshot::channel::<()>();
        {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut began = Some(began_tx);
                while let Some(event) = rx.recv().await {
                    if matches!(event, Event::ApprovalDecided { .. })
                        && let Some(b) = began.take()
                    {
                        let _ = b.send(());
                    }
                    if let Some(s) = &sink {
                        let _ = s.send(event);
                    }
                }
            });
        }
        let id = decision.approval_id.clone();
        let rem = remediation.clone();
        let mut task = tokio::spawn(async move {
            let status = rem
                .decide(&id, &actor, approve, decision.reason, None, &tx)
                .await;
            if let (Ok(status), Some(s)) = (&status, &sink) {
                let _ = s.send(Event::ApprovalStatus(status.clone()));
            }
            status
        });
        tokio::select! {
            joined = &mut task => match joined {
                Ok(Ok(status)) => Ok(match status.refusal.clone() {
                    Some(reason) => DecisionReply::Refused { reason, status: Some(status) },
                    None => DecisionReply::Accepted(status),
                }),
                Ok(Err(medic_engine::Error::UnknownApproval(_))) => Ok(DecisionReply::Unknown),
                Ok(Err(e)) => Err(ServerError::Engine(e.to_string())),
                Err(e) => Err(ServerError::Engine(format!("the decision task failed: {e}"))),
            },
            Ok(()) = began_rx => {
                // Approved: the plan is executing in the background; say so now.
                let (_, status) = remediation
                    .status(&decision.approval_id)
                    .await
                    .map_err(|e| ServerError::Engine(e.to_string()))?;
                Ok(DecisionReply::Accepted(status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn server_identities_are_refused_in_favour_of_approvals() {
        let mut config = Config::default();
        let mut server = ServerConfig::default();
        server.identities.push(medic_approvals::IdentityEntry {
            name: "alice".into(),
            kube_user: "alice@corp.example".into(),
            groups: vec![],
            slack: None,
            teams: None,
            terminal: None,
            agent: false,
        });
        config.server = Some(server);
        let err = server_config(&config, vec![], std::path::Path::new("/tmp/x")).unwrap_err();
        assert!(err.to_string().contains("approvals.identities"), "{err}");
    }

    #[test]
    fn state_dir_defaults_under_the_data_directory() {
        let cfg = server_config(
            &Config::default(),
            vec![],
            std::path::Path::new("/d/server"),
        )
        .unwrap();
        assert_eq!(
            cfg.state_dir.as_deref(),
            Some(std::path::Path::new("/d/server"))
        );
    }
}
