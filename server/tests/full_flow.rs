//! The whole automated path with the test engine: alert → runbook → investigation posted to
//! the runbook's channel → approval card → refused clicks → two approvals → executed →
//! result posted; then shutdown with a checkpoint, restart, and reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";

fn crashloop(group: &str, pods: &[&str]) -> serde_json::Value {
    json!({
        "version": "4", "groupKey": group, "truncatedAlerts": 0, "status": "firing", "receiver": "medic",
        "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "severity": "warning"},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": pods.iter().map(|p| json!({
            "status": "firing", "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": p, "severity": "warning"},
            "annotations": {"summary": format!("{p} restarts: <!channel> OOMKilled")}, "startsAt": "2026-11-21T19:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": format!("fp-{p}")
        })).collect::<Vec<_>>()
    })
}

#[tokio::test]
async fn alert_to_executed_plan_in_the_runbook_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let engine = TestEngine::new(&["bob", "carol"], 2);
    let mut cfg = config(dir.path(), Some(&api));
    cfg.alerts.runbooks_dir =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks/runbooks"));
    let run = start(cfg, engine.clone()).await;
    let http = reqwest::Client::new();

    let r = http
        .post(run.url("/alerts/alertmanager"))
        .bearer_auth(AM_TOKEN)
        .json(&crashloop(
            "{}:{alertname=\"KubePodCrashLooping\"}",
            &["api-7d9f", "api-8c2e"],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the approval card in #deploys", || {
        slack
            .by_method("chat.postMessage")
            .iter()
            .any(|p| p.to_string().contains("medic_approve"))
    })
    .await;
    let posts = slack.by_method("chat.postMessage");
    assert_eq!(posts[0]["channel"], "#deploys", "the runbook's channel");
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("[FIRING:2] KubePodCrashLooping")
    );
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("runbook deployment-rollout-failing")
    );
    let thread = posts[0]["thread_ts"].as_str().map(str::to_owned);
    assert!(thread.is_none(), "the first post starts the thread");
    let root_ts = "1700000000.000001";
    assert!(posts[1..].iter().all(|p| p["thread_ts"] == root_ts));
    let op = engine.log.lock().unwrap().started[0].op.clone();
    let medic_agent::protocol::Op::Alert { payload, .. } = op else {
        panic!("alert op expected")
    };
    assert_eq!(payload["runbook"]["name"], "deployment-rollout-failing");
    assert_eq!(payload["runbook"]["preapprove"], json!(["rollout-restart"]));

    let iurl = run.url("/slack/interactivity");
    let click = |user: &str| click_body(user, "medic_approve", "ap-1");
    // Dave is mapped but not eligible: the engine refuses, he alone is told why.
    slack_request(&http, &iurl, &click("U0DAVE"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("dave's refusal", || {
        slack.by_method("chat.postEphemeral").len() == 1
    })
    .await;
    assert!(
        slack.by_method("chat.postEphemeral")[0]["text"]
            .as_str()
            .unwrap()
            .contains("dave is not in a role")
    );
    // Two eligible approvers: executed.
    slack_request(&http, &iurl, &click("U0BOB"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("bob counted", || {
        slack
            .by_method("chat.update")
            .iter()
            .any(|u| u.to_string().contains("(1 of 2)"))
    })
    .await;
    slack_request(&http, &iurl, &click("U0CAROL"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("the result in the thread", || {
        slack.by_method("chat.postMessage").iter().any(|p| {
            p["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("Execution executed")
        })
    })
    .await;
    let result = slack
        .by_method("chat.postMessage")
        .into_iter()
        .find(|p| {
            p["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("Execution executed")
        })
        .unwrap();
    assert_eq!(result["thread_ts"], root_ts);
    let decisions: Vec<String> = engine
        .log
        .lock()
        .unwrap()
        .decisions
        .iter()
        .map(|d| d.actor.clone())
        .collect();
    assert_eq!(decisions, ["dave", "bob", "carol"]);

    let metrics = http
        .get(run.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "medic_investigations_started_total{origin=\"alertmanager\"} 1",
        "medic_investigations_finished_total{stop_reason=\"answered\"} 1",
        "medic_tool_calls_total{result=\"ok\"} 2",
        "medic_approvals_total{outcome=\"requested\"} 1",
        "medic_approvals_total{outcome=\"refused\"} 1",
        "medic_executions_total{kind=\"plan\",status=\"executed\"} 1",
        "medic_executions_total{kind=\"step\",status=\"ok\"} 2",
        "medic_model_tokens_total{direction=\"input\"} 900",
        "# TYPE medic_webhook_duration_seconds histogram",
    ] {
        assert!(metrics.contains(want), "missing `{want}` in\n{metrics}");
    }
    assert_eq!(
        http.get(run.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        http.get(run.url("/readyz")).send().await.unwrap().status(),
        200
    );
    run.shutdown().await;
}

#[tokio::test]
async fn shutdown_cancels_after_grace_checkpoints_and_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let hold = Arc::new(tokio::sync::Notify::new());
    let mut engine = TestEngine::new(&["bob"], 1);
    engine.hold = Some(hold);
    let mut cfg = config(dir.path(), None);
    cfg.alerts.max_concurrent = 1;
    cfg.shutdown_grace_secs = 1;
    let run = start(cfg.clone(), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    assert_eq!(
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&crashloop("g1", &["a"]))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    eventually("g1 running", || engine.started() == 1).await;
    assert_eq!(
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&crashloop("g2", &["b"]))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let report = run.shutdown().await;
    assert!(!report.finished_in_grace);
    assert_eq!(report.cancelled, 1);
    assert_eq!(
        report.checkpointed, 2,
        "the interrupted group and the queued one"
    );
    assert_eq!(engine.log.lock().unwrap().cancels.len(), 1);
    let file = report.checkpoint.unwrap();
    assert!(file.exists());

    // The next start picks both groups up again.
    let engine2 = TestEngine::new(&["bob"], 1);
    let run2 = start(cfg, engine2.clone()).await;
    eventually("both groups re-investigated", || engine2.started() == 2).await;
    assert!(!file.exists(), "the checkpoint is consumed");
    let report = run2.shutdown().await;
    assert!(report.finished_in_grace);
    assert_eq!(report.checkpointed, 0);
}

#[tokio::test]
async fn reload_picks_up_a_rotated_secret_and_keeps_the_old_config_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_slack, api) = FakeSlack::start().await;
    let engine = TestEngine::new(&["bob"], 1);
    let cfg = config(dir.path(), Some(&api));
    let run = start(cfg.clone(), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    let body = crashloop("g1", &["a"]);
    std::fs::write(dir.path().join("am-token"), "rotated-token\n").unwrap();
    // Not yet reloaded: the old token still works.
    assert_eq!(
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    run.server.reload(cfg.clone()).await.unwrap();
    assert_eq!(
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&crashloop("g2", &["b"]))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.post(&url)
            .bearer_auth("rotated-token")
            .json(&crashloop("g2", &["b"]))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A broken configuration is refused whole.
    let mut broken = cfg.clone();
    broken.identities.push(broken.identities[1].clone());
    let err = run.server.reload(broken).await.unwrap_err().to_string();
    assert!(err.contains("identities"), "{err}");
    assert_eq!(
        http.post(&url)
            .bearer_auth("rotated-token")
            .json(&crashloop("g3", &["c"]))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    run.shutdown().await;
}
