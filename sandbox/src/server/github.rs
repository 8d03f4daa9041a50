//! A GitHub-REST-shaped listener over a bundle's `github/` folder, so demos need no network:
//! GET `/repos/{o}/{r}`, `/commits`, `/commits/{sha}`, `/pulls`, `/pulls/{n}`, `/deployments`,
//! `/compare/{base}...{head}`, and the Git database reads a revert needs
//! (`/git/ref/heads/{branch}`, `/git/commits/{sha}`, `/git/trees/{sha}` from `trees.json`);
//! POST `/pulls`, `/git/commits`, `/git/trees` and `/git/refs` are answered, recorded, and
//! visible to later reads. `main` points at the newest commit of `commits.json`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};

use crate::bundle::GithubRepo;

/// A write the GitHub listener received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GithubRecord {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// JSON body.
    pub body: Value,
}

/// Git objects written through the API: `owner/repo` → branch → sha, and created commits.
#[derive(Default)]
struct Written {
    refs: HashMap<String, HashMap<String, String>>,
    commits: HashMap<String, Vec<Value>>,
    trees: HashMap<String, Vec<Value>>,
}

#[derive(Clone)]
pub(crate) struct GithubState {
    repos: Arc<Mutex<Vec<GithubRepo>>>,
    written: Arc<Mutex<Written>>,
    pub log: Arc<Mutex<Vec<GithubRecord>>>,
}

impl GithubState {
    pub fn new(repos: Vec<GithubRepo>) -> GithubState {
        GithubState {
            repos: Arc::new(Mutex::new(repos)),
            written: Arc::default(),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn router(state: GithubState) -> Router {
    Router::new()
        .route("/repos/{owner}/{repo}", get(repo))
        .route("/repos/{owner}/{repo}/commits", get(commits))
        .route("/repos/{owner}/{repo}/commits/{sha}", get(commit))
        .route("/repos/{owner}/{repo}/pulls", get(pulls).post(create_pull))
        .route("/repos/{owner}/{repo}/pulls/{number}", get(pull))
        .route("/repos/{owner}/{repo}/deployments", get(deployments))
        .route("/repos/{owner}/{repo}/compare/{range}", get(compare))
        .route(
            "/repos/{owner}/{repo}/git/refs",
            axum::routing::post(create_ref),
        )
        .route(
            "/repos/{owner}/{repo}/git/ref/heads/{*branch}",
            get(branch_ref),
        )
        .route(
            "/repos/{owner}/{repo}/git/commits",
            axum::routing::post(create_commit),
        )
        .route("/repos/{owner}/{repo}/git/commits/{sha}", get(git_commit))
        .route(
            "/repos/{owner}/{repo}/git/trees",
            axum::routing::post(create_tree),
        )
        .route("/repos/{owner}/{repo}/git/trees/{sha}", get(git_tree))
        .with_state(state)
}

fn not_found() -> Response {
    (
        http::StatusCode::NOT_FOUND,
        axum::Json(
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    )
        .into_response()
}

fn with_repo<T>(
    st: &GithubState,
    owner: &str,
    repo: &str,
    f: impl FnOnce(&mut GithubRepo) -> T,
) -> Option<T> {
    let mut repos = st.repos.lock().unwrap_or_else(|e| e.into_inner());
    repos
        .iter_mut()
        .find(|r| r.owner == owner && r.repo == repo)
        .map(f)
}

fn query(raw: Option<String>, key: &str) -> Option<String> {
    let q = raw?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().ok()?)
        .ok()?
        .0
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn page(items: Vec<Value>, raw: &Option<String>) -> Vec<Value> {
    let per_page = query(raw.clone(), "per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query(raw.clone(), "page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect()
}

async fn repo(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    match with_repo(
        &st,
        &owner,
        &repo,
        |r| json!({"name": r.repo, "full_name": format!("{}/{}", r.owner, r.repo), "owner": {"login": r.owner}, "default_branch": "main", "private": true}),
    ) {
        Some(v) => axum::Json(v).into_response(),
        None => not_found(),
    }
}

fn sha_of(c: &Value) -> &str {
    c["sha"].as_str().unwrap_or_default()
}

async fn commits(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let path_filter = query(raw.clone(), "path");
    match with_repo(&st, &owner, &repo, |r| r.commits.clone()) {
        Some(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .filter(|c| {
                    path_filter.as_ref().is_none_or(|p| {
                        // Only commits whose recorded files touch the path (commits without files never match).
                        c["files"].as_array().is_some_and(|files| {
                            files.iter().any(|f| {
                                f["filename"]
                                    .as_str()
                                    .is_some_and(|n| n.starts_with(p.as_str()))
                            })
                        })
                    })
                })
                .collect();
            axum::Json(page(items, &raw)).into_response()
        }
        None => not_found(),
    }
}

async fn commit(
    State(st): State<GithubState>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Response {
    let found = with_repo(&st, &owner, &repo, |r| {
        r.commits
            .iter()
            .find(|c| !sha.is_empty() && sha_of(c).starts_with(&sha))
            .cloned()
    })
    .flatten();
    match found {
        Some(c) => axum::Json(c).into_response(),
        None => (
            http::StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"message": format!("No commit found for SHA: {sha}")})),
        )
            .into_response(),
    }
}

async fn pulls(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let state = query(raw.clone(), "state").unwrap_or_else(|| "open".into());
    match with_repo(&st, &owner, &repo, |r| r.pulls.clone()) {
        Some(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .filter(|p| state == "all" || p["state"].as_str().unwrap_or("open") == state)
                .collect();
            axum::Json(page(items, &raw)).into_response()
        }
        None => not_found(),
    }
}

async fn pull(
    State(st): State<GithubState>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    match with_repo(&st, &owner, &repo, |r| {
        r.pulls
            .iter()
            .find(|p| p["number"].as_u64() == Some(number))
            .cloned()
    })
    .flatten()
    {
        Some(p) => axum::Json(p).into_response(),
        None => not_found(),
    }
}

async fn deployments(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    match with_repo(&st, &owner, &repo, |r| r.deployments.clone()) {
        Some(items) => axum::Json(page(items, &raw)).into_response(),
        None => not_found(),
    }
}

/// commits.json lists the newest first, as the API does.
async fn compare(
    State(st): State<GithubState>,
    Path((owner, repo, range)): Path<(String, String, String)>,
) -> Response {
    let Some((base, head)) = range.split_once("...") else {
        return not_found();
    };
    let result = with_repo(&st, &owner, &repo, |r| {
        let pos = |sha: &str| r.commits.iter().position(|c| !sha.is_empty() && sha_of(c).starts_with(sha));
        let (b, h) = (pos(base)?, pos(head)?);
        let (status, ahead, behind) = if b == h { ("identical", 0, 0) } else if h < b { ("ahead", b - h, 0) } else { ("behind", 0, h - b) };
        let mut between: Vec<Value> = if h < b { r.commits[h..b].to_vec() } else { vec![] };
        between.reverse();
        let files: Vec<Value> = between.iter().flat_map(|c| c["files"].as_array().cloned().unwrap_or_default()).collect();
        Some(json!({"status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": between.len(),
            "base_commit": r.commits[b].clone(), "commits": between, "files": files}))
    })
    .flatten();
    match result {
        Some(v) => axum::Json(v).into_response(),
        None => not_found(),
    }
}

/// Records a Git database write (`POST /repos/{owner}/{repo}/{what}`); `Some(404)` when the
/// repository is not in the bundle.
fn accept_write(
    st: &GithubState,
    owner: &str,
    repo: &str,
    what: &str,
    body: &Value,
) -> Option<Response> {
    record(st, "POST", format!("/repos/{owner}/{repo}/{what}"), body);
    with_repo(st, owner, repo, |_| ()).is_none().then(not_found)
}

/// A 40-hex sha derived from content, as Git derives object ids (not Git's exact bytes:
/// nothing here checks them).
fn content_sha(content: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(content.as_bytes()))[..40].to_owned()
}

fn record(st: &GithubState, method: &str, path: String, body: &Value) {
    st.log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(GithubRecord {
            method: method.into(),
            path,
            body: body.clone(),
        });
}

async fn create_pull(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    record(&st, "POST", format!("/repos/{owner}/{repo}/pulls"), &body);
    let head_sha = body["head"].as_str().and_then(|b| {
        st.written()
            .refs
            .get(&format!("{owner}/{repo}"))
            .and_then(|r| r.get(b).cloned())
    });
    let created = with_repo(&st, &owner, &repo, |r| {
        let number = r
            .pulls
            .iter()
            .filter_map(|p| p["number"].as_u64())
            .max()
            .unwrap_or(0)
            + 1;
        let pr = json!({
            "number": number, "state": "open", "title": body["title"], "body": body["body"],
            "head": {"ref": body["head"], "sha": head_sha}, "base": {"ref": body["base"]},
            "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}"),
            "url": format!("https://api.github.com/repos/{owner}/{repo}/pulls/{number}"),
            "id": number, "draft": body["draft"].as_bool().unwrap_or(false), "merged": false,
        });
        r.pulls.insert(0, pr.clone());
        pr
    });
    match created {
        Some(pr) => (http::StatusCode::CREATED, axum::Json(pr)).into_response(),
        None => not_found(),
    }
}

async fn create_ref(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = accept_write(&st, &owner, &repo, "git/refs", &body) {
        return refused;
    }
    let (Some(name), Some(sha)) = (
        body["ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("refs/heads/")),
        body["sha"].as_str(),
    ) else {
        return unprocessable("ref must be refs/heads/<branch> and sha a commit");
    };
    let mut w = st.written();
    let refs = w.refs.entry(format!("{owner}/{repo}")).or_default();
    if refs.contains_key(name) || name == "main" {
        return unprocessable("Reference already exists");
    }
    refs.insert(name.to_owned(), sha.to_owned());
    let reply = json!({"ref": body["ref"], "object": {"sha": sha, "type": "commit"}});
    (http::StatusCode::CREATED, axum::Json(reply)).into_response()
}

fn unprocessable(message: &str) -> Response {
    (
        http::StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(
            json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        ),
    )
        .into_response()
}

/// `GET /git/ref/heads/{branch}`: `main` is the newest commit of `commits.json`; other
/// branches exist once created through `POST /git/refs`.
async fn branch_ref(
    State(st): State<GithubState>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Response {
    let head = if branch == "main" {
        with_repo(&st, &owner, &repo, |r| {
            r.commits.first().map(|c| sha_of(c).to_owned())
        })
        .flatten()
    } else {
        st.written()
            .refs
            .get(&format!("{owner}/{repo}"))
            .and_then(|r| r.get(&branch).cloned())
    };
    match head {
        Some(sha) => axum::Json(json!({
            "ref": format!("refs/heads/{branch}"),
            "object": {"sha": sha, "type": "commit"}
        }))
        .into_response(),
        None => not_found(),
    }
}

/// `GET /git/commits/{sha}`: the Git commit object of a listed or created commit; a listed
/// commit's parent defaults to the next older one in `commits.json`.
async fn git_commit(
    State(st): State<GithubState>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Response {
    if let Some(c) = st
        .written()
        .commits
        .get(&format!("{owner}/{repo}"))
        .and_then(|cs| cs.iter().find(|c| sha_of(c) == sha).cloned())
    {
        return axum::Json(c).into_response();
    }
    let found = with_repo(&st, &owner, &repo, |r| {
        let i = r
            .commits
            .iter()
            .position(|c| !sha.is_empty() && sha_of(c) == sha)?;
        let c = &r.commits[i];
        let parents: Vec<Value> = match c["parents"].as_array() {
            Some(p) if !p.is_empty() => p.iter().map(|p| json!({"sha": p["sha"]})).collect(),
            _ => r
                .commits
                .get(i + 1)
                .map(|p| vec![json!({"sha": sha_of(p)})])
                .unwrap_or_default(),
        };
        // A listed commit without a recorded tree gets a stable stand-in.
        let tree = c["commit"]["tree"]["sha"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("tree-of-{}", sha_of(c)));
        Some(json!({
            "sha": sha_of(c), "message": c["commit"]["message"], "author": c["commit"]["author"],
            "committer": c["commit"]["committer"], "tree": {"sha": tree}, "parents": parents,
        }))
    })
    .flatten();
    match found {
        Some(c) => axum::Json(c).into_response(),
        None => not_found(),
    }
}

/// `POST /git/commits`: records the commit and answers it with a sha derived from its
/// content, as Git does (not Git's exact bytes: nothing here checks them).
async fn create_commit(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = accept_write(&st, &owner, &repo, "git/commits", &body) {
        return refused;
    }
    let (Some(tree), Some(parents), Some(message)) = (
        body["tree"].as_str(),
        body["parents"].as_array(),
        body["message"].as_str(),
    ) else {
        return unprocessable("tree, parents and message are required");
    };
    let sha = content_sha(&format!("tree {tree}\n{parents:?}\n{message}"));
    let commit = json!({
        "sha": sha, "message": message, "tree": {"sha": tree},
        "parents": parents.iter().map(|p| json!({"sha": p})).collect::<Vec<_>>(),
    });
    st.written()
        .commits
        .entry(format!("{owner}/{repo}"))
        .or_default()
        .push(commit.clone());
    (http::StatusCode::CREATED, axum::Json(commit)).into_response()
}

/// A tree of `trees.json` or one written through `POST /git/trees`.
fn find_tree(st: &GithubState, owner: &str, repo: &str, sha: &str) -> Option<Value> {
    if let Some(t) = st
        .written()
        .trees
        .get(&format!("{owner}/{repo}"))
        .and_then(|ts| ts.iter().find(|t| t["sha"] == sha).cloned())
    {
        return Some(t);
    }
    with_repo(st, owner, repo, |r| {
        r.trees.iter().find(|t| t["sha"] == sha).cloned()
    })
    .flatten()
}

/// `GET /git/trees/{sha}`: trees are stored flat (full paths), as `?recursive=1` lists them.
async fn git_tree(
    State(st): State<GithubState>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
) -> Response {
    match find_tree(&st, &owner, &repo, &sha) {
        Some(t) => axum::Json(json!({"sha": t["sha"], "tree": t["tree"], "truncated": false}))
            .into_response(),
        None => not_found(),
    }
}

/// `POST /git/trees`: `base_tree`'s entries with `tree`'s applied (an entry whose `sha` is
/// null deletes its path), answered with a sha derived from the result.
async fn create_tree(
    State(st): State<GithubState>,
    Path((owner, repo)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = accept_write(&st, &owner, &repo, "git/trees", &body) {
        return refused;
    }
    let Some(changes) = body["tree"].as_array() else {
        return unprocessable("tree is required");
    };
    let mut entries: Vec<Value> = match body["base_tree"].as_str() {
        Some(base) => match find_tree(&st, &owner, &repo, base) {
            Some(t) => t["tree"].as_array().cloned().unwrap_or_default(),
            None => {
                return unprocessable(&format!(
                    "base_tree {base} is not a tree of this repository"
                ));
            }
        },
        None => Vec::new(),
    };
    for c in changes {
        let Some(path) = c["path"].as_str() else {
            return unprocessable("every tree entry needs a path");
        };
        entries.retain(|e| e["path"] != path);
        if !c["sha"].is_null() {
            entries
                .push(json!({"path": path, "mode": c["mode"], "type": c["type"], "sha": c["sha"]}));
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let listing: String = entries
        .iter()
        .map(|e| format!("{} {} {}\n", e["mode"], e["path"], e["sha"]))
        .collect();
    let sha = content_sha(&listing);
    let tree = json!({"sha": sha, "tree": entries, "truncated": false});
    st.written()
        .trees
        .entry(format!("{owner}/{repo}"))
        .or_default()
        .push(tree.clone());
    (http::StatusCode::CREATED, axum::Json(tree)).into_response()
}
