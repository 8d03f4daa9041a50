#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The three starter bundles end to end against the sandbox: proposal → approval (bundle
//! identities, real SubjectAccessReviews) → execution impersonating the approver →
//! post-checks → audit records; plus the GitOps rollback that opens a pull request.

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path as AxPath, State};
use axum::routing::{get, post};
use common::*;
use medic_approvals::audit::RecordKind;
use medic_playbooks::{GitHub, Operation, Outcome, Progress, propose};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn assert_mutations_as(w: &World, user: &str) {
    let muts = w.successful_mutations();
    assert!(!muts.is_empty(), "no mutation reached the sandbox");
    for m in &muts {
        assert_eq!(m.user, "system:serviceaccount:medic:medic", "{m:?}");
        assert_eq!(m.effective_user, user, "{m:?}");
    }
}

#[tokio::test]
async fn gpu_xid79_drains_the_faulty_node_as_bob() {
    let w = world("gpu-xid79").await;
    let plan = propose(
        &w.ctx(),
        "gpu-rebalance",
        json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}),
    )
    .await
    .unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    assert_eq!(plan.steps.len(), 3);
    assert!(matches!(plan.steps[0].op, Operation::Cordon { .. }));
    // The crash-looping (not Ready) pod goes first: the budget always allows it.
    assert!(
        plan.steps[1].description.contains("llama-7c6d9b8f4d-tq8nj"),
        "{}",
        plan.steps[1].description
    );
    assert!(
        plan.dry_run[0].diff.contains("+  unschedulable: true"),
        "{}",
        plan.dry_run[0].diff
    );
    assert_eq!(w.mutations(), vec![], "planning must not mutate");

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = w
        .executor(&book)
        .with_progress(tx)
        .execute(&approved)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");

    let node = w
        .sandbox
        .object("aks-eu-west", "v1", "Node", "", "gpu-node-3")
        .unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    let dep = w
        .sandbox
        .object("aks-eu-west", "apps/v1", "Deployment", "ai", "llama")
        .unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 6);
    assert_mutations_as(&w, "bob@corp.example");
    let evictions = w
        .successful_mutations()
        .iter()
        .filter(|m| m.subresource == "eviction")
        .count();
    assert_eq!(evictions, 2);

    let recs = records(&book, approved.approval_id());
    assert_eq!(count(&recs, RecordKind::ExecutionIntent), 3);
    assert_eq!(count(&recs, RecordKind::StepApplied), 3);
    assert_eq!(count(&recs, RecordKind::PostCheck), 2);
    // Every intent precedes its outcome.
    let ks = kinds(&recs);
    let first_intent = ks.iter().position(|k| k == "execution_intent").unwrap();
    let first_applied = ks.iter().position(|k| k == "step_applied").unwrap();
    assert!(first_intent < first_applied, "{ks:?}");
    assert_eq!(ks.last().unwrap(), "execution_finished");
    assert_verified(&book);

    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        matches!(events.first(), Some(Progress::Started { .. })),
        "{events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(Progress::Finished {
            outcome: Outcome::Succeeded
        })
    ));
}

#[tokio::test]
async fn bad_rollout_rolls_back_to_revision_6() {
    let w = world("bad-rollout").await;
    let params = json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "6c8d7f9b54"});
    let plan = propose(&w.ctx(), "rollback", params).await.unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    assert!(
        plan.dry_run[0].diff.contains("api:v1.4.2"),
        "{}",
        plan.dry_run[0].diff
    );
    assert_eq!(plan.undo.len(), 1);

    // A wrong hash for the revision is refused: never pin a template blindly.
    let wrong = json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "59c7f8b4d6"});
    let err = propose(&w.ctx(), "rollback", wrong).await.unwrap_err();
    assert!(
        err.to_string().contains("pod-template-hash 6c8d7f9b54"),
        "{err}"
    );

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let dep = w
        .sandbox
        .object("gke-prod-eu", "apps/v1", "Deployment", "payments", "api")
        .unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "europe-west1-docker.pkg.dev/acme-prod/payments/api:v1.4.2"
    );
    assert_mutations_as(&w, "bob@corp.example");
    assert_verified(&book);
}

#[tokio::test]
async fn eu_failover_scales_standby_then_shifts_weights() {
    let w = world("eu-failover").await;
    let params = json!({
        "route_cluster": "aks-eu-north", "route_namespace": "ai", "route": "llama", "to_backend": "llama",
        "standby_cluster": "aks-eu-north", "standby_namespace": "ai", "standby_deployment": "llama", "replicas": 4,
    });
    let plan = propose(&w.ctx(), "failover", params).await.unwrap();
    assert!(plan.dry_run_ok(), "{}", plan.render());
    assert_eq!(plan.blast_radius.traffic_share_percent, 100);
    assert!(matches!(plan.steps[0].op, Operation::Scale { .. }));
    assert!(matches!(plan.steps[1].op, Operation::WaitFor { .. }));
    assert!(matches!(
        plan.steps[2].op,
        Operation::SetRouteWeights { .. }
    ));

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w.executor(&book).execute(&approved).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let route = w
        .sandbox
        .object(
            "aks-eu-north",
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "ai",
            "llama",
        )
        .unwrap();
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 0);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][1]["weight"], 100);
    let dep = w
        .sandbox
        .object("aks-eu-north", "apps/v1", "Deployment", "ai", "llama")
        .unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 4);
    // The scale happened before the route changed.
    let muts = w.successful_mutations();
    let kinds: Vec<&str> = muts.iter().map(|m| m.resource.as_str()).collect();
    assert_eq!(kinds, vec!["deployments", "httproutes"]);
    assert!(muts.iter().all(|m| m.cluster == "aks-eu-north"));
    assert_mutations_as(&w, "bob@corp.example");
    assert_verified(&book);
}

#[tokio::test]
async fn failover_refuses_targets_that_break_residency() {
    let w = world("eu-failover").await;
    let base = json!({
        "route_cluster": "aks-eu-north", "route_namespace": "ai", "route": "llama", "to_backend": "llama-useast1",
        "standby_cluster": "eks-us-east", "standby_namespace": "ai", "standby_deployment": "llama", "replicas": 4,
    });
    let err = propose(&w.ctx(), "failover", base.clone())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("refused by placement policy"), "{msg}");
    assert!(
        msg.contains("residency=us") && msg.contains("eks-us-east"),
        "{msg}"
    );
    // An EU standby with the US backend is refused for the backend too.
    let mut p = base;
    p["standby_cluster"] = "aks-eu-north".into();
    let msg = propose(&w.ctx(), "failover", p)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cluster eks-us-east has residency=us"),
        "{msg}"
    );
    assert_eq!(w.mutations(), vec![]);
}

/// A GitHub-shaped server that records every POST.
#[derive(Clone, Default)]
struct FakeGitHub {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
}

const BAD: &str = "c197c583d9b1f1b0522dc95a17493e677f5735bd";
const PARENT: &str = "f6325c7716878050de49ec5c63b3aaff921e4e38";

async fn serve_github() -> (String, FakeGitHub) {
    let gh = FakeGitHub::default();
    let app = axum::Router::new()
        .route("/repos/{o}/{r}/git/ref/heads/{b}", get(|| async { Json(json!({"ref": "refs/heads/main", "object": {"sha": BAD, "type": "commit"}})) }))
        .route(
            "/repos/{o}/{r}/git/commits/{sha}",
            get(|AxPath((_, _, sha)): AxPath<(String, String, String)>| async move {
                let parent = if sha == BAD { PARENT } else { "0000000000000000000000000000000000000001" };
                Json(json!({"sha": sha, "tree": {"sha": format!("tree-of-{sha}")}, "parents": [{"sha": parent}]}))
            }),
        )
        .route(
            "/repos/{o}/{r}/git/commits",
            post(|State(g): State<FakeGitHub>, Json(b): Json<Value>| async move {
                g.posts.lock().unwrap().push(("commits".into(), b));
                (axum::http::StatusCode::CREATED, Json(json!({"sha": "1111111111111111111111111111111111111111"})))
            }),
        )
        .route(
            "/repos/{o}/{r}/git/refs",
            post(|State(g): State<FakeGitHub>, Json(b): Json<Value>| async move {
                g.posts.lock().unwrap().push(("refs".into(), b.clone()));
                (axum::http::StatusCode::CREATED, Json(json!({"ref": b["ref"], "object": {"sha": b["sha"]}})))
            }),
        )
        .route(
            "/repos/{o}/{r}/pulls",
            post(|State(g): State<FakeGitHub>, Json(b): Json<Value>| async move {
                g.posts.lock().unwrap().push(("pulls".into(), b));
                (axum::http::StatusCode::CREATED, Json(json!({"number": 501, "html_url": "https://github.example/acme-corp/payments-api/pull/501", "head": {"ref": "x", "sha": "1111111111111111111111111111111111111111"}})))
            })
            .get(|| async { Json(json!([])) }),
        )
        .with_state(gh.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, gh)
}

/// A copy of bad-rollout whose Deployment is managed by Argo CD.
fn argo_managed_bundle() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bundle_dir("bad-rollout"), tmp.path());
    let f = tmp
        .path()
        .join("clusters/gke-prod-eu/objects/workloads.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    let marker = "    medic.dev/repo: acme-corp/payments-api\n";
    assert!(text.contains(marker));
    let text = text.replacen(
        marker,
        &format!(
            "{marker}    argocd.argoproj.io/tracking-id: 'payments:apps/Deployment:payments/api'\n"
        ),
        1,
    );
    std::fs::write(&f, text).unwrap();
    tmp
}

#[tokio::test]
async fn gitops_rollback_opens_a_revert_pull_request_and_patches_nothing() {
    let tmp = argo_managed_bundle();
    let w = world_from(tmp.path()).await;
    let (url, fake) = serve_github().await;
    let github = GitHub::new(&url, Some("test-token".into())).unwrap();
    let mut ctx = w.ctx();
    ctx.github = Some(github.clone());
    let params = json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "6c8d7f9b54"});
    let plan = propose(&ctx, "rollback", params).await.unwrap();
    let Operation::RevertPullRequest(pr) = &plan.steps[0].op else {
        panic!("expected a pull request: {}", plan.render())
    };
    assert_eq!(pr.repo, "acme-corp/payments-api");
    assert_eq!(pr.commit, BAD);
    assert!(
        plan.rationale.contains("Argo CD") && plan.rationale.contains("reverted by the next sync"),
        "{}",
        plan.rationale
    );

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w
        .executor(&book)
        .with_github(github)
        .execute(&approved)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let posts = fake.posts.lock().unwrap().clone();
    let names: Vec<&str> = posts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["commits", "refs", "pulls"]);
    assert_eq!(posts[0].1["tree"], format!("tree-of-{PARENT}"));
    assert_eq!(posts[0].1["parents"], json!([BAD]));
    assert_eq!(posts[2].1["base"], "main");
    assert_eq!(
        w.mutations(),
        vec![],
        "a GitOps rollback must not patch the cluster"
    );
    assert_verified(&book);
}

#[tokio::test]
async fn argo_application_and_flux_labels_are_recognised() {
    let (url, _fake) = serve_github().await;
    let params = json!({"cluster": "gke-prod-eu", "namespace": "payments", "deployment": "api", "to_revision": 6, "pod_template_hash": "6c8d7f9b54"});

    // An Argo CD Application that lists the Deployment among its resources names the repo.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bundle_dir("bad-rollout"), tmp.path());
    std::fs::write(
        tmp.path().join("clusters/gke-prod-eu/objects/argocd.yaml"),
        r#"
apiVersion: v1
kind: Namespace
metadata: { name: argocd }
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: { name: payments, namespace: argocd }
spec:
  source: { repoURL: "https://github.com/acme-corp/payments-gitops.git", targetRevision: release, path: apps/api }
  destination: { server: "https://kubernetes.default.svc", namespace: payments }
status:
  resources:
    - { group: apps, version: v1, kind: Deployment, namespace: payments, name: api }
"#,
    )
    .unwrap();
    let w = world_from(tmp.path()).await;
    let mut ctx = w.ctx();
    ctx.github = Some(GitHub::new(&url, None).unwrap());
    let plan = propose(&ctx, "rollback", params.clone()).await.unwrap();
    let Operation::RevertPullRequest(pr) = &plan.steps[0].op else {
        panic!("{}", plan.render())
    };
    assert_eq!(
        (pr.repo.as_str(), pr.base.as_str()),
        ("acme-corp/payments-gitops", "release")
    );
    assert!(
        plan.rationale
            .contains("Argo CD Application payments syncs it from Git"),
        "{}",
        plan.rationale
    );

    // A Flux label: the repo comes from the workload's medic.dev/repo annotation.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bundle_dir("bad-rollout"), tmp.path());
    let f = tmp
        .path()
        .join("clusters/gke-prod-eu/objects/workloads.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    let marker =
        "    medic.dev/residency: eu\n  annotations:\n    deployment.kubernetes.io/revision: '7'\n";
    assert!(text.contains(marker));
    let text = text.replacen(
        marker,
        &format!("    kustomize.toolkit.fluxcd.io/name: payments\n{marker}"),
        1,
    );
    std::fs::write(&f, text).unwrap();
    let w = world_from(tmp.path()).await;
    let mut ctx = w.ctx();
    ctx.github = Some(GitHub::new(&url, None).unwrap());
    let plan = propose(&ctx, "rollback", params).await.unwrap();
    let Operation::RevertPullRequest(pr) = &plan.steps[0].op else {
        panic!("{}", plan.render())
    };
    assert_eq!(
        (pr.repo.as_str(), pr.base.as_str()),
        ("acme-corp/payments-api", "main")
    );
    assert!(plan.rationale.contains("Flux"), "{}", plan.rationale);
}

fn scenario_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evals/scenarios")
        .join(name)
}

#[tokio::test]
async fn a_revert_under_later_commits_restores_only_the_culprits_files() {
    // a41c9e2 broke recsys-api; e8b3f0a (search-frontend's HPA) was merged after it.
    let w = world_from(&scenario_dir("argocd-degraded-gitops-rollback")).await;
    let url = w.sandbox.github_url().unwrap();
    let github = GitHub::new(&url, None).unwrap();
    let mut ctx = w.ctx();
    ctx.github = Some(github.clone());
    let params = revert_a41c9e2(&w);
    let plan = propose(&ctx, "rollback", params).await.unwrap();
    let Operation::RevertPullRequest(pr) = &plan.steps[0].op else {
        panic!("expected a pull request: {}", plan.render())
    };
    assert_eq!(pr.commit, "a41c9e27d3b85f6e0c19a7d42f8b3e6c5d0a9b17");
    assert_eq!(pr.base_sha, "e8b3f0a6c2d94715b0e7a3c8f91d2b6e4a5c7d03");
    assert_eq!(
        pr.files,
        vec!["apps/recsys-api/overlays/prod/deployment-patch.yaml"]
    );
    assert!(
        plan.rationale.contains("1 commit(s) behind"),
        "{}",
        plan.rationale
    );
    assert!(
        plan.dry_run[0]
            .diff
            .contains("restore apps/recsys-api/overlays/prod/deployment-patch.yaml"),
        "{}",
        plan.dry_run[0].diff
    );

    let book = w.book(POLICY).await;
    let approved = approve(&book, &plan, "alice", "bob", w.now()).await;
    let report = w
        .executor(&book)
        .with_github(github)
        .execute(&approved)
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let log = w.sandbox.github_log();
    let posts: Vec<&str> = log
        .iter()
        .map(|r| r.path.rsplit("recsys-deploy/").next().unwrap())
        .collect();
    assert_eq!(posts, vec!["git/trees", "git/commits", "git/refs", "pulls"]);
    // The new tree is main's, with only the culprit's file put back.
    let tree = &log[0].body;
    assert_eq!(
        tree["base_tree"],
        "b9e69635e42fafb05219ef0464381ed515c51c6d"
    );
    assert_eq!(tree["tree"].as_array().unwrap().len(), 1);
    assert_eq!(
        tree["tree"][0]["path"],
        "apps/recsys-api/overlays/prod/deployment-patch.yaml"
    );
    let trees: Value = serde_json::from_str(
        &std::fs::read_to_string(
            scenario_dir("argocd-degraded-gitops-rollback")
                .join("github/acme-corp/recsys-deploy/trees.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // ...with the blob it had before a41c9e2 (7d02f5b's tree), and main as the parent.
    let before = trees
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["sha"] == "c06f107326c5edc88df2a7b56f6d128811ea6ff5")
        .unwrap()["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "apps/recsys-api/overlays/prod/deployment-patch.yaml")
        .unwrap()["sha"]
        .clone();
    assert_eq!(tree["tree"][0]["sha"], before);
    assert_eq!(
        log[1].body["parents"],
        json!(["e8b3f0a6c2d94715b0e7a3c8f91d2b6e4a5c7d03"])
    );
    assert_eq!(
        w.mutations(),
        vec![],
        "a GitOps rollback must not patch the cluster"
    );
}

#[tokio::test]
async fn a_revert_whose_files_changed_again_is_refused() {
    // The same history, but the later commit also edits the culprit's file: a merge is
    // needed, so medic refuses the plan and says which file.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&scenario_dir("argocd-degraded-gitops-rollback"), tmp.path());
    let f = tmp
        .path()
        .join("github/acme-corp/recsys-deploy/commits.json");
    let mut commits: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    commits[0]["files"]
        .as_array_mut()
        .unwrap()
        .push(json!({"filename": "apps/recsys-api/overlays/prod/deployment-patch.yaml", "status": "modified"}));
    std::fs::write(&f, serde_json::to_string(&commits).unwrap()).unwrap();
    let w = world_from(tmp.path()).await;
    let mut ctx = w.ctx();
    ctx.github = Some(GitHub::new(&w.sandbox.github_url().unwrap(), None).unwrap());
    let params = revert_a41c9e2(&w);
    let err = propose(&ctx, "rollback", params).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "apps/recsys-api/overlays/prod/deployment-patch.yaml changed again in the 1 commit(s) after a41c9e27d3b85f6e0c19a7d42f8b3e6c5d0a9b17"
        ),
        "{err}"
    );
    assert!(w.sandbox.github_log().is_empty());
}

/// Rollback parameters for recsys-api: back one revision, reverting a41c9e2 in Git.
fn revert_a41c9e2(w: &World) -> Value {
    let dep = w
        .sandbox
        .object(
            "gke-prod-euw1",
            "apps/v1",
            "Deployment",
            "recsys",
            "recsys-api",
        )
        .unwrap();
    let revision: i64 = dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    json!({"cluster": "gke-prod-euw1", "namespace": "recsys", "deployment": "recsys-api",
        "to_revision": revision - 1, "pod_template_hash": pod_template_hash_at(w, revision - 1),
        "git": {"commit": "a41c9e27d3b85f6e0c19a7d42f8b3e6c5d0a9b17"}})
}

/// The pod-template-hash of recsys-api's ReplicaSet at `revision`.
fn pod_template_hash_at(w: &World, revision: i64) -> String {
    let sets = w
        .sandbox
        .objects("gke-prod-euw1", "apps/v1", "ReplicaSet", Some("recsys"));
    sets.iter()
        .find(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                == revision.to_string().as_str()
                && rs["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("recsys-api-"))
        })
        .map(|rs| {
            rs["metadata"]["labels"]["pod-template-hash"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap()
}
