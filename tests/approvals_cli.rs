//! `medic approvals list | show | approve | deny` from the terminal, end to end: the real
//! binary against a sandbox serving gpu-xid79 (its RBAC, SubjectAccessReviews,
//! impersonation, eviction). Each refusal prints why and changes nothing; the approval
//! that completes the request executes as the approver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use medic_approvals::audit::{ExportFilter, RecordKind, export, verify};
use medic_approvals::{ApprovalBook, IdentityMap, KubeAccessReviewer, Policy};
use medic_playbooks::{ClusterSpec, Clusters, PlanContext, propose};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use serde_json::json;

const CLUSTER: &str = "aks-eu-west";

/// carol's role may only restart rollouts; erin's role covers everything, but Kubernetes
/// RBAC (group developers: view) lets her cordon nothing.
const POLICY: &str = r#"
version: 1
expiry: 15m
roles:
  - name: sre
    members: ["group:sre"]
    max_risk: critical
  - name: leads
    members: ["group:platform-leads"]
    max_risk: critical
  - name: dev-restarts
    members: [carol]
    playbooks: [rollout-restart]
    max_risk: critical
  - name: dev-oncall
    members: [erin]
    max_risk: critical
"#;

const IDENTITIES: &str = r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: alice, kube_user: alice@corp.example, groups: [sre], terminal: alice }
- { name: bob, kube_user: bob@corp.example, groups: [platform-leads], terminal: bob }
- { name: carol, kube_user: carol@corp.example, groups: [developers], terminal: carol }
- { name: erin, kube_user: erin@corp.example, groups: [developers], terminal: erin }
"#;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sandbox/bundles/gpu-xid79")
}

struct Env {
    config: PathBuf,
    kubeconfig: PathBuf,
    data: PathBuf,
}

/// Runs the binary as terminal user `user` (off the async runtime: the sandbox serves it).
async fn medic(env: &Env, user: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_medic"));
    cmd.arg("--config")
        .arg(&env.config)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(args)
        .arg("--data-dir")
        .arg(&env.data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MEDIC_CONFIG")
        .env_remove("MEDIC_MODEL")
        .env_remove("LOGNAME")
        .env("USER", user);
    let out: Output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn refusals(log: &Path, approval: &str) -> Vec<String> {
    let filter = ExportFilter {
        approval: Some(approval.to_owned()),
        kind: Some(RecordKind::Refusal),
        ..Default::default()
    };
    export(log, filter)
        .unwrap()
        .map(|r| r.unwrap().payload["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_approvals_refuse_with_reasons_then_execute_as_the_approver() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::load(bundle_dir()).unwrap();
    let options = SandboxOptions {
        kubeconfig_path: Some(tmp.path().join("kubeconfig")),
        ..Default::default()
    };
    let sandbox = Sandbox::start(&bundle, options).await.unwrap();
    let env = Env {
        config: tmp.path().join("medic.yaml"),
        kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
        data: tmp.path().join("data"),
    };
    std::fs::write(tmp.path().join("policy.yaml"), POLICY).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "clusters:\n  - name: {CLUSTER}\n    labels: {{ residency: eu }}\napprovals:\n  policy: {}\n  identities:\n{}",
            tmp.path().join("policy.yaml").display(),
            IDENTITIES
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        ),
    )
    .unwrap();

    // Two requests for the same plan, made by alice at her terminal (as `medic ask` does).
    let (first, second) = {
        let identities = IdentityMap::from_yaml(IDENTITIES).unwrap();
        let policy = Policy::parse(POLICY, "policy.yaml", &identities).unwrap();
        let spec = ClusterSpec {
            name: CLUSTER.into(),
            labels: Default::default(),
        };
        let clusters = Clusters::from_kubeconfig(&env.kubeconfig, vec![spec])
            .await
            .unwrap();
        let mut ctx = PlanContext::new(clusters, chrono::Utc::now());
        ctx.dry_run_as = Some(identities.by_name("alice").unwrap().kube.clone());
        let plan = propose(
            &ctx,
            "gpu-rebalance",
            json!({"cluster": CLUSTER, "node": "gpu-node-3", "selector": "app=llama"}),
        )
        .await
        .unwrap();
        assert!(plan.dry_run_ok(), "{}", plan.render());
        let book = ApprovalBook::open(
            &env.data,
            policy,
            identities,
            medic_approvals::shared(KubeAccessReviewer::new()),
        )
        .await
        .unwrap();
        let alice = "terminal:alice".parse().unwrap();
        let now = chrono::Utc::now();
        let a = book.request(&plan, &alice, now).await.unwrap();
        let b = book.request(&plan, &alice, now).await.unwrap();
        (a.id, b.id)
    };
    let log = ApprovalBook::audit_path(&env.data);

    let (ok, out) = medic(&env, "bob", &["approvals", "list"]).await;
    assert!(ok, "{out}");
    for expected in [
        first.as_str(),
        second.as_str(),
        "gpu-rebalance",
        "terminal:alice",
        "0/1",
    ] {
        assert!(out.contains(expected), "list lacks {expected}:\n{out}");
    }
    let (ok, out) = medic(&env, "bob", &["approvals", "show", &first]).await;
    assert!(ok, "{out}");
    for expected in [
        "Steps:",
        "cordon",
        "+  unschedulable: true",
        "plan hash:",
        "requested by terminal:alice",
        "state: pending",
        "approved by: nobody yet",
    ] {
        assert!(out.contains(expected), "show lacks {expected:?}:\n{out}");
    }

    // Anyone may read, mapped or not.
    let (ok, out) = medic(&env, "mallory", &["approvals", "show", &first]).await;
    assert!(ok && out.contains("state: pending"), "{out}");

    // Each refusal exits non-zero, says why, and is recorded; nothing is written.
    let cases = [
        ("alice", "alice requested this plan and cannot approve it"),
        (
            "mallory",
            "terminal:mallory is not mapped to a Kubernetes identity; unmapped users can read but never approve",
        ),
        (
            "carol",
            "carol may not approve this plan: role dev-restarts may not approve playbook gpu-rebalance",
        ),
        (
            "erin",
            "SubjectAccessReview on cluster aks-eu-west denied step 1 for erin (as erin@corp.example): patch nodes gpu-node-3",
        ),
    ];
    for (user, why) in cases {
        let (ok, out) = medic(&env, user, &["approvals", "approve", &first]).await;
        assert!(!ok, "{user} must be refused:\n{out}");
        assert!(out.contains(why), "{user}: expected {why:?} in:\n{out}");
        assert!(out.contains("pending"), "{out}");
    }
    let recorded = refusals(&log, &first);
    assert_eq!(recorded.len(), cases.len(), "{recorded:#?}");
    for ((_, why), message) in cases.iter().zip(&recorded) {
        assert!(message.contains(why), "{message}");
    }
    let writes = |s: &medic_sandbox::SandboxHandle| {
        s.request_log()
            .into_iter()
            .filter(|r| matches!(r.verb.as_str(), "create" | "patch" | "update" | "delete"))
            .filter(|r| !r.dry_run && r.resource != "subjectaccessreviews")
            .count()
    };
    assert_eq!(writes(&sandbox), 0);

    // bob denies the second request: it is gone from the list and cannot be approved.
    let (ok, out) = medic(
        &env,
        "bob",
        &[
            "approvals",
            "deny",
            &second,
            "--reason",
            "drain after the batch job",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("denied"), "{out}");
    assert!(out.contains("drain after the batch job"), "{out}");
    let (ok, out) = medic(&env, "alice", &["approvals", "approve", &second]).await;
    assert!(!ok && out.contains("already denied"), "{out}");

    // bob's approval completes the first request: it executes at once, as bob.
    let (ok, out) = medic(&env, "bob", &["approvals", "approve", &first]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("executing 3 step(s) as bob@corp.example"),
        "{out}"
    );
    assert!(out.contains("executed"), "{out}");
    let node = sandbox
        .object(CLUSTER, "v1", "Node", "", "gpu-node-3")
        .unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    let applied: Vec<_> = sandbox
        .request_log()
        .into_iter()
        .filter(|r| matches!(r.verb.as_str(), "create" | "patch"))
        .filter(|r| !r.dry_run && r.resource != "subjectaccessreviews")
        .filter(|r| (200..300).contains(&r.status))
        .collect();
    assert_eq!(applied.len(), 3, "{applied:#?}");
    assert!(
        applied
            .iter()
            .all(|r| r.effective_user == "bob@corp.example")
    );

    let (ok, out) = medic(&env, "bob", &["approvals", "list"]).await;
    assert!(
        ok && out.contains("no plans are waiting for approval"),
        "{out}"
    );
    let (ok, out) = medic(&env, "bob", &["approvals", "show", &first]).await;
    assert!(ok && out.contains("approved by: bob"), "{out}");
    assert!(out.contains("state: executed"), "{out}");
    let report = verify(&log).unwrap();
    assert!(report.is_ok(), "{report}");
    sandbox.shutdown().await;
}
