//! What an engine session said (findings, proposals, approvals, warnings), and waiting for
//! it: the next event before a deadline, and an approval's status until it settles.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medic_agent::protocol::{ApprovalStatus, Event, Finding, Proposal, Usage};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::{Error, Result};
use crate::report::ApprovalTrace;

/// Everything the session said.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    pub(crate) findings: Vec<Finding>,
    pub(crate) proposals: Vec<Proposal>,
    pub(crate) answer: String,
    pub(crate) usage: Option<Usage>,
    pub(crate) tool_calls_seen: u32,
    pub(crate) stop_reason: Option<String>,
    pub(crate) done: bool,
    pub(crate) errors: Vec<String>,
    /// Approval id → proposal id, in request order.
    pub(crate) approvals: Vec<(String, String)>,
    pub(crate) statuses: BTreeMap<String, ApprovalStatus>,
    /// Approval id → everyone any status listed in `approved_by`.
    pub(crate) seen_approvers: BTreeMap<String, Vec<String>>,
    pub(crate) failed_plans: Vec<String>,
    /// The engine's warnings (e.g. a proposal that could not become a plan).
    pub(crate) warnings: Vec<String>,
}

impl Transcript {
    pub(crate) fn absorb(&mut self, ev: Event) {
        match ev {
            Event::Finding(f) => self.findings.push(f),
            Event::Proposal(p) => self.proposals.push(p),
            Event::AnswerDelta { text } => self.answer.push_str(&text),
            Event::TokenUsage(u) => self.usage = Some(u),
            Event::ToolCallStarted { .. } => self.tool_calls_seen += 1,
            Event::Done { usage, stop_reason } => {
                self.usage = Some(usage);
                self.stop_reason = Some(format!("{stop_reason:?}"));
                self.done = true;
            }
            Event::Error { message } => self.errors.push(message),
            Event::ApprovalRequested {
                approval_id,
                proposal_id,
                ..
            } if !self.approvals.iter().any(|(a, _)| *a == approval_id) => {
                self.approvals.push((approval_id, proposal_id));
            }
            Event::ApprovalStatus(s) => {
                if !self.approvals.iter().any(|(a, _)| *a == s.approval_id) {
                    self.approvals
                        .push((s.approval_id.clone(), s.proposal_id.clone()));
                }
                let seen = self
                    .seen_approvers
                    .entry(s.approval_id.clone())
                    .or_default();
                for a in &s.approved_by {
                    if !seen.contains(a) {
                        seen.push(a.clone());
                    }
                }
                if s.state == "failed" {
                    self.failed_plans.push(s.proposal_id.clone());
                }
                self.statuses.insert(s.approval_id.clone(), s);
            }
            Event::Warning { message } => {
                // A proposal that cannot become a plan gets no approval request: stop
                // waiting for one, and keep the reason for the report.
                if let Some(p) = self
                    .proposals
                    .iter()
                    .find(|p| message.starts_with(&format!("proposal {} ", p.id)))
                    && !self.failed_plans.contains(&p.id)
                {
                    self.failed_plans.push(p.id.clone());
                }
                if !self.warnings.contains(&message) {
                    self.warnings.push(message);
                }
            }
            _ => {}
        }
    }

    /// Proposals still waiting for a plan/approval request (and not reported as failed).
    pub(crate) fn unsettled(&self) -> usize {
        self.proposals
            .iter()
            .filter(|p| {
                !self.approvals.iter().any(|(_, pid)| *pid == p.id)
                    && !self.failed_plans.contains(&p.id)
            })
            .count()
    }
}

/// Whether a status answers a decision for good: every state but `approved` and
/// `executing` (which are followed by the execution's outcome) — `pending` (more approvals
/// needed, or the decision was refused), `executed`, `refused`, `failed`, `undone`,
/// `denied`, `expired`, and any state a newer engine adds.
pub(crate) fn is_settled(state: &str) -> bool {
    !matches!(state, "approved" | "executing")
}

/// After a decision: absorbs events until this approval's status settles ([`is_settled`]),
/// the engine reports an error about this approval, or `wait` passes. Returns the last
/// status seen (`None`: no status at all) and the engine's error, if any.
pub(crate) async fn await_status(
    events: &mut UnboundedReceiver<Event>,
    t: &mut Transcript,
    approval_id: &str,
    trace: &mut ApprovalTrace,
    wait: Duration,
) -> Result<(Option<ApprovalStatus>, Option<String>)> {
    let deadline = Instant::now() + wait;
    let mut last = None;
    let error_prefix = format!("approval {approval_id}:");
    while let Some(ev) = next_event(events, deadline, "waiting for the approval's status").await? {
        let status = match &ev {
            Event::ApprovalStatus(s) if s.approval_id == approval_id => Some(s.clone()),
            Event::Error { message } if message.starts_with(&error_prefix) => {
                let message = message.clone();
                t.absorb(ev);
                return Ok((last, Some(message)));
            }
            _ => None,
        };
        t.absorb(ev);
        let Some(s) = status else { continue };
        trace.state = s.state.clone();
        if let Some(r) = &s.refusal
            && !trace.refusals.contains(r)
        {
            trace.refusals.push(r.clone());
        }
        let settled = is_settled(&s.state);
        last = Some(s);
        if settled {
            break;
        }
    }
    Ok((last, None))
}

/// Whether any status of `approval_id` lists `name` or `kube_user` among its approvers.
pub(crate) fn trace_has(t: &Transcript, approval_id: &str, name: &str, kube_user: &str) -> bool {
    t.seen_approvers
        .get(approval_id)
        .is_some_and(|set| set.iter().any(|a| a == name || a == kube_user))
}

/// Receives the next event before `deadline`; `Ok(None)` on timeout.
pub(crate) async fn next_event(
    events: &mut UnboundedReceiver<Event>,
    deadline: Instant,
    while_doing: &str,
) -> Result<Option<Event>> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, events.recv()).await {
        Ok(Some(ev)) => Ok(Some(ev)),
        Ok(None) => Err(Error::EngineClosed {
            while_doing: while_doing.into(),
        }),
        Err(_) => Ok(None),
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;
    use tokio::sync::mpsc::unbounded_channel;

    fn proposal(id: &str) -> Proposal {
        Proposal {
            id: id.into(),
            playbook: "raise-memory-limit".into(),
            params: json!({}),
            target: None,
            rationale: String::new(),
            finding_ids: vec![],
        }
    }

    fn status(id: &str, state: &str) -> ApprovalStatus {
        ApprovalStatus {
            approval_id: id.into(),
            proposal_id: "p1".into(),
            plan_hash: "h".into(),
            state: state.into(),
            approved_by: vec!["alice".into()],
            needed: 1,
            waiting_for: vec![],
            expires_at: String::new(),
            refusal: (state == "refused").then(|| "changed since the plan was made".into()),
            requested_by: None,
        }
    }

    fn trace() -> ApprovalTrace {
        ApprovalTrace {
            approval_id: "a1".into(),
            plan: "rollback on Deployment/ns/app".into(),
            approved_as: vec![],
            state: "pending".into(),
            refusals: vec![],
            self_approval_accepted: None,
        }
    }

    #[test]
    fn only_approved_and_executing_wait_for_more() {
        for s in ["approved", "executing"] {
            assert!(!is_settled(s), "{s}");
        }
        for s in [
            "pending", "executed", "refused", "failed", "undone", "denied", "expired",
        ] {
            assert!(is_settled(s), "{s}");
        }
    }

    #[test]
    fn a_proposal_that_cannot_become_a_plan_is_not_waited_for() {
        let mut t = Transcript::default();
        t.absorb(Event::Proposal(proposal("p1")));
        t.absorb(Event::Proposal(proposal("p10")));
        assert_eq!(t.unsettled(), 2);
        let warning = "proposal p1 (raise-memory-limit) could not become a plan: unknown field";
        t.absorb(Event::Warning {
            message: warning.into(),
        });
        // `p1` is not mistaken for a prefix of `p10`.
        assert_eq!(t.failed_plans, vec!["p1".to_string()]);
        assert_eq!(t.unsettled(), 1);
        assert_eq!(t.warnings, vec![warning.to_string()]);
    }

    #[tokio::test]
    async fn a_refused_execution_ends_the_wait_at_once() {
        let (tx, mut rx) = unbounded_channel();
        tx.send(Event::ApprovalStatus(status("a1", "executing")))
            .unwrap();
        tx.send(Event::ApprovalStatus(status("a1", "refused")))
            .unwrap();
        // Would end the wait too; it must still be queued afterwards.
        tx.send(Event::ApprovalStatus(status("a1", "executed")))
            .unwrap();
        let mut t = Transcript::default();
        let mut tr = trace();
        let (last, error) = await_status(&mut rx, &mut t, "a1", &mut tr, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(last.unwrap().state, "refused");
        assert!(matches!(rx.try_recv(), Ok(Event::ApprovalStatus(s)) if s.state == "executed"));
        assert_eq!(error, None);
        assert_eq!(tr.state, "refused");
        assert_eq!(
            tr.refusals,
            vec!["changed since the plan was made".to_string()]
        );
        drop(tx);
    }

    #[tokio::test]
    async fn an_engine_error_about_the_approval_ends_the_wait() {
        let (tx, mut rx) = unbounded_channel();
        tx.send(Event::Error {
            message: "approval a2: not found".into(),
        })
        .unwrap();
        tx.send(Event::Error {
            message: "approval a1: unknown actor".into(),
        })
        .unwrap();
        tx.send(Event::ApprovalStatus(status("a1", "executed")))
            .unwrap();
        let mut t = Transcript::default();
        let mut tr = trace();
        let (last, error) = await_status(&mut rx, &mut t, "a1", &mut tr, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(last.is_none());
        assert_eq!(error.as_deref(), Some("approval a1: unknown actor"));
        assert!(matches!(rx.try_recv(), Ok(Event::ApprovalStatus(_))));
        assert_eq!(t.errors.len(), 2);
        drop(tx);
    }
}
