//! Platform-neutral messages: a session is rendered into [`Card`]s once, and the Slack and
//! Teams modules turn a card into Block Kit or an Adaptive Card. Every string here is raw
//! (cluster and model text included); escaping happens in the platform renderers.

use std::collections::BTreeMap;

use medic_agent::protocol::{
    ApprovalStatus, Event, Finding, PlanView, Proposal, StopReason, Usage,
};

/// A message as people see it, before platform formatting.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Card {
    /// Bold first line.
    pub title: String,
    /// Body sections, in order.
    pub sections: Vec<Section>,
    /// When set, Approve / Deny buttons carrying only this opaque approval id.
    pub approval_id: Option<String>,
    /// Plain text for notifications and clients that cannot render cards.
    pub fallback: String,
}

/// One block of a card.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Section {
    /// Optional bold heading.
    pub heading: Option<String>,
    /// Lines of text.
    pub lines: Vec<String>,
    /// Preformatted text (a diff).
    pub code: Option<String>,
}

impl Section {
    pub fn new(heading: Option<&str>, lines: Vec<String>) -> Self {
        Section {
            heading: heading.map(str::to_owned),
            lines,
            code: None,
        }
    }
}

/// Cut `s` to at most `max` characters, marking the cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[derive(Debug, Clone, PartialEq)]
struct ToolLine {
    call_id: String,
    tool: String,
    state: &'static str,
    summary: String,
}

/// Everything a session has said so far, folded from its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transcript {
    pub title: String,
    tools: Vec<ToolLine>,
    pub findings: Vec<Finding>,
    pub proposals: Vec<Proposal>,
    pub plans: BTreeMap<String, PlanView>,
    pub answer: String,
    pub notes: Vec<String>,
    pub steps: BTreeMap<String, Vec<String>>,
    pub done: Option<(Usage, StopReason)>,
}

impl Transcript {
    pub fn new(title: impl Into<String>) -> Self {
        Transcript {
            title: title.into(),
            ..Transcript::default()
        }
    }

    /// Folds one event in; returns true when the progress card changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::ToolCallStarted { call_id, tool, .. } => {
                self.tools.push(ToolLine {
                    call_id: call_id.clone(),
                    tool: tool.clone(),
                    state: "running",
                    summary: String::new(),
                });
                true
            }
            Event::ToolCallFinished {
                call_id,
                ok,
                summary,
                error,
                ..
            } => {
                if let Some(t) = self.tools.iter_mut().find(|t| &t.call_id == call_id) {
                    t.state = if *ok { "done" } else { "failed" };
                    t.summary = error.clone().unwrap_or_else(|| summary.clone());
                }
                true
            }
            Event::Finding(f) => {
                self.findings.push(f.clone());
                true
            }
            Event::Proposal(p) => {
                self.proposals.push(p.clone());
                true
            }
            Event::PlanReady { proposal_id, plan } => {
                self.plans.insert(proposal_id.clone(), plan.clone());
                false
            }
            Event::AnswerDelta { text } => {
                self.answer.push_str(text);
                false
            }
            Event::ExecutionStep {
                proposal_id,
                step,
                description,
                status,
            } => {
                self.steps
                    .entry(proposal_id.clone())
                    .or_default()
                    .push(format!("{}. {description} — {status}", step + 1));
                false
            }
            Event::Error { message } => {
                self.notes.push(format!("error: {message}"));
                true
            }
            Event::Warning { message } => {
                self.notes.push(format!("warning: {message}"));
                true
            }
            Event::Done { usage, stop_reason } => {
                self.done = Some((usage.clone(), *stop_reason));
                true
            }
            _ => false,
        }
    }

    /// The one progress message: tools while running, then findings and the answer.
    pub fn progress_card(&self) -> Card {
        let mut sections = Vec::new();
        let status = match &self.done {
            None => "investigating…".to_owned(),
            Some((u, reason)) => format!(
                "done ({}) — {} model calls, {} tool calls, {} tokens in / {} out, {:.1} s",
                stop_words(*reason),
                u.model_calls,
                u.tool_calls,
                u.input_tokens,
                u.output_tokens,
                u.wall_ms as f64 / 1000.0
            ),
        };
        sections.push(Section::new(None, vec![status]));
        if !self.tools.is_empty() {
            let skip = self.tools.len().saturating_sub(8);
            let mut lines: Vec<String> = Vec::new();
            if skip > 0 {
                lines.push(format!("… {skip} earlier tool calls"));
            }
            lines.extend(self.tools.iter().skip(skip).map(|t| {
                let mark = match t.state {
                    "running" => "⏳",
                    "done" => "✓",
                    _ => "✗",
                };
                if t.summary.is_empty() {
                    format!("{mark} {}", t.tool)
                } else {
                    format!("{mark} {} — {}", t.tool, clip(&t.summary, 120))
                }
            }));
            sections.push(Section::new(Some("Tools"), lines));
        }
        for f in &self.findings {
            let mut lines = vec![
                format!("{} (confidence {})", f.summary, f.confidence.level()),
                format!("Root cause: {}", f.root_cause),
            ];
            if !f.evidence.is_empty() {
                lines.push(format!("Evidence: {} reference(s)", f.evidence.len()));
            }
            sections.push(Section::new(Some("Finding"), lines));
        }
        for p in &self.proposals {
            let target = p
                .target
                .as_ref()
                .map(|t| format!(" on {}/{}", t.kind, t.name))
                .unwrap_or_default();
            sections.push(Section::new(
                Some("Proposal"),
                vec![format!("{}{target}: {}", p.playbook, p.rationale)],
            ));
        }
        if self.done.is_some() && !self.answer.trim().is_empty() {
            sections.push(Section::new(
                Some("Answer"),
                vec![clip(self.answer.trim(), 2500)],
            ));
        }
        if !self.notes.is_empty() {
            sections.push(Section::new(
                None,
                self.notes.iter().rev().take(5).rev().cloned().collect(),
            ));
        }
        let fallback = match self.findings.first() {
            Some(f) => format!("{}: {}", self.title, f.summary),
            None => format!("{}: {}", self.title, sections[0].lines[0]),
        };
        Card {
            title: self.title.clone(),
            sections,
            approval_id: None,
            fallback,
        }
    }
}

fn stop_words(reason: StopReason) -> String {
    // The protocol's snake_case names read well as words and cover variants added later.
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_else(|| "finished".into())
}

/// A pending (or decided) approval and what it is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApprovalView {
    pub approval_id: String,
    pub proposal_id: String,
    pub summary: String,
    pub approvers: Vec<String>,
    pub plan: Option<PlanView>,
    pub status: Option<ApprovalStatus>,
}

/// Ordering of approval states, so a late, older status never overwrites a newer one.
pub(crate) fn status_rank(s: &ApprovalStatus) -> (u8, usize) {
    let r = match s.state.as_str() {
        "pending" => 0,
        "approved" => 2,
        "executing" => 3,
        "denied" | "expired" | "executed" | "failed" | "undone" => 4,
        _ => 1,
    };
    (r, s.approved_by.len())
}

impl ApprovalView {
    /// Whether buttons still make sense.
    pub fn open(&self) -> bool {
        self.status.as_ref().is_none_or(|s| s.state == "pending")
    }

    pub fn card(&self) -> Card {
        let mut sections = Vec::new();
        let title;
        match &self.plan {
            Some(p) => {
                title = format!("Proposed: {}", p.title);
                sections.push(Section::new(
                    None,
                    vec![
                        format!("Playbook: {} · cluster {}", p.playbook, p.cluster),
                        format!("Risk: {}", p.risk),
                        format!("Blast radius: {}", p.blast_radius),
                    ],
                ));
                if !p.rationale.is_empty() {
                    sections.push(Section::new(Some("Why"), vec![clip(&p.rationale, 1500)]));
                }
                if !p.steps.is_empty() {
                    sections.push(Section::new(Some("Steps"), numbered(&p.steps)));
                }
                if !p.diff.trim().is_empty() {
                    let lines = p.diff.lines().count();
                    let mut s = Section::new(
                        Some("Dry-run diff"),
                        vec![format!("{} changed line(s)", diff_changes(&p.diff))],
                    );
                    s.code = Some(
                        clip(
                            &p.diff.lines().take(40).collect::<Vec<_>>().join("\n"),
                            2500,
                        ) + if lines > 40 { "\n…" } else { "" },
                    );
                    sections.push(s);
                }
                if !p.post_checks.is_empty() {
                    sections.push(Section::new(Some("Post-checks"), p.post_checks.clone()));
                }
                if !p.undo.is_empty() {
                    sections.push(Section::new(Some("Undo"), numbered(&p.undo)));
                }
                sections.push(Section::new(
                    None,
                    vec![format!("Plan hash {}", clip(&p.hash, 16))],
                ));
            }
            None => {
                title = "Proposed remediation".to_owned();
                sections.push(Section::new(None, vec![self.summary.clone()]));
            }
        }
        let state_line = match &self.status {
            None => format!("Waiting for approval{}", approvers_words(&self.approvers)),
            Some(s) => {
                let mut l = format!("Status: {}", s.state);
                if !s.approved_by.is_empty() {
                    l.push_str(&format!(
                        " · approved by {} ({} of {})",
                        s.approved_by.join(", "),
                        s.approved_by.len(),
                        s.needed
                    ));
                }
                if s.state == "pending" && !s.waiting_for.is_empty() {
                    l.push_str(&format!(" · waiting for {}", s.waiting_for.join(", ")));
                }
                l
            }
        };
        sections.push(Section::new(None, vec![state_line]));
        let fallback = format!("{title} — approval {}", self.approval_id);
        Card {
            title,
            sections,
            approval_id: self.open().then(|| self.approval_id.clone()),
            fallback,
        }
    }
}

fn approvers_words(approvers: &[String]) -> String {
    if approvers.is_empty() {
        String::new()
    } else {
        format!(" from {}", approvers.join(", "))
    }
}

fn numbered(items: &[String]) -> Vec<String> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}", i + 1))
        .collect()
}

fn diff_changes(diff: &str) -> usize {
    diff.lines()
        .filter(|l| {
            (l.starts_with('+') && !l.starts_with("+++"))
                || (l.starts_with('-') && !l.starts_with("---"))
        })
        .count()
}

/// The message posted when an approved plan finished.
pub(crate) fn result_card(view: &ApprovalView, steps: &[String]) -> Card {
    let state = view
        .status
        .as_ref()
        .map(|s| s.state.clone())
        .unwrap_or_default();
    let what = view
        .plan
        .as_ref()
        .map(|p| p.title.clone())
        .unwrap_or_else(|| view.summary.clone());
    let title = format!("Execution {state}: {what}");
    let mut sections = Vec::new();
    if let Some(s) = &view.status
        && !s.approved_by.is_empty()
    {
        sections.push(Section::new(
            None,
            vec![format!("Approved by {}", s.approved_by.join(", "))],
        ));
    }
    if !steps.is_empty() {
        sections.push(Section::new(Some("Steps"), steps.to_vec()));
    }
    if let Some(r) = view.status.as_ref().and_then(|s| s.refusal.clone()) {
        sections.push(Section::new(None, vec![r]));
    }
    Card {
        fallback: title.clone(),
        title,
        sections,
        approval_id: None,
    }
}

/// A short plain notice (resolved alert, refusals in Teams, spend cap).
pub(crate) fn notice(text: impl Into<String>) -> Card {
    let text = text.into();
    Card {
        title: String::new(),
        sections: vec![Section::new(None, vec![text.clone()])],
        approval_id: None,
        fallback: text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn clip_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn older_status_ranks_lower() {
        let mut a = ApprovalStatus {
            state: "pending".into(),
            ..ApprovalStatus::default()
        };
        let b = a.clone();
        a.approved_by.push("bob".into());
        assert!(status_rank(&a) > status_rank(&b));
        let done = ApprovalStatus {
            state: "executed".into(),
            ..ApprovalStatus::default()
        };
        assert!(status_rank(&done) > status_rank(&a));
    }
}
