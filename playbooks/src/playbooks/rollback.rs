//! rollback: pin a Deployment to the pod template of a chosen earlier ReplicaSet (by
//! revision and pod-template-hash, never "previous" blindly); for GitOps-managed workloads a
//! revert pull request instead, because the next sync would undo a live patch.

use medic_approvals::Risk;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Draft, PlanContext, Playbook, annotation, label};
use crate::error::{Error, Result};
use crate::plan::{BlastRadius, Plan, PostCheck, Precondition};
use crate::step::{Check, ObjectRef, Operation, PatchBody, RevertPr, Step};

/// Where the GitOps source of a workload lives, when not derivable from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    /// `owner/name` on GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Branch the GitOps tool syncs (default from the Argo CD Application, else `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The commit to revert (default: the `*/git-sha` annotation of the live pod template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Parameters of rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackParams {
    /// Cluster (kubeconfig context).
    pub cluster: String,
    /// Namespace of the Deployment.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// The earlier revision to return to (`deployment.kubernetes.io/revision` of its ReplicaSet).
    pub to_revision: u64,
    /// That ReplicaSet's `pod-template-hash`; must match, so the right template is pinned.
    pub pod_template_hash: String,
    /// GitOps source overrides (only used when the workload is GitOps-managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// Seconds the rollout may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
}

pub(crate) struct Rollback;

/// Why a workload is GitOps-managed, and what that tells about its source.
struct GitOps {
    tool: &'static str,
    why: String,
    repo: Option<String>,
    base: Option<String>,
}

fn github_repo(url: &str) -> Option<String> {
    let rest = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .split_once("github.com")?
        .1
        .trim_start_matches([':', '/']);
    let mut parts = rest.split('/');
    let (o, n) = (parts.next()?, parts.next()?);
    Some(format!("{o}/{n}"))
}

async fn detect_gitops(ctx: &PlanContext, cluster: &str, dep: &Value) -> Result<Option<GitOps>> {
    let name = dep["metadata"]["name"].as_str().unwrap_or_default();
    let ns = dep["metadata"]["namespace"].as_str().unwrap_or_default();
    if let Some(k) = label(dep, "kustomize.toolkit.fluxcd.io/name")
        .or_else(|| label(dep, "helm.toolkit.fluxcd.io/name"))
    {
        return Ok(Some(GitOps {
            tool: "Flux",
            why: format!(
                "it carries the Flux label of {k}, and Flux reconciles it back to what Git says"
            ),
            repo: None,
            base: None,
        }));
    }
    // Argo CD Applications whose synced resources include this Deployment.
    let conn = ctx.clusters.get(cluster)?;
    if let Ok(apps) = conn
        .list("argoproj.io/v1alpha1", "Application", None, None, None)
        .await
    {
        for app in apps {
            let listed = app["status"]["resources"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["kind"] == "Deployment" && r["name"] == name && r["namespace"] == ns)
            });
            if listed {
                let src = &app["spec"]["source"];
                return Ok(Some(GitOps {
                    tool: "Argo CD",
                    why: format!(
                        "Argo CD Application {} syncs it from Git",
                        app["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    repo: src["repoURL"].as_str().and_then(github_repo),
                    base: src["targetRevision"]
                        .as_str()
                        .filter(|r| *r != "HEAD")
                        .map(str::to_owned),
                }));
            }
        }
    }
    let argo_annotation = dep["metadata"]["annotations"].as_object().and_then(|m| {
        m.keys()
            .find(|k| k.starts_with("argocd.argoproj.io/"))
            .cloned()
    });
    if let Some(a) = argo_annotation {
        return Ok(Some(GitOps {
            tool: "Argo CD",
            why: format!(
                "it carries the Argo CD annotation {a}{}",
                label(dep, "app.kubernetes.io/instance")
                    .map(|i| format!(" (instance {i})"))
                    .unwrap_or_default()
            ),
            repo: None,
            base: None,
        }));
    }
    Ok(None)
}

/// What the failing template changed against the known-good one, for people: container
/// images, env values, commands and resources, container set; at most a handful of items.
fn template_change(good: &Value, bad: &Value) -> String {
    let containers = |t: &Value| -> Vec<Value> {
        t["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (good_cs, bad_cs) = (containers(good), containers(bad));
    let mut out = Vec::new();
    for b in &bad_cs {
        let name = b["name"].as_str().unwrap_or("?");
        let Some(g) = good_cs.iter().find(|g| g["name"] == b["name"]) else {
            out.push(format!("container {name} added"));
            continue;
        };
        if g["image"] != b["image"] {
            out.push(format!(
                "{name} image {} → {}",
                g["image"].as_str().unwrap_or("?"),
                b["image"].as_str().unwrap_or("?")
            ));
        }
        let env = |c: &Value| -> Vec<(String, Value)> {
            c["env"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .map(|v| {
                            let shown = if v["value"].is_null() && !v["valueFrom"].is_null() {
                                v["valueFrom"].clone()
                            } else {
                                v["value"].clone()
                            };
                            (v["name"].as_str().unwrap_or("?").to_owned(), shown)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (ge, be) = (env(g), env(b));
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "\"\"".to_owned(),
            other => other.to_string(),
        };
        for (k, v) in &be {
            match ge.iter().find(|(gk, _)| gk == k) {
                None => out.push(format!("{name} env {k}={} added", text(v))),
                Some((_, gv)) if gv != v => {
                    out.push(format!("{name} env {k} {} → {}", text(gv), text(v)))
                }
                Some(_) => {}
            }
        }
        for (k, _) in ge.iter().filter(|(k, _)| !be.iter().any(|(bk, _)| bk == k)) {
            out.push(format!("{name} env {k} removed"));
        }
        for field in ["command", "args", "resources", "envFrom", "volumeMounts"] {
            if g[field] != b[field] {
                out.push(format!("{name} {field} changed"));
            }
        }
    }
    for g in good_cs
        .iter()
        .filter(|g| !bad_cs.iter().any(|b| b["name"] == g["name"]))
    {
        out.push(format!(
            "container {} removed",
            g["name"].as_str().unwrap_or("?")
        ));
    }
    if out.is_empty() {
        return "the pod template outside its containers".to_owned();
    }
    const SHOWN: usize = 6;
    let more = out.len().saturating_sub(SHOWN);
    out.truncate(SHOWN);
    let mut text = out.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

fn git_sha(template: &Value) -> Option<String> {
    template["metadata"]["annotations"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.ends_with("/git-sha") || k.ends_with("/commit"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
}

impl Playbook for Rollback {
    const NAME: &'static str = "rollback";
    type Params = RollbackParams;

    fn description() -> &'static str {
        "Bad rollout: pin a Deployment to an earlier ReplicaSet template (revision + pod-template-hash); GitOps-managed: revert pull request instead."
    }

    async fn plan(ctx: &PlanContext, p: RollbackParams) -> Result<Plan> {
        let params = serde_json::to_value(&p).map_err(|e| Error::json("parameters", e))?;
        let conn = ctx.clusters.get(&p.cluster)?;
        let dep = conn
            .must_get("apps/v1", "Deployment", Some(&p.namespace), &p.deployment)
            .await?;
        let dep_ref = ObjectRef::of(&dep);
        let current_rev = annotation(&dep, "deployment.kubernetes.io/revision")
            .unwrap_or("?")
            .to_owned();
        if current_rev == p.to_revision.to_string() {
            return Err(Error::Precondition(format!(
                "{} is already at revision {}; choose an earlier revision",
                dep_ref.display(),
                p.to_revision
            )));
        }
        let uid = dep["metadata"]["uid"].as_str().unwrap_or_default();
        let sets = conn
            .list("apps/v1", "ReplicaSet", Some(&p.namespace), None, None)
            .await?;
        let owned: Vec<&Value> = sets
            .iter()
            .filter(|rs| {
                rs["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
            })
            .collect();
        let rs = owned
            .iter()
            .find(|rs| {
                annotation(rs, "deployment.kubernetes.io/revision")
                    == Some(p.to_revision.to_string().as_str())
            })
            .ok_or_else(|| {
                let have: Vec<String> = owned
                    .iter()
                    .map(|rs| {
                        format!(
                            "{} (revision {}, hash {})",
                            rs["metadata"]["name"].as_str().unwrap_or_default(),
                            annotation(rs, "deployment.kubernetes.io/revision").unwrap_or("?"),
                            label(rs, "pod-template-hash").unwrap_or("?")
                        )
                    })
                    .collect();
                Error::Precondition(format!(
                    "{} has no ReplicaSet at revision {}; its ReplicaSets are: {}",
                    dep_ref.display(),
                    p.to_revision,
                    have.join(", ")
                ))
            })?;
        let hash = label(rs, "pod-template-hash").unwrap_or_default();
        if hash != p.pod_template_hash {
            return Err(Error::Precondition(format!(
                "revision {} of {} has pod-template-hash {hash}, not {}; re-check which template you mean",
                p.to_revision,
                dep_ref.display(),
                p.pod_template_hash
            )));
        }
        let rs_name = rs["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut template = rs["spec"]["template"].clone();
        if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
            labels.shift_remove("pod-template-hash");
        }
        let replicas = dep["spec"]["replicas"].as_i64().unwrap_or(1);
        let deadline = p.deadline_seconds.unwrap_or(600);
        let image = |t: &Value| {
            t["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        };
        let (from_image, to_image) = (image(&dep["spec"]["template"]), image(&template));
        let changed = template_change(&template, &dep["spec"]["template"]);

        if let Some(g) = detect_gitops(ctx, &p.cluster, &dep).await? {
            let over = p.git.clone().unwrap_or(GitSource {
                repo: None,
                base: None,
                commit: None,
            });
            let repo = over
                .repo
                .or(g.repo)
                .or_else(|| annotation(&dep, "medic.dev/repo").map(str::to_owned))
                .ok_or_else(|| {
                    Error::params(
                        Self::NAME,
                        format!(
                            "{} is managed by {} but its Git repository is unknown; give git.repo",
                            dep_ref.display(),
                            g.tool
                        ),
                    )
                })?;
            let base = over.base.or(g.base).unwrap_or_else(|| "main".into());
            let commit = over.commit.or_else(|| git_sha(&dep["spec"]["template"])).ok_or_else(|| {
                Error::params(Self::NAME, "the commit to revert is unknown (no */git-sha annotation on the live template); give git.commit")
            })?;
            let gh = ctx.github.as_ref().ok_or_else(|| Error::Precondition(format!(
                "{} is managed by {}, so a revert pull request is needed, but no GitHub client is configured",
                dep_ref.display(), g.tool
            )))?;
            let base_sha = gh.branch_head(&repo, &base).await?;
            let short: String = commit.chars().take(10).collect();
            // Under later commits only the files the culprit changed are restored, and only
            // when no later commit touched them (revert_files refuses otherwise).
            let (files, under) = if base_sha == commit {
                (Vec::new(), String::new())
            } else {
                let r = gh.revert_files(&repo, &commit, &base_sha).await?;
                let under = format!(
                    " {short} is {} commit(s) behind the head of {base}; none of them touches the files it changed ({}), so the revert restores those files on top of {base} and keeps the later commits.",
                    r.later_commits,
                    r.files.join(", ")
                );
                (r.files, under)
            };
            let why = format!(
                "{} is managed by {} ({}); a live patch would be reverted by the next sync, so the fix goes through Git: revert {short}. The failing template changed: {changed}.{under}",
                dep_ref.display(),
                g.tool,
                g.why
            );
            let pr = RevertPr {
                repo: repo.clone(),
                base: base.clone(),
                base_sha: base_sha.clone(),
                commit: commit.clone(),
                files,
                branch: format!("medic/revert-{short}"),
                title: format!(
                    "Revert {short}: roll {} back to revision {}",
                    p.deployment, p.to_revision
                ),
                body: format!("Opened by medic after an approved rollback plan.\n\n{why}"),
            };
            return Draft {
                playbook: Self::NAME,
                cluster: p.cluster.clone(),
                title: format!(
                    "Revert {short} in {repo} to roll {} back",
                    dep_ref.display()
                ),
                rationale: why,
                params,
                steps: vec![Step {
                    cluster: p.cluster.clone(),
                    description: format!(
                        "open a pull request on {repo} ({base}) reverting {short}"
                    ),
                    op: Operation::RevertPullRequest(pr),
                }],
                undo: Vec::new(),
                risk: Risk::Medium,
                blast_radius: BlastRadius {
                    pods: replicas as u32,
                    replicas: replicas as u32,
                    traffic_share_percent: 0,
                    namespaces: vec![p.namespace.clone()],
                    nodes: Vec::new(),
                },
                extra_preconditions: vec![Precondition::BranchAt {
                    repo,
                    branch: base,
                    sha: base_sha,
                }],
                post_checks: Vec::new(),
            }
            .finish(ctx)
            .await;
        }

        let patch = PatchBody::Json(json!([
            {"op": "replace", "path": "/spec/template", "value": template},
        ]));
        let current_template = dep["spec"]["template"].clone();
        let step = Step {
            cluster: p.cluster.clone(),
            description: format!(
                "pin {} to the template of {rs_name} (revision {}, {to_image})",
                dep_ref.display(),
                p.to_revision
            ),
            op: Operation::Patch {
                target: dep_ref.clone(),
                patch,
                field_manager: ctx.field_manager.clone(),
            },
        };
        let undo = Step {
            cluster: p.cluster.clone(),
            description: format!("restore the template of revision {current_rev} ({from_image})"),
            op: Operation::Patch {
                target: dep_ref.unpinned(),
                patch: PatchBody::Json(
                    json!([{"op": "replace", "path": "/spec/template", "value": current_template}]),
                ),
                field_manager: ctx.field_manager.clone(),
            },
        };
        let check = Check::RolloutComplete {
            deployment: dep_ref.unpinned(),
            replicas,
        };
        Draft {
            playbook: Self::NAME,
            cluster: p.cluster.clone(),
            title: format!("Roll {} back to revision {} on {}", dep_ref.display(), p.to_revision, p.cluster),
            rationale: format!(
                "Revision {current_rev} ({from_image}) is failing; revision {} (ReplicaSet {rs_name}, pod-template-hash {hash}, {to_image}) is the chosen known-good template. The failing template changed: {changed}. Pinning the good one makes the Deployment controller roll back to it.",
                p.to_revision
            ),
            params,
            steps: vec![step],
            undo: vec![undo],
            risk: Risk::High,
            blast_radius: BlastRadius {
                pods: replicas as u32,
                replicas: replicas as u32,
                traffic_share_percent: 0,
                namespaces: vec![p.namespace.clone()],
                nodes: Vec::new(),
            },
            extra_preconditions: Vec::new(),
            post_checks: vec![PostCheck {
                cluster: p.cluster.clone(),
                description: check.describe(),
                check,
                deadline_seconds: deadline,
            }],
        }
        .finish(ctx)
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn repo_from_urls() {
        assert_eq!(
            github_repo("https://github.com/acme/gitops.git").as_deref(),
            Some("acme/gitops")
        );
        assert_eq!(
            github_repo("git@github.com:acme/gitops").as_deref(),
            Some("acme/gitops")
        );
        assert_eq!(github_repo("https://gitlab.com/acme/x"), None);
    }

    #[test]
    fn template_change_names_images_env_and_containers() {
        let good = serde_json::json!({"spec": {"containers": [
            {"name": "api", "image": "api:3.7.2", "env": [
                {"name": "FEATURE_STORE_MODE", "value": "standalone"},
                {"name": "OLD", "value": "1"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}]},
            {"name": "sidecar", "image": "envoy:1"}]}});
        let bad = serde_json::json!({"spec": {"containers": [
            {"name": "api", "image": "api:3.7.3", "args": ["--fast"], "env": [
                {"name": "FEATURE_STORE_MODE", "value": "cluster"},
                {"name": "NEW", "value": "2"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}]}]}});
        assert_eq!(
            template_change(&good, &bad),
            "api image api:3.7.2 → api:3.7.3; api env FEATURE_STORE_MODE standalone → cluster; \
             api env NEW=2 added; api env OLD removed; api args changed; container sidecar removed"
        );
        assert_eq!(
            template_change(&good, &good),
            "the pod template outside its containers"
        );
    }
}
