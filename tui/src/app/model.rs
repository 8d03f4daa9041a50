//! What each pane holds, cleaned on the way in, and the approval rules the TUI applies before
//! offering approve or deny.

use chrono::{DateTime, Utc};
use medic_agent::protocol::{
    ApprovalStatus, ApprovalVerdict, EvidenceRef, Finding, PlanView, Proposal,
};
use serde_json::Value;

use crate::sanitize::{one_line, sanitize};

/// How a notice line in the chat is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// Neutral information.
    Info,
    /// Something to look at.
    Warning,
    /// Something failed.
    Error,
    /// An approval request, decision or state change.
    Approval,
    /// An execution step.
    Execution,
}

/// One entry of the chat pane.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ChatItem {
    /// What the terminal user asked.
    User(String),
    /// The answer as Markdown; `streaming` while deltas still arrive.
    Answer {
        /// The Markdown so far.
        text: String,
        /// Whether more deltas are expected.
        streaming: bool,
    },
    /// A finding card.
    Finding(FindingCard),
    /// A one-line notice.
    Notice(NoticeKind, String),
}

impl ChatItem {
    /// Whether the item matches a (lower-case) filter.
    pub(crate) fn matches(&self, filter: &str) -> bool {
        let hay = match self {
            ChatItem::User(t) | ChatItem::Notice(_, t) => t.to_lowercase(),
            ChatItem::Answer { text, .. } => text.to_lowercase(),
            ChatItem::Finding(f) => format!(
                "{} {} {} {}",
                f.summary,
                f.root_cause,
                f.evidence.join(" "),
                f.suggests.join(" ")
            )
            .to_lowercase(),
        };
        hay.contains(filter)
    }
}

/// A finding, ready to draw as a card.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FindingCard {
    pub(crate) summary: String,
    pub(crate) root_cause: String,
    pub(crate) confidence: f32,
    pub(crate) level: &'static str,
    pub(crate) source: String,
    pub(crate) evidence: Vec<String>,
    pub(crate) suggests: Vec<String>,
}

impl FindingCard {
    pub(crate) fn from_finding(f: &Finding) -> Self {
        FindingCard {
            summary: one_line(&f.summary),
            root_cause: sanitize(&f.root_cause),
            confidence: f.confidence.0,
            level: f.confidence.level(),
            source: one_line(&f.source),
            evidence: f.evidence.iter().map(evidence_line).collect(),
            suggests: f
                .suggests
                .iter()
                .map(|p| match &p.target {
                    Some(t) => one_line(&format!("{} on {}", p.name, t.display())),
                    None => one_line(&p.name),
                })
                .collect(),
        }
    }
}

fn evidence_line(e: &EvidenceRef) -> String {
    use medic_agent::protocol::EvidenceRef as E;
    use medic_tools::EvidenceRef as S;
    let text = match e {
        E::ToolCall { call_id, tool } => format!("tool {tool} ({call_id})"),
        E::Quote { text } => format!("“{text}”"),
        E::Source(S::Object(o)) => format!("{} in {}", o.display(), o.cluster),
        E::Source(S::Series {
            cluster,
            query,
            start,
            end,
        }) => format!("series {query} in {cluster} ({start} → {end})"),
        E::Source(S::LogLines {
            cluster,
            namespace,
            pod,
            container,
            previous,
            first_line,
            last_line,
        }) => format!(
            "log {namespace}/{pod}/{container}{} lines {first_line}–{last_line} in {cluster}",
            if *previous { " (previous)" } else { "" }
        ),
        E::Source(S::GitHub { repo, item, id }) => format!("github {repo} {item} {id}"),
        E::Source(S::Runbook { name }) => format!("runbook {name}"),
    };
    one_line(&text)
}

/// The result of a finished tool call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolResult {
    pub(crate) duration_ms: u64,
    pub(crate) tokens: usize,
    pub(crate) ok: bool,
    pub(crate) error: Option<String>,
    pub(crate) summary: String,
}

/// One row of the trace pane.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) call_id: String,
    pub(crate) tool: String,
    /// `key=value` pairs of the scalar arguments, for the one-line row.
    pub(crate) key_args: String,
    /// The arguments as pretty JSON, for the expanded view.
    pub(crate) args: String,
    pub(crate) started: DateTime<Utc>,
    pub(crate) result: Option<ToolResult>,
    /// What the tool returned, as the model read it (redacted by the agent, neutralised
    /// here); `None` until `ToolOutput` arrives.
    pub(crate) output: Option<ToolOutputText>,
    pub(crate) expanded: bool,
}

/// A finished call's output, cleaned for display.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolOutputText {
    /// The text, every escape sequence neutralised (see [`crate::sanitize`]).
    pub(crate) text: String,
    /// The engine cut the output to its preview size.
    pub(crate) truncated: bool,
    /// Size of the text as received, in bytes.
    pub(crate) bytes: usize,
}

impl ToolOutputText {
    pub(crate) fn new(output: &str, truncated: bool) -> Self {
        ToolOutputText {
            text: sanitize(output),
            truncated,
            bytes: output.len(),
        }
    }
}

impl ToolCall {
    pub(crate) fn new(call_id: &str, tool: &str, args: &Value, now: DateTime<Utc>) -> Self {
        let key_args = match args {
            Value::Object(map) => map
                .iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some(format!("{k}={s}")),
                    Value::Number(n) => Some(format!("{k}={n}")),
                    Value::Bool(b) => Some(format!("{k}={b}")),
                    Value::Array(a) => Some(format!("{k}=[{}]", a.len())),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" "),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        ToolCall {
            call_id: one_line(call_id),
            tool: one_line(tool),
            key_args: one_line(&key_args),
            args: sanitize(&serde_json::to_string_pretty(args).unwrap_or_default()),
            started: now,
            result: None,
            output: None,
            expanded: false,
        }
    }

    pub(crate) fn matches(&self, filter: &str) -> bool {
        let mut hay = format!("{} {} {}", self.tool, self.key_args, self.call_id);
        if let Some(r) = &self.result {
            hay.push(' ');
            hay.push_str(&r.summary);
            if let Some(e) = &r.error {
                hay.push(' ');
                hay.push_str(e);
            }
        }
        hay.to_lowercase().contains(filter)
    }
}

/// A decision as reported by the engine (from any front end).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecisionLine {
    pub(crate) actor: String,
    pub(crate) verdict: ApprovalVerdict,
    pub(crate) reason: Option<String>,
}

/// One executed step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepLine {
    pub(crate) step: usize,
    pub(crate) description: String,
    pub(crate) status: String,
}

/// Everything known about one proposal: the proposal, its plan, its approval.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ProposalEntry {
    pub(crate) proposal_id: String,
    pub(crate) playbook: String,
    pub(crate) target: Option<String>,
    pub(crate) rationale: String,
    pub(crate) plan: Option<PlanView>,
    pub(crate) approval_id: Option<String>,
    pub(crate) request_summary: Option<String>,
    pub(crate) request_hash: Option<String>,
    pub(crate) approvers: Vec<String>,
    pub(crate) status: Option<ApprovalStatus>,
    pub(crate) decisions: Vec<DecisionLine>,
    pub(crate) steps: Vec<StepLine>,
    /// This terminal sent an approval and has not heard back yet.
    pub(crate) approval_sent: bool,
    /// The engine refused this terminal's approval, and why; approve is not offered again.
    pub(crate) my_refusal: Option<String>,
    /// Who asked for the plan, when known (this session's requester for its own plans).
    pub(crate) requested_by: String,
}

impl ProposalEntry {
    pub(crate) fn new(proposal_id: &str) -> Self {
        ProposalEntry {
            proposal_id: one_line(proposal_id),
            ..Default::default()
        }
    }

    pub(crate) fn set_proposal(&mut self, p: &Proposal) {
        self.playbook = one_line(&p.playbook);
        self.target = p
            .target
            .as_ref()
            .map(|t| one_line(&format!("{} in {}", t.display(), t.cluster)));
        self.rationale = sanitize(&p.rationale);
    }

    /// A one-line title: the plan's, or the playbook and target.
    pub(crate) fn title(&self) -> String {
        match (&self.plan, &self.target) {
            (Some(plan), _) if !plan.title.is_empty() => plan.title.clone(),
            (_, Some(t)) => format!("{} {}", self.playbook, t),
            _ if !self.playbook.is_empty() => self.playbook.clone(),
            _ => self.proposal_id.clone(),
        }
    }

    /// The cluster the plan acts on, as far as known.
    pub(crate) fn cluster(&self) -> String {
        match &self.plan {
            Some(p) if !p.cluster.is_empty() => p.cluster.clone(),
            _ => self
                .target
                .as_ref()
                .and_then(|t| t.rsplit(" in ").next().map(str::to_owned))
                .unwrap_or_else(|| "unknown cluster".into()),
        }
    }

    /// The approval state in one word.
    pub(crate) fn state(&self) -> &str {
        match (&self.status, &self.approval_id) {
            (Some(s), _) => s.state.as_str(),
            (None, Some(_)) => "pending",
            (None, None) if self.plan.is_some() => "awaiting request",
            (None, None) => "planning",
        }
    }

    /// Expiry of the pending approval, if known and parseable.
    pub(crate) fn expires_at(&self) -> Option<DateTime<Utc>> {
        let s = self.status.as_ref()?;
        DateTime::parse_from_rfc3339(&s.expires_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Why `actor` may not deny now, or `Ok` with the approval id.
    pub(crate) fn can_deny(&self, now: DateTime<Utc>) -> Result<String, String> {
        let Some(id) = self.approval_id.clone() else {
            return Err("no approval has been requested for this plan yet".into());
        };
        let state = self.state();
        if state != "pending" {
            return Err(format!(
                "this approval is already {state}; there is nothing to decide"
            ));
        }
        if let Some(exp) = self.expires_at()
            && exp <= now
        {
            return Err(format!(
                "this approval request expired at {}; ask for a new proposal",
                exp.format("%H:%M:%S UTC")
            ));
        }
        Ok(id)
    }

    /// Why `actor` may not approve now, or `Ok` with the approval id.
    pub(crate) fn can_approve(
        &self,
        actor: &str,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        if actor.is_empty() {
            return Err(
                "this terminal has no mapped identity, so it can read but not approve".into(),
            );
        }
        let id = self.can_deny(now)?;
        if !self.requested_by.is_empty() && self.requested_by == actor {
            return Err(format!(
                "{actor} asked for this plan; another person must approve it (four-eyes rule)"
            ));
        }
        let Some(plan) = &self.plan else {
            return Err("the exact plan and its dry-run have not arrived yet; approve once you can read them".into());
        };
        let bound = self
            .status
            .as_ref()
            .map(|s| s.plan_hash.as_str())
            .or(self.request_hash.as_deref());
        if let Some(bound) = bound
            && !bound.is_empty()
            && !plan.hash.is_empty()
            && bound != plan.hash
        {
            return Err(format!(
                "the plan shown (hash {}) is not the plan awaiting approval (hash {}); wait for the new request",
                short_hash(&plan.hash),
                short_hash(bound)
            ));
        }
        // When the binary knows the identity's policy roles, offer approve only to eligible
        // approvers; otherwise the engine's check (and its refusal) decides.
        if !roles.is_empty()
            && !self.approvers.is_empty()
            && !self
                .approvers
                .iter()
                .any(|a| a == actor || roles.contains(a))
        {
            return Err(format!(
                "this plan needs an approver from {}; {actor} holds {}",
                self.approvers.join(", "),
                roles.join(", ")
            ));
        }
        if let Some(r) = &self.my_refusal {
            return Err(format!("the engine refused {actor}'s approval: {r}"));
        }
        if let Some(s) = &self.status
            && s.approved_by.iter().any(|a| a == actor)
        {
            let waiting = if s.waiting_for.is_empty() {
                "another approver".to_owned()
            } else {
                s.waiting_for.join(", ")
            };
            return Err(format!(
                "{actor} already approved this plan; it is waiting for {waiting}"
            ));
        }
        Ok(id)
    }

    pub(crate) fn matches(&self, filter: &str) -> bool {
        let plan = self.plan.as_ref();
        format!(
            "{} {} {} {} {} {} {}",
            self.title(),
            self.playbook,
            plan.map(|p| p.playbook.as_str()).unwrap_or_default(),
            self.cluster(),
            self.target.as_deref().unwrap_or_default(),
            self.proposal_id,
            self.state()
        )
        .to_lowercase()
        .contains(filter)
    }
}

/// Cleans every text field of a plan.
pub(crate) fn clean_plan(p: &PlanView) -> PlanView {
    PlanView {
        plan_id: one_line(&p.plan_id),
        playbook: one_line(&p.playbook),
        cluster: one_line(&p.cluster),
        title: one_line(&p.title),
        rationale: one_line(&p.rationale),
        risk: one_line(&p.risk),
        blast_radius: one_line(&p.blast_radius),
        steps: p.steps.iter().map(|s| one_line(s)).collect(),
        diff: sanitize(&p.diff),
        post_checks: p.post_checks.iter().map(|s| one_line(s)).collect(),
        undo: p.undo.iter().map(|s| one_line(s)).collect(),
        hash: one_line(&p.hash),
    }
}

/// Cleans every text field of an approval status.
pub(crate) fn clean_status(s: &ApprovalStatus) -> ApprovalStatus {
    ApprovalStatus {
        approval_id: one_line(&s.approval_id),
        proposal_id: one_line(&s.proposal_id),
        plan_hash: one_line(&s.plan_hash),
        state: one_line(&s.state).to_lowercase(),
        approved_by: s.approved_by.iter().map(|a| one_line(a)).collect(),
        needed: s.needed,
        waiting_for: s.waiting_for.iter().map(|a| one_line(a)).collect(),
        expires_at: one_line(&s.expires_at),
        refusal: s.refusal.as_deref().map(one_line),
        requested_by: s.requested_by.as_deref().map(one_line),
    }
}

/// The first 12 hex digits of a hash.
pub(crate) fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// "12m 05s", "1h 02m", "45s".
pub(crate) fn countdown(secs: i64) -> String {
    let s = secs.abs();
    if s >= 86_400 {
        format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;

    fn entry(state: &str, approved_by: &[&str], expires_in: i64) -> (ProposalEntry, DateTime<Utc>) {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let plan = PlanView {
            title: "Scale api".into(),
            cluster: "c1".into(),
            hash: "abc".into(),
            ..Default::default()
        };
        let status = ApprovalStatus {
            approval_id: "a1".into(),
            proposal_id: "p1".into(),
            plan_hash: "abc".into(),
            state: state.into(),
            approved_by: approved_by.iter().map(|s| s.to_string()).collect(),
            needed: 2,
            waiting_for: vec!["leads".into()],
            expires_at: (now + chrono::Duration::seconds(expires_in)).to_rfc3339(),
            refusal: None,
            requested_by: None,
        };
        let e = ProposalEntry {
            proposal_id: "p1".into(),
            plan: Some(plan),
            approval_id: Some("a1".into()),
            status: Some(status),
            ..Default::default()
        };
        (e, now)
    }

    #[test]
    fn pending_plan_can_be_approved_by_a_new_approver() {
        let (e, now) = entry("pending", &["alice"], 60);
        assert_eq!(e.can_approve("carol", &[], now), Ok("a1".into()));
        assert!(
            e.can_approve("alice", &[], now)
                .unwrap_err()
                .contains("already approved")
        );
        assert!(
            e.can_approve("", &[], now)
                .unwrap_err()
                .contains("no mapped identity")
        );
    }

    #[test]
    fn decided_or_expired_plans_cannot_be_decided() {
        let (e, now) = entry("executed", &["alice", "bob"], 60);
        assert!(
            e.can_approve("carol", &[], now)
                .unwrap_err()
                .contains("already executed")
        );
        assert!(e.can_deny(now).is_err());
        let (e, now) = entry("pending", &[], -1);
        assert!(e.can_deny(now).unwrap_err().contains("expired"));
    }

    #[test]
    fn countdowns() {
        assert_eq!(countdown(45), "45s");
        assert_eq!(countdown(725), "12m 05s");
        assert_eq!(countdown(-3725), "1h 02m");
        assert_eq!(countdown(90_000), "1d 01h");
    }
}
