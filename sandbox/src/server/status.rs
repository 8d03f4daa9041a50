//! `metav1.Status` errors exactly as a real API server phrases them.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::catalog::ResourceType;

/// An API error carrying the Status body the server answers with.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub body: Value,
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

fn status(code: u16, reason: &str, message: impl Into<String>, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    body["code"] = code.into();
    ApiError { code, body }
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !rt.group.is_empty() {
        d.insert("group".into(), rt.group.clone().into());
    }
    d.insert("kind".into(), rt.plural.clone().into());
    Value::Object(d)
}

impl ApiError {
    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        status(
            404,
            "NotFound",
            format!("{} {:?} not found", rt.qualified(), name),
            Some(details(rt, name)),
        )
    }
    pub fn no_route() -> ApiError {
        status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }
    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        status(
            409,
            "AlreadyExists",
            format!("{} {:?} already exists", rt.qualified(), name),
            Some(details(rt, name)),
        )
    }
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> ApiError {
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {:?}: {}",
                rt.qualified(),
                name,
                why
            ),
            Some(details(rt, name)),
        )
    }
    pub fn stale(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    pub fn forbidden(
        rt_qualified: &str,
        group: &str,
        resource: &str,
        name: &str,
        why: &str,
    ) -> ApiError {
        let message = if name.is_empty() {
            format!("{rt_qualified} is forbidden: {why}")
        } else {
            format!("{rt_qualified} {name:?} is forbidden: {why}")
        };
        let mut d = serde_json::Map::new();
        if !name.is_empty() {
            d.insert("name".into(), name.into());
        }
        if !group.is_empty() {
            d.insert("group".into(), group.into());
        }
        d.insert("kind".into(), resource.into());
        status(403, "Forbidden", message, Some(Value::Object(d)))
    }
    pub fn unauthorized() -> ApiError {
        status(401, "Unauthorized", "Unauthorized", None)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        status(400, "BadRequest", message, None)
    }
    pub fn method_not_allowed(verb: &str) -> ApiError {
        status(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
            Some(json!({})),
        )
    }
    pub fn unsupported_media(ct: &str) -> ApiError {
        status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; found {ct:?}"
            ),
            None,
        )
    }
    /// 422 Invalid with field causes: (field, message).
    pub fn invalid(
        rt: &ResourceType,
        kind: &str,
        name: &str,
        causes: &[(String, String)],
    ) -> ApiError {
        let list = causes
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join(", ");
        let kind_group = if rt.group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{}", rt.group)
        };
        let mut d = json!({"name": name, "kind": kind,
            "causes": causes.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f})).collect::<Vec<_>>()});
        if !rt.group.is_empty() {
            d["group"] = rt.group.clone().into();
        }
        status(
            422,
            "Invalid",
            format!("{kind_group} {name:?} is invalid: {list}"),
            Some(d),
        )
    }
    pub fn too_many_requests(message: &str, causes: Value) -> ApiError {
        status(
            429,
            "TooManyRequests",
            message,
            Some(json!({"causes": causes})),
        )
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        status(500, "InternalError", message, Some(json!({})))
    }
    pub fn gone(message: impl Into<String>) -> ApiError {
        status(410, "Expired", message, None)
    }
}

/// A `Status` with `status: Success`.
pub(crate) fn success(code: u16, details: Option<Value>) -> Value {
    let mut v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        v["details"] = d;
    }
    v["code"] = code.into();
    v
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.code, &self.body)
    }
}

/// A JSON response with the exact `application/json` content type kubectl expects.
pub(crate) fn json_response(code: u16, body: &Value) -> Response {
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

pub(crate) fn bytes_response(code: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
