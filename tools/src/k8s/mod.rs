//! Kubernetes: typed summaries of objects and the read-only tools over them.
//!
//! - [`types`]: shared small types (conditions, resources, quantities).
//! - [`pods`], [`workloads`] (with rollout history), [`nodes`]; [`core`] re-exports them.
//! - [`net`]: services, PDBs, HPAs, events, namespaces, secrets/configmaps (metadata only).
//! - [`netpol`]: NetworkPolicy and Cilium network policies (selected pods, peers, changes).
//! - [`crd`]: KEDA, Gateway API, KubeVirt, DRA, KAITO and Argo CD via dynamic objects.
//! - [`tools`]: `k8s_list`, `k8s_describe`, `k8s_events`.
//!
//! Only `get`, `list` and `log` requests are ever made.

pub mod core;
pub mod crd;
pub mod describe;
pub mod events;
pub mod net;
pub mod netpol;
pub mod nodes;
pub mod pods;
pub mod tools;
pub mod types;
pub mod workloads;

use crate::context::Cluster;
use crate::error::{Result, ToolError};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{ApiResource, Scope};
use serde::de::DeserializeOwned;

/// Map a kube error to what the model may see, naming what was asked.
pub(crate) fn kube_err(cluster: &str, what: &str, e: kube::Error) -> ToolError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => {
            ToolError::NotFound(format!("{what} not found in cluster `{cluster}`"))
        }
        kube::Error::Api(s) if s.code == 403 || s.code == 401 => ToolError::Forbidden(format!(
            "medic may not read {what} in cluster `{cluster}`: {}",
            s.message
        )),
        kube::Error::Api(s) => ToolError::Upstream(format!(
            "API server of `{cluster}` answered {} reading {what}: {}",
            s.code, s.message
        )),
        other => ToolError::Upstream(format!(
            "API server of `{cluster}` unreachable reading {what}: {other}"
        )),
    }
}

pub(crate) fn lp(selector: Option<&str>) -> ListParams {
    let mut p = ListParams::default();
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        p = p.labels(s);
    }
    p
}

/// List typed objects in one namespace or all.
pub(crate) async fn list<K>(
    c: &Cluster,
    ns: Option<&str>,
    selector: Option<&str>,
    what: &str,
) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(c.client.clone(), ns),
        None => Api::all(c.client.clone()),
    };
    let params = lp(selector);
    let l = tokio::time::timeout(crate::context::CALL_TIMEOUT, api.list(&params))
        .await
        .map_err(|_| ToolError::Upstream(format!("listing {what} in `{}` timed out", c.name)))?
        .map_err(|e| kube_err(&c.name, what, e))?;
    Ok(l.items)
}

/// Get one typed namespaced object.
pub(crate) async fn get<K>(c: &Cluster, ns: &str, name: &str, what: &str) -> Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(c.client.clone(), ns);
    tokio::time::timeout(crate::context::CALL_TIMEOUT, api.get(name))
        .await
        .map_err(|_| ToolError::Upstream(format!("reading {what} in `{}` timed out", c.name)))?
        .map_err(|e| kube_err(&c.name, &format!("{what} `{ns}/{name}`"), e))
}

fn not_installed(c: &Cluster, group: &str, what: &str) -> ToolError {
    ToolError::NotFound(format!(
        "cluster `{}` does not serve API group {group}: {what} is not installed there",
        c.name
    ))
}

/// Resolve a CRD (or a versioned built-in group such as DRA) by group and kind via
/// discovery, once per cluster. The inner `Err` is "not installed there" (the group or the
/// kind is not served), which listings treat as no objects; the outer one is a failed call.
pub(crate) async fn resource(
    c: &Cluster,
    group: &str,
    kind: &str,
    what: &str,
) -> Result<std::result::Result<(ApiResource, bool), ToolError>> {
    let key = format!("{group}/{kind}");
    if let Ok(cache) = c.resources.lock()
        && let Some(r) = cache.get(&key)
    {
        return Ok(Ok(r.clone()));
    }
    let found = tokio::time::timeout(
        crate::context::CALL_TIMEOUT,
        kube::discovery::group(&c.client, group),
    )
    .await
    .map_err(|_| ToolError::Upstream(format!("discovery in `{}` timed out", c.name)))?;
    let g = match found {
        Ok(g) => g,
        // Discovery lists the served groups first: an absent group is a missing install,
        // not an unreachable API server.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Err(not_installed(c, group, what))),
        Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_))) => {
            return Ok(Err(not_installed(c, group, what)));
        }
        Err(other) => return Err(kube_err(&c.name, &format!("API group {group}"), other)),
    };
    let Some((ar, caps)) = g.recommended_kind(kind) else {
        return Ok(Err(ToolError::NotFound(format!(
            "cluster `{}` serves {group} but not kind {kind}",
            c.name
        ))));
    };
    let namespaced = caps.scope == Scope::Namespaced;
    if let Ok(mut cache) = c.resources.lock() {
        cache.insert(key, (ar.clone(), namespaced));
    }
    Ok(Ok((ar, namespaced)))
}

/// List dynamic objects as JSON values.
pub(crate) async fn list_dynamic(
    c: &Cluster,
    group: &str,
    kind: &str,
    what: &str,
    ns: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<serde_json::Value>> {
    // A kind whose API group the cluster does not serve has no objects there (e.g. Cilium
    // policies on a cluster without Cilium): an empty list, not a failed call.
    let (ar, namespaced) = match resource(c, group, kind, what).await? {
        Ok(r) => r,
        Err(why) => {
            tracing::debug!(cluster = %c.name, %group, "{why}");
            return Ok(Vec::new());
        }
    };
    let api: Api<DynamicObject> = match (ns, namespaced) {
        (Some(ns), true) => Api::namespaced_with(c.client.clone(), ns, &ar),
        _ => Api::all_with(c.client.clone(), &ar),
    };
    let params = lp(selector);
    let l = tokio::time::timeout(crate::context::CALL_TIMEOUT, api.list(&params))
        .await
        .map_err(|_| ToolError::Upstream(format!("listing {what} in `{}` timed out", c.name)))?
        .map_err(|e| kube_err(&c.name, what, e))?;
    Ok(l.items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect())
}

/// Get one dynamic object as JSON.
pub(crate) async fn get_dynamic(
    c: &Cluster,
    group: &str,
    kind: &str,
    what: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<serde_json::Value> {
    let (ar, namespaced) = resource(c, group, kind, what).await??;
    let api: Api<DynamicObject> = match (ns, namespaced) {
        (Some(ns), true) => Api::namespaced_with(c.client.clone(), ns, &ar),
        _ => Api::all_with(c.client.clone(), &ar),
    };
    let o = tokio::time::timeout(crate::context::CALL_TIMEOUT, api.get(name))
        .await
        .map_err(|_| ToolError::Upstream(format!("reading {what} in `{}` timed out", c.name)))?
        .map_err(|e| kube_err(&c.name, &format!("{what} `{name}`"), e))?;
    serde_json::to_value(o).map_err(|e| ToolError::Internal(format!("encoding {what}: {e}")))
}

/// Namespace names of a cluster (for error messages that list the valid ones).
pub(crate) async fn namespaces(c: &Cluster) -> Vec<String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    match tokio::time::timeout(
        crate::context::CALL_TIMEOUT,
        api.list(&ListParams::default()),
    )
    .await
    {
        Ok(Ok(l)) => l
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect(),
        _ => Vec::new(),
    }
}

/// The error for a missing or unknown namespace, listing the known ones.
pub(crate) async fn namespace_error(c: &Cluster, given: Option<&str>) -> ToolError {
    let known = namespaces(c).await;
    let list = if known.is_empty() {
        "(could not list namespaces)".to_string()
    } else {
        known.join(", ")
    };
    match given {
        None => ToolError::InvalidArgs(format!(
            "`namespace` is required; known namespaces in `{}`: {list}",
            c.name
        )),
        Some(ns) => ToolError::InvalidArgs(format!(
            "unknown namespace `{ns}` in cluster `{}`; known namespaces: {list}",
            c.name
        )),
    }
}

/// Turn a not-found on a namespaced object into a namespace error when the namespace is the
/// thing that is missing.
pub(crate) async fn explain_not_found(c: &Cluster, ns: &str, e: ToolError) -> ToolError {
    if matches!(e, ToolError::NotFound(_)) {
        let known = namespaces(c).await;
        if !known.is_empty() && !known.iter().any(|k| k == ns) {
            return namespace_error(c, Some(ns)).await;
        }
    }
    e
}
