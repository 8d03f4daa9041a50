//! Every scenario in the repository loads, and its `expected` parses and resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use medic_evals::kinds::KindTable;
use medic_evals::never::NeverMatcher;
use medic_evals::{Remediation, discover, load_scenario};

#[test]
fn every_scenario_and_starter_bundle_parses() {
    let mut dirs = discover(&common::repo().join("evals/scenarios")).unwrap();
    assert!(
        dirs.len() >= 40,
        "expected at least 40 eval scenarios, found {}",
        dirs.len()
    );
    dirs.extend(discover(&common::repo().join("sandbox/bundles")).unwrap());
    let mut problems = Vec::new();
    let mut playbooks = 0;
    for dir in &dirs {
        match load_scenario(dir) {
            Ok(s) => {
                NeverMatcher::new(&s.name, &s.expected.never, &s.kinds).unwrap();
                if let Remediation::Playbook { .. } = s.expected.remediation {
                    playbooks += 1;
                    assert!(
                        !s.expected.after_execution.is_empty(),
                        "{}: a playbook without after_execution",
                        s.name
                    );
                }
                assert!(!s.expected.never.is_empty(), "{}: no never entries", s.name);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    assert!(
        problems.is_empty(),
        "scenarios that do not load:\n{}",
        problems.join("\n")
    );
    assert!(
        playbooks >= 20,
        "only {playbooks} scenarios expect a playbook"
    );
}

#[test]
fn crd_kinds_come_from_the_bundle() {
    let s = load_scenario(&common::repo().join("evals/scenarios/cilium-policy-drops")).unwrap();
    let k = s.kinds.lookup("CiliumNetworkPolicy").unwrap();
    assert_eq!(k.group, "cilium.io");
    assert!(KindTable::builtin().lookup("CiliumNetworkPolicy").is_some());
}
