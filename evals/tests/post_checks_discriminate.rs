//! A post-check that already holds before anything ran measures nothing: for every scenario
//! that expects a playbook, at least one `after_execution` check must fail on the bundle as
//! written (an untouched sandbox), so only a remediation can make them all pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_evals::{Remediation, checks, discover, load_scenario};
use medic_sandbox::{Sandbox, SandboxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_check_set_fails_on_the_untouched_bundle() {
    let mut dirs = discover(&common::repo().join("evals/scenarios")).unwrap();
    dirs.extend(discover(&common::repo().join("sandbox/bundles")).unwrap());
    let mut trivial = Vec::new();
    let mut checked = 0;
    for dir in &dirs {
        let s = load_scenario(dir).unwrap();
        if !matches!(s.expected.remediation, Remediation::Playbook { .. }) {
            continue;
        }
        let sandbox = Sandbox::start(&s.bundle, SandboxOptions::default())
            .await
            .unwrap();
        let outcomes = checks::evaluate(&s.expected.after_execution, &sandbox, &s.kinds);
        sandbox.shutdown().await;
        checked += 1;
        if outcomes.iter().all(|o| o.passed) {
            trivial.push(format!(
                "{}: {}",
                s.name,
                outcomes
                    .iter()
                    .map(|o| o.check.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    assert!(checked >= 20, "only {checked} scenarios expect a playbook");
    assert!(
        trivial.is_empty(),
        "post-checks that hold before any remediation:\n{}",
        trivial.join("\n")
    );
}
