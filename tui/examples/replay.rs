//! Replays a recorded session (JSON Lines of `Event`s) into the real TUI, for trying it out
//! and for manual checks of the terminal handling:
//!
//! ```text
//! cargo run -p medic-tui --example replay -- tui/examples/session.jsonl carol
//! ```
//!
//! The replay starts when a question is asked, one event every 150 ms; Ctrl-C cancels it.
//! Approval decisions are recorded against the last `approval_status` of the recording, so
//! the proposals pane can be exercised too. This is not the engine: nothing is investigated.

use std::time::Duration;

use medic_agent::Op;
use medic_agent::protocol::{ApprovalStatus, ApprovalVerdict, Event, StopReason, Usage};
use medic_tui::{EngineLink, TuiOptions};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: replay <session.jsonl> [identity]")?;
    let identity = args.next().unwrap_or_else(|| "carol".into());
    let text = std::fs::read_to_string(&path)?;
    let script: Vec<Event> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let (op_tx, op_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    tokio::spawn(replay(script, op_rx, ev_tx));

    let mut opts = TuiOptions::new(identity);
    opts.cluster = "prod-eu".into();
    opts.namespace = "shop".into();
    opts.model = "replay".into();
    opts.clusters = vec!["prod-eu".into(), "prod-us".into()];
    medic_tui::run(
        EngineLink {
            ops: op_tx,
            events: ev_rx,
        },
        opts,
    )
    .await?;
    Ok(())
}

async fn replay(script: Vec<Event>, mut ops: mpsc::Receiver<Op>, events: mpsc::Sender<Event>) {
    let mut status: Option<ApprovalStatus> = None;
    let mut queue: std::collections::VecDeque<Event> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            op = ops.recv() => match op {
                None | Some(Op::Shutdown) => return,
                Some(Op::UserQuestion { .. }) => queue.extend(script.iter().cloned()),
                Some(Op::Cancel) => {
                    queue.clear();
                    let _ = events.send(Event::Done { usage: Usage::default(), stop_reason: StopReason::Cancelled }).await;
                }
                Some(Op::ApprovalDecision { approval_id, actor, decision, reason }) => {
                    let _ = events.send(Event::ApprovalDecided { approval_id, actor: actor.clone(), decision, reason }).await;
                    if let Some(s) = status.as_mut() {
                        match decision {
                            ApprovalVerdict::Approve => s.approved_by.push(actor),
                            ApprovalVerdict::Deny => s.state = "denied".into(),
                        }
                        if s.approved_by.len() as u32 >= s.needed {
                            s.state = "approved".into();
                            s.waiting_for.clear();
                        }
                        let _ = events.send(Event::ApprovalStatus(s.clone())).await;
                    }
                }
                Some(_) => {}
            },
            _ = tick.tick() => {
                if let Some(event) = queue.pop_front() {
                    if let Event::ApprovalStatus(s) = &event {
                        status = Some(s.clone());
                    }
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
