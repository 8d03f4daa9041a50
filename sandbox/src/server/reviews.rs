//! SubjectAccessReview, SelfSubjectAccessReview and LocalSubjectAccessReview, evaluated with
//! the same RBAC code that authorizes requests.

use axum::response::Response;
use serde_json::Value;

use super::handler::{Req, Target};
use super::rbac::{self, Attributes, UserInfo};
use super::status::{ApiError, ApiResult, json_response};

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

pub(crate) fn review(req: &Req, t: &Target) -> ApiResult<Response> {
    let mut body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding review: {e}")))?;
    let spec = body["spec"].clone();
    let user = if t.rt.kind == "SelfSubjectAccessReview" {
        req.user.clone()
    } else {
        let name = s(&spec["user"]);
        let groups: Vec<String> = spec["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect();
        if name.is_empty() && groups.is_empty() {
            return Err(ApiError::invalid(
                &t.rt,
                &t.rt.kind,
                "",
                &[(
                    "spec.user".into(),
                    "Invalid value: \"\": at least one of user or group must be specified".into(),
                )],
            ));
        }
        UserInfo { name, groups }
    };
    let ra = &spec["resourceAttributes"];
    let attrs = if ra.is_object() {
        let namespace = if t.rt.kind == "LocalSubjectAccessReview" {
            t.namespace.clone()
        } else {
            s(&ra["namespace"])
        };
        Attributes {
            verb: s(&ra["verb"]),
            group: s(&ra["group"]),
            resource: s(&ra["resource"]),
            subresource: s(&ra["subresource"]),
            namespace,
            name: s(&ra["name"]),
            path: None,
        }
    } else {
        let nra = &spec["nonResourceAttributes"];
        Attributes {
            verb: s(&nra["verb"]),
            path: Some(s(&nra["path"])),
            ..Default::default()
        }
    };
    let reason = {
        let world = req.shared.world();
        rbac::authorize(&world.clusters[req.cluster], &user, &attrs)
    };
    let mut status = serde_json::Map::new();
    status.insert("allowed".into(), reason.is_some().into());
    if let Some(r) = reason {
        status.insert("reason".into(), r.into());
    }
    body["status"] = Value::Object(status);
    if body["apiVersion"].is_null() {
        body["apiVersion"] = "authorization.k8s.io/v1".into();
    }
    if body["kind"].is_null() {
        body["kind"] = t.rt.kind.clone().into();
    }
    if !body["metadata"].is_object() {
        body["metadata"] = serde_json::json!({});
    }
    Ok(json_response(201, &body))
}
