//! `medic tui`: the terminal front end on an in-process engine.
//!
//! Besides its own session's plans, the TUI shows every pending approval request in the
//! shared data directory (`watch_elsewhere`): a plan requested from another terminal, Slack
//! or Teams can be read and decided here, and its state follows decisions made anywhere.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use medic_agent::protocol::{ApprovalStatus, Event};
use medic_approvals::Actor;
use medic_approvals::audit::{self, ExportFilter, RecordKind};
use medic_engine::Remediation;
use medic_engine::view::{approval_status, plan_view};
use medic_playbooks::Plan;
use medic_tui::{EngineLink, SessionSummary, TuiOptions};
use tokio::sync::mpsc;

use crate::wire::Wired;

/// Opens the TUI for the terminal user (`actor`), mapped through the identities in force.
pub async fn run(
    wired: &Wired,
    actor: Actor,
    namespace: Option<String>,
    question: Option<String>,
) -> Result<()> {
    let identity = wired
        .identities
        .iter()
        .find(|i| match &actor {
            Actor::Terminal(u) => i.terminal.as_deref() == Some(u.as_str()),
            Actor::Name(n) => &i.name == n,
            _ => false,
        })
        .filter(|i| !i.agent)
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let requester = if identity.is_empty() {
        actor
    } else {
        Actor::Name(identity.clone())
    };
    let mut engine = wired.engine.connect(requester);

    // The TUI speaks bounded channels; bridge them to the engine's.
    let (ops_tx, mut ops_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let engine_ops = engine.ops.clone();
    tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            if engine_ops.send(op).is_err() {
                return;
            }
        }
    });
    // Engine events and the watcher's (approvals requested elsewhere) meet here.
    let (merged_tx, mut merged_rx) = mpsc::unbounded_channel::<Event>();
    let shared = Arc::new(Mutex::new(Watched::default()));
    {
        let merged = merged_tx.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(e) = engine.events.recv().await {
                if let Event::ApprovalRequested { approval_id, .. }
                | Event::ApprovalStatus(ApprovalStatus { approval_id, .. }) = &e
                    && let Ok(mut w) = shared.lock()
                {
                    w.ours.insert(approval_id.clone());
                }
                if merged.send(e).is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(watch_elsewhere(
        wired.engine.remediation().clone(),
        shared.clone(),
        merged_tx,
    ));
    // A replay runs on the bundle's clock; the TUI counts expiry down on the wall clock,
    // so expiry times are shifted by the difference between the two.
    let skew = wired
        .bundle
        .as_ref()
        .map(|b| b.now() - chrono::Utc::now())
        .unwrap_or_default();
    tokio::spawn(async move {
        while let Some(mut e) = merged_rx.recv().await {
            if let Event::ApprovalStatus(s) = &mut e {
                if let Ok(mut w) = shared.lock() {
                    w.last.insert(
                        s.approval_id.clone(),
                        (s.state.clone(), s.approved_by.clone()),
                    );
                }
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.expires_at) {
                    s.expires_at = (t.with_timezone(&chrono::Utc) - skew).to_rfc3339();
                }
            }
            if ev_tx.send(e).await.is_err() {
                return;
            }
        }
    });

    let mut opts = TuiOptions::new(identity.clone());
    // The session asks as the mapped identity (see `requester` above).
    opts.requester = Some(identity).filter(|i| !i.is_empty());
    opts.cluster = wired
        .clusters
        .first()
        .map(|c| c.context.clone())
        .unwrap_or_default();
    opts.clusters = wired.clusters.iter().map(|c| c.context.clone()).collect();
    opts.namespace = namespace.unwrap_or_default();
    opts.initial_question = question;
    let log = medic_approvals::ApprovalBook::audit_path(&wired.data_dir);
    opts.history = Arc::new(move || history(&log));
    medic_tui::run(
        EngineLink {
            ops: ops_tx,
            events: ev_rx,
        },
        opts,
    )
    .await?;
    Ok(())
}

/// How often the approval book is read for requests made elsewhere.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What the watcher knows, shared with the event bridge.
#[derive(Default)]
struct Watched {
    /// Approval ids this session's engine reported (it follows those itself).
    ours: HashSet<String>,
    /// The last state and approvers the TUI was sent, per approval id.
    last: HashMap<String, (String, Vec<String>)>,
}

/// Shows the TUI the approval requests made elsewhere (another terminal, a chat bot, a
/// runbook) and follows their state. A request is shown once it has been pending for a
/// whole poll and this session's engine has not claimed it, so the engine's own requests
/// are never shown twice.
async fn watch_elsewhere(
    remediation: Remediation,
    shared: Arc<Mutex<Watched>>,
    events: mpsc::UnboundedSender<Event>,
) {
    let book = remediation.book().clone();
    let mut candidates: HashSet<String> = HashSet::new();
    let mut shown: HashSet<String> = HashSet::new();
    loop {
        if events.is_closed() {
            return;
        }
        let now = remediation.now();
        let pending = tokio::time::timeout(WATCH_EVERY * 5, book.list_pending(now)).await;
        let pending = match pending {
            Ok(Ok(p)) => p,
            // The book is busy or unreadable for now; the next round tries again.
            _ => Vec::new(),
        };
        let ours = shared.lock().map(|w| w.ours.clone()).unwrap_or_default();
        let mut next = HashSet::new();
        for state in pending {
            let id = state.request.id.clone();
            if ours.contains(&id) || shown.contains(&id) {
                continue;
            }
            if !candidates.contains(&id) {
                next.insert(id);
                continue;
            }
            let Ok(Some(recorded)) = book.recorded_plan(&id).await else {
                continue;
            };
            let Ok(plan) = serde_json::from_value::<Plan>(recorded.plan) else {
                continue;
            };
            let status = approval_status(&state, None, None, None, now);
            let view = plan_view(&plan, &status.plan_hash);
            let proposal_id = status.proposal_id.clone();
            let summary = format!(
                "requested elsewhere by {} at {}",
                state.request.requester,
                state.request.created.format("%H:%M:%S UTC")
            );
            let sent = [
                Event::PlanReady {
                    proposal_id: proposal_id.clone(),
                    plan: view,
                },
                Event::ApprovalRequested {
                    approval_id: id.clone(),
                    proposal_id,
                    plan_hash: status.plan_hash.clone(),
                    summary,
                    approvers: status.waiting_for.clone(),
                },
                Event::ApprovalStatus(status),
            ]
            .into_iter()
            .all(|e| events.send(e).is_ok());
            if !sent {
                return;
            }
            shown.insert(id);
        }
        candidates = next;
        // Follow every request on screen until it settles: the engine reports its own
        // state changes, but approvals arriving from elsewhere (Slack, Teams, the CLI,
        // another terminal) leave the state `pending` and would otherwise go unseen.
        let (ours, last) = shared
            .lock()
            .map(|w| (w.ours.clone(), w.last.clone()))
            .unwrap_or_default();
        for id in ours.iter().chain(shown.clone().iter()) {
            let (state, approved_by) = last.get(id).cloned().unwrap_or_default();
            if medic_agent::protocol::approval_settled(&state) {
                shown.remove(id);
                continue;
            }
            let Ok(Ok((_, status))) =
                tokio::time::timeout(WATCH_EVERY * 5, remediation.status(id)).await
            else {
                continue;
            };
            // The book says `executing` until the end; the executing front end reports
            // the outcome itself, so `executing` after `approved` adds nothing.
            // The front end may have reported an outcome while the book was read.
            let now_settled = shared
                .lock()
                .ok()
                .and_then(|w| {
                    w.last
                        .get(id)
                        .map(|l| medic_agent::protocol::approval_settled(&l.0))
                })
                .unwrap_or(false);
            if now_settled {
                continue;
            }
            let moved =
                status.state != state && !(state == "approved" && status.state == "executing");
            if (moved || status.approved_by != approved_by)
                && events.send(Event::ApprovalStatus(status)).is_err()
            {
                return;
            }
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Past sessions, newest first, from the audit log: each approval request with what became
/// of it.
fn history(log: &Path) -> Vec<SessionSummary> {
    let Ok(records) = audit::export(log, ExportFilter::default()) else {
        return Vec::new();
    };
    let mut out: Vec<SessionSummary> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in records.flatten() {
        let Some(id) = r.approval_id.clone() else {
            continue;
        };
        match r.kind {
            RecordKind::ApprovalRequested => {
                let title = r
                    .payload
                    .pointer("/request/summary/title")
                    .and_then(|v| v.as_str())
                    .unwrap_or("plan")
                    .to_string();
                index.insert(id.clone(), out.len());
                out.push(SessionSummary {
                    id,
                    started_at: r.at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    title,
                    outcome: "requested".into(),
                });
            }
            other => {
                if let Some(&i) = index.get(&id) {
                    out[i].outcome = other.as_str().replace('_', " ");
                }
            }
        }
    }
    out.reverse();
    out
}
