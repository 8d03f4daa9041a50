//! Alert receivers over HTTP: PagerDuty signatures (valid, rotated, forged), Alertmanager
//! bearer auth, backpressure when the queue is full, the spend cap, and resolved alerts
//! stopping their investigation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn pd_sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn pd_event(id: &str, kind: &str, incident: &str) -> String {
    json!({ "event": {
        "id": id, "event_type": kind, "resource_type": "incident", "occurred_at": "2026-11-21T19:00:00Z",
        "data": { "id": incident, "type": "incident", "title": "[FIRING:1] GPUXidErrors gpu-node-3", "status": "triggered",
                  "created_at": "2026-11-21T18:59:00Z", "urgency": "high", "html_url": "https://pd.example/incidents/P1",
                  "service": { "id": "S1", "summary": "inference", "type": "service_reference" } } } })
    .to_string()
}

fn am_payload(group: &str, status: &str, alerts: &[(&str, &str)]) -> Value {
    json!({
        "version": "4", "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "medic",
        "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": alerts.iter().map(|(fp, st)| json!({
            "status": st, "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": fp},
            "annotations": {"summary": "crash looping"}, "startsAt": "2026-11-21T19:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fp
        })).collect::<Vec<_>>()
    })
}

#[tokio::test]
async fn pagerduty_signatures_valid_rotated_and_forged() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::new(&["bob"], 1);
    let mut cfg = config(dir.path(), None);
    // Rotation: the new secret is added next to the current one.
    let next = dir.path().join("pd-secret-next");
    std::fs::write(&next, "pd-secret-next").unwrap();
    cfg.alerts
        .pagerduty_secrets
        .push(medic_server::SecretRef::file(next));
    let run = start(cfg, engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/pagerduty");

    let forged = pd_event("E0", "incident.triggered", "PFORGED");
    let r = http
        .post(&url)
        .header("x-pagerduty-signature", pd_sign("guessed", &forged))
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http.post(&url).body(forged).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let body = pd_event("E1", "incident.triggered", "P1");
    let r = http
        .post(&url)
        .header("x-pagerduty-signature", pd_sign(PD_SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // During rotation PagerDuty sends several signatures; one valid one suffices.
    let body2 = pd_event("E2", "incident.triggered", "P2");
    let header = format!(
        "v1={},{}",
        "0".repeat(64),
        pd_sign("pd-secret-next", &body2)
    );
    let r = http
        .post(&url)
        .header("x-pagerduty-signature", header)
        .body(body2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A redelivery of the same event is a duplicate.
    let r = http
        .post(&url)
        .header("x-pagerduty-signature", pd_sign(PD_SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["duplicates"], 1);
    // Other event types are acknowledged and ignored.
    let ack = pd_event("E3", "incident.acknowledged", "P1");
    let r = http
        .post(&url)
        .header("x-pagerduty-signature", pd_sign(PD_SECRET, &ack))
        .body(ack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    eventually("two investigations", || engine.started() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(engine.started(), 2);
    let keys: Vec<String> = engine
        .log
        .lock()
        .unwrap()
        .started
        .iter()
        .map(|s| s.key.clone())
        .collect();
    assert!(keys.iter().all(|k| !k.contains("PFORGED")), "{keys:?}");
    assert_eq!(
        run.server.metrics().get(
            "medic_webhook_rejected_total",
            &[("reason", "pagerduty_signature")]
        ),
        2.0
    );
    run.shutdown().await;
}

#[tokio::test]
async fn alertmanager_needs_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::new(&["bob"], 1);
    let run = start(config(dir.path(), None), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    let body = am_payload("g1", "firing", &[("a", "firing")]);
    assert_eq!(
        http.post(&url).json(&body).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        http.post(&url)
            .bearer_auth("wrong")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let bad = json!({"version": "3", "groupKey": "g", "alerts": []});
    assert_eq!(
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(engine.started(), 0);
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
    eventually("the investigation", || engine.started() == 1).await;
    run.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hold = Arc::new(tokio::sync::Notify::new());
    let mut engine = TestEngine::new(&["bob"], 1);
    engine.hold = Some(hold.clone());
    let mut cfg = config(dir.path(), None);
    cfg.alerts.queue_size = 1;
    cfg.alerts.max_concurrent = 1;
    let run = start(cfg, engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    let send = |g: &str, fp: &str| {
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&am_payload(g, "firing", &[(fp, "firing")]))
            .send()
    };

    assert_eq!(send("g1", "a").await.unwrap().status(), 200);
    eventually("g1 running", || engine.started() == 1).await;
    assert_eq!(
        send("g2", "b").await.unwrap().status(),
        200,
        "g2 waits in the queue"
    );
    let full = send("g3", "c").await.unwrap();
    assert_eq!(full.status(), 503);
    assert!(full.headers().get("retry-after").is_some());
    assert_eq!(
        http.get(run.url("/readyz")).send().await.unwrap().status(),
        503
    );
    // More alerts for a group already queued or running are still taken.
    assert_eq!(send("g1", "a2").await.unwrap().status(), 200);

    hold.notify_one();
    eventually("g2 running", || engine.started() == 2).await;
    // The sender's retry of g3 now gets in: nothing was lost.
    assert_eq!(send("g3", "c").await.unwrap().status(), 200);
    hold.notify_one();
    eventually("g3 running", || engine.started() == 3).await;
    hold.notify_one();
    let m = run.server.metrics();
    assert_eq!(
        m.get("medic_webhook_rejected_total", &[("reason", "queue_full")]),
        1.0
    );
    assert_eq!(m.get("medic_alerts_total", &[("outcome", "new")]), 4.0);
    run.shutdown().await;
}

#[tokio::test]
async fn the_spend_cap_holds_new_investigations_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = TestEngine::new(&["bob"], 1);
    engine.tokens_per_session = 1200;
    let mut cfg = config(dir.path(), None);
    cfg.spend.tokens_per_hour = Some(1000);
    let run = start(cfg, engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    let send = |g: &str, fp: &str| {
        http.post(&url)
            .bearer_auth(AM_TOKEN)
            .json(&am_payload(g, "firing", &[(fp, "firing")]))
            .send()
    };
    assert_eq!(send("g1", "a").await.unwrap().status(), 200);
    eventually("the first investigation's spend", || {
        run.server.metrics().get("medic_model_tokens_total", &[]) >= 1200.0
    })
    .await;
    let r = send("g2", "b").await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((60..=3600).contains(&wait), "{wait}");
    assert_eq!(engine.started(), 1);
    let metrics = http
        .get(run.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medic_model_spend_tokens_last_hour 1200"),
        "{metrics}"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn resolving_every_alert_stops_the_investigation_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let hold = Arc::new(tokio::sync::Notify::new());
    let mut engine = TestEngine::new(&["bob"], 1);
    engine.hold = Some(hold);
    let mut cfg = config(dir.path(), Some(&api));
    cfg.alerts.default_channel = Some(medic_tools::runbooks::Channel {
        kind: medic_tools::runbooks::ChannelKind::Slack,
        target: "#alerts".into(),
    });
    let run = start(cfg, engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/alerts/alertmanager");
    let r = http
        .post(&url)
        .bearer_auth(AM_TOKEN)
        .json(&am_payload(
            "g1",
            "firing",
            &[("a", "firing"), ("b", "firing")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the thread in #alerts", || {
        slack
            .by_method("chat.postMessage")
            .iter()
            .any(|p| p["channel"] == "#alerts")
    })
    .await;
    eventually("the investigation", || engine.started() == 1).await;
    // One more alert joins: noted in the thread, no second investigation.
    http.post(&url)
        .bearer_auth(AM_TOKEN)
        .json(&am_payload(
            "g1",
            "firing",
            &[("a", "firing"), ("b", "firing"), ("c", "firing")],
        ))
        .send()
        .await
        .unwrap();
    eventually("the join note", || {
        slack
            .all_text()
            .contains("1 more alert(s) joined this group")
    })
    .await;
    let r = http
        .post(&url)
        .bearer_auth(AM_TOKEN)
        .json(&am_payload(
            "g1",
            "resolved",
            &[("a", "resolved"), ("b", "resolved"), ("c", "resolved")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the cancel", || {
        !engine.log.lock().unwrap().cancels.is_empty()
    })
    .await;
    eventually("the resolved note", || {
        slack
            .all_text()
            .contains("Every alert of this group resolved")
    })
    .await;
    let posts = slack.by_method("chat.postMessage");
    // Follow-ups go to the thread of the first post, by the channel id Slack returned.
    assert!(
        posts[1..]
            .iter()
            .all(|p| p["thread_ts"] == "1700000000.000001" && p["channel"] == "ALERTS"),
        "{posts:?}"
    );
    assert_eq!(engine.started(), 1);
    run.shutdown().await;
}
