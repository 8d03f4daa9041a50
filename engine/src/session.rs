//! One front end's conversation with the engine: an [`EngineLink`].
//!
//! Ops from the front end go to the agent's investigation session, except approval
//! decisions, which go to [`Remediation::decide`]. Events from the investigation go back
//! to the front end; each `Proposal` is turned into an exact plan and an approval request on
//! the way (`PlanReady`, `ApprovalRequested`, `ApprovalStatus`), and the investigation's
//! `Done` is held back until every plan of it is ready, so "done" means "ready to approve".
//! Decisions made elsewhere (another terminal, Slack, Teams) reach this front end as
//! `ApprovalStatus` events through a poll of the approval book.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use medic_agent::protocol::{ApprovalVerdict, Event, Op};
use medic_agent::session::Session;
use medic_approvals::Actor;
use tokio::sync::{Mutex, mpsc};

use crate::remediation::Remediation;

/// How often approval states are re-read for decisions made by other front ends.
const POLL: Duration = Duration::from_secs(2);

/// The front end's side of a session.
#[derive(Debug)]
pub struct EngineLink {
    /// Ops to the engine.
    pub ops: mpsc::UnboundedSender<Op>,
    /// Events from the engine.
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// Starts a session for `requester` (who asks, and so may not approve their own plans).
pub fn connect(session: Session, remediation: Remediation, requester: Actor) -> EngineLink {
    let (front_ops_tx, mut front_ops_rx) = mpsc::unbounded_channel::<Op>();
    let (front_ev_tx, front_ev_rx) = mpsc::unbounded_channel::<Event>();
    let (agent_ops_tx, agent_ops_rx) = mpsc::unbounded_channel::<Op>();
    let (agent_ev_tx, mut agent_ev_rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(session.run(agent_ops_rx, agent_ev_tx, None));

    // approval id → (proposal id, last state sent), for the poll.
    let known: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
    // The alert's runbook and the playbooks it asks to run without a human; the policy
    // decides whether any may.
    let preapprove: Arc<Mutex<Option<Preapprove>>> = Arc::default();

    // Ops: decisions to remediation, everything else to the investigation.
    {
        let remediation = remediation.clone();
        let events = front_ev_tx.clone();
        let known = known.clone();
        let preapprove = preapprove.clone();
        tokio::spawn(async move {
            while let Some(op) = front_ops_rx.recv().await {
                if let Op::Alert { payload, .. } = &op {
                    *preapprove.lock().await = runbook_preapprove(payload);
                }
                match op {
                    Op::ApprovalDecision {
                        approval_id,
                        actor,
                        decision,
                        reason,
                    } => {
                        let remediation = remediation.clone();
                        let events = events.clone();
                        let known = known.clone();
                        tokio::spawn(async move {
                            let actor: Actor = match actor.parse() {
                                Ok(a) => a,
                                Err(e) => {
                                    let _ = events.send(Event::Error {
                                        message: format!("approval {approval_id}: {e}"),
                                    });
                                    return;
                                }
                            };
                            let approve = decision == ApprovalVerdict::Approve;
                            match remediation
                                .decide(&approval_id, &actor, approve, reason, None, &events)
                                .await
                            {
                                Ok(mut status) => {
                                    let mut known = known.lock().await;
                                    if let Some((proposal, last)) = known.get_mut(&approval_id) {
                                        status.proposal_id = proposal.clone();
                                        *last = status.state.clone();
                                    }
                                    let _ = events.send(Event::ApprovalStatus(status));
                                }
                                Err(e) => {
                                    let _ = events.send(Event::Error {
                                        message: format!("approval {approval_id}: {e}"),
                                    });
                                }
                            }
                        });
                    }
                    Op::Shutdown => {
                        let _ = agent_ops_tx.send(Op::Shutdown);
                        return;
                    }
                    other => {
                        if agent_ops_tx.send(other).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    // Events: forward, planning each proposal on the way.
    {
        let remediation = remediation.clone();
        let events = front_ev_tx.clone();
        let known = known.clone();
        let preapprove = preapprove.clone();
        tokio::spawn(async move {
            while let Some(event) = agent_ev_rx.recv().await {
                match event {
                    Event::Proposal(p) => {
                        let _ = events.send(Event::Proposal(p.clone()));
                        let params = crate::remediation::complete_params(
                            &p.playbook,
                            p.params.clone(),
                            p.target.as_ref(),
                        );
                        match remediation
                            .plan_and_request(&p.id, &p.playbook, params, &requester)
                            .await
                        {
                            Ok(req) => {
                                let _ = events.send(Event::PlanReady {
                                    proposal_id: p.id.clone(),
                                    plan: req.view.clone(),
                                });
                                let _ = events.send(Event::ApprovalRequested {
                                    approval_id: req.status.approval_id.clone(),
                                    proposal_id: p.id.clone(),
                                    plan_hash: req.status.plan_hash.clone(),
                                    summary: req.plan.title.clone(),
                                    approvers: req.status.waiting_for.clone(),
                                });
                                known.lock().await.insert(
                                    req.status.approval_id.clone(),
                                    (p.id.clone(), req.status.state.clone()),
                                );
                                let approval_id = req.status.approval_id.clone();
                                let _ = events.send(Event::ApprovalStatus(req.status));
                                let runbook = preapprove.lock().await.as_ref().and_then(
                                    |(name, playbooks)| {
                                        playbooks.contains(&p.playbook).then(|| name.clone())
                                    },
                                );
                                if let Some(runbook) = runbook {
                                    let (remediation, events, known) =
                                        (remediation.clone(), events.clone(), known.clone());
                                    let proposal_id = p.id.clone();
                                    tokio::spawn(async move {
                                        auto_approve(
                                            &remediation,
                                            &approval_id,
                                            &proposal_id,
                                            &runbook,
                                            &events,
                                            &known,
                                        )
                                        .await;
                                    });
                                }
                            }
                            Err(e) => {
                                let _ = events.send(Event::Warning {
                                    message: format!(
                                        "proposal {} ({}) could not become a plan: {e}",
                                        p.id, p.playbook
                                    ),
                                });
                            }
                        }
                    }
                    other => {
                        if events.send(other).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    // Decisions made by other front ends.
    {
        let events = front_ev_tx;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                if events.is_closed() {
                    return;
                }
                let ids: Vec<(String, String, String)> = known
                    .lock()
                    .await
                    .iter()
                    .map(|(a, (p, s))| (a.clone(), p.clone(), s.clone()))
                    .collect();
                for (approval_id, proposal_id, last) in ids {
                    if medic_agent::protocol::approval_settled(&last) {
                        continue;
                    }
                    let Ok((_, mut status)) = remediation.status(&approval_id).await else {
                        continue;
                    };
                    // `approved` here without our own decision means another front end
                    // approved and is executing; report it as such.
                    if status.state != last && !(last == "approved" && status.state == "executing")
                    {
                        status.proposal_id = proposal_id.clone();
                        if let Some(entry) = known.lock().await.get_mut(&approval_id) {
                            entry.1 = status.state.clone();
                        }
                        let _ = events.send(Event::ApprovalStatus(status));
                    }
                }
            }
        });
    }

    EngineLink {
        ops: front_ops_tx,
        events: front_ev_rx,
    }
}

/// A runbook's name and the playbooks it lists under `preapprove`.
type Preapprove = (String, Vec<String>);

/// The runbook an alert matched and the playbooks it lists under `preapprove` (the server
/// puts the runbook in the alert payload as `runbook: {name, preapprove, …}`).
fn runbook_preapprove(payload: &serde_json::Value) -> Option<Preapprove> {
    let runbook = payload.get("runbook")?;
    let name = runbook.get("name")?.as_str()?.to_owned();
    let playbooks = runbook
        .get("preapprove")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((name, playbooks))
}

/// Asks the policy to pre-approve a runbook's plan; executes it when allowed. Either way
/// the outcome is in the audit log and reaches the front end as an `ApprovalStatus`.
async fn auto_approve(
    remediation: &Remediation,
    approval_id: &str,
    proposal_id: &str,
    runbook: &str,
    events: &mpsc::UnboundedSender<Event>,
    known: &Mutex<HashMap<String, (String, String)>>,
) {
    match remediation.auto_approve(approval_id, runbook, events).await {
        Ok(mut status) => {
            status.proposal_id = proposal_id.to_owned();
            if let Some(entry) = known.lock().await.get_mut(approval_id) {
                entry.1 = status.state.clone();
            }
            let _ = events.send(Event::ApprovalStatus(status));
        }
        Err(e) => {
            let _ = events.send(Event::Error {
                message: format!("approval {approval_id}: automatic approval failed: {e}"),
            });
        }
    }
}
