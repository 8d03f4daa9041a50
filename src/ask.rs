//! `medic ask`: one investigation, printed as it happens.
//!
//! On a terminal: a spinner line per running tool call, the answer streamed as it arrives,
//! findings, plans awaiting approval, and a usage line. Piped: the same as plain text.
//! `--json`: one JSON document with everything the session produced.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use medic_agent::protocol::{ApprovalStatus, Event, Finding, Op, PlanView, Proposal, Usage};
use medic_approvals::Actor;
use serde::Serialize;
use serde_json::Value;

use crate::wire::Wired;

/// What the session produced, for `--json`.
#[derive(Debug, Default, Serialize)]
pub struct Transcript {
    /// The question or alert that started it.
    pub question: String,
    /// Findings, analyzers' and the model's.
    pub findings: Vec<Finding>,
    /// Proposals (playbook + parameters).
    pub proposals: Vec<Proposal>,
    /// Exact plans, by proposal id.
    pub plans: Vec<(String, PlanView)>,
    /// Approval requests and where they stand.
    pub approvals: Vec<ApprovalStatus>,
    /// The answer text.
    pub answer: String,
    /// Warnings and errors.
    pub warnings: Vec<String>,
    /// Tool calls: id, tool, ok, duration ms, tokens.
    pub tool_calls: Vec<Value>,
    /// Counters.
    pub usage: Usage,
    /// Why it stopped.
    pub stop_reason: String,
}

/// The start of a session: a question or an alert.
pub enum Start {
    /// A question.
    Question(String),
    /// An alert payload from a source (e.g. `alertmanager`).
    Alert {
        /// Source name.
        source: String,
        /// The payload.
        payload: Value,
    },
}

impl Start {
    fn describe(&self) -> String {
        match self {
            Start::Question(q) => q.clone(),
            Start::Alert { source, payload } => {
                let name = payload
                    .pointer("/commonLabels/alertname")
                    .or_else(|| payload.pointer("/alerts/0/labels/alertname"))
                    .and_then(Value::as_str)
                    .unwrap_or("alert");
                format!("{source} alert {name}")
            }
        }
    }

    fn op(self) -> Op {
        match self {
            Start::Question(text) => Op::UserQuestion { text },
            Start::Alert { source, payload } => Op::Alert { source, payload },
        }
    }
}

/// The question to ask: the given one, else the bundle's start.
pub fn start_of(question: Option<String>, wired: &Wired) -> Result<Start> {
    if let Some(q) = question {
        return Ok(Start::Question(q));
    }
    let Some(bundle) = &wired.bundle else {
        bail!("no question given; usage: medic ask \"why are pods failing in namespace ai?\"");
    };
    let start = serde_json::to_value(&bundle.scenario.start)?;
    if let Some(q) = start.get("question").and_then(Value::as_str) {
        return Ok(Start::Question(q.to_string()));
    }
    if let Some(alert) = start.get("alert") {
        return Ok(Start::Alert {
            source: alert
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("alertmanager")
                .to_string(),
            payload: alert.get("payload").cloned().unwrap_or(Value::Null),
        });
    }
    bail!("the bundle's scenario has no start question or alert")
}

/// Runs one investigation for `requester` and prints it (or collects it for `--json`).
pub async fn run(wired: &Wired, start: Start, requester: Actor, json: bool) -> Result<Transcript> {
    let mut link = wired.engine.connect(requester);
    let mut t = Transcript {
        question: start.describe(),
        ..Transcript::default()
    };
    let tty = std::io::stdout().is_terminal() && !json;
    let mut out = Printer::new(tty, json);
    out.line(&format!("? {}", t.question));
    link.ops.send(start.op())?;
    let mut spinners: HashMap<String, ProgressBar> = HashMap::new();
    while let Some(event) = link.events.recv().await {
        match event {
            Event::SessionStarted {
                model, tool_mode, ..
            } => {
                out.note(&format!("model: {model} (tools: {tool_mode})"));
            }
            Event::ToolCallStarted {
                call_id,
                tool,
                args,
            } => {
                let label = format!("{tool} {}", compact_args(&args));
                if let Some(bar) = out.spinner(&label) {
                    spinners.insert(call_id, bar);
                }
            }
            Event::ToolCallFinished {
                call_id,
                duration_ms,
                tokens,
                ok,
                error,
                summary,
            } => {
                t.tool_calls.push(serde_json::json!({
                    "call_id": call_id, "ok": ok, "duration_ms": duration_ms,
                    "tokens": tokens, "summary": summary, "error": error,
                }));
                let mark = if ok { "✓" } else { "✗" };
                let detail = error.unwrap_or(summary);
                let text = format!("{mark} {detail} ({duration_ms} ms, {tokens} tokens)");
                match spinners.remove(&call_id) {
                    Some(bar) => bar.finish_with_message(text),
                    None => out.note(&text),
                }
            }
            // `--json` keeps the tool calls' summaries; the outputs are the TUI's to expand.
            Event::ToolOutput { .. } => {}
            Event::Finding(f) => {
                out.line(&format!(
                    "\n● {} [{} confidence, {}]\n  root cause: {}",
                    f.summary,
                    f.confidence.level(),
                    f.source,
                    f.root_cause
                ));
                t.findings.push(f);
            }
            Event::Proposal(p) => {
                out.line(&format!("\n→ proposed: {} {}", p.playbook, p.params));
                t.proposals.push(p);
            }
            Event::PlanReady { proposal_id, plan } => {
                out.line(&render_plan(&plan));
                t.plans.push((proposal_id, plan));
            }
            Event::ApprovalRequested { approval_id, .. } => {
                out.line(&format!(
                    "  approval requested: {approval_id}\n  approve with: medic approvals approve {approval_id}"
                ));
            }
            Event::ApprovalStatus(s) => {
                out.note(&format!(
                    "approval {}: {} ({} of {} approvals){}",
                    s.approval_id,
                    s.state,
                    s.approved_by.len(),
                    s.needed,
                    s.waiting_for
                        .first()
                        .map(|w| format!(", waiting for {w}"))
                        .unwrap_or_default()
                ));
                t.approvals.retain(|a| a.approval_id != s.approval_id);
                t.approvals.push(s);
            }
            Event::AnswerDelta { text } => {
                out.answer(&text);
                t.answer.push_str(&text);
            }
            Event::Warning { message } | Event::Error { message } => {
                out.note(&format!("! {message}"));
                t.warnings.push(message);
            }
            Event::Done { usage, stop_reason } => {
                t.usage = usage;
                t.stop_reason = format!("{stop_reason:?}");
                break;
            }
            Event::TokenUsage(_) | Event::ApprovalDecided { .. } | Event::ExecutionStep { .. } => {}
        }
    }
    let _ = link.ops.send(Op::Shutdown);
    let u = &t.usage;
    out.line(&format!(
        "\n{} model call(s), {} tool call(s), {} tokens in / {} out, {:.1}s ({})",
        u.model_calls,
        u.tool_calls,
        u.input_tokens,
        u.output_tokens,
        u.wall_ms as f64 / 1000.0,
        t.stop_reason
    ));
    Ok(t)
}

/// A plan as text (the same facts every front end shows).
pub fn render_plan(p: &PlanView) -> String {
    let mut s = format!(
        "\n▶ plan {} — {} [{}] on {}\n  risk: {}   blast radius: {}\n  steps:\n",
        &p.plan_id[..p.plan_id.len().min(8)],
        p.title,
        p.playbook,
        p.cluster,
        p.risk,
        p.blast_radius
    );
    for (i, step) in p.steps.iter().enumerate() {
        s.push_str(&format!("    {}. {step}\n", i + 1));
    }
    if !p.diff.trim().is_empty() {
        s.push_str("  dry-run diff:\n");
        for l in p.diff.lines() {
            s.push_str(&format!("    {l}\n"));
        }
    }
    s.push_str("  post-checks:\n");
    for c in &p.post_checks {
        s.push_str(&format!("    - {c}\n"));
    }
    if !p.undo.is_empty() {
        s.push_str("  undo:\n");
        for u in &p.undo {
            s.push_str(&format!("    - {u}\n"));
        }
    }
    s.push_str(&format!("  plan hash: {}", p.hash));
    s
}

fn compact_args(args: &Value) -> String {
    let Some(map) = args.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes to the terminal (with spinners), to a pipe (plain lines), or nowhere (`--json`).
struct Printer {
    quiet: bool,
    multi: Option<MultiProgress>,
    in_answer: bool,
}

impl Printer {
    fn new(tty: bool, quiet: bool) -> Self {
        Self {
            quiet,
            multi: tty.then(MultiProgress::new),
            in_answer: false,
        }
    }

    fn line(&mut self, s: &str) {
        if self.quiet {
            return;
        }
        self.end_answer();
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => println!("{s}"),
        }
    }

    fn note(&mut self, s: &str) {
        if self.quiet {
            return;
        }
        self.line(&format!("  {s}"));
    }

    fn spinner(&mut self, label: &str) -> Option<ProgressBar> {
        if self.quiet {
            return None;
        }
        let Some(m) = &self.multi else {
            println!("  … {label}");
            return None;
        };
        let bar = m.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }

    fn answer(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        if !self.in_answer {
            println!();
            self.in_answer = true;
        }
        print!("{text}");
        let _ = std::io::stdout().flush();
    }

    fn end_answer(&mut self) {
        if self.in_answer {
            println!();
            self.in_answer = false;
        }
    }
}
