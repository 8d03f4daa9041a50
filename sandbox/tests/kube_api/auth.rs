//! Who may do what: access reviews, impersonation and unknown tokens.

use crate::common::{TestBundle, client, raw, start, status};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn access_reviews() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let medic = client(&h, "medic").await;
    let sar: Api<SubjectAccessReview> = Api::all(medic.clone());
    let review = |user: &str, verb: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                namespace: Some("ai".into()),
                name: Some("llama".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let got = sar
        .create(
            &PostParams::default(),
            &review("alice@corp.example", "patch"),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(got.allowed);
    assert_eq!(
        got.reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"alice-operator/ai\" of ClusterRole \"sre-operator\" to User \"alice@corp.example\""
        )
    );
    assert!(
        !sar.create(&PostParams::default(), &review("bob@corp.example", "patch"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    assert!(
        !sar.create(
            &PostParams::default(),
            &review("alice@corp.example", "delete")
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
    );
    // Bob may not create SubjectAccessReviews, but anyone may ask about themselves.
    let bob = client(&h, "bob").await;
    let err = status(
        Api::<SubjectAccessReview>::all(bob.clone())
            .create(&PostParams::default(), &review("bob@corp.example", "get"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    let ssar: Api<SelfSubjectAccessReview> = Api::all(bob.clone());
    let ask = |verb: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some("pods".into()),
                namespace: Some("ai".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(
        ssar.create(&PostParams::default(), &ask("list"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    assert!(
        !ssar
            .create(&PostParams::default(), &ask("delete"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    h.shutdown().await;
}

#[tokio::test]
async fn impersonation_allowed_and_denied_and_403_bodies() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let medic = client(&h, "medic").await;
    let patch = Some(json!({"spec": {"replicas": 4}}));
    let path = "/apis/apps/v1/namespaces/ai/deployments/llama";
    // medic alone cannot patch.
    let (code, body) = raw(
        &medic,
        "PATCH",
        path,
        &[],
        patch.clone(),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "deployments.apps \"llama\" is forbidden: User \"system:serviceaccount:medic:medic\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"ai\"",
            "reason": "Forbidden", "details": {"name": "llama", "group": "apps", "kind": "deployments"}, "code": 403})
    );
    // medic impersonating alice may.
    let (code, body) = raw(
        &medic,
        "PATCH",
        path,
        &[
            ("Impersonate-User", "alice@corp.example"),
            ("Impersonate-Group", "sre"),
        ],
        patch.clone(),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["replicas"], 4);
    let rec = h
        .request_log()
        .into_iter()
        .rev()
        .find(|r| r.verb == "patch")
        .unwrap();
    assert_eq!(
        (
            rec.user.as_str(),
            rec.effective_user.as_str(),
            rec.groups.clone()
        ),
        (
            "system:serviceaccount:medic:medic",
            "alice@corp.example",
            vec!["sre".to_string(), "system:authenticated".to_string()]
        )
    );
    assert_eq!(
        (
            rec.api_group.as_str(),
            rec.resource.as_str(),
            rec.namespace.as_str(),
            rec.name.as_str(),
            rec.status
        ),
        ("apps", "deployments", "ai", "llama", 200)
    );
    // Impersonating bob is allowed, but bob cannot patch.
    let (code, body) = raw(
        &medic,
        "PATCH",
        path,
        &[("Impersonate-User", "bob@corp.example")],
        patch.clone(),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "deployments.apps \"llama\" is forbidden: User \"bob@corp.example\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"ai\""
    );
    // Impersonating someone not granted is refused.
    let (code, body) = raw(
        &medic,
        "GET",
        path,
        &[("Impersonate-User", "mallory@corp.example")],
        None,
        "",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "users \"mallory@corp.example\" is forbidden: User \"system:serviceaccount:medic:medic\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            "reason": "Forbidden", "details": {"name": "mallory@corp.example", "kind": "users"}, "code": 403})
    );
    let (code, body) = raw(
        &medic,
        "GET",
        path,
        &[
            ("Impersonate-User", "alice@corp.example"),
            ("Impersonate-Group", "system:masters"),
        ],
        None,
        "",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "groups \"system:masters\" is forbidden: User \"system:serviceaccount:medic:medic\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
    // Alice cannot impersonate anyone.
    let alice = client(&h, "alice").await;
    let (code, _) = raw(
        &alice,
        "GET",
        path,
        &[("Impersonate-User", "bob@corp.example")],
        None,
        "",
    )
    .await;
    assert_eq!(code, 403);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let kc = kube::config::Kubeconfig::from_yaml(h.kubeconfig_yaml()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    assert!(
        h.cluster_url("c1")
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    config.auth_info.token = Some("not-a-token".to_string().into());
    let c = kube::Client::try_from(config).unwrap();
    let err = status(
        Api::<Pod>::namespaced(c, "ai")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    h.shutdown().await;
}
