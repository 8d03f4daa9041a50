//! The resource types a sandbox cluster serves: the core Kubernetes kinds, a built-in list of
//! popular custom resources, and whatever CustomResourceDefinitions a bundle carries.

use serde_json::Value;

/// Verbs a normal resource supports.
pub(crate) const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource (group/version/plural) and what the server knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Subresources such as `status`, `scale`, `log`, `eviction`.
    pub subresources: Vec<String>,
    /// Only `create` (access reviews).
    pub create_only: bool,
    /// Storage key shared by aliases (`events.k8s.io` events live with core events).
    pub storage: String,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `pods` or `deployments.apps`, as API error messages print it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            vec!["create"]
        } else {
            ALL_VERBS.to_vec()
        }
    }
}

/// Every resource type a cluster serves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub types: Vec<ResourceType>,
}

struct Def(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

/// (group, version, kind, plural, namespaced, short names, subresources)
const BUILTIN: &[Def] = &[
    Def(
        "",
        "v1",
        "Pod",
        "pods",
        true,
        &["po"],
        &["log", "eviction", "status"],
    ),
    Def("", "v1", "Service", "services", true, &["svc"], &["status"]),
    Def("", "v1", "Endpoints", "endpoints", true, &["ep"], &[]),
    Def("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[]),
    Def("", "v1", "Secret", "secrets", true, &[], &[]),
    Def(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &["status"],
    ),
    Def("", "v1", "Node", "nodes", false, &["no"], &["status"]),
    Def("", "v1", "Event", "events", true, &["ev"], &[]),
    Def(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        &["status"],
    ),
    Def(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
        &["status"],
    ),
    Def(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
    ),
    Def(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
        &["status"],
    ),
    Def(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
        &[],
    ),
    Def(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
        &["rc"],
        &["status", "scale"],
    ),
    Def(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    Def(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    Def(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    Def(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["status"],
    ),
    Def(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
        &[],
    ),
    Def("batch", "v1", "Job", "jobs", true, &[], &["status"]),
    Def(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["cj"],
        &["status"],
    ),
    Def(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &["status"],
    ),
    Def(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        &["status"],
    ),
    Def(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        &[],
    ),
    Def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        &[],
    ),
    Def(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        &[],
    ),
    Def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        &[],
    ),
    Def(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        &["status"],
    ),
    Def(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
        &[],
    ),
    Def(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        &[],
    ),
    Def(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
        &[],
    ),
    Def(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &["status"],
    ),
    Def(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        &[],
    ),
    Def(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        &[],
    ),
    Def("events.k8s.io", "v1", "Event", "events", true, &["ev"], &[]),
    Def(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
        &[],
    ),
    Def(
        "kubevirt.io",
        "v1",
        "VirtualMachine",
        "virtualmachines",
        true,
        &["vm", "vms"],
        &["status"],
    ),
    Def(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
        true,
        &["vmi", "vmis"],
        &["status"],
    ),
    Def(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
        true,
        &["vmim", "vmims"],
        &["status"],
    ),
    Def(
        "gateway.networking.k8s.io",
        "v1",
        "GatewayClass",
        "gatewayclasses",
        false,
        &["gc"],
        &["status"],
    ),
    Def(
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        "gateways",
        true,
        &["gtw"],
        &["status"],
    ),
    Def(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
        true,
        &[],
        &["status"],
    ),
    Def(
        "keda.sh",
        "v1alpha1",
        "ScaledObject",
        "scaledobjects",
        true,
        &["so"],
        &["status"],
    ),
    Def(
        "kaito.sh",
        "v1beta1",
        "Workspace",
        "workspaces",
        true,
        &[],
        &["status"],
    ),
    Def(
        "resource.k8s.io",
        "v1",
        "ResourceClaim",
        "resourceclaims",
        true,
        &[],
        &["status"],
    ),
    Def(
        "resource.k8s.io",
        "v1",
        "ResourceClaimTemplate",
        "resourceclaimtemplates",
        true,
        &[],
        &[],
    ),
    Def(
        "resource.k8s.io",
        "v1",
        "DeviceClass",
        "deviceclasses",
        false,
        &[],
        &[],
    ),
    Def(
        "resource.k8s.io",
        "v1",
        "ResourceSlice",
        "resourceslices",
        false,
        &[],
        &[],
    ),
    Def(
        "resource.k8s.io",
        "v1beta1",
        "ResourceClaim",
        "resourceclaims",
        true,
        &[],
        &["status"],
    ),
    Def(
        "resource.k8s.io",
        "v1beta1",
        "ResourceClaimTemplate",
        "resourceclaimtemplates",
        true,
        &[],
        &[],
    ),
    Def(
        "resource.k8s.io",
        "v1beta1",
        "DeviceClass",
        "deviceclasses",
        false,
        &[],
        &[],
    ),
    Def(
        "resource.k8s.io",
        "v1beta1",
        "ResourceSlice",
        "resourceslices",
        false,
        &[],
        &[],
    ),
    Def(
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
        &["app", "apps"],
        &["status"],
    ),
];

/// Access reviews: create-only resources.
const REVIEWS: &[(&str, &str, bool)] = &[
    ("SubjectAccessReview", "subjectaccessreviews", false),
    ("SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
    (
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
    ),
];

impl Catalog {
    /// The built-in types plus those declared by `crds` (CustomResourceDefinition objects).
    pub fn with_crds<'a>(crds: impl IntoIterator<Item = &'a Value>) -> Catalog {
        let mut types: Vec<ResourceType> = BUILTIN
            .iter()
            .map(|d| {
                let storage = if d.2 == "Event" {
                    "/events".to_string()
                } else {
                    format!("{}/{}", d.0, d.3)
                };
                ResourceType {
                    group: d.0.into(),
                    version: d.1.into(),
                    kind: d.2.into(),
                    plural: d.3.into(),
                    singular: d.2.to_lowercase(),
                    namespaced: d.4,
                    short_names: d.5.iter().map(|s| s.to_string()).collect(),
                    subresources: d.6.iter().map(|s| s.to_string()).collect(),
                    create_only: false,
                    storage,
                }
            })
            .collect();
        for (kind, plural, namespaced) in REVIEWS {
            types.push(ResourceType {
                group: "authorization.k8s.io".into(),
                version: "v1".into(),
                kind: (*kind).into(),
                plural: (*plural).into(),
                singular: kind.to_lowercase(),
                namespaced: *namespaced,
                short_names: vec![],
                subresources: vec![],
                create_only: true,
                storage: format!("authorization.k8s.io/{plural}"),
            });
        }
        for crd in crds {
            for rt in from_crd(crd) {
                types.retain(|t| {
                    !(t.group == rt.group && t.version == rt.version && t.plural == rt.plural)
                });
                types.push(rt);
            }
        }
        Catalog { types }
    }

    /// The type serving `group`/`version`/`plural`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The type for an object's `apiVersion` and `kind`.
    pub fn by_api_version_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// The first type with this kind, preferring the core group and the first version listed.
    pub fn by_kind(&self, kind: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.kind == kind)
    }

    /// Groups in the order they first appear, each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(kind), Some(plural)) = (names["kind"].as_str(), names["plural"].as_str()) else {
        return vec![];
    };
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        let Some(version) = v["name"].as_str() else {
            continue;
        };
        if v["served"] == Value::Bool(false) {
            continue;
        }
        let mut subresources = Vec::new();
        if let Some(subs) = v["subresources"].as_object() {
            subresources.extend(subs.keys().cloned());
        }
        out.push(ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: singular.clone(),
            namespaced,
            short_names: short_names.clone(),
            subresources,
            create_only: false,
            storage: format!("{group}/{plural}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn crds_add_types_and_builtins_exist() {
        let crd = serde_json::json!({"spec": {"group": "example.com", "scope": "Cluster",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "subresources": {"status": {}}}]}});
        let c = Catalog::with_crds([&crd]);
        let w = c.by_api_version_kind("example.com/v1", "Widget").unwrap();
        assert!(!w.namespaced);
        assert_eq!(w.subresources, vec!["status".to_string()]);
        assert_eq!(
            c.by_kind("Deployment").unwrap().qualified(),
            "deployments.apps"
        );
        assert_eq!(
            c.by_plural("events.k8s.io", "v1", "events")
                .unwrap()
                .storage,
            "/events"
        );
    }
}
