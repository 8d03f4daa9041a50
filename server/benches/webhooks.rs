//! Webhook benchmarks: the server runs in-process on 127.0.0.1 and a Rust load generator
//! drives it over loopback (bounded in count and time).
//!
//! 1. Acknowledgement latency at a fixed 200 requests/s (open loop: requests are sent on
//!    schedule whether or not earlier ones finished), half Alertmanager webhooks, half
//!    signed Slack events; p50 / p99 / max.
//! 2. An alert storm: 10,000 alerts spread over 50 groups within the run time; checks that
//!    investigations started = groups and that every alert was taken (nothing dropped), and
//!    reports the process's peak RSS (server and load generator together).
//!
//! `BENCH_SECS` shortens both runs (default 60); `BENCH_ONLY=ack` or `BENCH_ONLY=storm`
//! runs one (the storm alone gives a cleaner RSS baseline). Run: `cargo bench -p medic-server --bench webhooks`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use medic_agent::protocol::{Event, Op, StopReason, Usage};
use medic_server::{
    DecisionReply, DecisionRequest, Engine, SecretRef, Server, ServerConfig, SessionLink,
    SessionRequest, SlackConfig,
};
use serde_json::json;
use tokio::sync::mpsc;

/// Answers every session at once: started, usage, done.
#[derive(Clone, Default)]
struct QuickEngine {
    started: Arc<AtomicUsize>,
}

impl Engine for QuickEngine {
    async fn start(&self, request: SessionRequest) -> medic_server::Result<SessionLink> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let (ops, _ops_rx) = mpsc::channel::<Op>(4);
        let (tx, events) = mpsc::channel(8);
        tokio::spawn(async move {
            let _ = tx
                .send(Event::SessionStarted {
                    session_id: request.key,
                    model: "none".into(),
                    tool_mode: "none".into(),
                })
                .await;
            let usage = Usage {
                input_tokens: 100,
                output_tokens: 20,
                model_calls: 1,
                tool_calls: 0,
                cost_usd: None,
                wall_ms: 1,
            };
            let _ = tx
                .send(Event::Done {
                    usage,
                    stop_reason: StopReason::AnalyzersOnly,
                })
                .await;
        });
        Ok(SessionLink { ops, events })
    }

    async fn decide(&self, _d: DecisionRequest) -> medic_server::Result<DecisionReply> {
        Ok(DecisionReply::Unknown)
    }
}

const AM_TOKEN: &str = "bench-token";
const SLACK_SECRET: &str = "bench-slack-secret";

fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn start(dir: &std::path::Path, queue: usize) -> (Server, String, QuickEngine) {
    std::fs::write(dir.join("am"), AM_TOKEN).unwrap();
    std::fs::write(dir.join("slack"), SLACK_SECRET).unwrap();
    let mut cfg = ServerConfig {
        http_timeout_secs: 2,
        ..ServerConfig::default()
    };
    cfg.alerts.alertmanager_token = SecretRef::file(dir.join("am"));
    cfg.alerts.queue_size = queue;
    // No bot token: the benchmark measures acknowledgement, not posting to Slack.
    cfg.slack = Some(SlackConfig {
        signing_secret: SecretRef::file(dir.join("slack")),
        bot_token: SecretRef::default(),
        api_base_url: "http://127.0.0.1:9/api".into(),
    });
    let engine = QuickEngine::default();
    let server = Server::new(cfg, engine.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
    (server, format!("http://{addr}"), engine)
}

fn am_body(group: usize, fp: usize) -> serde_json::Value {
    json!({
        "version": "4", "groupKey": format!("{{}}:{{alertname=\"Bench{group}\"}}"), "status": "firing", "receiver": "medic",
        "groupLabels": {}, "commonLabels": {"alertname": format!("Bench{group}")}, "commonAnnotations": {},
        "externalURL": "", "truncatedAlerts": 0,
        "alerts": [{ "status": "firing", "labels": {"alertname": format!("Bench{group}"), "instance": fp.to_string()},
                     "annotations": {}, "startsAt": "2026-11-21T20:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                     "generatorURL": "", "fingerprint": format!("{fp:016x}") }]
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `total` requests evenly over `secs` seconds; `make(i)` builds request `i`.
async fn open_loop(
    total: usize,
    secs: u64,
    make: impl Fn(usize) -> reqwest::RequestBuilder,
) -> (Vec<Duration>, usize, Duration) {
    let period = Duration::from_secs_f64(secs as f64 / total as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    let start = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let req = make(i);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (t.elapsed(), status)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut bad = 0;
    for t in tasks {
        let (d, status) = t.await.unwrap();
        if status != 200 {
            bad += 1;
        }
        lat.push(d);
    }
    let wall = start.elapsed();
    lat.sort();
    (lat, bad, wall)
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .clamp(1, 120);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "storm" {
        ack_latency(&http, secs).await;
    }
    if only != "ack" {
        storm(&http, secs).await;
    }
}

/// 1. Acknowledgement latency at 200 requests/s.
async fn ack_latency(http: &reqwest::Client, secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (server, base, _engine) = start(dir.path(), 4096).await;
    let total = 200 * secs as usize;
    let (lat, bad, wall) = open_loop(total, secs, |i| {
        if i % 2 == 0 {
            http.post(format!("{base}/alerts/alertmanager")).bearer_auth(AM_TOKEN).json(&am_body(i % 50, i))
        } else {
            let body = json!({"type": "event_callback", "event_id": format!("Ev{i}"), "event": {"type": "message", "bot_id": "B1", "text": "x", "channel": "C1", "ts": "1.1"}}).to_string();
            let ts = now().to_string();
            let sig = medic_server::slack::slack_signature(SLACK_SECRET.as_bytes(), &ts, body.as_bytes());
            http.post(format!("{base}/slack/events")).header("x-slack-request-timestamp", ts).header("x-slack-signature", sig).body(body)
        }
    })
    .await;
    println!(
        "ack latency @200 req/s for {secs} s: {} requests in {:.1} s, non-200 {bad}; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let _ = server.drain().await;
}

/// 2. Alert storm: 10,000 alerts over 50 groups.
async fn storm(http: &reqwest::Client, secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let rss_before = vm_kib("VmRSS:");
    let (server, base, engine) = start(dir.path(), 256).await;
    let alerts = 10_000;
    let (lat, bad, wall) = open_loop(alerts, secs, |i| {
        http.post(format!("{base}/alerts/alertmanager"))
            .bearer_auth(AM_TOKEN)
            .json(&am_body(i % 50, 1_000_000 + i))
    })
    .await;
    // Let the last investigations finish.
    for _ in 0..100 {
        if engine.started.load(Ordering::SeqCst) >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = server.metrics();
    let taken = m.get("medic_alerts_total", &[("outcome", "new")]);
    println!(
        "alert storm: {alerts} alerts / 50 groups in {:.1} s: non-200 {bad}, alerts taken {taken}, investigations started {} (groups 50); p99 ack {:.2} ms; RSS before {} KiB, peak (VmHWM, server + load generator) {} KiB",
        wall.as_secs_f64(),
        engine.started.load(Ordering::SeqCst),
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        rss_before,
        vm_kib("VmHWM:"),
    );
    assert_eq!(bad, 0, "no webhook may be refused in the storm");
    assert_eq!(taken as usize, alerts, "every alert is taken");
    assert_eq!(
        engine.started.load(Ordering::SeqCst),
        50,
        "one investigation per group"
    );
    let _ = server.drain().await;
}
