//! Screen tests: the state rendered into a `TestBackend` at 80×24 and 160×50, pinned with
//! insta snapshots (review changes in `tests/snapshots/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use medic_agent::protocol::Event;
use ratatui::style::Color;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn both_sizes(name: &str, app: &medic_tui::App) {
    insta::assert_snapshot!(format!("{name}_80x24"), draw(app, 80, 24).backend());
    insta::assert_snapshot!(format!("{name}_160x50"), draw(app, 160, 50).backend());
}

#[test]
fn chat_with_a_streamed_answer() {
    let mut a = app("carol");
    a.ask("why is checkout returning 503s?");
    for e in investigation() {
        a.on_event(e);
    }
    a.on_event(done());
    // Normal mode so the hints show what the keys do.
    a.on_key(key(KeyCode::Esc));
    both_sizes("chat_streamed_answer", &a);
}

#[test]
fn chat_while_the_answer_is_still_streaming() {
    let mut a = app("carol");
    a.ask("why is checkout returning 503s?");
    let events = investigation();
    let cut = events.len() - 8;
    for e in events.into_iter().take(cut) {
        a.on_event(e);
    }
    insta::assert_snapshot!("chat_streaming_80x24", draw(&a, 80, 24).backend());
}

#[test]
fn trace_with_a_failed_tool_call() {
    let mut a = app("carol");
    for e in investigation() {
        a.on_event(e);
    }
    a.on_event(Event::ToolCallStarted { call_id: "call_4".into(), tool: "prom_query".into(), args: serde_json::json!({"selector": "container_memory_working_set_bytes{namespace=\"shop\"}"}) });
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('2')));
    // Select the failed call and expand it.
    a.on_key(key(KeyCode::Char('k')));
    a.on_key(key(KeyCode::Char('k')));
    a.on_key(key(KeyCode::Enter));
    both_sizes("trace_failed_call", &a);
}

#[test]
fn trace_expands_a_call_to_its_output_with_escapes_neutralised() {
    let mut a = app("carol");
    for e in investigation() {
        a.on_event(e);
    }
    // What the pod's log said, as the agent read it: colours, a clipboard write (OSC 52),
    // a title change (OSC 0), a hyperlink (OSC 8) and a carriage-return overwrite.
    a.on_event(Event::ToolOutput {
        call_id: "call_3".into(),
        output: "REVISION  CHANGE-CAUSE\n41        image v2.3.0\n42        \x1b[31mimage v2.3.1\x1b[0m\n\
                 note: \x1b]52;c;cm0gLXJmIH4=\x07copied \x1b]0;owned\x07title\n\
                 link: \x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\n\
                 progress 10%\rprogress 100%\n  indented: kept"
            .into(),
        truncated: true,
    });
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('2')));
    // The last call is selected; expand it.
    a.on_key(key(KeyCode::Enter));
    both_sizes("trace_call_output", &a);
    for (w, h) in [(80, 24), (160, 50)] {
        let t = draw(&a, w, h);
        for cell in t.backend().buffer().content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "control character in {:?}",
                cell.symbol()
            );
        }
        let screen = t.backend().to_string();
        assert!(screen.contains("│ 42        image v2.3.1"), "{screen}");
        assert!(screen.contains("␛]52;c;cm0gLXJmIH4=␇copied"), "{screen}");
        assert!(screen.contains("(cut by the engine"), "{screen}");
    }
    // Enter again collapses it.
    a.on_key(key(KeyCode::Enter));
    assert!(!draw(&a, 160, 50).backend().to_string().contains("│ 41"));
}

#[test]
fn a_long_output_pages_inside_the_expanded_call() {
    let mut a = app("carol");
    for e in investigation() {
        a.on_event(e);
    }
    let output: String = (1..=200).map(|i| format!("line {i:03}\n")).collect();
    a.on_event(Event::ToolOutput {
        call_id: "call_3".into(),
        output,
        truncated: false,
    });
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('2')));
    a.on_key(key(KeyCode::Enter));
    let first = draw(&a, 80, 24).backend().to_string();
    assert!(first.contains("line 001"), "{first}");
    assert!(first.contains("more (PgDn)"), "{first}");
    assert!(!first.contains("line 030"), "{first}");
    a.on_key(key(KeyCode::PageDown));
    a.on_key(key(KeyCode::PageDown));
    let paged = draw(&a, 80, 24).backend().to_string();
    assert!(!paged.contains("line 001"), "{paged}");
    assert!(paged.contains("line 020"), "{paged}");
    // The row of the call stays on screen while its output scrolls.
    assert!(paged.contains("rollout_history"), "{paged}");
    a.on_key(key(KeyCode::PageUp));
    a.on_key(key(KeyCode::PageUp));
    assert!(draw(&a, 80, 24).backend().to_string().contains("line 001"));
}

#[test]
fn proposal_with_a_diff_awaiting_a_second_approval() {
    let mut a = awaiting_second("carol");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    both_sizes("proposal_awaiting_second", &a);
}

#[test]
fn refused_approval_shows_its_reason() {
    let mut a = awaiting_second("bob");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    // bob approves; the engine refuses (he asked the question that led to the plan).
    a.on_key(key(KeyCode::Char('a')));
    assert_eq!(a.on_key(key(KeyCode::Char('y'))).len(), 1);
    a.on_event(Event::ApprovalStatus(status(
        "pending",
        &["alice"],
        Some("bob requested this plan and cannot approve it (four-eyes rule)"),
    )));
    both_sizes("refused_approval", &a);
    // Approve is no longer offered to bob; deny still is.
    a.on_key(key(KeyCode::Char('a')));
    assert!(
        !draw(&a, 80, 24)
            .backend()
            .to_string()
            .contains("Confirm approve")
    );
}

#[test]
fn already_approved_plan_offers_no_approve_button() {
    let mut a = awaiting_second("alice");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(!screen.contains("approve as alice"), "{screen}");
    assert!(
        screen.contains("cannot approve: alice already approved this plan"),
        "{screen}"
    );
    assert!(screen.contains(" d  deny"), "{screen}");
}

#[test]
fn confirmation_dialog_names_plan_and_cluster() {
    let mut a = awaiting_second("carol");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    a.on_key(key(KeyCode::Char('a')));
    insta::assert_snapshot!("confirm_approve_80x24", draw(&a, 80, 24).backend());
}

#[test]
fn help_overlay() {
    let mut a = app("carol");
    a.on_key(key(KeyCode::Char('?')));
    insta::assert_snapshot!("help_80x24", draw(&a, 80, 24).backend());
}

#[test]
fn diff_lines_are_coloured() {
    let mut a = awaiting_second("carol");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    let t = draw(&a, 160, 50);
    let buf = t.backend().buffer();
    // The colour of the first cell of the row segment that reads `needle`.
    let find = |needle: &str| {
        let needle: Vec<char> = needle.chars().collect();
        (0..buf.area.height).find_map(|y| {
            let cells: Vec<(u16, char)> = (0..buf.area.width)
                .filter_map(|x| buf[(x, y)].symbol().chars().next().map(|c| (x, c)))
                .collect();
            cells
                .windows(needle.len())
                .find(|w| w.iter().map(|(_, c)| *c).eq(needle.iter().copied()))
                .map(|w| buf[(w[0].0, y)].fg)
        })
    };
    assert_eq!(
        find("+    - image: registry.example/shop/api:v2.3.0"),
        Some(Color::Green)
    );
    assert_eq!(
        find("-    - image: registry.example/shop/api:v2.3.1"),
        Some(Color::Red)
    );
}

#[test]
fn escape_sequences_never_reach_the_terminal() {
    let mut a = app("carol");
    a.on_event(Event::AnswerDelta {
        text: "evil \x1b]52;c;cm0gLXJmIC8=\x07 and \x1b[2J\x1b[31mred\x1b[0m\r\n".into(),
    });
    a.on_event(Event::ToolCallStarted {
        call_id: "c\x1b[1m".into(),
        tool: "pod_logs\x1b]0;title\x07".into(),
        args: serde_json::json!({"pod": "x\x1b[5m"}),
    });
    a.on_event(Event::Warning {
        message: "log line \x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\".into(),
    });
    for (w, h) in [(80, 24), (160, 50)] {
        let t = draw(&a, w, h);
        let buf = t.backend().buffer();
        for cell in buf.content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "control character in {:?}",
                cell.symbol()
            );
        }
        let screen = t.backend().to_string();
        assert!(screen.contains("␛]52;c;cm0gLXJmIC8=␇"), "{screen}");
    }
}

#[test]
fn execution_steps_and_final_state_show_in_the_plan() {
    let mut a = awaiting_second("carol");
    a.on_event(Event::ApprovalStatus(status(
        "executing",
        &["alice", "dave"],
        None,
    )));
    // As the engine sends them: named by the plan id, step 0 for the run's own progress,
    // `running` then the outcome for each numbered step.
    let step = |n: usize, description: &str, status: &str| Event::ExecutionStep {
        proposal_id: "plan-91c2".into(),
        step: n,
        description: description.into(),
        status: status.into(),
    };
    for e in [
        step(0, "executing 2 step(s) as dave@corp.example", "started"),
        step(1, "apply: patch deployment shop/api", "running"),
        step(
            1,
            "HTTP 200 patched Deployment shop/api (resourceVersion 8812)",
            "applied",
        ),
        step(2, "wait: rollout", "running"),
        step(2, "rollout complete: 6/6 Ready", "applied"),
        step(
            0,
            "post-check: 3/3 replicas Ready within 5m — 3 Ready",
            "passed",
        ),
        step(0, "Succeeded", "finished"),
    ] {
        a.on_event(e);
    }
    a.on_event(Event::ApprovalStatus(status(
        "executed",
        &["alice", "dave"],
        None,
    )));
    assert_eq!(a_proposal_count(&a), 1, "steps went to the plan's entry");
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('3')));
    let top = draw(&a, 160, 50).backend().to_string();
    assert!(
        top.contains("approval EXECUTED · 2 of 2 · approved by alice, dave"),
        "{top}"
    );
    // dave's approval arrived only as a name in the status (from elsewhere).
    assert!(top.contains("✓ dave approved"), "{top}");
    a.on_key(key(KeyCode::Char('G')));
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(
        screen.contains("1. ✓ applied HTTP 200 patched Deployment shop/api (resourceVersion 8812)"),
        "{screen}"
    );
    assert!(
        screen.contains("2. ✓ applied rollout complete: 6/6 Ready"),
        "{screen}"
    );
    assert!(
        !screen.contains("… running"),
        "running lines are replaced: {screen}"
    );
    assert!(
        screen.contains("✓ passed post-check: 3/3 replicas Ready within 5m — 3 Ready"),
        "{screen}"
    );
    assert!(screen.contains("✓ finished Succeeded"), "{screen}");
    // Nothing left to decide: neither key is offered.
    assert!(!screen.contains(" a  approve"), "{screen}");
    assert!(!screen.contains(" d  deny"), "{screen}");
    // The chat logged each step as it happened.
    a.on_key(key(KeyCode::Char('1')));
    let chat = draw(&a, 160, 50).backend().to_string();
    assert!(
        chat.contains("step 2 applied: rollout complete: 6/6 Ready"),
        "{chat}"
    );
    assert!(chat.contains("passed: post-check: 3/3 replicas"), "{chat}");
}

fn a_proposal_count(a: &medic_tui::App) -> usize {
    let screen = draw(a, 160, 50).backend().to_string();
    let title = screen
        .split("3 Proposals ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or("");
    title.trim_end_matches('●').parse().unwrap_or(usize::MAX)
}
