//! A bundle replayed in the sandbox with a tool context pointed at it (the bundle's clusters,
//! labels, clock and GitHub) — shared by the bundle tests and the `analyze` example.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use medic_sandbox::{Bundle, Sandbox, SandboxHandle, SandboxOptions};
use medic_tools::{Clock, ToolContext};
use std::path::Path;

/// Starts the sandbox for the bundle in `dir` and builds the tools' context for it.
pub async fn replay(dir: &Path) -> (SandboxHandle, ToolContext, Bundle) {
    let bundle = Bundle::load(dir).unwrap_or_else(|e| panic!("bundle {}: {e}", dir.display()));
    let sandbox = Sandbox::start(&bundle, SandboxOptions::default())
        .await
        .unwrap();
    let names: Vec<&str> = bundle
        .scenario
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let now = chrono::DateTime::parse_from_rfc3339(&bundle.scenario.now)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut ctx = ToolContext::from_kubeconfig(sandbox.kubeconfig_path(), &names)
        .await
        .unwrap()
        .with_clock(Clock::fixed(now));
    for c in &bundle.scenario.clusters {
        ctx = ctx.with_labels(&c.name, c.labels.clone()).unwrap();
    }
    if let Some(url) = sandbox.github_url() {
        ctx = ctx.with_github(medic_tools::GitHubConfig {
            base_url: Some(url),
            token: None,
        });
    }
    (sandbox, ctx, bundle)
}
