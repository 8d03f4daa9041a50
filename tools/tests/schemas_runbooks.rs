//! Tool schemas stay small, and the runbook library loads, matches alerts and is searchable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use medic_tools::runbooks::{load_runbooks, search};
use medic_tools::{Registry, ToolContext, count_tokens};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn runbook_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks/runbooks")
}

#[test]
fn all_tool_schemas_fit_in_a_small_first_request() {
    let reg = Registry::standard();
    let schemas = reg.schemas();
    assert_eq!(
        reg.names(),
        vec![
            "github",
            "gpu_status",
            "k8s_describe",
            "k8s_events",
            "k8s_list",
            "logs",
            "metrics",
            "runbook_search"
        ]
    );
    // What an OpenAI-style request carries for the tools.
    let tools: Vec<_> = schemas
        .iter()
        .map(|s| json!({"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.parameters}}))
        .collect();
    let text = serde_json::to_string(&tools).unwrap();
    let tokens = count_tokens(&text);
    println!("tool schemas: {tokens} tokens");
    // Leaves at least 1,000 of the 2,500-token first request for the system prompt.
    assert!(tokens <= 1_500, "tool schemas take {tokens} tokens: {text}");
    for s in &schemas {
        assert!(!s.parameters.to_string().contains("$schema"));
        assert_eq!(s.parameters["type"], "object", "{}", s.name);
    }
}

#[test]
fn runbooks_load_and_match_alerts() {
    let all = load_runbooks(&runbook_dir()).unwrap();
    assert!(all.len() >= 3);
    let labels: BTreeMap<String, String> = [
        ("alertname", "GPUXidErrors"),
        ("severity", "critical"),
        ("node", "gpu-node-3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let hits = search(&all, &labels, None);
    assert_eq!(hits[0].runbook.name, "gpu-xid-errors");
    assert!(hits[0].alert_match);
    assert_eq!(hits[0].runbook.playbooks, vec!["gpu-rebalance", "uncordon"]);
    // A warning-level alert does not match the critical-only runbook.
    let mut warn = labels.clone();
    warn.insert("severity".into(), "warning".into());
    assert!(
        !all.iter()
            .find(|r| r.name == "gpu-xid-errors")
            .unwrap()
            .matches_alert(&warn)
    );
    // `!kube-system` matcher.
    let rollout = all
        .iter()
        .find(|r| r.name == "deployment-rollout-failing")
        .unwrap();
    let mut l: BTreeMap<String, String> = [
        ("alertname", "KubePodCrashLooping"),
        ("namespace", "payments"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert!(rollout.matches_alert(&l));
    l.insert("namespace".into(), "kube-system".into());
    assert!(!rollout.matches_alert(&l));
    // Free text.
    let hits = search(
        &all,
        &BTreeMap::new(),
        Some("live migration of a kubevirt vm is stuck"),
    );
    assert_eq!(hits[0].runbook.name, "kubevirt-vm-unhealthy");
}

#[test]
fn broken_runbook_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: Bad Name\ndescription: x\nmatch: {alerts: [A]}\n",
    )
    .unwrap();
    let e = load_runbooks(dir.path()).unwrap_err().to_string();
    assert!(e.contains("bad.yaml") && e.contains("kebab-case"), "{e}");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: ok\ndescription: x\nmatch: {alerts: [A]}\nplaybok: []\n",
    )
    .unwrap();
    let e = load_runbooks(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("unknown field `playbok`"),
        "{e}"
    );
}

#[tokio::test]
async fn runbook_search_tool() {
    let ctx = ToolContext::new().with_runbooks(runbook_dir());
    let reg = Registry::standard();
    let r = reg
        .call(
            &ctx,
            "runbook_search",
            json!({"labels": {"alertname": "InferenceHighErrorRate", "severity": "page"}}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    assert!(
        r.text.starts_with("1 runbooks matched")
            || r.text
                .contains("regional-inference-outage (matches the alert)"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("playbooks allowed: failover, scale"),
        "{}",
        r.text
    );
    let r = reg.call(&ctx, "runbook_search", json!({})).await.unwrap();
    assert_eq!(
        r.error.unwrap().message,
        "invalid arguments: give `labels` (alert labels with alertname) or `text`"
    );
    let r = reg
        .call(&ctx, "runbook_search", json!({"labels": "GPUXidErrors"}))
        .await
        .unwrap();
    assert!(
        r.error
            .unwrap()
            .message
            .starts_with("invalid arguments: `labels` must be object")
    );
    // No clusters configured: a fatal configuration error, not something the model can fix.
    let e = reg
        .call(&ctx, "k8s_list", json!({"kind": "pods"}))
        .await
        .unwrap_err();
    assert!(!e.is_model_visible());
}
