//! GitHub, for GitOps-managed workloads: the branch head (a plan precondition) and a revert
//! pull request built with the Git data API, on a new branch, then a pull request. Reverting
//! the head commit takes its parent's tree; reverting an older commit restores only the
//! files it changed, on top of the head's tree, and is planned only when no later commit
//! touched those files (otherwise the revert needs a merge, which is left to a person).
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

/// What a revert of a commit under later commits restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertFiles {
    /// The paths the reverted commit changed.
    pub files: Vec<String>,
    /// How many commits came after it on the branch.
    pub later_commits: usize,
}

/// GitHub's page size for a commit's or a comparison's files.
const GITHUB_FILE_PAGE: usize = 300;

/// `filename`s (and a rename's `previous_filename`) of a GitHub `files` list, sorted.
fn paths_of(files: &Value) -> Vec<String> {
    let mut out: Vec<String> = files
        .as_array()
        .map(|fs| {
            fs.iter()
                .flat_map(|f| [&f["filename"], &f["previous_filename"]])
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
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

    /// The paths a revert of `commit` must restore when it is not the head of `base`
    /// (`head`): the files `commit` changed (both names of a rename). Refuses when `commit`
    /// is not an ancestor of `head`, or when a later commit touched one of those files.
    pub async fn revert_files(&self, repo: &str, commit: &str, head: &str) -> Result<RevertFiles> {
        let doing = format!("comparing {commit}...{head} on {repo}");
        let cmp = self
            .get(&doing, format!("/repos/{repo}/compare/{commit}...{head}"))
            .await?;
        if cmp["status"] != "ahead" {
            return Err(Error::Precondition(format!(
                "{commit} is not an ancestor of {head} on {repo} (compare status {}); open that revert by hand",
                cmp["status"]
            )));
        }
        let later = cmp["commits"].as_array().map_or(0, Vec::len);
        let doing = format!("reading the files of {commit} on {repo}");
        let culprit = self
            .get(&doing, format!("/repos/{repo}/commits/{commit}"))
            .await?;
        let changed = paths_of(&culprit["files"]);
        if changed.is_empty() {
            return Err(Error::Precondition(format!(
                "GitHub lists no changed files for {commit} on {repo}; open that revert by hand"
            )));
        }
        let touched_later = paths_of(&cmp["files"]);
        // GitHub lists at most 300 files per commit or comparison page: past that, a clean
        // revert cannot be proven from one answer.
        if changed.len() >= GITHUB_FILE_PAGE || touched_later.len() >= GITHUB_FILE_PAGE {
            return Err(Error::Precondition(format!(
                "{commit} or the commits after it on {repo} change {GITHUB_FILE_PAGE}+ files; open that revert by hand"
            )));
        }
        let overlap: Vec<String> = changed
            .iter()
            .filter(|p| touched_later.contains(p))
            .cloned()
            .collect();
        if !overlap.is_empty() {
            return Err(Error::Precondition(format!(
                "{} changed again in the {later} commit(s) after {commit} on {repo}; reverting it needs a merge, open that revert by hand",
                overlap.join(", ")
            )));
        }
        Ok(RevertFiles {
            files: changed,
            later_commits: later,
        })
    }

    async fn commit_tree(&self, repo: &str, sha: &str) -> Result<String> {
        let doing = format!("reading commit {sha} of {repo}");
        let c = self
            .get(&doing, format!("/repos/{repo}/git/commits/{sha}"))
            .await?;
        c["tree"]["sha"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail(&doing, "it has no tree"))
    }

    /// The tree the revert commit gets: the parent's whole tree when the reverted commit is
    /// the head; otherwise the head's tree with `pr.files` set back to the parent's blobs
    /// (deleted where the reverted commit added them).
    async fn revert_tree(&self, pr: &RevertPr, head: &str, parent: &str) -> Result<String> {
        let repo = &pr.repo;
        let parent_tree = self.commit_tree(repo, parent).await?;
        if pr.files.is_empty() {
            return Ok(parent_tree);
        }
        let doing = format!("reading tree {parent_tree} of {repo}");
        let listing = self
            .get(
                &doing,
                format!("/repos/{repo}/git/trees/{parent_tree}?recursive=1"),
            )
            .await?;
        if listing["truncated"] == true {
            return Err(fail(
                &doing,
                "GitHub truncated the tree listing; open that revert by hand",
            ));
        }
        let before = listing["tree"].as_array().cloned().unwrap_or_default();
        let entries: Vec<Value> = pr
            .files
            .iter()
            .map(
                |path| match before.iter().find(|e| e["path"] == path.as_str()) {
                    Some(e) => {
                        json!({"path": path, "mode": e["mode"], "type": "blob", "sha": e["sha"]})
                    }
                    // Added by the reverted commit: the revert deletes it.
                    None => json!({"path": path, "mode": "100644", "type": "blob", "sha": null}),
                },
            )
            .collect();
        let base_tree = self.commit_tree(repo, head).await?;
        let created = self
            .post(
                "creating the revert tree",
                format!("/repos/{repo}/git/trees"),
                json!({"base_tree": base_tree, "tree": entries}),
            )
            .await?;
        created["sha"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail("creating the revert tree", "the answer has no sha"))
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
        let tree = self.revert_tree(pr, &head, &parent).await?;
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
