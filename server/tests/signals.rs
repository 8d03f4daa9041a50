//! `serve_with_signals`: SIGHUP reloads, SIGTERM drains. Signals go to this test process
//! only (its own binary), by its own pid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

fn signal_self(sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(std::process::id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None);
    let server = medic_server::Server::new(cfg.clone(), TestEngine::new(&["bob"], 1)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reloads = Arc::new(AtomicUsize::new(0));
    let r = reloads.clone();
    let token_file = dir.path().join("am-token");
    let serving = tokio::spawn(server.serve_with_signals(listener, move || {
        r.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(cfg.clone()))
    }));
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/alerts/alertmanager");
    let body =
        serde_json::json!({"version": "4", "groupKey": "g", "status": "firing", "alerts": []});
    // Answering HTTP means `serve_with_signals` runs, so its handlers are installed.
    let mut up = false;
    for _ in 0..200 {
        if http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up);
    std::fs::write(&token_file, "after-hup").unwrap();
    signal_self("HUP");
    let reloaded = reloads.clone();
    eventually("the reload", || reloaded.load(Ordering::SeqCst) == 1).await;
    // The rotated token file was re-read by the reload.
    let mut status = 0;
    for _ in 0..100 {
        status = http
            .post(&url)
            .bearer_auth("after-hup")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    signal_self("TERM");
    let report = serving.await.unwrap().unwrap();
    assert!(report.finished_in_grace);
}
