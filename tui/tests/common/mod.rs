//! Fixtures shared by the screen and key tests: a fixed clock, options, and event scripts
//! written for these tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use medic_agent::protocol::{
    ApprovalStatus, Confidence, Event, EvidenceRef, Finding, ObjectRef, PlanView, PlaybookRef,
    Proposal, StopReason, Usage,
};
use medic_tui::{App, TuiOptions, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 20, 0, 0).unwrap()
}

pub fn opts(identity: &str) -> TuiOptions {
    let mut o = TuiOptions::new(identity);
    o.cluster = "prod-eu".into();
    o.namespace = "shop".into();
    o.model = "openai/gpt-4o-mini".into();
    o.clusters = vec!["prod-eu".into(), "prod-us".into()];
    o.namespaces = vec!["shop".into(), "ai".into()];
    o.models = vec![
        "openai/gpt-4o-mini".into(),
        "ollama/qwen2.5-coder:1.5b".into(),
    ];
    o
}

pub fn app(identity: &str) -> App {
    App::new(&opts(identity), now())
}

pub fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    t
}

fn api_ref(kind: &str, name: &str) -> ObjectRef {
    ObjectRef {
        cluster: "prod-eu".into(),
        kind: kind.into(),
        namespace: Some("shop".into()),
        name: name.into(),
        uid: None,
    }
}

pub const ANSWER: &str = "## Root cause\n\nThe `api` Deployment rolled out image **v2.3.1** at 19:42; its pods \
crash with `OOMKilled` (exit 137) because the new build loads the catalogue into memory.\n\n\
- 3 of 3 new pods in CrashLoopBackOff\n- the previous ReplicaSet `api-7d9f` was healthy\n  - 0 restarts in 24h\n\n\
| Pod | Status | Restarts |\n|---|---|--:|\n| api-5c8b-x2 | CrashLoopBackOff | 12 |\n| api-5c8b-q9 | CrashLoopBackOff | 11 |\n\n\
```yaml\nresources:\n  limits:\n    memory: 256Mi\n```\n\n\
1. Roll back to revision 41 (proposed)\n2. Raise the limit in the next release\n";

pub fn investigation() -> Vec<Event> {
    let mut events = vec![
        Event::SessionStarted { session_id: "s-7f3a".into(), model: "openai/gpt-4o-mini".into(), tool_mode: "native".into() },
        Event::ToolCallStarted { call_id: "call_1".into(), tool: "k8s_list".into(), args: json!({"kind": "Pod", "namespace": "shop", "label_selector": "app=api"}) },
        Event::ToolCallFinished { call_id: "call_1".into(), duration_ms: 42, tokens: 380, ok: true, error: None, summary: "6 pods: 3 Running, 3 CrashLoopBackOff".into() },
        Event::ToolCallStarted { call_id: "call_2".into(), tool: "pod_logs".into(), args: json!({"namespace": "shop", "pod": "api-5c8b-x2", "previous": true, "tail": 200}) },
        Event::ToolCallFinished { call_id: "call_2".into(), duration_ms: 1830, tokens: 0, ok: false, error: Some("container \"api\" in pod \"api-5c8b-x2\" has no previous instance; retry without previous=true".into()), summary: "error".into() },
        Event::ToolCallStarted { call_id: "call_3".into(), tool: "rollout_history".into(), args: json!({"namespace": "shop", "name": "api"}) },
        Event::ToolCallFinished { call_id: "call_3".into(), duration_ms: 65, tokens: 512, ok: true, error: None, summary: "revision 42 (v2.3.1, 19:42) ← 41 (v2.3.0)".into() },
        Event::TokenUsage(Usage { input_tokens: 4120, output_tokens: 388, model_calls: 3, tool_calls: 3, cost_usd: Some(0.0031), wall_ms: 9100 }),
        Event::Finding(Finding {
            id: "bad-rollout:Deployment/shop/api".into(),
            summary: "api rollout 42 is crash-looping (OOMKilled)".into(),
            root_cause: "image v2.3.1 needs more than the 256Mi limit; revision 41 was healthy".into(),
            confidence: Confidence::HIGH,
            evidence: vec![
                EvidenceRef::ToolCall { call_id: "call_1".into(), tool: "k8s_list".into() },
                EvidenceRef::Source(medic_tools::EvidenceRef::Object(api_ref("ReplicaSet", "api-5c8b"))),
                EvidenceRef::Quote { text: "Last State: Terminated, Reason: OOMKilled, Exit Code: 137".into() },
            ],
            suggests: vec![PlaybookRef { name: "rollback".into(), params: json!({"revision": 41}), target: Some(api_ref("Deployment", "api")) }],
            source: "analyzer:bad-rollout".into(),
        }),
    ];
    // The answer arrives in small pieces, as a model streams it.
    let chars: Vec<char> = ANSWER.chars().collect();
    for chunk in chars.chunks(17) {
        events.push(Event::AnswerDelta {
            text: chunk.iter().collect(),
        });
    }
    events
}

pub fn done() -> Event {
    Event::Done {
        usage: Usage {
            input_tokens: 5210,
            output_tokens: 642,
            model_calls: 4,
            tool_calls: 3,
            cost_usd: Some(0.0042),
            wall_ms: 12400,
        },
        stop_reason: StopReason::Answered,
    }
}

pub fn plan() -> PlanView {
    PlanView {
        plan_id: "plan-91c2".into(),
        playbook: "rollback".into(),
        cluster: "prod-eu".into(),
        title: "Roll back Deployment shop/api to revision 41 (v2.3.0)".into(),
        rationale: "Revision 42 (v2.3.1) is failing; revision 41 is the last known-good template.".into(),
        risk: "high".into(),
        blast_radius: "6 pods of shop/api (100% of replicas), rolling".into(),
        steps: vec![
            "Patch Deployment shop/api pod template to revision 41 (pod-template-hash 7d9f)".into(),
            "Wait for rollout to complete (maxUnavailable 1)".into(),
        ],
        diff: "--- a/apps/v1/Deployment/shop/api\n+++ b/apps/v1/Deployment/shop/api\n@@ spec.template @@\n   metadata:\n     labels:\n-      pod-template-hash: 5c8b\n+      pod-template-hash: 7d9f\n   spec:\n     containers:\n-    - image: registry.example/shop/api:v2.3.1\n+    - image: registry.example/shop/api:v2.3.0\n".into(),
        post_checks: vec!["3/3 replicas Ready within 5m".into(), "no OOMKilled restarts for 2m".into()],
        undo: vec!["Patch Deployment shop/api back to revision 42 (pod-template-hash 5c8b)".into()],
        hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
    }
}

pub fn proposal_events() -> Vec<Event> {
    let p = plan();
    vec![
        Event::Proposal(Proposal {
            id: "prop-1".into(),
            playbook: "rollback".into(),
            params: json!({"revision": 41}),
            target: Some(api_ref("Deployment", "api")),
            rationale: "Revision 41 ran for 6 days without restarts; 42 OOMs on start.".into(),
            finding_ids: vec!["bad-rollout:Deployment/shop/api".into()],
        }),
        Event::PlanReady {
            proposal_id: "prop-1".into(),
            plan: p.clone(),
        },
        Event::ApprovalRequested {
            approval_id: "apr-33".into(),
            proposal_id: "prop-1".into(),
            plan_hash: p.hash.clone(),
            summary: "Roll shop/api back to v2.3.0; two approvals from sre-oncall or sre-leads."
                .into(),
            approvers: vec!["sre-oncall".into(), "sre-leads".into()],
        },
    ]
}

pub fn status(state: &str, approved_by: &[&str], refusal: Option<&str>) -> ApprovalStatus {
    ApprovalStatus {
        approval_id: "apr-33".into(),
        proposal_id: "prop-1".into(),
        plan_hash: plan().hash,
        state: state.into(),
        approved_by: approved_by.iter().map(|s| s.to_string()).collect(),
        needed: 2,
        waiting_for: if approved_by.len() < 2 {
            vec!["1 more from sre-leads".into()]
        } else {
            vec![]
        },
        expires_at: (now() + Duration::seconds(12 * 60 + 5)).to_rfc3339(),
        refusal: refusal.map(str::to_owned),
        requested_by: None,
    }
}

/// A session with an answer, a plan, and alice's first approval (from Slack).
pub fn awaiting_second(identity: &str) -> App {
    let mut a = app(identity);
    for e in investigation() {
        a.on_event(e);
    }
    a.on_event(done());
    for e in proposal_events() {
        a.on_event(e);
    }
    a.on_event(Event::ApprovalDecided {
        approval_id: "apr-33".into(),
        actor: "alice".into(),
        decision: medic_agent::protocol::ApprovalVerdict::Approve,
        reason: Some("LGTM from Slack".into()),
    });
    a.on_event(Event::ApprovalStatus(status("pending", &["alice"], None)));
    a
}
