//! get and list (label/field selectors, all namespaces, limit/continue, Table output).

use std::borrow::Cow;
use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use super::handler::{Req, Target};
use super::state::{ClusterState, Key};
use super::status::{ApiError, ApiResult, bytes_response, json_response};
use super::table;
use crate::catalog::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};

/// The object as served through `rt` (alias versions get their own apiVersion; core events
/// read through events.k8s.io get `regarding` / `note`).
pub(crate) fn present<'a>(rt: &ResourceType, obj: &'a Value) -> Cow<'a, Value> {
    let av = rt.api_version();
    if obj["apiVersion"] == av.as_str() && obj["kind"] == rt.kind.as_str() {
        return Cow::Borrowed(obj);
    }
    let mut o = obj.clone();
    o["apiVersion"] = av.into();
    o["kind"] = rt.kind.clone().into();
    if rt.storage == "/events" {
        let (from, to) = if rt.group == "events.k8s.io" {
            (("involvedObject", "message"), ("regarding", "note"))
        } else {
            (("regarding", "note"), ("involvedObject", "message"))
        };
        if let Some(m) = o.as_object_mut() {
            if let Some(v) = m.remove(from.0) {
                m.insert(to.0.into(), v);
            }
            if let Some(v) = m.remove(from.1) {
                m.insert(to.1.into(), v);
            }
        }
    }
    Cow::Owned(o)
}

pub(crate) fn get(req: &Req, t: &Target) -> ApiResult<Response> {
    let obj = {
        let world = req.shared.world();
        world.clusters[req.cluster].get(&t.rt, &t.namespace, &t.name)
    };
    let obj = obj.ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    if req.accept().contains("as=Table") {
        let now = req.shared.world().now;
        return Ok(json_response(
            200,
            &table::render(&t.rt, &[obj], "", None, req.q("includeObject"), now),
        ));
    }
    Ok(json_response(200, &present(&t.rt, &obj)))
}

/// Selectors of a list or watch request.
pub(crate) struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub namespace: Option<String>,
}

impl Filter {
    pub fn from_req(req: &Req, t: &Target) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(req.q("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let namespace = (!t.namespace.is_empty()).then(|| t.namespace.clone());
        Ok(Filter {
            labels,
            fields,
            namespace,
        })
    }
    pub fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"] == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

#[derive(Serialize, serde::Deserialize)]
struct ContinueToken {
    ns: String,
    name: String,
    rv: u64,
}

/// Matching objects after `after`, at most `limit`; returns (items, next key, remaining).
pub(crate) fn collect(
    c: &ClusterState,
    rt: &ResourceType,
    filter: &Filter,
    after: Option<(String, String)>,
    limit: Option<usize>,
) -> (Vec<Arc<Value>>, Option<Key>, usize) {
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0usize;
    for (k, o) in c.scan(&rt.storage, filter.namespace.as_deref()) {
        if let Some((ns, name)) = &after
            && (k.1.as_str(), k.2.as_str()) <= (ns.as_str(), name.as_str())
        {
            continue;
        }
        if !filter.matches(o) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            remaining += 1;
            continue;
        }
        next = Some(k.clone());
        items.push(o.clone());
    }
    if remaining == 0 {
        next = None;
    }
    (items, next, remaining)
}

pub(crate) fn list(req: &Req, t: &Target) -> ApiResult<Response> {
    let filter = Filter::from_req(req, t)?;
    let limit = req
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let after = match req.q("continue") {
        Some(tok) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .map_err(|_| {
                    ApiError::bad_request("continue key is not valid: illegal base64 data")
                })?;
            let tok: ContinueToken = serde_json::from_slice(&raw)
                .map_err(|_| ApiError::bad_request("continue key is not valid"))?;
            Some((tok.ns, tok.name))
        }
        None => None,
    };
    let (items, next, remaining, rv, now) = {
        let world = req.shared.world();
        let c = &world.clusters[req.cluster];
        let (items, next, remaining) = collect(c, &t.rt, &filter, after, limit);
        (items, next, remaining, c.rv, world.now)
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(k) = next {
        let tok = serde_json::to_vec(&ContinueToken {
            ns: k.1,
            name: k.2,
            rv,
        })
        .unwrap_or_default();
        metadata["continue"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(tok)
            .into();
        metadata["remainingItemCount"] = remaining.into();
    }
    if req.accept().contains("as=Table") {
        let cont = metadata["continue"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return Ok(json_response(
            200,
            &table::render(
                &t.rt,
                &items,
                &rv.to_string(),
                Some(cont),
                req.q("includeObject"),
                now,
            ),
        ));
    }
    #[derive(Serialize)]
    struct ListOut<'a> {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
        metadata: Value,
        items: Vec<Cow<'a, Value>>,
    }
    let out = ListOut {
        kind: format!("{}List", t.rt.kind),
        api_version: t.rt.api_version(),
        metadata,
        items: items.iter().map(|o| present(&t.rt, o)).collect(),
    };
    let bytes = serde_json::to_vec(&out).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(bytes_response(200, bytes))
}
