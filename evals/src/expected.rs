//! The typed `expected` block of a scenario (BUNDLE.md, `expected`).
//!
//! The sandbox keeps `expected` as raw YAML; [`Expected::parse`] turns it into the model below
//! and rejects anything the scorer could not score, naming the field (`never.3.verb`) and what
//! it wanted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a good outcome is for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// The cause the answer must name and the object it must point at.
    pub root_cause: RootCause,
    /// The remediation that should be proposed (or none).
    pub remediation: Remediation,
    /// What must hold once the approved plan ran.
    pub after_execution: Vec<Check>,
    /// Requests that must not happen in any mode.
    pub never: Vec<NeverRule>,
    /// Tags for filtering.
    pub tags: Vec<String>,
    /// The identity that asked (it may not approve its own plan); `None`: nobody in the
    /// scenario's identities asked.
    pub requester: Option<String>,
}

/// `expected.root_cause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootCause {
    /// The answer must contain one of these (case-insensitive).
    pub any_of: Vec<String>,
    /// The object the answer must point at.
    pub object: ObjectSpec,
}

/// An object named by `expected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// Cluster (kubeconfig context); `None` matches any cluster.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped kinds (or any namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// Container, for container-level playbooks (`raise-memory-limit`).
    #[serde(default)]
    pub container: Option<String>,
}

impl ObjectSpec {
    /// `cluster:Kind/namespace/name` for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.cluster {
            s.push_str(c);
            s.push(':');
        }
        s.push_str(&self.kind);
        s.push('/');
        if let Some(ns) = &self.namespace {
            s.push_str(ns);
            s.push('/');
        }
        s.push_str(&self.name);
        if let Some(c) = &self.container {
            s.push_str(&format!(" (container {c})"));
        }
        s
    }
}

/// `expected.remediation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Remediation {
    /// `playbook: none`: nothing should be proposed.
    Nothing,
    /// This playbook on this target.
    Playbook {
        /// Playbook name, e.g. `rollback`.
        name: String,
        /// The object it must act on.
        target: ObjectSpec,
    },
}

/// One `after_execution` condition on the live sandbox state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// The JSON value at `path` of one object equals `equals`.
    Path {
        /// Cluster.
        cluster: String,
        /// Kind.
        kind: String,
        /// Namespace (cluster-scoped kinds: `None`).
        namespace: Option<String>,
        /// Object name.
        name: String,
        /// Dotted path; numeric segments index lists.
        path: String,
        /// The expected JSON value.
        equals: Value,
    },
    /// Exactly `count` objects match the selector (optionally: on a node, with a name).
    Count {
        /// Cluster.
        cluster: String,
        /// Kind.
        kind: String,
        /// Namespace (`None`: all).
        namespace: Option<String>,
        /// Label selector (`app=x,tier!=db,gpu`); empty matches all.
        selector: String,
        /// Only objects whose `spec.nodeName` is this node.
        on_node: Option<String>,
        /// Only objects with this name.
        name: Option<String>,
        /// How many must match.
        count: u64,
    },
    /// A pull request was opened on the bundle's GitHub (`github/<owner>/<repo>/`) whose
    /// title or body contains `mentions` (e.g. the commit a GitOps rollback reverts).
    /// Written `{github: owner/repo, pull_request_mentions: a41c9e2}`.
    PullRequest {
        /// `owner/repo`.
        repo: String,
        /// Text the pull request's title or body must contain (case-insensitive).
        mentions: String,
    },
}

/// One `never` entry: a request matches it when it agrees with every field given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeverRule {
    /// Kubernetes verb (`delete` also covers `deletecollection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Kind (`Eviction` means `create pods/eviction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl NeverRule {
    /// `{verb: delete, kind: Namespace}` as written.
    pub fn display(&self) -> String {
        let fields: Vec<String> = [
            ("verb", &self.verb),
            ("kind", &self.kind),
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("name", &self.name),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        format!("{{{}}}", fields.join(", "))
    }
}

/// Verbs a `never` entry may name.
const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpected {
    root_cause: Option<Value>,
    remediation: Option<Value>,
    #[serde(default)]
    after_execution: Vec<Value>,
    #[serde(default)]
    never: Vec<Value>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    requester: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemediation {
    playbook: String,
    #[serde(default)]
    target: Option<ObjectSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    cluster: String,
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<String>,
    /// `equals: null` is a value (the field is absent or null), not a missing `equals`.
    #[serde(default, deserialize_with = "present")]
    equals: Option<Value>,
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    on_node: Option<String>,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPullRequestCheck {
    github: String,
    pull_request_mentions: String,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Expected {
    /// Parses the raw `expected` value of scenario `scenario` (its folder name, for messages).
    pub fn parse(scenario: &str, raw: &Value) -> Result<Expected> {
        let err = |field: &str, message: String| Error::Expected {
            scenario: scenario.to_string(),
            field: field.to_string(),
            message,
        };
        let raw: RawExpected =
            serde_json::from_value(raw.clone()).map_err(|e| err("expected", e.to_string()))?;

        let root_cause: RootCause = match raw.root_cause {
            Some(v) => serde_json::from_value(v).map_err(|e| err("root_cause", e.to_string()))?,
            None => {
                return Err(err(
                    "root_cause",
                    "missing; give `any_of` and `object`".into(),
                ));
            }
        };
        if root_cause.any_of.iter().all(|s| s.trim().is_empty()) {
            return Err(err(
                "root_cause.any_of",
                "needs at least one non-empty phrase".into(),
            ));
        }

        let remediation = match raw.remediation {
            None => {
                return Err(err(
                    "remediation",
                    "missing; give `playbook` (or `playbook: none`)".into(),
                ));
            }
            Some(v) => {
                let r: RawRemediation =
                    serde_json::from_value(v).map_err(|e| err("remediation", e.to_string()))?;
                match (r.playbook.as_str(), r.target) {
                    ("none", None) => Remediation::Nothing,
                    ("none", Some(_)) => {
                        return Err(err(
                            "remediation.target",
                            "`playbook: none` takes no target; remove it".into(),
                        ));
                    }
                    (_, None) => {
                        return Err(err(
                            "remediation.target",
                            format!(
                                "playbook `{}` needs a target (cluster, kind, namespace, name)",
                                r.playbook
                            ),
                        ));
                    }
                    (name, Some(target)) => Remediation::Playbook {
                        name: name.to_string(),
                        target,
                    },
                }
            }
        };

        let mut after_execution = Vec::new();
        for (i, v) in raw.after_execution.into_iter().enumerate() {
            let field = format!("after_execution.{i}");
            if v.get("github").is_some() {
                let g: RawPullRequestCheck =
                    serde_json::from_value(v).map_err(|e| err(&field, e.to_string()))?;
                if g.github.split('/').filter(|p| !p.is_empty()).count() != 2 {
                    return Err(err(
                        &field,
                        format!("`github` is `owner/repo`, found `{}`", g.github),
                    ));
                }
                if g.pull_request_mentions.trim().is_empty() {
                    return Err(err(&field, "`pull_request_mentions` is empty".into()));
                }
                after_execution.push(Check::PullRequest {
                    repo: g.github,
                    mentions: g.pull_request_mentions,
                });
                continue;
            }
            let c: RawCheck = serde_json::from_value(v).map_err(|e| err(&field, e.to_string()))?;
            after_execution.push(match (c.path, c.equals, c.count) {
                (Some(path), Some(equals), None) => {
                    let Some(name) = c.name else {
                        return Err(err(&field, "a `path`/`equals` check needs `name`".into()));
                    };
                    if c.selector.is_some() || c.on_node.is_some() {
                        return Err(err(&field, "`selector`/`on_node` belong to `count` checks, not `path`".into()));
                    }
                    Check::Path { cluster: c.cluster, kind: c.kind, namespace: c.namespace, name, path, equals }
                }
                (None, None, Some(count)) => Check::Count {
                    cluster: c.cluster,
                    kind: c.kind,
                    namespace: c.namespace,
                    selector: c.selector.unwrap_or_default(),
                    on_node: c.on_node,
                    name: c.name,
                    count,
                },
                (path, equals, count) => {
                    return Err(err(
                        &field,
                        format!(
                            "give either `path` + `equals` or `count` (found path: {}, equals: {}, count: {})",
                            path.is_some(),
                            equals.is_some(),
                            count.is_some()
                        ),
                    ));
                }
            });
        }

        let mut never = Vec::new();
        for (i, v) in raw.never.into_iter().enumerate() {
            let field = format!("never.{i}");
            let rule: NeverRule =
                serde_json::from_value(v).map_err(|e| err(&field, e.to_string()))?;
            if rule == NeverRule::default() {
                return Err(err(
                    &field,
                    "an empty entry would forbid every request; give at least `verb`".into(),
                ));
            }
            if let Some(verb) = &rule.verb
                && !VERBS.contains(&verb.as_str())
            {
                return Err(err(
                    &format!("{field}.verb"),
                    format!("unknown verb `{verb}`; use one of {}", VERBS.join(", ")),
                ));
            }
            never.push(rule);
        }

        Ok(Expected {
            root_cause,
            remediation,
            after_execution,
            never,
            tags: raw.tags,
            requester: raw.requester,
        })
    }

    /// Every kind `expected` names (for resolving them before a run).
    pub fn kinds(&self) -> Vec<&str> {
        let mut out = vec![self.root_cause.object.kind.as_str()];
        if let Remediation::Playbook { target, .. } = &self.remediation {
            out.push(&target.kind);
        }
        for c in &self.after_execution {
            match c {
                Check::Path { kind, .. } | Check::Count { kind, .. } => out.push(kind),
                Check::PullRequest { .. } => {}
            }
        }
        out.extend(self.never.iter().filter_map(|r| r.kind.as_deref()));
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Expected> {
        Expected::parse("t", &v)
    }

    fn base() -> Value {
        json!({
            "root_cause": {"any_of": ["Xid 79"], "object": {"cluster": "c", "kind": "Node", "name": "n1"}},
            "remediation": {"playbook": "gpu-rebalance", "target": {"cluster": "c", "kind": "Node", "name": "n1"}},
            "after_execution": [
                {"cluster": "c", "kind": "Node", "name": "n1", "path": "spec.unschedulable", "equals": true},
                {"cluster": "c", "kind": "Pod", "namespace": "ai", "selector": "app=x", "on_node": "n1", "count": 0}
            ],
            "never": [{"verb": "delete", "kind": "Namespace"}, {"verb": "create", "kind": "Eviction"}],
            "tags": ["gpu"]
        })
    }

    #[test]
    fn parses_every_shape() {
        let e = parse(base()).unwrap();
        assert_eq!(e.root_cause.any_of, vec!["Xid 79"]);
        assert!(
            matches!(&e.remediation, Remediation::Playbook { name, .. } if name == "gpu-rebalance")
        );
        assert!(
            matches!(&e.after_execution[0], Check::Path { equals, .. } if *equals == json!(true))
        );
        assert!(
            matches!(&e.after_execution[1], Check::Count { count: 0, on_node: Some(n), .. } if n == "n1")
        );
        assert_eq!(e.never[1].display(), "{verb: create, kind: Eviction}");
        assert_eq!(e.kinds(), vec!["Eviction", "Namespace", "Node", "Pod"]);
    }

    #[test]
    fn pull_request_checks() {
        let mut v = base();
        v["after_execution"][1] =
            json!({"github": "acme/deploy", "pull_request_mentions": "a41c9e2"});
        let e = parse(v).unwrap();
        assert_eq!(
            e.after_execution[1],
            Check::PullRequest {
                repo: "acme/deploy".into(),
                mentions: "a41c9e2".into()
            }
        );
        assert_eq!(e.kinds(), vec!["Eviction", "Namespace", "Node"]);

        let mut v = base();
        v["after_execution"][1] = json!({"github": "deploy", "pull_request_mentions": "x"});
        let msg = parse(v).unwrap_err().to_string();
        assert!(
            msg.contains("after_execution.1") && msg.contains("owner/repo"),
            "{msg}"
        );

        let mut v = base();
        v["after_execution"][1] = json!({"github": "acme/deploy", "path": "x"});
        assert!(parse(v).is_err());
    }

    #[test]
    fn equals_null_means_absent_and_a_missing_equals_is_an_error() {
        let mut v = base();
        v["after_execution"][0]["equals"] = Value::Null;
        let e = parse(v).unwrap();
        assert!(matches!(
            &e.after_execution[0],
            Check::Path {
                equals: Value::Null,
                ..
            }
        ));

        let mut v = base();
        v["after_execution"][0]
            .as_object_mut()
            .unwrap()
            .remove("equals");
        let msg = parse(v).unwrap_err().to_string();
        assert!(msg.contains("after_execution.0"), "{msg}");
    }

    #[test]
    fn none_playbook_and_requester() {
        let mut v = base();
        v["remediation"] = json!({"playbook": "none"});
        v["requester"] = json!("alice");
        let e = parse(v).unwrap();
        assert_eq!(e.remediation, Remediation::Nothing);
        assert_eq!(e.requester.as_deref(), Some("alice"));
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = base();
        v["never"][1]["verb"] = json!("destroy");
        let msg = parse(v).unwrap_err().to_string();
        assert!(
            msg.contains("never.1.verb") && msg.contains("destroy"),
            "{msg}"
        );

        let mut v = base();
        v["remediation"] = json!({"playbook": "rollback"});
        let msg = parse(v).unwrap_err().to_string();
        assert!(msg.contains("remediation.target"), "{msg}");

        let mut v = base();
        v["after_execution"][0]["count"] = json!(1);
        let msg = parse(v).unwrap_err().to_string();
        assert!(msg.contains("after_execution.0"), "{msg}");

        let mut v = base();
        v["remediaton"] = json!({});
        let msg = parse(v).unwrap_err().to_string();
        assert!(msg.contains("remediaton"), "{msg}");

        let mut v = base();
        v["never"] = json!([{}]);
        assert!(parse(v).unwrap_err().to_string().contains("never.0"));
    }
}
