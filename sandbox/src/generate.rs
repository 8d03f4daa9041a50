//! Synthetic bundles for benchmarks and load tests: `pods` pods spread over `nodes` nodes,
//! one cluster, medic allowed to read everything.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

fn write(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
}

/// Writes a valid bundle into `dir` (cluster `bench`, namespaces `team-0`..`team-9`) with
/// `nodes` nodes and `pods` pods assigned round-robin, 1 in 50 pods crash-looping.
pub fn synthesize(dir: &Path, pods: usize, nodes: usize) -> Result<()> {
    let nodes = nodes.max(1);
    write(
        dir,
        "scenario.yaml",
        "version: 1\ntitle: synthetic load\nnow: \"2026-06-23T12:00:00Z\"\nclusters:\n  - { name: bench }\nstart:\n  question: \"Which pods are unhealthy?\"\nidentities:\n  - { name: medic, kube_user: \"system:serviceaccount:medic:medic\", agent: true }\n",
    )?;
    write(
        dir,
        "clusters/bench/objects/rbac.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: read-all }\nrules: [{ apiGroups: [\"*\"], resources: [\"*\"], verbs: [get, list, watch] }]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: { name: medic-read-all }\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: read-all }\nsubjects: [{ kind: ServiceAccount, name: medic, namespace: medic }]\n",
    )?;
    let mut text = String::new();
    for n in 0..nodes {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-{n:04}\n  labels: {{ kubernetes.io/hostname: node-{n:04}, topology.kubernetes.io/zone: zone-{} }}\nspec: {{}}\nstatus:\n  conditions: [{{ type: Ready, status: \"True\" }}]\n  capacity: {{ cpu: \"32\", memory: 128Gi, pods: \"110\" }}\n  nodeInfo: {{ kubeletVersion: v1.32.1 }}\n",
            n % 3
        );
    }
    write(dir, "clusters/bench/objects/nodes.yaml", &text)?;
    for (chunk, start) in (0..pods).step_by(1000).enumerate() {
        let mut text = String::new();
        for p in start..(start + 1000).min(pods) {
            let team = p % 10;
            let app = p % 97;
            let crashing = p % 50 == 0;
            let (ready, state) = if crashing {
                ("false", "{ waiting: { reason: CrashLoopBackOff } }")
            } else {
                (
                    "true",
                    "{ running: { startedAt: \"2026-06-23T10:00:00Z\" } }",
                )
            };
            let _ = write!(
                text,
                "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{app}-{p:06}\n  namespace: team-{team}\n  labels: {{ app: app-{app}, team: team-{team} }}\n  ownerReferences: [{{ apiVersion: apps/v1, kind: ReplicaSet, name: app-{app}-rs, controller: true }}]\nspec:\n  nodeName: node-{:04}\n  containers:\n    - name: main\n      image: registry.example/app-{app}:1.{}\n      resources: {{ requests: {{ cpu: 100m, memory: 256Mi }}, limits: {{ memory: 512Mi }} }}\nstatus:\n  phase: Running\n  podIP: 10.{}.{}.{}\n  conditions: [{{ type: Ready, status: \"{}\" }}]\n  containerStatuses:\n    - {{ name: main, ready: {ready}, restartCount: {}, image: registry.example/app-{app}:1.{}, state: {state} }}\n",
                p % nodes,
                p % 7,
                p / 65536 % 256,
                p / 256 % 256,
                p % 256,
                if crashing { "False" } else { "True" },
                if crashing { 12 } else { 0 },
                p % 7,
            );
        }
        write(
            dir,
            &format!("clusters/bench/objects/pods-{chunk:03}.yaml"),
            &text,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn synthetic_bundles_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        synthesize(dir.path(), 120, 7).unwrap();
        let b = crate::Bundle::load(dir.path()).unwrap();
        let pods = b.clusters[0]
            .objects
            .iter()
            .filter(|o| o["kind"] == "Pod")
            .count();
        let nodes = b.clusters[0]
            .objects
            .iter()
            .filter(|o| o["kind"] == "Node")
            .count();
        assert_eq!((pods, nodes), (120, 7));
    }
}
