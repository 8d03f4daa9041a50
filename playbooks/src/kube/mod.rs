//! Talking to clusters: one client per kubeconfig context, raw API calls that keep the status
//! code and `Audit-Id`, impersonating clients for execution, and per-object diffs.

pub(crate) mod diff;
pub(crate) mod resources;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use http_body_util::BodyExt;
use medic_approvals::KubeIdentity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::step::ObjectRef;
use resources::resource_of;

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A cluster medic may act on, and the labels placement policies look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Name (also the kubeconfig context).
    pub name: String,
    /// Labels such as `residency: eu`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One cluster: medic's own client (for reads and dry-runs) and its config (for
/// impersonating clients).
#[derive(Clone)]
pub struct ClusterConn {
    /// Name and labels.
    pub spec: ClusterSpec,
    config: kube::Config,
    client: kube::Client,
}

impl std::fmt::Debug for ClusterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConn")
            .field("spec", &self.spec)
            .finish()
    }
}

/// Every configured cluster.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    conns: Vec<ClusterConn>,
}

/// An API answer: status code, the `Audit-Id` header, and the JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// The API server's `Audit-Id` header, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// The body (an object or a `Status`).
    pub body: Value,
}

impl ApiResponse {
    /// True for 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Status` message, or the status code.
    pub fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

impl Clusters {
    /// One client per cluster from a kubeconfig whose context names are the cluster names.
    pub async fn from_kubeconfig(path: &Path, specs: Vec<ClusterSpec>) -> Result<Clusters> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
        let mut conns = Vec::new();
        for spec in specs {
            let options = kube::config::KubeConfigOptions {
                context: Some(spec.name.clone()),
                ..Default::default()
            };
            let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
                .await
                .map_err(|e| Error::Kubeconfig(format!("context {}: {e}", spec.name)))?;
            config.read_timeout = Some(CALL_TIMEOUT);
            // kube retries 429/503/504 by default; an eviction refused by a disruption budget
            // must stop the plan, never be retried behind our back.
            config.default_retry = false;
            config.connect_timeout = Some(CALL_TIMEOUT);
            let client = kube::Client::try_from(config.clone())
                .map_err(|e| Error::Kubeconfig(format!("client for {}: {e}", spec.name)))?;
            conns.push(ClusterConn {
                spec,
                config,
                client,
            });
        }
        Ok(Clusters { conns })
    }

    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Result<&ClusterConn> {
        self.conns
            .iter()
            .find(|c| c.spec.name == name)
            .ok_or_else(|| Error::UnknownCluster {
                cluster: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// Cluster names, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.conns.iter().map(|c| c.spec.name.clone()).collect()
    }

    /// Every cluster.
    pub fn iter(&self) -> impl Iterator<Item = &ClusterConn> {
        self.conns.iter()
    }
}

impl ClusterConn {
    /// medic's own client (reads, dry-runs, post-checks).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A client that sends `Impersonate-User` / `Impersonate-Group` for `who` on top of
    /// medic's own credentials, so the API server authorizes every call as the approver.
    pub fn impersonating(&self, who: &KubeIdentity) -> Result<kube::Client> {
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(who.user.clone());
        // The API server adds system:authenticated itself; impersonating it would need a
        // grant medic should not hold.
        let groups: Vec<String> = who
            .groups
            .iter()
            .filter(|g| g.as_str() != "system:authenticated")
            .cloned()
            .collect();
        config.auth_info.impersonate_groups = (!groups.is_empty()).then_some(groups);
        kube::Client::try_from(config).map_err(|e| {
            Error::Kubeconfig(format!("impersonating client for {}: {e}", self.spec.name))
        })
    }

    /// One raw call through `client`.
    pub(crate) async fn call(
        &self,
        client: &kube::Client,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<ApiResponse> {
        let request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, "application/json")
            .body(kube::client::Body::from(body))
            .map_err(|e| Error::Kube {
                cluster: self.spec.name.clone(),
                message: format!("cannot build request {method} {path}: {e}"),
            })?;
        let fail = |message: String| Error::Kube {
            cluster: self.spec.name.clone(),
            message,
        };
        let work = async {
            let response = client
                .send(request)
                .await
                .map_err(|e| fail(format!("{method} {path}: {e}")))?;
            let status = response.status().as_u16();
            let audit_id = response
                .headers()
                .get("audit-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| fail(format!("reading the answer to {method} {path}: {e}")))?
                .to_bytes();
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            };
            Ok(ApiResponse {
                status,
                audit_id,
                body,
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, work)
            .await
            .map_err(|_| {
                fail(format!(
                    "{method} {path}: no answer within {CALL_TIMEOUT:?}"
                ))
            })?
    }

    /// GET one object as medic; `None` on 404.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>> {
        let r = ObjectRef::new(api_version, kind, namespace, name);
        let path = r.path()?;
        let resp = self
            .call(
                &self.client,
                http::Method::GET,
                &path,
                "application/json",
                Vec::new(),
            )
            .await?;
        match resp.status {
            200 => Ok(Some(resp.body)),
            404 => Ok(None),
            status => Err(self.api_error("GET", &path, status, &resp)),
        }
    }

    /// GET one object that must exist.
    pub async fn must_get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value> {
        self.get(api_version, kind, namespace, name)
            .await?
            .ok_or_else(|| Error::NotFound {
                cluster: self.spec.name.clone(),
                kind: kind.to_owned(),
                name: match namespace {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.to_owned(),
                },
            })
    }

    /// LIST objects as medic, with optional label and field selectors.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Vec<Value>> {
        let info = resource_of(api_version, kind).ok_or_else(|| {
            Error::Precondition(format!(
                "medic does not know the resource for {api_version} {kind}"
            ))
        })?;
        let mut path = info.collection_path(namespace)?;
        let mut query = Vec::new();
        if let Some(l) = labels.filter(|l| !l.is_empty()) {
            query.push(format!("labelSelector={}", encode(l)));
        }
        if let Some(f) = fields.filter(|f| !f.is_empty()) {
            query.push(format!("fieldSelector={}", encode(f)));
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let resp = self
            .call(
                &self.client,
                http::Method::GET,
                &path,
                "application/json",
                Vec::new(),
            )
            .await?;
        if resp.status != 200 {
            return Err(self.api_error("GET", &path, resp.status, &resp));
        }
        let mut items = resp.body["items"].as_array().cloned().unwrap_or_default();
        // Lists omit apiVersion/kind on items; put them back so ObjectRef::of works.
        for item in &mut items {
            item["apiVersion"] = api_version.into();
            item["kind"] = kind.into();
        }
        Ok(items)
    }

    pub(crate) fn api_error(
        &self,
        method: &str,
        path: &str,
        status: u16,
        resp: &ApiResponse,
    ) -> Error {
        Error::Api {
            cluster: self.spec.name.clone(),
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            message: resp.message(),
        }
    }
}

/// Percent-encodes a query value (selectors contain `=`, `,`, `!`).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Reads a dotted path (`spec.rules.0.backendRefs.1.weight`) from a JSON value.
pub fn at_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = match (cur, seg.parse::<usize>()) {
            (Value::Array(items), Ok(i)) => items.get(i).unwrap_or(&Value::Null),
            _ => cur.get(seg).unwrap_or(&Value::Null),
        };
    }
    cur
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_index_lists() {
        let v = json!({"spec": {"rules": [{"backendRefs": [{"weight": 100}, {"weight": 0}]}]}});
        assert_eq!(at_path(&v, "spec.rules.0.backendRefs.1.weight"), &json!(0));
        assert_eq!(at_path(&v, "spec.nothing.3"), &Value::Null);
        assert_eq!(encode("app=llama,tier!=x"), "app%3Dllama%2Ctier%21%3Dx");
    }
}
