//! Alert receivers (Alertmanager, PagerDuty), the dispatcher between them and the engine,
//! and the workers that run one investigation per alert group.

pub(crate) mod alertmanager;
pub(crate) mod dispatch;
pub(crate) mod pagerduty;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_agent::protocol::Op;
use medic_tools::runbooks::{ChannelKind, search};
use serde_json::json;
use tokio::sync::oneshot;

use crate::app::Shared;
use crate::chat::Surface;
use crate::engine::{Origin, SessionRequest};
use crate::metrics::Name;
use crate::session::{self, Spec};
use dispatch::{Admission, AlertBatch, Followup, Limits};

/// Hands a batch to the dispatcher and answers the webhook.
pub(crate) fn admit(shared: &Arc<Shared>, batch: AlertBatch) -> Response {
    if shared.is_draining() {
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", "shutting_down")]);
        return busy(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(10),
            "shutting_down",
        );
    }
    let r = shared.resolved();
    let limits = Limits {
        dedup_ttl: Duration::from_secs(r.config.alerts.dedup_ttl_secs),
        reinvestigate_after: Duration::from_secs(r.config.alerts.reinvestigate_after_secs),
    };
    let spend_wait = shared.spend.over_cap(&r.config.spend);
    let (admission, followups) = shared.dispatcher.submit(batch, limits, spend_wait);
    shared
        .metrics
        .set(Name::QueueDepth, &[], shared.dispatcher.queued() as f64);
    if !followups.is_empty() {
        let s = shared.clone();
        tokio::spawn(async move { run_followups(&s, followups).await });
    }
    match admission {
        Admission::Accepted {
            new,
            duplicate,
            resolved,
        } => {
            shared
                .metrics
                .add(Name::Alerts, &[("outcome", "new")], new as f64);
            shared
                .metrics
                .add(Name::Alerts, &[("outcome", "duplicate")], duplicate as f64);
            shared
                .metrics
                .add(Name::Alerts, &[("outcome", "resolved")], resolved as f64);
            (
                StatusCode::OK,
                axum::Json(
                    json!({ "accepted": new, "duplicates": duplicate, "resolved": resolved }),
                ),
            )
                .into_response()
        }
        Admission::Busy {
            retry_after,
            reason,
        } => {
            shared.metrics.inc(Name::Rejected, &[("reason", reason)]);
            // 503 for a full queue (Alertmanager retries 5xx); 429 when the spend cap holds.
            let code = if reason == "spend_cap" {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            busy(code, retry_after, reason)
        }
    }
}

fn busy(code: StatusCode, retry_after: Duration, reason: &str) -> Response {
    let mut resp = (
        code,
        axum::Json(json!({ "error": reason, "retry_after_secs": retry_after.as_secs().max(1) })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn run_followups(shared: &Shared, followups: Vec<Followup>) {
    for f in followups {
        match f {
            Followup::Annotate(mut surface, text) => {
                if let Err(e) = shared.post(&mut surface, &crate::card::notice(text)).await {
                    tracing::warn!(error = %e, "could not annotate an alert thread");
                }
            }
            Followup::Cancel(key) => {
                if let Some(ops) = shared.session_ops(&key) {
                    let _ = ops.send(Op::Cancel).await;
                }
            }
        }
    }
}

/// One investigation worker: takes groups off the queue until shutdown.
pub(crate) async fn worker(shared: Arc<Shared>) {
    loop {
        let key = {
            let mut rx = shared.dispatcher.rx.lock().await;
            let mut drain = shared.drain_signal();
            tokio::select! {
                k = rx.recv() => k,
                _ = drain.wait_for(|d| *d) => None,
            }
        };
        let Some(key) = key else { return };
        if shared.is_draining() {
            // Left queued in the dispatcher: the shutdown checkpoint keeps it.
            return;
        }
        // The spend cap holds the queue (webhooks then see 429/503) instead of dropping work.
        loop {
            let r = shared.resolved();
            let Some(wait) = shared.spend.over_cap(&r.config.spend) else {
                break;
            };
            let mut drain = shared.drain_signal();
            tokio::select! {
                _ = tokio::time::sleep(wait.min(Duration::from_secs(5))) => {}
                _ = drain.wait_for(|d| *d) => return,
            }
        }
        let job = shared.dispatcher.begin(&key);
        shared
            .metrics
            .set(Name::QueueDepth, &[], shared.dispatcher.queued() as f64);
        let Some(job) = job else {
            shared
                .metrics
                .inc(Name::Alerts, &[("outcome", "resolved_before_start")]);
            continue;
        };
        let r = shared.resolved();
        let mut labels = job.common_labels.clone();
        if let Some(first) = job.alerts.first() {
            for (k, v) in &first.labels {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let runbook = search(&r.runbooks, &labels, None)
            .into_iter()
            .find(|h| h.alert_match)
            .map(|h| h.runbook);
        let channel = runbook
            .as_ref()
            .and_then(|rb| rb.channel.clone())
            .or_else(|| r.config.alerts.default_channel.clone());
        let surface = match channel {
            Some(c) if c.kind == ChannelKind::Slack => Surface::Slack {
                channel: c.target,
                thread_ts: None,
            },
            Some(c) => Surface::TeamsChannel {
                service_url: r
                    .config
                    .teams
                    .as_ref()
                    .map(|t| t.service_url.clone())
                    .unwrap_or_default(),
                channel_id: c.target,
            },
            None => Surface::Nowhere,
        };
        let requester = r
            .identities
            .iter()
            .find(|i| i.agent)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| "medic".into());
        let source = match job.origin {
            Origin::Pagerduty => "pagerduty",
            _ => "alertmanager",
        };
        let mut title = dispatch::title(&job);
        if let Some(rb) = &runbook {
            title.push_str(&format!(" · runbook {}", rb.name));
        }
        let spec = Spec {
            request: SessionRequest {
                key: job.session_key.clone(),
                origin: job.origin.clone(),
                requester,
                op: Op::Alert {
                    source: source.into(),
                    payload: dispatch::payload(&job, runbook.as_ref()),
                },
            },
            surface,
            title,
            group_key: Some(key.clone()),
        };
        let (tx, rx) = oneshot::channel();
        tokio::spawn(session::run(shared.clone(), spec, Some(tx)));
        let _ = rx.await;
        shared
            .dispatcher
            .finish(&key, shared.was_cancelled_by_shutdown());
    }
}
