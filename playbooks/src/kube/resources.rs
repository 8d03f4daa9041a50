//! The resource types medic's playbooks touch: kind → group, version, plural, scope.
//!
//! A static table rather than discovery: planning must not depend on an extra round trip,
//! and a kind missing here is a playbook bug, reported as such.

use crate::error::{Error, Result};

/// Where a kind lives in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const TABLE: &[(&str, &str, &str, &str, bool)] = &[
    // (group, version, kind, plural, namespaced)
    ("", "v1", "Node", "nodes", false),
    ("", "v1", "Namespace", "namespaces", false),
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "Event", "events", true),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
        true,
    ),
    (
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        "gateways",
        true,
    ),
    (
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceImport",
        "serviceimports",
        true,
    ),
    (
        "kubevirt.io",
        "v1",
        "VirtualMachine",
        "virtualmachines",
        true,
    ),
    (
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
        true,
    ),
    (
        "kubevirt.io",
        "v1",
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
        true,
    ),
    (
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
        true,
    ),
];

/// The resource of `api_version` + `kind`, if medic knows it.
pub(crate) fn resource_of(api_version: &str, kind: &str) -> Option<ResourceInfo> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    TABLE
        .iter()
        .find(|(g, v, k, _, _)| *g == group && *v == version && *k == kind)
        .map(|(g, v, _, p, n)| ResourceInfo {
            group: g,
            version: v,
            plural: p,
            namespaced: *n,
        })
}

impl ResourceInfo {
    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Path of the collection (in a namespace for namespaced kinds).
    pub(crate) fn collection_path(&self, namespace: Option<&str>) -> Result<String> {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => Ok(format!("{}/namespaces/{ns}/{}", self.prefix(), self.plural)),
            (true, None) => Ok(format!("{}/{}", self.prefix(), self.plural)),
            (false, _) => Ok(format!("{}/{}", self.prefix(), self.plural)),
        }
    }

    /// Path of one object.
    pub(crate) fn object_path(&self, namespace: Option<&str>, name: &str) -> Result<String> {
        if self.namespaced && namespace.is_none() {
            return Err(Error::Precondition(format!(
                "{} {name} is namespaced but no namespace was given",
                self.plural
            )));
        }
        Ok(format!("{}/{name}", self.collection_path(namespace)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn paths_for_core_and_grouped_kinds() {
        let node = resource_of("v1", "Node").unwrap();
        assert_eq!(node.object_path(None, "n1").unwrap(), "/api/v1/nodes/n1");
        let d = resource_of("apps/v1", "Deployment").unwrap();
        assert_eq!(
            d.object_path(Some("ai"), "llama").unwrap(),
            "/apis/apps/v1/namespaces/ai/deployments/llama"
        );
        assert!(d.object_path(None, "llama").is_err());
        assert!(resource_of("apps/v1", "Nope").is_none());
    }
}
