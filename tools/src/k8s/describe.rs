//! `k8s_describe`: one object with its related events, status and owners.

use super::core::*;
use super::net::*;
use super::netpol::network_policy_summary;
use super::tools::*;
use super::types::{Health, short};
use super::{explain_not_found, get, get_dynamic, kube_err, list, namespace_error};
use crate::context::{Cluster, ToolContext};
use crate::error::{Result, ToolError};
use crate::evidence::EvidenceRef;
use crate::tool::{Render, Tool};
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `k8s_describe`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeArgs {
    /// Default: first cluster.
    pub cluster: Option<String>,
    /// Kind of the object.
    pub kind: Kind,
    /// Namespace (namespaced kinds).
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

/// Result of `k8s_describe`.
#[derive(Debug, Clone, Serialize)]
pub struct DescribeOutput {
    /// Cluster.
    pub cluster: String,
    /// The object.
    pub object: Summary,
    /// Deployments: revisions and template diffs.
    pub history: Option<RolloutHistory>,
    /// Pods it selects (workloads, services) or hosts (nodes), problems first.
    pub pods: Vec<PodSummary>,
    /// Events about it, warnings and recent first.
    pub events: Vec<EventSummary>,
}

impl Render for DescribeOutput {
    fn render(&self, max: usize) -> String {
        let mut s = format!("cluster {}\n{}", self.cluster, self.object.describe());
        if let Some(h) = &self.history {
            s.push_str(&h.render(max));
        }
        if !self.pods.is_empty() {
            s.push_str(&format!("pods ({}):\n", self.pods.len()));
            for p in self.pods.iter().take(max) {
                s.push_str(&format!("  {}\n", short(&p.line(), 400)));
            }
            if self.pods.len() > max {
                s.push_str(&format!(
                    "  … {} more pods omitted\n",
                    self.pods.len() - max
                ));
            }
        }
        s.push_str(&format!("events ({}):\n", self.events.len()));
        for e in self.events.iter().take(max) {
            s.push_str(&format!("  {}\n", e.line()));
        }
        if self.events.len() > max {
            s.push_str(&format!(
                "  … {} more events omitted\n",
                self.events.len() - max
            ));
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        let mut ev = vec![EvidenceRef::Object(self.object.object_ref(&self.cluster))];
        for p in self
            .pods
            .iter()
            .filter(|p| p.health() != Health::Healthy)
            .take(20)
        {
            ev.push(EvidenceRef::Object(
                Summary::Pod(p.clone()).object_ref(&self.cluster),
            ));
        }
        ev
    }
}

/// Label selector text from a pod-selecting summary.
fn selector_of(s: &Summary) -> Option<String> {
    match s {
        Summary::Workload(w) if !w.selector.is_empty() && !w.selector.contains(' ') => {
            Some(w.selector.clone())
        }
        Summary::Service(svc) if !svc.selector.is_empty() => Some(
            svc.selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        Summary::Job(j) => Some(format!("job-name={}", j.name)),
        _ => None,
    }
}

/// Describe one object: summary, rollout history, its pods and its events.
pub async fn describe(
    c: &Cluster,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
) -> Result<DescribeOutput> {
    let (group, what) = kind.group();
    let nsr = ns.unwrap_or("");
    let mut history = None;
    let object = match kind {
        Kind::Pods => Summary::Pod(pod_summary(&get::<Pod>(c, nsr, name, "pod").await?)),
        Kind::Deployments => {
            let (w, h) = rollout(c, nsr, name).await?;
            history = Some(h);
            Summary::Workload(w)
        }
        Kind::Replicasets => Summary::Workload(replicaset_summary(
            &get::<ReplicaSet>(c, nsr, name, "replicaset").await?,
        )),
        Kind::Statefulsets => Summary::Workload(statefulset_summary(
            &get::<StatefulSet>(c, nsr, name, "statefulset").await?,
        )),
        Kind::Daemonsets => Summary::Workload(daemonset_summary(
            &get::<DaemonSet>(c, nsr, name, "daemonset").await?,
        )),
        Kind::Jobs => Summary::Job(job_summary(&get::<Job>(c, nsr, name, "job").await?)),
        Kind::Services => {
            let s: Service = get(c, nsr, name, "service").await?;
            let ep: Option<Endpoints> = get(c, nsr, name, "endpoints").await.ok();
            let slices = match ep {
                Some(_) => Vec::new(),
                None => list::<EndpointSlice>(
                    c,
                    Some(nsr),
                    Some(&format!("kubernetes.io/service-name={name}")),
                    "endpointslices",
                )
                .await
                .unwrap_or_default(),
            };
            Summary::Service(service_summary(
                &s,
                ep.as_ref(),
                &slices.iter().collect::<Vec<_>>(),
            ))
        }
        Kind::Pdbs => Summary::Pdb(pdb_summary(
            &get::<PodDisruptionBudget>(c, nsr, name, "pdb").await?,
        )),
        Kind::Hpas => Summary::Hpa(hpa_summary(
            &get::<HorizontalPodAutoscaler>(c, nsr, name, "hpa").await?,
        )),
        Kind::Networkpolicies => {
            let p: NetworkPolicy = get(c, nsr, name, "networkpolicy").await?;
            let mut v = serde_json::to_value(&p)
                .map_err(|e| ToolError::Internal(format!("encoding networkpolicy: {e}")))?;
            v["kind"] = serde_json::json!("NetworkPolicy");
            Summary::NetworkPolicy(network_policy_summary(&v))
        }
        Kind::Nodes => {
            let api: Api<Node> = Api::all(c.client.clone());
            let n = api
                .get(name)
                .await
                .map_err(|e| kube_err(&c.name, &format!("node `{name}`"), e))?;
            let pods = list_pods(c, None, None).await?;
            let mut summary = node_summary(&n, Some(&pods));
            let mut on: Vec<PodSummary> = pods
                .into_iter()
                .filter(|p| p.node.as_deref() == Some(name))
                .collect();
            on.sort_by(|a, b| a.health().cmp(&b.health()).then(a.name.cmp(&b.name)));
            summary.pods = Some(on.len() as u32);
            let events = node_events(c, name).await;
            return Ok(DescribeOutput {
                cluster: c.name.clone(),
                object: Summary::Node(summary),
                history: None,
                pods: on,
                events,
            });
        }
        Kind::Namespaces | Kind::Secrets | Kind::Configmaps => {
            let items = list_kind(c, kind, ns, None).await?;
            items
                .into_iter()
                .find(|i| i.ident().2 == name)
                .ok_or_else(|| {
                    ToolError::NotFound(format!(
                        "{} `{name}` not found in cluster `{}`",
                        kind.kind_name(),
                        c.name
                    ))
                })?
        }
        _ => {
            let v = get_dynamic(c, group, kind.kind_name(), what, ns, name).await?;
            dynamic_summary(kind, &v)
        }
    };
    let mut pods = match selector_of(&object) {
        Some(sel) => list_pods(c, ns, Some(&sel)).await.unwrap_or_default(),
        None => Vec::new(),
    };
    pods.sort_by(|a, b| a.health().cmp(&b.health()).then(a.name.cmp(&b.name)));
    let kname = object.ident().0;
    let events: Vec<EventSummary> = list_events(c, ns)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.name == name && e.kind == kname
                || pods
                    .iter()
                    .any(|p| p.health() != Health::Healthy && e.kind == "Pod" && e.name == p.name)
        })
        .collect();
    Ok(DescribeOutput {
        cluster: c.name.clone(),
        object,
        history,
        pods,
        events,
    })
}

async fn node_events(c: &Cluster, name: &str) -> Vec<EventSummary> {
    list_events(c, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == "Node" && e.name == name)
        .collect()
}

/// `k8s_describe`.
pub struct DescribeTool;

impl Tool for DescribeTool {
    const NAME: &'static str = "k8s_describe";
    type Args = DescribeArgs;
    type Output = DescribeOutput;
    fn description() -> &'static str {
        "Describe one object with its pods and events; deployments add rollout history and template diffs."
    }
    async fn call(&self, ctx: &ToolContext, a: DescribeArgs) -> Result<DescribeOutput> {
        let c = ctx.cluster(a.cluster.as_deref())?;
        let ns = if a.kind.namespaced() {
            match a.namespace.as_deref() {
                Some(n) => Some(n),
                None => return Err(namespace_error(c, None).await),
            }
        } else {
            None
        };
        match describe(c, a.kind, ns, &a.name).await {
            Ok(o) => Ok(o),
            Err(e) => Err(match ns {
                Some(n) => explain_not_found(c, n, e).await,
                None => e,
            }),
        }
    }
}
