//! Shared test parts: a local stand-in for Slack's Web API that records calls, a test
//! engine at the engine boundary (emitting realistic event sequences and running the
//! approval rules the real engine delegates to medic-approvals), and helpers to start the
//! server on 127.0.0.1 and sign requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use medic_agent::protocol::{
    ApprovalStatus, ApprovalVerdict, Confidence, Event, Finding, Op, PlanView, Proposal,
    StopReason, Usage,
};
use medic_server::{
    DecisionReply, DecisionRequest, Engine, Server, ServerConfig, SessionLink, SessionRequest,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// One call medic made to the fake Slack.
#[derive(Debug, Clone)]
pub struct SlackCall {
    pub method: String,
    pub body: Value,
}

/// A local Slack Web API that records every call.
#[derive(Clone, Default)]
pub struct FakeSlack {
    pub calls: Arc<Mutex<Vec<SlackCall>>>,
    seq: Arc<Mutex<u64>>,
}

impl FakeSlack {
    pub async fn start() -> (FakeSlack, String) {
        let fake = FakeSlack::default();
        let app = Router::new()
            .route("/api/{method}", post(slack_method))
            .with_state(fake.clone());
        let addr = serve(app).await;
        (fake, format!("http://{addr}/api"))
    }

    pub fn calls(&self) -> Vec<SlackCall> {
        self.calls.lock().unwrap().clone()
    }

    pub fn by_method(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .map(|c| c.body)
            .collect()
    }

    /// All text medic sent (JSON of every call), for substring checks.
    pub fn all_text(&self) -> String {
        self.calls()
            .iter()
            .map(|c| c.body.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn slack_method(
    State(fake): State<FakeSlack>,
    UrlPath(method): UrlPath<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let ts = {
        let mut s = fake.seq.lock().unwrap();
        *s += 1;
        format!("1700000000.{:06}", *s)
    };
    fake.calls.lock().unwrap().push(SlackCall {
        method: method.clone(),
        body: body.clone(),
    });
    // Slack answers with the channel id; names like `#gpu-oncall` map to a stable fake id.
    let channel = body["channel"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_uppercase();
    match method.as_str() {
        "chat.postMessage" => Json(json!({ "ok": true, "channel": channel, "ts": ts })),
        "chat.update" => Json(json!({ "ok": true, "channel": body["channel"], "ts": body["ts"] })),
        "chat.postEphemeral" => Json(json!({ "ok": true, "message_ts": ts })),
        _ => Json(json!({ "ok": false, "error": "unknown_method" })),
    }
}

/// Serves `app` on an ephemeral loopback port.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// Waits (polling) until `cond` holds; panics after a generous deadline so a hang fails.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[derive(Debug, Clone)]
struct Pending {
    events: mpsc::Sender<Event>,
    requester: String,
    proposal_id: String,
    status: ApprovalStatus,
}

/// What the test engine saw.
#[derive(Debug, Default)]
pub struct EngineLog {
    pub started: Vec<SessionRequest>,
    pub decisions: Vec<DecisionRequest>,
    pub cancels: Vec<String>,
}

/// A test double of the engine boundary: each session emits tool calls, token usage, a
/// finding, a proposal, its plan and an approval request, then `Done`; decisions follow
/// the policy rules (requester and medic cannot approve, only `eligible` may, `needed`
/// distinct approvals, a deny wins, the first valid decision wins), and approval triggers
/// execution events. `hold` keeps investigations running until released (shutdown tests).
#[derive(Clone)]
pub struct TestEngine {
    pub log: Arc<Mutex<EngineLog>>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    pub eligible: Vec<String>,
    pub needed: u32,
    pub tokens_per_session: u64,
    pub hold: Option<Arc<tokio::sync::Notify>>,
    pub cluster_text: String,
    counter: Arc<Mutex<u64>>,
}

impl TestEngine {
    pub fn new(eligible: &[&str], needed: u32) -> Self {
        TestEngine {
            log: Arc::default(),
            pending: Arc::default(),
            eligible: eligible.iter().map(|s| (*s).to_owned()).collect(),
            needed,
            tokens_per_session: 1200,
            hold: None,
            cluster_text: "OOMKilled".into(),
            counter: Arc::default(),
        }
    }

    pub fn started(&self) -> usize {
        self.log.lock().unwrap().started.len()
    }

    pub fn decisions(&self) -> usize {
        self.log.lock().unwrap().decisions.len()
    }
}

fn plan(proposal_id: &str, text: &str) -> PlanView {
    PlanView {
        plan_id: format!("plan-{proposal_id}"),
        playbook: "raise-memory-limit".into(),
        cluster: "prod-eu".into(),
        title: "Raise shop/api memory limit to 512Mi".into(),
        rationale: "OOMKilled 4 times in 10 minutes at 256Mi; 512Mi covers the observed peak."
            .into(),
        risk: "medium".into(),
        blast_radius: "3 pods of shop/api (100% of replicas, rolling)".into(),
        steps: vec!["patch Deployment shop/api container api memory limit 256Mi → 512Mi".into()],
        diff: format!(
            "--- Deployment shop/api\n+++ Deployment shop/api (dry-run)\n-            memory: 256Mi\n+            memory: 512Mi\n# note from cluster: {text}"
        ),
        post_checks: vec![
            "rollout of shop/api completes within 5m".into(),
            "no OOMKilled restarts for 5m".into(),
        ],
        undo: vec!["patch memory limit back to 256Mi".into()],
        hash: "9f2c4e1d0a7b3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6".into(),
    }
}

impl Engine for TestEngine {
    async fn start(&self, request: SessionRequest) -> medic_server::Result<SessionLink> {
        let n = {
            let mut c = self.counter.lock().unwrap();
            *c += 1;
            *c
        };
        self.log.lock().unwrap().started.push(request.clone());
        let (ops_tx, mut ops_rx) = mpsc::channel::<Op>(16);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(64);
        let approval_id = format!("ap-{n}");
        let proposal_id = format!("pr-{n}");
        let pending = self.pending.clone();
        let log = self.log.clone();
        let needed = self.needed;
        let tokens = self.tokens_per_session;
        let hold = self.hold.clone();
        let text = self.cluster_text.clone();
        let requester = request.requester.clone();
        tokio::spawn(async move {
            let ev = ev_tx;
            let _ = ev
                .send(Event::SessionStarted {
                    session_id: request.key.clone(),
                    model: "scripted/test".into(),
                    tool_mode: "native".into(),
                })
                .await;
            for (i, tool) in ["k8s_list", "logs_tail"].iter().enumerate() {
                let call_id = format!("call_{i}");
                let _ = ev
                    .send(Event::ToolCallStarted {
                        call_id: call_id.clone(),
                        tool: (*tool).into(),
                        args: json!({"namespace": "shop"}),
                    })
                    .await;
                let _ = ev
                    .send(Event::ToolCallFinished {
                        call_id,
                        duration_ms: 12,
                        tokens: 300,
                        ok: true,
                        error: None,
                        summary: format!("{tool}: 3 items"),
                    })
                    .await;
            }
            let _ = ev
                .send(Event::TokenUsage(Usage {
                    input_tokens: tokens / 2,
                    output_tokens: tokens / 4,
                    model_calls: 1,
                    tool_calls: 2,
                    cost_usd: None,
                    wall_ms: 400,
                }))
                .await;
            if let Some(h) = hold {
                // Wait for release or a cancel.
                tokio::select! {
                    _ = h.notified() => {}
                    op = ops_rx.recv() => {
                        if let Some(Op::Cancel) = op {
                            log.lock().unwrap().cancels.push(request.key.clone());
                            let _ = ev.send(Event::Done { usage: Usage { input_tokens: tokens / 2, output_tokens: tokens / 4, ..Usage::default() }, stop_reason: StopReason::Cancelled }).await;
                            return;
                        }
                    }
                }
            }
            let _ = ev
                .send(Event::Finding(Finding {
                    id: "crashloop:Pod/shop/api-7d9f".into(),
                    summary: format!("api-7d9f is in CrashLoopBackOff ({text})"),
                    root_cause: "container `api` exceeds its 256Mi memory limit".into(),
                    confidence: Confidence::HIGH,
                    evidence: vec![],
                    suggests: vec![],
                    source: "analyzer:crashloop".into(),
                }))
                .await;
            let _ = ev
                .send(Event::Proposal(Proposal {
                    id: proposal_id.clone(),
                    playbook: "raise-memory-limit".into(),
                    params: json!({"container": "api", "memory": "512Mi"}),
                    target: None,
                    rationale: "the container is OOMKilled at its limit".into(),
                    finding_ids: vec!["crashloop:Pod/shop/api-7d9f".into()],
                }))
                .await;
            let p = plan(&proposal_id, &text);
            let _ = ev
                .send(Event::PlanReady {
                    proposal_id: proposal_id.clone(),
                    plan: p.clone(),
                })
                .await;
            let status = ApprovalStatus {
                approval_id: approval_id.clone(),
                proposal_id: proposal_id.clone(),
                plan_hash: p.hash.clone(),
                state: "pending".into(),
                approved_by: vec![],
                needed,
                waiting_for: vec!["sre".into()],
                expires_at: "2026-11-21T23:00:00Z".into(),
                refusal: None,
                requested_by: None,
            };
            pending.lock().unwrap().insert(
                approval_id.clone(),
                Pending {
                    events: ev.clone(),
                    requester,
                    proposal_id: proposal_id.clone(),
                    status,
                },
            );
            let _ = ev
                .send(Event::ApprovalRequested {
                    approval_id: approval_id.clone(),
                    proposal_id: proposal_id.clone(),
                    plan_hash: p.hash.clone(),
                    summary: p.title.clone(),
                    approvers: vec!["sre".into()],
                })
                .await;
            let _ = ev
                .send(Event::AnswerDelta {
                    text: format!("The api container is OOMKilled ({text}); raise its limit."),
                })
                .await;
            let _ = ev
                .send(Event::Done {
                    usage: Usage {
                        input_tokens: tokens * 3 / 4,
                        output_tokens: tokens / 4,
                        model_calls: 2,
                        tool_calls: 2,
                        cost_usd: None,
                        wall_ms: 900,
                    },
                    stop_reason: StopReason::Answered,
                })
                .await;
            // The session stays open (the engine keeps `ev` in `pending`) until executed;
            // cancels after Done are recorded.
            while let Some(op) = ops_rx.recv().await {
                if op == Op::Cancel {
                    log.lock().unwrap().cancels.push(request.key.clone());
                }
            }
        });
        Ok(SessionLink {
            ops: ops_tx,
            events: ev_rx,
        })
    }

    async fn decide(&self, d: DecisionRequest) -> medic_server::Result<DecisionReply> {
        self.log.lock().unwrap().decisions.push(d.clone());
        let mut map = self.pending.lock().unwrap();
        let Some(p) = map.get_mut(&d.approval_id) else {
            return Ok(DecisionReply::Unknown);
        };
        if p.status.state != "pending" {
            return Ok(DecisionReply::Refused {
                reason: format!("approval {} is already {}", d.approval_id, p.status.state),
                status: Some(p.status.clone()),
            });
        }
        if d.actor == p.requester {
            let reason = format!("{} requested this plan and cannot approve it", d.actor);
            p.status.refusal = Some(reason.clone());
            return Ok(DecisionReply::Refused {
                reason,
                status: None,
            });
        }
        if !self.eligible.contains(&d.actor) {
            return Ok(DecisionReply::Refused {
                reason: format!(
                    "{} is not in a role that may approve raise-memory-limit in prod-eu",
                    d.actor
                ),
                status: None,
            });
        }
        if d.verdict == ApprovalVerdict::Deny {
            let mut p = map.remove(&d.approval_id).unwrap();
            p.status.state = "denied".into();
            let s = p.status.clone();
            tokio::spawn(async move {
                let _ = p.events.send(Event::ApprovalStatus(p.status.clone())).await;
            });
            return Ok(DecisionReply::Accepted(s));
        }
        if !p.status.approved_by.contains(&d.actor) {
            p.status.approved_by.push(d.actor.clone());
        }
        if (p.status.approved_by.len() as u32) < p.status.needed {
            return Ok(DecisionReply::Accepted(p.status.clone()));
        }
        // Threshold met: approved, then executed; dropping `p` afterwards closes the session.
        let mut p = map.remove(&d.approval_id).unwrap();
        p.status.state = "approved".into();
        let approved = p.status.clone();
        let approved_copy = approved.clone();
        let actor = d.actor.clone();
        tokio::spawn(async move {
            let ev = &p.events;
            let _ = ev
                .send(Event::ApprovalDecided {
                    approval_id: approved.approval_id.clone(),
                    actor,
                    decision: ApprovalVerdict::Approve,
                    reason: None,
                })
                .await;
            let _ = ev.send(Event::ApprovalStatus(approved.clone())).await;
            let mut s = approved.clone();
            s.state = "executing".into();
            let _ = ev.send(Event::ApprovalStatus(s.clone())).await;
            let _ = ev
                .send(Event::ExecutionStep {
                    proposal_id: p.proposal_id.clone(),
                    step: 0,
                    description: "patch Deployment shop/api memory 512Mi".into(),
                    status: "ok".into(),
                })
                .await;
            let _ = ev
                .send(Event::ExecutionStep {
                    proposal_id: p.proposal_id.clone(),
                    step: 1,
                    description: "post-check: rollout complete".into(),
                    status: "ok".into(),
                })
                .await;
            s.state = "executed".into();
            let _ = ev.send(Event::ApprovalStatus(s)).await;
        });
        Ok(DecisionReply::Accepted(approved_copy))
    }
}

/// Identities used across the tests.
pub const IDENTITIES: &str = r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U0ALICE, teams: aad-alice }
- { name: bob, kube_user: bob@corp.example, groups: [sre], slack: U0BOB, teams: aad-bob }
- { name: carol, kube_user: carol@corp.example, groups: [platform-leads], slack: U0CAROL }
- { name: dave, kube_user: dave@corp.example, groups: [dev], slack: U0DAVE }
"#;

/// A configuration with secrets written to files under `dir`.
pub fn config(dir: &Path, slack_api: Option<&str>) -> ServerConfig {
    let write = |name: &str, v: &str| {
        let p = dir.join(name);
        std::fs::write(&p, v).unwrap();
        p
    };
    let mut cfg = ServerConfig {
        identities: serde_yaml::from_str(IDENTITIES).unwrap(),
        state_dir: Some(dir.join("state")),
        shutdown_grace_secs: 2,
        ..ServerConfig::default()
    };
    if let Some(api) = slack_api {
        cfg.slack = Some(medic_server::SlackConfig {
            signing_secret: medic_server::SecretRef::file(write("slack-signing", SLACK_SECRET)),
            bot_token: medic_server::SecretRef::file(write("slack-token", "xoxb-test")),
            api_base_url: api.to_owned(),
        });
    }
    cfg.alerts.alertmanager_token = medic_server::SecretRef::file(write("am-token", AM_TOKEN));
    cfg.alerts.pagerduty_secrets =
        vec![medic_server::SecretRef::file(write("pd-secret", PD_SECRET))];
    cfg
}

pub const SLACK_SECRET: &str = "test-signing-secret-0123456789";
pub const AM_TOKEN: &str = "am-bearer-token-for-tests";
pub const PD_SECRET: &str = "pd-secret-current";

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<medic_server::Result<medic_server::ShutdownReport>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn shutdown(mut self) -> medic_server::ShutdownReport {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done.await.unwrap().unwrap()
    }
}

pub async fn start(cfg: ServerConfig, engine: impl Engine) -> Running {
    let server = Server::new(cfg, engine).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let s = server.clone();
    let done = tokio::spawn(async move {
        s.serve(listener, async move {
            let _ = rx.await;
        })
        .await
    });
    Running {
        addr,
        server,
        stop: Some(stop),
        done,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request signed the way Slack signs it, `skew` seconds in the past.
pub fn slack_request(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    content_type: &str,
    skew: i64,
) -> reqwest::RequestBuilder {
    let ts = (now() - skew).to_string();
    let sig = medic_server::slack::slack_signature(SLACK_SECRET.as_bytes(), &ts, body.as_bytes());
    http.post(url)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body.to_owned())
}

/// A Slack `app_mention` event callback.
pub fn mention(event_id: &str, user: &str, text: &str) -> String {
    json!({
        "type": "event_callback", "team_id": "T1", "event_id": event_id, "event_time": now(),
        "event": { "type": "app_mention", "user": user, "text": text, "channel": "C0INCIDENT", "ts": "1699999999.000100" }
    })
    .to_string()
}

/// A Slack `block_actions` click as the interactivity form body.
pub fn click_body(user: &str, action: &str, approval_id: &str) -> String {
    click_body_at(user, action, approval_id, "1700000001.1")
}

/// A click with its own `action_ts` (two clicks of one button differ only there).
pub fn click_body_at(user: &str, action: &str, approval_id: &str, action_ts: &str) -> String {
    let payload = json!({
        "type": "block_actions", "user": { "id": user }, "channel": { "id": "C0INCIDENT" },
        "container": { "type": "message", "message_ts": "1700000000.000002", "channel_id": "C0INCIDENT", "thread_ts": "1699999999.000100" },
        "actions": [{ "action_id": action, "value": approval_id, "type": "button", "action_ts": action_ts }]
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}
