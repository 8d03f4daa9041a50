//! Test bundles written into temporary folders, and helpers to start a sandbox on them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tempfile::TempDir;

pub const SCENARIO: &str = r#"version: 1
title: "Test: a GPU node drops replicas"
description: "SECRET-DESCRIPTION the cause is the moon"
now: "2026-06-23T12:00:00Z"
clusters:
  - name: c1
    region: westeurope
    labels: { residency: eu }
    prometheus: true
start:
  question: "Why are the llama pods failing in namespace ai?"
identities:
  - { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
  - { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE }
  - { name: bob, kube_user: bob@corp.example, groups: [platform-leads] }
reactions:
  - when:
      - { cluster: c1, kind: Node, name: n1, path: spec.unschedulable, equals: true }
      - { cluster: c1, kind: Pod, namespace: ai, selector: "app=llama", on_node: n1, count: 0 }
    then:
      - { patch: { cluster: c1, kind: Deployment, namespace: ai, name: llama, merge: { status: { readyReplicas: 3, availableReplicas: 3 } } } }
      - { delete_series: { match: 'xid_errors{node="n1"}' } }
expected:
  root_cause: { any_of: ["SECRET-EXPECTED"] }
"#;

pub const NODES: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: { kubernetes.io/hostname: n1, nvidia.com/gpu.present: "true", node-role.kubernetes.io/gpu: "" }
spec: {}
status:
  conditions: [{ type: Ready, status: "True" }]
  nodeInfo: { kubeletVersion: v1.32.1 }
  addresses: [{ type: InternalIP, address: 10.0.0.1 }]
---
apiVersion: v1
kind: Node
metadata: { name: n2, labels: { kubernetes.io/hostname: n2 } }
spec: {}
status:
  conditions: [{ type: Ready, status: "True" }]
  nodeInfo: { kubeletVersion: v1.32.1 }
"#;

pub fn pod(name: &str, node: &str, ready: bool, labels: &str, containers: &[&str]) -> String {
    let cs: Vec<String> = containers
        .iter()
        .map(|c| format!("    - {{ name: {c}, image: \"registry.example/{c}:1\" }}"))
        .collect();
    let st: Vec<String> = containers
        .iter()
        .map(|c| format!("    - {{ name: {c}, ready: {ready}, restartCount: 2, state: {{ running: {{ startedAt: \"2026-06-23T11:00:00Z\" }} }} }}"))
        .collect();
    let owner = if labels.contains("llama") {
        "\n  ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: llama-5d8f7c9b4, controller: true }]"
    } else {
        "\n  ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: web-7f9c, controller: true }]"
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: ai\n  labels: {labels}{owner}\n  creationTimestamp: \"2026-06-23T10:00:00Z\"\nspec:\n  nodeName: {node}\n  containers:\n{}\nstatus:\n  phase: Running\n  podIP: 10.1.0.9\n  conditions: [{{ type: Ready, status: \"{}\" }}]\n  containerStatuses:\n{}\n",
        cs.join("\n"),
        if ready { "True" } else { "False" },
        st.join("\n")
    )
}

pub fn workloads() -> String {
    let mut docs = vec![
        r#"apiVersion: v1
kind: Namespace
metadata: { name: ai }
status: { phase: Active }"#
            .to_string(),
        r#"apiVersion: apps/v1
kind: Deployment
metadata: { name: llama, namespace: ai, labels: { app: llama }, annotations: { deployment.kubernetes.io/revision: "1" } }
spec:
  replicas: 3
  selector: { matchLabels: { app: llama } }
  template:
    metadata: { labels: { app: llama } }
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.6.0
          env: [{ name: MODEL, value: llama-3-8b }, { name: TP, value: "1" }]
          resources: { limits: { memory: 8Gi } }
        - { name: sidecar, image: "registry.example/sidecar:1" }
status: { replicas: 3, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 3 }"#
            .to_string(),
        r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: llama-5d8f7c9b4
  namespace: ai
  labels: { app: llama, pod-template-hash: 5d8f7c9b4 }
  annotations: { deployment.kubernetes.io/revision: "1" }
  ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: llama, controller: true }]
spec:
  replicas: 3
  selector: { matchLabels: { app: llama, pod-template-hash: 5d8f7c9b4 } }
  template:
    metadata: { labels: { app: llama, pod-template-hash: 5d8f7c9b4 } }
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.6.0
          env: [{ name: MODEL, value: llama-3-8b }, { name: TP, value: "1" }]
          resources: { limits: { memory: 8Gi } }
        - { name: sidecar, image: "registry.example/sidecar:1" }
status: { replicas: 3, readyReplicas: 2 }"#
            .to_string(),
        r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: llama-pdb, namespace: ai }
spec:
  minAvailable: 2
  selector: { matchLabels: { app: llama } }"#
            .to_string(),
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: { name: dcgm-exporter, namespace: kube-system }
spec:
  selector: { matchLabels: { app: dcgm } }
  template:
    metadata: { labels: { app: dcgm } }
    spec: { containers: [{ name: dcgm, image: "nvcr.io/dcgm-exporter:3" }] }"#
            .to_string(),
        r#"apiVersion: v1
kind: Pod
metadata:
  name: dcgm-n1
  namespace: kube-system
  labels: { app: dcgm }
  ownerReferences: [{ apiVersion: apps/v1, kind: DaemonSet, name: dcgm-exporter, uid: 00000000-0000-4000-8000-000000000001, controller: true }]
spec: { nodeName: n1, containers: [{ name: dcgm, image: "nvcr.io/dcgm-exporter:3" }] }
status: { phase: Running, conditions: [{ type: Ready, status: "True" }] }"#
            .to_string(),
        r#"apiVersion: v1
kind: Event
metadata: { name: llama-a.1, namespace: ai }
involvedObject: { kind: Pod, name: llama-a, namespace: ai }
reason: BackOff
type: Warning
message: "Back-off restarting failed container vllm"
lastTimestamp: "2026-06-23T11:59:00Z""#
            .to_string(),
    ];
    docs.push(pod(
        "llama-a",
        "n1",
        true,
        "{ app: llama, tier: gpu }",
        &["vllm", "sidecar"],
    ));
    docs.push(pod(
        "llama-b",
        "n1",
        true,
        "{ app: llama, tier: gpu }",
        &["vllm"],
    ));
    docs.push(pod("llama-c", "n2", true, "{ app: llama }", &["vllm"]));
    docs.push(pod("web-1", "n2", true, "{ app: web }", &["web"]));
    docs.join("\n---\n")
}

pub const RBAC: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: medic-read }
rules:
  - { apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch] }
  - { apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: medic-impersonate }
rules:
  - { apiGroups: [""], resources: [users], verbs: [impersonate], resourceNames: [alice@corp.example, bob@corp.example] }
  - { apiGroups: [""], resources: [groups], verbs: [impersonate], resourceNames: [sre] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: medic }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: medic-read }
subjects: [{ kind: ServiceAccount, name: medic, namespace: medic }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: medic-impersonate }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: medic-impersonate }
subjects: [{ kind: ServiceAccount, name: medic, namespace: medic }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: sre-operator }
rules:
  - { apiGroups: [apps], resources: [deployments, deployments/scale, deployments/status, replicasets, daemonsets], verbs: [get, list, watch, patch, update] }
  - { apiGroups: [""], resources: [pods, pods/log], verbs: [get, list, watch, delete, patch] }
  - { apiGroups: [""], resources: [pods/eviction], verbs: [create] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: alice-operator, namespace: ai }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sre-operator }
subjects: [{ kind: User, name: alice@corp.example, apiGroup: rbac.authorization.k8s.io }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: node-drainer }
rules:
  - { apiGroups: [""], resources: [nodes], verbs: [get, list, patch, update] }
  - { apiGroups: [""], resources: [pods], verbs: [get, list] }
  - { apiGroups: [""], resources: [pods/eviction], verbs: [create] }
  - { apiGroups: [apps], resources: [daemonsets], verbs: [get, list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: alice-drainer }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-drainer }
subjects: [{ kind: User, name: alice@corp.example, apiGroup: rbac.authorization.k8s.io }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pod-viewer, namespace: ai }
rules:
  - { apiGroups: [""], resources: [pods], verbs: [get, list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: leads-view, namespace: ai }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-viewer }
subjects: [{ kind: Group, name: platform-leads, apiGroup: rbac.authorization.k8s.io }]
"#;

pub const VLLM_LOG: &str = "2026-06-23T11:58:00.000000000Z INFO starting vLLM\n2026-06-23T11:59:00.000000000Z INFO loaded model\n2026-06-23T11:59:30.000000000Z WARN high latency\n";
pub const VLLM_PREVIOUS_LOG: &str = "2026-06-23T11:50:00.000000000Z INFO starting vLLM\n2026-06-23T11:50:05.000000000Z ERROR CUDA error: unspecified launch failure (Xid 79)\n";

pub const METRICS: &str = "# TYPE xid_errors gauge\nxid_errors{node=\"n1\",gpu=\"0\"} 3 1782215700\nxid_errors{node=\"n1\",gpu=\"0\"} 79 1782215900\nxid_errors{node=\"n2\",gpu=\"0\"} 0 1782215900\n# EOF\n";

/// A bundle in a temporary folder.
pub struct TestBundle {
    pub dir: TempDir,
}

impl TestBundle {
    /// The full valid test bundle.
    pub fn valid() -> TestBundle {
        let b = TestBundle::empty();
        b.write("scenario.yaml", SCENARIO);
        b.write("clusters/c1/objects/nodes.yaml", NODES);
        b.write("clusters/c1/objects/ai.yaml", &workloads());
        b.write("clusters/c1/objects/rbac.yaml", RBAC);
        b.write("clusters/c1/logs/ai/llama-a/vllm.log", VLLM_LOG);
        b.write(
            "clusters/c1/logs/ai/llama-a/vllm.previous.log",
            VLLM_PREVIOUS_LOG,
        );
        b.write(
            "clusters/c1/logs/ai/llama-a/sidecar.log",
            "2026-06-23T11:58:00Z sidecar up\n",
        );
        b.write("metrics/gpu.om", METRICS);
        b.write("github/acme/llama/commits.json", r#"[{"sha": "abc123", "commit": {"message": "bump vllm"}, "files": [{"filename": "deploy/llama.yaml"}]}, {"sha": "def456", "commit": {"message": "initial"}}]"#);
        b.write("github/acme/llama/pulls.json", "[]");
        b.write("runbooks/gpu.yaml", "name: gpu\nalerts: [GpuXid]\n");
        b.write("policy.yaml", "roles: []\n");
        b
    }

    pub fn empty() -> TestBundle {
        TestBundle {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn remove(&self, rel: &str) -> &Self {
        let p = self.dir.path().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
        self
    }

    /// Replaces `from` by `to` in scenario.yaml (which must contain `from`).
    pub fn edit_scenario(&self, from: &str, to: &str) -> &Self {
        let p = self.dir.path().join("scenario.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "scenario has no {from:?}");
        std::fs::write(p, text.replacen(from, to, 1)).unwrap();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Problems rendered as `medic sandbox check` prints them.
    pub fn problems(&self) -> Vec<String> {
        medic_sandbox::Bundle::check(self.path())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }
}

/// Starts a sandbox on the bundle.
pub async fn start(b: &TestBundle) -> medic_sandbox::SandboxHandle {
    let bundle = medic_sandbox::Bundle::load(b.path()).unwrap();
    let options = medic_sandbox::SandboxOptions {
        kubeconfig_path: Some(b.path().join("out/kubeconfig")),
        ..Default::default()
    };
    medic_sandbox::Sandbox::start(&bundle, options)
        .await
        .unwrap()
}

/// A kube client for `identity` on cluster `c1`, built from the generated kubeconfig.
pub async fn client(h: &medic_sandbox::SandboxHandle, identity: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(h.kubeconfig_yaml()).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some("c1".into()),
        cluster: None,
        user: Some(identity.into()),
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    config.default_namespace = "ai".into();
    // kube retries 429 up to 15 times with back-off; a PodDisruptionBudget refusal is final.
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

/// The API error carried by a kube error.
pub fn status(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Sends a raw request through the kube client and returns (status, JSON body).
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
    content_type: &str,
) -> (u16, serde_json::Value) {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", content_type);
    }
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let resp = client
        .send(req.body(kube::client::Body::from(bytes)).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let collected = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        code,
        serde_json::from_slice(&collected).unwrap_or(serde_json::Value::Null),
    )
}
