//! The sandbox through the kube crate: list/watch/patch/evict/SAR/impersonation/409/403.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestBundle, client, raw, start, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, DeleteParams, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use pretty_assertions::assert_eq;
use serde_json::json;

fn names(list: &[Pod]) -> Vec<String> {
    list.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn list_with_label_and_field_selectors_and_pages() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let c = client(&h, "medic").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "ai");
    let cases = [
        ("app=llama", "", vec!["llama-a", "llama-b", "llama-c"]),
        ("app==llama,tier", "", vec!["llama-a", "llama-b"]),
        ("app!=llama", "", vec!["web-1"]),
        ("app in (web, nothing)", "", vec!["web-1"]),
        ("app notin (llama)", "", vec!["web-1"]),
        ("app=llama,!tier", "", vec!["llama-c"]),
        ("", "spec.nodeName=n1", vec!["llama-a", "llama-b"]),
        (
            "app=llama",
            "spec.nodeName!=n1,status.phase=Running",
            vec!["llama-c"],
        ),
        ("", "metadata.name=web-1", vec!["web-1"]),
    ];
    for (labels, fields, want) in cases {
        let got = pods
            .list(&ListParams::default().labels(labels).fields(fields))
            .await
            .unwrap();
        assert_eq!(names(&got.items), want, "labels={labels} fields={fields}");
    }
    // All namespaces.
    let all: Api<Pod> = Api::all(c.clone());
    let got = all
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), vec!["llama-a", "llama-b", "dcgm-n1"]);
    // Pages.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = all.list(&params).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(names(&page.items));
        match page.metadata.continue_ {
            Some(tok) if !tok.is_empty() => {
                params = ListParams::default().limit(2).continue_token(&tok)
            }
            _ => break,
        }
    }
    assert_eq!(
        seen,
        vec!["llama-a", "llama-b", "llama-c", "web-1", "dcgm-n1"]
    );
    // Events by involved object.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.clone(), "ai");
    let ev = events
        .list(&ListParams::default().fields("involvedObject.name=llama-a,involvedObject.kind=Pod"))
        .await
        .unwrap();
    assert_eq!(ev.items.len(), 1);
    // Not found is a real Status.
    let err = status(pods.get("nope").await.unwrap_err());
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "pods \"nope\" not found")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let medic = client(&h, "medic").await;
    let alice = client(&h, "alice").await;
    let pods: Api<Pod> = Api::namespaced(medic.clone(), "ai");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=llama").timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    let writer: Api<Pod> = Api::namespaced(alice.clone(), "ai");
    writer
        .patch(
            "llama-c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"x": "1"}}})),
        )
        .await
        .unwrap();
    writer
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"x": "1"}}})),
        )
        .await
        .unwrap();
    writer
        .delete("llama-b", &DeleteParams::default())
        .await
        .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    let WatchEvent::Modified(p) = first else {
        panic!("expected MODIFIED, got {first:?}")
    };
    assert_eq!(p.metadata.name.as_deref(), Some("llama-c"));
    let new_rv: u64 = p
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(new_rv > rv.parse::<u64>().unwrap());
    let second = stream.try_next().await.unwrap().unwrap();
    let WatchEvent::Deleted(p) = second else {
        panic!("expected DELETED, got {second:?}")
    };
    assert_eq!(p.metadata.name.as_deref(), Some("llama-b"));
    // A watch from the old version replays what happened since.
    let mut replay = pods
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(match replay.try_next().await.unwrap().unwrap() {
            WatchEvent::Modified(p) => format!("MODIFIED {}", p.metadata.name.unwrap()),
            WatchEvent::Deleted(p) => format!("DELETED {}", p.metadata.name.unwrap()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        kinds,
        vec!["MODIFIED llama-c", "MODIFIED web-1", "DELETED llama-b"]
    );
    drop(stream);
    drop(replay);
    h.shutdown().await;
}

#[tokio::test]
async fn patches_of_every_type_status_scale_and_revisions() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let alice = client(&h, "alice").await;
    let deploys: Api<Deployment> = Api::namespaced(alice.clone(), "ai");
    let pp = PatchParams::default();
    // Strategic: containers and env merge by name.
    let d = deploys
        .patch("llama", &pp, &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.6.1", "env": [{"name": "TP", "value": "2"}]}]}}}})))
        .await
        .unwrap();
    let cs = d.spec.template.spec.as_ref().unwrap().containers.clone();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("vllm/vllm-openai:v0.6.1"));
    let env: Vec<(String, String)> = cs[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("MODEL".into(), "llama-3-8b".into()),
            ("TP".into(), "2".into())
        ]
    );
    assert_eq!(d.metadata.generation, Some(2));
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    // Merge replaces lists.
    let d = deploys.patch("llama", &pp, &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}))).await.unwrap();
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    // JSON patch with a failing test op is rejected, a good one applies.
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 7}]))
            .unwrap();
    let err = status(
        deploys
            .patch("llama", &pp, &Patch::<()>::Json(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let good: json_patch::Patch = serde_json::from_value(json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "vllm/vllm-openai:v0.6.0"}])).unwrap();
    let d = deploys
        .patch("llama", &pp, &Patch::<()>::Json(good))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "4"
    );
    // Server-side apply records the field manager.
    let apply = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llama", "namespace": "ai", "labels": {"owner": "medic"}}});
    let d = deploys
        .patch(
            "llama",
            &PatchParams::apply("medic").force(),
            &Patch::Apply(&apply),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.labels.as_ref().unwrap()["owner"], "medic");
    assert!(
        d.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("medic")
                && m.operation.as_deref() == Some("Apply"))
    );
    // ReplicaSets: one per template, the newest active.
    let rss: Api<ReplicaSet> = Api::namespaced(client(&h, "medic").await, "ai");
    let mut revs: Vec<(String, i32)> = rss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| {
            (
                r.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"]
                    .clone(),
                r.spec.replicas.unwrap(),
            )
        })
        .collect();
    revs.sort();
    // The bundle's ReplicaSet is revision 1; each new template made the next one.
    assert_eq!(
        revs,
        vec![
            ("1".to_string(), 0),
            ("2".to_string(), 0),
            ("3".to_string(), 0),
            ("4".to_string(), 3)
        ]
    );
    // Rolling back to the bundle's template reuses its ReplicaSet with the next revision.
    let d = deploys
        .patch("llama", &pp, &Patch::Strategic(json!({"spec": {"template": {"metadata": {"annotations": null}, "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.6.0", "env": [{"name": "TP", "value": "1"}]}]}}}})))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "5"
    );
    let rs = rss.get("llama-5d8f7c9b4").await.unwrap();
    assert_eq!(
        (
            rs.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"].as_str(),
            rs.spec.replicas
        ),
        ("5", Some(3))
    );
    // Status subresource: main-resource writes do not touch status; status writes only status.
    let d = deploys
        .patch(
            "llama",
            &pp,
            &Patch::Merge(json!({"status": {"readyReplicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(2));
    let d = deploys
        .patch_status(
            "llama",
            &pp,
            &Patch::Merge(json!({"status": {"readyReplicas": 3}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (d.status.unwrap().ready_replicas, d.spec.replicas),
        (Some(3), Some(3))
    );
    // Scale subresource.
    let s = deploys
        .patch_scale(
            "llama",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    assert_eq!(
        deploys
            .get_scale("llama")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(5)
    );
    // Dry run persists nothing.
    let before = deploys.get("llama").await.unwrap();
    let dry = deploys
        .patch(
            "llama",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(dry.spec.replicas, Some(1));
    let after = deploys.get("llama").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.spec.replicas, Some(5));
    // Validation: a selector that does not match the template is Invalid.
    let err = status(
        deploys
            .patch(
                "llama",
                &pp,
                &Patch::Merge(
                    json!({"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    h.shutdown().await;
}

#[tokio::test]
async fn stale_resource_version_and_uid_preconditions_conflict() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let alice = client(&h, "alice").await;
    let deploys: Api<Deployment> = Api::namespaced(alice.clone(), "ai");
    let old = deploys.get("llama").await.unwrap();
    deploys
        .patch(
            "llama",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    let err = status(
        deploys
            .replace("llama", &PostParams::default(), &old)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (
            409,
            "Conflict",
            "Operation cannot be fulfilled on deployments.apps \"llama\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );
    // A merge patch carrying a stale resourceVersion conflicts too.
    let rv = old.metadata.resource_version.clone().unwrap();
    let err = status(
        deploys
            .patch(
                "llama",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 1}}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    // Delete with a wrong uid precondition.
    let pods: Api<Pod> = Api::namespaced(alice.clone(), "ai");
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = status(pods.delete("web-1", &dp).await.unwrap_err());
    let uid = pods.get("web-1").await.unwrap().metadata.uid.unwrap();
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        format!(
            "Operation cannot be fulfilled on pods \"web-1\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )
    );
    h.shutdown().await;
}

#[tokio::test]
async fn eviction_honours_disruption_budgets() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let alice = client(&h, "alice").await;
    let pods: Api<Pod> = Api::namespaced(alice.clone(), "ai");
    // 3 ready, minAvailable 2: one may go.
    pods.evict("llama-a", &EvictParams::default())
        .await
        .unwrap();
    assert!(h.object("c1", "v1", "Pod", "ai", "llama-a").is_none());
    let err = status(
        pods.evict("llama-b", &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget."
        )
    );
    let cause = &err.details.as_ref().unwrap().causes[0];
    assert_eq!(
        cause.message,
        "The disruption budget llama-pdb needs 2 healthy pods and has 2 currently"
    );
    // A pod no budget covers goes freely; dry run keeps it.
    // (kube-rs sends `delete_options` in snake case, which API servers ignore; dry-run goes in
    // the query.)
    let dry = EvictParams {
        post_options: PostParams {
            dry_run: true,
            ..Default::default()
        },
        ..Default::default()
    };
    pods.evict("web-1", &dry).await.unwrap();
    assert!(h.object("c1", "v1", "Pod", "ai", "web-1").is_some());
    // medic itself may not evict.
    let medic: Api<Pod> = Api::namespaced(client(&h, "medic").await, "ai");
    let err = status(
        medic
            .evict("web-1", &EvictParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"web-1\" is forbidden: User \"system:serviceaccount:medic:medic\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"ai\""
    );
    h.shutdown().await;
}

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

#[tokio::test]
async fn logs_options() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let pods: Api<Pod> = Api::namespaced(client(&h, "medic").await, "ai");
    let lp = |f: fn(&mut LogParams)| {
        let mut p = LogParams {
            container: Some("vllm".into()),
            ..Default::default()
        };
        f(&mut p);
        p
    };
    assert_eq!(
        pods.logs("llama-a", &lp(|_| {})).await.unwrap(),
        "INFO starting vLLM\nINFO loaded model\nWARN high latency\n"
    );
    assert_eq!(
        pods.logs("llama-a", &lp(|p| p.tail_lines = Some(1)))
            .await
            .unwrap(),
        "WARN high latency\n"
    );
    assert_eq!(
        pods.logs("llama-a", &lp(|p| p.since_seconds = Some(60)))
            .await
            .unwrap(),
        "INFO loaded model\nWARN high latency\n"
    );
    assert_eq!(
        pods.logs(
            "llama-a",
            &lp(|p| {
                p.tail_lines = Some(1);
                p.timestamps = true;
            })
        )
        .await
        .unwrap(),
        "2026-06-23T11:59:30.000000000Z WARN high latency\n"
    );
    assert_eq!(
        pods.logs("llama-a", &lp(|p| p.previous = true))
            .await
            .unwrap(),
        "INFO starting vLLM\nERROR CUDA error: unspecified launch failure (Xid 79)\n"
    );
    let err = status(
        pods.logs("llama-a", &LogParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "a container name must be specified for pod llama-a, choose one of: [vllm sidecar]"
        )
    );
    let err = status(
        pods.logs(
            "llama-b",
            &LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "previous terminated container \"vllm\" in pod \"llama-b\" not found"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn discovery_and_custom_resources_through_dynamic_objects() {
    let b = TestBundle::valid();
    b.write("clusters/c1/objects/crd.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: widgets.example.com }\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets, shortNames: [wd] }\n  versions: [{ name: v1, served: true, storage: true }]\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w1, namespace: ai }\nspec: { size: 3 }\n");
    let h = start(&b).await;
    let c = client(&h, "alice").await;
    let discovery = Discovery::new(client(&h, "medic").await)
        .run()
        .await
        .unwrap();
    let (vm, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "kubevirt.io",
            "v1",
            "VirtualMachine",
        ))
        .unwrap();
    assert_eq!(
        (vm.plural.as_str(), caps.scope),
        ("virtualmachines", kube::discovery::Scope::Namespaced)
    );
    let (widget, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client(&h, "medic").await, "ai", &widget);
    let w = widgets.get("w1").await.unwrap();
    assert_eq!(w.data["spec"]["size"], 3);
    // Alice may not create VMs: RBAC applies to custom resources as well.
    let vms: Api<DynamicObject> = Api::namespaced_with(c, "ai", &vm);
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1"}, "spec": {"running": true}})).unwrap();
    let err = status(vms.create(&PostParams::default(), &obj).await.unwrap_err());
    assert_eq!(
        err.message,
        "virtualmachines.kubevirt.io is forbidden: User \"alice@corp.example\" cannot create resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"ai\""
    );
    h.shutdown().await;
}

#[tokio::test]
async fn reactions_fire_once_conditions_hold() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let alice = client(&h, "alice").await;
    let nodes: Api<Node> = Api::all(alice.clone());
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    assert_eq!(h.fired_reactions(), Vec::<usize>::new());
    let pods: Api<Pod> = Api::namespaced(alice.clone(), "ai");
    pods.delete("llama-a", &DeleteParams::default())
        .await
        .unwrap();
    // Dry runs never trigger reactions.
    pods.delete("llama-b", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert_eq!(h.fired_reactions(), Vec::<usize>::new());
    pods.delete("llama-b", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(h.fired_reactions(), vec![0]);
    let d = h
        .object("c1", "apps/v1", "Deployment", "ai", "llama")
        .unwrap();
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(
        h.deleted_series(),
        vec!["xid_errors{node=\"n1\"}".to_string()]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn scenario_secrets_are_never_served() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let medic = client(&h, "medic").await;
    let mut bodies = Vec::new();
    for path in [
        "/version",
        "/api",
        "/apis",
        "/api/v1",
        "/openapi/v2",
        "/openapi/v3",
    ] {
        bodies.push(raw(&medic, "GET", path, &[], None, "").await.1.to_string());
    }
    let discovery = Discovery::new(medic.clone()).run().await.unwrap();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(medic.clone(), &ar);
            bodies.push(
                serde_json::to_string(&api.list(&ListParams::default()).await.unwrap()).unwrap(),
            );
        }
    }
    let pods: Api<Pod> = Api::namespaced(medic.clone(), "ai");
    bodies.push(
        pods.logs(
            "llama-a",
            &LogParams {
                container: Some("vllm".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    assert!(bodies.len() > 40);
    for body in bodies {
        assert!(!body.contains("SECRET-"), "leaked: {body}");
        assert!(
            !body.contains("GPU node drops replicas"),
            "title leaked: {body}"
        );
    }
    h.shutdown().await;
}
