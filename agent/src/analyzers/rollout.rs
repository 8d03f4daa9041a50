//! The bad-rollout failure class: the newest ReplicaSet of a Deployment does not become
//! ready while an older revision served. The rollback it suggests pins the last healthy
//! ReplicaSet by revision and `pod-template-hash`; when GitHub knows the workload's
//! repository, the commit that most likely broke it is named (a second, follow-up pass
//! reads the repository's commits and deployments).

use super::{Analyzer, FindingBuilder, Item, Observations, obj, pods, workloads};
use crate::protocol::{Confidence, EvidenceRef, Finding};
use medic_tools::github::{Commit, GitHubAction, GitHubOutput, REPO_ANNOTATION};
use medic_tools::k8s::core::WorkloadSummary;
use medic_tools::k8s::types::Health;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// Commits read when looking for the culprit.
const COMMITS_READ: u8 = 30;

pub(crate) struct BadRollout;

fn revision(w: &WorkloadSummary) -> i64 {
    w.revision
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A ReplicaSet's `pod-template-hash`: from its selector, else its name's suffix.
pub(crate) fn template_hash(deployment: &str, rs: &WorkloadSummary) -> Option<String> {
    rs.selector
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("pod-template-hash="))
        .map(str::to_string)
        .or_else(|| {
            rs.name
                .strip_prefix(deployment)
                .and_then(|s| s.strip_prefix('-'))
                .filter(|h| !h.is_empty())
                .map(str::to_string)
        })
}

/// The tag of an image reference (`repo/x:v1.4.2` → `v1.4.2`).
fn tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next()?;
    let tag = last.split('@').next()?.split_once(':')?.1;
    (!tag.is_empty()).then_some(tag)
}

/// ReplicaSets of each Deployment, keyed by (cluster, namespace, deployment).
type Sets<'a> = HashMap<(&'a str, &'a str, &'a str), Vec<&'a WorkloadSummary>>;

fn replica_sets<'a>(obs: &'a Observations<'a>) -> Sets<'a> {
    let mut sets: Sets<'a> = HashMap::new();
    for (i, w) in workloads(obs) {
        if w.kind != "ReplicaSet" {
            continue;
        }
        if let Some(o) = w.owner.as_ref().filter(|o| o.kind == "Deployment") {
            sets.entry((i.cluster, w.namespace.as_str(), o.name.as_str()))
                .or_default()
                .push(w);
        }
    }
    for v in sets.values_mut() {
        v.sort_by_key(|w| std::cmp::Reverse(revision(w)));
    }
    sets
}

/// Broken pods and their crash messages, per (cluster, namespace, ReplicaSet).
struct Broken<'a> {
    pods: Vec<&'a str>,
    messages: Vec<String>,
}

fn broken_pods<'a>(obs: &'a Observations<'a>) -> HashMap<(&'a str, &'a str, &'a str), Broken<'a>> {
    let mut out: HashMap<(&str, &str, &str), Broken<'_>> = HashMap::new();
    for (i, p) in pods(obs) {
        let Some(owner) = p.owner.as_ref() else {
            continue;
        };
        if p.health() != Health::Broken {
            continue;
        }
        let b = out
            .entry((i.cluster, p.namespace.as_str(), owner.name.as_str()))
            .or_insert_with(|| Broken {
                pods: Vec::new(),
                messages: Vec::new(),
            });
        b.pods.push(p.name.as_str());
        for c in &p.containers {
            if let Some(m) = c.last_terminated.as_ref().and_then(|t| t.message.clone()) {
                b.messages.push(m);
            }
            if let Some(m) = &c.message {
                b.messages.push(m.clone());
            }
        }
    }
    out
}

/// The last healthy ReplicaSet older than `newest`: one serving all its replicas, else the
/// newest older revision whose pods are not broken.
fn last_healthy<'a>(
    sets: &[&'a WorkloadSummary],
    broken: &HashMap<(&str, &str, &str), Broken<'_>>,
    cluster: &str,
) -> Option<&'a WorkloadSummary> {
    let older = || sets.iter().skip(1).copied();
    older()
        .find(|w| w.desired > 0 && w.ready >= w.desired)
        .or_else(|| {
            older()
                .find(|w| !broken.contains_key(&(cluster, w.namespace.as_str(), w.name.as_str())))
        })
}

impl Analyzer for BadRollout {
    fn name(&self) -> &'static str {
        "bad-rollout"
    }

    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let sets = replica_sets(obs);
        let broken = broken_pods(obs);
        for (item, d) in workloads(obs).filter(|(_, w)| w.kind == "Deployment") {
            let Some(sets) = sets.get(&(item.cluster, d.namespace.as_str(), d.name.as_str()))
            else {
                continue;
            };
            let Some(newest) = sets.first() else { continue };
            let Some(good) = last_healthy(sets, &broken, item.cluster) else {
                continue;
            };
            if newest.desired == 0 {
                continue;
            }
            let bad = broken.get(&(item.cluster, d.namespace.as_str(), newest.name.as_str()));
            let stalled = d.conditions.iter().any(|c| {
                c.type_ == "Progressing"
                    && (c.status == "False"
                        || c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            });
            // A mostly-ready new revision is not a bad rollout (one pod on a failed node is
            // not) — unless its own pods say otherwise while the rollout is stalled (the
            // ReplicaSet's counters can lag behind its crashing pods).
            let broken_new = bad.map_or(0, |b| b.pods.len());
            let failing = newest.ready * 2 <= newest.desired
                || (stalled && broken_new > 0)
                || broken_new * 2 > newest.desired as usize;
            if !failing {
                continue;
            }
            if bad.is_none() && !stalled {
                continue;
            }
            // The newest revision finished rolling out earlier: pods that break now were
            // broken by something else (a ConfigMap, a node), not by this rollout.
            let completed = d.conditions.iter().any(|c| {
                c.type_ == "Progressing"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            });
            if completed {
                continue;
            }
            out.push(self.finding(obs, &item, d, newest, good, bad));
        }
        out
    }

    fn follow_ups(
        &self,
        findings: &[Finding],
        obs: &Observations<'_>,
        tools: &[&str],
    ) -> Vec<(String, Value)> {
        if !tools.contains(&"github") {
            return Vec::new();
        }
        let mut calls = Vec::new();
        for f in findings.iter().filter(|f| f.id.starts_with("bad-rollout:")) {
            let Some(t) = f.suggests.first().and_then(|s| s.target.as_ref()) else {
                continue;
            };
            let has_repo = workloads(obs).any(|(i, w)| {
                i.cluster == t.cluster
                    && w.kind == "Deployment"
                    && Some(&w.namespace) == t.namespace.as_ref()
                    && w.name == t.name
                    && (w.annotations.contains_key(REPO_ANNOTATION)
                        || argo_app(obs, i.cluster, w).is_some())
            });
            if !has_repo {
                continue;
            }
            for action in ["commits", "deployments"] {
                calls.push((
                    "github".to_string(),
                    json!({"action": action, "cluster": t.cluster, "namespace": t.namespace,
                           "workload": t.name, "limit": COMMITS_READ}),
                ));
            }
        }
        calls
    }
}

impl BadRollout {
    fn finding(
        &self,
        obs: &Observations<'_>,
        item: &Item<'_>,
        d: &WorkloadSummary,
        newest: &WorkloadSummary,
        good: &WorkloadSummary,
        bad: Option<&Broken<'_>>,
    ) -> Finding {
        let target = obj(item.cluster, "Deployment", Some(&d.namespace), &d.name);
        let images_new = newest.images.join(", ");
        let images_old = good.images.join(", ");
        let app = argo_app(obs, item.cluster, d);
        let repo = d.annotations.get(REPO_ANNOTATION).cloned().or_else(|| {
            app.and_then(|(_, a)| a.repo_url.as_deref())
                .and_then(medic_tools::github::repo_from_url)
        });
        let culprit = repo
            .as_deref()
            .and_then(|repo| culprit(obs, repo, d, newest, good, bad));
        let mut root_cause = format!(
            "revision {} ({images_new}) does not become ready; revision {} ({images_old}) is the last known-good template",
            revision(newest),
            revision(good)
        );
        if let Some(c) = &culprit {
            root_cause.push_str(&format!("; {}", c.sentence()));
        }
        let mut b = FindingBuilder::new(
            self.name(),
            &target,
            format!(
                "rollout of {}/{} revision {} is failing ({}/{} ready)",
                d.namespace,
                d.name,
                revision(newest),
                newest.ready,
                newest.desired
            ),
            root_cause,
        )
        .confidence(if bad.is_none() {
            Confidence::MEDIUM
        } else {
            Confidence::HIGH
        })
        .call(item.call_id, "k8s_list")
        .object(obj(
            item.cluster,
            "ReplicaSet",
            Some(&d.namespace),
            &newest.name,
        ))
        .object(obj(
            item.cluster,
            "ReplicaSet",
            Some(&d.namespace),
            &good.name,
        ));
        if let Some(p) = bad.and_then(|b| b.pods.first()) {
            b = b.object(obj(item.cluster, "Pod", Some(&d.namespace), p));
        }
        if let Some(m) = bad.and_then(|b| b.messages.first()) {
            b = b.quote(m.trim().to_string());
        }
        if let Some(repo) = d.annotations.get(REPO_ANNOTATION) {
            b = b.quote(format!("workload source repository: {repo}"));
        }
        let mut params = json!({"to_revision": revision(good)});
        if let Some(h) = template_hash(&d.name, good) {
            params["pod_template_hash"] = json!(h);
        }
        // GitOps-managed: the rollback is a revert of the culprit commit (not the
        // Application's current revision, which may be a later, unrelated sync).
        if let Some((app_call, a)) = app {
            b = b.call(app_call, "k8s_list").object(obj(
                item.cluster,
                "Application",
                Some(&a.namespace),
                &a.name,
            ));
            if let Some(c) = culprit.as_ref().filter(|c| c.matched) {
                params["git"] = json!({"commit": c.commit.sha});
            }
        }
        let mut f = b.suggest("rollback", params, Some(target.clone())).build();
        if let Some(c) = culprit {
            f.evidence.insert(
                1,
                EvidenceRef::ToolCall {
                    call_id: c.call_id.clone(),
                    tool: "github".into(),
                },
            );
            f.evidence
                .push(EvidenceRef::Source(medic_tools::EvidenceRef::GitHub {
                    repo: c.repo.clone(),
                    item: "commit".into(),
                    id: c.commit.sha.clone(),
                }));
            f.evidence.push(EvidenceRef::Quote { text: c.quote() });
        }
        f
    }
}

/// The Argo CD Application that deploys `d`: named by its tracking-id annotation, else an
/// Application of the same name targeting its namespace.
fn argo_app<'a>(
    obs: &'a Observations<'a>,
    cluster: &str,
    d: &WorkloadSummary,
) -> Option<(&'a str, &'a medic_tools::k8s::crd::ApplicationSummary)> {
    let tracked = d
        .annotations
        .get("argocd.argoproj.io/tracking-id")
        .and_then(|t| t.split(':').next())
        .or_else(|| {
            d.labels
                .get("argocd.argoproj.io/instance")
                .map(String::as_str)
        });
    obs.summaries().find_map(|i| {
        let medic_tools::k8s::tools::Summary::Application(a) = i.summary else {
            return None;
        };
        let dest_ns = a.destination.as_deref().and_then(|x| x.rsplit('/').next());
        let ours = match tracked {
            Some(t) => a.name == t,
            None => a.name == d.name && dest_ns == Some(d.namespace.as_str()),
        };
        (i.cluster == cluster && ours).then_some((i.call_id, a))
    })
}

/// The commit named by a bad-rollout finding.
struct Culprit {
    repo: String,
    call_id: String,
    commit: Commit,
    /// `true`: its title matches the crash; `false`: it is only the deployed commit.
    matched: bool,
}

impl Culprit {
    fn short(&self) -> &str {
        &self.commit.sha[..self.commit.sha.len().min(10)]
    }

    fn quote(&self) -> String {
        format!(
            "commit {} \"{}\" by {} at {}",
            self.short(),
            self.commit.title,
            self.commit.author.as_deref().unwrap_or("unknown author"),
            self.commit.date.as_deref().unwrap_or("unknown time")
        )
    }

    fn sentence(&self) -> String {
        if self.matched {
            format!(
                "the likely culprit is {} in {}, which matches the crash message",
                self.quote(),
                self.repo
            )
        } else {
            format!("the rollout deployed {} in {}", self.quote(), self.repo)
        }
    }
}

/// Find the commit that broke the rollout: among the commits between the last healthy
/// deployment and the failing one, the one whose title shares the most words with the
/// crash messages; else the deployed commit itself.
fn culprit(
    obs: &Observations<'_>,
    repo: &str,
    d: &WorkloadSummary,
    newest: &WorkloadSummary,
    good: &WorkloadSummary,
    bad: Option<&Broken<'_>>,
) -> Option<Culprit> {
    let mut commits: Option<(&str, &[Commit])> = None;
    let mut deployments = None;
    for (id, o) in obs.outputs::<GitHubOutput>() {
        if o.repo != repo {
            continue;
        }
        match o.action {
            GitHubAction::Commits if !o.commits.is_empty() => {
                commits = Some((id, o.commits.as_slice()));
            }
            GitHubAction::Deployments => deployments = Some(o.deployments.as_slice()),
            _ => {}
        }
    }
    let (call_id, commits) = commits?;
    let deployments = deployments.unwrap_or_default();
    let find = |sha: &str| {
        commits
            .iter()
            .position(|c| !sha.is_empty() && (c.sha.starts_with(sha) || sha.starts_with(&c.sha)))
    };
    let by_tag = |w: &WorkloadSummary| {
        w.images.iter().filter_map(|i| tag(i)).find_map(|t| {
            deployments
                .iter()
                .find(|dep| dep.git_ref == t)
                .map(|dep| dep.sha.clone())
        })
    };
    let annotated = d
        .annotations
        .iter()
        .find(|(k, _)| k.ends_with("/git-sha") || k.ends_with("/commit"))
        .map(|(_, v)| v.clone());
    let new_sha = annotated
        .or_else(|| by_tag(newest))
        .or_else(|| deployments.first().map(|dep| dep.sha.clone()));
    let (head, end) = match new_sha.and_then(|s| find(&s)) {
        Some(head) => {
            let old_sha = by_tag(good).or_else(|| {
                let at = deployments
                    .iter()
                    .position(|dep| find(&dep.sha) == Some(head))?;
                deployments.get(at + 1).map(|dep| dep.sha.clone())
            });
            // Commits newest first: the window is [deployed, last good).
            let end = old_sha
                .and_then(|s| find(&s))
                .filter(|&e| e > head)
                .unwrap_or(head + 1);
            (head, end)
        }
        // No record of what was deployed (GitOps syncs): the commits made between the last
        // healthy ReplicaSet and the failing one.
        None => {
            let (from, to) = (
                time(good.created.as_deref())?,
                time(newest.created.as_deref())?,
            );
            let inside: Vec<usize> = commits
                .iter()
                .enumerate()
                .filter(|(_, c)| time(c.date.as_deref()).is_some_and(|t| t > from && t <= to))
                .map(|(i, _)| i)
                .collect();
            (*inside.first()?, *inside.last()? + 1)
        }
    };
    let crash: BTreeSet<String> = bad
        .map(|b| b.messages.iter().flat_map(|m| words(m)).collect())
        .unwrap_or_default();
    let mut best: Option<(usize, usize)> = None;
    let mut tie = false;
    for (i, c) in commits[head..end].iter().enumerate() {
        let score: usize = words(&c.title)
            .iter()
            .filter(|w| crash.contains(*w))
            .map(|w| if w.contains(['.', '_']) { 3 } else { 1 })
            .sum();
        match best {
            Some((_, s)) if score == s => tie = true,
            Some((_, s)) if score < s => {}
            _ => {
                best = Some((head + i, score));
                tie = false;
            }
        }
    }
    let (at, matched) = match best {
        Some((at, score)) if score >= 2 && !tie => (at, true),
        _ => (head, false),
    };
    Some(Culprit {
        repo: repo.to_string(),
        call_id: call_id.to_string(),
        commit: commits[at].clone(),
        matched,
    })
}

fn time(s: Option<&str>) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s?).ok()
}

/// Distinctive words of a text, lowercased: dotted / underscored identifiers whole and in
/// parts; common words dropped.
fn words(text: &str) -> BTreeSet<String> {
    const COMMON: &[&str] = &[
        "the", "and", "for", "with", "from", "into", "this", "that", "was", "were", "not", "are",
        "has", "have", "use", "add", "fix", "bump", "line", "error", "failed",
    ];
    let mut out = BTreeSet::new();
    let lower = text.to_lowercase();
    for raw in lower.split(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        let w = raw.trim_matches(|c: char| matches!(c, '.' | '_' | '-'));
        if w.len() < 3 {
            continue;
        }
        if w.contains(['.', '_', '-']) {
            out.insert(w.to_string());
            for part in w.split(['.', '_', '-']) {
                if part.len() >= 3 && !COMMON.contains(&part) {
                    out.insert(part.to_string());
                }
            }
        } else if !COMMON.contains(&w) && !w.chars().all(|c| c.is_ascii_digit()) {
            out.insert(w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_identifiers_whole_and_split() {
        let w = words("config: unknown key \"payments.retry_budget_ms\" (line 9)");
        for expected in [
            "config",
            "unknown",
            "key",
            "payments.retry_budget_ms",
            "retry",
            "budget",
        ] {
            assert!(w.contains(expected), "{expected} in {w:?}");
        }
        assert!(!w.contains("line"));
    }

    #[test]
    fn image_tags() {
        assert_eq!(
            tag("europe-west1-docker.pkg.dev/acme/api:v1.4.2"),
            Some("v1.4.2")
        );
        assert_eq!(tag("registry:5000/api"), None);
        assert_eq!(tag("api@sha256:abc"), None);
    }
}
