//! Shared test helpers: start the sandbox on a bundle and build a ToolContext for it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod prometheus;

use medic_sandbox::{Bundle, Sandbox, SandboxHandle, SandboxOptions};
use medic_tools::{Clock, ToolContext};
use std::path::PathBuf;

pub fn bundle_dir(name: &str) -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bundles")
        .join(name);
    if local.exists() {
        return local;
    }
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../evals/scenarios")
        .join(name);
    if scenario.exists() {
        return scenario;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sandbox/bundles")
        .join(name)
}

pub struct Env {
    pub sandbox: SandboxHandle,
    pub ctx: ToolContext,
    pub bundle: Bundle,
}

pub async fn start(name: &str) -> Env {
    let bundle = Bundle::load(bundle_dir(name)).unwrap_or_else(|e| panic!("bundle {name}: {e}"));
    let sandbox = Sandbox::start(&bundle, SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let contexts: Vec<String> = bundle
        .scenario
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let refs: Vec<&str> = contexts.iter().map(String::as_str).collect();
    let now = chrono::DateTime::parse_from_rfc3339(&bundle.scenario.now)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let ctx = ToolContext::from_kubeconfig(sandbox.kubeconfig_path(), &refs)
        .await
        .expect("context from the sandbox kubeconfig")
        .with_clock(Clock::fixed(now))
        .with_runbooks(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks/runbooks"));
    Env {
        sandbox,
        ctx,
        bundle,
    }
}
