//! The agent's benchmark figures (`cargo bench -p medic-agent --bench figures`):
//!
//! 1. tokens in the first model request (system prompt + tool schemas, o200k_base), native
//!    and structured mode, with the standard tool registry — target ≤ 2,500;
//! 2. total tokens of one scripted investigation per starter bundle (through the sandbox and
//!    the scripted model over HTTP);
//! 3. analyzers over a generated 10,000-pod / 1,000-node bundle, end to end from the sandbox
//!    (listing included), median of several runs — target < 1 s.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use medic_agent::analyzers::{AnalyzerSet, Observations};
use medic_agent::model::{ChatMessage, ChatRequest, ModelConfig, ToolMode};
use medic_agent::protocol::Op;
use medic_agent::scripted::{Script, ScriptStep, ScriptedCall, ScriptedServer};
use medic_agent::{RigClient, Session, SessionConfig};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use medic_tools::{Clock, Registry, ToolContext, count_tokens};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

fn request_tokens(r: &ChatRequest) -> usize {
    let mut text = String::new();
    for m in &r.messages {
        match m {
            ChatMessage::System { content } | ChatMessage::User { content } => {
                text.push_str(content)
            }
            _ => {}
        }
    }
    // Tools as the Chat Completions wire sends them.
    let tools: Vec<_> = r
        .tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect();
    if !tools.is_empty() {
        text.push_str(&serde_json::to_string(&tools).unwrap());
    }
    if let Some(s) = &r.response_schema {
        text.push_str(&serde_json::to_string(s).unwrap());
    }
    count_tokens(&text)
}

fn bundles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sandbox/bundles")
}

async fn context(dir: &Path) -> (medic_sandbox::SandboxHandle, ToolContext, Bundle) {
    let bundle = Bundle::load(dir).unwrap();
    let sandbox = Sandbox::start(&bundle, SandboxOptions::default())
        .await
        .unwrap();
    let names: Vec<String> = bundle
        .scenario
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let now = chrono::DateTime::parse_from_rfc3339(&bundle.scenario.now)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut ctx = ToolContext::from_kubeconfig(sandbox.kubeconfig_path(), &refs)
        .await
        .unwrap()
        .with_clock(Clock::fixed(now));
    for c in &bundle.scenario.clusters {
        ctx = ctx.with_labels(&c.name, c.labels.clone()).unwrap();
    }
    (sandbox, ctx, bundle)
}

fn first_request_figures(out: &mut String) {
    let q = "Users see intermittent 5xx from the llama endpoint in namespace ai. What is wrong?";
    for mode in [ToolMode::Native, ToolMode::Json] {
        let s = Session::new(
            Registry::standard(),
            ToolContext::new(),
            None,
            SessionConfig {
                tool_mode: mode,
                probe_cache: None,
                ..SessionConfig::default()
            },
        );
        let r = s.first_request(q);
        writeln!(
            out,
            "first request tokens ({} mode, {} tools): {}",
            mode.name(),
            Registry::standard().names().len(),
            request_tokens(&r)
        )
        .unwrap();
    }
}

async fn scripted_figures(out: &mut String) {
    for (bundle, calls, answer) in [
        (
            "gpu-xid79",
            json!([{"name": "k8s_describe", "arguments": {"kind": "nodes", "name": "gpu-node-3"}}]),
            "gpu-rebalance",
        ),
        (
            "bad-rollout",
            json!([{"name": "k8s_describe", "arguments": {"kind": "deployments", "namespace": "payments", "name": "api"}}]),
            "rollback",
        ),
        (
            "eu-failover",
            json!([{"name": "k8s_list", "arguments": {"kind": "httproutes", "cluster": "aks-eu-north", "namespace": "ai"}}]),
            "failover",
        ),
    ] {
        let (sandbox, ctx, _) = context(&bundles_dir().join(bundle)).await;
        let calls: Vec<ScriptedCall> = serde_json::from_value(calls).unwrap();
        let script = Script {
            native_tools: true,
            steps: vec![
                ScriptStep {
                    tool_calls: calls,
                    ..ScriptStep::default()
                },
                ScriptStep {
                    r#final: Some(
                        json!({"answer": "See findings.", "findings": [{"summary": "s", "root_cause": "r", "confidence": 0.8, "evidence": ["c1"], "playbook": {"name": answer, "params": {}, "target": {"kind": "Deployment", "name": "x"}}}]}),
                    ),
                    ..ScriptStep::default()
                },
            ],
        };
        let server = ScriptedServer::start(script).await.unwrap();
        let mut mc = ModelConfig::openai_compatible(server.base_url.clone(), "scripted");
        mc.max_retries = 0;
        let session = Session::new(
            Registry::standard(),
            ctx,
            Some(Arc::new(RigClient::new(mc).unwrap())),
            SessionConfig {
                tool_mode: ToolMode::Native,
                probe_cache: None,
                ..SessionConfig::default()
            },
        );
        let (tx, _rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let o = session
            .investigate(
                Op::UserQuestion {
                    text: "What is wrong?".into(),
                },
                tx,
            )
            .await
            .unwrap();
        writeln!(
            out,
            "scripted investigation {bundle}: model calls {}, tool calls {}, tokens in {} / out {} (total {}), first request {} tokens, wall {} ms",
            o.usage.model_calls,
            o.usage.tool_calls,
            o.usage.input_tokens,
            o.usage.output_tokens,
            o.usage.input_tokens + o.usage.output_tokens,
            server.requests().first().map_or(0, |r| r.prompt_tokens),
            started.elapsed().as_millis()
        )
        .unwrap();
        sandbox.shutdown().await;
    }
}

/// Write a bundle with `pods` pods on `nodes` nodes, reusing gpu-xid79's scenario, RBAC and
/// namespaces (the identities the sandbox authenticates).
fn generate_bundle(dir: &Path, pods: usize, nodes: usize) {
    let src = bundles_dir().join("gpu-xid79");
    std::fs::copy(src.join("scenario.yaml"), dir.join("scenario.yaml")).unwrap();
    let objs = dir.join("clusters/aks-eu-west/objects");
    std::fs::create_dir_all(&objs).unwrap();
    for f in ["rbac.yaml", "namespaces.yaml"] {
        std::fs::copy(
            src.join("clusters/aks-eu-west/objects").join(f),
            objs.join(f),
        )
        .unwrap();
    }
    let mut y = String::new();
    for n in 0..nodes {
        // Keep the scenario's expected node name present.
        let name = if n == 2 {
            "gpu-node-3".to_string()
        } else {
            format!("node-{n:04}")
        };
        let ready = if n % 97 == 5 { "False" } else { "True" };
        write!(y, "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  uid: 00000000-0000-4000-8000-{n:012}\n  creationTimestamp: '2026-01-01T00:00:00Z'\n  labels:\n    kubernetes.io/hostname: {name}\nspec: {{}}\nstatus:\n  capacity: {{cpu: '32', memory: 128Gi, pods: '110'}}\n  allocatable: {{cpu: '31', memory: 120Gi, pods: '110'}}\n  conditions:\n  - {{type: Ready, status: '{ready}', reason: KubeletReady, message: kubelet status, lastTransitionTime: '2026-06-23T10:00:00Z'}}\n").unwrap();
    }
    std::fs::write(objs.join("nodes.yaml"), y).unwrap();
    let mut y = String::new();
    for p in 0..pods {
        let node = format!("node-{:04}", (p % nodes).max(3));
        let crash = p % 500 == 7;
        let (state, ready) = if crash {
            (
                "waiting: {reason: CrashLoopBackOff, message: back-off restarting}",
                "false",
            )
        } else {
            ("running: {startedAt: '2026-06-23T09:00:00Z'}", "true")
        };
        let app = format!("app-{:03}", p % 300);
        write!(y, "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {app}-{p:05}\n  namespace: ai\n  uid: 10000000-0000-4000-8000-{p:012}\n  creationTimestamp: '2026-06-23T08:00:00Z'\n  labels: {{app: {app}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: main\n    image: registry.example/{app}:v1\n    resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}\nstatus:\n  phase: Running\n  conditions:\n  - {{type: Ready, status: '{}'}}\n  containerStatuses:\n  - name: main\n    image: registry.example/{app}:v1\n    ready: {ready}\n    restartCount: {}\n    state: {{{state}}}\n{}",
            if crash { "False" } else { "True" },
            if crash { 9 } else { 0 },
            if crash { "    lastState: {terminated: {reason: OOMKilled, exitCode: 137, finishedAt: '2026-06-23T11:58:00Z'}}\n" } else { "" }
        ).unwrap();
    }
    std::fs::write(objs.join("pods.yaml"), y).unwrap();
}

async fn analyzer_figures(out: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    generate_bundle(dir.path(), 10_000, 1_000);
    let (sandbox, ctx, _) = match Bundle::load(dir.path()) {
        Ok(_) => context(dir.path()).await,
        Err(e) => {
            writeln!(
                out,
                "analyzers 10k pods / 1k nodes: generated bundle rejected by the sandbox: {e}"
            )
            .unwrap();
            return;
        }
    };
    let session = Session::new(
        Registry::standard(),
        ctx.clone(),
        None,
        SessionConfig {
            probe_cache: None,
            ..SessionConfig::default()
        },
    );
    phase_figures(out, &ctx).await;
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..5 {
        let (tx, _rx) = mpsc::unbounded_channel();
        let t = Instant::now();
        let o = session
            .investigate(
                Op::UserQuestion {
                    text: "What is wrong?".into(),
                },
                tx,
            )
            .await
            .unwrap();
        times.push(t.elapsed().as_millis());
        findings = o.findings.len();
    }
    times.sort_unstable();
    writeln!(
        out,
        "analyzers over 10,000 pods / 1,000 nodes from the sandbox (listing included): median {} ms (runs {:?}), {findings} findings",
        times[times.len() / 2],
        times
    )
    .unwrap();
    sandbox.shutdown().await;
}

/// Where the time goes: each collection call alone (sequential), then the analyzers alone
/// over what was read.
async fn phase_figures(out: &mut String, ctx: &ToolContext) {
    let registry = Registry::standard();
    let analyzers = AnalyzerSet::standard();
    let plan = analyzers.collection(&registry.names(), &ctx.cluster_names(), None);
    let mut results = Vec::new();
    let mut calls = Vec::new();
    let t = Instant::now();
    for (i, (name, args)) in plan.into_iter().enumerate() {
        let c = Instant::now();
        let r = registry.call(ctx, &name, args.clone()).await.unwrap();
        calls.push((
            c.elapsed().as_millis(),
            format!("{name} {}", args["kind"].as_str().unwrap_or("")),
        ));
        results.push((format!("c{}", i + 1), r));
    }
    let collect_ms = t.elapsed().as_millis();
    calls.sort_by_key(|c| std::cmp::Reverse(c.0));
    let slowest: Vec<String> = calls
        .iter()
        .take(4)
        .map(|(ms, c)| format!("{c} {ms} ms"))
        .collect();
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let obs = Observations::new(&results, ctx.clock.now());
        n = analyzers.run(&obs).len();
        times.push(t.elapsed().as_micros());
    }
    times.sort_unstable();
    writeln!(
        out,
        "  phases: collection calls one by one {collect_ms} ms (slowest: {}); analyzers alone median {} µs ({n} findings)",
        slowest.join(", "),
        times[times.len() / 2]
    )
    .unwrap();
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = String::new();
    first_request_figures(&mut out);
    rt.block_on(scripted_figures(&mut out));
    rt.block_on(analyzer_figures(&mut out));
    println!("{out}");
}
