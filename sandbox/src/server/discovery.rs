//! Discovery (`/version`, `/api`, `/apis`, per-group resource lists) and a minimal OpenAPI.
//! Aggregated discovery is not offered: clients fall back to these legacy documents.

use axum::response::Response;
use serde_json::{Value, json};

use super::handler::Req;
use super::routes::Route;
use super::status::{ApiError, ApiResult, json_response};
use crate::catalog::Catalog;

pub(crate) fn version() -> Response {
    json_response(
        200,
        &json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0+medic-sandbox",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}

const ALL_CATEGORY: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "replicasets",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "horizontalpodautoscalers",
    "replicationcontrollers",
];

pub(crate) fn serve(req: &Req, route: Route) -> ApiResult<Response> {
    let world = req.shared.world();
    let catalog = &world.clusters[req.cluster].catalog;
    let body = match route {
        Route::CoreVersions => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }),
        Route::Groups => groups(catalog),
        Route::GroupVersion { group, version } => resources(catalog, &group, &version)?,
        Route::OpenApiV2 => {
            json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}, "definitions": {}})
        }
        Route::OpenApiV3 => {
            let mut paths = serde_json::Map::new();
            for (g, versions) in catalog.groups() {
                for v in versions {
                    let p = if g.is_empty() {
                        format!("api/{v}")
                    } else {
                        format!("apis/{g}/{v}")
                    };
                    paths.insert(
                        p.clone(),
                        json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=0")}),
                    );
                }
            }
            json!({"paths": paths})
        }
        Route::OpenApiV3Path(_) => json!({
            "openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {}, "components": {"schemas": {}},
        }),
        _ => return Err(ApiError::no_route()),
    };
    Ok(json_response(200, &body))
}

fn groups(catalog: &Catalog) -> Value {
    let groups: Vec<Value> = catalog
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resources(catalog: &Catalog, group: &str, version: &str) -> ApiResult<Value> {
    let types: Vec<_> = catalog
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut out = Vec::new();
    for t in types {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": t.verbs(),
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if ALL_CATEGORY.contains(&t.plural.as_str()) && t.group != "events.k8s.io" {
            r["categories"] = json!(["all"]);
        }
        out.push(r);
        for sub in &t.subresources {
            let name = format!("{}/{}", t.plural, sub);
            out.push(match sub.as_str() {
                "log" => json!({"name": name, "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get"]}),
                "eviction" => json!({"name": name, "singularName": "", "namespaced": t.namespaced, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
                "scale" => json!({"name": name, "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}),
                _ => json!({"name": name, "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            });
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}))
}
