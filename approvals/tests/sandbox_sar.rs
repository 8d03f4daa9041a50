#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The production SubjectAccessReview reviewer against the sandbox API server (real HTTP,
//! real kube client from a generated kubeconfig, the bundle's RBAC).

mod common;

use common::{TestPlan, actor, check, t0};
use medic_approvals::*;
use pretty_assertions::assert_eq;

const BUNDLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/bundles/gpu-xid79");
const CLUSTER: &str = "aks-eu-west";

async fn client(h: &medic_sandbox::SandboxHandle, identity: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(h.kubeconfig_yaml()).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some(CLUSTER.into()),
        cluster: None,
        user: Some(identity.into()),
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn kube_id(user: &str, groups: &[&str]) -> KubeIdentity {
    KubeIdentity {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

#[tokio::test]
async fn kube_reviewer_asks_the_api_server() {
    let bundle = medic_sandbox::Bundle::load(BUNDLE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = medic_sandbox::SandboxOptions {
        kubeconfig_path: Some(dir.path().join("kubeconfig")),
        ..Default::default()
    };
    let h = medic_sandbox::Sandbox::start(&bundle, options)
        .await
        .unwrap();
    let reviewer = KubeAccessReviewer::new().with_cluster(CLUSTER, client(&h, "medic").await);

    let evict = check(
        "create",
        "pods",
        Some("eviction"),
        "ai",
        "llama-7c6d9b8f4d-tq8nj",
    );
    let alice = kube_id("alice@corp.example", &["sre"]);
    let carol = kube_id("carol@corp.example", &["developers"]);
    let v = reviewer.review(CLUSTER, &alice, &evict).await.unwrap();
    assert!(v.allowed, "{v:?}");
    let v = reviewer.review(CLUSTER, &carol, &evict).await.unwrap();
    assert!(!v.allowed, "{v:?}");
    // The same operation in a namespace the sre group has no binding in.
    let elsewhere = check("patch", "deployments", None, "payments", "api");
    assert!(
        !reviewer
            .review(CLUSTER, &alice, &elsewhere)
            .await
            .unwrap()
            .allowed
    );
    // A cluster the reviewer has no client for is an error, not an answer.
    assert!(matches!(
        reviewer.review("nowhere", &alice, &evict).await,
        Err(Error::UnknownCluster { .. })
    ));

    // The whole workflow with the bundle's identities and the default policy.
    let entries: Vec<IdentityEntry> = bundle
        .scenario
        .identities
        .iter()
        .map(|i| serde_json::from_value(serde_json::to_value(i).unwrap()).unwrap())
        .collect();
    let ids = IdentityMap::new(entries).unwrap();
    let book = ApprovalBook::open(
        dir.path().join("data"),
        Policy::default(),
        ids,
        shared(reviewer),
    )
    .await
    .unwrap();
    let plan = TestPlan {
        id: "gpu-rebalance-gpu-node-3".into(),
        playbook: "gpu-rebalance".into(),
        cluster: CLUSTER.into(),
        namespace: "ai".into(),
        risk: Risk::Medium,
        steps: vec![
            evict.clone(),
            check("patch", "deployments", None, "ai", "llama"),
        ],
        note: "evict the llama pods of gpu-node-3".into(),
    };
    let req = book.request(&plan, &actor("medic"), t0()).await.unwrap();
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("slack:U03CAROL"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    match out {
        Outcome::Refused {
            reason: Refusal::AccessDenied { step, identity, .. },
            ..
        } => {
            assert_eq!((step, identity.as_str()), (1, "carol"));
        }
        other => panic!("expected an access denial, got {}", other.describe()),
    }
    let out = book
        .decide::<TestPlan>(
            &req.id,
            &actor("slack:U01ALICE"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    let Outcome::Approved(approved) = out else {
        panic!("expected approval, got {}", out.describe());
    };
    assert_eq!(
        approved.impersonate(),
        &kube_id("alice@corp.example", &["sre"])
    );
    book.recheck(&approved, t0()).await.unwrap();

    // The reviews really went over HTTP, as medic, to the SubjectAccessReview endpoint.
    let sars: Vec<_> = h
        .request_log()
        .into_iter()
        .filter(|r| r.resource == "subjectaccessreviews")
        .collect();
    assert!(sars.len() >= 7, "{}", sars.len());
    assert!(
        sars.iter()
            .all(|r| r.user == "system:serviceaccount:medic:medic" && r.status == 201)
    );
    h.shutdown().await;
}
