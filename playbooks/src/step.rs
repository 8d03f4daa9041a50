//! Typed plan steps: the exact API operations a plan performs, and what each needs from RBAC.

use medic_approvals::AccessCheck;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::kube::resources::{ResourceInfo, resource_of};

/// One Kubernetes object, pinned to the version the plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, `gateway.networking.k8s.io/v1`, ...
    pub api_version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The uid the plan expects (a re-created object with the same name is another object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The resourceVersion the plan expects; `None` means "whatever is live" (undo steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

impl ObjectRef {
    /// A reference without uid or resourceVersion.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            uid: None,
            resource_version: None,
        }
    }

    /// A reference pinned to a live object's uid and resourceVersion.
    pub fn of(obj: &Value) -> ObjectRef {
        let meta = &obj["metadata"];
        let s = |v: &Value| v.as_str().map(str::to_owned);
        ObjectRef {
            api_version: obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: obj["kind"].as_str().unwrap_or_default().to_owned(),
            namespace: s(&meta["namespace"]).filter(|n| !n.is_empty()),
            name: s(&meta["name"]).unwrap_or_default(),
            uid: s(&meta["uid"]),
            resource_version: s(&meta["resourceVersion"]),
        }
    }

    /// The same object without a pinned resourceVersion (uid kept).
    pub fn unpinned(&self) -> ObjectRef {
        ObjectRef {
            resource_version: None,
            ..self.clone()
        }
    }

    /// `Kind namespace/name` or `Kind name`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    pub(crate) fn resource(&self) -> Result<ResourceInfo> {
        resource_of(&self.api_version, &self.kind).ok_or_else(|| Error::Precondition(format!(
            "medic does not know the resource for {} {}; expected one of the kinds its playbooks use",
            self.api_version, self.kind
        )))
    }

    pub(crate) fn path(&self) -> Result<String> {
        self.resource()?
            .object_path(self.namespace.as_deref(), &self.name)
    }

    fn access(&self, verb: &str, subresource: Option<&str>) -> Result<AccessCheck> {
        let r = self.resource()?;
        Ok(AccessCheck {
            verb: verb.to_owned(),
            group: r.group.to_owned(),
            resource: r.plural.to_owned(),
            subresource: subresource.map(str::to_owned),
            namespace: self.namespace.clone(),
            name: Some(self.name.clone()),
            cluster: None,
        })
    }
}

/// A patch body and its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
pub enum PatchBody {
    /// JSON merge patch (RFC 7386).
    Merge(Value),
    /// JSON patch (RFC 6902).
    Json(Value),
    /// Kubernetes strategic merge patch.
    Strategic(Value),
    /// Server-side apply (the body is the applied configuration).
    Apply(Value),
}

impl PatchBody {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            PatchBody::Merge(_) => "application/merge-patch+json",
            PatchBody::Json(_) => "application/json-patch+json",
            PatchBody::Strategic(_) => "application/strategic-merge-patch+json",
            PatchBody::Apply(_) => "application/apply-patch+yaml",
        }
    }

    /// The body with the target's resourceVersion added, so the API server itself refuses
    /// the write (409) when the object changed since the plan was made.
    pub(crate) fn pinned(&self, rv: Option<&str>) -> Value {
        let Some(rv) = rv else {
            return self.body().clone();
        };
        match self {
            PatchBody::Json(ops) => {
                let mut all =
                    vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
                all.extend(ops.as_array().cloned().unwrap_or_default());
                Value::Array(all)
            }
            PatchBody::Merge(b) | PatchBody::Strategic(b) | PatchBody::Apply(b) => {
                let mut b = b.clone();
                if b.is_object() {
                    b["metadata"]["resourceVersion"] = rv.into();
                }
                b
            }
        }
    }

    fn body(&self) -> &Value {
        match self {
            PatchBody::Merge(b)
            | PatchBody::Json(b)
            | PatchBody::Strategic(b)
            | PatchBody::Apply(b) => b,
        }
    }
}

/// One backend weight of an HTTPRoute rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RouteWeight {
    /// Index of the rule in `spec.rules`.
    pub rule: usize,
    /// Index of the backend in the rule's `backendRefs`.
    pub backend: usize,
    /// The backend's name (checked by the patch, so a reordered route is not mis-weighted).
    pub name: String,
    /// New weight.
    pub weight: i64,
}

/// A taint added while cordoning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A read-only condition on live state, used by waits and post-checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// A dotted path of an object equals a value.
    FieldEquals {
        /// The object (its resourceVersion is ignored).
        target: ObjectRef,
        /// Dotted path; numeric segments index lists.
        path: String,
        /// Expected JSON value.
        value: Value,
    },
    /// A numeric dotted path of an object is at least a value.
    FieldAtLeast {
        /// The object.
        target: ObjectRef,
        /// Dotted path.
        path: String,
        /// Minimum.
        value: i64,
    },
    /// A Deployment finished rolling out: observed its generation and has `replicas`
    /// updated, ready and available replicas.
    RolloutComplete {
        /// The Deployment.
        deployment: ObjectRef,
        /// Expected replicas.
        replicas: i64,
    },
    /// At least `min` Ready pods match `selector` in `namespace` off `avoid_node`, and at
    /// most `max_on_node` are left on it (none for a drain; the unmoved ones for a skew).
    ReadyPodsElsewhere {
        /// Namespace.
        namespace: String,
        /// Label selector.
        selector: String,
        /// The node they must leave.
        avoid_node: String,
        /// Minimum Ready pods elsewhere.
        min: i64,
        /// Pods that may stay on `avoid_node` (absent in JSON when 0, so drain plans hash
        /// as before).
        #[serde(default, skip_serializing_if = "is_zero")]
        max_on_node: i64,
    },
    /// The object no longer exists, or exists again under another uid (it was deleted and
    /// re-created). Waits on this after deleting something that holds a finalizer, such as a
    /// KubeVirt migration the controller must abort first.
    Gone {
        /// The object, pinned by uid.
        target: ObjectRef,
    },
}

impl Check {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Check::FieldEquals {
                target,
                path,
                value,
            } => {
                format!("{} {path} == {value}", target.display())
            }
            Check::FieldAtLeast {
                target,
                path,
                value,
            } => {
                format!("{} {path} >= {value}", target.display())
            }
            Check::RolloutComplete {
                deployment,
                replicas,
            } => format!(
                "{} rollout complete with {replicas} replicas",
                deployment.display()
            ),
            Check::Gone { target } => format!("{} is gone", target.display()),
            Check::ReadyPodsElsewhere {
                namespace,
                selector,
                avoid_node,
                min,
                max_on_node: 0,
            } => {
                format!("at least {min} Ready pods {selector} in {namespace}, none on {avoid_node}")
            }
            Check::ReadyPodsElsewhere {
                namespace,
                selector,
                avoid_node,
                min,
                max_on_node,
            } => format!(
                "at least {min} Ready pods {selector} in {namespace} off {avoid_node}, at most {max_on_node} left on it"
            ),
        }
    }
}

/// A revert pull request against a GitOps repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RevertPr {
    /// `owner/name`.
    pub repo: String,
    /// Branch the pull request targets.
    pub base: String,
    /// Head of `base` when the plan was made (the precondition).
    pub base_sha: String,
    /// The commit to revert: the head of `base`, or an older commit whose files no later
    /// commit touched (see `files`).
    pub commit: String,
    /// When `commit` is not the head of `base`: the paths it changed, each restored to its
    /// content before `commit` on top of the head's tree (later commits touch none of them).
    /// Empty when `commit` is the head: the revert is its parent's tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Branch medic creates for the revert.
    pub branch: String,
    /// Pull request title.
    pub title: String,
    /// Pull request body.
    pub body: String,
}

/// The operation of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// Patch an object.
    Patch {
        /// The object, pinned.
        target: ObjectRef,
        /// The patch.
        patch: PatchBody,
        /// Field manager recorded by the API server.
        field_manager: String,
    },
    /// Mark a node unschedulable (a node patch), optionally adding a taint.
    Cordon {
        /// The node, pinned.
        node: ObjectRef,
        /// The node's complete taint list after the patch, when the plan adds a taint
        /// (merge patches replace lists, so every existing taint is in it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_taints: Option<Vec<Taint>>,
    },
    /// Mark a node schedulable again (a node patch), optionally removing a taint by key.
    Uncordon {
        /// The node.
        node: ObjectRef,
        /// The node's complete taint list after the patch, when the plan removes a taint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_taints: Option<Vec<Taint>>,
    },
    /// Evict a pod through the Eviction API (PodDisruptionBudgets apply; a 429 stops).
    Evict {
        /// The pod, pinned by uid.
        pod: ObjectRef,
    },
    /// Set replicas through the scale subresource.
    Scale {
        /// The Deployment / StatefulSet, pinned.
        target: ObjectRef,
        /// New replicas.
        replicas: i64,
        /// Replicas before (for the diff and the undo).
        from: i64,
    },
    /// Change backend weights of a Gateway API HTTPRoute.
    SetRouteWeights {
        /// The HTTPRoute, pinned.
        route: ObjectRef,
        /// New weights.
        weights: Vec<RouteWeight>,
    },
    /// Create an object.
    Create {
        /// The object to create (apiVersion, kind, metadata.name/namespace required).
        object: Value,
    },
    /// Delete an object (uid / resourceVersion preconditions apply).
    Delete {
        /// The object.
        target: ObjectRef,
    },
    /// Wait (read-only, as medic) until a condition holds.
    WaitFor {
        /// The condition.
        check: Check,
        /// Give up after this many seconds.
        timeout_seconds: u64,
    },
    /// Open a revert pull request instead of patching a GitOps-managed object.
    RevertPullRequest(RevertPr),
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// The cluster it acts on (for a pull request: the cluster the workload runs in).
    pub cluster: String,
    /// One line for people.
    pub description: String,
    /// What it does.
    #[serde(flatten)]
    pub op: Operation,
}

impl Step {
    /// The SubjectAccessReview this step needs, on the step's own cluster; `None` for
    /// read-only waits and pull requests.
    pub fn access(&self) -> Result<Option<AccessCheck>> {
        let mut check = match &self.op {
            Operation::Patch { target, .. } => target.access("patch", None)?,
            Operation::Cordon { node, .. } | Operation::Uncordon { node, .. } => {
                node.access("patch", None)?
            }
            Operation::SetRouteWeights { route, .. } => route.access("patch", None)?,
            Operation::Evict { pod } => pod.access("create", Some("eviction"))?,
            Operation::Scale { target, .. } => target.access("patch", Some("scale"))?,
            Operation::Delete { target } => target.access("delete", None)?,
            Operation::Create { object } => {
                let mut r = ObjectRef::of(object).access("create", None)?;
                r.name = None;
                r
            }
            Operation::WaitFor { .. } | Operation::RevertPullRequest(_) => return Ok(None),
        };
        check.cluster = Some(self.cluster.clone());
        Ok(Some(check))
    }

    /// The object this step changes, when it changes one.
    pub fn target(&self) -> Option<&ObjectRef> {
        match &self.op {
            Operation::Patch { target, .. }
            | Operation::Scale { target, .. }
            | Operation::Delete { target } => Some(target),
            Operation::Cordon { node, .. } | Operation::Uncordon { node, .. } => Some(node),
            Operation::Evict { pod } => Some(pod),
            Operation::SetRouteWeights { route, .. } => Some(route),
            Operation::Create { .. }
            | Operation::WaitFor { .. }
            | Operation::RevertPullRequest(_) => None,
        }
    }

    /// True when the step mutates something (everything but waits).
    pub fn mutates(&self) -> bool {
        !matches!(self.op, Operation::WaitFor { .. })
    }

    /// The namespace the step touches, if any.
    pub fn namespace(&self) -> Option<String> {
        match &self.op {
            Operation::Create { object } => {
                object["metadata"]["namespace"].as_str().map(str::to_owned)
            }
            _ => self.target().and_then(|t| t.namespace.clone()),
        }
    }
}

/// The HTTP request of a Kubernetes step.
pub(crate) struct HttpCall {
    pub method: http::Method,
    pub path: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn enc(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::json("request body", e))
}

impl Operation {
    /// The API request that performs this operation (`None` for waits and pull requests).
    pub(crate) fn http_call(&self, dry_run: bool) -> Result<Option<HttpCall>> {
        let mut query: Vec<String> = Vec::new();
        if dry_run {
            query.push("dryRun=All".into());
        }
        let q = |mut path: String, extra: &[String]| {
            if !extra.is_empty() {
                path.push('?');
                path.push_str(&extra.join("&"));
            }
            path
        };
        let manager = |fm: &str| {
            format!(
                "fieldManager={}",
                fm.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
            )
        };
        let call = match self {
            Operation::Patch {
                target,
                patch,
                field_manager: fm,
            } => {
                query.push(manager(fm));
                let body = patch.pinned(target.resource_version.as_deref());
                let body = match patch {
                    PatchBody::Apply(_) => serde_yaml::to_string(&body)
                        .map_err(|e| {
                            Error::Precondition(format!("apply body is not YAML-encodable: {e}"))
                        })?
                        .into_bytes(),
                    _ => enc(&body)?,
                };
                HttpCall {
                    method: http::Method::PATCH,
                    path: q(target.path()?, &query),
                    content_type: patch.content_type(),
                    body,
                }
            }
            Operation::Cordon { node, set_taints } => {
                query.push(manager(FIELD_MANAGER));
                let mut body = json!({"spec": {"unschedulable": true}});
                if let Some(t) = set_taints {
                    body["spec"]["taints"] = taints_json(t);
                }
                node_patch(node, body, &query, q)?
            }
            Operation::Uncordon { node, set_taints } => {
                query.push(manager(FIELD_MANAGER));
                let mut body = json!({"spec": {"unschedulable": null}});
                if let Some(t) = set_taints {
                    body["spec"]["taints"] = taints_json(t);
                }
                node_patch(node, body, &query, q)?
            }
            Operation::Evict { pod } => {
                let mut options = json!({"preconditions": {}});
                if let Some(uid) = &pod.uid {
                    options["preconditions"]["uid"] = uid.clone().into();
                }
                if let Some(rv) = &pod.resource_version {
                    options["preconditions"]["resourceVersion"] = rv.clone().into();
                }
                if dry_run {
                    options["dryRun"] = json!(["All"]);
                }
                let body = json!({
                    "apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": pod.name, "namespace": pod.namespace},
                    "deleteOptions": options,
                });
                HttpCall {
                    method: http::Method::POST,
                    path: q(format!("{}/eviction", pod.path()?), &query),
                    content_type: "application/json",
                    body: enc(&body)?,
                }
            }
            Operation::Scale {
                target, replicas, ..
            } => {
                query.push(manager(FIELD_MANAGER));
                let mut body = json!({"spec": {"replicas": replicas}});
                if let Some(rv) = &target.resource_version {
                    body["metadata"] = json!({"resourceVersion": rv});
                }
                HttpCall {
                    method: http::Method::PATCH,
                    path: q(format!("{}/scale", target.path()?), &query),
                    content_type: "application/merge-patch+json",
                    body: enc(&body)?,
                }
            }
            Operation::SetRouteWeights { route, weights } => {
                query.push(manager(FIELD_MANAGER));
                let mut ops = Vec::new();
                if let Some(rv) = &route.resource_version {
                    ops.push(
                        json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                    );
                }
                for w in weights {
                    let base = format!("/spec/rules/{}/backendRefs/{}", w.rule, w.backend);
                    ops.push(
                        json!({"op": "test", "path": format!("{base}/name"), "value": w.name}),
                    );
                    ops.push(
                        json!({"op": "add", "path": format!("{base}/weight"), "value": w.weight}),
                    );
                }
                HttpCall {
                    method: http::Method::PATCH,
                    path: q(route.path()?, &query),
                    content_type: "application/json-patch+json",
                    body: enc(&Value::Array(ops))?,
                }
            }
            Operation::Create { object } => {
                query.push(manager(FIELD_MANAGER));
                let r = ObjectRef::of(object);
                let info = r.resource()?;
                HttpCall {
                    method: http::Method::POST,
                    path: q(info.collection_path(r.namespace.as_deref())?, &query),
                    content_type: "application/json",
                    body: enc(object)?,
                }
            }
            Operation::Delete { target } => {
                let mut options =
                    json!({"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {}});
                if let Some(uid) = &target.uid {
                    options["preconditions"]["uid"] = uid.clone().into();
                }
                if let Some(rv) = &target.resource_version {
                    options["preconditions"]["resourceVersion"] = rv.clone().into();
                }
                HttpCall {
                    method: http::Method::DELETE,
                    path: q(target.path()?, &query),
                    content_type: "application/json",
                    body: enc(&options)?,
                }
            }
            Operation::WaitFor { .. } | Operation::RevertPullRequest(_) => return Ok(None),
        };
        Ok(Some(call))
    }
}

/// The field manager medic records on operations that carry none of their own.
const FIELD_MANAGER: &str = "medic";

fn taints_json(taints: &[Taint]) -> Value {
    Value::Array(
        taints
            .iter()
            .map(|t| {
                // key, value, effect: the order the API server prints, so diffs stay small.
                let mut v = serde_json::Map::new();
                v.insert("key".into(), t.key.clone().into());
                if !t.value.is_empty() {
                    v.insert("value".into(), t.value.clone().into());
                }
                v.insert("effect".into(), t.effect.clone().into());
                Value::Object(v)
            })
            .collect(),
    )
}

fn node_patch(
    node: &ObjectRef,
    mut body: Value,
    query: &[String],
    q: impl Fn(String, &[String]) -> String,
) -> Result<HttpCall> {
    if let Some(rv) = &node.resource_version {
        body["metadata"] = json!({"resourceVersion": rv});
    }
    Ok(HttpCall {
        method: http::Method::PATCH,
        path: q(node.path()?, query),
        content_type: "application/merge-patch+json",
        body: enc(&body)?,
    })
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
