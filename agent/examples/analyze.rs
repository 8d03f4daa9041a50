//! Run the analyzers alone over a sandbox bundle and print findings and proposals:
//! `cargo run -p medic-agent --example analyze -- sandbox/bundles/gpu-xid79`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use medic_agent::protocol::Op;
use medic_agent::{Session, SessionConfig};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use medic_tools::{Clock, Registry, ToolContext};
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: analyze <bundle dir>"),
    );
    let bundle = Bundle::load(&dir).unwrap();
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
    if let Some(gh) = sandbox.github_url() {
        ctx = ctx.with_github(medic_tools::GitHubConfig {
            base_url: Some(gh),
            token: None,
        });
    }
    let session = Session::new(
        Registry::standard(),
        ctx,
        None,
        SessionConfig {
            probe_cache: None,
            ..SessionConfig::default()
        },
    );
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let out = session
        .investigate(
            Op::UserQuestion {
                text: "What is wrong?".into(),
            },
            tx,
        )
        .await
        .unwrap();
    for f in &out.findings {
        println!(
            "- {} [{:.1}]\n    {}\n    cause: {}",
            f.id, f.confidence.0, f.summary, f.root_cause
        );
        for s in &f.suggests {
            println!(
                "    suggests {} {} on {:?}",
                s.name,
                s.params,
                s.target.as_ref().map(|t| t.display())
            );
        }
    }
    for p in &out.proposals {
        println!(
            "PROPOSAL {} {} on {:?}",
            p.playbook,
            p.params,
            p.target.as_ref().map(|t| t.display())
        );
    }
    println!(
        "tool calls {}, {} ms",
        out.usage.tool_calls, out.usage.wall_ms
    );
    sandbox.shutdown().await;
}
