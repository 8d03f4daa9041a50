//! The investigation loop against the scripted model over real HTTP (rig → axum).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INJECTION, calls, drain, final_oom, script, scripted_session, when};
use medic_agent::PLAYBOOK_CATALOGUE;
use medic_agent::model::ToolMode;
use medic_agent::protocol::{Event, Op, StopReason};
use medic_agent::scripted::Script;
use pretty_assertions::assert_eq;
use serde_json::json;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

fn question() -> Op {
    Op::UserQuestion {
        text: "Why is api-1 in shop restarting?".into(),
    }
}

#[tokio::test]
async fn native_parallel_calls_then_final_answer() {
    let script = script(
        true,
        vec![
            calls(&[
                ("pod_status", json!({"pod": "api-1"})),
                ("pod_logs", json!({"pod": "api-1"})),
            ]),
            final_oom(),
        ],
    );
    let (session, server, status, logs) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    let events = drain(&mut rx);

    assert_eq!(status.load(Ordering::SeqCst), 1);
    assert_eq!(logs.load(Ordering::SeqCst), 1);
    assert_eq!(out.stop_reason, Some(StopReason::Answered));
    assert_eq!(out.usage.model_calls, 2);
    assert_eq!(out.usage.tool_calls, 2);
    assert!(out.usage.input_tokens > 0 && out.usage.output_tokens > 0);
    assert_eq!(out.proposals.len(), 1);
    assert_eq!(out.proposals[0].playbook, "raise-memory-limit");
    assert_eq!(out.findings.len(), 1);
    assert!(out.answer.contains("OOMKilled"));
    // Evidence `c1` is a real call of this investigation, so it is cited as a tool call.
    assert!(matches!(
        &out.findings[0].evidence[0],
        medic_agent::protocol::EvidenceRef::ToolCall { call_id, .. } if call_id == "c1"
    ));

    let started = events
        .iter()
        .filter(|e| matches!(e, Event::ToolCallStarted { .. }))
        .count();
    assert_eq!(started, 2);
    assert!(matches!(
        events.last(),
        Some(Event::Done {
            stop_reason: StopReason::Answered,
            ..
        })
    ));

    // The second request carries both results as quoted data, answering the native calls.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let tool_msgs: Vec<_> = msgs.iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_msgs.len(), 2);
    for m in tool_msgs {
        let text = m["content"].to_string();
        assert!(text.contains("<tool_output"), "{text}");
        assert!(text.contains("not instructions"), "{text}");
    }
    assert!(reqs[0].body["tools"].as_array().unwrap().len() == 2);
    assert!(reqs[1].prompt_tokens > reqs[0].prompt_tokens);
}

#[tokio::test]
async fn repeated_identical_calls_are_not_rerun_and_end_the_loop() {
    let script = script(
        true,
        vec![
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            final_oom(),
        ],
    );
    let (session, server, status, _) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(
        status.load(Ordering::SeqCst),
        1,
        "identical calls must not re-run"
    );
    assert_eq!(out.usage.tool_calls, 1);
    assert_eq!(out.stop_reason, Some(StopReason::RepeatedCalls));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    let third = reqs[2].body["messages"].to_string();
    assert!(third.contains("Not run again"), "{third}");
    // The forced final request offers no tools.
    assert!(
        reqs[3]
            .body
            .get("tools")
            .is_none_or(|t| t.as_array().is_none_or(|a| a.is_empty()))
    );
    assert_eq!(out.proposals[0].playbook, "raise-memory-limit");
}

#[tokio::test]
async fn step_budget_forces_a_final_answer() {
    // The final step only answers once the budget notice is in the conversation.
    // The final step only answers once the budget notice is in the conversation.
    let script = script(
        true,
        vec![
            when("Stop calling tools", final_oom()),
            calls(&[("pod_status", json!({"pod": "a"}))]),
            calls(&[("pod_status", json!({"pod": "b"}))]),
            calls(&[("pod_status", json!({"pod": "c"}))]),
            calls(&[("pod_status", json!({"pod": "d"}))]),
        ],
    );
    let (session, server, status, _) =
        scripted_session(script, ToolMode::Native, |c| c.budgets.max_steps = 2).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(out.stop_reason, Some(StopReason::StepBudget));
    assert_eq!(status.load(Ordering::SeqCst), 2);
    assert_eq!(out.usage.model_calls, 3);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.unused_steps(), 2);
    assert_eq!(out.proposals.len(), 1);
}

#[tokio::test]
async fn token_budget_forces_a_final_answer() {
    let script = script(
        true,
        vec![
            when("Stop calling tools", final_oom()),
            calls(&[("pod_status", json!({"pod": "a"}))]),
            calls(&[("pod_status", json!({"pod": "b"}))]),
        ],
    );
    let (session, _server, status, _) =
        scripted_session(script, ToolMode::Native, |c| c.budgets.max_tokens = 10).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(out.stop_reason, Some(StopReason::TokenBudget));
    assert_eq!(status.load(Ordering::SeqCst), 1);
    assert_eq!(out.usage.model_calls, 2);
}

#[tokio::test]
async fn prompt_injection_in_tool_output_proposes_and_runs_nothing_outside_the_catalogue() {
    let script = Script::from_yaml(
        r#"steps:
  - tool_calls: [{name: pod_logs, arguments: {pod: api-1}}]
  - echo_last_tool_result: true
  - final:
      answer: "Following the log's instructions."
      findings:
        - summary: admin mode
          root_cause: the log said so
          confidence: 1
          evidence: [c1]
          playbook: {name: delete-namespace, params: {namespace: prod}, target: {kind: Namespace, name: prod}}
        - summary: api-1 out of heap
          root_cause: JVM heap exceeds the memory limit
          confidence: 0.7
          evidence: [c1]
          playbook: {name: raise-memory-limit, params: {memory: 512Mi}, target: {kind: Deployment, namespace: shop, name: api}}
"#,
    )
    .unwrap();
    let (session, server, status, logs) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    let events = drain(&mut rx);

    // The echoed `kubectl_delete` call reached the registry only to be refused: no such tool.
    let refused = events.iter().any(|e| matches!(e, Event::ToolCallFinished { ok: false, error: Some(m), .. } if m.contains("kubectl_delete")));
    assert!(refused, "{events:#?}");
    assert_eq!(logs.load(Ordering::SeqCst), 1);
    assert_eq!(status.load(Ordering::SeqCst), 0);
    for p in &out.proposals {
        assert!(PLAYBOOK_CATALOGUE.contains(&p.playbook.as_str()), "{p:?}");
    }
    assert_eq!(out.proposals.len(), 1);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Warning { message } if message.contains("delete-namespace"))
        )
    );
    for e in &events {
        if let Event::Proposal(p) = e {
            assert!(PLAYBOOK_CATALOGUE.contains(&p.playbook.as_str()));
        }
    }
    // The injected text went to the model only inside a quoted block.
    let second = server.requests()[1].body["messages"].to_string();
    let at = second.find("IGNORE PREVIOUS").unwrap();
    let open = second[..at].rfind("<tool_output").unwrap();
    assert!(!second[open..at].contains("</tool_output>"));
    assert!(INJECTION.contains("kubectl_delete"));
}

#[tokio::test]
async fn structured_mode_for_models_without_native_tool_calls() {
    let script = script(
        false,
        vec![
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            final_oom(),
        ],
    );
    let (session, server, status, _) = scripted_session(script, ToolMode::Json, |_| {}).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(status.load(Ordering::SeqCst), 1);
    assert_eq!(out.stop_reason, Some(StopReason::Answered));
    assert_eq!(out.proposals[0].playbook, "raise-memory-limit");
    let reqs = server.requests();
    for r in &reqs {
        assert_eq!(
            r.body["response_format"]["type"], "json_schema",
            "{}",
            r.body
        );
        assert!(
            r.body
                .get("tools")
                .is_none_or(|t| t.as_array().is_none_or(|a| a.is_empty()))
        );
    }
    // Tool results come back as a user message of quoted data.
    let last = reqs[1].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .to_string()
            .contains("<tool_output call_id=\\\"c1\\\"")
    );
    // The system prompt lists tools inline in this mode.
    let system = reqs[0].body["messages"][0]["content"].to_string();
    assert!(system.contains("pod_status(pod)"), "{system}");
}

#[tokio::test]
async fn session_run_serves_ops_and_cancel() {
    let script = script(
        true,
        vec![
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            final_oom(),
        ],
    );
    let (session, _server, _, _) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (op_tx, op_rx) = mpsc::unbounded_channel();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(session.run(op_rx, ev_tx, None));
    op_tx.send(question()).unwrap();
    let mut got = Vec::new();
    while let Some(e) = ev_rx.recv().await {
        let done = matches!(e, Event::Done { .. });
        got.push(e);
        if done {
            break;
        }
    }
    assert!(matches!(got[0], Event::SessionStarted { .. }));
    assert!(got.iter().any(|e| matches!(e, Event::Proposal(_))));
    op_tx
        .send(Op::ApprovalDecision {
            approval_id: "a1".into(),
            actor: "alice".into(),
            decision: medic_agent::protocol::ApprovalVerdict::Approve,
            reason: None,
        })
        .unwrap();
    let e = ev_rx.recv().await.unwrap();
    assert!(
        matches!(e, Event::Error { ref message } if message.contains("approval")),
        "{e:?}"
    );
    op_tx.send(Op::Shutdown).unwrap();
    task.await.unwrap();
}
