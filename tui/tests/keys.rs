//! Key and mouse handling: what each key sends to the engine, and what it refuses to send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use medic_agent::protocol::{ApprovalVerdict, Event, Op};
use medic_tui::{Action, App, Pane};
use pretty_assertions::assert_eq;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn ctrl_c() -> KeyEvent {
    KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
}

fn type_str(a: &mut App, s: &str) -> Vec<Action> {
    s.chars().flat_map(|c| a.on_key(ch(c))).collect()
}

fn normal_on_proposals(a: &mut App) {
    assert_eq!(a.on_key(key(KeyCode::Esc)), vec![]);
    assert_eq!(a.on_key(ch('3')), vec![]);
}

#[test]
fn typing_a_question_and_enter_sends_it() {
    let mut a = app("carol");
    assert_eq!(type_str(&mut a, "why 503?"), vec![]);
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::UserQuestion {
            text: "why 503?".into()
        })]
    );
    assert!(a.is_running());
    // While it runs, a second question is held back.
    type_str(&mut a, "again");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
}

#[test]
fn approve_needs_confirmation_and_sends_the_configured_actor() {
    let mut a = awaiting_second("carol");
    normal_on_proposals(&mut a);
    // `a` opens the dialog and sends nothing.
    assert_eq!(a.on_key(ch('a')), vec![]);
    // Enter is not a confirmation; neither is any other key.
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
    assert_eq!(a.on_key(ch('x')), vec![]);
    assert_eq!(
        a.on_key(ch('y')),
        vec![Action::Send(Op::ApprovalDecision {
            approval_id: "apr-33".into(),
            actor: "carol".into(),
            decision: ApprovalVerdict::Approve,
            reason: None,
        })]
    );
    // The dialog is closed: another `y` does nothing.
    assert_eq!(a.on_key(ch('y')), vec![]);
}

#[test]
fn cancelling_the_dialog_sends_nothing() {
    let mut a = awaiting_second("carol");
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(key(KeyCode::Esc)), vec![]);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('n')), vec![]);
    assert_eq!(a.on_key(ch('y')), vec![]);
}

#[test]
fn deny_needs_a_reason() {
    let mut a = awaiting_second("carol");
    normal_on_proposals(&mut a);
    a.on_key(ch('d'));
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![],
        "an empty reason is refused"
    );
    type_str(&mut a, "wrong revision");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::ApprovalDecision {
            approval_id: "apr-33".into(),
            actor: "carol".into(),
            decision: ApprovalVerdict::Deny,
            reason: Some("wrong revision".into()),
        })]
    );
}

#[test]
fn approve_is_not_offered_when_it_cannot_succeed() {
    // Already approved by this identity.
    let mut a = awaiting_second("alice");
    normal_on_proposals(&mut a);
    assert_eq!(a.on_key(ch('a')), vec![]);
    assert_eq!(a.on_key(ch('y')), vec![], "no dialog was opened");

    // Fully approved (e.g. by two people on Slack and Teams).
    let mut a = awaiting_second("carol");
    a.on_event(Event::ApprovalStatus(status(
        "approved",
        &["alice", "dave"],
        None,
    )));
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![]);
    a.on_key(ch('d'));
    type_str(&mut a, "x");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);

    // Expired.
    let mut a = awaiting_second("carol");
    a.tick(now() + chrono::Duration::minutes(13));
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![]);

    // No identity mapped: read-only.
    let mut a = awaiting_second("");
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![]);
}

#[test]
fn the_requester_is_not_offered_approve_on_their_own_plan() {
    // carol's session asks as carol, so its plans are carol's requests.
    let mut o = opts("carol");
    o.requester = Some("carol".into());
    let mut a = App::new(&o, now());
    for e in investigation().into_iter().chain(proposal_events()) {
        a.on_event(e);
    }
    a.on_event(Event::ApprovalStatus(status("pending", &[], None)));
    normal_on_proposals(&mut a);
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(!screen.contains("approve as carol"), "{screen}");
    assert!(
        screen.contains("cannot approve: carol asked for this plan; another person must"),
        "{screen}"
    );
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![], "no dialog was opened");
    // Withdrawing (deny) stays possible.
    assert!(screen.contains(" d  deny"), "{screen}");
    // Someone else's session asking as carol does not stop dave.
    let mut o = opts("dave");
    o.requester = Some("carol".into());
    let mut a = App::new(&o, now());
    for e in investigation().into_iter().chain(proposal_events()) {
        a.on_event(e);
    }
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')).len(), 1);
}

#[test]
fn a_request_made_in_another_terminal_is_not_offered_to_its_requester() {
    // carol asked in another terminal (no requester on this session); the book's status
    // names her, so this terminal does not offer her approve either.
    let mut a = App::new(&opts("carol"), now());
    for e in investigation().into_iter().chain(proposal_events()) {
        a.on_event(e);
    }
    let mut s = status("pending", &[], None);
    s.requested_by = Some("carol".into());
    a.on_event(Event::ApprovalStatus(s));
    normal_on_proposals(&mut a);
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(
        screen.contains("cannot approve: carol asked for this plan; another person must"),
        "{screen}"
    );
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![], "no dialog was opened");
}

#[test]
fn a_plan_whose_hash_changed_cannot_be_approved() {
    let mut a = awaiting_second("carol");
    let mut changed = plan();
    changed.hash = "0000aaaa".repeat(8);
    a.on_event(Event::PlanReady {
        proposal_id: "prop-1".into(),
        plan: changed,
    });
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![]);
}

#[test]
fn an_approval_arriving_while_the_dialog_is_open_is_rechecked() {
    let mut a = awaiting_second("carol");
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    // Meanwhile dave approves from Teams and the plan is fully approved.
    a.on_event(Event::ApprovalStatus(status(
        "approved",
        &["alice", "dave"],
        None,
    )));
    assert_eq!(a.on_key(ch('y')), vec![]);
}

#[test]
fn ctrl_c_cancels_then_quits() {
    let mut a = app("carol");
    a.ask("why?");
    assert_eq!(a.on_key(ctrl_c()), vec![Action::Send(Op::Cancel)]);
    assert_eq!(
        a.on_key(ctrl_c()),
        vec![Action::Send(Op::Shutdown), Action::Quit]
    );
}

#[test]
fn ctrl_c_when_idle_needs_a_second_press_and_another_key_disarms_it() {
    let mut a = app("carol");
    assert_eq!(a.on_key(ctrl_c()), vec![]);
    a.on_key(ch('x'));
    assert_eq!(a.on_key(ctrl_c()), vec![], "a key in between disarms");
    assert_eq!(
        a.on_key(ctrl_c()),
        vec![Action::Send(Op::Shutdown), Action::Quit]
    );
}

#[test]
fn colon_commands_switch_context() {
    let mut a = app("carol");
    a.on_key(key(KeyCode::Esc));
    a.on_key(ch(':'));
    type_str(&mut a, "cluster prod-us");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::SwitchContext {
            cluster: Some("prod-us".into()),
            namespace: None,
            model: None
        })]
    );
    // Unknown clusters are refused, not sent.
    a.on_key(ch(':'));
    type_str(&mut a, "cluster nowhere");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
    // No name opens a picker; Enter chooses.
    a.on_key(ch(':'));
    type_str(&mut a, "model");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
    a.on_key(ch('j'));
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::SwitchContext {
            cluster: None,
            namespace: None,
            model: Some("ollama/qwen2.5-coder:1.5b".into())
        })]
    );
    a.on_key(ch(':'));
    type_str(&mut a, "ns ai");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::SwitchContext {
            cluster: None,
            namespace: Some("ai".into()),
            model: None
        })]
    );
    a.on_key(ch(':'));
    type_str(&mut a, "history");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![Action::LoadHistory]);
    a.on_key(ch(':'));
    type_str(&mut a, "q");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::Shutdown), Action::Quit]
    );
}

#[test]
fn filter_and_escape() {
    let mut a = awaiting_second("carol");
    a.on_key(key(KeyCode::Esc));
    a.on_key(ch('2'));
    a.on_key(ch('/'));
    type_str(&mut a, "logs");
    a.on_key(key(KeyCode::Enter));
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(screen.contains("pod_logs"), "{screen}");
    assert!(!screen.contains("k8s_list"), "{screen}");
    // Esc clears the filter, a second Esc goes back to the chat.
    a.on_key(key(KeyCode::Esc));
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(screen.contains("k8s_list"), "{screen}");
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.on_key(ch('a')), vec![]);
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(
        screen.contains("Confirm approve"),
        "a from the chat still targets the selected plan: {screen}"
    );
}

#[test]
fn mouse_wheel_scrolls_the_pane_under_the_pointer() {
    let mut a = awaiting_second("carol");
    a.on_key(key(KeyCode::Esc));
    let before = draw(&a, 80, 24).backend().to_string();
    let wheel = |kind| MouseEvent {
        kind,
        column: 10,
        row: 10,
        modifiers: KeyModifiers::NONE,
    };
    a.on_mouse(wheel(MouseEventKind::ScrollUp));
    let after = draw(&a, 80, 24).backend().to_string();
    assert_ne!(before, after);
    assert!(after.contains("↓ 3 more"), "{after}");
    a.on_mouse(wheel(MouseEventKind::ScrollDown));
    assert_eq!(draw(&a, 80, 24).backend().to_string(), before);
    let _ = Pane::Chat;
}

#[test]
fn history_results_open_a_picker() {
    let mut a = app("carol");
    a.set_history(vec![medic_tui::SessionSummary {
        id: "s-1".into(),
        started_at: "2026-11-20T08:00:00Z".into(),
        title: "why is llama slow?".into(),
        outcome: "executed gpu-rebalance".into(),
    }]);
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(screen.contains("Past sessions"), "{screen}");
    assert!(screen.contains("why is llama slow?"), "{screen}");
}

#[test]
fn approve_is_only_offered_to_the_roles_the_request_names() {
    let mut o = opts("erin");
    o.roles = vec!["developers".into()];
    let mut a = App::new(&o, now());
    for e in proposal_events() {
        a.on_event(e);
    }
    a.on_event(Event::ApprovalStatus(status("pending", &[], None)));
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')), vec![], "developers may not approve");
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(
        screen.contains("needs an approver from sre-oncall, sre-leads"),
        "{screen}"
    );

    o.roles = vec!["sre-oncall".into()];
    let mut a = App::new(&o, now());
    for e in proposal_events() {
        a.on_event(e);
    }
    normal_on_proposals(&mut a);
    a.on_key(ch('a'));
    assert_eq!(a.on_key(ch('y')).len(), 1);
}

#[test]
fn esc_then_a_key_arriving_as_alt_key_leaves_typing() {
    let mut a = app("carol");
    assert_eq!(
        a.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::ALT)),
        vec![]
    );
    // Now in the trace pane and not typing: Enter asks nothing.
    type_str(&mut a, "k");
    assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
    let screen = draw(&a, 80, 24).backend().to_string();
    assert!(screen.contains("No tool calls yet."), "{screen}");
}

/// The screen without its header line (which names the running tool).
fn pane(a: &App) -> String {
    let screen = draw(a, 80, 24).backend().to_string();
    screen.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_trace_follows_new_calls_and_scrolls_through_long_sessions() {
    let mut a = app("carol");
    for n in 0..100 {
        a.on_event(Event::ToolCallStarted {
            call_id: format!("c{n}"),
            tool: format!("tool_{n:03}"),
            args: serde_json::json!({}),
        });
    }
    a.on_key(key(KeyCode::Esc));
    a.on_key(ch('2'));
    let screen = pane(&a);
    assert!(
        screen.contains("tool_099") && !screen.contains("tool_050"),
        "{screen}"
    );
    a.on_key(ch('g'));
    let screen = pane(&a);
    assert!(
        screen.contains("tool_000") && !screen.contains("tool_099"),
        "{screen}"
    );
    a.on_key(ch('G'));
    a.on_event(Event::ToolCallStarted {
        call_id: "new".into(),
        tool: "tool_new".into(),
        args: serde_json::json!({}),
    });
    let screen = pane(&a);
    assert!(
        screen.contains("tool_new"),
        "back at the end, new calls are followed: {screen}"
    );
}

#[test]
fn pasted_text_is_cleaned_and_kept_on_one_line() {
    let mut a = app("carol");
    a.on_paste("why is \x1b[31mapi\x1b[0m\nfailing?\x1b]52;c;eA==\x07");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Action::Send(Op::UserQuestion {
            text: "why is api failing?␛]52;c;eA==␇".into()
        })]
    );
}

#[test]
fn a_plan_requested_elsewhere_can_be_found_approved_and_followed() {
    // What `medic tui` shows for a request made from another terminal or a chat bot: the
    // plan and the request, named by the plan id (no proposal of this session).
    let mut a = app("dave");
    let p = plan();
    let mut st = status("pending", &["alice"], None);
    st.proposal_id = p.plan_id.clone();
    for e in [
        Event::PlanReady {
            proposal_id: p.plan_id.clone(),
            plan: p.clone(),
        },
        Event::ApprovalRequested {
            approval_id: "apr-33".into(),
            proposal_id: p.plan_id.clone(),
            plan_hash: p.hash.clone(),
            summary: "requested elsewhere by carol at 19:58:02 UTC".into(),
            approvers: vec!["1 more approval(s) from approvers".into()],
        },
        Event::ApprovalStatus(st.clone()),
    ] {
        a.on_event(e);
    }
    normal_on_proposals(&mut a);
    // The filter finds it by playbook and by cluster.
    a.on_key(ch('/'));
    type_str(&mut a, "rollback");
    a.on_key(key(KeyCode::Enter));
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(screen.contains("requested elsewhere by carol"), "{screen}");
    // alice approved elsewhere before this terminal opened: listed like any decision.
    assert!(screen.contains("✓ alice approved"), "{screen}");
    assert!(
        screen.contains("approval PENDING · 1 of 2 · approved by alice"),
        "{screen}"
    );
    a.on_key(ch('a'));
    let sent = a.on_key(ch('y'));
    assert!(
        matches!(&sent[..], [Action::Send(Op::ApprovalDecision { approval_id, actor, decision: ApprovalVerdict::Approve, .. })] if approval_id == "apr-33" && actor == "dave"),
        "{sent:?}"
    );
    // The engine's answer names the plan only by approval id; it lands on the same entry.
    let mut done = status("executed", &["alice", "dave"], None);
    done.proposal_id = String::new();
    a.on_event(Event::ApprovalStatus(done));
    a.on_event(Event::ExecutionStep {
        proposal_id: p.plan_id.clone(),
        step: 0,
        description: "Succeeded".into(),
        status: "finished".into(),
    });
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(screen.contains("3 Proposals 1 "), "{screen}");
    assert!(
        screen.contains("approval EXECUTED · 2 of 2 · approved by alice, dave"),
        "{screen}"
    );
    a.on_key(key(KeyCode::Esc));
    a.on_key(ch('/'));
    type_str(&mut a, "prod-eu");
    a.on_key(key(KeyCode::Enter));
    assert!(
        draw(&a, 160, 50)
            .backend()
            .to_string()
            .contains("✓ finished Succeeded")
    );
}

#[test]
fn an_approval_from_elsewhere_is_announced_once() {
    // carol's own plan; bob approves from Teams while her TUI is open: the engine's poll
    // reports only the new approver list.
    let mut a = app("carol");
    for e in investigation().into_iter().chain(proposal_events()) {
        a.on_event(e);
    }
    a.on_event(Event::ApprovalStatus(status("pending", &[], None)));
    a.on_event(Event::ApprovalStatus(status("pending", &["bob"], None)));
    a.on_event(Event::ApprovalStatus(status("pending", &["bob"], None)));
    let chat = draw(&a, 160, 50).backend().to_string();
    assert_eq!(
        chat.matches("bob approved Roll back Deployment shop/api")
            .count(),
        1,
        "{chat}"
    );
    normal_on_proposals(&mut a);
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(screen.contains("1 of 2 · approved by bob"), "{screen}");
    assert!(screen.contains("✓ bob approved"), "{screen}");
}

#[test]
fn a_late_poll_does_not_undo_a_final_state() {
    let mut a = awaiting_second("carol");
    a.on_event(Event::ApprovalStatus(status(
        "executed",
        &["alice", "dave"],
        None,
    )));
    // The book only knows `executing`; a poll answered late says so.
    a.on_event(Event::ApprovalStatus(status(
        "executing",
        &["alice", "dave"],
        None,
    )));
    normal_on_proposals(&mut a);
    let screen = draw(&a, 160, 50).backend().to_string();
    assert!(screen.contains("approval EXECUTED"), "{screen}");
}
