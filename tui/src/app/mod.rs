//! The application state: a plain struct updated by engine events, keys and mouse events,
//! with no terminal and no I/O, so every behaviour is testable.
//!
//! - `model`: what each pane holds and the approval rules.
//! - `keys`: keys, mouse, `:`-commands, and the [`Action`]s they produce.

mod keys;
pub(crate) mod model;

use std::cell::Cell;

use chrono::{DateTime, Utc};
use medic_agent::protocol::{ApprovalVerdict, Event, StopReason, Usage};
use ratatui::layout::Rect;

use crate::TuiOptions;
use crate::history::SessionSummary;
use crate::sanitize::{one_line, sanitize};
use model::{
    ChatItem, DecisionLine, FindingCard, NoticeKind, ProposalEntry, StepLine, ToolCall,
    ToolOutputText, ToolResult, clean_plan, clean_status,
};

pub use keys::Action;

/// The three panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The conversation.
    Chat,
    /// Tool calls as they run.
    Trace,
    /// Proposed plans and their approvals.
    Proposals,
}

impl Pane {
    pub(crate) fn index(self) -> usize {
        match self {
            Pane::Chat => 0,
            Pane::Trace => 1,
            Pane::Proposals => 2,
        }
    }
}

/// What the keyboard currently drives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    /// Typing a question.
    Insert,
    /// Navigating (k9s-like keys).
    Normal,
    /// Typing a `:`-command.
    Command(String),
    /// Typing a `/` filter for the focused pane.
    Filter(String),
    /// The key help overlay.
    Help,
    /// Confirming an approve or deny.
    Confirm(Confirm),
    /// Choosing from a list (clusters, namespaces, models, past sessions).
    Picker(Picker),
}

/// The approve/deny confirmation dialog.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Confirm {
    pub(crate) verdict: ApprovalVerdict,
    pub(crate) proposal: usize,
    pub(crate) approval_id: String,
    pub(crate) title: String,
    pub(crate) cluster: String,
    pub(crate) hash: String,
    pub(crate) reason: String,
}

/// What a picker chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PickerKind {
    Cluster,
    Namespace,
    Model,
    History,
}

/// A list overlay.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picker {
    pub(crate) kind: PickerKind,
    pub(crate) items: Vec<String>,
    pub(crate) selected: usize,
}

/// What the investigation is looking at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Context {
    pub(crate) cluster: String,
    pub(crate) namespace: String,
    pub(crate) model: String,
}

/// Where the last frame put things; written by rendering so the mouse and scrolling can use
/// it. Interior mutability keeps `render(&App, …)` free of `&mut`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) panes: [Rect; 3],
    pub(crate) chat_max_scroll: usize,
    pub(crate) plan_max_scroll: usize,
    /// How far the selected tool call's expansion can scroll.
    pub(crate) trace_detail_max: usize,
}

/// The whole state of the TUI.
#[derive(Debug)]
pub struct App {
    pub(crate) identity: String,
    /// Who this session's questions are asked as (see [`TuiOptions::requester`]).
    pub(crate) requester: String,
    pub(crate) roles: Vec<String>,
    pub(crate) context: Context,
    pub(crate) clusters: Vec<String>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) models: Vec<String>,
    pub(crate) session: Option<(String, String, String)>,
    pub(crate) chat: Vec<ChatItem>,
    pub(crate) trace: Vec<ToolCall>,
    pub(crate) proposals: Vec<ProposalEntry>,
    pub(crate) usage: Usage,
    pub(crate) running: bool,
    /// When the running investigation started (for the elapsed time in the header).
    pub(crate) run_started: Option<DateTime<Utc>>,
    pub(crate) spinner: usize,
    pub(crate) now: DateTime<Utc>,
    pub(crate) focus: Pane,
    pub(crate) mode: Mode,
    pub(crate) input: String,
    pub(crate) filters: [String; 3],
    pub(crate) chat_scroll: usize,
    pub(crate) trace_sel: usize,
    /// Lines of the selected call's expansion scrolled past (PgUp/PgDn in the trace).
    pub(crate) trace_detail_scroll: usize,
    pub(crate) plan_sel: usize,
    pub(crate) plan_scroll: usize,
    pub(crate) ctrl_c_armed: bool,
    pub(crate) status: Option<(NoticeKind, String)>,
    pub(crate) history: Vec<SessionSummary>,
    pub(crate) engine_closed: bool,
    pub(crate) unseen_plans: bool,
    pub(crate) layout: Cell<Layout>,
}

impl App {
    /// A fresh state for `opts`, with `now` as the clock (see [`App::tick`]).
    pub fn new(opts: &TuiOptions, now: DateTime<Utc>) -> Self {
        App {
            identity: one_line(&opts.identity),
            requester: opts.requester.as_deref().map(one_line).unwrap_or_default(),
            roles: opts.roles.clone(),
            context: Context {
                cluster: one_line(&opts.cluster),
                namespace: one_line(&opts.namespace),
                model: one_line(&opts.model),
            },
            clusters: opts.clusters.clone(),
            namespaces: opts.namespaces.clone(),
            models: opts.models.clone(),
            session: None,
            chat: Vec::new(),
            trace: Vec::new(),
            proposals: Vec::new(),
            usage: Usage::default(),
            running: false,
            run_started: None,
            spinner: 0,
            now,
            focus: Pane::Chat,
            mode: Mode::Insert,
            input: String::new(),
            filters: Default::default(),
            chat_scroll: 0,
            trace_sel: usize::MAX,
            trace_detail_scroll: 0,
            plan_sel: 0,
            plan_scroll: 0,
            ctrl_c_armed: false,
            status: None,
            history: Vec::new(),
            engine_closed: false,
            unseen_plans: false,
            layout: Cell::new(Layout::default()),
        }
    }

    /// Advances the clock (expiry countdowns, running durations) and the spinner.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = now;
        if self.running {
            self.spinner = self.spinner.wrapping_add(1);
        }
    }

    /// Whether an investigation is running.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Records that the engine's event channel closed.
    pub fn engine_closed(&mut self) {
        if !self.engine_closed {
            self.engine_closed = true;
            self.running = false;
            self.run_started = None;
            self.close_answer();
            self.notice(
                NoticeKind::Error,
                "the engine stopped; nothing more will arrive (:q to quit)".into(),
            );
        }
    }

    /// Shows past sessions in a picker.
    pub fn set_history(&mut self, sessions: Vec<SessionSummary>) {
        let items = sessions
            .iter()
            .map(|s| {
                one_line(&format!(
                    "{}  [{}]  {}  {}",
                    s.started_at, s.outcome, s.title, s.id
                ))
            })
            .collect::<Vec<_>>();
        self.history = sessions;
        if items.is_empty() {
            self.set_status(NoticeKind::Info, "no past sessions yet".into());
        } else {
            self.mode = Mode::Picker(Picker {
                kind: PickerKind::History,
                items,
                selected: 0,
            });
        }
    }

    pub(crate) fn start_running(&mut self) {
        self.running = true;
        if self.run_started.is_none() {
            self.run_started = Some(self.now);
        }
    }

    pub(crate) fn set_status(&mut self, kind: NoticeKind, text: String) {
        self.status = Some((kind, text));
    }

    fn notice(&mut self, kind: NoticeKind, text: String) {
        self.chat.push(ChatItem::Notice(kind, text));
    }

    fn close_answer(&mut self) {
        for item in self.chat.iter_mut().rev() {
            if let ChatItem::Answer { streaming, .. } = item {
                *streaming = false;
                break;
            }
        }
    }

    fn entry(&mut self, proposal_id: &str) -> &mut ProposalEntry {
        let id = one_line(proposal_id);
        let idx = match self.proposals.iter().position(|p| p.proposal_id == id) {
            Some(i) => i,
            None => {
                self.proposals.push(ProposalEntry::new(&id));
                self.proposals.len() - 1
            }
        };
        &mut self.proposals[idx]
    }

    /// The entry an event names: by proposal id, else by approval id, else by plan id (the
    /// engine names a plan by its id in execution events and in approvals requested
    /// elsewhere); a new entry when none matches.
    fn entry_for(&mut self, key: &str, approval_id: Option<&str>) -> &mut ProposalEntry {
        let key = one_line(key);
        let approval_id = approval_id.map(one_line);
        let found = self
            .proposals
            .iter()
            .position(|p| !key.is_empty() && p.proposal_id == key)
            .or_else(|| {
                approval_id.as_ref().and_then(|a| {
                    self.proposals
                        .iter()
                        .position(|p| p.approval_id.as_deref() == Some(a.as_str()))
                })
            })
            .or_else(|| {
                self.proposals.iter().position(|p| {
                    !key.is_empty() && p.plan.as_ref().is_some_and(|plan| plan.plan_id == key)
                })
            });
        match found {
            Some(i) => &mut self.proposals[i],
            None => self.entry(&key),
        }
    }

    /// Applies one engine event. Every string is neutralised here (see [`crate::sanitize`]).
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::SessionStarted {
                session_id,
                model,
                tool_mode,
            } => {
                let (id, model, mode) = (
                    one_line(&session_id),
                    one_line(&model),
                    one_line(&tool_mode),
                );
                self.notice(
                    NoticeKind::Info,
                    format!("session {id} · model {model} · tools {mode}"),
                );
                // The header shows the model in use when the binary did not name one.
                if self.context.model.is_empty() {
                    self.context.model = if model == "none" {
                        "analyzers only".to_owned()
                    } else {
                        model.clone()
                    };
                }
                self.session = Some((id, model, mode));
            }
            Event::ToolCallStarted {
                call_id,
                tool,
                args,
            } => {
                self.running = true;
                self.trace
                    .push(ToolCall::new(&call_id, &tool, &args, self.now));
            }
            Event::ToolCallFinished {
                call_id,
                duration_ms,
                tokens,
                ok,
                error,
                summary,
            } => {
                let id = one_line(&call_id);
                let result = ToolResult {
                    duration_ms,
                    tokens,
                    ok,
                    error: error.as_deref().map(sanitize),
                    summary: one_line(&summary),
                };
                match self.trace.iter_mut().rev().find(|c| c.call_id == id) {
                    Some(call) => call.result = Some(result),
                    None => {
                        let mut call = ToolCall::new(&id, "?", &serde_json::Value::Null, self.now);
                        call.result = Some(result);
                        self.trace.push(call);
                    }
                }
            }
            Event::ToolOutput {
                call_id,
                output,
                truncated,
            } => {
                let id = one_line(&call_id);
                // Shown only when the call is expanded; never interpreted.
                if let Some(call) = self.trace.iter_mut().rev().find(|c| c.call_id == id) {
                    call.output = Some(ToolOutputText::new(&output, truncated));
                }
            }
            Event::TokenUsage(usage) => self.usage = usage,
            Event::Finding(f) => self
                .chat
                .push(ChatItem::Finding(FindingCard::from_finding(&f))),
            Event::Proposal(p) => {
                let requester = self.requester.clone();
                let e = self.entry(&p.id);
                e.set_proposal(&p);
                e.requested_by = requester;
                let title = self.entry(&p.id).title();
                self.unseen_plans = self.focus != Pane::Proposals;
                self.notice(
                    NoticeKind::Approval,
                    format!("proposed: {title} — see Proposals (key 3)"),
                );
            }
            Event::PlanReady { proposal_id, plan } => {
                let e = self.entry(&proposal_id);
                let plan = clean_plan(&plan);
                // A plan requested elsewhere arrives without its proposal.
                if e.playbook.is_empty() {
                    e.playbook = plan.playbook.clone();
                }
                e.plan = Some(plan);
                self.unseen_plans = self.focus != Pane::Proposals;
            }
            Event::ApprovalRequested {
                approval_id,
                proposal_id,
                plan_hash,
                summary,
                approvers,
            } => {
                let e = self.entry(&proposal_id);
                e.approval_id = Some(one_line(&approval_id));
                e.request_summary = Some(sanitize(&summary));
                e.request_hash = Some(one_line(&plan_hash));
                e.approvers = approvers.iter().map(|a| one_line(a)).collect();
                let title = e.title();
                self.unseen_plans = self.focus != Pane::Proposals;
                self.notice(NoticeKind::Approval, format!("approval requested: {title}"));
            }
            Event::ApprovalDecided {
                approval_id,
                actor,
                decision,
                reason,
            } => {
                let id = one_line(&approval_id);
                let line = DecisionLine {
                    actor: one_line(&actor),
                    verdict: decision,
                    reason: reason.as_deref().map(one_line),
                };
                let verb = match decision {
                    ApprovalVerdict::Approve => "approved",
                    ApprovalVerdict::Deny => "denied",
                };
                let what = self
                    .proposals
                    .iter()
                    .find(|p| p.approval_id.as_deref() == Some(id.as_str()))
                    .map(|p| p.title())
                    .unwrap_or_else(|| id.clone());
                let mut text = format!("{} {verb} {what}", line.actor);
                if let Some(r) = &line.reason {
                    text.push_str(&format!(": {r}"));
                }
                if let Some(e) = self
                    .proposals
                    .iter_mut()
                    .find(|p| p.approval_id.as_deref() == Some(id.as_str()))
                {
                    e.decisions.push(line);
                }
                self.notice(NoticeKind::Approval, text);
            }
            Event::ApprovalStatus(status) => {
                let mut s = clean_status(&status);
                let me = self.identity.clone();
                let e = self.entry_for(&s.proposal_id, Some(&s.approval_id));
                // An outcome is final: a late poll of the book (which only knows
                // `executing`) must not turn `executed` back.
                if let Some(old) = &e.status
                    && medic_agent::protocol::approval_settled(&old.state)
                    && !medic_agent::protocol::approval_settled(&s.state)
                {
                    s.state = old.state.clone();
                }
                e.approval_id = Some(s.approval_id.clone());
                // A request made elsewhere (another terminal, chat) names its requester:
                // the four-eyes rule holds here too.
                if e.requested_by.is_empty()
                    && let Some(r) = &s.requested_by
                {
                    e.requested_by = r.clone();
                }
                let title = e.title();
                let state_changed =
                    e.status.as_ref().map(|o| o.state.as_str()) != Some(s.state.as_str());
                let refusal_changed = s.refusal.is_some()
                    && e.status.as_ref().and_then(|o| o.refusal.clone()) != s.refusal;
                let mut answered = None;
                if e.approval_sent {
                    // A new refusal right after this terminal approved is the answer to it.
                    if s.approved_by.contains(&me) || s.state != "pending" {
                        e.approval_sent = false;
                        answered = Some(format!("approved as {me}: {title} is {}", s.state));
                    } else if refusal_changed {
                        e.my_refusal = s.refusal.clone();
                        e.approval_sent = false;
                    }
                }
                // Approvals given elsewhere (Slack, Teams, the CLI, another terminal) show
                // up only as new names here; record them like decisions seen directly.
                let arrived: Vec<String> = s
                    .approved_by
                    .iter()
                    .filter(|a| !e.decisions.iter().any(|d| &d.actor == *a))
                    .cloned()
                    .collect();
                for actor in &arrived {
                    e.decisions.push(DecisionLine {
                        actor: actor.clone(),
                        verdict: ApprovalVerdict::Approve,
                        reason: None,
                    });
                }
                e.status = Some(s.clone());
                for actor in arrived {
                    self.notice(NoticeKind::Approval, format!("{actor} approved {title}"));
                }
                if state_changed {
                    self.notice(NoticeKind::Approval, format!("{title}: {}", s.state));
                }
                // The status line stops saying "waiting for the engine".
                if let Some(text) = answered {
                    self.set_status(NoticeKind::Approval, text);
                }
                if refusal_changed && let Some(r) = s.refusal {
                    self.notice(NoticeKind::Error, format!("refused: {r}"));
                    self.set_status(NoticeKind::Error, format!("refused: {r}"));
                }
            }
            Event::ExecutionStep {
                proposal_id,
                step,
                description,
                status,
            } => {
                let line = StepLine {
                    step,
                    description: one_line(&description),
                    status: one_line(&status).to_lowercase(),
                };
                let kind = match line.status.as_str() {
                    "failed" | "refused" => NoticeKind::Error,
                    "undo" | "undone" => NoticeKind::Warning,
                    _ => NoticeKind::Execution,
                };
                // Step 0 carries the run's own progress (start, post-checks, undo, finish).
                let text = if step > 0 {
                    format!("step {step} {}: {}", line.status, line.description)
                } else {
                    format!("{}: {}", line.status, line.description)
                };
                // The engine names the plan here, which may be the proposal's plan id.
                let e = self.entry_for(&proposal_id, None);
                let running = e
                    .steps
                    .iter_mut()
                    .rev()
                    .find(|s| step > 0 && s.step == step && s.status == "running");
                match running {
                    Some(s) => *s = line,
                    None => e.steps.push(line),
                }
                self.notice(kind, text);
            }
            Event::AnswerDelta { text } => {
                self.start_running();
                let text = sanitize(&text);
                match self.chat.last_mut() {
                    Some(ChatItem::Answer {
                        text: t,
                        streaming: true,
                    }) => t.push_str(&text),
                    _ => self.chat.push(ChatItem::Answer {
                        text,
                        streaming: true,
                    }),
                }
            }
            Event::Done { usage, stop_reason } => {
                self.running = false;
                self.run_started = None;
                self.close_answer();
                let reason = match stop_reason {
                    StopReason::Answered => "answered",
                    StopReason::AnalyzersOnly => "answered by analyzers",
                    StopReason::StepBudget => "step budget reached",
                    StopReason::TokenBudget => "token budget reached",
                    StopReason::TimeBudget => "time budget reached",
                    StopReason::CostBudget => "cost budget reached",
                    StopReason::RepeatedCalls => "stopped repeating tool calls",
                    StopReason::Cancelled => "cancelled",
                    StopReason::ModelError => "model failed",
                };
                let kind = match stop_reason {
                    StopReason::Answered | StopReason::AnalyzersOnly => NoticeKind::Info,
                    StopReason::ModelError => NoticeKind::Error,
                    _ => NoticeKind::Warning,
                };
                self.notice(
                    kind,
                    format!(
                        "done ({reason}) · {} model calls · {} tool calls · {} in / {} out tokens · {:.1}s",
                        usage.model_calls,
                        usage.tool_calls,
                        usage.input_tokens,
                        usage.output_tokens,
                        usage.wall_ms as f64 / 1000.0
                    ),
                );
                self.usage = usage;
            }
            Event::Error { message } => {
                let m = one_line(&message);
                self.notice(NoticeKind::Error, m.clone());
                self.set_status(NoticeKind::Error, m);
            }
            Event::Warning { message } => self.notice(NoticeKind::Warning, one_line(&message)),
        }
    }

    /// Indices of chat items that pass the chat filter.
    pub(crate) fn visible_chat(&self) -> Vec<usize> {
        let f = self.filters[0].to_lowercase();
        (0..self.chat.len())
            .filter(|&i| f.is_empty() || self.chat[i].matches(&f))
            .collect()
    }

    /// Indices of tool calls that pass the trace filter.
    pub(crate) fn visible_trace(&self) -> Vec<usize> {
        let f = self.filters[1].to_lowercase();
        (0..self.trace.len())
            .filter(|&i| f.is_empty() || self.trace[i].matches(&f))
            .collect()
    }

    /// Indices of proposals that pass the proposals filter.
    pub(crate) fn visible_proposals(&self) -> Vec<usize> {
        let f = self.filters[2].to_lowercase();
        (0..self.proposals.len())
            .filter(|&i| f.is_empty() || self.proposals[i].matches(&f))
            .collect()
    }

    /// The proposal under the cursor, if any.
    pub(crate) fn selected_proposal(&self) -> Option<usize> {
        let v = self.visible_proposals();
        v.get(self.plan_sel.min(v.len().saturating_sub(1))).copied()
    }

    /// The tool call under the cursor, if any.
    pub(crate) fn selected_call(&self) -> Option<usize> {
        let v = self.visible_trace();
        v.get(self.trace_sel.min(v.len().saturating_sub(1)))
            .copied()
    }
}
