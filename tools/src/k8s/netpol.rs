//! Network policies: Kubernetes `NetworkPolicy` and Cilium `CiliumNetworkPolicy` /
//! `CiliumClusterwideNetworkPolicy`, summarised the same way — which pods a policy selects,
//! which peers its rules allow, when its spec was last written and by whom, and what its
//! previous spec (the `last-applied-configuration` annotation) allowed that it no longer does.
//!
//! Peers are label maps as written in the policy. Cilium's source prefixes (`k8s:`, `any:`)
//! are kept in the text and ignored when matching; `io.kubernetes.pod.namespace` matches the
//! pod's namespace.

use super::types::*;
use crate::redact::clean;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Cilium's label key for a pod's namespace.
const NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";

/// A network policy, as an analyzer or a model needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPolicySummary {
    /// `NetworkPolicy`, `CiliumNetworkPolicy` or `CiliumClusterwideNetworkPolicy`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace (empty for cluster-wide policies).
    pub namespace: String,
    /// Uid.
    pub uid: Option<String>,
    /// `metadata.generation`: how many spec changes it has seen.
    pub generation: Option<i64>,
    /// Creation time.
    pub created: Option<String>,
    /// When its spec was last written (from managed fields; creation when none).
    pub spec_changed: Option<String>,
    /// The field manager of that write (`helm`, `kubectl-client-side-apply`, …).
    pub spec_changed_by: Option<String>,
    /// Annotations that describe who changed it and why (Helm release, change cause, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub change_notes: BTreeMap<String, String>,
    /// Labels of the pods it applies to (`{}`: every pod of its namespace).
    pub selects: BTreeMap<String, String>,
    /// The pod selector also has `matchExpressions` (not evaluated here).
    pub selects_by_expression: bool,
    /// Number of ingress rules (allow and deny); 0 with `ingress_isolated` means deny all.
    pub ingress_rules: usize,
    /// Peers its ingress allow rules admit, by labels.
    pub ingress_from: Vec<BTreeMap<String, String>>,
    /// Peers its egress allow rules reach, by labels.
    pub egress_to: Vec<BTreeMap<String, String>>,
    /// Peers the previous spec admitted (from `last-applied-configuration`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ingress_from: Option<Vec<BTreeMap<String, String>>>,
    /// Cilium's `Valid` condition, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
}

fn peer_text(p: &BTreeMap<String, String>) -> String {
    if p.is_empty() {
        "any pod".to_string()
    } else {
        kv(p)
    }
}

impl NetworkPolicySummary {
    /// Problems first: an invalid Cilium policy is broken.
    pub fn health(&self) -> Health {
        if self.valid == Some(false) {
            Health::Broken
        } else {
            Health::Healthy
        }
    }

    /// Peers the previous spec admitted that the current one no longer does.
    pub fn removed_peers(&self) -> Vec<&BTreeMap<String, String>> {
        self.previous_ingress_from
            .iter()
            .flatten()
            .filter(|p| !self.ingress_from.contains(p))
            .collect()
    }

    /// Peers the current spec admits that the previous one did not.
    pub fn added_peers(&self) -> Vec<&BTreeMap<String, String>> {
        match &self.previous_ingress_from {
            None => Vec::new(),
            Some(prev) => self
                .ingress_from
                .iter()
                .filter(|p| !prev.contains(p))
                .collect(),
        }
    }

    /// Whether it applies to a pod with `labels` in `namespace`.
    pub fn selects_pod(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.namespace.is_empty() || self.namespace == namespace)
            && labels_match(&self.selects, namespace, labels)
    }

    /// Whether one of its ingress allow rules admits a pod with `labels` in `namespace`.
    pub fn admits(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.ingress_from.iter().any(|peer| {
            let ns_given = peer.keys().any(|k| strip(k) == NAMESPACE_KEY);
            (ns_given || self.namespace.is_empty() || self.namespace == namespace)
                && labels_match(peer, namespace, labels)
        })
    }

    /// One line.
    pub fn line(&self) -> String {
        let ns = if self.namespace.is_empty() {
            String::new()
        } else {
            format!("{}/", self.namespace)
        };
        let mut s = format!(
            "{} {ns}{} gen {} selects {{{}}}{} ingress rules {} from [{}]",
            self.kind,
            self.name,
            self.generation
                .map_or_else(|| "-".to_string(), |g| g.to_string()),
            kv(&self.selects),
            if self.selects_by_expression {
                " (+expressions)"
            } else {
                ""
            },
            self.ingress_rules,
            self.ingress_from
                .iter()
                .map(peer_text)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        if !self.egress_to.is_empty() {
            s.push_str(&format!(
                " egress to [{}]",
                self.egress_to
                    .iter()
                    .map(peer_text)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        if let Some(t) = &self.spec_changed {
            s.push_str(&format!(" spec changed {t}"));
            if let Some(m) = self.spec_changed_by.as_deref().filter(|m| !m.is_empty()) {
                s.push_str(&format!(" by {m}"));
            }
        }
        let removed = self.removed_peers();
        if !removed.is_empty() {
            s.push_str(&format!(
                " (no longer admits {})",
                removed
                    .iter()
                    .map(|p| peer_text(p))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        if self.valid == Some(false) {
            s.push_str(" INVALID");
        }
        s
    }
}

/// A label key without Cilium's source prefix.
fn strip(k: &str) -> &str {
    k.strip_prefix("k8s:")
        .or_else(|| k.strip_prefix("any:"))
        .unwrap_or(k)
}

fn labels_match(
    want: &BTreeMap<String, String>,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    want.iter().all(|(k, v)| {
        let k = strip(k);
        if k == NAMESPACE_KEY {
            v == namespace
        } else {
            labels.get(k) == Some(v)
        }
    })
}

fn match_labels(sel: Option<&Value>) -> BTreeMap<String, String> {
    sel.and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (clean(k), clean(v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default()
}

fn has_expressions(sel: Option<&Value>) -> bool {
    sel.and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// The policy's rules: Cilium's `spec` and/or `specs`, or a NetworkPolicy's `spec`.
fn rules(spec_root: &Value) -> Vec<&Value> {
    let mut out: Vec<&Value> = spec_root.get("spec").into_iter().collect();
    out.extend(list(spec_root, "specs"));
    out
}

/// (selects, by expression, ingress rule count, ingress peers, egress peers) of Cilium rules.
type Parsed = (
    BTreeMap<String, String>,
    bool,
    usize,
    Vec<BTreeMap<String, String>>,
    Vec<BTreeMap<String, String>>,
);

fn parse_cilium(root: &Value) -> Parsed {
    let mut selects = BTreeMap::new();
    let mut expr = false;
    let mut n_ingress = 0;
    let mut from = Vec::new();
    let mut to = Vec::new();
    for r in rules(root) {
        let sel = r.get("endpointSelector").or_else(|| r.get("nodeSelector"));
        if selects.is_empty() {
            selects = match_labels(sel);
        }
        expr |= has_expressions(sel);
        n_ingress += list(r, "ingress").count() + list(r, "ingressDeny").count();
        for rule in list(r, "ingress") {
            for peer in list(rule, "fromEndpoints") {
                from.push(match_labels(Some(peer)));
            }
        }
        for rule in list(r, "egress") {
            for peer in list(rule, "toEndpoints") {
                to.push(match_labels(Some(peer)));
            }
        }
    }
    (selects, expr, n_ingress, from, to)
}

/// A NetworkPolicy peer: its pod selector, plus the namespace when the namespace selector
/// names one by `kubernetes.io/metadata.name`.
fn np_peer(peer: &Value) -> Option<BTreeMap<String, String>> {
    let pod = peer.get("podSelector");
    let nss = peer.get("namespaceSelector");
    if pod.is_none() && nss.is_none() {
        return None; // an ipBlock
    }
    let mut labels = match_labels(pod);
    if let Some(n) = match_labels(nss).get("kubernetes.io/metadata.name") {
        labels.insert(format!("k8s:{NAMESPACE_KEY}"), n.clone());
    }
    Some(labels)
}

fn parse_np(root: &Value) -> Parsed {
    let spec = root.get("spec").unwrap_or(&Value::Null);
    let sel = spec.get("podSelector");
    let mut from = Vec::new();
    let mut to = Vec::new();
    for rule in list(spec, "ingress") {
        let peers: Vec<&Value> = list(rule, "from").collect();
        if peers.is_empty() {
            from.push(BTreeMap::new()); // no `from`: every source
        }
        from.extend(peers.into_iter().filter_map(np_peer));
    }
    for rule in list(spec, "egress") {
        to.extend(list(rule, "to").filter_map(np_peer));
    }
    (
        match_labels(sel),
        has_expressions(sel),
        list(spec, "ingress").count(),
        from,
        to,
    )
}

/// Annotations that say who changed a policy and why.
fn change_notes(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            let name = k.rsplit('/').next().unwrap_or(k);
            k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
                && (k.as_str() == "meta.helm.sh/release-name"
                    || name.contains("change")
                    || name.contains("commit")
                    || name.contains("revision"))
        })
        .map(|(k, v)| (clean(k), short(&clean(v.as_str().unwrap_or_default()), 200)))
        .collect()
}

/// Summarise a `NetworkPolicy` or a Cilium policy given as JSON (the kind is read from it).
pub fn network_policy_summary(v: &Value) -> NetworkPolicySummary {
    let kind = str_at(v, &["kind"]).unwrap_or_else(|| "NetworkPolicy".into());
    let cilium = kind.starts_with("Cilium");
    let parse = |root: &Value| {
        if cilium {
            parse_cilium(root)
        } else {
            parse_np(root)
        }
    };
    let (selects, selects_by_expression, ingress_rules, ingress_from, egress_to) = parse(v);
    let previous_ingress_from = v
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .map(|prev| parse(&prev).3);
    let created = str_at(v, &["metadata", "creationTimestamp"]);
    let (spec_changed, spec_changed_by) =
        match last_write(v.pointer("/metadata/managedFields"), &["spec", "specs"]) {
            Some((t, m)) => (Some(t), Some(m)),
            None => (created.clone(), None),
        };
    let valid = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Valid"))
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .map(|s| s == "True");
    NetworkPolicySummary {
        name: str_at(v, &["metadata", "name"]).unwrap_or_default(),
        namespace: str_at(v, &["metadata", "namespace"]).unwrap_or_default(),
        uid: str_at(v, &["metadata", "uid"]),
        generation: int_at(v, &["metadata", "generation"]),
        created,
        spec_changed,
        spec_changed_by,
        change_notes: change_notes(v),
        selects,
        selects_by_expression,
        ingress_rules,
        ingress_from,
        egress_to,
        previous_ingress_from,
        valid,
        kind,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cilium_policy_change_and_removed_peer() {
        let prev = json!({"spec": {"endpointSelector": {"matchLabels": {"app": "api"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "frontend"}},
                                           {"matchLabels": {"app": "checkout"}}]}]}});
        let v = json!({
            "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "api-ingress", "namespace": "shop", "generation": 5,
                "creationTimestamp": "2026-03-04T10:00:00Z",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": prev.to_string(),
                    "meta.helm.sh/release-name": "shop-policies",
                    "example.com/changed-by": "pipeline #612"},
                "managedFields": [
                    {"manager": "helm", "time": "2026-10-28T13:15:24Z", "fieldsV1": {"f:spec": {}}},
                    {"manager": "cilium-agent", "time": "2026-10-28T13:20:00Z", "fieldsV1": {"f:status": {}}}
                ]},
            "spec": {"endpointSelector": {"matchLabels": {"app": "api"}},
                "ingress": [{"fromEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "storefront"}},
                                               {"matchLabels": {"app": "checkout"}}]}]},
            "status": {"conditions": [{"type": "Valid", "status": "True"}]}
        });
        let p = network_policy_summary(&v);
        assert_eq!(p.kind, "CiliumNetworkPolicy");
        assert_eq!(p.generation, Some(5));
        // The status write by cilium-agent is not a spec change.
        assert_eq!(p.spec_changed.as_deref(), Some("2026-10-28T13:15:24Z"));
        assert_eq!(p.spec_changed_by.as_deref(), Some("helm"));
        assert_eq!(p.removed_peers(), vec![&labels(&[("app", "frontend")])]);
        assert_eq!(p.added_peers().len(), 1);
        assert_eq!(p.change_notes.len(), 2);
        let frontend = labels(&[("app", "frontend")]);
        let api = labels(&[("app", "api")]);
        assert!(p.selects_pod("shop", &api));
        assert!(!p.selects_pod("other", &api));
        assert!(!p.admits("shop", &frontend));
        assert!(p.admits("shop", &labels(&[("app", "checkout")])));
        // Peers without a namespace label stay in the policy's namespace.
        assert!(!p.admits("other", &labels(&[("app", "checkout")])));
        assert!(
            p.line().contains("no longer admits app=frontend"),
            "{}",
            p.line()
        );
        assert_eq!(p.valid, Some(true));
    }

    #[test]
    fn kubernetes_network_policy_peers() {
        let v = json!({
            "kind": "NetworkPolicy",
            "metadata": {"name": "db", "namespace": "data", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [
                    {"podSelector": {"matchLabels": {"app": "api"}},
                     "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}},
                    {"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}
        });
        let p = network_policy_summary(&v);
        assert_eq!(p.ingress_rules, 1);
        assert_eq!(p.ingress_from.len(), 1);
        assert!(p.admits("shop", &labels(&[("app", "api")])));
        assert!(!p.admits("data", &labels(&[("app", "api")])));
        // No managed fields: the creation time stands in for the last spec change.
        assert_eq!(p.spec_changed.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(p.previous_ingress_from.is_none());
    }
}
