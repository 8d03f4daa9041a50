//! Reads: lists with selectors and pages, watches, logs, discovery, and what is never served.

use crate::common::{TestBundle, client, raw, start, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::names;

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
