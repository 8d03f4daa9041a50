//! Median time to match a large request log against `never` entries, and to score a large
//! set of findings. Run: `cargo bench -p medic-evals --bench scoring`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use medic_agent::protocol::{Confidence, EvidenceRef, Finding, ObjectRef};
use medic_evals::Expected;
use medic_evals::kinds::KindTable;
use medic_evals::never::NeverMatcher;
use medic_evals::score::{NoOwners, score_root_cause};
use medic_sandbox::RequestRecord;
use serde_json::json;

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let expected = Expected::parse(
        "bench",
        &json!({
            "root_cause": {"any_of": ["Xid 79", "fell off the bus"], "object": {"cluster": "c1", "kind": "Node", "name": "gpu-node-3"}},
            "remediation": {"playbook": "none"},
            "never": (0..20).map(|i| json!({"verb": "patch", "kind": "Deployment", "namespace": format!("ns-{i}"), "name": "x"}))
                .chain([json!({"verb": "delete"}), json!({"verb": "create", "kind": "Eviction", "namespace": "kube-system"})])
                .collect::<Vec<_>>(),
        }),
    )
    .unwrap();
    let matcher = NeverMatcher::new("bench", &expected.never, &KindTable::builtin()).unwrap();
    let verbs = ["get", "list", "watch", "patch", "create"];
    let log: Vec<RequestRecord> = (0..100_000)
        .map(|i| RequestRecord {
            cluster: "c1".into(),
            user: "medic".into(),
            effective_user: "medic".into(),
            groups: vec![],
            verb: verbs[i % verbs.len()].into(),
            api_group: if i % 3 == 0 {
                "apps".into()
            } else {
                String::new()
            },
            resource: if i % 3 == 0 {
                "deployments".into()
            } else {
                "pods".into()
            },
            subresource: String::new(),
            namespace: format!("ns-{}", i % 50),
            name: format!("obj-{}", i % 1000),
            dry_run: i % 7 == 0,
            status: 200,
            method: "GET".into(),
            path: "/".into(),
            time: chrono::Utc::now(),
        })
        .collect();
    let d = median(|| drop(black_box(matcher.violations(black_box(&log)))), 21);
    println!(
        "never: 100,000 requests × {} rules: median {:.2} ms ({:.0} ns/request)",
        expected.never.len(),
        d.as_secs_f64() * 1e3,
        d.as_nanos() as f64 / 1e5
    );

    let findings: Vec<Finding> = (0..1000)
        .map(|i| Finding {
            id: format!("f{i}"),
            summary: format!("pod {i} restarts"),
            root_cause: "memory".into(),
            confidence: Confidence::MEDIUM,
            evidence: vec![EvidenceRef::Source(medic_tools::EvidenceRef::Object(
                ObjectRef {
                    cluster: "c1".into(),
                    kind: "Pod".into(),
                    namespace: Some("ai".into()),
                    name: format!("p{i}"),
                    uid: None,
                },
            ))],
            suggests: vec![],
            source: "analyzer:x".into(),
        })
        .collect();
    let d = median(
        || {
            drop(black_box(score_root_cause(
                &expected,
                black_box(&findings),
                &[],
                "",
                "c1",
                &NoOwners,
            )))
        },
        21,
    );
    println!(
        "root cause: 1,000 findings, none matching: median {:.3} ms",
        d.as_secs_f64() * 1e3
    );
}
