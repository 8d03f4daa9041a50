//! `k8s_list`, plus typed list functions analyzers call directly. `k8s_describe` and
//! `k8s_events` live in `describe.rs` and `events.rs` and are re-exported here.

use super::core::*;
use super::crd::*;
use super::net::*;
use super::netpol::{NetworkPolicySummary, network_policy_summary};
use super::types::{Health, short};
use super::{explain_not_found, get, kube_err, list, list_dynamic, namespace_error};
use crate::context::{Cluster, ToolContext};
use crate::error::{Result, ToolError};
use crate::evidence::{EvidenceRef, ObjectRef};
use crate::tool::{Render, Tool};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::describe::*;
pub use super::events::*;

/// Kinds the Kubernetes tools read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Kind {
    Pods,
    Deployments,
    Replicasets,
    Statefulsets,
    Daemonsets,
    Jobs,
    Nodes,
    Services,
    Pdbs,
    Hpas,
    Scaledobjects,
    Gateways,
    Httproutes,
    Vms,
    Vmis,
    Resourceclaims,
    Resourceslices,
    Workspaces,
    Applications,
    Namespaces,
    Secrets,
    Configmaps,
    Networkpolicies,
    Ciliumnetworkpolicies,
}

impl Kind {
    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Nodes | Kind::Resourceslices | Kind::Namespaces)
    }
    /// The Kubernetes kind name.
    pub fn kind_name(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::Deployments => "Deployment",
            Kind::Replicasets => "ReplicaSet",
            Kind::Statefulsets => "StatefulSet",
            Kind::Daemonsets => "DaemonSet",
            Kind::Jobs => "Job",
            Kind::Nodes => "Node",
            Kind::Services => "Service",
            Kind::Pdbs => "PodDisruptionBudget",
            Kind::Hpas => "HorizontalPodAutoscaler",
            Kind::Scaledobjects => "ScaledObject",
            Kind::Gateways => "Gateway",
            Kind::Httproutes => "HTTPRoute",
            Kind::Vms => "VirtualMachine",
            Kind::Vmis => "VirtualMachineInstance",
            Kind::Resourceclaims => "ResourceClaim",
            Kind::Resourceslices => "ResourceSlice",
            Kind::Workspaces => "Workspace",
            Kind::Applications => "Application",
            Kind::Namespaces => "Namespace",
            Kind::Secrets => "Secret",
            Kind::Configmaps => "ConfigMap",
            Kind::Networkpolicies => "NetworkPolicy",
            Kind::Ciliumnetworkpolicies => "CiliumNetworkPolicy",
        }
    }
    pub(crate) fn group(self) -> (&'static str, &'static str) {
        match self {
            Kind::Scaledobjects => ("keda.sh", "KEDA"),
            Kind::Gateways | Kind::Httproutes => ("gateway.networking.k8s.io", "Gateway API"),
            Kind::Vms | Kind::Vmis => ("kubevirt.io", "KubeVirt"),
            Kind::Resourceclaims | Kind::Resourceslices => {
                ("resource.k8s.io", "Dynamic Resource Allocation")
            }
            Kind::Workspaces => ("kaito.sh", "KAITO"),
            Kind::Applications => ("argoproj.io", "Argo CD"),
            Kind::Ciliumnetworkpolicies => ("cilium.io", "Cilium"),
            _ => ("", ""),
        }
    }
}

/// A typed summary of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Summary {
    Pod(PodSummary),
    Workload(WorkloadSummary),
    Job(JobSummary),
    Node(NodeSummary),
    Service(ServiceSummary),
    Pdb(PdbSummary),
    Hpa(HpaSummary),
    ScaledObject(ScaledObjectSummary),
    Gateway(GatewaySummary),
    HttpRoute(HttpRouteSummary),
    Vm(VmSummary),
    ResourceClaim(ResourceClaimSummary),
    ResourceSlice(ResourceSliceSummary),
    Workspace(WorkspaceSummary),
    Application(ApplicationSummary),
    NetworkPolicy(NetworkPolicySummary),
    Meta(MetaSummary),
}

impl Summary {
    /// Health for ordering.
    pub fn health(&self) -> Health {
        match self {
            Summary::Pod(x) => x.health(),
            Summary::Workload(x) => x.health(),
            Summary::Job(x) => x.health(),
            Summary::Node(x) => x.health(),
            Summary::Service(x) => x.health(),
            Summary::Pdb(x) => x.health(),
            Summary::Hpa(x) => x.health(),
            Summary::ScaledObject(x) => x.health(),
            Summary::Gateway(x) => x.health(),
            Summary::HttpRoute(x) => x.health(),
            Summary::Vm(x) => x.health(),
            Summary::ResourceClaim(x) => x.health(),
            Summary::Workspace(x) => x.health(),
            Summary::Application(x) => x.health(),
            Summary::NetworkPolicy(x) => x.health(),
            Summary::ResourceSlice(_) | Summary::Meta(_) => Health::Healthy,
        }
    }
    /// One line.
    pub fn line(&self) -> String {
        match self {
            Summary::Pod(x) => x.line(),
            Summary::Workload(x) => x.line(),
            Summary::Job(x) => x.line(),
            Summary::Node(x) => x.line(),
            Summary::Service(x) => x.line(),
            Summary::Pdb(x) => x.line(),
            Summary::Hpa(x) => x.line(),
            Summary::ScaledObject(x) => x.line(),
            Summary::Gateway(x) => x.line(),
            Summary::HttpRoute(x) => x.line(),
            Summary::Vm(x) => x.line(),
            Summary::ResourceClaim(x) => x.line(),
            Summary::ResourceSlice(x) => x.line(),
            Summary::Workspace(x) => x.line(),
            Summary::Application(x) => x.line(),
            Summary::NetworkPolicy(x) => x.line(),
            Summary::Meta(x) => x.line(),
        }
    }
    /// Multi-line detail.
    pub fn describe(&self) -> String {
        match self {
            Summary::Pod(x) => x.describe(),
            Summary::Workload(x) => x.describe(),
            Summary::Node(x) => x.describe(),
            Summary::Vm(x) => {
                let mut s = x.line();
                for c in &x.conditions {
                    s.push_str(&format!("\ncondition {}", c.line()));
                }
                s + "\n"
            }
            other => other.line() + "\n",
        }
    }
    /// (kind, namespace, name, uid) for evidence.
    pub fn ident(&self) -> (String, Option<String>, String, Option<String>) {
        fn n(ns: &str) -> Option<String> {
            (!ns.is_empty()).then(|| ns.to_string())
        }
        match self {
            Summary::Pod(x) => ("Pod".into(), n(&x.namespace), x.name.clone(), x.uid.clone()),
            Summary::Workload(x) => (
                x.kind.clone(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Job(x) => ("Job".into(), n(&x.namespace), x.name.clone(), x.uid.clone()),
            Summary::Node(x) => ("Node".into(), None, x.name.clone(), x.uid.clone()),
            Summary::Service(x) => (
                "Service".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Pdb(x) => (
                "PodDisruptionBudget".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Hpa(x) => (
                "HorizontalPodAutoscaler".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::ScaledObject(x) => (
                "ScaledObject".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Gateway(x) => (
                "Gateway".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::HttpRoute(x) => (
                "HTTPRoute".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Vm(x) => (
                x.kind.clone(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::ResourceClaim(x) => (
                "ResourceClaim".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::ResourceSlice(x) => {
                ("ResourceSlice".into(), None, x.name.clone(), x.uid.clone())
            }
            Summary::Workspace(x) => (
                "Workspace".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Application(x) => (
                "Application".into(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::NetworkPolicy(x) => (
                x.kind.clone(),
                n(&x.namespace),
                x.name.clone(),
                x.uid.clone(),
            ),
            Summary::Meta(x) => (
                x.kind.clone(),
                x.namespace.clone(),
                x.name.clone(),
                x.uid.clone(),
            ),
        }
    }
    /// Evidence reference in `cluster`.
    pub fn object_ref(&self, cluster: &str) -> ObjectRef {
        let (kind, namespace, name, uid) = self.ident();
        ObjectRef {
            cluster: cluster.to_string(),
            kind,
            namespace,
            name,
            uid,
        }
    }
}

pub(crate) fn meta_summary(
    kind: &str,
    md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> MetaSummary {
    MetaSummary {
        kind: kind.into(),
        name: md.name.clone().unwrap_or_default(),
        namespace: md.namespace.clone(),
        uid: md.uid.clone(),
        labels: super::types::key_labels(md.labels.as_ref()),
        created: md.creation_timestamp.as_ref().map(super::types::time),
        data_changed: None,
        data_changed_by: None,
    }
}

/// Metadata of a ConfigMap or Secret, with when its data was last written.
pub(crate) fn data_meta_summary(
    kind: &str,
    md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> MetaSummary {
    let mut m = meta_summary(kind, md);
    if let Some((at, by)) = super::types::last_write_meta(md, &["data", "binaryData", "stringData"])
    {
        m.data_changed = Some(at);
        m.data_changed_by = Some(by);
    }
    m
}

/// All pods (one namespace or all), summarised.
pub async fn list_pods(
    c: &Cluster,
    ns: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<PodSummary>> {
    if selector.is_none_or(str::is_empty) && c.pod_share.is_some() {
        match all_pods(c).await {
            Ok(all) => {
                return Ok(match ns {
                    None => all.as_ref().clone(),
                    Some(n) => all.iter().filter(|p| p.namespace == n).cloned().collect(),
                });
            }
            Err(e) if ns.is_none() => return Err(e),
            // Maybe only this namespace may be read: ask for it alone, as without sharing.
            Err(_) => {}
        }
    }
    Ok(list::<Pod>(c, ns, selector, "pods")
        .await?
        .iter()
        .map(pod_summary)
        .collect())
}

/// Every pod of the cluster, summarised: read once per [`ToolContext::with_shared_pod_list`]
/// copy when the cluster shares its pod list, else read now.
///
/// [`ToolContext::with_shared_pod_list`]: crate::ToolContext::with_shared_pod_list
pub async fn all_pods(c: &Cluster) -> Result<std::sync::Arc<Vec<PodSummary>>> {
    let read = || async {
        list::<Pod>(c, None, None, "pods")
            .await
            .map(|l| std::sync::Arc::new(l.iter().map(pod_summary).collect::<Vec<_>>()))
    };
    match &c.pod_share {
        Some(share) => share.get_or_init(read).await.clone(),
        None => read().await,
    }
}

/// All nodes with requested resources computed from the pods placed on them.
pub async fn list_nodes(c: &Cluster, selector: Option<&str>) -> Result<Vec<NodeSummary>> {
    let api: Api<Node> = Api::all(c.client.clone());
    let nodes = tokio::time::timeout(crate::context::CALL_TIMEOUT, api.list(&super::lp(selector)))
        .await
        .map_err(|_| ToolError::Upstream(format!("listing nodes in `{}` timed out", c.name)))?
        .map_err(|e| kube_err(&c.name, "nodes", e))?;
    let pods = all_pods(c).await?;
    Ok(node_summaries(&nodes.items, &pods))
}

/// Events (one namespace or all), warnings and recent first.
pub async fn list_events(c: &Cluster, ns: Option<&str>) -> Result<Vec<EventSummary>> {
    let mut ev: Vec<EventSummary> = list::<Event>(c, ns, None, "events")
        .await?
        .iter()
        .map(event_summary)
        .collect();
    sort_events(&mut ev);
    Ok(ev)
}

/// A Deployment and its rollout history.
pub async fn rollout(
    c: &Cluster,
    ns: &str,
    name: &str,
) -> Result<(WorkloadSummary, RolloutHistory)> {
    let d: Deployment = get(c, ns, name, "deployment").await?;
    let rs = list::<ReplicaSet>(c, Some(ns), None, "replicasets").await?;
    Ok((deployment_summary(&d), rollout_history(&d, &rs)))
}

/// List any kind, summarised and ordered problems first.
pub async fn list_kind(
    c: &Cluster,
    kind: Kind,
    ns: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Summary>> {
    let (group, what) = kind.group();
    let mut items: Vec<Summary> = match kind {
        Kind::Pods => list_pods(c, ns, selector)
            .await?
            .into_iter()
            .map(Summary::Pod)
            .collect(),
        Kind::Deployments => list::<Deployment>(c, ns, selector, "deployments")
            .await?
            .iter()
            .map(|d| Summary::Workload(deployment_summary(d)))
            .collect(),
        Kind::Replicasets => list::<ReplicaSet>(c, ns, selector, "replicasets")
            .await?
            .iter()
            .map(|d| Summary::Workload(replicaset_summary(d)))
            .collect(),
        Kind::Statefulsets => list::<StatefulSet>(c, ns, selector, "statefulsets")
            .await?
            .iter()
            .map(|d| Summary::Workload(statefulset_summary(d)))
            .collect(),
        Kind::Daemonsets => list::<DaemonSet>(c, ns, selector, "daemonsets")
            .await?
            .iter()
            .map(|d| Summary::Workload(daemonset_summary(d)))
            .collect(),
        Kind::Jobs => list::<Job>(c, ns, selector, "jobs")
            .await?
            .iter()
            .map(|j| Summary::Job(job_summary(j)))
            .collect(),
        Kind::Nodes => list_nodes(c, selector)
            .await?
            .into_iter()
            .map(Summary::Node)
            .collect(),
        Kind::Services => {
            let svcs = list::<Service>(c, ns, selector, "services").await?;
            let eps = list::<Endpoints>(c, ns, None, "endpoints")
                .await
                .unwrap_or_default();
            let slices = list::<EndpointSlice>(c, ns, None, "endpointslices")
                .await
                .unwrap_or_default();
            svcs.iter()
                .map(|s| {
                    let ep = eps.iter().find(|e| {
                        e.metadata.name == s.metadata.name
                            && e.metadata.namespace == s.metadata.namespace
                    });
                    Summary::Service(service_summary(s, ep, &slices_of(s, &slices)))
                })
                .collect()
        }
        Kind::Pdbs => list::<PodDisruptionBudget>(c, ns, selector, "poddisruptionbudgets")
            .await?
            .iter()
            .map(|p| Summary::Pdb(pdb_summary(p)))
            .collect(),
        Kind::Networkpolicies => list::<NetworkPolicy>(c, ns, selector, "networkpolicies")
            .await?
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .map(|mut v| {
                // Typed objects serialise without their kind.
                v["kind"] = serde_json::json!("NetworkPolicy");
                Summary::NetworkPolicy(network_policy_summary(&v))
            })
            .collect(),
        Kind::Hpas => list::<HorizontalPodAutoscaler>(c, ns, selector, "horizontalpodautoscalers")
            .await?
            .iter()
            .map(|h| Summary::Hpa(hpa_summary(h)))
            .collect(),
        Kind::Namespaces => {
            let api: Api<Namespace> = Api::all(c.client.clone());
            let l = api
                .list(&super::lp(selector))
                .await
                .map_err(|e| kube_err(&c.name, "namespaces", e))?;
            l.items
                .iter()
                .map(|n| Summary::Meta(meta_summary("Namespace", &n.metadata)))
                .collect()
        }
        // Secrets and ConfigMaps: metadata only, their data is never requested.
        Kind::Secrets | Kind::Configmaps => {
            let lp = super::lp(selector);
            let metas = if kind == Kind::Secrets {
                let api: Api<Secret> = match ns {
                    Some(n) => Api::namespaced(c.client.clone(), n),
                    None => Api::all(c.client.clone()),
                };
                api.list_metadata(&lp)
                    .await
                    .map(|l| l.items.into_iter().map(|m| m.metadata).collect::<Vec<_>>())
            } else {
                let api: Api<ConfigMap> = match ns {
                    Some(n) => Api::namespaced(c.client.clone(), n),
                    None => Api::all(c.client.clone()),
                };
                api.list_metadata(&lp)
                    .await
                    .map(|l| l.items.into_iter().map(|m| m.metadata).collect::<Vec<_>>())
            }
            .map_err(|e| kube_err(&c.name, kind.kind_name(), e))?;
            metas
                .iter()
                .map(|m| Summary::Meta(data_meta_summary(kind.kind_name(), m)))
                .collect()
        }
        _ => {
            let objs = list_dynamic(c, group, kind.kind_name(), what, ns, selector).await?;
            objs.iter().map(|v| dynamic_summary(kind, v)).collect()
        }
    };
    items.sort_by(|a, b| {
        a.health()
            .cmp(&b.health())
            .then_with(|| a.ident().1.cmp(&b.ident().1))
            .then_with(|| a.ident().2.cmp(&b.ident().2))
    });
    Ok(items)
}

pub(crate) fn dynamic_summary(kind: Kind, v: &serde_json::Value) -> Summary {
    match kind {
        Kind::Scaledobjects => Summary::ScaledObject(scaledobject_summary(v)),
        Kind::Gateways => Summary::Gateway(gateway_summary(v)),
        Kind::Httproutes => Summary::HttpRoute(httproute_summary(v)),
        Kind::Vms => Summary::Vm(vm_summary(v)),
        Kind::Vmis => Summary::Vm(vmi_summary(v)),
        Kind::Resourceclaims => Summary::ResourceClaim(resourceclaim_summary(v)),
        Kind::Resourceslices => Summary::ResourceSlice(resourceslice_summary(v)),
        Kind::Workspaces => Summary::Workspace(workspace_summary(v)),
        Kind::Ciliumnetworkpolicies => {
            let mut p = network_policy_summary(v);
            if p.kind.is_empty() || !p.kind.starts_with("Cilium") {
                p.kind = "CiliumNetworkPolicy".into();
            }
            Summary::NetworkPolicy(p)
        }
        _ => Summary::Application(application_summary(v)),
    }
}

/// Arguments of `k8s_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Default: first cluster.
    pub cluster: Option<String>,
    /// What to list.
    pub kind: Kind,
    /// Namespace; omit for all.
    pub namespace: Option<String>,
    /// Label selector, e.g. app=api.
    pub selector: Option<String>,
}

/// Result of `k8s_list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListOutput {
    /// Cluster.
    pub cluster: String,
    /// Kind listed.
    pub kind: Kind,
    /// Namespace (None: all).
    pub namespace: Option<String>,
    /// Items, problems first.
    pub items: Vec<Summary>,
}

impl Render for ListOutput {
    fn render(&self, max: usize) -> String {
        let count = |h: Health| self.items.iter().filter(|i| i.health() == h).count();
        let mut s = format!(
            "cluster {}: {} {} in {} ({} broken, {} degraded, {} healthy)\n",
            self.cluster,
            self.items.len(),
            serde_json::to_value(self.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            self.namespace
                .as_deref()
                .map_or("all namespaces".to_string(), |n| format!("namespace {n}")),
            count(Health::Broken),
            count(Health::Degraded),
            count(Health::Healthy)
        );
        for i in self.items.iter().take(max) {
            s.push_str(&short(&i.line(), 600));
            s.push('\n');
        }
        if self.items.len() > max {
            let rest = &self.items[max..];
            s.push_str(&format!(
                "… {} more omitted ({} broken, {} degraded, {} healthy); narrow with namespace/selector or k8s_describe\n",
                rest.len(),
                rest.iter().filter(|i| i.health() == Health::Broken).count(),
                rest.iter().filter(|i| i.health() == Health::Degraded).count(),
                rest.iter().filter(|i| i.health() == Health::Healthy).count()
            ));
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        self.items
            .iter()
            .filter(|i| i.health() != Health::Healthy)
            .take(50)
            .map(|i| EvidenceRef::Object(i.object_ref(&self.cluster)))
            .collect()
    }
}

/// `k8s_list`.
pub struct ListTool;

impl Tool for ListTool {
    const NAME: &'static str = "k8s_list";
    type Args = ListArgs;
    type Output = ListOutput;
    fn description() -> &'static str {
        "List objects of one kind as one-line summaries, problems first."
    }
    async fn call(&self, ctx: &ToolContext, a: ListArgs) -> Result<ListOutput> {
        let c = ctx.cluster(a.cluster.as_deref())?;
        let ns = if a.kind.namespaced() {
            a.namespace.as_deref()
        } else {
            None
        };
        let items = match list_kind(c, a.kind, ns, a.selector.as_deref()).await {
            Ok(i) => i,
            Err(e) => {
                return Err(match ns {
                    Some(n) => explain_not_found(c, n, e).await,
                    None => e,
                });
            }
        };
        if items.is_empty()
            && let Some(n) = ns
            && !super::namespaces(c).await.iter().any(|k| k == n)
        {
            return Err(namespace_error(c, Some(n)).await);
        }
        Ok(ListOutput {
            cluster: c.name.clone(),
            kind: a.kind,
            namespace: ns.map(str::to_string),
            items,
        })
    }
}
