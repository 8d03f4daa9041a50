//! RBAC evaluated from the live Roles, ClusterRoles, RoleBindings and ClusterRoleBindings of a
//! cluster, with the wording of the real API server's denials.

use serde_json::Value;

use super::state::ClusterState;

/// The user a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// What a request wants to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests (`/version`, discovery).
    pub path: Option<String>,
}

/// The binding that allowed a request, for `SubjectAccessReview.status.reason`.
pub(crate) fn authorize(cluster: &ClusterState, user: &UserInfo, a: &Attributes) -> Option<String> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Some("allowed by group system:masters".into());
    }
    let rbac = "rbac.authorization.k8s.io";
    let subject_desc = |s: &Value| -> String {
        format!(
            "{} {:?}",
            s["kind"].as_str().unwrap_or_default(),
            s["name"].as_str().unwrap_or_default()
        )
    };
    // ClusterRoleBindings apply everywhere.
    for (_, b) in cluster.scan(&format!("{rbac}/clusterrolebindings"), None) {
        let Some(subject) = matching_subject(&b["subjects"], user) else {
            continue;
        };
        if b["roleRef"]["kind"] != "ClusterRole" {
            continue;
        }
        let role = b["roleRef"]["name"].as_str().unwrap_or_default();
        if let Some(r) = cluster.objects.get(&(
            format!("{rbac}/clusterroles"),
            String::new(),
            role.to_string(),
        )) && rules_allow(&r["rules"], a)
        {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                b["metadata"]["name"].as_str().unwrap_or_default(),
                role,
                subject_desc(subject)
            ));
        }
    }
    if a.namespace.is_empty() {
        return None;
    }
    for (_, b) in cluster.scan(&format!("{rbac}/rolebindings"), Some(&a.namespace)) {
        let Some(subject) = matching_subject(&b["subjects"], user) else {
            continue;
        };
        let role = b["roleRef"]["name"].as_str().unwrap_or_default();
        let (key, kind) = match b["roleRef"]["kind"].as_str() {
            Some("ClusterRole") => (
                (
                    format!("{rbac}/clusterroles"),
                    String::new(),
                    role.to_string(),
                ),
                "ClusterRole",
            ),
            _ => (
                (
                    format!("{rbac}/roles"),
                    a.namespace.clone(),
                    role.to_string(),
                ),
                "Role",
            ),
        };
        if let Some(r) = cluster.objects.get(&key)
            && rules_allow(&r["rules"], a)
        {
            return Some(format!(
                "RBAC: allowed by RoleBinding \"{}/{}\" of {kind} {:?} to {}",
                b["metadata"]["name"].as_str().unwrap_or_default(),
                a.namespace,
                role,
                subject_desc(subject)
            ));
        }
    }
    None
}

fn matching_subject<'a>(subjects: &'a Value, user: &UserInfo) -> Option<&'a Value> {
    subjects.as_array()?.iter().find(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => name == user.name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s["namespace"].as_str().unwrap_or_default();
                user.name == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

fn has(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
}

fn rules_allow(rules: &Value, a: &Attributes) -> bool {
    rules
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| rule_allows(r, a)))
}

fn rule_allows(r: &Value, a: &Attributes) -> bool {
    if !has(&r["verbs"], &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return r["nonResourceURLs"].as_array().is_some_and(|urls| {
            urls.iter().filter_map(Value::as_str).any(|u| {
                u == "*"
                    || u == path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
        });
    }
    if !has(&r["apiGroups"], &a.group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = r["resources"].as_array().is_some_and(|l| {
        l.iter().filter_map(Value::as_str).any(|res| {
            res == "*"
                || res == combined
                || (!a.subresource.is_empty() && res == format!("*/{}", a.subresource))
                || (!a.subresource.is_empty() && res == format!("{}/*", a.resource))
        })
    });
    if !resource_ok {
        return false;
    }
    match r["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => {
            !a.name.is_empty() && names.iter().any(|n| n == a.name.as_str())
        }
        _ => true,
    }
}

/// The reason text of a denial, as the real authorizer words it.
pub(crate) fn denial(user: &UserInfo, a: &Attributes) -> String {
    if let Some(path) = &a.path {
        return format!("User {:?} cannot {} path {:?}", user.name, a.verb, path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    format!(
        "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        user.name, a.verb, resource, a.group
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ai".into(),
            name: name.into(),
            path: None,
        }
    }

    #[test]
    fn rules_and_wildcards() {
        let r = json!({"verbs": ["get", "patch"], "apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "resourceNames": ["llama"]});
        assert!(rule_allows(
            &r,
            &attrs("patch", "apps", "deployments", "", "llama")
        ));
        assert!(rule_allows(
            &r,
            &attrs("get", "apps", "deployments", "scale", "llama")
        ));
        assert!(!rule_allows(
            &r,
            &attrs("patch", "apps", "deployments", "", "other")
        ));
        assert!(!rule_allows(
            &r,
            &attrs("delete", "apps", "deployments", "", "llama")
        ));
        let star = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(rule_allows(
            &star,
            &attrs("create", "", "pods", "eviction", "x")
        ));
        let evict = json!({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/eviction"]});
        assert!(rule_allows(
            &evict,
            &attrs("create", "", "pods", "eviction", "x")
        ));
        assert!(!rule_allows(&evict, &attrs("create", "", "pods", "", "")));
    }

    #[test]
    fn denial_wording() {
        let u = UserInfo {
            name: "bob@corp.example".into(),
            groups: vec![],
        };
        assert_eq!(
            denial(&u, &attrs("patch", "", "pods", "", "x")),
            r#"User "bob@corp.example" cannot patch resource "pods" in API group "" in the namespace "ai""#
        );
    }
}
