//! Overlays drawn over the panes: key help, the approve/deny confirmation, and pickers.

use medic_agent::protocol::ApprovalVerdict;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::model::short_hash;
use crate::app::{App, Confirm, Mode, Picker, PickerKind};
use crate::text::{truncate, wrap};

pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect) {
    match &app.mode {
        Mode::Help => help(frame, area),
        Mode::Confirm(c) => confirm(app, c, frame, area),
        Mode::Picker(p) => picker(p, frame, area),
        _ => {}
    }
}

/// A centred box of at most `w`×`h`, inside `area`.
fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

const HELP: &[(&str, &str)] = &[
    ("i / Enter", "type a question (Enter sends it)"),
    ("Esc", "stop typing · clear filter · back to chat"),
    ("Tab / 1 2 3", "switch pane: chat, trace, proposals"),
    ("j k ↑ ↓", "scroll / select · PgUp PgDn · g G ends"),
    ("Enter (trace)", "expand a call: args, result, output"),
    (
        "PgUp PgDn (trace)",
        "page through an expanded call's output",
    ),
    ("h l [ ]", "previous / next proposal"),
    ("a / d", "approve / deny the selected plan"),
    ("/", "filter the focused pane"),
    (":cluster :ns :model", "switch context (no name: pick one)"),
    (":history", "past sessions"),
    (":approve :deny why", "decide from the command line"),
    (":cancel  :q", "cancel the investigation · quit"),
    ("Ctrl-C", "cancel the investigation; twice quits"),
    ("mouse wheel", "scroll the pane under the pointer"),
];

fn help(frame: &mut Frame<'_>, area: Rect) {
    let r = centred(area, 66, HELP.len() as u16 + 3);
    let mut lines = Vec::new();
    for (k, v) in HELP {
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {k:<20} "),
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
            Span::raw(truncate(v, (r.width as usize).saturating_sub(24))),
        ]));
    }
    lines.push(Line::styled(
        " Esc or ? closes this help",
        Style::new().fg(Color::DarkGray),
    ));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" Keys "),
        ),
        r,
    );
}

fn confirm(app: &App, c: &Confirm, frame: &mut Frame<'_>, area: Rect) {
    let r = centred(area, 70, 12);
    let inner = (r.width as usize).saturating_sub(3);
    let (verb, colour) = match c.verdict {
        ApprovalVerdict::Approve => ("APPROVE", Color::Green),
        ApprovalVerdict::Deny => ("DENY", Color::Red),
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = wrap(
        &[
            Span::styled(format!("{verb} "), bold.fg(colour)),
            Span::styled(c.title.clone(), bold),
        ],
        inner,
        vec![Span::raw(" ")],
        vec![Span::raw(" ")],
    );
    lines.push(Line::from(vec![
        Span::styled(" on cluster ", dim),
        Span::styled(c.cluster.clone(), bold.fg(Color::Yellow)),
        Span::styled(" as ", dim),
        Span::styled(app.identity.clone(), bold),
    ]));
    lines.push(Line::from(vec![
        Span::styled(" plan ", dim),
        Span::raw(short_hash(&c.hash).to_owned()),
        Span::styled("  approval ", dim),
        Span::raw(truncate(&c.approval_id, 24)),
    ]));
    lines.push(Line::default());
    match c.verdict {
        ApprovalVerdict::Approve => {
            lines.extend(wrap(
                &[Span::raw("Your approval binds to this exact plan hash. The plan runs once every required approval is in.")],
                inner,
                vec![Span::raw(" ")],
                vec![Span::raw(" ")],
            ));
            lines.push(Line::default());
            lines.push(Line::from(vec![
                Span::styled(
                    " y ",
                    Style::new()
                        .fg(Color::Black)
                        .bg(Color::Green)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(" approve   "),
                Span::styled(" n / Esc ", Style::new().fg(Color::Black).bg(Color::Gray)),
                Span::raw(" cancel"),
            ]));
        }
        ApprovalVerdict::Deny => {
            lines.push(Line::from(vec![
                Span::styled(" reason: ", dim),
                Span::raw(truncate(&c.reason, inner.saturating_sub(10))),
                Span::styled("▍", dim),
            ]));
            lines.push(Line::default());
            lines.push(Line::from(vec![
                Span::styled(
                    " Enter ",
                    Style::new()
                        .fg(Color::Black)
                        .bg(Color::Red)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(" deny   "),
                Span::styled(" Esc ", Style::new().fg(Color::Black).bg(Color::Gray)),
                Span::raw(" cancel"),
            ]));
        }
    }
    let r = centred(area, r.width, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .border_style(Style::new().fg(colour))
                .title(format!(" Confirm {} ", verb.to_lowercase())),
        ),
        r,
    );
}

fn picker(p: &Picker, frame: &mut Frame<'_>, area: Rect) {
    let title = match p.kind {
        PickerKind::Cluster => " Switch cluster ",
        PickerKind::Namespace => " Switch namespace ",
        PickerKind::Model => " Switch model ",
        PickerKind::History => " Past sessions ",
    };
    let w = if p.kind == PickerKind::History {
        100
    } else {
        50
    };
    let r = centred(
        area,
        w,
        (p.items.len() as u16)
            .saturating_add(3)
            .min(area.height.saturating_sub(2)),
    );
    let rows = r.height.saturating_sub(3) as usize;
    let start = p.selected.saturating_sub(rows.saturating_sub(1));
    let inner = (r.width as usize).saturating_sub(4);
    let mut lines: Vec<Line<'static>> = p
        .items
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, item)| {
            let style = if i == p.selected {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Line::styled(format!(" {}", truncate(item, inner)), style)
        })
        .collect();
    lines.push(Line::styled(
        " Enter choose · Esc close",
        Style::new().fg(Color::DarkGray),
    ));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(title),
        ),
        r,
    );
}
