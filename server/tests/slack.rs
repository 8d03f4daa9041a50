//! Slack end to end against a local Web API stand-in: signing, replay, retries, threads,
//! approval cards, clicks and escaping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn url_verification_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (_slack, api) = FakeSlack::start().await;
    let run = start(config(dir.path(), Some(&api)), TestEngine::new(&["bob"], 1)).await;
    let http = reqwest::Client::new();
    let body = json!({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "token": "x"}).to_string();
    let resp = slack_request(&http, &run.url("/slack/events"), &body, JSON, 0)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_401_and_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let engine = TestEngine::new(&["bob"], 1);
    let run = start(config(dir.path(), Some(&api)), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/slack/events");
    let body = mention("Ev1", "U0ALICE", "<@U0MEDIC> why is checkout down?");

    // Forged: signed with another secret.
    let ts = now().to_string();
    let forged = medic_server::slack::slack_signature(b"not-the-secret", &ts, body.as_bytes());
    let r = http
        .post(&url)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", forged)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // No signature at all.
    let r = http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Skewed: 301 s old.
    let r = slack_request(&http, &url, &body, JSON, 301)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Modified body after signing.
    let req = slack_request(&http, &url, &body, JSON, 0).build().unwrap();
    let (ts, sig) = (
        req.headers()["x-slack-request-timestamp"].clone(),
        req.headers()["x-slack-signature"].clone(),
    );
    let tampered = body.replace("checkout", "payments");
    let r = http
        .post(&url)
        .header("x-slack-request-timestamp", ts.clone())
        .header("x-slack-signature", sig.clone())
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Interactivity with a forged signature: no decision.
    let click = click_body("U0BOB", "medic_approve", "ap-1");
    let r = http
        .post(run.url("/slack/interactivity"))
        .header("x-slack-request-timestamp", ts.clone())
        .header("x-slack-signature", sig.clone())
        .body(click)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Nothing was posted, started or decided.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(slack.calls().is_empty(), "{:?}", slack.calls());
    assert_eq!(engine.started(), 0);
    assert_eq!(engine.decisions(), 0);

    // The genuine request is accepted once; replaying it byte for byte is refused.
    let genuine = http
        .post(&url)
        .header("x-slack-request-timestamp", ts.clone())
        .header("x-slack-signature", sig.clone())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status(), 200);
    let replay = http
        .post(&url)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .header("x-slack-retry-num", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    eventually("the genuine mention to start one investigation", || {
        engine.started() == 1
    })
    .await;
    let metrics = run.server.metrics();
    assert_eq!(
        metrics.get(
            "medic_webhook_rejected_total",
            &[("reason", "bad_signature")]
        ),
        3.0
    );
    assert_eq!(
        metrics.get(
            "medic_webhook_rejected_total",
            &[("reason", "stale_timestamp")]
        ),
        1.0
    );
    assert_eq!(
        metrics.get(
            "medic_webhook_rejected_total",
            &[("reason", "missing_signature_headers")]
        ),
        1.0
    );
    assert_eq!(
        metrics.get("medic_webhook_rejected_total", &[("reason", "replayed")]),
        1.0
    );
    run.shutdown().await;
}

#[tokio::test]
async fn mention_gets_a_threaded_investigation_and_retries_are_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let mut engine = TestEngine::new(&["bob", "carol"], 2);
    engine.cluster_text = "<!channel> click <https://evil.example|the docs> & @here".into();
    let run = start(config(dir.path(), Some(&api)), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/slack/events");
    let body = mention("Ev42", "U0ALICE", "<@U0MEDIC> why is checkout down?");
    let r = slack_request(&http, &url, &body, JSON, 0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Slack retries with a fresh timestamp (so a fresh signature) and X-Slack-Retry-Num.
    let r = slack_request(&http, &url, &body, JSON, 5)
        .header("x-slack-retry-num", "1")
        .header("x-slack-retry-reason", "http_timeout")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    eventually("the approval card", || {
        slack.by_method("chat.postMessage").len() >= 2
    })
    .await;
    eventually("the final progress update", || {
        slack
            .by_method("chat.update")
            .iter()
            .any(|u| u.to_string().contains("done (answered)"))
    })
    .await;
    assert_eq!(
        engine.started(),
        1,
        "the retry must not start a second investigation"
    );
    let started = engine.log.lock().unwrap().started[0].clone();
    assert_eq!(started.requester, "alice");
    assert_eq!(
        started.op,
        medic_agent::protocol::Op::UserQuestion {
            text: "why is checkout down?".into()
        }
    );

    let posts = slack.by_method("chat.postMessage");
    // Progress message and approval card both in the mention's thread.
    assert!(
        posts.iter().all(|p| p["thread_ts"] == "1699999999.000100"),
        "{posts:?}"
    );
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("why is checkout down?")
    );
    let card = &posts[1];
    let card_text = card.to_string();
    for want in [
        "Risk: medium",
        "Blast radius: 3 pods of shop/api",
        "Dry-run diff",
        "Post-checks",
        "Undo",
        "memory: 512Mi",
        "512Mi covers the observed peak",
    ] {
        assert!(card_text.contains(want), "missing {want}: {card_text}");
    }
    let buttons = card["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(buttons["elements"][0]["value"], "ap-1");
    assert_eq!(buttons["elements"][0]["action_id"], "medic_approve");
    // Cluster text never becomes a mention or a link.
    let all = slack.all_text();
    assert!(
        !all.contains("<!channel>") && !all.contains("<https://evil"),
        "{all}"
    );
    assert!(all.contains("&lt;!channel&gt;"));
    run.shutdown().await;
}

#[tokio::test]
async fn clicks_are_mapped_checked_and_forwarded_once() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, api) = FakeSlack::start().await;
    let engine = TestEngine::new(&["bob", "carol"], 2);
    let run = start(config(dir.path(), Some(&api)), engine.clone()).await;
    let http = reqwest::Client::new();
    let r = slack_request(
        &http,
        &run.url("/slack/events"),
        &mention("Ev7", "U0ALICE", "<@U0MEDIC> checkout?"),
        JSON,
        0,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the approval card", || {
        slack.by_method("chat.postMessage").len() >= 2
    })
    .await;
    let iurl = run.url("/slack/interactivity");
    let click = |user: &str, action: &str| click_body(user, action, "ap-1");

    // Unmapped user: ephemeral reply, nothing forwarded.
    let r = slack_request(&http, &iurl, &click("U0STRANGER", "medic_approve"), FORM, 0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the unmapped ephemeral", || {
        slack.by_method("chat.postEphemeral").len() == 1
    })
    .await;
    assert!(
        slack.by_method("chat.postEphemeral")[0]["text"]
            .as_str()
            .unwrap()
            .contains("not mapped to a Kubernetes identity")
    );
    assert_eq!(engine.decisions(), 0);

    // The requester: refused by the engine, shown only to her.
    slack_request(&http, &iurl, &click("U0ALICE", "medic_approve"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("the self-approval ephemeral", || {
        slack.by_method("chat.postEphemeral").len() == 2
    })
    .await;
    let eph = slack.by_method("chat.postEphemeral")[1].clone();
    assert_eq!(eph["user"], "U0ALICE");
    assert!(
        eph["text"]
            .as_str()
            .unwrap()
            .contains("alice requested this plan and cannot approve it"),
        "{eph}"
    );

    // Bob clicks Approve twice (a double click, each a distinct signed request): one decision.
    let first = slack_request(
        &http,
        &iurl,
        &click_body_at("U0BOB", "medic_approve", "ap-1", "1700000002.1"),
        FORM,
        0,
    )
    .send()
    .await
    .unwrap();
    let second = slack_request(
        &http,
        &iurl,
        &click_body_at("U0BOB", "medic_approve", "ap-1", "1700000002.2"),
        FORM,
        0,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    eventually("bob's decision", || engine.decisions() >= 2).await;
    eventually("the card to show bob's approval", || {
        slack
            .by_method("chat.update")
            .iter()
            .any(|u| u.to_string().contains("approved by bob (1 of 2)"))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let bob_decisions = engine
        .log
        .lock()
        .unwrap()
        .decisions
        .iter()
        .filter(|d| d.actor == "bob")
        .count();
    assert_eq!(bob_decisions, 1);
    assert_eq!(
        run.server
            .metrics()
            .get("medic_approvals_total", &[("outcome", "duplicate_click")]),
        1.0
    );

    // Carol completes the approval: executed, the card loses its buttons, the result is posted.
    slack_request(&http, &iurl, &click("U0CAROL", "medic_approve"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("the execution result", || {
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
    assert_eq!(result["thread_ts"], "1699999999.000100");
    assert!(result.to_string().contains("Approved by bob, carol"));
    assert!(
        result
            .to_string()
            .contains("patch Deployment shop/api memory 512Mi — ok")
    );
    let last_card = slack
        .by_method("chat.update")
        .into_iter()
        .rev()
        .find(|u| u.to_string().contains("Raise shop/api memory"))
        .unwrap();
    assert!(
        !last_card.to_string().contains("medic_approve"),
        "decided cards have no buttons: {last_card}"
    );
    assert!(last_card.to_string().contains("Status: executed"));

    // A late click on the executed plan is refused by the engine (first valid decision won).
    slack_request(&http, &iurl, &click("U0DAVE", "medic_deny"), FORM, 0)
        .send()
        .await
        .unwrap();
    eventually("the late-click ephemeral", || {
        slack.by_method("chat.postEphemeral").len() == 3
    })
    .await;
    let m = run.server.metrics();
    assert_eq!(
        m.get(
            "medic_executions_total",
            &[("kind", "plan"), ("status", "executed")]
        ),
        1.0
    );
    assert!(
        m.render()
            .contains("medic_webhook_duration_seconds_bucket{endpoint=\"slack_interactivity\"")
    );
    run.shutdown().await;
}
