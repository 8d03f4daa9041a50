//! The rig-backed client over real HTTP: streaming, probing, retries and error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use axum::routing::post;
use common::{calls, script};
use medic_agent::model::probe::resolve_tool_mode;
use medic_agent::model::{ChatMessage, ChatRequest, ModelConfig, ToolMode, ToolSpec};
use medic_agent::scripted::{ScriptStep, ScriptedServer};
use medic_agent::{AgentError, ModelClient, RigClient};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn request(with_tool: bool) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::System {
                content: "be brief".into(),
            },
            ChatMessage::User {
                content: "hello".into(),
            },
        ],
        tools: if with_tool {
            vec![ToolSpec {
                name: "pod_status".into(),
                description: "status".into(),
                parameters: json!({"type": "object", "properties": {"pod": {"type": "string"}}, "required": ["pod"]}),
            }]
        } else {
            Vec::new()
        },
        ..ChatRequest::default()
    }
}

fn client(base_url: &str) -> RigClient {
    let mut mc = ModelConfig::openai_compatible(base_url, "scripted");
    mc.max_retries = 0;
    RigClient::new(mc).unwrap()
}

#[tokio::test]
async fn non_streaming_and_streaming_give_the_same_answer() {
    let text = "The pod is OOMKilled because its limit is 256Mi; raise it to 512Mi.";
    let step = ScriptStep {
        content: Some(text.into()),
        ..ScriptStep::default()
    };
    let server = ScriptedServer::start(script(true, vec![step.clone(), step]))
        .await
        .unwrap();
    let c = client(&server.base_url);
    let full = c.complete(&request(false), None).await.unwrap();
    assert_eq!(full.text, text);
    assert!(full.usage.input_tokens > 0);
    assert!(full.usage.output_tokens > 0);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let streamed = c.complete(&request(false), Some(tx)).await.unwrap();
    let mut deltas = Vec::new();
    while let Ok(d) = rx.try_recv() {
        deltas.push(d);
    }
    assert!(deltas.len() > 1, "expected several deltas, got {deltas:?}");
    assert_eq!(deltas.concat(), text);
    assert_eq!(streamed.text, text);
    assert_eq!(streamed.usage, full.usage);
    let reqs = server.requests();
    assert_eq!(reqs[1].body["stream"], true);
}

#[tokio::test]
async fn streamed_native_tool_calls_are_reassembled() {
    let server = ScriptedServer::start(script(
        true,
        vec![calls(&[(
            "pod_status",
            json!({"pod": "api-1", "previous": true}),
        )])],
    ))
    .await
    .unwrap();
    let c = client(&server.base_url);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let r = c.complete(&request(true), Some(tx)).await.unwrap();
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].name, "pod_status");
    assert_eq!(
        r.tool_calls[0].arguments,
        json!({"pod": "api-1", "previous": true})
    );
}

#[tokio::test]
async fn probe_picks_the_mode_once_and_caches_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tool-mode.json");
    for (native, expected) in [(true, ToolMode::Native), (false, ToolMode::Json)] {
        let server = ScriptedServer::start(script(
            native,
            vec![ScriptStep {
                content: Some("I cannot call tools.".into()),
                ..ScriptStep::default()
            }],
        ))
        .await
        .unwrap();
        let mc = ModelConfig::openai_compatible(server.base_url.clone(), "scripted");
        let c = RigClient::new(mc.clone()).unwrap();
        let mode = resolve_tool_mode(&c, &mc, Some(&cache)).await.unwrap();
        assert_eq!(mode, expected);
        let after_first = server.requests().len();
        assert_eq!(after_first, 1);
        // Second resolution comes from the cache: no request.
        let again = resolve_tool_mode(&c, &mc, Some(&cache)).await.unwrap();
        assert_eq!(again, expected);
        assert_eq!(server.requests().len(), after_first);
    }
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(cached.as_object().unwrap().len(), 2);
    // Explicit modes never probe.
    let mut mc = ModelConfig::openai_compatible("http://127.0.0.1:9/v1", "m");
    mc.tool_mode = ToolMode::Json;
    let c = RigClient::new(mc.clone()).unwrap();
    assert_eq!(
        resolve_tool_mode(&c, &mc, None).await.unwrap(),
        ToolMode::Json
    );
}

/// A server that always answers with `status`, counting requests.
async fn failing_server(
    status: StatusCode,
) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                (
                    status,
                    axum::Json(json!({"error": {"message": "The model `nope` does not exist", "type": "invalid_request_error"}})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/v1"), hits, task)
}

#[tokio::test]
async fn errors_name_the_provider_model_and_fix() {
    let (url, hits, task) = failing_server(StatusCode::UNAUTHORIZED).await;
    let mut mc = ModelConfig::openai_compatible(url, "nope");
    mc.max_retries = 3;
    let e = RigClient::new(mc)
        .unwrap()
        .complete(&request(false), None)
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Auth { status: 401, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("openai-compatible") && msg.contains("`nope`") && msg.contains("key"),
        "{msg}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "401 is not retried");
    task.abort();

    let (url, hits, task) = failing_server(StatusCode::NOT_FOUND).await;
    let mc = ModelConfig::openai_compatible(url, "nope");
    let e = RigClient::new(mc)
        .unwrap()
        .complete(&request(false), None)
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::UnknownModel { .. }), "{e:?}");
    assert!(e.to_string().contains("MEDIC_MODEL"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    task.abort();

    let (url, hits, task) = failing_server(StatusCode::SERVICE_UNAVAILABLE).await;
    let mut mc = ModelConfig::openai_compatible(url, "m");
    mc.max_retries = 2;
    let e = RigClient::new(mc)
        .unwrap()
        .complete(&request(false), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AgentError::Provider { attempts: 3, .. }),
        "{e:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "5xx is retried with backoff"
    );
    task.abort();

    let (url, hits, task) = failing_server(StatusCode::TOO_MANY_REQUESTS).await;
    let mut mc = ModelConfig::openai_compatible(url, "m");
    mc.max_retries = 1;
    let e = RigClient::new(mc)
        .unwrap()
        .complete(&request(false), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AgentError::Provider { attempts: 2, .. }),
        "{e:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2, "429 is retried");
    task.abort();
}

#[tokio::test]
async fn timeouts_are_reported() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let mut mc = ModelConfig::openai_compatible(format!("http://{addr}/v1"), "slow");
    mc.timeout = Duration::from_millis(200);
    mc.max_retries = 1;
    let e = RigClient::new(mc)
        .unwrap()
        .complete(&request(false), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AgentError::Timeout { attempts: 2, .. }),
        "{e:?}"
    );
    task.abort();
}
