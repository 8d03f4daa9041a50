//! GitHub, for GitOps-managed workloads: the branch head (a plan precondition) and a revert
//! pull request built with the Git data API (new commit whose tree is the reverted
//! commit's parent tree, on a new branch, then a pull request).
//!
//! The base URL is configurable so tests (and GitHub Enterprise) point it elsewhere.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::step::RevertPr;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A GitHub API client.
#[derive(Clone)]
pub struct GitHub {
    crab: octocrab::Octocrab,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").finish_non_exhaustive()
    }
}

/// A pull request medic opened (or found already open after a crash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PullRef {
    /// Pull request number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
    /// The revert commit.
    pub commit: String,
}

fn fail(doing: &str, e: impl std::fmt::Display) -> Error {
    Error::GitHub {
        doing: doing.to_owned(),
        message: e.to_string(),
    }
}

impl GitHub {
    /// A client for `base_url` (e.g. `https://api.github.com`) with an optional token.
    pub fn new(base_url: &str, token: Option<String>) -> Result<GitHub> {
        let mut b = octocrab::Octocrab::builder()
            .base_uri(base_url)
            .map_err(|e| fail("configuring the base URL", e))?;
        if let Some(t) = token {
            b = b.personal_token(t);
        }
        let crab = b.build().map_err(|e| fail("building the client", e))?;
        Ok(GitHub { crab })
    }

    async fn get(&self, doing: &str, route: String) -> Result<Value> {
        tokio::time::timeout(TIMEOUT, self.crab.get::<Value, _, ()>(route, None))
            .await
            .map_err(|_| fail(doing, format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| fail(doing, e))
    }

    async fn post(&self, doing: &str, route: String, body: Value) -> Result<Value> {
        tokio::time::timeout(TIMEOUT, self.crab.post::<Value, Value>(route, Some(&body)))
            .await
            .map_err(|_| fail(doing, format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| fail(doing, e))
    }

    /// The commit `branch` of `repo` points at.
    pub async fn branch_head(&self, repo: &str, branch: &str) -> Result<String> {
        let doing = format!("reading branch {branch} of {repo}");
        let v = self
            .get(&doing, format!("/repos/{repo}/git/ref/heads/{branch}"))
            .await?;
        v["object"]["sha"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail(&doing, "the answer has no object.sha"))
    }

    /// An open or closed pull request from `branch`, if medic already opened one.
    pub async fn find_pull(&self, repo: &str, branch: &str) -> Result<Option<PullRef>> {
        let owner = repo.split('/').next().unwrap_or_default();
        let doing = format!("looking for a pull request from {branch} on {repo}");
        let v = self
            .get(
                &doing,
                format!("/repos/{repo}/pulls?state=all&head={owner}:{branch}"),
            )
            .await?;
        Ok(v.as_array().and_then(|prs| {
            prs.iter()
                .find(|p| p["head"]["ref"] == branch)
                .map(|p| PullRef {
                    number: p["number"].as_u64().unwrap_or_default(),
                    url: p["html_url"].as_str().unwrap_or_default().to_owned(),
                    commit: p["head"]["sha"].as_str().unwrap_or_default().to_owned(),
                })
        }))
    }

    /// Opens the revert pull request. Refuses when the base moved since the plan was made.
    pub async fn open_revert(&self, pr: &RevertPr) -> Result<PullRef> {
        let head = self.branch_head(&pr.repo, &pr.base).await?;
        if head != pr.base_sha {
            return Err(Error::Precondition(format!(
                "{} branch {} moved from {} to {} since the plan was made; ask for a new proposal",
                pr.repo, pr.base, pr.base_sha, head
            )));
        }
        let repo = &pr.repo;
        let commit = self
            .get(
                "reading the commit to revert",
                format!("/repos/{repo}/git/commits/{}", pr.commit),
            )
            .await?;
        let parent = commit["parents"][0]["sha"]
            .as_str()
            .ok_or_else(|| fail("reading the commit to revert", "it has no parent"))?
            .to_owned();
        let parent_commit = self
            .get(
                "reading the parent commit",
                format!("/repos/{repo}/git/commits/{parent}"),
            )
            .await?;
        let tree = parent_commit["tree"]["sha"]
            .as_str()
            .ok_or_else(|| fail("reading the parent commit", "it has no tree"))?
            .to_owned();
        let message = format!("{}\n\nThis reverts commit {}.", pr.title, pr.commit);
        let created = self
            .post(
                "creating the revert commit",
                format!("/repos/{repo}/git/commits"),
                json!({"message": message, "tree": tree, "parents": [head]}),
            )
            .await?;
        let sha = created["sha"]
            .as_str()
            .ok_or_else(|| fail("creating the revert commit", "the answer has no sha"))?
            .to_owned();
        self.post(
            "creating the revert branch",
            format!("/repos/{repo}/git/refs"),
            json!({"ref": format!("refs/heads/{}", pr.branch), "sha": sha}),
        )
        .await?;
        let pull = self
            .post(
                "opening the pull request",
                format!("/repos/{repo}/pulls"),
                json!({"title": pr.title, "head": pr.branch, "base": pr.base, "body": pr.body}),
            )
            .await?;
        Ok(PullRef {
            number: pull["number"].as_u64().unwrap_or_default(),
            url: pull["html_url"].as_str().unwrap_or_default().to_owned(),
            commit: sha,
        })
    }
}
