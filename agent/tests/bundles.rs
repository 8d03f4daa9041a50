//! Analyzers-only investigations of the starter bundles, end to end through the sandbox
//! (real kube client, real HTTP), and the scripted model on top of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_agent::model::{ModelConfig, ToolMode};
use medic_agent::protocol::{Event, EvidenceRef, Op, StopReason};
use medic_agent::scripted::{Script, ScriptStep, ScriptedServer};
use medic_agent::{RigClient, Session, SessionConfig};
use medic_sandbox::{Bundle, SandboxHandle};
use medic_tools::{Registry, ToolContext};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

struct Env {
    sandbox: SandboxHandle,
    ctx: ToolContext,
    bundle: Bundle,
}

async fn start(name: &str) -> Env {
    start_in("../sandbox/bundles", name).await
}

/// A bundle under `folder` (relative to this crate), replayed.
async fn start_in(folder: &str, name: &str) -> Env {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(folder)
        .join(name);
    let (sandbox, ctx, bundle) = common::replay::replay(&dir).await;
    Env {
        sandbox,
        ctx,
        bundle,
    }
}

fn analyzers_only(env: &Env) -> Session {
    Session::new(
        Registry::standard(),
        env.ctx.clone(),
        None,
        SessionConfig {
            probe_cache: None,
            ..SessionConfig::default()
        },
    )
}

fn question() -> Op {
    Op::UserQuestion {
        text: "What is wrong?".into(),
    }
}

/// No request the investigation made may change anything.
fn assert_read_only(env: &Env) {
    for r in env.sandbox.request_log() {
        assert!(
            r.method == "GET",
            "investigation made a mutating request: {r:?}"
        );
    }
}

/// Every `ToolCallFinished` is followed at once by the call's `ToolOutput`.
fn assert_outputs_follow_finished_calls(events: &[Event]) -> usize {
    let mut n = 0;
    for (i, e) in events.iter().enumerate() {
        if let Event::ToolCallFinished { call_id, .. } = e {
            match events.get(i + 1) {
                Some(Event::ToolOutput {
                    call_id: id,
                    output,
                    truncated,
                }) => {
                    assert_eq!(id, call_id);
                    assert!(!output.is_empty(), "{call_id}");
                    assert!(output.len() <= medic_agent::protocol::TOOL_OUTPUT_PREVIEW_BYTES);
                    assert!(!*truncated || output.len() > 1000);
                    n += 1;
                }
                other => panic!("after ToolCallFinished {call_id}: {other:?}"),
            }
        }
    }
    n
}

#[tokio::test]
async fn gpu_xid79_analyzers_find_the_lost_gpu() {
    let env = start("gpu-xid79").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    assert_eq!(out.stop_reason, Some(StopReason::AnalyzersOnly));
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    // Analyzer-only runs show what each collection call read, too.
    assert_eq!(
        assert_outputs_follow_finished_calls(&events),
        out.usage.tool_calls as usize
    );
    // The Xid explains the crash-looping llama pod on that node: only the root cause's
    // playbook is proposed, not a rollback or restart of the symptom.
    assert_eq!(out.proposals.len(), 1, "{:#?}", out.proposals);
    let symptom = out
        .findings
        .iter()
        .find(|f| f.id.starts_with("crashloop:"))
        .unwrap_or_else(|| panic!("{:#?}", out.findings));
    assert!(symptom.suggests.is_empty(), "{symptom:#?}");
    assert!(symptom.root_cause.contains("symptom of"), "{symptom:#?}");
    let f = out
        .findings
        .iter()
        .find(|f| f.id.contains("Node/gpu-node-3"))
        .unwrap_or_else(|| panic!("{:#?}", out.findings));
    assert!(
        f.suggests.iter().any(|s| s.name == "gpu-rebalance"),
        "{f:#?}"
    );
    let p = &out.proposals[0];
    assert_eq!(p.playbook, "gpu-rebalance", "{:#?}", out.proposals);
    let t = p.target.as_ref().unwrap();
    assert_eq!(
        (t.cluster.as_str(), t.kind.as_str(), t.name.as_str()),
        ("aks-eu-west", "Node", "gpu-node-3")
    );
    assert_read_only(&env);
}

/// Pod listings made so far, and how many of them were cluster-wide.
fn pod_lists(env: &Env) -> (usize, usize) {
    let lists: Vec<_> = env
        .sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .collect();
    let all = lists.iter().filter(|r| r.namespace.is_empty()).count();
    (lists.len(), all)
}

#[tokio::test]
async fn one_investigation_lists_the_pods_once() {
    // gpu-xid79 has GPU nodes: pods, node requests and the GPU view all need its pods.
    let env = start("gpu-xid79").await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    assert!(
        out.findings
            .iter()
            .any(|f| f.id.contains("Node/gpu-node-3")),
        "{:#?}",
        out.findings
    );
    assert_eq!(pod_lists(&env), (1, 1));
    // The next investigation reads live again, once.
    let (tx, _rx) = mpsc::unbounded_channel();
    analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    assert_eq!(pod_lists(&env), (2, 2));
}

#[tokio::test]
async fn bad_rollout_analyzers_propose_a_rollback() {
    let env = start("bad-rollout").await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    let rb = out
        .proposals
        .iter()
        .find(|p| p.playbook == "rollback")
        .unwrap_or_else(|| panic!("{:#?}\n{:#?}", out.findings, out.proposals));
    let t = rb.target.as_ref().unwrap();
    assert_eq!(
        (
            t.cluster.as_str(),
            t.kind.as_str(),
            t.namespace.as_deref(),
            t.name.as_str()
        ),
        ("gke-prod-eu", "Deployment", Some("payments"), "api")
    );
    // The last healthy ReplicaSet, pinned by revision and template hash.
    assert_eq!(
        rb.params,
        json!({"to_revision": 6, "pod_template_hash": "6c8d7f9b54"})
    );
    // Only the rollout's rollback: the crash-looping pods are its symptoms.
    assert_eq!(out.proposals.len(), 1, "{:#?}", out.proposals);
    // GitHub names the commit whose title matches the crash (PR #482), not the release
    // commit that was deployed, nor the other commits in the window.
    let f = out
        .findings
        .iter()
        .find(|f| f.id == "bad-rollout:Deployment/payments/api")
        .unwrap();
    let sha = "39b779fc53";
    assert!(
        f.evidence.iter().any(|e| matches!(
            e,
            EvidenceRef::Source(medic_tools::EvidenceRef::GitHub { repo, item, id })
                if repo == "acme-corp/payments-api" && item == "commit" && id.starts_with(sha)
        )),
        "{f:#?}"
    );
    let quote = f
        .evidence
        .iter()
        .find_map(|e| match e {
            EvidenceRef::Quote { text } if text.starts_with("commit ") => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        quote,
        "commit 39b779fc53 \"config: rename retry budget key to payments.retry.budget (#482)\" by Marta Kowalski at 2026-07-08T08:31:17Z"
    );
    assert!(f.root_cause.contains(sha), "{}", f.root_cause);
    assert!(
        f.evidence
            .iter()
            .any(|e| matches!(e, EvidenceRef::ToolCall { tool, .. } if tool == "github")),
        "{f:#?}"
    );
    assert_read_only(&env);
}

#[tokio::test]
async fn a_degraded_argo_application_is_a_symptom_of_its_failing_rollout() {
    let env = start_in("../evals/scenarios", "argocd-degraded-gitops-rollback").await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    let app = out
        .findings
        .iter()
        .find(|f| f.id.starts_with("argocd-degraded:"))
        .unwrap_or_else(|| panic!("{:#?}", out.findings));
    assert!(
        app.root_cause.contains(
            "a symptom of: rollout of recsys/recsys-api revision 9 is failing (0/2 ready)"
        ),
        "{}",
        app.root_cause
    );
    // One proposal: the rollback (a revert of the culprit commit, as the app is GitOps).
    assert_eq!(out.proposals.len(), 1, "{:#?}", out.proposals);
    assert_eq!(
        out.proposals[0].params["git"]["commit"],
        "a41c9e27d3b85f6e0c19a7d42f8b3e6c5d0a9b17"
    );
    assert_read_only(&env);
}

#[tokio::test]
async fn bad_rollout_without_github_still_rolls_back_and_names_no_commit() {
    let mut env = start("bad-rollout").await;
    env.ctx.github = None;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    let f = out
        .findings
        .iter()
        .find(|f| f.id == "bad-rollout:Deployment/payments/api")
        .unwrap();
    assert!(!f.root_cause.contains("commit"), "{}", f.root_cause);
    assert_eq!(out.proposals.len(), 1, "{:#?}", out.proposals);
    assert_eq!(out.proposals[0].playbook, "rollback");
}

#[tokio::test]
async fn eu_failover_analyzers_fail_over_within_the_residency() {
    let env = start("eu-failover").await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let out = analyzers_only(&env)
        .investigate(question(), tx)
        .await
        .unwrap();
    let fo = out
        .proposals
        .iter()
        .find(|p| p.playbook == "failover")
        .unwrap_or_else(|| panic!("{:#?}\n{:#?}", out.findings, out.proposals));
    let t = fo.target.as_ref().unwrap();
    assert_eq!(
        (t.cluster.as_str(), t.kind.as_str(), t.name.as_str()),
        ("aks-eu-north", "Deployment", "llama")
    );
    assert_eq!(out.proposals.len(), 1, "{:#?}", out.proposals);
    for p in &out.proposals {
        let c = p.target.as_ref().map(|t| t.cluster.as_str()).unwrap_or("");
        assert_ne!(
            c, "eks-us-east",
            "never propose to act on the US cluster: {p:?}"
        );
    }
    assert_read_only(&env);
}

#[tokio::test]
async fn scripted_model_over_the_sandbox_uses_analyzer_findings_first() {
    let env = start("gpu-xid79").await;
    let script = Script {
        native_tools: true,
        steps: vec![
            ScriptStep {
                tool_calls: vec![medic_agent::scripted::ScriptedCall {
                    name: "k8s_describe".into(),
                    arguments: json!({"kind": "nodes", "name": "gpu-node-3"}),
                }],
                ..ScriptStep::default()
            },
            ScriptStep {
                r#final: Some(json!({
                    "answer": "GPU on gpu-node-3 fell off the bus (Xid 79).",
                    "findings": [{
                        "summary": "gpu-node-3 lost a GPU",
                        "root_cause": "Xid 79: GPU fell off the bus",
                        "confidence": 0.9,
                        "evidence": ["c1", "Node/gpu-node-3"],
                        "playbook": {"name": "gpu-rebalance", "params": {}, "target": {"kind": "Node", "name": "gpu-node-3"}}
                    }]
                })),
                ..ScriptStep::default()
            },
        ],
    };
    let server = ScriptedServer::start(script).await.unwrap();
    let mut mc = ModelConfig::openai_compatible(server.base_url.clone(), "scripted");
    mc.max_retries = 0;
    let session = Session::new(
        Registry::standard(),
        env.ctx.clone(),
        Some(Arc::new(RigClient::new(mc).unwrap())),
        SessionConfig {
            tool_mode: ToolMode::Native,
            probe_cache: None,
            ..SessionConfig::default()
        },
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = session.investigate(question(), tx).await.unwrap();
    assert_eq!(out.stop_reason, Some(StopReason::Answered));
    assert_eq!(out.proposals.len(), 1);
    assert_eq!(out.proposals[0].playbook, "gpu-rebalance");
    assert_eq!(
        out.proposals[0].target.as_ref().unwrap().cluster,
        "aks-eu-west"
    );
    // The first request already carries the analyzer findings.
    let first = server.requests()[0].body["messages"].to_string();
    assert!(first.contains("Analyzer findings"), "{first}");
    assert!(first.contains("gpu-node-3"), "{first}");
    let mut model_findings = 0;
    while let Ok(e) = rx.try_recv() {
        if let Event::Finding(f) = e
            && f.source == "model"
        {
            model_findings += 1;
        }
    }
    assert_eq!(model_findings, 1);
    assert_read_only(&env);
    let _ = &env.bundle;
}
