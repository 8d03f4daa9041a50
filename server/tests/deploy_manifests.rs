//! The Kubernetes manifests in `deploy/` parse as the API types they claim to be, the
//! ConfigMap's `server` section is a valid [`medic_server::ServerConfig`], and medic may
//! impersonate exactly the approvers it knows — nobody else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

fn documents() -> Vec<serde_yaml::Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

#[test]
fn manifests_are_valid_and_impersonation_is_scoped_to_approvers() {
    let docs = documents();
    let mut kinds = BTreeSet::new();
    let mut impersonate_users = BTreeSet::new();
    let mut impersonate_groups = BTreeSet::new();
    let mut config: Option<ConfigMap> = None;
    for d in docs {
        let kind = d["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Namespace" => drop(serde_yaml::from_value::<Namespace>(d).unwrap()),
            "ServiceAccount" => drop(serde_yaml::from_value::<ServiceAccount>(d).unwrap()),
            "ClusterRoleBinding" => drop(serde_yaml::from_value::<ClusterRoleBinding>(d).unwrap()),
            "PersistentVolumeClaim" => {
                drop(serde_yaml::from_value::<PersistentVolumeClaim>(d).unwrap())
            }
            "Service" => drop(serde_yaml::from_value::<Service>(d).unwrap()),
            "Deployment" => {
                let dep: Deployment = serde_yaml::from_value(d).unwrap();
                let spec = dep.spec.template.spec.unwrap();
                assert_eq!(spec.service_account_name.as_deref(), Some("medic"));
                let c = &spec.containers[0];
                assert_eq!(
                    c.readiness_probe
                        .as_ref()
                        .unwrap()
                        .http_get
                        .as_ref()
                        .unwrap()
                        .path
                        .as_deref(),
                    Some("/readyz")
                );
                assert_eq!(
                    c.liveness_probe
                        .as_ref()
                        .unwrap()
                        .http_get
                        .as_ref()
                        .unwrap()
                        .path
                        .as_deref(),
                    Some("/healthz")
                );
            }
            "ClusterRole" => {
                let role: ClusterRole = serde_yaml::from_value(d).unwrap();
                for rule in role.rules.unwrap_or_default() {
                    assert!(
                        !rule
                            .resources
                            .clone()
                            .unwrap_or_default()
                            .contains(&"secrets".to_owned()),
                        "medic must not read secrets"
                    );
                    let writes = rule
                        .verbs
                        .iter()
                        .any(|v| ["create", "update", "patch", "delete"].contains(&v.as_str()));
                    if writes {
                        assert_eq!(
                            rule.resources.as_deref(),
                            Some(&["subjectaccessreviews".to_owned()][..]),
                            "medic writes nothing itself: {rule:?}"
                        );
                    }
                    if rule.verbs.contains(&"impersonate".to_owned()) {
                        let names = rule
                            .resource_names
                            .clone()
                            .expect("impersonation must name its resourceNames");
                        assert!(!names.is_empty() && !names.contains(&"*".to_owned()));
                        for r in rule.resources.unwrap_or_default() {
                            match r.as_str() {
                                "users" => impersonate_users.extend(names.clone()),
                                "groups" => impersonate_groups.extend(names.clone()),
                                other => panic!("unexpected impersonation of {other}"),
                            }
                        }
                    }
                }
            }
            "ConfigMap" => config = Some(serde_yaml::from_value(d).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
        kinds.insert(kind);
    }
    for k in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(k), "missing {k}");
    }
    let medic_yaml = config.unwrap().data.unwrap()["medic.yaml"].clone();
    let whole: serde_yaml::Value = serde_yaml::from_str(&medic_yaml).unwrap();
    let server: medic_server::ServerConfig =
        serde_yaml::from_value(whole["server"].clone()).unwrap();
    assert!(server.slack.is_some() && server.teams.is_some());
    assert_eq!(
        server.alerts.runbooks_dir.as_deref(),
        Some(std::path::Path::new("/etc/medic/runbooks"))
    );
    // Every human identity is impersonable, medic's own is not.
    let ids: Vec<medic_approvals::IdentityEntry> =
        serde_yaml::from_value(whole["approvals"]["identities"].clone()).unwrap();
    for id in ids {
        if id.agent {
            assert!(!impersonate_users.contains(&id.kube_user));
        } else {
            assert!(
                impersonate_users.contains(&id.kube_user),
                "{} cannot be impersonated",
                id.kube_user
            );
            for g in id.groups {
                assert!(
                    impersonate_groups.contains(&g),
                    "group {g} cannot be impersonated"
                );
            }
        }
    }
}
