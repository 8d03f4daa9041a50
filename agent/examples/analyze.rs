//! Run the analyzers alone over a sandbox bundle and print findings and proposals:
//! `cargo run -p medic-agent --example analyze -- sandbox/bundles/gpu-xid79`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use medic_agent::protocol::Op;
use medic_agent::{Session, SessionConfig};
use medic_tools::Registry;
use std::path::PathBuf;

#[path = "../tests/common/replay.rs"]
mod replay;

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: analyze <bundle dir>"),
    );
    let (sandbox, ctx, _bundle) = replay::replay(&dir).await;
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
