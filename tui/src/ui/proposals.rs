//! The proposals pane: each plan with its risk, blast radius, steps, coloured dry-run diff,
//! post-checks, undo plan and approval state — and only the decisions that make sense now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::app::model::{ProposalEntry, countdown, short_hash};
use crate::text::{truncate, width, wrap, wrap_plain};

const DIM: Style = Style::new().fg(Color::DarkGray);

/// Draws the pane; returns how far the detail can scroll.
pub(super) fn draw(app: &App, frame: &mut Frame<'_>, area: Rect) -> usize {
    let w = area.width as usize;
    let h = area.height as usize;
    if w == 0 || h == 0 {
        return 0;
    }
    let visible = app.visible_proposals();
    let Some(sel) = app.selected_proposal() else {
        let hint = if app.filters[2].is_empty() {
            "No proposals yet. Plans appear here once an investigation proposes a fix."
        } else {
            "Nothing matches the filter (Esc clears it)."
        };
        frame.render_widget(Paragraph::new(wrap_plain(hint, DIM, w, "")), area);
        return 0;
    };
    let mut lines = Vec::new();
    if visible.len() > 1 {
        for &i in &visible {
            let p = &app.proposals[i];
            let mark = if i == sel { "▸ " } else { "  " };
            let style = if i == sel {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                DIM
            };
            let text = format!("{mark}[{}] {}", p.state(), p.title());
            lines.push(Line::styled(truncate(&text, w), style));
        }
        lines.push(Line::styled("─".repeat(w), DIM));
    }
    let header = lines.len();
    let detail = detail_lines(app, &app.proposals[sel], w);
    let room = h.saturating_sub(header);
    let max_scroll = detail.len().saturating_sub(room);
    let scroll = app.plan_scroll.min(max_scroll);
    lines.extend(detail.into_iter().skip(scroll).take(room));
    frame.render_widget(Paragraph::new(lines), area);
    if scroll < max_scroll {
        let marker = format!("↓ {} more (j) ", max_scroll - scroll);
        let mw = marker.chars().count() as u16;
        if area.width > mw {
            let r = Rect::new(area.x + area.width - mw, area.y + area.height - 1, mw, 1);
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

fn section(title: &str) -> Line<'static> {
    Line::styled(
        title.to_owned(),
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    )
}

fn risk_style(risk: &str) -> Style {
    match risk {
        "low" => Style::new().fg(Color::Green),
        "medium" => Style::new().fg(Color::Yellow),
        "high" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        _ => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "pending" | "awaiting request" | "planning" => {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        }
        "approved" | "executing" | "executed" => {
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
        }
        _ => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

fn detail_lines(app: &App, p: &ProposalEntry, w: usize) -> Vec<Line<'static>> {
    let mut out = wrap_plain(&p.title(), Style::new().add_modifier(Modifier::BOLD), w, "");
    let plan = p.plan.as_ref();
    let mut meta = vec![
        Span::styled("playbook ", DIM),
        Span::raw(if p.playbook.is_empty() {
            plan.map(|p| p.playbook.clone()).unwrap_or_default()
        } else {
            p.playbook.clone()
        }),
    ];
    meta.push(Span::styled(" · cluster ", DIM));
    meta.push(Span::styled(
        p.cluster(),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    if let Some(plan) = plan {
        meta.push(Span::styled(
            format!(" · plan {}", short_hash(&plan.hash)),
            DIM,
        ));
    }
    out.extend(wrap(&meta, w, vec![], vec![Span::raw("  ")]));
    if let Some(plan) = plan {
        out.extend(wrap(
            &[
                Span::styled("risk ", DIM),
                Span::styled(plan.risk.to_uppercase(), risk_style(&plan.risk)),
                Span::styled(" · blast radius ", DIM),
                Span::raw(plan.blast_radius.clone()),
            ],
            w,
            vec![],
            vec![Span::raw("  ")],
        ));
    }
    out.extend(approval_lines(app, p, w));
    if let Some(plan) = plan {
        if !plan.rationale.is_empty() {
            out.push(section("Why"));
            out.extend(wrap(
                &[Span::raw(plan.rationale.clone())],
                w,
                vec![Span::raw("  ")],
                vec![Span::raw("  ")],
            ));
        }
        if !plan.steps.is_empty() {
            out.push(section("Steps"));
            for (i, s) in plan.steps.iter().enumerate() {
                let num = format!("  {}. ", i + 1);
                let hang = " ".repeat(num.len());
                out.extend(wrap(
                    &[Span::raw(s.clone())],
                    w,
                    vec![Span::raw(num)],
                    vec![Span::raw(hang)],
                ));
            }
        }
        if !plan.diff.trim().is_empty() {
            out.push(section("Dry-run diff"));
            for line in plan.diff.lines() {
                out.extend(diff_line(line, w));
            }
        }
        list(&mut out, "Post-checks", &plan.post_checks, w);
        list(&mut out, "Undo", &plan.undo, w);
    } else {
        out.push(Line::styled(
            "Planning: the dry-run and exact steps have not arrived yet.",
            DIM,
        ));
    }
    if !p.steps.is_empty() {
        out.push(section("Execution"));
        for s in &p.steps {
            let (icon, style) = match s.status.as_str() {
                "ok" | "applied" | "passed" | "finished" => ("✓", Style::new().fg(Color::Green)),
                "started" => ("▶", Style::new().fg(Color::Green)),
                "running" => ("…", Style::new().fg(Color::Yellow)),
                "skipped" => ("-", DIM),
                "undo" | "undone" => ("↺", Style::new().fg(Color::Yellow)),
                _ => ("✗", Style::new().fg(Color::Red)),
            };
            // Step 0 is the run's own progress: start, post-checks, undo, finish.
            let num = if s.step > 0 {
                format!("  {}. ", s.step)
            } else {
                "  ".to_owned()
            };
            let hang = " ".repeat(width(&num) + 2);
            out.extend(wrap(
                &[
                    Span::styled(format!("{icon} {} ", s.status), style),
                    Span::raw(s.description.clone()),
                ],
                w,
                vec![Span::raw(num)],
                vec![Span::raw(hang)],
            ));
        }
    }
    if !p.rationale.is_empty() {
        out.push(section("Why"));
        out.extend(wrap_plain(&p.rationale, Style::new(), w, "  "));
    }
    out
}

fn list(out: &mut Vec<Line<'static>>, title: &str, items: &[String], w: usize) {
    if items.is_empty() {
        return;
    }
    out.push(section(title));
    for item in items {
        out.extend(wrap(
            &[Span::raw(item.clone())],
            w,
            vec![Span::raw("  • ")],
            vec![Span::raw("    ")],
        ));
    }
}

fn diff_line(line: &str, w: usize) -> Vec<Line<'static>> {
    let style = if line.starts_with("+++") || line.starts_with("---") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if line.starts_with('+') {
        Style::new().fg(Color::Green)
    } else if line.starts_with('-') {
        Style::new().fg(Color::Red)
    } else if line.starts_with("@@") {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::Gray)
    };
    // Diffs keep their indentation, so they are cut rather than re-flowed.
    vec![Line::styled(
        format!("  {}", truncate(line, w.saturating_sub(2))),
        style,
    )]
}

fn approval_lines(app: &App, p: &ProposalEntry, w: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let state = p.state().to_owned();
    let mut spans = vec![
        Span::styled("approval ", DIM),
        Span::styled(state.to_uppercase(), state_style(&state)),
    ];
    if let Some(s) = &p.status {
        spans.push(Span::raw(format!(
            " · {} of {}",
            s.approved_by.len(),
            s.needed.max(1)
        )));
        if !s.approved_by.is_empty() {
            spans.push(Span::styled(" · approved by ", DIM));
            spans.push(Span::styled(
                s.approved_by.join(", "),
                Style::new().fg(Color::Green),
            ));
        }
        if !s.waiting_for.is_empty() && state == "pending" {
            spans.push(Span::styled(" · waiting for ", DIM));
            spans.push(Span::styled(
                s.waiting_for.join(", "),
                Style::new().fg(Color::Yellow),
            ));
        }
        if state == "pending" {
            match p.expires_at() {
                Some(exp) => {
                    let left = (exp - app.now).num_seconds();
                    if left > 0 {
                        let style = if left < 120 {
                            Style::new().fg(Color::Red)
                        } else {
                            Style::new()
                        };
                        spans.push(Span::styled(" · expires in ", DIM));
                        spans.push(Span::styled(countdown(left), style));
                    } else {
                        spans.push(Span::styled(
                            format!(" · expired {} ago", countdown(left)),
                            Style::new().fg(Color::Red),
                        ));
                    }
                }
                None if !s.expires_at.is_empty() => {
                    spans.push(Span::styled(format!(" · expires {}", s.expires_at), DIM))
                }
                None => {}
            }
        }
    } else if !p.approvers.is_empty() {
        spans.push(Span::styled(" · approvers ", DIM));
        spans.push(Span::raw(p.approvers.join(", ")));
    }
    out.extend(wrap(&spans, w, vec![], vec![Span::raw("  ")]));
    for d in &p.decisions {
        let (icon, verb, style) = match d.verdict {
            medic_agent::protocol::ApprovalVerdict::Approve => {
                ("  ✓ ", "approved", Style::new().fg(Color::Green))
            }
            medic_agent::protocol::ApprovalVerdict::Deny => {
                ("  ✗ ", "denied", Style::new().fg(Color::Red))
            }
        };
        let mut text = format!("{} {verb}", d.actor);
        if let Some(r) = &d.reason {
            text.push_str(&format!(": {r}"));
        }
        out.extend(wrap(
            &[Span::styled(text, style)],
            w,
            vec![Span::styled(icon, style)],
            vec![Span::raw("    ")],
        ));
    }
    if let Some(r) = p.status.as_ref().and_then(|s| s.refusal.clone()) {
        out.extend(wrap(
            &[
                Span::styled(
                    "refused: ",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                Span::styled(r, Style::new().fg(Color::Red)),
            ],
            w,
            vec![Span::raw("  ")],
            vec![Span::raw("  ")],
        ));
    }
    if let Some(summary) = &p.request_summary
        && !summary.is_empty()
    {
        out.extend(wrap_plain(summary, Style::new().fg(Color::Gray), w, "  "));
    }
    // Offer only what makes sense now; otherwise say why not.
    let who = if app.identity.is_empty() {
        "you".to_owned()
    } else {
        app.identity.clone()
    };
    let key = Style::new()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD);
    let mut offer = Vec::new();
    match p.can_approve(&app.identity, &app.roles, app.now) {
        Ok(_) => {
            offer.push(Span::styled(" a ", key));
            offer.push(Span::raw(format!(" approve as {who}  ")));
        }
        // A refusal is already shown above.
        Err(_) if p.my_refusal.is_some() => {}
        Err(why) if p.can_deny(app.now).is_ok() => {
            out.extend(wrap_plain(&format!("cannot approve: {why}"), DIM, w, "  "));
        }
        Err(_) => {}
    }
    if p.can_deny(app.now).is_ok() {
        offer.push(Span::styled(" d ", key));
        offer.push(Span::raw(" deny"));
    }
    if !offer.is_empty() {
        out.push(Line::from(offer));
    }
    out
}
