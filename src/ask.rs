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
    if !p.rationale.is_empty() {
        s = s.replacen(
            "  steps:\n",
            &format!("  why: {}\n  steps:\n", p.rationale),
            1,
        );
    }
    for (i, step) in p.steps.iter().enumerate() {
        s.push_str(&format!("    {}. {step}\n", i + 1));
    }
    if !p.diff.trim().is_empty() {
        s.push_str("  dry-run diff:\n");
        for l in p.diff.lines() {
            s.push_str(&format!("    {l}\n"));
        }
    }
    if p.post_checks.is_empty() && p.steps.iter().any(|s| s.contains("pull request")) {
        s.push_str("  post-checks: none (nothing in the cluster changes until a person merges)\n");
    } else if p.post_checks.is_empty() {
        s.push_str("  post-checks: none\n");
    } else {
        s.push_str("  post-checks:\n");
    }
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
    /// Markdown styling of the streamed answer (terminals only).
    markdown: Option<Markdown>,
}

impl Printer {
    fn new(tty: bool, quiet: bool) -> Self {
        Self {
            quiet,
            multi: tty.then(MultiProgress::new),
            in_answer: false,
            markdown: tty.then(Markdown::default),
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
        match &mut self.markdown {
            Some(md) => print!("{}", md.push(text)),
            None => print!("{text}"),
        }
        let _ = std::io::stdout().flush();
    }

    fn end_answer(&mut self) {
        if self.in_answer {
            if let Some(md) = &mut self.markdown {
                print!("{}", md.finish());
            }
            println!();
            self.in_answer = false;
        }
    }
}

const BOLD: &str = "\x1b[1m";
const BOLD_UNDERLINE: &str = "\x1b[1;4m";
const CODE: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Renders Markdown to ANSI as it streams in, a character at a time: headings, bullets,
/// quotes and fenced code are decided from a line's first characters, `**bold**` and
/// `` `code` `` inline. Only what is certain is written; a line's prefix or a lone `*` waits
/// for the next fragment.
#[derive(Debug, Default)]
struct Markdown {
    /// Characters of the current line not yet decided (its prefix).
    prefix: String,
    /// Past the line's prefix.
    in_line: bool,
    /// The line's own style (heading, quote), reapplied after inline resets.
    line_style: &'static str,
    bold: bool,
    code: bool,
    fence: bool,
    /// Dropping the rest of a fence line.
    skip_line: bool,
    /// A `*` that may start `**`.
    star: bool,
}

impl Markdown {
    fn push(&mut self, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            self.char(c, &mut out);
        }
        out
    }

    fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.in_line && !self.prefix.is_empty() {
            self.start_line(&mut out);
        }
        if self.star {
            self.star = false;
            out.push('*');
        }
        out.push_str(RESET);
        *self = Markdown::default();
        out
    }

    fn style(&self) -> String {
        let mut s = String::from(RESET);
        s.push_str(self.line_style);
        if self.fence || self.code {
            s.push_str(CODE);
        }
        if self.bold {
            s.push_str(BOLD);
        }
        s
    }

    fn char(&mut self, c: char, out: &mut String) {
        if self.skip_line {
            if c == '\n' {
                self.skip_line = false;
                self.in_line = false;
            }
            return;
        }
        if !self.in_line {
            if c == '\n' {
                self.start_line(out);
                self.char(c, out);
                return;
            }
            self.prefix.push(c);
            if self.prefix_decided() {
                self.start_line(out);
            }
            return;
        }
        if c == '\n' {
            if self.star {
                self.star = false;
                out.push('*');
            }
            // Inline styles end with the line.
            self.bold = false;
            self.code = false;
            self.line_style = "";
            out.push_str(RESET);
            out.push('\n');
            self.in_line = false;
            return;
        }
        if self.fence {
            out.push(c);
            return;
        }
        if self.star {
            self.star = false;
            if c == '*' {
                self.bold = !self.bold;
                out.push_str(&self.style());
                return;
            }
            out.push('*');
        }
        match c {
            '`' => {
                self.code = !self.code;
                out.push_str(&self.style());
            }
            '*' if !self.code => self.star = true,
            _ => out.push(c),
        }
    }

    /// Whether the buffered start of a line is enough to know its kind.
    fn prefix_decided(&self) -> bool {
        let p = self.prefix.trim_start();
        let lead_ws = self.prefix.len() - p.len();
        if p.is_empty() {
            return lead_ws > 8;
        }
        if p.starts_with('#') {
            return !p.chars().all(|c| c == '#') || p.len() > 6;
        }
        if p.starts_with('`') {
            return p.len() >= 3 || !"```".starts_with(p);
        }
        if matches!(p, "-" | "*" | "+" | ">") {
            return false;
        }
        if p.chars().all(|c| c.is_ascii_digit()) {
            return p.len() > 3;
        }
        true
    }

    /// Write the decided line start and switch to inline rendering.
    fn start_line(&mut self, out: &mut String) {
        let prefix = std::mem::take(&mut self.prefix);
        let t = prefix.trim_start();
        let indent = &prefix[..prefix.len() - t.len()];
        self.in_line = true;
        if t.starts_with("```") {
            // The fence line itself (and its language tag) is not shown.
            self.fence = !self.fence;
            out.push_str(&self.style());
            self.skip_line = true;
            return;
        }
        let mut rest = t;
        if !self.fence {
            let hashes = t.chars().take_while(|c| *c == '#').count();
            if hashes > 0 && hashes <= 6 && t[hashes..].starts_with(' ') {
                self.line_style = BOLD_UNDERLINE;
                out.push_str(indent);
                out.push_str(&self.style());
                rest = &t[hashes + 1..];
            } else if let Some(r) = t
                .strip_prefix("- ")
                .or_else(|| t.strip_prefix("* "))
                .or_else(|| t.strip_prefix("+ "))
            {
                out.push_str(indent);
                out.push_str("• ");
                rest = r;
            } else if let Some(r) = t.strip_prefix("> ") {
                self.line_style = DIM;
                out.push_str(indent);
                out.push_str(&self.style());
                out.push_str("│ ");
                rest = r;
            } else {
                out.push_str(indent);
            }
        } else {
            out.push_str(indent);
            out.push_str(&self.style());
        }
        let rest = rest.to_string();
        for c in rest.chars() {
            self.char(c, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, split: usize) -> String {
        let mut md = Markdown::default();
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        for piece in chars.chunks(split) {
            out.push_str(&md.push(&piece.iter().collect::<String>()));
        }
        out.push_str(&md.finish());
        out
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn markdown_renders_the_same_at_any_split() {
        let md = "# Root cause\nGPU **0** on `gpu-node-3` fell off the bus.\n\n- drain it\n* then `reset`\n> note\n```yaml\nkey: *x\n```\n2 * 3 = 6";
        let whole = render(md, 1000);
        for split in [1, 2, 3, 7] {
            assert_eq!(render(md, split), whole, "split {split}");
        }
        let plain = strip(&whole);
        assert_eq!(
            plain,
            "Root cause\nGPU 0 on gpu-node-3 fell off the bus.\n\n• drain it\n• then reset\n│ note\nkey: *x\n2 * 3 = 6"
        );
        assert!(whole.contains(&format!("{BOLD_UNDERLINE}Root cause")));
        assert!(whole.contains(&format!("{BOLD}0")));
        assert!(whole.contains(&format!("{CODE}gpu-node-3")));
    }
}
