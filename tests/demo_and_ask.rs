//! The README's first command and `medic ask` on the built-in bundles, through the real
//! binary: sandbox in-process, analyzers, plans with dry-runs, approvals, execution, audit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::copy_dir;

fn bundle(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sandbox/bundles")
        .join(name)
}

fn medic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MEDIC_CONFIG")
        .env_remove("MEDIC_MODEL")
        .env("USER", "oncall-test")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("medic-tests-no-config"),
        )
        .output()
        .unwrap()
}

#[test]
fn demo_runs_the_whole_incident_and_verifies_the_audit_log() {
    let out = medic(&["demo", "--no-model"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "Xid 79",
        "gpu-rebalance",
        "dry-run ok",
        "approving plan",
        "as `alice`",
        "as `bob`",
        "finished: Succeeded",
        "result: executed",
        "patch nodes /gpu-node-3 as bob@corp.example → 200",
        "audit.jsonl: ok,",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
}

#[test]
fn ask_json_names_the_root_cause_and_plans_without_executing() {
    let data = tempfile::tempdir().unwrap();
    let out = medic(&[
        "ask",
        "--sandbox",
        bundle("gpu-xid79").to_str().unwrap(),
        "--no-model",
        "--json",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = t["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["root_cause"].as_str().unwrap().contains("Xid 79")),
        "{t:#}"
    );
    let plans = t["plans"].as_array().unwrap();
    assert!(
        plans.iter().any(|p| p[1]["playbook"] == "gpu-rebalance"),
        "{t:#}"
    );
    assert!(
        t["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "pending")
    );
    assert_eq!(t["stop_reason"], "AnalyzersOnly");
    // The replay's Prometheus listener is wired to the tools: the GPU view has DCGM data.
    let gpu = t["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["summary"].as_str().unwrap_or("").starts_with("GPU view"))
        .unwrap_or_else(|| panic!("no gpu_status call: {t:#}"));
    assert!(
        !gpu["summary"]
            .as_str()
            .unwrap()
            .contains("no Prometheus configured"),
        "{gpu:#}"
    );

    // The approval requests are in the audit log and readable from another process.
    // The replay's clock is the bundle's (June 2026), so by the wall clock the requests
    // have expired: `list` hides them and says so; `--all` shows them.
    let list = medic(&[
        "approvals",
        "list",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("expired request(s) not shown"), "{listed}");
    let list = medic(&[
        "approvals",
        "list",
        "--all",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(listed.contains("gpu-rebalance"), "{listed}");
    assert!(listed.contains("terminal:oncall-test"), "{listed}");
    let id = t["approvals"][0]["approval_id"].as_str().unwrap();
    let show = medic(&[
        "approvals",
        "show",
        id,
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(shown.contains("plan hash:"), "{shown}");
    assert!(shown.contains("state: expired"), "{shown}");
    let verify = medic(&[
        "audit",
        "verify",
        "--log",
        data.path().join("audit.jsonl").to_str().unwrap(),
    ]);
    assert!(verify.status.success());
}

#[test]
fn ask_without_question_or_bundle_says_what_to_do() {
    let out = medic(&[
        "ask",
        "--no-model",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kubeconfig"), "{err}");
}

#[test]
fn ask_piped_prints_plain_text_with_the_answer_and_a_usage_line() {
    let data = tempfile::tempdir().unwrap();
    let out = medic(&[
        "ask",
        "--sandbox",
        bundle("bad-rollout").to_str().unwrap(),
        "--no-model",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Piped: no terminal styling, spinners become plain lines.
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(stdout.contains("  … k8s_list kind=pods"), "{stdout}");
    // The answer (from the analyzers), the culprit commit and the one proposal.
    assert!(
        stdout.contains("rollout of payments/api revision 7 is failing"),
        "{stdout}"
    );
    assert!(stdout.contains("39b779fc53"), "{stdout}");
    assert_eq!(
        stdout.matches("→ proposed: rollback").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("\"pod_template_hash\":\"6c8d7f9b54\""),
        "{stdout}"
    );
    // The usage line closes the output.
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("0 model call(s), ")
            && last.contains(" tool call(s), 0 tokens in / 0 out, ")
            && last.ends_with("(AnalyzersOnly)"),
        "{last}"
    );
}

#[test]
fn a_proposal_the_playbook_refuses_is_explained_and_recorded() {
    // The stuck migration of kubevirt-migration-stuck, seen 5 minutes after it started:
    // migrate-vm will not cancel a migration that young, says why, and the audit log keeps
    // the refusal.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("evals/scenarios/kubevirt-migration-stuck"),
        &dir,
    );
    let scenario = dir.join("scenario.yaml");
    let text = std::fs::read_to_string(&scenario).unwrap();
    let early = text.replacen(
        "now: '2026-09-09T22:20:00Z'",
        "now: '2026-09-09T21:45:00Z'",
        1,
    );
    assert_ne!(text, early);
    std::fs::write(&scenario, early).unwrap();
    let data = tmp.path().join("data");
    let out = medic(&[
        "ask",
        "--no-model",
        "--sandbox",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("could not become a plan")
            && stdout.contains("is in flight (phase Scheduling for 5 min)"),
        "{stdout}"
    );
    let log = data.join("audit.jsonl");
    let out = medic(&[
        "audit",
        "export",
        "--log",
        log.to_str().unwrap(),
        "--kind",
        "proposal_refused",
    ]);
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["payload"]["playbook"], "migrate-vm");
    assert!(
        records[0]["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("set stuck_after_minutes to 5 or less")
    );
    let verify = medic(&["audit", "verify", "--log", log.to_str().unwrap()]);
    assert!(verify.status.success());
}
