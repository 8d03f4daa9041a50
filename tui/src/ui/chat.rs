//! The chat pane: questions, the streamed Markdown answer, finding cards and notices.
//!
//! Lines are built from the newest item backwards and only until the viewport (plus the
//! scroll offset) is full, so a 2,000-message session costs what the screen shows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{SPINNER, notice_style};
use crate::app::App;
use crate::app::model::{ChatItem, FindingCard};
use crate::markdown;
use crate::text::{wrap, wrap_plain};

/// Draws the chat into `area`; returns how far it can scroll up.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect) -> usize {
    let height = area.height as usize;
    let width = area.width as usize;
    if height == 0 || width == 0 {
        return 0;
    }
    let visible = app.visible_chat();
    if visible.is_empty() {
        let hint = if app.filters[0].is_empty() {
            "Ask what is wrong, e.g. “why is checkout returning 503s?” — Enter sends it."
        } else {
            "Nothing matches the filter (Esc clears it)."
        };
        frame.render_widget(
            Paragraph::new(wrap_plain(
                hint,
                Style::new().fg(Color::DarkGray),
                width,
                " ",
            )),
            area,
        );
        return 0;
    }
    let want = app.chat_scroll + height;
    let mut blocks: Vec<Vec<Line<'static>>> = Vec::new();
    let mut total = 0;
    let mut exhausted = true;
    for (n, &i) in visible.iter().rev().enumerate() {
        if total >= want {
            exhausted = n == visible.len();
            break;
        }
        let mut lines = item_lines(app, &app.chat[i], width);
        if n + 1 < visible.len() {
            lines.insert(0, Line::default());
        }
        total += lines.len();
        blocks.push(lines);
    }
    let mut lines: Vec<Line<'static>> = blocks.into_iter().rev().flatten().collect();
    let max_scroll = if exhausted {
        total.saturating_sub(height)
    } else {
        total
    };
    let scroll = app.chat_scroll.min(max_scroll);
    let end = total - scroll;
    let start = end.saturating_sub(height);
    let window: Vec<Line<'static>> = lines.drain(start..end).collect();
    frame.render_widget(Paragraph::new(window), area);
    if scroll > 0 {
        let marker = format!("↓ {scroll} more ");
        let w = marker.chars().count() as u16;
        if area.width > w {
            let r = Rect::new(area.x + area.width - w, area.y + area.height - 1, w, 1);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    marker,
                    Style::new().fg(Color::Black).bg(Color::Yellow),
                )),
                r,
            );
        }
    }
    max_scroll
}

fn item_lines(app: &App, item: &ChatItem, width: usize) -> Vec<Line<'static>> {
    match item {
        ChatItem::User(text) => {
            let mut out = vec![Line::styled(
                "you",
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            )];
            out.extend(wrap_plain(text, Style::new(), width, "  "));
            out
        }
        ChatItem::Answer { text, streaming } => {
            let mut head = vec![Span::styled(
                "medic",
                Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
            )];
            if *streaming {
                head.push(Span::styled(
                    format!(" {}", SPINNER[app.spinner % SPINNER.len()]),
                    Style::new().fg(Color::Yellow),
                ));
            }
            let mut out = vec![Line::from(head)];
            for line in markdown::render(text, width.saturating_sub(2)) {
                let mut spans = vec![Span::raw("  ")];
                spans.extend(line.spans);
                out.push(Line::from(spans));
            }
            if *streaming && let Some(last) = out.last_mut() {
                last.spans
                    .push(Span::styled("▍", Style::new().fg(Color::Green)));
            }
            out
        }
        ChatItem::Finding(card) => finding_lines(card, width),
        ChatItem::Notice(kind, text) => {
            let style = notice_style(*kind);
            wrap(
                &[Span::styled(text.clone(), style)],
                width,
                vec![Span::styled("• ", style)],
                vec![Span::raw("  ")],
            )
        }
    }
}

fn finding_lines(card: &FindingCard, width: usize) -> Vec<Line<'static>> {
    let colour = match card.level {
        "high" => Color::Red,
        "medium" => Color::Yellow,
        _ => Color::Blue,
    };
    let bar = Span::styled("┃ ", Style::new().fg(colour));
    let dim = Style::new().fg(Color::DarkGray);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut out = vec![Line::from(vec![
        bar.clone(),
        Span::styled(
            "◆ FINDING ",
            Style::new().fg(colour).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("{} {:.2}", card.level, card.confidence),
            Style::new().fg(colour),
        ),
        Span::styled(format!(" · {}", card.source), dim),
    ])];
    out.extend(wrap(
        &[Span::styled(card.summary.clone(), bold)],
        width,
        vec![bar.clone()],
        vec![bar.clone()],
    ));
    out.extend(wrap(
        &[
            Span::styled("cause ", dim),
            Span::raw(card.root_cause.clone()),
        ],
        width,
        vec![bar.clone()],
        vec![bar.clone(), Span::raw("      ")],
    ));
    if !card.evidence.is_empty() {
        out.push(Line::from(vec![bar.clone(), Span::styled("evidence", dim)]));
        for e in &card.evidence {
            out.extend(wrap(
                &[Span::raw(e.clone())],
                width,
                vec![bar.clone(), Span::raw("  • ")],
                vec![bar.clone(), Span::raw("    ")],
            ));
        }
    }
    for s in &card.suggests {
        out.extend(wrap(
            &[
                Span::styled("suggests ", dim),
                Span::styled(s.clone(), Style::new().fg(Color::Magenta)),
            ],
            width,
            vec![bar.clone()],
            vec![bar.clone(), Span::raw("         ")],
        ));
    }
    out
}
