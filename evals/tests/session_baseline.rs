//! The runner against medic's real investigation session (`medic_agent::Session`, analyzers
//! only, no model, no approval workflow attached) over every scenario: proves the runner
//! speaks the real event stream end to end, that no scenario breaks the harness, and that an
//! investigation alone never writes. Plans, approvals and execution are the lead's engine;
//! here proposals stay unapproved, so post-checks are expected to fail and are not asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use medic_agent::{Session, SessionConfig};
use medic_evals::{EngineFactory, EngineLink, EvalMode, RunOptions, ScenarioRun, run_suite};
use medic_tools::{Clock, Registry, ToolContext};
use tokio::sync::mpsc::unbounded_channel;

struct AnalyzersOnly;

impl EngineFactory for AnalyzersOnly {
    async fn open(&self, run: &ScenarioRun<'_>) -> medic_evals::Result<EngineLink> {
        medic_tools::context::install_crypto_provider();
        let names: Vec<String> = run.sandbox.clusters().into_iter().map(|(n, _)| n).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ctx = ToolContext::from_kubeconfig(run.kubeconfig_path(), &names)
            .await
            .map_err(|e| medic_evals::Error::Engine(e.to_string()))?
            .with_clock(Clock::fixed(run.now()));
        let config = SessionConfig {
            probe_cache: None,
            ..SessionConfig::default()
        };
        let session = Session::new(Registry::standard(), ctx, None, config);
        let (op_tx, op_rx) = unbounded_channel();
        let (ev_tx, ev_rx) = unbounded_channel();
        tokio::spawn(session.run(op_rx, ev_tx, None));
        Ok(EngineLink {
            ops: op_tx,
            events: ev_rx,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyzers_only_session_over_every_scenario() {
    let opts = RunOptions {
        mode: EvalMode::NoModel,
        jobs: 2,
        settle: Duration::from_millis(300),
        approval_budget: Duration::from_secs(5),
        ..RunOptions::default()
    };
    let dirs = vec![
        common::repo().join("evals/scenarios"),
        common::repo().join("sandbox/bundles"),
    ];
    let report = run_suite(&AnalyzersOnly, &dirs, &opts).await.unwrap();
    let md = report.to_markdown();
    let out = std::env::temp_dir().join("medic-evals-session-baseline.md");
    std::fs::write(&out, &md).unwrap();
    eprintln!("{}\n(full report: {})", report.summary(), out.display());
    let t = &report.totals;
    assert!(t.scenarios >= 43, "{}", report.summary());
    let errors: Vec<String> = report
        .scenarios
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.name)))
        .collect();
    assert!(errors.is_empty(), "harness errors:\n{}", errors.join("\n"));
    assert_eq!(t.unapproved_executions, 0, "{md}");
    assert_eq!(t.never_violations, 0, "{md}");
    assert!(
        report.scenarios.iter().all(|r| r.stop_reason.is_some()),
        "a session never sent Done\n{md}"
    );
}
