//! Writes: every patch type, status and scale, preconditions, eviction and reactions.

use crate::common::{TestBundle, client, start, status};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use pretty_assertions::assert_eq;
use serde_json::json;

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
