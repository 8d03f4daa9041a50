//! create, update, patch (also of `status`), the `scale` subresource, delete and
//! deletecollection — with dry-run, resourceVersion / uid preconditions and validation.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::handler::{Req, Target};
use super::patch::{self, PatchKind};
use super::read::{Filter, present};
use super::state::{ClusterState, meta_str};
use super::status::{ApiError, ApiResult, json_response};
use super::validate;
use crate::catalog::ResourceType;

fn parse_json(req: &Req) -> ApiResult<Value> {
    let ct = req.content_type();
    if ct.contains("yaml") {
        return serde_yaml::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

fn now_text(req: &Req) -> String {
    req.shared
        .world()
        .now
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn check_valid(rt: &ResourceType, obj: &Value, extra: validate::Causes) -> ApiResult<()> {
    let mut causes = validate::validate(rt, obj);
    causes.extend(extra);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            &rt.kind,
            meta_str(obj, "name"),
            &causes,
        ))
    }
}

/// Stores a written object, rolling a Deployment's ReplicaSets when its template changed.
fn store(
    c: &mut ClusterState,
    rt: &ResourceType,
    old: Option<&Value>,
    mut obj: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Arc<Value> {
    if rt.group == "apps" && rt.kind == "Deployment" {
        let template_changed = old.is_none_or(|o| o["spec"]["template"] != obj["spec"]["template"]);
        let replicas_changed =
            old.is_some_and(|o| o["spec"]["replicas"] != obj["spec"]["replicas"]);
        if (template_changed || replicas_changed)
            && let Some(rev) = c.roll_deployment(&obj, template_changed, now)
        {
            obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                rev.to_string().into();
        }
    }
    c.put(rt, obj)
}

pub(crate) fn create(req: &Req, t: &Target) -> ApiResult<Response> {
    let obj = parse_json(req)?;
    create_object(req, t, obj, None)
}

fn create_object(
    req: &Req,
    t: &Target,
    mut obj: Value,
    apply_manager: Option<&str>,
) -> ApiResult<Response> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let rt = &t.rt;
    match obj["kind"].as_str() {
        None | Some("") => obj["kind"] = rt.kind.clone().into(),
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object ({k}) does not match the resource ({})",
                rt.plural
            )));
        }
        _ => {}
    }
    if obj["apiVersion"].as_str().is_none_or(str::is_empty) {
        obj["apiVersion"] = rt.api_version().into();
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if rt.namespaced {
        match obj["metadata"]["namespace"].as_str() {
            None | Some("") => obj["metadata"]["namespace"] = t.namespace.clone().into(),
            Some(ns) if ns != t.namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    if meta_str(&obj, "name").is_empty() {
        let prefix = meta_str(&obj, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                rt,
                &rt.kind,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(5)
            .collect();
        obj["metadata"]["name"] = format!("{prefix}{suffix}").into();
    }
    check_valid(rt, &obj, vec![])?;
    let now = now_text(req);
    let name = meta_str(&obj, "name").to_string();
    let mut world = req.shared.world();
    let world_now = world.now;
    let c = &mut world.clusters[req.cluster];
    if c.get(rt, &t.namespace, &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    if let Some(why) = migration_in_flight(c, rt, &t.namespace, &obj) {
        return Err(ApiError::invalid(
            rt,
            &rt.kind,
            &name,
            &[("spec.vmiName".into(), why)],
        ));
    }
    if rt.namespaced
        && let Some(ns_rt) = c.catalog.by_plural("", "v1", "namespaces").cloned()
        && c.get(&ns_rt, "", &t.namespace).is_none()
    {
        return Err(ApiError::not_found(&ns_rt, &t.namespace));
    }
    {
        let m = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::internal("metadata vanished"))?;
        m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        m.insert("creationTimestamp".into(), now.clone().into());
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        if obj.get("spec").is_some() {
            obj["metadata"]["generation"] = 1.into();
        }
    }
    match apply_manager {
        Some(m) => patch::record_manager(&mut obj, m, "Apply", &now),
        None => {
            if let Some(m) = req.q("fieldManager") {
                patch::record_manager(&mut obj, m, "Update", &now);
            }
        }
    }
    if req.dry_run {
        return Ok(json_response(201, &present(rt, &obj)));
    }
    let stored = store(c, rt, None, obj, world_now);
    Ok(json_response(201, &present(rt, &stored)))
}

/// KubeVirt's migration admission: one migration per VMI at a time. A second one is refused
/// (422, as KubeVirt's admitters answer) while another for the same VMI has not finished.
fn migration_in_flight(
    c: &ClusterState,
    rt: &ResourceType,
    namespace: &str,
    obj: &Value,
) -> Option<String> {
    if rt.group != "kubevirt.io" || rt.kind != "VirtualMachineInstanceMigration" {
        return None;
    }
    let vmi = obj["spec"]["vmiName"].as_str()?;
    let (_, other) = c.scan(&rt.storage, Some(namespace)).find(|(_, m)| {
        m["spec"]["vmiName"] == vmi
            && !matches!(m["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
    })?;
    Some(format!(
        "in-flight migration detected: migration {} ({}) is already in progress for VMI {vmi}",
        meta_str(other, "name"),
        meta_str(other, "uid"),
    ))
}

/// The new version of an object after an update (PUT) or patch.
fn changed(req: &Req, t: &Target, verb: &str, current: &Value) -> ApiResult<Value> {
    let rt = &t.rt;
    if verb == "update" {
        let new = parse_json(req)?;
        let body_name = meta_str(&new, "name");
        if !body_name.is_empty() && body_name != t.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                t.name
            )));
        }
        let rv = meta_str(&new, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(current, "resourceVersion") {
            return Err(ApiError::stale(rt, &t.name));
        }
        let mut new = new;
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        return Ok(new);
    }
    let kind = PatchKind::from_content_type(req.content_type())
        .ok_or_else(|| ApiError::unsupported_media(req.content_type()))?;
    let body: Value = if kind == PatchKind::Apply {
        serde_yaml::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let mut new = current.clone();
    patch::apply(kind, &mut new, &body)
        .map_err(|m| ApiError::invalid(rt, &rt.kind, &t.name, &[("patch".into(), m)]))?;
    if meta_str(&new, "resourceVersion") != meta_str(current, "resourceVersion") {
        return Err(ApiError::stale(rt, &t.name));
    }
    Ok(new)
}

pub(crate) fn modify(req: &Req, t: &Target, verb: &str) -> ApiResult<Response> {
    let rt = &t.rt;
    let current = { req.shared.world().clusters[req.cluster].get(rt, &t.namespace, &t.name) };
    let apply_kind = verb == "patch"
        && PatchKind::from_content_type(req.content_type()) == Some(PatchKind::Apply);
    let manager = req.q("fieldManager");
    if apply_kind && manager.is_none() {
        return Err(ApiError::invalid(
            rt,
            "PatchOptions",
            "",
            &[(
                "fieldManager".into(),
                "Required value: is required for apply patch".into(),
            )],
        ));
    }
    let Some(current) = current else {
        if apply_kind && t.sub.is_empty() {
            let obj: Value = serde_yaml::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            return create_object(req, t, obj, manager);
        }
        return Err(ApiError::not_found(rt, &t.name));
    };
    let proposed = changed(req, t, verb, &current)?;
    // Identity fields never change; status goes through its subresource and only there.
    let mut new = if t.sub == "status" {
        let mut n = (*current).clone();
        n["status"] = proposed["status"].clone();
        n
    } else {
        let mut n = proposed;
        if rt.subresources.iter().any(|s| s == "status") {
            n["status"] = current["status"].clone();
            if current.get("status").is_none()
                && let Some(m) = n.as_object_mut()
            {
                m.remove("status");
            }
        }
        n
    };
    new["apiVersion"] = current["apiVersion"].clone();
    new["kind"] = current["kind"].clone();
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for f in ["name", "namespace", "uid", "creationTimestamp"] {
        match current["metadata"].get(f) {
            Some(v) => new["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
    let extra = if rt.kind == "Pod" && rt.group.is_empty() && t.sub.is_empty() {
        validate::pod_update(&current, &new)
    } else {
        vec![]
    };
    check_valid(rt, &new, extra)?;
    if new.get("spec") != current.get("spec") {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = (generation + 1).into();
    }
    let now = now_text(req);
    if let Some(m) = manager {
        patch::record_manager(
            &mut new,
            m,
            if apply_kind { "Apply" } else { "Update" },
            &now,
        );
    }
    // A write that changes nothing is not stored (the resourceVersion stays), as on a real server.
    if req.dry_run || new == *current {
        return Ok(json_response(200, &present(rt, &new)));
    }
    let mut world = req.shared.world();
    let world_now = world.now;
    let c = &mut world.clusters[req.cluster];
    // Another writer may have won the race since we read.
    let latest = c
        .get(rt, &t.namespace, &t.name)
        .ok_or_else(|| ApiError::not_found(rt, &t.name))?;
    if meta_str(&latest, "resourceVersion") != meta_str(&current, "resourceVersion") {
        return Err(ApiError::stale(rt, &t.name));
    }
    let stored = store(c, rt, Some(&current), new, world_now);
    Ok(json_response(200, &present(rt, &stored)))
}

fn scale_of(obj: &Value) -> Value {
    let sel_text = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut meta = json!({"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
        "resourceVersion": obj["metadata"]["resourceVersion"], "creationTimestamp": obj["metadata"]["creationTimestamp"]});
    if let Some(ns) = obj["metadata"]["namespace"].as_str() {
        meta["namespace"] = ns.into();
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel_text}})
}

pub(crate) fn get_scale(req: &Req, t: &Target) -> ApiResult<Response> {
    let obj = req.shared.world().clusters[req.cluster].get(&t.rt, &t.namespace, &t.name);
    let obj = obj.ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    Ok(json_response(200, &scale_of(&obj)))
}

pub(crate) fn modify_scale(req: &Req, t: &Target, verb: &str) -> ApiResult<Response> {
    let rt = &t.rt;
    let current = req.shared.world().clusters[req.cluster].get(rt, &t.namespace, &t.name);
    let current = current.ok_or_else(|| ApiError::not_found(rt, &t.name))?;
    let scale = scale_of(&current);
    let new_scale = changed(req, t, verb, &scale)?;
    let replicas = new_scale["spec"]["replicas"].as_i64().unwrap_or(0);
    let mut new = (*current).clone();
    new["spec"]["replicas"] = replicas.into();
    check_valid(rt, &new, vec![])?;
    if new["spec"] != current["spec"] {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = (generation + 1).into();
    }
    if req.dry_run || new == *current {
        return Ok(json_response(200, &scale_of(&new)));
    }
    let mut world = req.shared.world();
    let world_now = world.now;
    let c = &mut world.clusters[req.cluster];
    let latest = c
        .get(rt, &t.namespace, &t.name)
        .ok_or_else(|| ApiError::not_found(rt, &t.name))?;
    if meta_str(&latest, "resourceVersion") != meta_str(&current, "resourceVersion") {
        return Err(ApiError::stale(rt, &t.name));
    }
    let stored = store(c, rt, Some(&current), new, world_now);
    Ok(json_response(200, &scale_of(&stored)))
}

/// `DeleteOptions` preconditions against the live object.
pub(crate) fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    options: &Value,
    current: &Value,
) -> ApiResult<()> {
    let pre = &options["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        let have = meta_str(current, "uid");
        if uid != have {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        let have = meta_str(current, "resourceVersion");
        if rv != have {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                ),
            ));
        }
    }
    Ok(())
}

fn delete_options(req: &Req) -> ApiResult<Value> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_json(req)
}

fn options_dry_run(options: &Value) -> bool {
    options["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"))
}

pub(crate) fn delete(req: &Req, t: &Target) -> ApiResult<Response> {
    let options = delete_options(req)?;
    let dry = req.dry_run || options_dry_run(&options);
    let mut world = req.shared.world();
    let c = &mut world.clusters[req.cluster];
    let current = c
        .get(&t.rt, &t.namespace, &t.name)
        .ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    check_preconditions(&t.rt, &t.name, &options, &current)?;
    if dry {
        return Ok(json_response(200, &present(&t.rt, &current)));
    }
    let orphan = options["propagationPolicy"] == "Orphan" || options["orphanDependents"] == true;
    let gone = c
        .remove(&t.rt, &t.namespace, &t.name, orphan)
        .ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    Ok(json_response(200, &present(&t.rt, &gone)))
}

pub(crate) fn delete_collection(req: &Req, t: &Target) -> ApiResult<Response> {
    let options = delete_options(req)?;
    let dry = req.dry_run || options_dry_run(&options);
    let filter = Filter::from_req(req, t)?;
    let mut world = req.shared.world();
    let c = &mut world.clusters[req.cluster];
    let victims: Vec<Arc<Value>> = c
        .scan(&t.rt.storage, filter.namespace.as_deref())
        .filter(|(_, o)| filter.matches(o))
        .map(|(_, o)| o.clone())
        .collect();
    let mut items = Vec::new();
    for v in victims {
        if dry {
            items.push(present(&t.rt, &v).into_owned());
        } else if let Some(g) = c.remove(
            &t.rt,
            meta_str(&v, "namespace"),
            meta_str(&v, "name"),
            false,
        ) {
            items.push(present(&t.rt, &g).into_owned());
        }
    }
    let body = json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(),
        "metadata": {"resourceVersion": c.rv.to_string()}, "items": items});
    Ok(json_response(200, &body))
}
