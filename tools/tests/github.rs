//! The `github` tool through octocrab against a local HTTP server that replays GitHub REST
//! shapes (the bad-rollout bundle's recorded JSON), including 401, 404 and rate limiting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use medic_tools::github::GitHubOutput;
use medic_tools::{GitHubConfig, Registry};
use serde_json::{Value, json};

fn recorded(file: &str) -> Value {
    let p = common::bundle_dir("bad-rollout")
        .join("github/acme-corp/payments-api")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.ends_with(" ghp-test-good-token-000"))
}

async fn repo_item(
    Path((owner, repo, item)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}))).into_response();
    }
    if repo == "ratelimited" {
        let mut r = (StatusCode::FORBIDDEN, axum::Json(json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/rate-limit"}))).into_response();
        r.headers_mut()
            .insert("x-ratelimit-remaining", "0".parse().unwrap());
        r.headers_mut()
            .insert("x-ratelimit-limit", "5000".parse().unwrap());
        r.headers_mut()
            .insert("x-ratelimit-reset", "1783500000".parse().unwrap());
        return r;
    }
    if owner != "acme-corp" || repo != "payments-api" {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}))).into_response();
    }
    let body = match item.as_str() {
        "commits" => recorded("commits.json"),
        "pulls" => recorded("pulls.json"),
        "deployments" => recorded("deployments.json"),
        "releases" => json!([
            {"tag_name": "v1.5.0", "name": "v1.5.0", "published_at": "2026-07-08T09:18:40Z", "prerelease": false, "draft": false},
            {"tag_name": "v1.4.2", "name": "v1.4.2 — token ghp_R4nd0mL00k1ngT0k3nF0rT3st1ng0123456789", "published_at": "2026-06-30T12:00:00Z", "prerelease": false, "draft": false}
        ]),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    axum::Json(body).into_response()
}

async fn compare(
    Path((_owner, _repo, range)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    if !authorized(&h) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    if range != "0ab174e5...c197c583" {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    }
    let big_patch: String = (0..40).map(|i| format!("+line {i}\n")).collect();
    axum::Json(json!({
        "status": "ahead", "ahead_by": 2, "behind_by": 0, "total_commits": 2,
        "commits": [
            {"sha": "1a74e8f5aa", "commit": {"message": "feat: pool size from env\n\nlong body", "author": {"name": "dana", "date": "2026-07-08T08:00:00Z"}}},
            {"sha": "c197c583d9", "commit": {"message": "release: v1.5.0 (#485)", "author": {"name": "acme-release-bot", "date": "2026-07-08T09:18:30Z"}}}
        ],
        "files": [
            {"filename": "config/app.yaml", "status": "modified", "additions": 2, "deletions": 1,
             "patch": "@@ -10,3 +10,4 @@ db:\n   host: db.payments\n-  pool_size: 20\n+  pool_size: ${DB_POOL_SIZE}\n+  password: Sup3rS3cretDbPassw0rd\n"},
            {"filename": "generated/big.txt", "status": "added", "additions": 40, "deletions": 0, "patch": big_patch},
            {"filename": "README.md", "status": "modified", "additions": 1, "deletions": 0, "patch": "@@ -1 +1,2 @@\n+note\n"}
        ]
    }))
    .into_response()
}

async fn serve() -> String {
    let app = Router::new()
        .route("/repos/{owner}/{repo}/compare/{range}", get(compare))
        .route("/repos/{owner}/{repo}/{item}", get(repo_item));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test]
async fn github_tool_reads_and_summarises() {
    let env = common::start("bad-rollout").await;
    let base = serve().await;
    let ctx = env.ctx.clone().with_github(GitHubConfig {
        base_url: Some(base.clone()),
        token: Some("ghp-test-good-token-000".into()),
    });
    let reg = Registry::standard();

    // The repository comes from the Deployment's medic.dev/repo annotation.
    let r = reg
        .call(
            &ctx,
            "github",
            json!({"action": "commits", "namespace": "payments", "workload": "api"}),
        )
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    let o = r.output::<GitHubOutput>().unwrap();
    assert_eq!(o.repo, "acme-corp/payments-api");
    assert_eq!(
        o.repo_source,
        "annotation medic.dev/repo on Deployment payments/api"
    );
    assert_eq!(o.commits.len(), 8);
    assert_eq!(o.commits[0].title, "release: v1.5.0 (#485)");
    assert!(r.text.contains("c197c583d9b1"), "{}", r.text);

    let r = reg
        .call(
            &ctx,
            "github",
            json!({"action": "pulls", "repo": "acme-corp/payments-api"}),
        )
        .await
        .unwrap();
    let o = r.output::<GitHubOutput>().unwrap();
    assert_eq!(o.pulls.len(), 6);
    assert_eq!(o.pulls[0].number, 485);

    let r = reg
        .call(
            &ctx,
            "github",
            json!({"action": "deployments", "repo": "acme-corp/payments-api"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r.output::<GitHubOutput>().unwrap().deployments.len(),
        2,
        "{}",
        r.text
    );

    let r = reg
        .call(
            &ctx,
            "github",
            json!({"action": "releases", "repo": "acme-corp/payments-api"}),
        )
        .await
        .unwrap();
    assert!(
        r.text.contains("<redacted:github-token>") && !r.text.contains("ghp_R4nd0m"),
        "{}",
        r.text
    );

    // Compare: files by size, hunks trimmed, secrets in the diff redacted.
    let r = reg
        .call(&ctx, "github", json!({"action": "compare", "repo": "acme-corp/payments-api", "base": "0ab174e5", "head": "c197c583"}))
        .await
        .unwrap();
    assert!(r.error.is_none(), "{}", r.text);
    let c = r.output::<GitHubOutput>().unwrap().compare.clone().unwrap();
    assert_eq!(c.files[0].filename, "generated/big.txt");
    assert_eq!(c.files[0].hunks.len(), 12);
    assert_eq!(c.files[0].hunks_omitted, 28);
    assert_eq!(
        c.files[1].hunks,
        vec![
            "-  pool_size: 20",
            "+  pool_size: ${DB_POOL_SIZE}",
            "+  password: <redacted:credential>"
        ]
    );
    assert!(!r.text.contains("Sup3rS3cret"), "{}", r.text);
    assert!(r.text.contains("… 28 more changed lines"), "{}", r.text);

    // Errors the model can act on.
    let msg = |r: medic_tools::ToolResult| r.error.unwrap().message;
    let m = msg(reg
        .call(
            &ctx,
            "github",
            json!({"action": "commits", "repo": "acme-corp/nope"}),
        )
        .await
        .unwrap());
    assert!(
        m.starts_with(
            "not found: GitHub has no acme-corp/nope or the ref does not exist (404 Not Found)"
        ),
        "{m}"
    );
    let m = msg(reg
        .call(
            &ctx,
            "github",
            json!({"action": "commits", "repo": "acme-corp/ratelimited"}),
        )
        .await
        .unwrap());
    assert!(
        m.starts_with(
            "upstream unavailable: GitHub rate limit exhausted (resets at unix time 1783500000)"
        ),
        "{m}"
    );
    let m = msg(reg
        .call(
            &ctx,
            "github",
            json!({"action": "compare", "repo": "acme-corp/payments-api"}),
        )
        .await
        .unwrap());
    assert_eq!(
        m,
        "invalid arguments: compare needs `base` and `head` (shas, tags or branches)"
    );
    let m = msg(reg
        .call(&ctx, "github", json!({"action": "commits"}))
        .await
        .unwrap());
    assert!(m.contains("`repo` (owner/repo) is required"), "{m}");
    let m = msg(reg
        .call(
            &ctx,
            "github",
            json!({"action": "commits", "repo": "not a repo"}),
        )
        .await
        .unwrap());
    assert_eq!(
        m,
        "invalid arguments: `repo` must look like owner/repo, found `not a repo`"
    );
    let m = msg(reg
        .call(
            &ctx,
            "github",
            json!({"action": "commits", "namespace": "payments", "workload": "ghost"}),
        )
        .await
        .unwrap());
    assert!(
        m.starts_with("not found: no repository known for workload payments/ghost"),
        "{m}"
    );

    let bad = env.ctx.clone().with_github(GitHubConfig {
        base_url: Some(base),
        token: Some("wrong".into()),
    });
    let m = msg(reg
        .call(
            &bad,
            "github",
            json!({"action": "commits", "repo": "acme-corp/payments-api"}),
        )
        .await
        .unwrap());
    assert!(
        m.starts_with("forbidden: GitHub rejected medic's token (401 Bad credentials)"),
        "{m}"
    );
}
