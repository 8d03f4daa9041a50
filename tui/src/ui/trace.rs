//! The trace pane: every tool call as it runs, expandable to its arguments and result, under
//! the session's token and cost counters.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{SPINNER, cost, fmt_k};
use crate::app::model::ToolCall;
use crate::app::{App, Pane};
use crate::text::{truncate, width, wrap_plain};

/// Draws the pane; returns how far the selected call's expansion can scroll.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect) -> usize {
    let w = area.width as usize;
    let h = area.height as usize;
    if w == 0 || h == 0 {
        return 0;
    }
    let u = &app.usage;
    let dim = Style::new().fg(Color::DarkGray);
    let counters = Line::from(vec![
        Span::styled("tokens ", dim),
        Span::raw(format!(
            "{} in / {} out",
            fmt_k(u.input_tokens),
            fmt_k(u.output_tokens)
        )),
        Span::styled(cost(u.cost_usd), Style::new().fg(Color::Green)),
        Span::styled(
            format!(
                " · {} model · {} tool calls",
                u.model_calls,
                u.tool_calls.max(app.trace.len() as u32)
            ),
            dim,
        ),
    ]);
    frame.render_widget(Paragraph::new(counters), Rect { height: 1, ..area });
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    let h = body.height as usize;
    let visible = app.visible_trace();
    if visible.is_empty() {
        let hint = if app.filters[1].is_empty() {
            "No tool calls yet."
        } else {
            "Nothing matches the filter (Esc clears it)."
        };
        frame.render_widget(Paragraph::new(Line::styled(hint, dim)), body);
        return 0;
    }
    let selected = app.selected_call();
    // First pass: heights only (a collapsed call is one line), so a long session lays out
    // just the calls on screen. The selected call's expansion starts at its detail scroll.
    let mut detail_max = 0;
    // Expanded calls are laid out once per frame and reused below.
    let mut expanded: HashMap<usize, Vec<Line<'static>>> = HashMap::new();
    let heights: Vec<usize> = visible
        .iter()
        .map(|&i| {
            let call = &app.trace[i];
            if !call.expanded {
                return 1;
            }
            let lines = details(call, w);
            let n = lines.len();
            expanded.insert(i, lines);
            if Some(i) == selected {
                // Room for the row itself; the rest of the pane shows the details.
                detail_max = n.saturating_sub(h.saturating_sub(1));
                1 + n - app.trace_detail_scroll.min(detail_max)
            } else {
                1 + n
            }
        })
        .collect();
    let detail_skip = app.trace_detail_scroll.min(detail_max);
    let (mut sel_start, mut sel_end, mut offset) = (0, 0, 0);
    for (n, &i) in visible.iter().enumerate() {
        if Some(i) == selected {
            sel_start = offset;
            sel_end = offset + heights[n];
        }
        offset += heights[n];
    }
    // Keep the selected call (with its expansion, when it fits) on screen.
    let mut start = sel_end.saturating_sub(h);
    if sel_start < start {
        start = sel_start;
    }
    let mut window: Vec<Line<'static>> = Vec::with_capacity(h);
    let mut offset = 0;
    for (n, &i) in visible.iter().enumerate() {
        let end = offset + heights[n];
        if end > start && offset < start + h {
            let call = &app.trace[i];
            let is_sel = Some(i) == selected;
            let mut lines = vec![row(app, call, w, is_sel && app.focus == Pane::Trace)];
            if let Some(detail) = expanded.remove(&i) {
                let skip = if is_sel { detail_skip } else { 0 };
                lines.extend(detail.into_iter().skip(skip));
            }
            let skip = start.saturating_sub(offset);
            window.extend(lines.into_iter().skip(skip));
        }
        offset = end;
        if offset >= start + h {
            break;
        }
    }
    window.truncate(h);
    frame.render_widget(Paragraph::new(window), body);
    let more = detail_max - detail_skip;
    if more > 0 && app.focus == Pane::Trace {
        let marker = format!("↓ {more} more (PgDn) ");
        let mw = width(&marker) as u16;
        if body.width > mw && body.height > 0 {
            let r = Rect::new(body.x + body.width - mw, body.y + body.height - 1, mw, 1);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    marker,
                    Style::new().fg(Color::Black).bg(Color::Yellow),
                )),
                r,
            );
        }
    }
    detail_max
}

fn row(app: &App, call: &ToolCall, w: usize, selected: bool) -> Line<'static> {
    let (icon, icon_style, right) = match &call.result {
        None => {
            let secs = (app.now - call.started).num_milliseconds().max(0) as f64 / 1000.0;
            (
                SPINNER[app.spinner % SPINNER.len()],
                Style::new().fg(Color::Yellow),
                format!("{secs:.1}s…"),
            )
        }
        Some(r) if r.ok => (
            "✓",
            Style::new().fg(Color::Green),
            format!("{} {} tok", duration(r.duration_ms), r.tokens),
        ),
        Some(r) => (
            "✗",
            Style::new().fg(Color::Red),
            format!("{} {} tok", duration(r.duration_ms), r.tokens),
        ),
    };
    let marker = if call.expanded { "▾" } else { "▸" };
    let name = format!("{icon} {marker} {} ", call.tool);
    let room = w.saturating_sub(width(&name) + width(&right) + 1);
    let args = truncate(&call.key_args, room);
    let pad = w.saturating_sub(width(&name) + width(&args) + width(&right));
    let base = if selected {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(format!("{icon} "), icon_style.patch(base)),
        Span::styled(
            format!("{marker} {} ", call.tool),
            base.add_modifier(Modifier::BOLD),
        ),
        Span::styled(args, base.fg(Color::DarkGray)),
        Span::styled(" ".repeat(pad), base),
        Span::styled(right, base.fg(Color::Gray)),
    ])
}

fn details(call: &ToolCall, w: usize) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut out = vec![Line::styled(format!("    id {}", call.call_id), dim)];
    for line in call.args.lines() {
        // Keep the JSON's indentation: it goes into the wrap prefix.
        let body = line.trim_start();
        let indent = format!("    {}", &line[..line.len() - body.len()]);
        out.extend(wrap_plain(body, Style::new().fg(Color::Gray), w, &indent));
    }
    match &call.result {
        None => out.push(Line::styled("    running…", Style::new().fg(Color::Yellow))),
        Some(r) => {
            if !r.summary.is_empty() && (r.ok || r.error.is_none()) {
                out.extend(wrap_plain(
                    &format!("→ {}", r.summary),
                    Style::new(),
                    w,
                    "    ",
                ));
            }
            if let Some(e) = &r.error {
                out.extend(wrap_plain(
                    &format!("error: {e}"),
                    Style::new().fg(Color::Red),
                    w,
                    "    ",
                ));
            }
        }
    }
    if let Some(o) = &call.output {
        let mut head = format!("    output · {}", bytes(o.bytes));
        if o.truncated {
            head.push_str(" (cut by the engine; the model read the same preview)");
        }
        out.push(Line::styled(head, dim));
        if o.text.trim().is_empty() {
            out.push(Line::styled("    │ (empty)", dim));
        }
        for line in o.text.lines() {
            // Output is data, shown verbatim (already neutralised): keep its indentation.
            let body = line.trim_start();
            let indent = format!("    │ {}", &line[..line.len() - body.len()]);
            out.extend(wrap_plain(body, Style::new(), w, &indent));
        }
    }
    out
}

fn bytes(n: usize) -> String {
    if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn duration(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}
