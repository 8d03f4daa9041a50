//! Starts the server with Slack, Alertmanager and PagerDuty configured, lets it settle, and
//! prints its resident memory (VmRSS) — the idle footprint of `medic serve`'s front door.
//! `IDLE_SECS` keeps it running longer (for measuring from outside with `ps`).
//!
//! Run: `cargo run --release -p medic-server --example idle`.

use std::time::Duration;

use medic_agent::protocol::{Event, Op};
use medic_server::{
    DecisionReply, DecisionRequest, Engine, SecretRef, Server, ServerConfig, SessionLink,
    SessionRequest, SlackConfig,
};
use tokio::sync::mpsc;

/// Idle: never asked anything here.
struct NoEngine;

impl Engine for NoEngine {
    async fn start(&self, _r: SessionRequest) -> medic_server::Result<SessionLink> {
        let (ops, _) = mpsc::channel::<Op>(1);
        let (_, events) = mpsc::channel::<Event>(1);
        Ok(SessionLink { ops, events })
    }
    async fn decide(&self, _d: DecisionRequest) -> medic_server::Result<DecisionReply> {
        Ok(DecisionReply::Unknown)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("medic-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for (f, v) in [
        ("am", "t"),
        ("slack", "s"),
        ("slack-token", "xoxb-idle"),
        ("pd", "p"),
    ] {
        std::fs::write(dir.join(f), v)?;
    }
    let mut cfg = ServerConfig::default();
    cfg.alerts.alertmanager_token = SecretRef::file(dir.join("am"));
    cfg.alerts.pagerduty_secrets = vec![SecretRef::file(dir.join("pd"))];
    cfg.alerts.runbooks_dir =
        Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks/runbooks"));
    cfg.slack = Some(SlackConfig {
        signing_secret: SecretRef::file(dir.join("slack")),
        bot_token: SecretRef::file(dir.join("slack-token")),
        api_base_url: "https://slack.com/api".into(),
    });
    let server = Server::new(cfg, NoEngine)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    // One request so the router and connection paths are warm, as in production.
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    tokio::io::AsyncWriteExt::write_all(
        &mut s,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await?;
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("idle server on {addr}: VmRSS {} KiB", rss_kib());
    let extra: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(extra)).await;
    let _ = stop.send(());
    serving.await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
