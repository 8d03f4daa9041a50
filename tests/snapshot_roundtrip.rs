//! serve → `medic snapshot` → serve gives the same objects and logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use pretty_assertions::assert_eq;
use serde_json::Value;

fn starter(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sandbox/bundles")
        .join(name)
}

/// What a replay must preserve of an object: everything but server bookkeeping that a
/// capture legitimately drops (managedFields).
fn normalise(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

fn by_name(objs: Vec<Value>) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = objs
        .into_iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
            (format!("{ns}/{name}"), normalise(o))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_a_sandbox_replays_the_same_objects() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let original = Bundle::load(starter("gpu-xid79")).unwrap();
    let first = Sandbox::start(&original, SandboxOptions::default())
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("bundle");
    let kubeconfig = first.kubeconfig_path().to_path_buf();
    let dir2 = dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["--kubeconfig"])
            .arg(&kubeconfig)
            .args([
                "snapshot",
                "--include-namespace",
                "ai",
                "--include-namespace",
                "gpu-operator",
                "-o",
            ])
            .arg(&dir2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    let captured = Bundle::load(&dir).unwrap();
    let second = Sandbox::start(&captured, SandboxOptions::default())
        .await
        .unwrap();
    let cluster = "aks-eu-west";
    let kinds: &[(&str, &str, Option<&str>)] = &[
        ("v1", "Pod", Some("ai")),
        ("v1", "Pod", Some("gpu-operator")),
        ("v1", "Event", Some("ai")),
        ("v1", "Service", Some("ai")),
        ("v1", "Node", None),
        ("apps/v1", "Deployment", Some("ai")),
        ("apps/v1", "ReplicaSet", Some("ai")),
        ("apps/v1", "DaemonSet", Some("gpu-operator")),
        ("policy/v1", "PodDisruptionBudget", Some("ai")),
        ("keda.sh/v1alpha1", "ScaledObject", Some("ai")),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", None),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None),
    ];
    for (api_version, kind, ns) in kinds {
        let before = by_name(first.objects(cluster, api_version, kind, *ns));
        let after = by_name(second.objects(cluster, api_version, kind, *ns));
        assert!(!before.is_empty(), "no {kind} in {ns:?} to compare");
        assert_eq!(
            before, after,
            "{kind} in {ns:?} differs after the round trip"
        );
    }

    // Logs of the restarted containers survive too (current and previous, with timestamps).
    let logs = |root: &Path, ns: &str, pod: &str, file: &str| {
        std::fs::read_to_string(
            root.join("clusters")
                .join(cluster)
                .join("logs")
                .join(ns)
                .join(pod)
                .join(file),
        )
        .ok()
    };
    let mut compared = 0;
    for pod in first.objects(cluster, "v1", "Pod", Some("ai")) {
        let name = pod["metadata"]["name"].as_str().unwrap();
        for c in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if c["restartCount"].as_u64().unwrap_or(0) == 0 {
                continue;
            }
            let container = c["name"].as_str().unwrap();
            for file in [
                format!("{container}.log"),
                format!("{container}.previous.log"),
            ] {
                let Some(source) = logs(&starter("gpu-xid79"), "ai", name, &file) else {
                    continue;
                };
                let captured = logs(&dir, "ai", name, &file)
                    .unwrap_or_else(|| panic!("snapshot lacks {name}/{file}"));
                assert_eq!(captured.trim_end(), source.trim_end(), "{name}/{file}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 2, "only {compared} log files compared");
    first.shutdown().await;
    second.shutdown().await;
}
