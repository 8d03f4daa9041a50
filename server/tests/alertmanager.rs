//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! `scripts/install-alertmanager.sh`) on 127.0.0.1 routes grouped alerts to medic with a
//! bearer token from a credentials file; medic starts one investigation per group and posts
//! to each runbook's Slack channel. Skipped only when Alertmanager is absent and `CI` is not
//! set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::json;

fn alertmanager_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
    {
        for name in ["alertmanager", "prometheus-alertmanager"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn grouped_alerts_from_a_real_alertmanager_start_one_investigation_per_group() {
    let Some(bin) = alertmanager_binary() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "alertmanager is not installed but CI is set: run scripts/install-alertmanager.sh"
            );
        }
        eprintln!("skipping: alertmanager is not installed (scripts/install-alertmanager.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let engine = TestEngine::new(&["bob"], 1);
    let mut cfg = config(dir.path(), Some(&api));
    cfg.alerts.runbooks_dir =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks/runbooks"));
    let run = start(cfg, engine.clone()).await;

    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            r#"route:
  receiver: medic
  group_by: [alertname, namespace]
  group_wait: 3s
  group_interval: 4s
  repeat_interval: 1h
receivers:
  - name: medic
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token}
"#,
            url = run.url("/alerts/alertmanager"),
            token = dir.path().join("am-token").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(&bin)
        .arg(format!("--config.file={}", am_config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let am = format!("http://127.0.0.1:{am_port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if http
            .get(format!("{am}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "alertmanager did not become ready");

    let starts = "2026-11-21T19:00:00Z";
    let mut alerts = Vec::new();
    for gpu in 0..3 {
        alerts.push(json!({
            "labels": { "alertname": "GPUXidErrors", "namespace": "ai", "node": "gpu-node-3", "gpu": gpu.to_string(), "severity": "critical" },
            "annotations": { "summary": format!("Xid 79 on GPU {gpu}") }, "startsAt": starts
        }));
    }
    for pod in ["api-7d9f", "api-8c2e"] {
        alerts.push(json!({
            "labels": { "alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod, "severity": "warning" },
            "annotations": { "summary": format!("{pod} is crash looping") }, "startsAt": starts
        }));
    }
    let r = http
        .post(format!("{am}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "alertmanager refused the alerts: {}",
        r.status()
    );

    eventually("two investigations (one per group)", || {
        engine.started() == 2
    })
    .await;
    eventually("posts in both runbook channels", || {
        let channels: Vec<String> = slack
            .by_method("chat.postMessage")
            .iter()
            .map(|p| p["channel"].as_str().unwrap_or("").to_owned())
            .collect();
        channels.iter().any(|c| c == "#gpu-oncall") && channels.iter().any(|c| c == "#deploys")
    })
    .await;
    // Let Alertmanager's group_interval pass: re-sent groups are duplicates, not new work.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(engine.started(), 2);
    let started = engine.log.lock().unwrap().started.clone();
    let gpu = started
        .iter()
        .find(|s| s.key.contains("GPUXidErrors"))
        .expect("the GPU group");
    let medic_agent::protocol::Op::Alert { source, payload } = &gpu.op else {
        panic!("not an alert op")
    };
    assert_eq!(source, "alertmanager");
    assert_eq!(
        payload["alerts"].as_array().unwrap().len(),
        3,
        "the whole group in one investigation"
    );
    assert_eq!(payload["runbook"]["name"], "gpu-xid-errors");
    assert_eq!(
        payload["runbook"]["playbooks"],
        json!(["gpu-rebalance", "uncordon"])
    );
    assert_eq!(gpu.requester, "medic");
    let m = run.server.metrics();
    assert_eq!(m.get("medic_alerts_total", &[("outcome", "new")]), 5.0);
    assert_eq!(
        m.get(
            "medic_investigations_started_total",
            &[("origin", "alertmanager")]
        ),
        2.0
    );
    child.kill().await.unwrap();
    run.shutdown().await;
}
