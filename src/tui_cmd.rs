//! `medic tui`: the terminal front end on an in-process engine.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use medic_agent::protocol::Event;
use medic_approvals::Actor;
use medic_approvals::audit::{self, ExportFilter, RecordKind};
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
    // A replay runs on the bundle's clock; the TUI counts expiry down on the wall clock,
    // so expiry times are shifted by the difference between the two.
    let skew = wired
        .bundle
        .as_ref()
        .map(|b| b.now() - chrono::Utc::now())
        .unwrap_or_default();
    tokio::spawn(async move {
        while let Some(mut e) = engine.events.recv().await {
            if let Event::ApprovalStatus(s) = &mut e
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.expires_at)
            {
                s.expires_at = (t.with_timezone(&chrono::Utc) - skew).to_rfc3339();
            }
            if ev_tx.send(e).await.is_err() {
                return;
            }
        }
    });

    let mut opts = TuiOptions::new(identity);
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
                    started_at: r.at.to_rfc3339(),
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
