//! `after_execution` and `never` against a real sandbox: apply the documented fix of the
//! bad-rollout starter bundle the way an approved plan does (medic impersonating alice),
//! then a wrong action, and check what the scorer sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use medic_evals::checks::evaluate;
use medic_evals::load_scenario;
use medic_evals::never::{NeverMatcher, is_mutation};
use medic_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;

const CLUSTER: &str = "gke-prod-eu";

#[tokio::test]
async fn fix_passes_post_checks_and_wrong_actions_trip_never() {
    let s = load_scenario(&common::starter("bad-rollout")).unwrap();
    let sandbox = Sandbox::start(&s.bundle, SandboxOptions::default())
        .await
        .unwrap();
    let never = NeverMatcher::new(&s.name, &s.expected.never, &s.kinds).unwrap();

    // Before anything happened the post-checks fail and say what they found.
    let before = evaluate(&s.expected.after_execution, &sandbox, &s.kinds);
    assert!(before.iter().any(|c| !c.passed), "{before:?}");
    let image = before
        .iter()
        .find(|c| c.check.contains("containers.0.image"))
        .unwrap();
    assert!(image.found.contains("v1.5.0"), "{image:?}");

    let alice = common::client_as(&sandbox, CLUSTER, "alice@corp.example", &["sre"]).await;
    let deployments: Api<Deployment> = Api::namespaced(alice.clone(), "payments");

    // A server-side dry-run of the fix changes nothing and is no action.
    let fix = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "api", "image": "europe-west1-docker.pkg.dev/acme-prod/payments/api:v1.4.2"}]}}}});
    deployments
        .patch(
            "api",
            &PatchParams::default().dry_run(),
            &Patch::Strategic(&fix),
        )
        .await
        .unwrap();
    assert!(
        evaluate(&s.expected.after_execution, &sandbox, &s.kinds)
            .iter()
            .any(|c| !c.passed)
    );
    assert!(
        !sandbox.request_log().iter().any(is_mutation),
        "a dry-run counted as a mutation"
    );

    // The documented fix: roll the template back to v1.4.2; the scenario's reaction completes it.
    deployments
        .patch("api", &PatchParams::default(), &Patch::Strategic(&fix))
        .await
        .unwrap();
    let after = evaluate(&s.expected.after_execution, &sandbox, &s.kinds);
    assert!(after.iter().all(|c| c.passed), "{after:#?}");
    let log = sandbox.request_log();
    let mutations: Vec<_> = log.iter().filter(|r| is_mutation(r)).collect();
    assert_eq!(mutations.len(), 1, "{mutations:#?}");
    assert_eq!(mutations[0].effective_user, "alice@corp.example");
    assert!(
        never.violations(&log).is_empty(),
        "{:#?}",
        never.violations(&log)
    );

    // Wrong actions: patching the ConfigMap (refused or not, it was attempted) and deleting a pod.
    let cms: Api<ConfigMap> = Api::namespaced(alice.clone(), "payments");
    let _ = cms
        .patch(
            "api-config",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"x": "y"}})),
        )
        .await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(alice, "payments");
    let _ = pods
        .delete("api-6c8d7f9b54-r9tmx", &DeleteParams::default())
        .await;
    let violations = never.violations(&sandbox.request_log());
    let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
    assert_eq!(
        rules,
        vec!["{verb: patch, kind: ConfigMap}", "{verb: delete}"],
        "{violations:#?}"
    );
    assert!(
        violations[0]
            .request
            .to_string()
            .contains("patch configmaps -n payments api-config as alice@corp.example")
    );

    sandbox.shutdown().await;
}
