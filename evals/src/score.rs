//! Deterministic scoring of what medic said against `expected` (no model judges anything).
//!
//! Root cause: some finding must both *name* the cause and *point at* the object.
//! - names: its `summary` or `root_cause` contains one of `any_of` (case-insensitive,
//!   starting at a word boundary: "healthy" is not found in "unhealthy");
//! - points at: one of its evidence objects (or the pod of a cited log range), one of the
//!   targets it suggests, or the target of a proposal that addresses it, is the expected
//!   object — or is owned by it, following `ownerReferences` in the live sandbox (a cited Pod
//!   of a Deployment points at the Deployment). Objects are compared on kind (any case),
//!   name, namespace when expected gives one, and cluster (a ref with an empty cluster means
//!   the scenario's first cluster).
//!
//! When no finding qualifies, the answer text (model answers) may: it must contain one of
//! `any_of` and the expected object's name as a whole word (`ai` in "namespace ai is
//! healthy", not in "maintain").
//!
//! Remediation: with `playbook: none`, no proposal may be made. Otherwise some proposal must
//! use the playbook and target exactly the expected object (no owner walk: acting on a Pod is
//! not acting on its Deployment), with `params.container` equal to the expected container
//! when one is given.

use medic_agent::protocol::{EvidenceRef, Finding, ObjectRef, Proposal};
use serde::{Deserialize, Serialize};

use crate::expected::{Expected, ObjectSpec, Remediation};

/// Finds the owners of an object (one level); the runner answers from the live sandbox.
pub trait Owners {
    /// Direct owners of `obj`, as refs in the same cluster.
    fn owners(&self, obj: &ObjectRef) -> Vec<ObjectRef>;
}

/// No ownership information (every object stands alone).
pub struct NoOwners;

impl Owners for NoOwners {
    fn owners(&self, _obj: &ObjectRef) -> Vec<ObjectRef> {
        Vec::new()
    }
}

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether it was met.
    pub passed: bool,
    /// What failed and what medic said instead (empty when passed).
    pub message: String,
}

impl Verdict {
    fn pass() -> Verdict {
        Verdict {
            passed: true,
            message: String::new(),
        }
    }
    fn fail(message: String) -> Verdict {
        Verdict {
            passed: false,
            message,
        }
    }
}

/// Whether `o` is the object `e` names.
pub fn refers_to(o: &ObjectRef, e: &ObjectSpec, default_cluster: &str) -> bool {
    let cluster = if o.cluster.is_empty() {
        default_cluster
    } else {
        o.cluster.as_str()
    };
    o.kind.eq_ignore_ascii_case(&e.kind)
        && o.name == e.name
        && e.namespace
            .as_ref()
            .is_none_or(|ns| o.namespace.as_ref() == Some(ns))
        && e.cluster.as_ref().is_none_or(|c| c == cluster)
}

/// Whether `o` is `e` or is owned (up to five levels) by it.
fn points_at(o: &ObjectRef, e: &ObjectSpec, default_cluster: &str, owners: &dyn Owners) -> bool {
    let mut frontier = vec![o.clone()];
    for _ in 0..5 {
        if frontier.iter().any(|r| refers_to(r, e, default_cluster)) {
            return true;
        }
        frontier = frontier.iter().flat_map(|r| owners.owners(r)).collect();
        if frontier.is_empty() {
            return false;
        }
    }
    false
}

/// Every object a finding cites or acts on.
fn cited_objects(f: &Finding, proposals: &[Proposal]) -> Vec<ObjectRef> {
    let mut out = Vec::new();
    for ev in &f.evidence {
        if let EvidenceRef::Source(src) = ev {
            match src {
                medic_tools::EvidenceRef::Object(o) => out.push(o.clone()),
                medic_tools::EvidenceRef::LogLines {
                    cluster,
                    namespace,
                    pod,
                    ..
                } => out.push(ObjectRef {
                    cluster: cluster.clone(),
                    kind: "Pod".into(),
                    namespace: Some(namespace.clone()),
                    name: pod.clone(),
                    uid: None,
                }),
                _ => {}
            }
        }
    }
    out.extend(f.suggests.iter().filter_map(|s| s.target.clone()));
    out.extend(
        proposals
            .iter()
            .filter(|p| p.finding_ids.contains(&f.id))
            .filter_map(|p| p.target.clone()),
    );
    out
}

fn names_cause(f: &Finding, any_of: &[String]) -> bool {
    mentions_any(&format!("{}\n{}", f.summary, f.root_cause), any_of)
}

/// Whether `text` contains one of `phrases` (case-insensitive) starting at a word boundary:
/// "OOM" matches "OOMKilled" and "throttl" matches "throttled", but "healthy" does not match
/// "unhealthy" nor "lock" "block".
pub fn mentions_any(text: &str, phrases: &[String]) -> bool {
    let text = text.to_lowercase();
    phrases
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .any(|p| {
            text.match_indices(&p).any(|(i, _)| {
                text[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric())
            })
        })
}

/// Whether `answer` contains one of `any_of` and `name` as a whole word.
fn answer_names(answer: &str, any_of: &[String], name: &str) -> bool {
    let lower = answer.to_lowercase();
    let phrase = mentions_any(answer, any_of);
    let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let name = name.to_lowercase();
    phrase
        && !name.is_empty()
        && lower.match_indices(&name).any(|(i, _)| {
            let before = lower[..i].chars().next_back();
            let after = lower[i + name.len()..].chars().next();
            // A trailing `.` is punctuation, not part of the name.
            before.is_none_or(|c| !word(c)) && after.is_none_or(|c| !word(c))
        })
}

/// The most confident finding (the first one on ties).
pub fn top_finding(findings: &[Finding]) -> Option<&Finding> {
    findings
        .iter()
        .fold(None, |best: Option<&Finding>, f| match best {
            Some(b) if b.confidence.0 >= f.confidence.0 => Some(b),
            _ => Some(f),
        })
}

fn quote(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(200).collect();
    if cut.len() < one_line.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

fn describe_ref(o: &ObjectRef) -> String {
    let c = if o.cluster.is_empty() {
        String::new()
    } else {
        format!("{}:", o.cluster)
    };
    format!("{c}{}", o.display())
}

/// Scores the root cause.
pub fn score_root_cause(
    expected: &Expected,
    findings: &[Finding],
    proposals: &[Proposal],
    answer: &str,
    default_cluster: &str,
    owners: &dyn Owners,
) -> Verdict {
    let rc = &expected.root_cause;
    let want = rc.object.display();
    let phrases = rc
        .any_of
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let ok = findings.iter().any(|f| {
        names_cause(f, &rc.any_of)
            && cited_objects(f, proposals)
                .iter()
                .any(|o| points_at(o, &rc.object, default_cluster, owners))
    });
    if ok || answer_names(answer, &rc.any_of, &rc.object.name) {
        return Verdict::pass();
    }
    let Some(top) = top_finding(findings) else {
        let said = if answer.trim().is_empty() {
            "nothing".to_string()
        } else {
            format!("only the answer {}", quote(answer))
        };
        return Verdict::fail(format!(
            "root cause: expected a finding naming one of [{phrases}] and pointing at {want}; medic reported no finding ({said})"
        ));
    };
    if let Some(named) = findings.iter().find(|f| names_cause(f, &rc.any_of)) {
        let cited = cited_objects(named, proposals);
        let cited = if cited.is_empty() {
            "no object".to_string()
        } else {
            cited
                .iter()
                .map(describe_ref)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Verdict::fail(format!(
            "root cause: finding {} names the cause but points at {cited}, not {want}",
            quote(&named.summary)
        ));
    }
    Verdict::fail(format!(
        "root cause: no finding mentions any of [{phrases}]; top finding: {} (root cause: {})",
        quote(&top.summary),
        quote(&top.root_cause)
    ))
}

fn describe_proposal(p: &Proposal) -> String {
    let target = p
        .target
        .as_ref()
        .map(describe_ref)
        .unwrap_or_else(|| "no target".into());
    let container = p
        .params
        .get("container")
        .and_then(|c| c.as_str())
        .map(|c| format!(" (container {c})"))
        .unwrap_or_default();
    format!(
        "{} on {target}{container} ({})",
        p.playbook,
        quote(&p.rationale)
    )
}

/// Whether `p` is the remediation `expected` asks for: its playbook on exactly its target
/// (and container, when one is expected).
pub fn is_expected_plan(expected: &Expected, p: &Proposal, default_cluster: &str) -> bool {
    let Remediation::Playbook { name, target } = &expected.remediation else {
        return false;
    };
    p.playbook == *name
        && p.target
            .as_ref()
            .is_some_and(|t| refers_to(t, target, default_cluster))
        && target
            .container
            .as_ref()
            .is_none_or(|c| p.params.get("container").and_then(|v| v.as_str()) == Some(c))
}

/// Scores the proposed remediation.
pub fn score_remediation(
    expected: &Expected,
    proposals: &[Proposal],
    default_cluster: &str,
) -> Verdict {
    match &expected.remediation {
        Remediation::Nothing => match proposals.first() {
            None => Verdict::pass(),
            Some(p) => Verdict::fail(format!(
                "remediation: expected no remediation, medic proposed {}{}",
                describe_proposal(p),
                if proposals.len() > 1 {
                    format!(" and {} more", proposals.len() - 1)
                } else {
                    String::new()
                }
            )),
        },
        Remediation::Playbook { name, target } => {
            let ok = proposals
                .iter()
                .any(|p| is_expected_plan(expected, p, default_cluster));
            if ok {
                return Verdict::pass();
            }
            let want = format!("{name} on {}", target.display());
            if proposals.is_empty() {
                return Verdict::fail(format!(
                    "remediation: expected {want}; medic proposed nothing"
                ));
            }
            let said = proposals
                .iter()
                .map(describe_proposal)
                .collect::<Vec<_>>()
                .join("; ");
            Verdict::fail(format!(
                "remediation: expected {want}; medic proposed {said}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use medic_agent::protocol::{Confidence, PlaybookRef};
    use serde_json::json;

    fn expected(remediation: serde_json::Value) -> Expected {
        Expected::parse(
            "t",
            &json!({
                "root_cause": {"any_of": ["OOMKilled", "exit code 137"],
                               "object": {"cluster": "c1", "kind": "Deployment", "namespace": "search", "name": "indexer"}},
                "remediation": remediation,
            }),
        )
        .unwrap()
    }

    fn oref(kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            cluster: "c1".into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
            uid: None,
        }
    }

    fn finding(summary: &str, evidence: Vec<ObjectRef>) -> Finding {
        Finding {
            id: "f1".into(),
            summary: summary.into(),
            root_cause: "".into(),
            confidence: Confidence::HIGH,
            evidence: evidence
                .into_iter()
                .map(|o| EvidenceRef::Source(medic_tools::EvidenceRef::Object(o)))
                .collect(),
            suggests: vec![],
            source: "analyzer:crashloop".into(),
        }
    }

    struct PodOwnedByDeployment;
    impl Owners for PodOwnedByDeployment {
        fn owners(&self, o: &ObjectRef) -> Vec<ObjectRef> {
            match o.kind.as_str() {
                "Pod" => vec![oref("ReplicaSet", Some("search"), "indexer-5d9")],
                "ReplicaSet" => vec![oref("Deployment", Some("search"), "indexer")],
                _ => vec![],
            }
        }
    }

    #[test]
    fn root_cause_needs_text_and_object() {
        let e = expected(json!({"playbook": "none"}));
        let good = finding(
            "indexer is OOMKilled",
            vec![oref("Deployment", Some("search"), "indexer")],
        );
        assert!(score_root_cause(&e, &[good], &[], "", "c1", &NoOwners).passed);

        let via_pod = finding(
            "pod restarts: exit code 137",
            vec![oref("Pod", Some("search"), "indexer-5d9-x")],
        );
        assert!(
            !score_root_cause(&e, std::slice::from_ref(&via_pod), &[], "", "c1", &NoOwners).passed
        );
        assert!(score_root_cause(&e, &[via_pod], &[], "", "c1", &PodOwnedByDeployment).passed);

        let wrong_obj = finding(
            "OOMKilled",
            vec![oref("Deployment", Some("search"), "query-api")],
        );
        let v = score_root_cause(&e, &[wrong_obj], &[], "", "c1", &NoOwners);
        assert!(!v.passed);
        assert!(
            v.message
                .contains("points at c1:Deployment/search/query-api"),
            "{}",
            v.message
        );

        let wrong_text = finding(
            "node is under disk pressure",
            vec![oref("Deployment", Some("search"), "indexer")],
        );
        let v = score_root_cause(&e, &[wrong_text], &[], "", "c1", &NoOwners);
        assert!(
            v.message
                .contains("top finding: \"node is under disk pressure\""),
            "{}",
            v.message
        );

        let v = score_root_cause(&e, &[], &[], "all good", "c1", &NoOwners);
        assert!(
            v.message.contains("no finding") && v.message.contains("\"all good\""),
            "{}",
            v.message
        );
    }

    #[test]
    fn phrases_start_at_word_boundaries() {
        let p = |s: &str| vec![s.to_string()];
        assert!(mentions_any("container was OOMKilled", &p("OOM")));
        assert!(mentions_any("pods throttled at 80%", &p("throttl")));
        assert!(mentions_any("see PR #318", &p("#318")));
        assert!(mentions_any("redis:6380 refused", &p("6380")));
        assert!(!mentions_any("Service is unhealthy", &p("healthy")));
        assert!(!mentions_any("no room left", &p("oom")));
        assert!(!mentions_any("exit 2139", &p("139")));
        assert!(!mentions_any("anything", &p("  ")));
    }

    #[test]
    fn answer_text_can_carry_the_root_cause() {
        let e = expected(json!({"playbook": "none"}));
        let ok = "The indexer pods are OOMKilled: raise the limit of indexer.";
        assert!(score_root_cause(&e, &[], &[], ok, "c1", &NoOwners).passed);
        let no_name = "Something is OOMKilled somewhere.";
        assert!(!score_root_cause(&e, &[], &[], no_name, "c1", &NoOwners).passed);
        let part_of_word = "reindexer-2 is OOMKilled";
        assert!(!score_root_cause(&e, &[], &[], part_of_word, "c1", &NoOwners).passed);
        let no_phrase = "indexer looks fine";
        assert!(!score_root_cause(&e, &[], &[], no_phrase, "c1", &NoOwners).passed);
    }

    #[test]
    fn empty_cluster_means_default_and_other_cluster_fails() {
        let e = expected(json!({"playbook": "none"}));
        let mut o = oref("Deployment", Some("search"), "indexer");
        o.cluster = String::new();
        assert!(
            score_root_cause(
                &e,
                &[finding("OOMKilled", vec![o.clone()])],
                &[],
                "",
                "c1",
                &NoOwners
            )
            .passed
        );
        o.cluster = "c2".into();
        assert!(
            !score_root_cause(
                &e,
                &[finding("OOMKilled", vec![o])],
                &[],
                "",
                "c1",
                &NoOwners
            )
            .passed
        );
    }

    #[test]
    fn suggested_target_points_too() {
        let e = expected(json!({"playbook": "none"}));
        let mut f = finding("OOMKilled", vec![]);
        f.suggests.push(PlaybookRef {
            name: "raise-memory-limit".into(),
            params: json!({}),
            target: Some(oref("Deployment", Some("search"), "indexer")),
        });
        assert!(score_root_cause(&e, &[f], &[], "", "c1", &NoOwners).passed);
    }

    fn proposal(playbook: &str, target: ObjectRef, params: serde_json::Value) -> Proposal {
        Proposal {
            id: "p1".into(),
            playbook: playbook.into(),
            params,
            target: Some(target),
            rationale: "because".into(),
            finding_ids: vec!["f1".into()],
        }
    }

    #[test]
    fn remediation_playbook_target_container() {
        let e = expected(json!({"playbook": "raise-memory-limit",
            "target": {"cluster": "c1", "kind": "Deployment", "namespace": "search", "name": "indexer", "container": "indexer"}}));
        let dep = oref("Deployment", Some("search"), "indexer");
        assert!(
            score_remediation(
                &e,
                &[proposal(
                    "raise-memory-limit",
                    dep.clone(),
                    json!({"container": "indexer"})
                )],
                "c1"
            )
            .passed
        );
        let v = score_remediation(
            &e,
            &[proposal(
                "raise-memory-limit",
                dep.clone(),
                json!({"container": "sidecar"}),
            )],
            "c1",
        );
        assert!(
            !v.passed && v.message.contains("(container sidecar)"),
            "{}",
            v.message
        );
        let v = score_remediation(&e, &[proposal("rollback", dep, json!({}))], "c1");
        assert!(
            v.message
                .contains("medic proposed rollback on c1:Deployment/search/indexer"),
            "{}",
            v.message
        );
        assert!(
            score_remediation(&e, &[], "c1")
                .message
                .contains("proposed nothing")
        );
    }

    #[test]
    fn remediation_none() {
        let e = expected(json!({"playbook": "none"}));
        assert!(score_remediation(&e, &[], "c1").passed);
        let v = score_remediation(
            &e,
            &[proposal(
                "rollout-restart",
                oref("Deployment", Some("web"), "api"),
                json!({}),
            )],
            "c1",
        );
        assert!(
            !v.passed
                && v.message
                    .contains("expected no remediation, medic proposed rollout-restart"),
            "{}",
            v.message
        );
    }
}
