#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! Shared fixtures: identities, a policy, a test plan type and a fake access reviewer.

use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use medic_approvals::*;
use serde::{Deserialize, Serialize};

pub const IDENTITIES: &str = r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE, terminal: alice }
- { name: bob,   kube_user: bob@corp.example,   groups: [platform-leads], teams: "29:1bob" }
- { name: carol, kube_user: carol@corp.example, groups: [sre], slack: U03CAROL }
- { name: dave,  kube_user: dave@corp.example,  groups: [dev] }
- { name: bot,   kube_user: "system:serviceaccount:medic:runbooks" }
"#;

pub const POLICY: &str = r#"
version: 1
expiry: 15m
roles:
  - name: sre
    members: ["group:sre"]
    max_risk: high
  - name: leads
    members: [bob]
    max_risk: critical
thresholds:
  - name: two-person-rule
    min_risk: high
    approvals: 2
    from_roles: [sre, leads]
freezes:
  - name: payments-freeze
    start: "2026-06-24T00:00:00Z"
    end: "2026-06-25T00:00:00Z"
    namespaces: [payments]
    reason: quarter close
auto_approve:
  - runbook: crashloop
    playbooks: [rollout-restart]
    namespaces: [ai]
    max_risk: low
    run_as: bot
"#;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 23, 12, 0, 0).unwrap()
}

pub fn identities() -> IdentityMap {
    IdentityMap::from_yaml(IDENTITIES).unwrap()
}

pub fn policy() -> Policy {
    Policy::parse(POLICY, "policy.yaml", &identities()).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPlan {
    pub id: String,
    pub playbook: String,
    pub cluster: String,
    pub namespace: String,
    pub risk: Risk,
    pub steps: Vec<AccessCheck>,
    pub note: String,
}

impl Approvable for TestPlan {
    fn summary(&self) -> PlanSummary {
        PlanSummary {
            plan_id: self.id.clone(),
            hash: PlanHash::of(self).unwrap(),
            playbook: self.playbook.clone(),
            cluster: self.cluster.clone(),
            namespaces: vec![self.namespace.clone()],
            risk: self.risk,
            access: self.steps.clone(),
            title: format!("{} in {}", self.playbook, self.namespace),
        }
    }
}

pub fn check(verb: &str, resource: &str, sub: Option<&str>, ns: &str, name: &str) -> AccessCheck {
    AccessCheck {
        verb: verb.into(),
        group: if resource == "deployments" {
            "apps".into()
        } else {
            String::new()
        },
        resource: resource.into(),
        subresource: sub.map(str::to_owned),
        namespace: Some(ns.into()),
        name: Some(name.into()),
        cluster: None,
    }
}

pub fn plan(playbook: &str, ns: &str, risk: Risk) -> TestPlan {
    TestPlan {
        id: format!("plan-{playbook}-{ns}"),
        playbook: playbook.into(),
        cluster: "aks-eu-west".into(),
        namespace: ns.into(),
        risk,
        steps: vec![
            check("patch", "deployments", None, ns, "llama"),
            check("create", "pods", Some("eviction"), ns, "llama-0"),
        ],
        note: "x".into(),
    }
}

/// Denies (kube user, verb, resource) triples, and everything a (cluster, kube user) pair
/// in `deny_on` asks; allows everything else. Records every call and the cluster it went to.
#[derive(Default)]
pub struct FakeReviewer {
    pub deny: Vec<(String, String, String)>,
    pub deny_on: Vec<(String, String)>,
    pub calls: Mutex<Vec<(String, String, String)>>,
    pub clusters: Mutex<Vec<String>>,
}

impl AccessReviewer for FakeReviewer {
    async fn review(
        &self,
        cluster: &str,
        who: &KubeIdentity,
        check: &AccessCheck,
    ) -> Result<AccessVerdict> {
        // A check naming its cluster must be asked there; others go to the plan's cluster.
        assert_eq!(cluster, check.cluster.as_deref().unwrap_or("aks-eu-west"));
        let key = (who.user.clone(), check.verb.clone(), check.resource.clone());
        self.calls.lock().unwrap().push(key.clone());
        self.clusters.lock().unwrap().push(cluster.to_owned());
        let denied = self.deny.contains(&key)
            || self
                .deny_on
                .contains(&(cluster.to_owned(), who.user.clone()));
        Ok(AccessVerdict {
            allowed: !denied,
            reason: if denied {
                "RBAC: no rule allows it".into()
            } else {
                String::new()
            },
        })
    }
}

pub async fn book_with(dir: &std::path::Path, reviewer: FakeReviewer) -> ApprovalBook {
    ApprovalBook::open(dir, policy(), identities(), shared(reviewer))
        .await
        .unwrap()
}

pub async fn book(dir: &std::path::Path) -> ApprovalBook {
    book_with(dir, FakeReviewer::default()).await
}

pub fn actor(s: &str) -> Actor {
    s.parse().unwrap()
}
