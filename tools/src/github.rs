//! GitHub (or GitHub Enterprise, by base URL): recent commits, pull requests, releases and
//! deployments of the repository a workload names, and a summarised compare between two refs.
//!
//! The repository comes from the `repo` argument, the workload's `medic.dev/repo` annotation,
//! or the source `repoURL` of the Argo CD Application that deploys it.

use crate::context::ToolContext;
use crate::error::{Result, ToolError};
use crate::evidence::EvidenceRef;
use crate::k8s::types::short;
use crate::redact::clean;
use crate::tool::{Render, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The annotation naming a workload's repository (`owner/repo`).
pub const REPO_ANNOTATION: &str = "medic.dev/repo";

/// What to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum GitHubAction {
    Commits,
    Pulls,
    Releases,
    Deployments,
    Compare,
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// Sha.
    pub sha: String,
    /// First line of the message (cleaned).
    pub title: String,
    /// Author name.
    pub author: Option<String>,
    /// Author date.
    pub date: Option<String>,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pull {
    /// Number.
    pub number: u64,
    /// Title (cleaned).
    pub title: String,
    /// `open` / `closed`.
    pub state: String,
    /// Merged at.
    pub merged_at: Option<String>,
    /// Merge commit sha.
    pub merge_commit_sha: Option<String>,
    /// Author login.
    pub author: Option<String>,
    /// Last update.
    pub updated_at: Option<String>,
}

/// A release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Tag.
    pub tag: String,
    /// Name (cleaned).
    pub name: Option<String>,
    /// Published at.
    pub published_at: Option<String>,
    /// Pre-release.
    pub prerelease: bool,
}

/// A deployment record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Id.
    pub id: u64,
    /// Sha deployed.
    pub sha: String,
    /// Ref deployed.
    pub git_ref: String,
    /// Environment.
    pub environment: Option<String>,
    /// Created at.
    pub created_at: Option<String>,
    /// Creator login.
    pub creator: Option<String>,
}

/// One file of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path.
    pub filename: String,
    /// `added`, `modified`, `removed`, `renamed`.
    pub status: String,
    /// Lines added.
    pub additions: u64,
    /// Lines deleted.
    pub deletions: u64,
    /// Changed lines of the patch (`+`/`-` only, cleaned, trimmed).
    pub hunks: Vec<String>,
    /// Changed lines not shown.
    pub hunks_omitted: usize,
}

/// A comparison between two refs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Base ref.
    pub base: String,
    /// Head ref.
    pub head: String,
    /// `ahead`, `behind`, `diverged`, `identical`.
    pub status: String,
    /// Commits in head not in base.
    pub ahead_by: u64,
    /// Commits between.
    pub commits: Vec<Commit>,
    /// Files, most changed first.
    pub files: Vec<FileChange>,
}

/// Result of `github`.
#[derive(Debug, Clone, Serialize)]
pub struct GitHubOutput {
    /// `owner/repo`.
    pub repo: String,
    /// How the repository was found.
    pub repo_source: String,
    /// What was read.
    pub action: GitHubAction,
    /// Commits (newest first).
    pub commits: Vec<Commit>,
    /// Pull requests (recently updated first).
    pub pulls: Vec<Pull>,
    /// Releases (newest first).
    pub releases: Vec<Release>,
    /// Deployments (newest first).
    pub deployments: Vec<DeploymentRecord>,
    /// Comparison.
    pub compare: Option<Comparison>,
}

// Wire shapes of the GitHub REST API (only the fields used).
#[derive(Deserialize)]
struct WCommit {
    sha: String,
    commit: WCommitInner,
}
#[derive(Deserialize)]
struct WCommitInner {
    message: String,
    author: Option<WAuthor>,
}
#[derive(Deserialize)]
struct WAuthor {
    name: Option<String>,
    date: Option<String>,
}
#[derive(Deserialize)]
struct WUser {
    login: String,
}
#[derive(Deserialize)]
struct WPull {
    number: u64,
    title: String,
    state: String,
    merged_at: Option<String>,
    merge_commit_sha: Option<String>,
    user: Option<WUser>,
    updated_at: Option<String>,
}
#[derive(Deserialize)]
struct WRelease {
    tag_name: String,
    name: Option<String>,
    published_at: Option<String>,
    #[serde(default)]
    prerelease: bool,
}
#[derive(Deserialize)]
struct WDeployment {
    id: u64,
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    environment: Option<String>,
    created_at: Option<String>,
    creator: Option<WUser>,
}
#[derive(Deserialize)]
struct WCompare {
    status: String,
    ahead_by: u64,
    #[serde(default)]
    commits: Vec<WCommit>,
    #[serde(default)]
    files: Vec<WFile>,
}
#[derive(Deserialize)]
struct WFile {
    filename: String,
    status: String,
    additions: u64,
    deletions: u64,
    patch: Option<String>,
}

fn commit(c: WCommit) -> Commit {
    Commit {
        title: short(&clean(c.commit.message.lines().next().unwrap_or("")), 200),
        author: c.commit.author.as_ref().and_then(|a| a.name.clone()),
        date: c.commit.author.and_then(|a| a.date),
        sha: c.sha,
    }
}

/// Most changed lines kept per file.
const HUNK_LINES: usize = 12;

fn file(f: WFile) -> FileChange {
    let changed: Vec<String> = f
        .patch
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .map(|l| short(&clean(l), 160))
        .collect();
    let omitted = changed.len().saturating_sub(HUNK_LINES);
    FileChange {
        filename: clean(&f.filename),
        status: f.status,
        additions: f.additions,
        deletions: f.deletions,
        hunks: changed.into_iter().take(HUNK_LINES).collect(),
        hunks_omitted: omitted,
    }
}

/// Map an octocrab error to what the model may see.
fn gh_err(repo: &str, e: octocrab::Error) -> ToolError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let code = source.status_code.as_u16();
            let remaining = source
                .headers
                .as_ref()
                .and_then(|h| h.get("x-ratelimit-remaining"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let msg = clean(&source.message);
            if (code == 403 || code == 429)
                && (remaining.as_deref() == Some("0") || msg.to_lowercase().contains("rate limit"))
            {
                let reset = source
                    .rate_limit_reset
                    .map(|r| format!(" (resets at unix time {r})"))
                    .unwrap_or_default();
                ToolError::Upstream(format!(
                    "GitHub rate limit exhausted{reset}: {msg}; try again later or rely on cluster evidence"
                ))
            } else if code == 401 {
                ToolError::Forbidden(format!(
                    "GitHub rejected medic's token (401 {msg}); the operator must configure a valid GITHUB_TOKEN"
                ))
            } else if code == 403 {
                ToolError::Forbidden(format!("GitHub denied access to {repo} (403 {msg})"))
            } else if code == 404 {
                ToolError::NotFound(format!(
                    "GitHub has no {repo} or the ref does not exist (404 {msg}); check the owner/repo name or the refs"
                ))
            } else {
                ToolError::Upstream(format!("GitHub answered {code} for {repo}: {msg}"))
            }
        }
        other => ToolError::Upstream(format!("GitHub is unreachable for {repo}: {other}")),
    }
}

/// `owner/repo` from a URL such as `https://github.com/owner/repo.git` or `git@host:owner/repo`.
pub fn repo_from_url(url: &str) -> Option<String> {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let path = if let Some(rest) = u.split_once("://").map(|x| x.1) {
        rest.split_once('/')?.1.to_string()
    } else if let Some((_, p)) = u.split_once(':') {
        p.to_string()
    } else {
        u.to_string()
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (parts.len() >= 2).then(|| format!("{}/{}", parts[parts.len() - 2], parts[parts.len() - 1]))
}

fn valid_repo(r: &str) -> bool {
    let mut it = r.split('/');
    matches!((it.next(), it.next(), it.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty()
        && r.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)))
}

/// Find the repository of a Deployment: its `medic.dev/repo` annotation, else the Argo CD
/// Application that names it (same name, or listing it among its resources).
pub async fn repo_for_workload(
    ctx: &ToolContext,
    cluster: Option<&str>,
    ns: &str,
    name: &str,
) -> Result<(String, String)> {
    let c = ctx.cluster(cluster)?;
    let d: Option<k8s_openapi::api::apps::v1::Deployment> =
        crate::k8s::get(c, ns, name, "deployment").await.ok();
    if let Some(r) = d
        .as_ref()
        .and_then(|d| d.metadata.annotations.as_ref())
        .and_then(|a| a.get(REPO_ANNOTATION))
    {
        return Ok((
            r.clone(),
            format!("annotation {REPO_ANNOTATION} on Deployment {ns}/{name}"),
        ));
    }
    let apps = crate::k8s::list_dynamic(c, "argoproj.io", "Application", "Argo CD", None, None)
        .await
        .unwrap_or_default();
    for a in &apps {
        let app_name = a
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let manages = a
            .pointer("/status/resources")
            .and_then(|r| r.as_array())
            .is_some_and(|r| {
                r.iter().any(|x| {
                    x.get("name").and_then(|v| v.as_str()) == Some(name)
                        && x.get("namespace").and_then(|v| v.as_str()) == Some(ns)
                })
            });
        if (app_name == name || manages)
            && let Some(url) = a
                .pointer("/spec/source/repoURL")
                .or_else(|| a.pointer("/spec/sources/0/repoURL"))
                .and_then(|v| v.as_str())
            && let Some(r) = repo_from_url(url)
        {
            return Ok((r, format!("Argo CD Application {app_name} source repoURL")));
        }
    }
    Err(ToolError::NotFound(format!(
        "no repository known for workload {ns}/{name}: it has no `{REPO_ANNOTATION}` annotation and no Argo CD Application names it; pass `repo` as owner/repo"
    )))
}

/// Arguments of `github`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubArgs {
    /// What to read.
    pub action: GitHubAction,
    /// owner/repo; or give namespace+workload.
    pub repo: Option<String>,
    /// Cluster of the workload.
    pub cluster: Option<String>,
    /// Namespace of the workload.
    pub namespace: Option<String>,
    /// Deployment whose repo to use.
    pub workload: Option<String>,
    /// compare: base ref.
    pub base: Option<String>,
    /// compare: head ref.
    pub head: Option<String>,
    /// Items (default 10).
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u8>,
}

/// Read from GitHub.
pub async fn github(ctx: &ToolContext, a: &GitHubArgs) -> Result<GitHubOutput> {
    let gh = ctx.github.as_ref().ok_or_else(|| {
        ToolError::NotFound(
            "GitHub is not configured for this session; recent changes are unavailable".into(),
        )
    })?;
    let (repo, repo_source) = match (&a.repo, &a.namespace, &a.workload) {
        (Some(r), _, _) => (r.trim().to_string(), "argument".to_string()),
        (None, Some(ns), Some(w)) => repo_for_workload(ctx, a.cluster.as_deref(), ns, w).await?,
        _ => return Err(ToolError::InvalidArgs(
            "`repo` (owner/repo) is required, or `namespace` and `workload` naming a Deployment"
                .into(),
        )),
    };
    if !valid_repo(&repo) {
        return Err(ToolError::InvalidArgs(format!(
            "`repo` must look like owner/repo, found `{}`",
            short(&repo, 80)
        )));
    }
    let client = gh.client()?;
    let n = a.limit.unwrap_or(10).clamp(1, 50);
    let mut out = GitHubOutput {
        repo: repo.clone(),
        repo_source,
        action: a.action,
        commits: vec![],
        pulls: vec![],
        releases: vec![],
        deployments: vec![],
        compare: None,
    };
    let per_page = [("per_page", n.to_string())];
    let run = async {
        match a.action {
            GitHubAction::Commits => {
                let v: Vec<WCommit> = client
                    .get(format!("/repos/{repo}/commits"), Some(&per_page))
                    .await?;
                out.commits = v.into_iter().map(commit).collect();
            }
            GitHubAction::Pulls => {
                let q = [
                    ("state", "all".to_string()),
                    ("sort", "updated".into()),
                    ("direction", "desc".into()),
                    ("per_page", n.to_string()),
                ];
                let v: Vec<WPull> = client.get(format!("/repos/{repo}/pulls"), Some(&q)).await?;
                out.pulls = v
                    .into_iter()
                    .map(|p| Pull {
                        number: p.number,
                        title: short(&clean(&p.title), 200),
                        state: p.state,
                        merged_at: p.merged_at,
                        merge_commit_sha: p.merge_commit_sha,
                        author: p.user.map(|u| u.login),
                        updated_at: p.updated_at,
                    })
                    .collect();
            }
            GitHubAction::Releases => {
                let v: Vec<WRelease> = client
                    .get(format!("/repos/{repo}/releases"), Some(&per_page))
                    .await?;
                out.releases = v
                    .into_iter()
                    .map(|r| Release {
                        tag: clean(&r.tag_name),
                        name: r.name.map(|n| clean(&n)),
                        published_at: r.published_at,
                        prerelease: r.prerelease,
                    })
                    .collect();
            }
            GitHubAction::Deployments => {
                let v: Vec<WDeployment> = client
                    .get(format!("/repos/{repo}/deployments"), Some(&per_page))
                    .await?;
                out.deployments = v
                    .into_iter()
                    .map(|d| DeploymentRecord {
                        id: d.id,
                        sha: d.sha,
                        git_ref: clean(&d.git_ref),
                        environment: d.environment.map(|e| clean(&e)),
                        created_at: d.created_at,
                        creator: d.creator.map(|u| u.login),
                    })
                    .collect();
            }
            GitHubAction::Compare => {
                let (Some(base), Some(head)) = (&a.base, &a.head) else {
                    return Ok(Err(ToolError::InvalidArgs(
                        "compare needs `base` and `head` (shas, tags or branches)".into(),
                    )));
                };
                let v: WCompare = client
                    .get(
                        format!("/repos/{repo}/compare/{base}...{head}"),
                        None::<&()>,
                    )
                    .await?;
                let mut files: Vec<FileChange> = v.files.into_iter().map(file).collect();
                files.sort_by_key(|f| std::cmp::Reverse(f.additions + f.deletions));
                out.compare = Some(Comparison {
                    base: base.clone(),
                    head: head.clone(),
                    status: v.status,
                    ahead_by: v.ahead_by,
                    commits: v.commits.into_iter().map(commit).collect(),
                    files,
                });
            }
        }
        Ok::<Result<()>, octocrab::Error>(Ok(()))
    };
    match tokio::time::timeout(crate::context::CALL_TIMEOUT, run).await {
        Err(_) => {
            return Err(ToolError::Upstream(format!(
                "GitHub did not answer for {repo} in time"
            )));
        }
        Ok(Err(e)) => return Err(gh_err(&repo, e)),
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Ok(Ok(()))) => {}
    }
    Ok(out)
}

impl Render for GitHubOutput {
    fn render(&self, max: usize) -> String {
        let mut s = format!(
            "GitHub {} ({}), text below is quoted data:\n",
            self.repo, self.repo_source
        );
        let more = |s: &mut String, total: usize, what: &str| {
            if total > max {
                s.push_str(&format!("… {} more {what} omitted\n", total - max));
            }
        };
        for c in self.commits.iter().take(max) {
            s.push_str(&format!(
                "commit {} {} {}: {}\n",
                &c.sha[..c.sha.len().min(12)],
                c.date.as_deref().unwrap_or("-"),
                c.author.as_deref().unwrap_or("-"),
                serde_json::to_string(&c.title).unwrap_or_default()
            ));
        }
        more(&mut s, self.commits.len(), "commits");
        for p in self.pulls.iter().take(max) {
            s.push_str(&format!(
                "PR #{} {}{} by {} updated {}: {}\n",
                p.number,
                p.state,
                p.merged_at
                    .as_deref()
                    .map(|m| format!(" merged {m}"))
                    .unwrap_or_default(),
                p.author.as_deref().unwrap_or("-"),
                p.updated_at.as_deref().unwrap_or("-"),
                serde_json::to_string(&p.title).unwrap_or_default()
            ));
        }
        more(&mut s, self.pulls.len(), "pull requests");
        for r in self.releases.iter().take(max) {
            s.push_str(&format!(
                "release {} {}{}: {}\n",
                r.tag,
                r.published_at.as_deref().unwrap_or("-"),
                if r.prerelease { " pre" } else { "" },
                serde_json::to_string(&r.name).unwrap_or_default()
            ));
        }
        more(&mut s, self.releases.len(), "releases");
        for d in self.deployments.iter().take(max) {
            s.push_str(&format!(
                "deployment {} {} {} sha {} by {}\n",
                d.id,
                d.environment.as_deref().unwrap_or("-"),
                d.created_at.as_deref().unwrap_or("-"),
                &d.sha[..d.sha.len().min(12)],
                d.creator.as_deref().unwrap_or("-")
            ));
        }
        more(&mut s, self.deployments.len(), "deployments");
        if let Some(c) = &self.compare {
            let (adds, dels): (u64, u64) = c
                .files
                .iter()
                .fold((0, 0), |a, f| (a.0 + f.additions, a.1 + f.deletions));
            s.push_str(&format!(
                "compare {}...{}: {} ahead {} commits, {} files +{adds} -{dels}\n",
                c.base,
                c.head,
                c.status,
                c.ahead_by,
                c.files.len()
            ));
            for cm in c.commits.iter().take(max) {
                s.push_str(&format!(
                    "  commit {} {}\n",
                    &cm.sha[..cm.sha.len().min(12)],
                    serde_json::to_string(&cm.title).unwrap_or_default()
                ));
            }
            for f in c.files.iter().take(max) {
                s.push_str(&format!(
                    "  {} {} +{} -{}\n",
                    f.status, f.filename, f.additions, f.deletions
                ));
                for h in f
                    .hunks
                    .iter()
                    .take(if max >= 8 { HUNK_LINES } else { max.min(3) })
                {
                    s.push_str(&format!(
                        "    {}\n",
                        serde_json::to_string(h).unwrap_or_default()
                    ));
                }
                let hidden = f.hunks_omitted
                    + f.hunks
                        .len()
                        .saturating_sub(if max >= 8 { HUNK_LINES } else { max.min(3) });
                if hidden > 0 {
                    s.push_str(&format!("    … {hidden} more changed lines\n"));
                }
            }
            if c.files.len() > max {
                s.push_str(&format!(
                    "  … {} more files omitted (smaller changes)\n",
                    c.files.len() - max
                ));
            }
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        let e = |item: &str, id: String| EvidenceRef::GitHub {
            repo: self.repo.clone(),
            item: item.into(),
            id,
        };
        let mut v: Vec<EvidenceRef> = self
            .commits
            .iter()
            .take(5)
            .map(|c| e("commit", c.sha.clone()))
            .collect();
        v.extend(
            self.pulls
                .iter()
                .take(5)
                .map(|p| e("pull", p.number.to_string())),
        );
        v.extend(
            self.releases
                .iter()
                .take(3)
                .map(|r| e("release", r.tag.clone())),
        );
        v.extend(
            self.deployments
                .iter()
                .take(3)
                .map(|d| e("deployment", d.id.to_string())),
        );
        if let Some(c) = &self.compare {
            v.push(e("compare", format!("{}...{}", c.base, c.head)));
        }
        v
    }
}

/// `github`.
pub struct GitHubTool;

impl Tool for GitHubTool {
    const NAME: &'static str = "github";
    type Args = GitHubArgs;
    type Output = GitHubOutput;
    fn description() -> &'static str {
        "Recent commits, PRs, releases or deployments of a repo (or a Deployment's repo), or a diff between two refs."
    }
    async fn call(&self, ctx: &ToolContext, a: GitHubArgs) -> Result<GitHubOutput> {
        github(ctx, &a).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn repo_urls() {
        assert_eq!(
            repo_from_url("https://github.com/acme/api.git").as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            repo_from_url("git@github.com:acme/api.git").as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            repo_from_url("https://ghe.corp.example/platform/charts/").as_deref(),
            Some("platform/charts")
        );
        assert!(repo_from_url("nothing").is_none());
        assert!(
            valid_repo("acme/api")
                && !valid_repo("acme")
                && !valid_repo("a/b/c")
                && !valid_repo("a/b?x=1")
        );
    }
}
