//! `medic serve` end to end, the real binary over a starter bundle: a Slack mention starts an
//! investigation, the plan is posted with buttons to a local stand-in for Slack's Web API,
//! the requester's own click is refused (self-approval), two eligible people approve, the
//! plan executes against the sandbox as the second approver, the result is posted in the
//! thread, and `medic audit verify` passes over the trail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use common::copy_dir;

const SECRET: &str = "8f14e45fceea167a5a36dedd4bea2543";

#[derive(Clone, Default)]
struct FakeSlack {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeSlack {
    fn by_method(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn slack_method(
    State(fake): State<FakeSlack>,
    UrlPath(method): UrlPath<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut calls = fake.calls.lock().unwrap();
    calls.push((method, body.clone()));
    let ts = format!("1700000000.{:06}", calls.len());
    Json(json!({"ok": true, "ts": ts, "channel": body["channel"]}))
}

/// Kills the server by PID however the test ends.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sign(ts: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn signed(http: &reqwest::Client, url: &str, body: String, form: bool) -> u16 {
    let ts = chrono::Utc::now().timestamp().to_string();
    http.post(url)
        .header(
            "content-type",
            if form {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            },
        )
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(&ts, &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn click(user: &str, approval_id: &str, n: u32) -> String {
    let payload = json!({
        "type": "block_actions", "user": { "id": user }, "channel": { "id": "C0INCIDENT" },
        "container": { "type": "message", "message_ts": "1700000000.000002", "channel_id": "C0INCIDENT", "thread_ts": "1699999999.000100" },
        "actions": [{ "action_id": "medic_approve", "value": approval_id, "type": "button", "action_ts": format!("1700000100.{n}") }]
    });
    format!("payload={}", url_encode(&payload.to_string()))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn approval_id_in(post: &Value) -> Option<String> {
    post["blocks"].as_array()?.iter().find_map(|b| {
        b["elements"].as_array()?.iter().find_map(|e| {
            if e["action_id"] == "medic_approve" {
                e["value"].as_str().map(str::to_owned)
            } else {
                None
            }
        })
    })
}

/// Waits for a `chat.postMessage` that satisfies `pred` and returns it.
async fn posted(fake: &FakeSlack, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || {
        fake.by_method("chat.postMessage").iter().any(&pred)
    })
    .await;
    fake.by_method("chat.postMessage")
        .into_iter()
        .find(|p| pred(p))
        .unwrap()
}

fn text_starts(p: &Value, prefix: &str) -> bool {
    p["text"].as_str().unwrap_or("").starts_with(prefix)
}

async fn metrics(http: &reqwest::Client, url: &str) -> String {
    http.get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The audit log's records, parsed.
fn audit_records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_slack_secrets(dir: &Path) {
    std::fs::write(dir.join("signing-secret"), SECRET).unwrap();
    std::fs::write(dir.join("bot-token"), "xoxb-test-not-a-real-token").unwrap();
}

/// medic.yaml's `server` section for Slack at `slack_addr`, secrets under `dir`.
fn slack_section(dir: &Path, slack_addr: std::net::SocketAddr) -> String {
    format!(
        "server:\n  slack:\n    signing_secret: {{ file: {d}/signing-secret }}\n    bot_token: {{ file: {d}/bot-token }}\n    api_base_url: http://{slack_addr}/api\n  shutdown_grace_secs: 1\n",
        d = dir.display()
    )
}

/// The bundle gives bob a Teams id only; this adds his Slack id.
const BOB_ON_SLACK: &str = "approvals:\n  identities:\n    - { name: bob, kube_user: bob@corp.example, groups: [platform-leads], slack: U02BOB }\n";

/// Carol mentions medic about the llama pod; returns the approval card and its id.
async fn carol_asks(http: &reqwest::Client, url: &str, fake: &FakeSlack) -> (Value, String) {
    let mention = json!({
        "type": "event_callback", "team_id": "T1", "event_id": "Ev01", "event_time": chrono::Utc::now().timestamp(),
        "event": { "type": "app_mention", "user": "U03CAROL", "channel": "C0INCIDENT", "ts": "1699999999.000100",
                   "text": "<@U0MEDIC> one llama pod keeps restarting in namespace ai on aks-eu-west, users see 5xx. What is wrong?" }
    });
    let status = signed(
        http,
        &format!("{url}/slack/events"),
        mention.to_string(),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let card = posted(fake, "the approval card", |p| approval_id_in(p).is_some()).await;
    let approval = approval_id_in(&card).unwrap();
    (card, approval)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_serve(config: &Path, data: &Path, bundle: &Path) -> (Served, String) {
    // Each run gets its own port; the server prints it first thing on stdout.
    let mut child = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["serve", "--no-model", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .arg("--sandbox")
        .arg(bundle)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("medic serve listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (served, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_mention_to_executed_plan_with_a_verified_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, slack_addr) = fake_slack().await;
    write_slack_secrets(dir.path());
    let config = dir.path().join("medic.yaml");
    // The bundle gives bob a Teams id only; this machine's medic.yaml adds his Slack id.
    std::fs::write(
        &config,
        format!("{}{BOB_ON_SLACK}", slack_section(dir.path(), slack_addr)),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (served, url) = start_serve(&config, &data, &root().join("sandbox/bundles/gpu-xid79"));
    let http = reqwest::Client::new();

    // Carol asks in a channel.
    let (card, approval) = carol_asks(&http, &url, &fake).await;
    let card_text = card.to_string();
    assert!(card_text.contains("gpu-node-3"), "{card_text}");
    assert!(card_text.contains("gpu-rebalance"), "{card_text}");
    // carol (developers) may not drain nodes herself; the dry-run shows what an approver's
    // execution would meet, not her 403s.
    assert!(!card_text.contains("403"), "{card_text}");
    assert_eq!(card["channel"], "C0INCIDENT");

    let iurl = format!("{url}/slack/interactivity");
    // Carol asked, so her own approval is refused, to her alone.
    assert_eq!(
        signed(&http, &iurl, click("U03CAROL", &approval, 1), true).await,
        200
    );
    eventually("carol's refusal", || {
        !fake.by_method("chat.postEphemeral").is_empty()
    })
    .await;
    let refusal = fake.by_method("chat.postEphemeral")[0].clone();
    assert_eq!(refusal["user"], "U03CAROL");
    assert!(
        refusal["text"].as_str().unwrap().contains("carol"),
        "{refusal}"
    );
    assert!(
        refusal["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("request"),
        "self-approval named: {refusal}"
    );

    // Alice (sre) then Bob (platform-leads): the two-person rule is met.
    assert_eq!(
        signed(&http, &iurl, click("U01ALICE", &approval, 2), true).await,
        200
    );
    eventually("alice counted on the card", || {
        fake.by_method("chat.update")
            .iter()
            .any(|u| u.to_string().contains("(1 of 2)"))
    })
    .await;
    assert_eq!(
        signed(&http, &iurl, click("U02BOB", &approval, 3), true).await,
        200
    );
    let result = posted(&fake, "the result in the thread", |p| {
        text_starts(p, "Execution executed")
    })
    .await;
    assert_eq!(result["channel"], "C0INCIDENT");
    assert_eq!(result["thread_ts"], "1699999999.000100");
    // A second click by bob changes nothing (one execution).
    assert_eq!(
        signed(&http, &iurl, click("U02BOB", &approval, 4), true).await,
        200
    );

    let metrics = metrics(&http, &url).await;
    assert!(
        metrics.contains("medic_executions_total{kind=\"plan\",status=\"executed\"} 1"),
        "{metrics}"
    );
    drop(served);

    // The trail: verified, with bob's execution impersonating him and the refusal recorded.
    let log = data.join("audit.jsonl");
    let verify = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["audit", "verify", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("slack:U03CAROL"),
        "the refused click is recorded"
    );
    assert!(
        text.contains("slack:U02BOB"),
        "bob's decision names the chat actor"
    );
    // Each step applied once, as bob, however many clicks arrived.
    let records = audit_records(&log);
    let mut applied: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "step_applied" && r["payload"]["phase"] == "step")
        .map(|r| r["payload"]["step"].as_u64().unwrap())
        .collect();
    assert!(!applied.is_empty(), "steps were applied");
    assert!(
        records
            .iter()
            .filter(|r| r["kind"] == "step_applied")
            .all(|r| r["payload"]["as_user"] == "bob@corp.example")
    );
    let n = applied.len();
    applied.sort_unstable();
    applied.dedup();
    assert_eq!(applied.len(), n, "a step applied twice");
    assert!(text.contains("bob@corp.example"), "executed as bob");
}

fn alertmanager_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|d| ["alertmanager", "prometheus-alertmanager"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

async fn fake_slack() -> (FakeSlack, std::net::SocketAddr) {
    let fake = FakeSlack::default();
    let app = axum::Router::new()
        .route("/api/{method}", post(slack_method))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, addr)
}

/// A real Alertmanager routes two alert groups to `medic serve`; each group becomes one
/// investigation over the sandbox, posted to its runbook's channel with the plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_groups_become_investigations_posted_to_runbook_channels() {
    let Some(bin) = alertmanager_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "alertmanager is not installed but CI is set: run scripts/install-alertmanager.sh"
        );
        eprintln!("skipping: alertmanager is not installed (scripts/install-alertmanager.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (fake, slack_addr) = fake_slack().await;
    let d = dir.path().display().to_string();
    write_slack_secrets(dir.path());
    std::fs::write(dir.path().join("am-token"), "am-7c1f0e").unwrap();
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  slack:\n    signing_secret: {{ file: {d}/signing-secret }}\n    bot_token: {{ file: {d}/bot-token }}\n    api_base_url: http://{slack_addr}/api\n  alerts:\n    alertmanager_token: {{ file: {d}/am-token }}\n    runbooks_dir: {rb}\n  shutdown_grace_secs: 1\n",
            rb = root().join("playbooks/runbooks").display()
        ),
    )
    .unwrap();
    let (served, url) = start_serve(
        &config,
        &dir.path().join("data"),
        &root().join("sandbox/bundles/gpu-xid79"),
    );

    let am_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: medic\n  group_by: [alertname, namespace]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: medic\n    webhook_configs:\n      - url: {url}/alerts/alertmanager\n        send_resolved: true\n        http_config:\n          authorization:\n            type: Bearer\n            credentials_file: {d}/am-token\n"
        ),
    )
    .unwrap();
    let am = Served(
        Command::new(bin)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={d}/am-data"))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let am_url = format!("http://127.0.0.1:{am_port}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    while !http
        .get(format!("{am_url}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let starts = chrono::Utc::now().to_rfc3339();
    let pod = "llama-7c6d9b8f4d-tq8nj";
    let alerts = vec![
        json!({
            "labels": { "alertname": "GPUXidErrors", "namespace": "ai", "cluster": "aks-eu-west", "node": "gpu-node-3", "gpu": "2", "severity": "critical" },
            "annotations": { "summary": "NVRM Xid 79: GPU has fallen off the bus" }, "startsAt": starts
        }),
        json!({
            "labels": { "alertname": "KubePodCrashLooping", "namespace": "ai", "cluster": "aks-eu-west", "pod": pod, "severity": "warning" },
            "annotations": { "summary": format!("{pod} is crash looping") }, "startsAt": starts
        }),
    ];
    let r = http
        .post(format!("{am_url}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "alertmanager refused the alerts: {}",
        r.status()
    );

    eventually("both groups posted to their runbook channels", || {
        let posts = fake.by_method("chat.postMessage");
        posts.iter().any(|p| p["channel"] == "#gpu-oncall")
            && posts.iter().any(|p| p["channel"] == "#deploys")
    })
    .await;
    let card = posted(&fake, "the GPU group's plan card", |p| {
        p["channel"] == "#gpu-oncall" && approval_id_in(p).is_some()
    })
    .await;
    assert!(card.to_string().contains("gpu-rebalance"), "{card}");
    // Alertmanager re-sends groups every group_interval: duplicates, not new investigations.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = metrics(&http, &url).await;
    assert!(
        metrics.contains("medic_investigations_started_total{origin=\"alertmanager\"} 2"),
        "{metrics}"
    );
    drop(am);
    drop(served);
}

/// A runbook that lists low-risk playbooks under `preapprove`, and a policy whose
/// `auto_approve` rule allows them: the alert's plan runs without a human, as the rule's
/// identity, and the audit log records the decision as automatic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_preapproved_runbook_plan_runs_without_a_human_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, slack_addr) = fake_slack().await;
    write_slack_secrets(dir.path());
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("am-token"), "am-7c1f0e").unwrap();
    let bundle = dir.path().join("bundle");
    copy_dir(
        &root().join("evals/scenarios/failing-liveness-probe-restarts"),
        &bundle,
    );
    std::fs::write(
        bundle.join("policy.yaml"),
        "version: 1\nexpiry: 15m\nroles:\n  - name: sre\n    members: [\"group:sre\"]\n    max_risk: high\nauto_approve:\n  - runbook: gateway-probe-failures\n    playbooks: [rollout-restart, scale]\n    clusters: [\"*\"]\n    namespaces: [api]\n    max_risk: low\n    run_as: alice\n",
    )
    .unwrap();
    let runbooks = dir.path().join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    std::fs::write(
        runbooks.join("gateway-probe-failures.yaml"),
        "name: gateway-probe-failures\ndescription: Probe failures and restarts of the API gateway.\nmatch:\n  alerts: [KubeDeploymentReplicasMismatch]\ninvestigation:\n  - Check probe failures, restarts and CPU throttling of the Deployment in the alert.\nchannel: { kind: slack, target: \"#api-oncall\" }\napprovers: { groups: [sre], users: [], min: 1 }\nplaybooks: [rollout-restart, scale]\npreapprove: [rollout-restart, scale]\n",
    )
    .unwrap();
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  slack:\n    signing_secret: {{ file: {d}/signing-secret }}\n    bot_token: {{ file: {d}/bot-token }}\n    api_base_url: http://{slack_addr}/api\n  alerts:\n    alertmanager_token: {{ file: {d}/am-token }}\n    runbooks_dir: {d}/runbooks\n  shutdown_grace_secs: 1\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (served, url) = start_serve(&config, &data, &bundle);

    let alert = json!({
        "version": "4", "groupKey": "{}:{alertname=\"KubeDeploymentReplicasMismatch\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "medic",
        "groupLabels": {"alertname": "KubeDeploymentReplicasMismatch"},
        "commonLabels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "api", "cluster": "eks-api-usw2", "deployment": "graphql-gateway"},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "api", "cluster": "eks-api-usw2", "deployment": "graphql-gateway", "severity": "warning"},
            "annotations": {"summary": "Deployment api/graphql-gateway has had 1 of 3 replicas ready for 15 minutes"},
            "startsAt": "2026-10-15T18:05:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "fp-gw-1"
        }]
    });
    let r = reqwest::Client::new()
        .post(format!("{url}/alerts/alertmanager"))
        .bearer_auth("am-7c1f0e")
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    posted(&fake, "the execution result in #api-oncall", |p| {
        p["channel"] == "#api-oncall" && text_starts(p, "Execution ")
    })
    .await;
    drop(served);

    let records = audit_records(&data.join("audit.jsonl"));
    let decision = records
        .iter()
        .find(|r| r["kind"] == "decision")
        .expect("a decision record");
    assert_eq!(decision["actor"], "runbook:gateway-probe-failures");
    assert_eq!(decision["payload"]["automatic"], "gateway-probe-failures");
    assert_eq!(decision["payload"]["identity"], "alice");
    let applied: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "step_applied")
        .collect();
    assert!(!applied.is_empty(), "the plan ran");
    assert!(
        applied
            .iter()
            .all(|r| r["payload"]["as_user"] == "alice@corp.example"),
        "executed as the rule's identity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_maps_a_new_approver_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, slack_addr) = fake_slack().await;
    write_slack_secrets(dir.path());
    let config = dir.path().join("medic.yaml");
    let server_section = slack_section(dir.path(), slack_addr);
    // Bob has no Slack id yet: his clicks come from an unmapped user.
    std::fs::write(&config, &server_section).unwrap();
    let data = dir.path().join("data");
    let (served, url) = start_serve(&config, &data, &root().join("sandbox/bundles/gpu-xid79"));
    let http = reqwest::Client::new();
    let (_, approval) = carol_asks(&http, &url, &fake).await;
    let iurl = format!("{url}/slack/interactivity");
    assert_eq!(
        signed(&http, &iurl, click("U01ALICE", &approval, 1), true).await,
        200
    );
    assert_eq!(
        signed(&http, &iurl, click("U02BOB", &approval, 2), true).await,
        200
    );
    eventually("bob's refusal as an unmapped user", || {
        fake.by_method("chat.postEphemeral")
            .iter()
            .any(|e| e["user"] == "U02BOB")
    })
    .await;

    // medic.yaml now maps bob's Slack id; SIGHUP, no restart.
    std::fs::write(&config, format!("{server_section}{BOB_ON_SLACK}")).unwrap();
    let log = data.join("audit.jsonl");
    let hup = Command::new("kill")
        .args(["-HUP", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually("the reload in the audit log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("config_reloaded"))
    })
    .await;
    let reload = audit_records(&log)
        .into_iter()
        .find(|r| r["kind"] == "config_reloaded")
        .unwrap();
    assert_eq!(reload["payload"]["changed"], json!(["bob"]), "{reload}");
    assert_eq!(reload["payload"]["added"], json!([]), "{reload}");

    // The same click now counts: the two-person rule is met and the plan runs as bob.
    assert_eq!(
        signed(&http, &iurl, click("U02BOB", &approval, 3), true).await,
        200
    );
    posted(&fake, "the result in the thread", |p| {
        text_starts(p, "Execution executed")
    })
    .await;
    drop(served);
    let verify = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["audit", "verify", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(
        audit_records(&log)
            .iter()
            .filter(|r| r["kind"] == "step_applied")
            .all(|r| r["payload"]["as_user"] == "bob@corp.example")
    );
}
