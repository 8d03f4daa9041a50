//! The validation a real API server would apply to writes, trimmed to what scenarios and
//! playbooks meet: names, pod specs and templates, selectors, replicas, PDB fields, and the
//! pod-spec immutability rule.

use serde_json::Value;

use crate::catalog::ResourceType;
use crate::selector::LabelSelector;

pub(crate) type Causes = Vec<(String, String)>;

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn pod_spec(spec: &Value, at: &str, causes: &mut Causes) {
    match spec["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                if c["name"].as_str().is_none_or(str::is_empty) {
                    causes.push((
                        format!("{at}.containers[{i}].name"),
                        "Required value".into(),
                    ));
                }
                if c["image"].as_str().is_none_or(str::is_empty) {
                    causes.push((
                        format!("{at}.containers[{i}].image"),
                        "Required value".into(),
                    ));
                }
            }
        }
        _ => causes.push((format!("{at}.containers"), "Required value".into())),
    }
}

pub(crate) fn validate(rt: &ResourceType, obj: &Value) -> Causes {
    let mut causes = Causes::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let strict_name = rt.group != "rbac.authorization.k8s.io" && rt.kind != "Event";
    if strict_name && !is_subdomain(name) {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: {SUBDOMAIN}"),
        ));
    }
    let spec = &obj["spec"];
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => pod_spec(spec, "spec", &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
            pod_spec(&spec["template"]["spec"], "spec.template.spec", &mut causes);
            if let Some(r) = spec["replicas"].as_i64()
                && r < 0
            {
                causes.push((
                    "spec.replicas".into(),
                    format!("Invalid value: {r}: must be greater than or equal to 0"),
                ));
            }
            if rt.group == "apps" {
                let sel = LabelSelector::from_object(&spec["selector"]);
                if sel.is_empty() {
                    causes.push(("spec.selector".into(), "Required value".into()));
                } else if !sel.matches(&spec["template"]) {
                    causes.push((
                        "spec.template.metadata.labels".into(),
                        format!(
                            "Invalid value: {}: `selector` does not match template `labels`",
                            spec["template"]["metadata"]["labels"]
                        ),
                    ));
                }
            }
        }
        ("policy", "PodDisruptionBudget")
            if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() =>
        {
            causes.push((
                "spec".into(),
                "Invalid value: minAvailable and maxUnavailable cannot be both set".into(),
            ));
        }
        _ => {}
    }
    causes
}

/// Pods accept only a few spec changes after creation.
pub(crate) fn pod_update(old: &Value, new: &Value) -> Causes {
    let strip = |spec: &Value| {
        let mut s = spec.clone();
        for key in ["containers", "initContainers"] {
            if let Some(cs) = s[key].as_array_mut() {
                for c in cs {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("image");
                    }
                }
            }
        }
        if let Some(m) = s.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("tolerations");
            m.remove("terminationGracePeriodSeconds");
        }
        s
    };
    if strip(&old["spec"]) != strip(&new["spec"]) {
        return vec![(
            "spec".into(),
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
        )];
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        assert!(is_subdomain("llama-7b.ai"));
        assert!(!is_subdomain("Llama"));
        assert!(!is_subdomain("-x"));
        assert!(!is_subdomain(""));
    }
}
