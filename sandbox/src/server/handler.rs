//! Every request goes through here: route, authenticate, impersonate, authorize, dispatch,
//! record, and run reactions after writes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};

use super::rbac::{self, Attributes, UserInfo};
use super::routes::{self, ResourcePath, Route};
use super::status::{ApiError, ApiResult};
use super::{
    RequestRecord, Shared, discovery, eviction, logs, reactions, read, reviews, watch, write,
};
use crate::catalog::ResourceType;

#[derive(Clone)]
pub(crate) struct AppState {
    shared: Arc<Shared>,
    cluster: usize,
}

pub(crate) fn router(shared: Arc<Shared>, cluster: usize) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(AppState { shared, cluster })
}

/// One request, authenticated, with its body read.
pub(crate) struct Req {
    pub shared: Arc<Shared>,
    pub cluster: usize,
    pub method: Method,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub user: UserInfo,
    pub dry_run: bool,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    pub fn q_bool(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }
    pub fn accept(&self) -> &str {
        self.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The resource a request addresses, resolved against the cluster's catalog.
pub(crate) struct Target {
    pub rt: ResourceType,
    pub namespace: String,
    pub name: String,
    pub sub: String,
}

const BODY_LIMIT: usize = 256 * 1024 * 1024;

async fn handle(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let cluster_name = app.shared.world().clusters[app.cluster].name.clone();
    let mut record = RequestRecord {
        cluster: cluster_name,
        user: String::new(),
        effective_user: String::new(),
        groups: vec![],
        verb: String::new(),
        api_group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        dry_run: false,
        status: 0,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        time: chrono::Utc::now(),
    };
    let response = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => match serve(&app, &parts, bytes, &mut record).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
        Err(e) => {
            ApiError::bad_request(format!("cannot read the request body: {e}")).into_response()
        }
    };
    record.status = response.status().as_u16();
    app.shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record);
    response
}

fn query_map(uri: &http::Uri) -> HashMap<String, String> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0.into_iter().collect())
        .unwrap_or_default()
}

async fn serve(
    app: &AppState,
    parts: &http::request::Parts,
    body: Bytes,
    record: &mut RequestRecord,
) -> ApiResult<Response> {
    let route = {
        let world = app.shared.world();
        routes::parse(parts.uri.path(), &world.clusters[app.cluster].catalog)
    };
    match route {
        Route::Version => return Ok(discovery::version()),
        Route::Health => return Ok(Response::new(Body::from("ok"))),
        _ => {}
    }
    let caller = authenticate(&app.shared, &parts.headers)?;
    record.user = caller.name.clone();
    let user = impersonate(app, &caller, &parts.headers)?;
    record.effective_user = user.name.clone();
    record.groups = user.groups.clone();
    let mut headers = parts.headers.clone();
    let mut body = body;
    let is_proto = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/vnd.kubernetes.protobuf"));
    if is_proto && !body.is_empty() {
        let json = super::proto::decode(&body)
            .ok_or_else(|| ApiError::unsupported_media("application/vnd.kubernetes.protobuf"))?;
        body = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    let query = query_map(&parts.uri);
    // Deletes and evictions may also ask for a dry run in their DeleteOptions body.
    let options_in_body = parts.method == Method::DELETE || parts.uri.path().ends_with("/eviction");
    let body_dry = options_in_body
        && serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .is_some_and(|v| {
                let all = |d: &serde_json::Value| {
                    d.as_array().is_some_and(|a| a.iter().any(|x| x == "All"))
                };
                all(&v["dryRun"]) || all(&v["deleteOptions"]["dryRun"])
            });
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All") || body_dry;
    record.dry_run = dry_run;
    let req = Req {
        shared: app.shared.clone(),
        cluster: app.cluster,
        method: parts.method.clone(),
        query,
        headers,
        body,
        user,
        dry_run,
    };
    let rp = match route {
        Route::Resource(rp) => rp,
        Route::Unknown => return Err(ApiError::no_route()),
        other => return discovery::serve(&req, other),
    };
    let target = {
        let world = app.shared.world();
        let rt = world.clusters[app.cluster]
            .catalog
            .by_plural(&rp.group, &rp.version, &rp.plural)
            .cloned();
        let rt = rt.ok_or_else(ApiError::no_route)?;
        Target {
            rt,
            namespace: rp.namespace.clone(),
            name: rp.name.clone(),
            sub: rp.sub.clone(),
        }
    };
    let verb = verb_of(&req, &rp, &target)?;
    record.verb = verb.to_string();
    record.api_group = target.rt.group.clone();
    record.resource = target.rt.plural.clone();
    record.subresource = target.sub.clone();
    record.namespace = target.namespace.clone();
    record.name = if target.name.is_empty() && verb == "create" {
        body_name(&req.body)
    } else {
        target.name.clone()
    };
    let attrs = Attributes {
        verb: verb.to_string(),
        group: target.rt.group.clone(),
        resource: target.rt.plural.clone(),
        subresource: target.sub.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        path: None,
    };
    let self_review =
        target.rt.group == "authorization.k8s.io" && target.rt.plural.starts_with("selfsubject");
    if !self_review {
        let allowed = {
            let world = app.shared.world();
            rbac::authorize(&world.clusters[app.cluster], &req.user, &attrs).is_some()
        };
        if !allowed {
            return Err(ApiError::forbidden(
                &target.rt.qualified(),
                &target.rt.group,
                &target.rt.plural,
                &target.name,
                &rbac::denial(&req.user, &attrs),
            ));
        }
    }
    let result = dispatch(&req, &target, verb).await;
    let mutating = matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) && !target.rt.create_only;
    if mutating && !req.dry_run && result.is_ok() {
        reactions::run(&mut app.shared.world());
    }
    result
}

fn body_name(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["metadata"]["name"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn verb_of(req: &Req, rp: &ResourcePath, t: &Target) -> ApiResult<&'static str> {
    let named = !rp.name.is_empty();
    let verb = match req.method {
        Method::GET | Method::HEAD if !named => {
            if req.q_bool("watch") {
                "watch"
            } else {
                "list"
            }
        }
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT if named => "update",
        Method::PATCH if named => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => return Err(ApiError::method_not_allowed(req.method.as_str())),
    };
    if t.rt.create_only && verb != "create" {
        return Err(ApiError::method_not_allowed(verb));
    }
    if !t.sub.is_empty() && !t.rt.subresources.contains(&t.sub) {
        return Err(ApiError::no_route());
    }
    Ok(verb)
}

async fn dispatch(req: &Req, t: &Target, verb: &str) -> ApiResult<Response> {
    match (verb, t.sub.as_str()) {
        ("watch", "") => watch::watch(req, t).await,
        ("list", "") => read::list(req, t),
        ("get", "") | ("get", "status") => read::get(req, t),
        ("get", "log") => logs::logs(req, t),
        ("get", "scale") => write::get_scale(req, t),
        ("create", "") if t.rt.create_only => reviews::review(req, t),
        ("create", "") if t.name.is_empty() => write::create(req, t),
        ("create", "eviction") => eviction::evict(req, t),
        ("update", "") | ("update", "status") | ("patch", "") | ("patch", "status") => {
            write::modify(req, t, verb)
        }
        ("update", "scale") | ("patch", "scale") => write::modify_scale(req, t, verb),
        ("delete", "") => write::delete(req, t),
        ("deletecollection", "") => write::delete_collection(req, t),
        _ => Err(ApiError::method_not_allowed(verb)),
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    shared
        .tokens
        .get(token)
        .cloned()
        .ok_or_else(ApiError::unauthorized)
}

fn impersonate(app: &AppState, caller: &UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let Some(user) = user else {
        if groups.is_empty() {
            return Ok(caller.clone());
        }
        return Err(ApiError::internal(format!(
            "requested [{}] without impersonating a user",
            groups.join(" ")
        )));
    };
    let world = app.shared.world();
    let cluster = &world.clusters[app.cluster];
    let mut checks: Vec<Attributes> = Vec::new();
    let sa = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    checks.push(match sa {
        Some((ns, name)) => Attributes {
            verb: "impersonate".into(),
            resource: "serviceaccounts".into(),
            namespace: ns.into(),
            name: name.into(),
            ..Default::default()
        },
        None => Attributes {
            verb: "impersonate".into(),
            resource: "users".into(),
            name: user.clone(),
            ..Default::default()
        },
    });
    for g in &groups {
        checks.push(Attributes {
            verb: "impersonate".into(),
            resource: "groups".into(),
            name: g.clone(),
            ..Default::default()
        });
    }
    for a in &checks {
        if rbac::authorize(cluster, caller, a).is_none() {
            return Err(ApiError::forbidden(
                &a.resource,
                "",
                &a.resource,
                &a.name,
                &rbac::denial(caller, a),
            ));
        }
    }
    let mut all_groups = groups;
    if let Some((ns, _)) = sa {
        all_groups.push("system:serviceaccounts".into());
        all_groups.push(format!("system:serviceaccounts:{ns}"));
    }
    if !all_groups.iter().any(|g| g == "system:authenticated") {
        all_groups.push("system:authenticated".into());
    }
    Ok(UserInfo {
        name: user,
        groups: all_groups,
    })
}
