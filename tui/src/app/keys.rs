//! Keys, mouse and `:`-commands. Nothing here does I/O: handlers change the state and return
//! [`Action`]s for the run loop to carry out.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use medic_agent::protocol::{ApprovalVerdict, Op};
use ratatui::layout::Position;

use super::model::NoticeKind;
use super::{App, Confirm, Mode, Pane, Picker, PickerKind};

/// Something the run loop must do after a key or mouse event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this op to the engine.
    Send(Op),
    /// Load past sessions from the history provider, then call [`App::set_history`].
    LoadHistory,
    /// Leave the TUI.
    Quit,
}

const PAGE: usize = 10;

impl App {
    /// Handles one key press and returns what the run loop must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.ctrl_c();
        }
        self.ctrl_c_armed = false;
        match self.mode.clone() {
            Mode::Insert => self.insert_key(key),
            Mode::Normal => self.normal_key(key),
            Mode::Command(buf) => self.command_key(key, buf),
            Mode::Filter(buf) => self.filter_key(key, buf),
            Mode::Help => {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
                ) {
                    self.mode = Mode::Normal;
                }
                Vec::new()
            }
            Mode::Confirm(c) => self.confirm_key(key, c),
            Mode::Picker(p) => self.picker_key(key, p),
        }
    }

    /// Pasted text goes to whatever is being typed.
    pub fn on_paste(&mut self, text: &str) {
        // The input is one line: pasted newlines become spaces.
        let clean = crate::sanitize::sanitize(text).replace('\n', " ");
        match &mut self.mode {
            Mode::Insert => self.input.push_str(&clean),
            Mode::Command(b) | Mode::Filter(b) => b.push_str(&clean),
            Mode::Confirm(c) if c.verdict == ApprovalVerdict::Deny => c.reason.push_str(&clean),
            _ => {}
        }
    }

    /// Handles the mouse: the wheel scrolls the pane under the pointer, a click focuses it.
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Action> {
        let layout = self.layout.get();
        let pos = Position::new(m.column, m.row);
        let pane = [Pane::Chat, Pane::Trace, Pane::Proposals]
            .into_iter()
            .find(|p| layout.panes[p.index()].contains(pos));
        let Some(pane) = pane else { return Vec::new() };
        match m.kind {
            // Over an expanded tool call, the wheel reads through its output.
            MouseEventKind::ScrollUp if self.trace_expanded(pane) => self.scroll_detail(-3),
            MouseEventKind::ScrollDown if self.trace_expanded(pane) => self.scroll_detail(3),
            MouseEventKind::ScrollUp => self.scroll(pane, -3),
            MouseEventKind::ScrollDown => self.scroll(pane, 3),
            MouseEventKind::Down(MouseButton::Left) => self.focus_pane(pane),
            _ => {}
        }
        Vec::new()
    }

    fn ctrl_c(&mut self) -> Vec<Action> {
        if self.ctrl_c_armed {
            return vec![Action::Send(Op::Shutdown), Action::Quit];
        }
        self.ctrl_c_armed = true;
        if self.running {
            self.set_status(
                NoticeKind::Warning,
                "cancelling the investigation… press Ctrl-C again to quit".into(),
            );
            vec![Action::Send(Op::Cancel)]
        } else {
            self.set_status(NoticeKind::Warning, "press Ctrl-C again to quit".into());
            Vec::new()
        }
    }

    fn insert_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Esc followed quickly by a key arrives as Alt+key: leave typing, then act on the key.
        if key.modifiers.contains(KeyModifiers::ALT)
            && let KeyCode::Char(c) = key.code
        {
            self.mode = Mode::Normal;
            return self.normal_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => return self.submit(),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char('w') if ctrl => {
                let trimmed = self.input.trim_end().len();
                let cut = self.input[..trimmed].rfind(' ').map(|i| i + 1).unwrap_or(0);
                self.input.truncate(cut);
            }
            KeyCode::Tab => {
                self.mode = Mode::Normal;
                self.cycle_focus(1);
            }
            KeyCode::Up => self.scroll(Pane::Chat, -1),
            KeyCode::Down => self.scroll(Pane::Chat, 1),
            KeyCode::PageUp => self.scroll(Pane::Chat, -(PAGE as isize)),
            KeyCode::PageDown => self.scroll(Pane::Chat, PAGE as isize),
            // With nothing typed, the k9s keys still work.
            KeyCode::Char(c @ (':' | '/' | '?')) if self.input.is_empty() => {
                return self.normal_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
            }
            KeyCode::Char(c) if !ctrl => self.input.push(c),
            _ => {}
        }
        Vec::new()
    }

    /// Asks `text` as if typed and sent (used for a question given on the command line).
    pub fn ask(&mut self, text: &str) -> Vec<Action> {
        self.input = text.to_owned();
        self.submit()
    }

    fn submit(&mut self) -> Vec<Action> {
        let text = self.input.trim().to_owned();
        if text.is_empty() {
            return Vec::new();
        }
        if self.running {
            self.set_status(
                NoticeKind::Warning,
                "an investigation is running; wait for it or press Ctrl-C to cancel it".into(),
            );
            return Vec::new();
        }
        if self.engine_closed {
            self.set_status(NoticeKind::Error, "the engine stopped; :q to quit".into());
            return Vec::new();
        }
        self.input.clear();
        self.chat
            .push(super::model::ChatItem::User(crate::sanitize::sanitize(
                &text,
            )));
        self.chat_scroll = 0;
        self.start_running();
        self.status = None;
        vec![Action::Send(Op::UserQuestion { text })]
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(':') => self.mode = Mode::Command(String::new()),
            KeyCode::Char('/') => {
                let current = self.filters[self.focus.index()].clone();
                self.mode = Mode::Filter(current);
            }
            KeyCode::Esc => self.back(),
            KeyCode::Char('i') => {
                self.focus_pane(Pane::Chat);
                self.mode = Mode::Insert;
            }
            KeyCode::Tab => self.cycle_focus(1),
            KeyCode::BackTab => self.cycle_focus(-1),
            KeyCode::Char('1') => self.focus_pane(Pane::Chat),
            KeyCode::Char('2') => self.focus_pane(Pane::Trace),
            KeyCode::Char('3') => self.focus_pane(Pane::Proposals),
            KeyCode::Char('j') | KeyCode::Down => self.scroll(self.focus, 1),
            KeyCode::Char('k') | KeyCode::Up => self.scroll(self.focus, -1),
            // In the trace, pages read through the selected call's output when expanded.
            KeyCode::PageDown | KeyCode::Char(' ') if self.trace_expanded(self.focus) => {
                self.scroll_detail(PAGE as isize)
            }
            KeyCode::PageUp if self.trace_expanded(self.focus) => {
                self.scroll_detail(-(PAGE as isize))
            }
            KeyCode::PageDown | KeyCode::Char(' ') => self.scroll(self.focus, PAGE as isize),
            KeyCode::PageUp => self.scroll(self.focus, -(PAGE as isize)),
            KeyCode::Char('g') | KeyCode::Home => self.scroll(self.focus, isize::MIN / 2),
            KeyCode::Char('G') | KeyCode::End => self.scroll(self.focus, isize::MAX / 2),
            KeyCode::Char('h') | KeyCode::Left | KeyCode::Char('[')
                if self.focus == Pane::Proposals =>
            {
                self.select_proposal(-1)
            }
            KeyCode::Char('l') | KeyCode::Right | KeyCode::Char(']')
                if self.focus == Pane::Proposals =>
            {
                self.select_proposal(1)
            }
            KeyCode::Enter => match self.focus {
                Pane::Chat => self.mode = Mode::Insert,
                Pane::Trace => {
                    if let Some(i) = self.selected_call() {
                        self.trace[i].expanded = !self.trace[i].expanded;
                        self.trace_detail_scroll = 0;
                    }
                }
                Pane::Proposals => {}
            },
            KeyCode::Char('a') => self.open_confirm(ApprovalVerdict::Approve),
            KeyCode::Char('d') => self.open_confirm(ApprovalVerdict::Deny),
            _ => {}
        }
        Vec::new()
    }

    /// Esc: clear the pane's filter, else go back to the chat.
    fn back(&mut self) {
        let idx = self.focus.index();
        if !self.filters[idx].is_empty() {
            self.filters[idx].clear();
        } else if self.focus != Pane::Chat {
            self.focus_pane(Pane::Chat);
        } else {
            self.status = None;
        }
    }

    pub(crate) fn focus_pane(&mut self, pane: Pane) {
        self.focus = pane;
        if pane == Pane::Proposals {
            self.unseen_plans = false;
        }
    }

    fn cycle_focus(&mut self, dir: isize) {
        let order = [Pane::Chat, Pane::Trace, Pane::Proposals];
        let next = (self.focus.index() as isize + dir).rem_euclid(3) as usize;
        self.focus_pane(order[next]);
    }

    fn select_proposal(&mut self, dir: isize) {
        let n = self.visible_proposals().len();
        if n == 0 {
            return;
        }
        let cur = self.plan_sel.min(n - 1) as isize;
        self.plan_sel = (cur + dir).clamp(0, n as isize - 1) as usize;
        self.plan_scroll = 0;
    }

    /// Scrolls a pane by `delta` lines (negative is up / earlier).
    pub(crate) fn scroll(&mut self, pane: Pane, delta: isize) {
        let layout = self.layout.get();
        match pane {
            // The chat scrolls from the bottom: 0 follows new output.
            Pane::Chat => {
                let v = self.chat_scroll as isize - delta;
                self.chat_scroll = v.clamp(0, layout.chat_max_scroll as isize) as usize;
            }
            Pane::Trace => {
                let n = self.visible_trace().len();
                if n == 0 {
                    return;
                }
                let cur = self.trace_sel.min(n - 1) as isize;
                let next = cur.saturating_add(delta).clamp(0, n as isize - 1) as usize;
                if next as isize != cur {
                    self.trace_detail_scroll = 0;
                }
                // Back at the end, follow new calls again.
                self.trace_sel = if next == n - 1 { usize::MAX } else { next };
            }
            Pane::Proposals => {
                let v = self.plan_scroll as isize + delta;
                self.plan_scroll = v.clamp(0, layout.plan_max_scroll as isize) as usize;
            }
        }
    }

    /// Whether `pane` is the trace and its selected call is expanded.
    fn trace_expanded(&self, pane: Pane) -> bool {
        pane == Pane::Trace && self.selected_call().is_some_and(|i| self.trace[i].expanded)
    }

    /// Scrolls the selected call's expansion by `delta` lines.
    fn scroll_detail(&mut self, delta: isize) {
        let max = self.layout.get().trace_detail_max as isize;
        let v = self.trace_detail_scroll as isize + delta;
        self.trace_detail_scroll = v.clamp(0, max) as usize;
    }

    fn open_confirm(&mut self, verdict: ApprovalVerdict) {
        let Some(idx) = self.selected_proposal() else {
            self.set_status(NoticeKind::Warning, "no proposal to decide on yet".into());
            return;
        };
        let entry = &self.proposals[idx];
        let check = match verdict {
            ApprovalVerdict::Approve => entry.can_approve(&self.identity, &self.roles, self.now),
            ApprovalVerdict::Deny => entry.can_deny(self.now),
        };
        match check {
            Ok(approval_id) => {
                let confirm = Confirm {
                    verdict,
                    proposal: idx,
                    approval_id,
                    title: entry.title(),
                    cluster: entry.cluster(),
                    hash: entry
                        .plan
                        .as_ref()
                        .map(|p| p.hash.clone())
                        .unwrap_or_default(),
                    reason: String::new(),
                };
                self.focus_pane(Pane::Proposals);
                self.mode = Mode::Confirm(confirm);
            }
            Err(why) => self.set_status(
                NoticeKind::Error,
                format!("cannot {}: {why}", verb(verdict)),
            ),
        }
    }

    fn confirm_key(&mut self, key: KeyEvent, mut c: Confirm) -> Vec<Action> {
        let decide = match (c.verdict, key.code) {
            (_, KeyCode::Esc) => {
                self.mode = Mode::Normal;
                self.set_status(NoticeKind::Info, format!("{} cancelled", verb(c.verdict)));
                return Vec::new();
            }
            (ApprovalVerdict::Approve, KeyCode::Char('y' | 'Y')) => true,
            (ApprovalVerdict::Approve, KeyCode::Char('n' | 'N')) => {
                self.mode = Mode::Normal;
                return Vec::new();
            }
            (ApprovalVerdict::Deny, KeyCode::Enter) => {
                if c.reason.trim().is_empty() {
                    self.set_status(
                        NoticeKind::Warning,
                        "a denial needs a reason; type it, then Enter".into(),
                    );
                    return Vec::new();
                }
                true
            }
            (ApprovalVerdict::Deny, KeyCode::Backspace) => {
                c.reason.pop();
                false
            }
            (ApprovalVerdict::Deny, KeyCode::Char(ch))
                if !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                c.reason.push(ch);
                false
            }
            _ => false,
        };
        if !decide {
            self.mode = Mode::Confirm(c);
            return Vec::new();
        }
        self.mode = Mode::Normal;
        // The state may have moved while the dialog was open (an approval from Slack, expiry).
        let Some(entry) = self.proposals.get(c.proposal) else {
            return Vec::new();
        };
        let recheck = match c.verdict {
            ApprovalVerdict::Approve => entry.can_approve(&self.identity, &self.roles, self.now),
            ApprovalVerdict::Deny => entry.can_deny(self.now),
        };
        match recheck {
            Ok(id) if id == c.approval_id => {
                if c.verdict == ApprovalVerdict::Approve
                    && let Some(e) = self.proposals.get_mut(c.proposal)
                {
                    e.approval_sent = true;
                }
                self.set_status(
                    NoticeKind::Approval,
                    format!(
                        "{} sent as {}; waiting for the engine",
                        verb(c.verdict),
                        self.identity
                    ),
                );
                let reason = Some(c.reason.trim().to_owned()).filter(|r| !r.is_empty());
                vec![Action::Send(Op::ApprovalDecision {
                    approval_id: c.approval_id,
                    actor: self.identity.clone(),
                    decision: c.verdict,
                    reason,
                })]
            }
            Ok(_) => {
                self.set_status(
                    NoticeKind::Error,
                    "the approval request changed while the dialog was open; look again".into(),
                );
                Vec::new()
            }
            Err(why) => {
                self.set_status(
                    NoticeKind::Error,
                    format!("cannot {}: {why}", verb(c.verdict)),
                );
                Vec::new()
            }
        }
    }

    fn filter_key(&mut self, key: KeyEvent, mut buf: String) -> Vec<Action> {
        let idx = self.focus.index();
        match key.code {
            KeyCode::Esc => {
                self.filters[idx].clear();
                self.mode = Mode::Normal;
                return Vec::new();
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                return Vec::new();
            }
            KeyCode::Backspace => {
                buf.pop();
            }
            KeyCode::Char(c) => buf.push(c),
            _ => {}
        }
        // The filter applies as you type.
        self.filters[idx] = buf.clone();
        self.chat_scroll = 0;
        self.mode = Mode::Filter(buf);
        Vec::new()
    }

    fn command_key(&mut self, key: KeyEvent, mut buf: String) -> Vec<Action> {
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                return self.run_command(&buf);
            }
            KeyCode::Backspace => {
                if buf.pop().is_none() {
                    self.mode = Mode::Normal;
                } else {
                    self.mode = Mode::Command(buf);
                }
            }
            KeyCode::Char(c) => {
                buf.push(c);
                self.mode = Mode::Command(buf);
            }
            _ => {}
        }
        Vec::new()
    }

    fn picker_key(&mut self, key: KeyEvent, mut p: Picker) -> Vec<Action> {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.mode = Mode::Normal,
            KeyCode::Char('j') | KeyCode::Down => {
                p.selected = (p.selected + 1).min(p.items.len().saturating_sub(1));
                self.mode = Mode::Picker(p);
            }
            KeyCode::Char('k') | KeyCode::Up => {
                p.selected = p.selected.saturating_sub(1);
                self.mode = Mode::Picker(p);
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                let Some(item) = p.items.get(p.selected).cloned() else {
                    return Vec::new();
                };
                return match p.kind {
                    PickerKind::Cluster => self.switch(PickerKind::Cluster, &item),
                    PickerKind::Namespace => self.switch(PickerKind::Namespace, &item),
                    PickerKind::Model => self.switch(PickerKind::Model, &item),
                    PickerKind::History => {
                        // The protocol cannot reopen a past session; show what is known.
                        if let Some(s) = self.history.get(p.selected).cloned() {
                            self.notice(
                                NoticeKind::Info,
                                crate::sanitize::one_line(&format!(
                                    "past session {} ({}): {} — {}",
                                    s.id, s.started_at, s.title, s.outcome
                                )),
                            );
                        }
                        Vec::new()
                    }
                };
            }
            _ => self.mode = Mode::Picker(p),
        }
        Vec::new()
    }

    /// Runs a `:`-command.
    pub(crate) fn run_command(&mut self, line: &str) -> Vec<Action> {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.collect::<Vec<_>>().join(" ");
        match cmd {
            "" => Vec::new(),
            "q" | "q!" | "quit" | "exit" => vec![Action::Send(Op::Shutdown), Action::Quit],
            "cluster" | "ctx" | "context" => self.switch_or_pick(PickerKind::Cluster, &arg),
            "ns" | "namespace" => self.switch_or_pick(PickerKind::Namespace, &arg),
            "model" => self.switch_or_pick(PickerKind::Model, &arg),
            "history" | "sessions" => vec![Action::LoadHistory],
            "chat" => self.focus_then(Pane::Chat),
            "trace" | "tools" => self.focus_then(Pane::Trace),
            "proposals" | "plans" | "approvals" => self.focus_then(Pane::Proposals),
            "approve" => {
                self.open_confirm(ApprovalVerdict::Approve);
                Vec::new()
            }
            "deny" => {
                self.open_confirm(ApprovalVerdict::Deny);
                if let Mode::Confirm(c) = &mut self.mode {
                    c.reason = arg;
                }
                Vec::new()
            }
            "cancel" => {
                if self.running {
                    vec![Action::Send(Op::Cancel)]
                } else {
                    self.set_status(NoticeKind::Info, "nothing is running".into());
                    Vec::new()
                }
            }
            "help" | "h" => {
                self.mode = Mode::Help;
                Vec::new()
            }
            other => {
                self.set_status(
                    NoticeKind::Error,
                    format!("unknown command :{other} — try :help"),
                );
                Vec::new()
            }
        }
    }

    fn focus_then(&mut self, pane: Pane) -> Vec<Action> {
        self.focus_pane(pane);
        Vec::new()
    }

    fn switch_or_pick(&mut self, kind: PickerKind, arg: &str) -> Vec<Action> {
        if !arg.is_empty() {
            return self.switch(kind, arg);
        }
        let (items, current) = match kind {
            PickerKind::Cluster => (&self.clusters, &self.context.cluster),
            PickerKind::Namespace => (&self.namespaces, &self.context.namespace),
            PickerKind::Model => (&self.models, &self.context.model),
            PickerKind::History => return vec![Action::LoadHistory],
        };
        if items.is_empty() {
            self.set_status(
                NoticeKind::Warning,
                format!(
                    "no known {}s; type :{} <name>",
                    kind_name(kind),
                    kind_name(kind)
                ),
            );
            return Vec::new();
        }
        let selected = items.iter().position(|i| i == current).unwrap_or(0);
        self.mode = Mode::Picker(Picker {
            kind,
            items: items.clone(),
            selected,
        });
        Vec::new()
    }

    fn switch(&mut self, kind: PickerKind, name: &str) -> Vec<Action> {
        let known = match kind {
            PickerKind::Cluster => &self.clusters,
            PickerKind::Namespace => &self.namespaces,
            PickerKind::Model => &self.models,
            PickerKind::History => return Vec::new(),
        };
        // Namespaces are open-ended; clusters and models must be configured ones.
        if kind != PickerKind::Namespace && !known.is_empty() && !known.iter().any(|k| k == name) {
            self.set_status(
                NoticeKind::Error,
                format!(
                    "unknown {} '{name}'; known: {}",
                    kind_name(kind),
                    known.join(", ")
                ),
            );
            return Vec::new();
        }
        if self.running {
            self.set_status(
                NoticeKind::Warning,
                "an investigation is running; switch after it ends (Ctrl-C cancels it)".into(),
            );
            return Vec::new();
        }
        let name = crate::sanitize::one_line(name);
        let (mut cluster, mut namespace, mut model) = (None, None, None);
        match kind {
            PickerKind::Cluster => {
                self.context.cluster = name.clone();
                cluster = Some(name.clone());
            }
            PickerKind::Namespace => {
                self.context.namespace = name.clone();
                namespace = Some(name.clone());
            }
            _ => {
                self.context.model = name.clone();
                model = Some(name.clone());
            }
        }
        self.notice(NoticeKind::Info, format!("{} → {name}", kind_name(kind)));
        vec![Action::Send(Op::SwitchContext {
            cluster,
            namespace,
            model,
        })]
    }
}

fn verb(v: ApprovalVerdict) -> &'static str {
    match v {
        ApprovalVerdict::Approve => "approve",
        ApprovalVerdict::Deny => "deny",
    }
}

fn kind_name(k: PickerKind) -> &'static str {
    match k {
        PickerKind::Cluster => "cluster",
        PickerKind::Namespace => "namespace",
        PickerKind::Model => "model",
        PickerKind::History => "session",
    }
}
