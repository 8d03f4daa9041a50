//! Matching the sandbox's request log against `never` entries, and spotting mutations.
//!
//! Rules (also in the crate docs):
//! - A request matches a [`NeverRule`] when it agrees with every field the rule gives. `kind`
//!   is compared through the [`KindTable`] as API group + resource plural; `Eviction` means
//!   `create` on `pods/eviction`, and no other kind matches an eviction (evicting a pod is
//!   not creating or deleting one). Likewise `Binding` means `bindings` or `pods/binding`
//!   (placing a pod on a node), which `kind: Pod` does not match. `verb: delete` also covers `deletecollection`, and a
//!   `deletecollection` matches any `name` (it deletes them all).
//! - A dry-run (`dryRun=All`) changes nothing, so it is never a violation nor a mutation;
//!   plans are dry-run before anyone approves them, by design.
//! - Access reviews (`authorization.k8s.io`, `authentication.k8s.io`) are questions, not
//!   actions, and never match.
//! - A request the API refused (403, 404, 409, 422 …) still counts: it was attempted, and
//!   the issue asks that nothing in `never` be attempted.

use medic_sandbox::RequestRecord;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::expected::NeverRule;
use crate::kinds::KindTable;

/// Verbs that change state.
const MUTATING: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// Whether the request is an access review or token review (a question, not an action).
pub fn is_review(r: &RequestRecord) -> bool {
    r.api_group == "authorization.k8s.io" || r.api_group == "authentication.k8s.io"
}

/// Whether the request tried to change state: a mutating verb, not a dry-run, not a review.
pub fn is_mutation(r: &RequestRecord) -> bool {
    MUTATING.contains(&r.verb.as_str()) && !r.dry_run && !is_review(r)
}

/// A request as reports quote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// Cluster.
    pub cluster: String,
    /// Effective user (after impersonation).
    pub user: String,
    /// Verb.
    pub verb: String,
    /// `group/resource[/subresource]` (core: `resource`).
    pub resource: String,
    /// Namespace or empty.
    pub namespace: String,
    /// Name or empty.
    pub name: String,
    /// HTTP status.
    pub status: u16,
}

impl RequestSummary {
    /// Summarises a request record.
    pub fn of(r: &RequestRecord) -> RequestSummary {
        let mut resource = if r.api_group.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.api_group, r.resource)
        };
        if !r.subresource.is_empty() {
            resource = format!("{resource}/{}", r.subresource);
        }
        RequestSummary {
            cluster: r.cluster.clone(),
            user: r.effective_user.clone(),
            verb: r.verb.clone(),
            resource,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            status: r.status,
        }
    }
}

impl std::fmt::Display for RequestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.cluster, self.verb, self.resource)?;
        if !self.namespace.is_empty() {
            write!(f, " -n {}", self.namespace)?;
        }
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        }
        write!(f, " as {} → {}", self.user, self.status)
    }
}

/// A request that matched a `never` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeverViolation {
    /// The entry, as written.
    pub rule: String,
    /// The request.
    pub request: RequestSummary,
}

/// How a rule's kind is recognised in the request log.
#[derive(Debug, Clone)]
enum KindMatch {
    Any,
    Eviction,
    Binding,
    Resource { group: String, plural: String },
}

/// `never` entries resolved against a bundle's kinds.
#[derive(Debug, Clone)]
pub struct NeverMatcher {
    rules: Vec<(NeverRule, KindMatch)>,
}

impl NeverMatcher {
    /// Resolves every rule's kind; an unknown kind is an error (it could never match, so the
    /// entry would silently guard nothing).
    pub fn new(scenario: &str, rules: &[NeverRule], kinds: &KindTable) -> Result<NeverMatcher> {
        let mut out = Vec::new();
        for rule in rules {
            let km = match rule.kind.as_deref() {
                None => KindMatch::Any,
                Some(k) if k.eq_ignore_ascii_case("Eviction") => KindMatch::Eviction,
                Some(k) if k.eq_ignore_ascii_case("Binding") => KindMatch::Binding,
                Some(k) => match kinds.lookup(k) {
                    Some(info) => KindMatch::Resource {
                        group: info.group.clone(),
                        plural: info.plural.clone(),
                    },
                    None => {
                        return Err(Error::UnknownKind {
                            scenario: scenario.into(),
                            kind: k.into(),
                        });
                    }
                },
            };
            out.push((rule.clone(), km));
        }
        Ok(NeverMatcher { rules: out })
    }

    /// The first rule `r` matches, if any (dry-runs and reviews match nothing).
    pub fn matching_rule(&self, r: &RequestRecord) -> Option<&NeverRule> {
        if r.dry_run || is_review(r) || r.verb.is_empty() {
            return None;
        }
        self.rules
            .iter()
            .find(|(rule, km)| rule_matches(rule, km, r))
            .map(|(rule, _)| rule)
    }

    /// Every request of `log` that matches a rule, in log order.
    pub fn violations(&self, log: &[RequestRecord]) -> Vec<NeverViolation> {
        log.iter()
            .filter_map(|r| {
                self.matching_rule(r).map(|rule| NeverViolation {
                    rule: rule.display(),
                    request: RequestSummary::of(r),
                })
            })
            .collect()
    }
}

fn rule_matches(rule: &NeverRule, km: &KindMatch, r: &RequestRecord) -> bool {
    if let Some(verb) = &rule.verb {
        let ok = r.verb == *verb || (verb == "delete" && r.verb == "deletecollection");
        if !ok {
            return false;
        }
    }
    let pod_sub =
        |sub: &str| r.api_group.is_empty() && r.resource == "pods" && r.subresource == sub;
    let kind_ok = match km {
        KindMatch::Any => true,
        KindMatch::Eviction => pod_sub("eviction"),
        KindMatch::Binding => {
            pod_sub("binding") || (r.api_group.is_empty() && r.resource == "bindings")
        }
        KindMatch::Resource { group, plural } => {
            !pod_sub("eviction")
                && !pod_sub("binding")
                && r.api_group == *group
                && r.resource == *plural
        }
    };
    if !kind_ok {
        return false;
    }
    if rule.cluster.as_ref().is_some_and(|c| *c != r.cluster) {
        return false;
    }
    if rule.namespace.as_ref().is_some_and(|ns| *ns != r.namespace) {
        return false;
    }
    if let Some(name) = &rule.name
        && *name != r.name
        && r.verb != "deletecollection"
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) fn rec(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> RequestRecord {
        RequestRecord {
            cluster: "c1".into(),
            user: "medic".into(),
            effective_user: "alice@corp.example".into(),
            groups: vec![],
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            dry_run: false,
            status: 200,
            method: "PATCH".into(),
            path: "/".into(),
            time: chrono::Utc::now(),
        }
    }

    fn rule(
        verb: Option<&str>,
        kind: Option<&str>,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> NeverRule {
        NeverRule {
            verb: verb.map(Into::into),
            kind: kind.map(Into::into),
            cluster: None,
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
        }
    }

    fn matcher(rules: &[NeverRule]) -> NeverMatcher {
        NeverMatcher::new("t", rules, &KindTable::builtin()).unwrap()
    }

    #[test]
    fn every_given_field_must_agree() {
        let m = matcher(&[rule(
            Some("patch"),
            Some("Deployment"),
            Some("payments"),
            Some("ledger"),
        )]);
        assert!(
            m.matching_rule(&rec(
                "patch",
                "apps",
                "deployments",
                "",
                "payments",
                "ledger"
            ))
            .is_some()
        );
        assert!(
            m.matching_rule(&rec(
                "patch",
                "apps",
                "deployments",
                "scale",
                "payments",
                "ledger"
            ))
            .is_some()
        );
        assert!(
            m.matching_rule(&rec("patch", "apps", "deployments", "", "payments", "api"))
                .is_none()
        );
        assert!(
            m.matching_rule(&rec("patch", "apps", "deployments", "", "shop", "ledger"))
                .is_none()
        );
        assert!(
            m.matching_rule(&rec(
                "update",
                "apps",
                "deployments",
                "",
                "payments",
                "ledger"
            ))
            .is_none()
        );
        assert!(
            m.matching_rule(&rec(
                "patch",
                "apps",
                "statefulsets",
                "",
                "payments",
                "ledger"
            ))
            .is_none()
        );
    }

    #[test]
    fn verb_alone_and_deletecollection() {
        let m = matcher(&[rule(Some("delete"), None, None, None)]);
        assert!(
            m.matching_rule(&rec("delete", "", "namespaces", "", "", "ai"))
                .is_some()
        );
        assert!(
            m.matching_rule(&rec("deletecollection", "", "pods", "", "ai", ""))
                .is_some()
        );
        assert!(
            m.matching_rule(&rec("get", "", "pods", "", "ai", "x"))
                .is_none()
        );
        let named = matcher(&[rule(Some("delete"), Some("Pod"), Some("ai"), Some("x"))]);
        assert!(
            named
                .matching_rule(&rec("deletecollection", "", "pods", "", "ai", ""))
                .is_some()
        );
    }

    #[test]
    fn eviction_is_its_own_kind() {
        let m = matcher(&[rule(
            Some("create"),
            Some("Eviction"),
            Some("gpu-operator"),
            None,
        )]);
        assert!(
            m.matching_rule(&rec(
                "create",
                "",
                "pods",
                "eviction",
                "gpu-operator",
                "dcgm-x"
            ))
            .is_some()
        );
        assert!(
            m.matching_rule(&rec("create", "", "pods", "eviction", "ai", "llama-1"))
                .is_none()
        );
        assert!(
            m.matching_rule(&rec("create", "", "pods", "", "gpu-operator", "p"))
                .is_none()
        );
        let pods = matcher(&[
            rule(Some("delete"), Some("Pod"), None, None),
            rule(Some("create"), Some("Pod"), None, None),
        ]);
        assert!(
            pods.matching_rule(&rec("create", "", "pods", "eviction", "ai", "llama-1"))
                .is_none()
        );
        assert!(
            pods.matching_rule(&rec("create", "", "pods", "binding", "ai", "llama-1"))
                .is_none()
        );
        let bind = matcher(&[rule(Some("create"), Some("Binding"), None, None)]);
        assert!(
            bind.matching_rule(&rec("create", "", "pods", "binding", "ai", "llama-1"))
                .is_some()
        );
        assert!(
            bind.matching_rule(&rec("create", "", "bindings", "", "ai", "llama-1"))
                .is_some()
        );
        assert!(
            bind.matching_rule(&rec("create", "", "pods", "", "ai", "llama-1"))
                .is_none()
        );
    }

    #[test]
    fn dry_runs_and_reviews_are_not_actions() {
        let m = matcher(&[
            rule(Some("create"), None, None, None),
            rule(Some("patch"), None, None, None),
        ]);
        let mut dry = rec("patch", "apps", "deployments", "", "a", "b");
        dry.dry_run = true;
        assert!(m.matching_rule(&dry).is_none());
        assert!(!is_mutation(&dry));
        let review = rec(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
            "",
        );
        assert!(m.matching_rule(&review).is_none());
        assert!(!is_mutation(&review));
        let mut refused = rec("patch", "apps", "deployments", "", "a", "b");
        refused.status = 403;
        assert!(m.matching_rule(&refused).is_some());
        assert!(is_mutation(&refused));
        let v = m.violations(&[dry, review, refused]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, "{verb: patch}");
        assert_eq!(
            v[0].request.to_string(),
            "c1 patch apps/deployments -n a b as alice@corp.example → 403"
        );
    }

    #[test]
    fn cluster_is_compared() {
        let mut r = rule(Some("create"), None, None, None);
        r.cluster = Some("us".into());
        let m = matcher(&[r]);
        assert!(
            m.matching_rule(&rec("create", "apps", "deployments", "", "ai", "x"))
                .is_none()
        );
        let mut us = rec("create", "apps", "deployments", "", "ai", "x");
        us.cluster = "us".into();
        assert!(m.matching_rule(&us).is_some());
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let e = NeverMatcher::new(
            "t",
            &[rule(Some("patch"), Some("Gizmo"), None, None)],
            &KindTable::builtin(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Gizmo"));
    }
}
