//! The real kubectl (/usr/bin/kubectl) against the sandbox, with the generated kubeconfig.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestBundle, VLLM_PREVIOUS_LOG, start};
use medic_sandbox::SandboxHandle;
use pretty_assertions::assert_eq;

const KUBECTL: &str = "/usr/bin/kubectl";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn kubectl(h: &SandboxHandle, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(KUBECTL);
    cmd.arg("--kubeconfig")
        .arg(h.kubeconfig_path())
        .args(args)
        .env_remove("KUBECONFIG")
        .kill_on_drop(true);
    // The kubectl dispatcher and kubectl itself keep a discovery cache under $HOME.
    let home = h.kubeconfig_path().parent().unwrap().join("home");
    cmd.env("HOME", &home);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn have_kubectl() -> bool {
    std::path::Path::new(KUBECTL).exists()
}

/// Rows of a kubectl table, split on whitespace.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_pods_all_namespaces() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let out = kubectl(&h, &["get", "pods", "-A"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<Vec<String>> = rows(&out.stdout)
        .into_iter()
        .map(|r| r.into_iter().take(4).collect())
        .collect();
    let want: Vec<Vec<String>> = [
        ["NAMESPACE", "NAME", "READY", "STATUS"],
        ["ai", "llama-a", "2/2", "Running"],
        ["ai", "llama-b", "1/1", "Running"],
        ["ai", "llama-c", "1/1", "Running"],
        ["ai", "web-1", "1/1", "Running"],
        ["kube-system", "dcgm-n1", "0/1", "Running"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, want);
    let out = kubectl(&h, &["get", "nodes"]).await;
    assert_eq!(
        rows(&out.stdout)[1][..3],
        ["n1".to_string(), "Ready".to_string(), "gpu".to_string()]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_pod_shows_spec_status_and_events() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let out = kubectl(&h, &["describe", "pod", "llama-a", "-n", "ai"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for needle in [
        "Name:",
        "llama-a",
        "Namespace:",
        "Node:",
        "n1",
        "Containers:",
        "vllm:",
        "sidecar:",
        "registry.example/vllm:1",
        "Restart Count:  2",
        "Back-off restarting failed container vllm",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            out.stdout
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_previous_and_tail() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let out = kubectl(
        &h,
        &["logs", "llama-a", "-n", "ai", "-c", "vllm", "--previous"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let want: String = VLLM_PREVIOUS_LOG
        .lines()
        .map(|l| format!("{}\n", l.split_once(' ').unwrap().1))
        .collect();
    assert_eq!(out.stdout, want);
    let out = kubectl(
        &h,
        &[
            "logs",
            "llama-a",
            "-n",
            "ai",
            "-c",
            "vllm",
            "--tail=1",
            "--timestamps",
        ],
    )
    .await;
    assert_eq!(
        out.stdout,
        "2026-06-23T11:59:30.000000000Z WARN high latency\n"
    );
    let out = kubectl(&h, &["logs", "llama-b", "-n", "ai", "--previous"]).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (BadRequest): previous terminated container \"vllm\" in pod \"llama-b\" not found"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_can_i_as_approvers() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let out = kubectl(
        &h,
        &[
            "auth",
            "can-i",
            "patch",
            "deployments",
            "--as",
            "alice@corp.example",
            "-n",
            "ai",
        ],
    )
    .await;
    assert_eq!((out.code, out.stdout.trim()), (0, "yes"), "{}", out.stderr);
    let out = kubectl(
        &h,
        &[
            "auth",
            "can-i",
            "patch",
            "deployments",
            "--as",
            "bob@corp.example",
            "-n",
            "ai",
        ],
    )
    .await;
    assert_eq!((out.code, out.stdout.trim()), (1, "no"), "{}", out.stderr);
    // Bob's rights come from his group, which only counts when it is impersonated too.
    let out = kubectl(
        &h,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "--as",
            "bob@corp.example",
            "--as-group",
            "platform-leads",
            "-n",
            "ai",
        ],
    )
    .await;
    assert_eq!(
        out.code, 1,
        "medic may not impersonate platform-leads: {}",
        out.stderr
    );
    let out = kubectl(&h, &["auth", "can-i", "list", "pods", "-n", "ai"]).await;
    assert_eq!((out.code, out.stdout.trim()), (0, "yes"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_server_dry_run_persists_nothing() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let before = h.object("c1", "v1", "Node", "", "n1").unwrap();
    let out = kubectl(
        &h,
        &[
            "drain",
            "n1",
            "--dry-run=server",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--as",
            "alice@corp.example",
        ],
    )
    .await;
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    for needle in [
        "node/n1 cordoned (server dry run)",
        "evicting pod ai/llama-a (server dry run)",
        "evicting pod ai/llama-b (server dry run)",
        "node/n1 drained (server dry run)",
    ] {
        assert!(
            out.stdout.contains(needle) || out.stderr.contains(needle),
            "missing {needle:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("Warning: ignoring DaemonSet-managed Pods: kube-system/dcgm-n1"),
        "{}",
        out.stderr
    );
    assert_eq!(h.object("c1", "v1", "Node", "", "n1").unwrap(), before);
    for pod in ["llama-a", "llama-b"] {
        assert!(h.object("c1", "v1", "Pod", "ai", pod).is_some());
    }
    let log = h.request_log();
    let writes: Vec<_> = log
        .iter()
        .filter(|r| matches!(r.verb.as_str(), "create" | "patch" | "update" | "delete"))
        .collect();
    assert!(
        writes
            .iter()
            .any(|r| r.subresource == "eviction" && r.status == 201)
    );
    assert!(writes.iter().all(|r| r.dry_run), "{writes:#?}");
    assert_eq!(
        writes
            .iter()
            .find(|r| r.resource == "nodes")
            .map(|r| (r.verb.as_str(), r.effective_user.as_str())),
        Some(("patch", "alice@corp.example"))
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_strategic_merge_and_json() {
    if !have_kubectl() {
        return;
    }
    let b = TestBundle::valid();
    let h = start(&b).await;
    let as_alice = ["-n", "ai", "--as", "alice@corp.example"];
    let run = |ty: &'static str, patch: &'static str| {
        let mut args = vec!["patch", "deployment", "llama", "--type", ty, "-p", patch];
        args.extend(as_alice);
        args
    };
    let out = kubectl(&h, &run("strategic", r#"{"spec":{"template":{"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.6.2"}]}}}}"#)).await;
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, "deployment.apps/llama patched"),
        "{}",
        out.stderr
    );
    let d = h
        .object("c1", "apps/v1", "Deployment", "ai", "llama")
        .unwrap();
    let images: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        vec!["vllm/vllm-openai:v0.6.2", "registry.example/sidecar:1"]
    );
    let out = kubectl(&h, &run("merge", r#"{"spec":{"replicas":4}}"#)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        h.object("c1", "apps/v1", "Deployment", "ai", "llama")
            .unwrap()["spec"]["replicas"],
        4
    );
    let out = kubectl(
        &h,
        &run(
            "json",
            r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
        ),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        h.object("c1", "apps/v1", "Deployment", "ai", "llama")
            .unwrap()["spec"]["replicas"],
        2
    );
    // A patch that changes nothing.
    let out = kubectl(&h, &run("merge", r#"{"spec":{"replicas":2}}"#)).await;
    assert_eq!(
        out.stdout.trim(),
        "deployment.apps/llama patched (no change)"
    );
    // Bob may not (kubectl reads the object first, so the read is what is refused).
    let out = kubectl(
        &h,
        &[
            "patch",
            "deployment",
            "llama",
            "-n",
            "ai",
            "--as",
            "bob@corp.example",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":1}}"#,
        ],
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (Forbidden): deployments.apps \"llama\" is forbidden: User \"bob@corp.example\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"ai\""
    );
    h.shutdown().await;
}
