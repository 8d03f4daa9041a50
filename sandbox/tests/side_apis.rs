//! The Prometheus-shaped and GitHub-shaped listeners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestBundle, client, start};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn prometheus_answers_selectors_and_honours_delete_series() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let prom = h.prometheus_url("c1").unwrap();
    let q = |query: &str| {
        format!(
            "{prom}/api/v1/query?query={}",
            query
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
                .replace('[', "%5B")
                .replace(']', "%5D")
                .replace(' ', "%20")
        )
    };
    let (code, body) = get(&q(r#"xid_errors{node="n1"}"#)).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "xid_errors", "gpu": "0", "node": "n1"}, "value": [1782216000.0, "79"]}]}})
    );
    // One range function over a selector is answered (what the GPU tool asks); the metric
    // name is dropped as Prometheus does.
    let (code, body) = get(&q(r#"max_over_time(xid_errors{node="n1"}[10m])"#)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {"gpu": "0", "node": "n1"}, "value": [1782216000.0, "79"]}])
    );
    let (_, body) = get(&q(r#"min_over_time(xid_errors{node="n1"}[10m])"#)).await;
    assert_eq!(body["data"]["result"][0]["value"][1], "3");
    // Aggregations and arithmetic are not: Prometheus' own 400.
    let (code, body) = get(&q("sum by (node) (xid_errors)")).await;
    assert_eq!(
        (code, body["status"].as_str(), body["errorType"].as_str()),
        (400, Some("error"), Some("bad_data"))
    );
    let (_, body) = get(&format!(
        "{prom}/api/v1/query_range?query=xid_errors&start=1782215640&end=1782216000&step=120"
    ))
    .await;
    let n1 = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["node"] == "n1")
        .unwrap()
        .clone();
    assert_eq!(
        n1["values"],
        json!([
            [1782215760.0, "3"],
            [1782215880.0, "3"],
            [1782216000.0, "79"]
        ])
    );
    let (_, body) = get(&format!("{prom}/api/v1/labels")).await;
    assert_eq!(body["data"], json!(["__name__", "gpu", "node"]));
    // The reaction deletes the n1 series once n1 is cordoned and empty.
    let alice = client(&h, "alice").await;
    Api::<Node>::all(alice.clone())
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(alice, "ai");
    pods.delete("llama-a", &DeleteParams::default())
        .await
        .unwrap();
    pods.delete("llama-b", &DeleteParams::default())
        .await
        .unwrap();
    let (_, body) = get(&format!("{prom}/api/v1/series?match[]=xid_errors")).await;
    assert_eq!(
        body["data"],
        json!([{"__name__": "xid_errors", "gpu": "0", "node": "n2"}])
    );
    h.shutdown().await;
}

#[tokio::test]
async fn github_shaped_api_serves_changes_and_records_writes() {
    let b = TestBundle::valid();
    let h = start(&b).await;
    let gh = h.github_url().unwrap();
    let (code, body) = get(&format!("{gh}/repos/acme/llama/commits")).await;
    assert_eq!((code, body.as_array().unwrap().len()), (200, 2));
    let (_, body) = get(&format!("{gh}/repos/acme/llama/commits?path=deploy/")).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (_, body) = get(&format!("{gh}/repos/acme/llama/commits/abc")).await;
    assert_eq!(body["commit"]["message"], "bump vllm");
    let (_, body) = get(&format!("{gh}/repos/acme/llama/compare/def456...abc123")).await;
    assert_eq!(
        (body["status"].as_str(), body["ahead_by"].as_u64()),
        (Some("ahead"), Some(1))
    );
    assert_eq!(body["files"], json!([{"filename": "deploy/llama.yaml"}]));
    let (code, _) = get(&format!("{gh}/repos/acme/other/commits")).await;
    assert_eq!(code, 404);
    // The Git database calls of a revert pull request, in the order medic makes them.
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let req = http
            .post(format!("{gh}/repos/acme/llama/{path}"))
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, head) = get(&format!("{gh}/repos/acme/llama/git/ref/heads/main")).await;
    assert_eq!(head["object"]["sha"], "abc123", "main is the newest commit");
    let (_, culprit) = get(&format!("{gh}/repos/acme/llama/git/commits/abc123")).await;
    assert_eq!(culprit["parents"], json!([{"sha": "def456"}]));
    let (_, parent) = get(&format!("{gh}/repos/acme/llama/git/commits/def456")).await;
    let tree = parent["tree"]["sha"].as_str().unwrap().to_owned();
    let (code, revert) = post(
        "git/commits",
        json!({"message": "Revert bump vllm", "tree": tree, "parents": ["abc123"]}),
    )
    .await;
    assert_eq!(code, 201);
    let sha = revert["sha"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 40);
    let (code, _) = post(
        "git/refs",
        json!({"ref": "refs/heads/revert-abc123", "sha": sha}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = post("git/refs", json!({"ref": "refs/heads/main", "sha": sha})).await;
    assert_eq!(code, 422, "main exists");
    let (_, branch) = get(&format!(
        "{gh}/repos/acme/llama/git/ref/heads/revert-abc123"
    ))
    .await;
    assert_eq!(branch["object"]["sha"], sha.as_str());
    let (_, again) = get(&format!("{gh}/repos/acme/llama/git/commits/{sha}")).await;
    assert_eq!(again["tree"]["sha"], tree.as_str());
    let (code, _) = get(&format!("{gh}/repos/acme/llama/git/ref/heads/nope")).await;
    assert_eq!(code, 404);

    let pr = json!({"title": "Revert bump vllm", "head": "revert-abc123", "base": "main", "body": "medic"});
    let (code, created) = post("pulls", pr).await;
    assert_eq!(code, 201);
    assert_eq!(created["number"], 1);
    assert_eq!(created["head"]["sha"], sha.as_str());
    let (_, open) = get(&format!("{gh}/repos/acme/llama/pulls")).await;
    assert_eq!(open[0]["title"], "Revert bump vllm");
    let log = h.github_log();
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/repos/acme/llama/git/commits",
            "/repos/acme/llama/git/refs",
            "/repos/acme/llama/git/refs",
            "/repos/acme/llama/pulls"
        ]
    );
    assert_eq!(log[3].body["head"], "revert-abc123");
    h.shutdown().await;
}

#[tokio::test]
async fn github_trees_are_served_and_new_trees_build_on_a_base() {
    let b = TestBundle::valid();
    b.write(
        "github/acme/llama/trees.json",
        r#"[{"sha": "t-main", "tree": [
            {"path": "deploy/llama.yaml", "mode": "100644", "type": "blob", "sha": "b-new"},
            {"path": "deploy/added.yaml", "mode": "100644", "type": "blob", "sha": "b-added"},
            {"path": "README.md", "mode": "100644", "type": "blob", "sha": "b-readme"}]}]"#,
    );
    let h = start(&b).await;
    let gh = h.github_url().unwrap();
    let (code, tree) = get(&format!(
        "{gh}/repos/acme/llama/git/trees/t-main?recursive=1"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (tree["sha"].as_str(), tree["truncated"].as_bool()),
        (Some("t-main"), Some(false))
    );
    assert_eq!(tree["tree"].as_array().unwrap().len(), 3);
    let (code, _) = get(&format!("{gh}/repos/acme/llama/git/trees/nope")).await;
    assert_eq!(code, 404);

    let http = reqwest::Client::new();
    let post = |body: Value| {
        let req = http
            .post(format!("{gh}/repos/acme/llama/git/trees"))
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // One file set back, one deleted (sha null), the rest kept from the base.
    let (code, created) = post(json!({"base_tree": "t-main", "tree": [
        {"path": "deploy/llama.yaml", "mode": "100644", "type": "blob", "sha": "b-old"},
        {"path": "deploy/added.yaml", "mode": "100644", "type": "blob", "sha": null}]}))
    .await;
    assert_eq!(code, 201);
    let paths: Vec<(String, String)> = created["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["sha"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        vec![
            ("README.md".to_owned(), "b-readme".to_owned()),
            ("deploy/llama.yaml".to_owned(), "b-old".to_owned())
        ]
    );
    let sha = created["sha"].as_str().unwrap();
    assert_eq!(sha.len(), 40);
    let (code, again) = get(&format!("{gh}/repos/acme/llama/git/trees/{sha}")).await;
    assert_eq!((code, &again["tree"]), (200, &created["tree"]));
    let (code, _) = post(json!({"base_tree": "t-unknown", "tree": []})).await;
    assert_eq!(code, 422);
    let (code, _) = post(json!({"base_tree": "t-main"})).await;
    assert_eq!(code, 422);
    h.shutdown().await;
}
