//! What clients see while an investigation runs: each finished call's output
//! (`ToolOutput`), and the final answer streamed as `AnswerDelta`s while the model writes
//! it — over real HTTP with the scripted model streaming SSE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{calls, drain, final_oom, script, scripted_session};
use medic_agent::model::ToolMode;
use medic_agent::protocol::{Event, Op, StopReason, TOOL_OUTPUT_PREVIEW_BYTES};
use medic_agent::scripted::ScriptStep;
use medic_agent::{Session, SessionConfig};
use medic_tools::{Registry, Render, Tool, ToolContext};
use pretty_assertions::assert_eq;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

fn question() -> Op {
    Op::UserQuestion {
        text: "Why is api-1 in shop restarting?".into(),
    }
}

fn deltas(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AnswerDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

const ANSWER: &str = "api-1 is OOMKilled: the 256Mi limit is too low.";

#[tokio::test]
async fn tool_output_follows_each_finished_call_as_the_model_read_it() {
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
    let (session, server, _, _) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    session.investigate(question(), tx).await.unwrap();
    let events = drain(&mut rx);
    let second = server.requests()[1].body["messages"].to_string();
    let mut seen = 0;
    for (i, e) in events.iter().enumerate() {
        let Event::ToolCallFinished { call_id, .. } = e else {
            continue;
        };
        let Some(Event::ToolOutput {
            call_id: id,
            output,
            truncated,
        }) = events.get(i + 1)
        else {
            panic!(
                "no ToolOutput right after {call_id}: {:?}",
                events.get(i + 1)
            );
        };
        assert_eq!(id, call_id);
        assert!(!truncated);
        // The very text the model was given (inside its quoted block).
        let as_json = serde_json::to_string(output).unwrap();
        assert!(
            second.contains(as_json.trim_matches('"')),
            "{output} not in {second}"
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
    let outputs: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::ToolOutput { output, .. } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    assert!(outputs[0].contains("OOMKilled"), "{outputs:?}");
    assert!(outputs[1].contains("OutOfMemoryError"), "{outputs:?}");
}

/// Arguments of `big`.
#[derive(Debug, Deserialize, JsonSchema)]
struct BigArgs {}

/// Output of `big`.
#[derive(Debug, Serialize)]
struct BigText(String);

impl Render for BigText {
    fn render(&self, _max: usize) -> String {
        self.0.clone()
    }
}

/// A tool whose output is larger than a preview (multi-byte chars across the cut).
struct Big;

impl Tool for Big {
    const NAME: &'static str = "big";
    type Args = BigArgs;
    type Output = BigText;
    fn description() -> &'static str {
        "A large output."
    }
    async fn call(&self, _ctx: &ToolContext, _args: BigArgs) -> medic_tools::Result<BigText> {
        Ok(BigText(format!("x{}", "é…".repeat(8_000))))
    }
}

#[tokio::test]
async fn a_long_tool_output_is_cut_on_a_char_boundary() {
    let mut registry = Registry::new();
    registry.register(Big);
    let mut ctx = ToolContext::new();
    ctx.budgets.per_tool_tokens = 1_000_000;
    let server = medic_agent::scripted::ScriptedServer::start(script(
        true,
        vec![
            calls(&[("big", json!({}))]),
            ScriptStep {
                r#final: Some(json!({"answer": "done", "findings": []})),
                ..ScriptStep::default()
            },
        ],
    ))
    .await
    .unwrap();
    let mut mc = medic_agent::ModelConfig::openai_compatible(server.base_url.clone(), "scripted");
    mc.max_retries = 0;
    let session = Session::new(
        registry,
        ctx,
        Some(std::sync::Arc::new(
            medic_agent::RigClient::new(mc).unwrap(),
        )),
        SessionConfig {
            analyzers: false,
            probe_cache: None,
            ..SessionConfig::default()
        },
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    session.investigate(question(), tx).await.unwrap();
    let events = drain(&mut rx);
    let (output, truncated) = events
        .iter()
        .find_map(|e| match e {
            Event::ToolOutput {
                output, truncated, ..
            } => Some((output.clone(), *truncated)),
            _ => None,
        })
        .unwrap();
    assert!(truncated);
    assert!(output.len() <= TOOL_OUTPUT_PREVIEW_BYTES);
    assert!(output.len() > TOOL_OUTPUT_PREVIEW_BYTES - 4);
    let full = format!("x{}", "é…".repeat(8_000));
    assert!(full.starts_with(&output));
}

async fn streamed_answer(mode: ToolMode, native_tools: bool) {
    let script = script(
        native_tools,
        vec![
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            final_oom(),
        ],
    );
    let (session, server, _, _) = scripted_session(script, mode, |_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(out.stop_reason, Some(StopReason::Answered));
    let events = drain(&mut rx);
    let pieces = deltas(&events);
    // The scripted server streams 16 characters per SSE chunk: the answer arrives in
    // several pieces, in order, and they add up to the answer exactly once.
    assert!(pieces.len() >= 3, "{pieces:?}");
    assert_eq!(pieces.concat(), ANSWER);
    assert_eq!(out.answer, ANSWER);
    // Every model call was streamed.
    for r in server.requests() {
        assert_eq!(r.body["stream"], true, "{}", r.body);
    }
    // The pieces come before the proposal and Done, after the last tool call.
    let first_delta = events
        .iter()
        .position(|e| matches!(e, Event::AnswerDelta { .. }))
        .unwrap();
    let last_tool = events
        .iter()
        .rposition(|e| matches!(e, Event::ToolOutput { .. }))
        .unwrap();
    let proposal = events
        .iter()
        .position(|e| matches!(e, Event::Proposal(_)))
        .unwrap();
    assert!(last_tool < first_delta && first_delta < proposal);
}

#[tokio::test]
async fn native_mode_streams_the_final_answer() {
    streamed_answer(ToolMode::Native, true).await;
}

#[tokio::test]
async fn json_mode_streams_the_answer_while_the_object_is_parsed() {
    streamed_answer(ToolMode::Json, false).await;
}

#[tokio::test]
async fn without_streaming_the_answer_is_one_delta() {
    let script = script(
        true,
        vec![
            calls(&[("pod_status", json!({"pod": "api-1"}))]),
            final_oom(),
        ],
    );
    let (session, server, _, _) =
        scripted_session(script, ToolMode::Native, |c| c.stream = false).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    session.investigate(question(), tx).await.unwrap();
    assert_eq!(deltas(&drain(&mut rx)), vec![ANSWER.to_string()]);
    for r in server.requests() {
        assert_ne!(r.body["stream"], true);
    }
}

#[tokio::test]
async fn a_prose_answer_with_tools_offered_is_sent_once_complete() {
    let text = "The pod runs out of memory; raise the limit.";
    let script = script(
        true,
        vec![ScriptStep {
            content: Some(text.into()),
            ..ScriptStep::default()
        }],
    );
    let (session, _server, _, _) = scripted_session(script, ToolMode::Native, |_| {}).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(out.answer, text);
    assert_eq!(deltas(&drain(&mut rx)), vec![text.to_string()]);
}
