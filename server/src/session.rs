//! The session runner: starts a session on the engine, folds its events into one progress
//! message (updated in place), posts each approval request as a card with buttons, keeps
//! those cards in step with decisions from anywhere, and posts the result of an execution.

use std::sync::Arc;

use medic_agent::protocol::{ApprovalStatus, Event, Op};
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use crate::app::Shared;
use crate::card::{ApprovalView, Transcript, result_card, status_rank};
use crate::chat::{MsgRef, Surface};
use crate::engine::{Origin, SessionRequest};
use crate::metrics::Name;

/// An approval card and where it lives.
#[derive(Debug)]
pub(crate) struct ApprovalPost {
    pub view: ApprovalView,
    pub msg: MsgRef,
    pub surface: Surface,
    pub result_posted: bool,
}

/// What one run needs.
pub(crate) struct Spec {
    pub request: SessionRequest,
    pub surface: Surface,
    pub title: String,
    /// The alert group it investigates, if any (the dispatcher learns its thread).
    pub group_key: Option<String>,
}

fn origin_label(o: &Origin) -> &'static str {
    match o {
        Origin::Slack => "slack",
        Origin::Teams => "teams",
        Origin::Alertmanager => "alertmanager",
        Origin::Pagerduty => "pagerduty",
    }
}

/// Applies a newer status to an approval card and re-renders it. Returns the post when a
/// terminal execution state arrived and no result was posted yet (the caller posts it).
pub(crate) async fn apply_status(
    shared: &Shared,
    post: &Mutex<ApprovalPost>,
    status: ApprovalStatus,
) -> bool {
    let mut p = post.lock().await;
    if p.view
        .status
        .as_ref()
        .is_some_and(|old| status_rank(old) > status_rank(&status))
    {
        return false;
    }
    if p.view.status.as_ref() == Some(&status) {
        return false;
    }
    p.view.status = Some(status);
    let card = p.view.card();
    if let Err(e) = shared.update(&p.msg, &card).await {
        tracing::warn!(error = %e, approval = %p.view.approval_id, "could not update the approval card");
    }
    let terminal = matches!(
        p.view.status.as_ref().map(|s| s.state.as_str()),
        Some("executed" | "failed" | "undone")
    );
    terminal && !p.result_posted
}

/// Runs a session to its end. `done` fires when the investigation finished (or failed to
/// start), which frees the alert worker while approvals may still be pending.
pub(crate) async fn run(shared: Arc<Shared>, mut spec: Spec, done: Option<oneshot::Sender<()>>) {
    let span = tracing::info_span!("investigation", key = %spec.request.key, origin = origin_label(&spec.request.origin));
    run_inner(shared, &mut spec, done).instrument(span).await;
}

async fn run_inner(shared: Arc<Shared>, spec: &mut Spec, mut done: Option<oneshot::Sender<()>>) {
    let origin = origin_label(&spec.request.origin);
    shared
        .metrics
        .inc(Name::InvestigationsStarted, &[("origin", origin)]);
    shared.running_add(1);
    let mut transcript = Transcript::new(spec.title.clone());
    let progress = match shared
        .post(&mut spec.surface, &transcript.progress_card())
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "could not post the progress message; continuing unposted");
            MsgRef::Nowhere
        }
    };
    if let Some(g) = &spec.group_key {
        shared.dispatcher.set_thread(g, spec.surface.clone());
    }
    let key = spec.request.key.clone();
    let link = match shared.engine.start(spec.request.clone()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "engine did not start the session");
            transcript
                .notes
                .push(format!("error: the investigation could not start: {e}"));
            let _ = shared.update(&progress, &transcript.progress_card()).await;
            shared.metrics.inc(
                Name::InvestigationsFinished,
                &[("stop_reason", "start_failed")],
            );
            shared.running_add(-1);
            if let Some(d) = done.take() {
                let _ = d.send(());
            }
            return;
        }
    };
    shared.sessions_insert(&key, link.ops.clone());
    let mut events = link.events;
    let mut last_usage = (0u64, 0u64, 0f64);
    let mut finished = false;
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        // Fold whatever is already queued into one update (chat APIs are rate limited).
        while let Ok(ev) = events.try_recv() {
            batch.push(ev);
            if batch.len() >= 64 {
                break;
            }
        }
        let mut changed = false;
        let mut finished_now = false;
        for ev in batch {
            changed |= transcript.apply(&ev);
            match ev {
                Event::ToolCallFinished { ok, .. } => {
                    shared.metrics.inc(
                        Name::ToolCalls,
                        &[("result", if ok { "ok" } else { "error" })],
                    );
                }
                Event::TokenUsage(u) => {
                    record_usage(
                        &shared,
                        &mut last_usage,
                        u.input_tokens,
                        u.output_tokens,
                        u.cost_usd.unwrap_or(0.0),
                    );
                }
                Event::Done { usage, stop_reason } => {
                    record_usage(
                        &shared,
                        &mut last_usage,
                        usage.input_tokens,
                        usage.output_tokens,
                        usage.cost_usd.unwrap_or(0.0),
                    );
                    let reason = serde_json::to_value(stop_reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    shared
                        .metrics
                        .inc(Name::InvestigationsFinished, &[("stop_reason", &reason)]);
                    finished_now = true;
                }
                Event::ApprovalRequested {
                    approval_id,
                    proposal_id,
                    plan_hash: _,
                    summary,
                    approvers,
                } => {
                    shared
                        .metrics
                        .inc(Name::Approvals, &[("outcome", "requested")]);
                    let view = ApprovalView {
                        plan: transcript.plans.get(&proposal_id).cloned(),
                        approval_id: approval_id.clone(),
                        proposal_id,
                        summary,
                        approvers,
                        status: None,
                    };
                    let msg = match shared.post(&mut spec.surface, &view.card()).await {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, approval = %approval_id, "could not post the approval card");
                            MsgRef::Nowhere
                        }
                    };
                    shared.approval_insert(
                        &approval_id,
                        ApprovalPost {
                            view,
                            msg,
                            surface: spec.surface.clone(),
                            result_posted: false,
                        },
                    );
                }
                Event::ApprovalDecided { decision, .. } => {
                    let d = serde_json::to_value(decision)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    shared.metrics.inc(Name::Approvals, &[("outcome", &d)]);
                }
                Event::ExecutionStep { status, .. } => {
                    shared
                        .metrics
                        .inc(Name::Executions, &[("kind", "step"), ("status", &status)]);
                }
                Event::ApprovalStatus(status) => {
                    if let Some(post) = shared.approval_get(&status.approval_id) {
                        let state = status.state.clone();
                        if apply_status(&shared, &post, status).await {
                            shared
                                .metrics
                                .inc(Name::Executions, &[("kind", "plan"), ("status", &state)]);
                            post_result(&shared, &post, &transcript).await;
                        }
                    }
                }
                _ => {}
            }
        }
        if changed && let Err(e) = shared.update(&progress, &transcript.progress_card()).await {
            tracing::warn!(error = %e, "could not update the progress message");
        }
        if finished_now && !finished {
            finished = true;
            shared.running_add(-1);
            if let Some(d) = done.take() {
                let _ = d.send(());
            }
        }
    }
    shared.sessions_remove(&key);
    if !finished {
        // The engine closed without `Done` (it stopped or crashed): say so in the thread.
        transcript
            .notes
            .push("warning: the investigation ended without a final answer".into());
        let _ = shared.update(&progress, &transcript.progress_card()).await;
        shared
            .metrics
            .inc(Name::InvestigationsFinished, &[("stop_reason", "closed")]);
        shared.running_add(-1);
        if let Some(d) = done.take() {
            let _ = d.send(());
        }
    }
}

async fn post_result(shared: &Shared, post: &Mutex<ApprovalPost>, transcript: &Transcript) {
    let mut p = post.lock().await;
    if p.result_posted {
        return;
    }
    p.result_posted = true;
    let steps = transcript
        .steps
        .get(&p.view.proposal_id)
        .cloned()
        .unwrap_or_default();
    let card = result_card(&p.view, &steps);
    let mut surface = p.surface.clone();
    if let Err(e) = shared.post(&mut surface, &card).await {
        tracing::warn!(error = %e, "could not post the execution result");
    }
}

fn record_usage(shared: &Shared, last: &mut (u64, u64, f64), input: u64, output: u64, usd: f64) {
    // Usage events are cumulative per session; count only what is new.
    let di = input.saturating_sub(last.0);
    let d_o = output.saturating_sub(last.1);
    let du = (usd - last.2).max(0.0);
    *last = (last.0.max(input), last.1.max(output), last.2.max(usd));
    if di > 0 {
        shared
            .metrics
            .add(Name::Tokens, &[("direction", "input")], di as f64);
    }
    if d_o > 0 {
        shared
            .metrics
            .add(Name::Tokens, &[("direction", "output")], d_o as f64);
    }
    shared.spend.record(di + d_o, du);
    shared
        .metrics
        .set(Name::SpendHour, &[], shared.spend.tokens_last_hour() as f64);
}

/// Sends `Cancel` to every running session (shutdown after the grace period).
pub(crate) fn cancel_all(shared: &Shared) -> usize {
    let ops: Vec<mpsc::Sender<Op>> = shared.sessions_snapshot();
    let n = ops.len();
    for o in ops {
        let _ = o.try_send(Op::Cancel);
    }
    n
}
