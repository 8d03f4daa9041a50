//! Kind → API resource mapping.
//!
//! `expected` names objects by `kind`, while the sandbox's request log records the API group
//! and the resource plural, and [`medic_sandbox::SandboxHandle::object`] wants an
//! `apiVersion`. The table below holds the kinds Kubernetes and the popular add-ons serve;
//! [`KindTable::for_bundle`] adds the kinds declared by CustomResourceDefinitions and the
//! `apiVersion`s of the objects a bundle carries, so bundle authors never touch this file for
//! a CRD they ship.

use medic_sandbox::Bundle;
use serde_json::Value;

/// Where one kind is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// API group (`""` for core).
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Resource plural, e.g. `deployments`.
    pub plural: String,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

impl KindInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// (kind, group, version, plural, namespaced)
const BUILTIN: &[(&str, &str, &str, &str, bool)] = &[
    ("Pod", "", "v1", "pods", true),
    ("Service", "", "v1", "services", true),
    ("Endpoints", "", "v1", "endpoints", true),
    ("ConfigMap", "", "v1", "configmaps", true),
    ("Secret", "", "v1", "secrets", true),
    ("Namespace", "", "v1", "namespaces", false),
    ("Node", "", "v1", "nodes", false),
    ("Binding", "", "v1", "bindings", true),
    ("Event", "", "v1", "events", true),
    (
        "PersistentVolumeClaim",
        "",
        "v1",
        "persistentvolumeclaims",
        true,
    ),
    ("PersistentVolume", "", "v1", "persistentvolumes", false),
    ("ServiceAccount", "", "v1", "serviceaccounts", true),
    ("ResourceQuota", "", "v1", "resourcequotas", true),
    ("LimitRange", "", "v1", "limitranges", true),
    (
        "ReplicationController",
        "",
        "v1",
        "replicationcontrollers",
        true,
    ),
    ("Deployment", "apps", "v1", "deployments", true),
    ("ReplicaSet", "apps", "v1", "replicasets", true),
    ("StatefulSet", "apps", "v1", "statefulsets", true),
    ("DaemonSet", "apps", "v1", "daemonsets", true),
    (
        "ControllerRevision",
        "apps",
        "v1",
        "controllerrevisions",
        true,
    ),
    ("Job", "batch", "v1", "jobs", true),
    ("CronJob", "batch", "v1", "cronjobs", true),
    (
        "PodDisruptionBudget",
        "policy",
        "v1",
        "poddisruptionbudgets",
        true,
    ),
    (
        "HorizontalPodAutoscaler",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        true,
    ),
    ("Role", "rbac.authorization.k8s.io", "v1", "roles", true),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        false,
    ),
    (
        "RoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        true,
    ),
    (
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        false,
    ),
    ("Ingress", "networking.k8s.io", "v1", "ingresses", true),
    (
        "IngressClass",
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        false,
    ),
    (
        "NetworkPolicy",
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        true,
    ),
    (
        "StorageClass",
        "storage.k8s.io",
        "v1",
        "storageclasses",
        false,
    ),
    (
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        false,
    ),
    ("Lease", "coordination.k8s.io", "v1", "leases", true),
    (
        "EndpointSlice",
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        true,
    ),
    (
        "PriorityClass",
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        false,
    ),
    (
        "VirtualMachine",
        "kubevirt.io",
        "v1",
        "virtualmachines",
        true,
    ),
    (
        "VirtualMachineInstance",
        "kubevirt.io",
        "v1",
        "virtualmachineinstances",
        true,
    ),
    (
        "VirtualMachineInstanceMigration",
        "kubevirt.io",
        "v1",
        "virtualmachineinstancemigrations",
        true,
    ),
    (
        "GatewayClass",
        "gateway.networking.k8s.io",
        "v1",
        "gatewayclasses",
        false,
    ),
    (
        "Gateway",
        "gateway.networking.k8s.io",
        "v1",
        "gateways",
        true,
    ),
    (
        "HTTPRoute",
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        true,
    ),
    ("ScaledObject", "keda.sh", "v1alpha1", "scaledobjects", true),
    ("Workspace", "kaito.sh", "v1beta1", "workspaces", true),
    (
        "ResourceClaim",
        "resource.k8s.io",
        "v1",
        "resourceclaims",
        true,
    ),
    (
        "ResourceClaimTemplate",
        "resource.k8s.io",
        "v1",
        "resourceclaimtemplates",
        true,
    ),
    (
        "DeviceClass",
        "resource.k8s.io",
        "v1",
        "deviceclasses",
        false,
    ),
    (
        "ResourceSlice",
        "resource.k8s.io",
        "v1",
        "resourceslices",
        false,
    ),
    (
        "Application",
        "argoproj.io",
        "v1alpha1",
        "applications",
        true,
    ),
    (
        "CiliumNetworkPolicy",
        "cilium.io",
        "v2",
        "ciliumnetworkpolicies",
        true,
    ),
    (
        "ServiceExport",
        "multicluster.x-k8s.io",
        "v1alpha1",
        "serviceexports",
        true,
    ),
    (
        "ServiceImport",
        "multicluster.x-k8s.io",
        "v1alpha1",
        "serviceimports",
        true,
    ),
];

/// Kinds known for one bundle (or the built-in list alone).
#[derive(Debug, Clone, Default)]
pub struct KindTable {
    entries: Vec<KindInfo>,
}

impl KindTable {
    /// The built-in kinds.
    pub fn builtin() -> KindTable {
        let entries = BUILTIN
            .iter()
            .map(|(kind, group, version, plural, namespaced)| KindInfo {
                kind: (*kind).into(),
                group: (*group).into(),
                version: (*version).into(),
                plural: (*plural).into(),
                namespaced: *namespaced,
            })
            .collect();
        KindTable { entries }
    }

    /// The built-in kinds, overridden by every CRD among the bundle's objects, with versions
    /// taken from the `apiVersion` the bundle's objects actually use.
    pub fn for_bundle(bundle: &Bundle) -> KindTable {
        let mut table = KindTable::builtin();
        for cluster in &bundle.clusters {
            for obj in &cluster.objects {
                if obj["kind"] == "CustomResourceDefinition" {
                    table.add_crd(obj);
                }
            }
        }
        // A bundle may carry an older or newer version than the table lists (e.g.
        // resource.k8s.io/v1beta1); the version its objects use is the one the sandbox serves.
        for cluster in &bundle.clusters {
            for obj in &cluster.objects {
                let (Some(av), Some(kind)) = (obj["apiVersion"].as_str(), obj["kind"].as_str())
                else {
                    continue;
                };
                let (group, version) = av.split_once('/').unwrap_or(("", av));
                if let Some(e) = table
                    .entries
                    .iter_mut()
                    .find(|e| e.kind == kind && e.group == group)
                {
                    e.version = version.to_string();
                }
            }
        }
        table
    }

    fn add_crd(&mut self, crd: &Value) {
        let spec = &crd["spec"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            spec["names"]["kind"].as_str(),
            spec["names"]["plural"].as_str(),
        ) else {
            return;
        };
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        let version = versions
            .iter()
            .find(|v| v["storage"] == true)
            .or_else(|| versions.first())
            .and_then(|v| v["name"].as_str())
            .unwrap_or("v1");
        let info = KindInfo {
            kind: kind.into(),
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            namespaced: spec["scope"] != "Cluster",
        };
        self.entries
            .retain(|e| !(e.kind == info.kind && e.group == info.group));
        self.entries.push(info);
    }

    /// The entry for a kind (exact, then case-insensitive).
    pub fn lookup(&self, kind: &str) -> Option<&KindInfo> {
        self.entries.iter().find(|e| e.kind == kind).or_else(|| {
            self.entries
                .iter()
                .find(|e| e.kind.eq_ignore_ascii_case(kind))
        })
    }

    /// Whether `(group, plural)` is served as `kind`.
    pub fn is_resource_of(&self, kind: &str, group: &str, plural: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.kind.eq_ignore_ascii_case(kind) && e.group == group && e.plural == plural)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn builtin_lookup_and_api_version() {
        let t = KindTable::builtin();
        assert_eq!(t.lookup("Deployment").unwrap().api_version(), "apps/v1");
        assert_eq!(t.lookup("node").unwrap().api_version(), "v1");
        assert!(!t.lookup("Node").unwrap().namespaced);
        assert!(t.is_resource_of("HTTPRoute", "gateway.networking.k8s.io", "httproutes"));
        assert!(!t.is_resource_of("Deployment", "", "deployments"));
        assert!(t.lookup("Frobnicator").is_none());
    }

    #[test]
    fn crd_overrides_and_adds() {
        let mut t = KindTable::builtin();
        t.add_crd(&serde_json::json!({
            "kind": "CustomResourceDefinition",
            "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": "v1alpha1"}, {"name": "v2", "storage": true}]}
        }));
        let w = t.lookup("Widget").unwrap();
        assert_eq!(w.api_version(), "example.com/v2");
        assert!(!w.namespaced);
    }
}
