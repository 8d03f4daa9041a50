#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! Shared fixtures: a sandbox for a bundle, clusters built from its kubeconfig, an approval
//! book with the bundle's identities, and request-log helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use medic_approvals::audit::{AuditRecord, ExportFilter, RecordKind, export, verify};
use medic_approvals::{
    Actor, ApprovalBook, Approved, Decision, IdentityEntry, IdentityMap, KubeAccessReviewer,
    KubeIdentity, Outcome, Policy, shared,
};
use medic_playbooks::{ClusterSpec, Clusters, Executor, Plan, PlanContext};
use medic_sandbox::{Bundle, RequestRecord, Sandbox, SandboxHandle, SandboxOptions};

pub const POLICY: &str = r#"
version: 1
expiry: 15m
roles:
  - name: sre
    members: ["group:sre"]
    max_risk: critical
  - name: platform-leads
    members: ["group:platform-leads"]
    max_risk: critical
  - name: developers
    members: ["group:developers"]
    max_risk: critical
"#;

pub fn bundle_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sandbox/bundles")
        .join(name)
}

pub struct World {
    pub sandbox: SandboxHandle,
    pub bundle: Bundle,
    pub clusters: Clusters,
    pub identities: IdentityMap,
    pub dir: tempfile::TempDir,
}

pub fn crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn world(bundle: &str) -> World {
    world_from(&bundle_dir(bundle)).await
}

pub async fn world_from(dir: &Path) -> World {
    crypto();
    let bundle = Bundle::load(dir).unwrap();
    let sandbox = Sandbox::start(&bundle, SandboxOptions::default())
        .await
        .unwrap();
    let specs = bundle
        .scenario
        .clusters
        .iter()
        .map(|c| ClusterSpec {
            name: c.name.clone(),
            labels: c.labels.clone(),
        })
        .collect();
    let clusters = Clusters::from_kubeconfig(sandbox.kubeconfig_path(), specs)
        .await
        .unwrap();
    let entries = bundle
        .scenario
        .identities
        .iter()
        .map(|i| IdentityEntry {
            name: i.name.clone(),
            kube_user: i.kube_user.clone(),
            groups: i.groups.clone(),
            slack: i.slack.clone(),
            teams: i.teams.clone(),
            terminal: Some(i.name.clone()),
            agent: i.agent,
        })
        .collect();
    let identities = IdentityMap::new(entries).unwrap();
    World {
        sandbox,
        bundle,
        clusters,
        identities,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl World {
    pub fn now(&self) -> DateTime<Utc> {
        self.sandbox.now()
    }

    pub fn kube(&self, name: &str) -> KubeIdentity {
        self.identities.by_name(name).unwrap().kube.clone()
    }

    pub fn ctx(&self) -> PlanContext {
        let mut ctx = PlanContext::new(self.clusters.clone(), self.now());
        ctx.dry_run_as = Some(self.kube("alice"));
        ctx
    }

    pub async fn book(&self, policy: &str) -> Arc<ApprovalBook> {
        self.book_in(self.dir.path(), policy).await
    }

    pub async fn book_in(&self, dir: &Path, policy: &str) -> Arc<ApprovalBook> {
        let policy = Policy::parse(policy, "policy.yaml", &self.identities).unwrap();
        let mut reviewer = KubeAccessReviewer::new();
        for c in self.clusters.iter() {
            reviewer = reviewer.with_cluster(c.spec.name.clone(), c.client().clone());
        }
        Arc::new(
            ApprovalBook::open(dir, policy, self.identities.clone(), shared(reviewer))
                .await
                .unwrap(),
        )
    }

    pub fn executor(&self, book: &Arc<ApprovalBook>) -> Executor {
        let now = self.now();
        Executor::new(self.clusters.clone(), book.clone()).with_clock(move || now)
    }

    /// Non-dry-run writes (everything but GETs, SubjectAccessReviews and dry-runs).
    pub fn mutations(&self) -> Vec<RequestRecord> {
        self.sandbox
            .request_log()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.verb.as_str(),
                    "create" | "patch" | "update" | "delete" | "deletecollection"
                )
            })
            .filter(|r| !r.dry_run && r.resource != "subjectaccessreviews")
            .collect()
    }

    pub fn successful_mutations(&self) -> Vec<RequestRecord> {
        self.mutations()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

pub fn actor(s: &str) -> Actor {
    s.parse().unwrap()
}

/// Requests approval (by `requester`) and approves it by `approver`.
pub async fn approve(
    book: &ApprovalBook,
    plan: &Plan,
    requester: &str,
    approver: &str,
    now: DateTime<Utc>,
) -> Approved<Plan> {
    let req = book.request(plan, &actor(requester), now).await.unwrap();
    match book
        .decide::<Plan>(
            &req.id,
            &actor(approver),
            Decision::Approve,
            &req.plan_hash,
            now,
        )
        .await
        .unwrap()
    {
        Outcome::Approved(a) => *a,
        other => panic!("expected approval, got {}", other.describe()),
    }
}

pub fn records(book: &ApprovalBook, approval_id: &str) -> Vec<AuditRecord> {
    let filter = ExportFilter {
        approval: Some(approval_id.to_owned()),
        ..Default::default()
    };
    export(book.audit().path(), filter)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

pub fn kinds(records: &[AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.kind.to_string()).collect()
}

pub fn count(records: &[AuditRecord], kind: RecordKind) -> usize {
    records.iter().filter(|r| r.kind == kind).count()
}

pub fn assert_verified(book: &ApprovalBook) {
    let report = verify(book.audit().path()).unwrap();
    assert!(
        report.is_ok(),
        "audit verify failed: {:?}",
        report.first_broken
    );
}

/// A client authenticated as a bundle identity (its own token, no impersonation).
pub async fn client_as(w: &World, cluster: &str, identity: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(w.sandbox.kubeconfig_path()).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some(cluster.into()),
        user: Some(identity.into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

pub fn policy_with(extra: &str) -> String {
    format!("{POLICY}{extra}")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
