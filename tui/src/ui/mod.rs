//! Rendering: `render(&App, &mut Frame)` draws the whole screen from the state, nothing else.
//!
//! Below 120×30 one pane fills the body and its title doubles as a tab bar (80×24 works);
//! from 120×30 up the chat sits on the left and the trace and proposals stack on the right.

mod chat;
mod overlay;
mod proposals;
mod trace;

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout as Split, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};

use crate::app::model::NoticeKind;
use crate::app::{App, Layout, Mode, Pane};
use crate::text::{truncate, width};

pub(crate) const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Smallest terminal the layout is designed for.
pub const MIN_WIDTH: u16 = 80;
/// Smallest terminal height the layout is designed for.
pub const MIN_HEIGHT: u16 = 24;

/// Draws the whole screen for `app`.
pub fn render(app: &App, frame: &mut Frame<'_>) {
    let area = frame.area();
    let rows = Split::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(area);
    header(app, frame, rows[0]);
    let wide = area.width >= 120 && area.height >= 30;
    let mut layout = Layout {
        panes: [Rect::default(); 3],
        ..app.layout.get()
    };
    if wide {
        // The focused pane gets the larger share.
        let (left, top) = match app.focus {
            Pane::Chat => (55, 40),
            Pane::Trace => (45, 65),
            Pane::Proposals => (42, 30),
        };
        let cols = Split::default()
            .direction(Direction::Horizontal)
            .constraints([
                Constraint::Percentage(left),
                Constraint::Percentage(100 - left),
            ])
            .split(rows[1]);
        let right = Split::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Percentage(top),
                Constraint::Percentage(100 - top),
            ])
            .split(cols[1]);
        layout.panes = [cols[0], right[0], right[1]];
        for pane in [Pane::Chat, Pane::Trace, Pane::Proposals] {
            let r = layout.panes[pane.index()];
            let title = Line::from(pane_title(app, pane));
            draw_pane(app, frame, pane, r, title, &mut layout);
        }
    } else {
        layout.panes[app.focus.index()] = rows[1];
        let mut tabs = Vec::new();
        for pane in [Pane::Chat, Pane::Trace, Pane::Proposals] {
            if !tabs.is_empty() {
                tabs.push(Span::styled("│", Style::new().fg(Color::DarkGray)));
            }
            let mut spans = pane_title(app, pane);
            if pane != app.focus {
                for s in &mut spans {
                    s.style = s.style.fg(Color::DarkGray).remove_modifier(Modifier::BOLD);
                }
            }
            tabs.extend(spans);
        }
        draw_pane(
            app,
            frame,
            app.focus,
            rows[1],
            Line::from(tabs),
            &mut layout,
        );
    }
    app.layout.set(layout);
    input_line(app, frame, rows[2]);
    status_line(app, frame, rows[3]);
    overlay::draw(app, frame, area);
}

fn pane_title(app: &App, pane: Pane) -> Vec<Span<'static>> {
    let focused = app.focus == pane;
    let style = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let (key, name, count) = match pane {
        Pane::Chat => ("1", "Chat", String::new()),
        Pane::Trace => {
            let failed = app
                .trace
                .iter()
                .filter(|c| c.result.as_ref().is_some_and(|r| !r.ok))
                .count();
            let mut c = format!(" {}", app.trace.len());
            if failed > 0 {
                c.push_str(&format!(" ✗{failed}"));
            }
            ("2", "Trace", c)
        }
        Pane::Proposals => {
            let dot = if app.unseen_plans { "●" } else { "" };
            ("3", "Proposals", format!(" {}{dot}", app.proposals.len()))
        }
    };
    let mut spans = vec![Span::styled(format!(" {key} {name}{count} "), style)];
    let filter = &app.filters[pane.index()];
    if !filter.is_empty() {
        spans.push(Span::styled(
            format!("/{} ", truncate(filter, 20)),
            Style::new().fg(Color::Yellow),
        ));
    }
    spans
}

fn draw_pane(
    app: &App,
    frame: &mut Frame<'_>,
    pane: Pane,
    area: Rect,
    title: Line<'static>,
    layout: &mut Layout,
) {
    let focused = app.focus == pane;
    let block = Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new().fg(Color::DarkGray)
        })
        .title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match pane {
        Pane::Chat => layout.chat_max_scroll = chat::draw(app, frame, inner),
        Pane::Trace => layout.trace_detail_max = trace::draw(app, frame, inner),
        Pane::Proposals => layout.plan_max_scroll = proposals::draw(app, frame, inner),
    }
}

fn header(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = vec![
        Span::styled(
            " medic ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(" ⎈ "),
        Span::styled(
            app.context.cluster.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled("/", dim),
        if app.context.namespace.is_empty() {
            Span::styled("*", dim)
        } else {
            Span::raw(app.context.namespace.clone())
        },
        Span::styled("  model ", dim),
        Span::raw(app.context.model.clone()),
        Span::styled("  as ", dim),
        Span::raw(if app.identity.is_empty() {
            "(no identity)".to_owned()
        } else {
            app.identity.clone()
        }),
    ];
    if app.running {
        let frame_char = SPINNER[app.spinner % SPINNER.len()];
        let what = match app.trace.iter().rev().find(|c| c.result.is_none()) {
            Some(c) => {
                let secs = (app.now - c.started).num_milliseconds().max(0) as f64 / 1000.0;
                format!("{} {secs:.1}s", c.tool)
            }
            None => match app.run_started {
                Some(t) => format!(
                    "investigating {:.1}s",
                    (app.now - t).num_milliseconds().max(0) as f64 / 1000.0
                ),
                None => "investigating".to_owned(),
            },
        };
        spans.push(Span::styled(
            format!("  {frame_char} {what}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    let used: usize = spans.iter().map(|s| width(&s.content)).sum();
    let counters = format!(
        "{} tok{} ",
        fmt_k(app.usage.input_tokens + app.usage.output_tokens),
        cost(app.usage.cost_usd)
    );
    if used + width(&counters) + 2 <= area.width as usize {
        let pad = area.width as usize - used - width(&counters);
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(counters, dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn input_line(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let (prompt, text, style) = match &app.mode {
        Mode::Command(b) => (":", b.clone(), Style::new().fg(Color::Yellow)),
        Mode::Filter(b) => ("/", b.clone(), Style::new().fg(Color::Yellow)),
        Mode::Insert => ("› ", app.input.clone(), Style::new()),
        _ if app.input.is_empty() => (
            "› ",
            "press i to ask a question".to_owned(),
            Style::new().fg(Color::DarkGray),
        ),
        _ => ("› ", app.input.clone(), Style::new().fg(Color::DarkGray)),
    };
    // Keep the end of a long input visible.
    let room = (area.width as usize).saturating_sub(width(prompt) + 1);
    let shown = if width(&text) > room {
        let skip = text.chars().count().saturating_sub(room);
        text.chars().skip(skip).collect()
    } else {
        text.clone()
    };
    let line = Line::from(vec![
        Span::styled(
            prompt,
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        Span::styled(shown.clone(), style),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    if matches!(app.mode, Mode::Insert | Mode::Command(_) | Mode::Filter(_)) {
        let x = area.x
            + (width(prompt) + width(&shown)).min(area.width.saturating_sub(1) as usize) as u16;
        frame.set_cursor_position(Position::new(x, area.y));
    }
}

fn status_line(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let full = frame.area();
    if full.width < MIN_WIDTH || full.height < MIN_HEIGHT {
        let text = format!(
            " terminal is {}x{}; medic needs at least {MIN_WIDTH}x{MIN_HEIGHT}",
            full.width, full.height
        );
        frame.render_widget(
            Paragraph::new(Line::styled(
                truncate(&text, area.width as usize),
                Style::new().fg(Color::Yellow),
            )),
            area,
        );
        return;
    }
    let line = match &app.status {
        Some((kind, text)) => Line::styled(
            truncate(&format!(" {text}"), area.width as usize),
            notice_style(*kind),
        ),
        None => {
            let hints = match (&app.mode, app.focus) {
                (Mode::Insert, _) => {
                    "Enter ask · Esc keys · Tab panes · ↑↓ scroll · Ctrl-C cancel/quit"
                }
                (_, Pane::Trace) => {
                    "j/k select · Enter expand · / filter · Tab panes · : command · ? help"
                }
                (_, Pane::Proposals) => {
                    "a approve · d deny · j/k scroll · h/l plan · / filter · ? help"
                }
                _ => "i ask · Tab panes · j/k scroll · / filter · : command · ? help",
            };
            Line::styled(
                truncate(&format!(" {hints}"), area.width as usize),
                Style::new().fg(Color::DarkGray),
            )
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

pub(crate) fn notice_style(kind: NoticeKind) -> Style {
    match kind {
        NoticeKind::Info => Style::new().fg(Color::DarkGray),
        NoticeKind::Warning => Style::new().fg(Color::Yellow),
        NoticeKind::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        NoticeKind::Approval => Style::new().fg(Color::Magenta),
        NoticeKind::Execution => Style::new().fg(Color::Green),
    }
}

/// 1234 → "1.2k".
pub(crate) fn fmt_k(n: u64) -> String {
    if n >= 10_000 {
        format!("{}k", n / 1000)
    } else if n >= 1000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}

pub(crate) fn cost(c: Option<f64>) -> String {
    c.map(|c| format!(" · ${c:.4}")).unwrap_or_default()
}
