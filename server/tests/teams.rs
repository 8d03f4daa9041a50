//! Teams end to end: Bot Framework tokens signed with a test RSA key published by a local
//! OpenID endpoint; replies recorded by a local connector that checks our outgoing token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const APP_ID: &str = "3c1f0e2a-medic-test-app";
const ISSUER: &str = "https://api.botframework.com";

/// Method, path, body and `Authorization` of one connector call.
type Call = (String, String, Value, Option<String>);

#[derive(Clone, Default)]
struct Connector {
    calls: Arc<Mutex<Vec<Call>>>,
}

async fn record(
    State(c): State<Connector>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let n = {
        let mut calls = c.calls.lock().unwrap();
        calls.push((method.to_string(), uri.path().to_owned(), body, auth));
        calls.len()
    };
    Json(json!({ "id": format!("act-{n}") }))
}

struct Fixture {
    connector: Connector,
    service_url: String,
    openid_url: String,
    token_url: String,
}

async fn fixture() -> Fixture {
    let jwk: Value = serde_json::from_str(include_str!("fixtures/teams-key-a.jwk.json")).unwrap();
    let keys = json!({ "keys": [jwk] });
    let connector = Connector::default();
    let app = Router::new()
        .route(
            "/v3/conversations/{conv}/activities/{id}",
            post(record).put(record),
        )
        .route("/v3/conversations/{conv}/activities", post(record))
        .with_state(connector.clone());
    let addr = serve(app).await;
    let keys_app = Router::new()
        .route("/keys", get(move || { let k = keys.clone(); async move { Json(k) } }))
        .route("/token", post(|| async { Json(json!({ "access_token": "outgoing-token", "expires_in": 3600, "token_type": "Bearer" })) }));
    let kaddr = serve(keys_app.clone()).await;
    // The OpenID document points at the key set on the same server.
    let openid_doc = json!({ "issuer": ISSUER, "jwks_uri": format!("http://{kaddr}/keys"), "id_token_signing_alg_values_supported": ["RS256"] });
    let oaddr = serve(Router::new().route(
        "/openid",
        get(move || {
            let d = openid_doc.clone();
            async move { Json(d) }
        }),
    ))
    .await;
    Fixture {
        connector,
        service_url: format!("http://{addr}/"),
        openid_url: format!("http://{oaddr}/openid"),
        token_url: format!("http://{kaddr}/token"),
    }
}

fn token(key: &str, kid: &str, iss: &str, aud: &str, exp_offset: i64, service_url: &str) -> String {
    let der = std::fs::read(format!(
        "{}/tests/fixtures/{key}.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({ "iss": iss, "aud": aud, "exp": now() + exp_offset, "nbf": now() - 10, "serviceurl": service_url });
    encode(&header, &claims, &EncodingKey::from_rsa_der(&der)).unwrap()
}

fn activity(service_url: &str, text: &str, value: Option<Value>, from_aad: &str) -> Value {
    let mut a = json!({
        "type": "message", "id": "1700000000001", "timestamp": "2026-11-21T20:00:00Z",
        "serviceUrl": service_url, "channelId": "msteams",
        "from": { "id": format!("29:{from_aad}"), "name": "someone", "aadObjectId": from_aad },
        "conversation": { "id": "19:incident@thread.tacv2;messageid=1700000000000", "conversationType": "channel" },
        "recipient": { "id": format!("28:{APP_ID}"), "name": "medic" },
        "text": text,
    });
    if let Some(v) = value {
        a["value"] = v;
        a["replyToId"] = json!("act-2");
    }
    a
}

async fn setup(dir: &std::path::Path, engine: TestEngine) -> (Fixture, Running) {
    let fx = fixture().await;
    let mut cfg = config(dir, None);
    let pw = dir.join("teams-password");
    std::fs::write(&pw, "app-password").unwrap();
    cfg.teams = Some(medic_server::TeamsConfig {
        app_id: APP_ID.into(),
        app_password: medic_server::SecretRef::file(pw),
        openid_config_url: fx.openid_url.clone(),
        issuer: ISSUER.into(),
        token_url: fx.token_url.clone(),
        token_scope: "https://api.botframework.com/.default".into(),
        service_url: fx.service_url.clone(),
        clock_skew_secs: 300,
        keys_ttl_secs: 3600,
    });
    let run = start(cfg, engine).await;
    (fx, run)
}

#[tokio::test]
async fn invalid_tokens_are_refused_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::new(&["bob"], 1);
    let (fx, run) = setup(dir.path(), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/teams/messages");
    let body = activity(
        &fx.service_url,
        "<at>medic</at> why is checkout down?",
        None,
        "aad-alice",
    );
    let su = fx.service_url.as_str();
    let cases = [
        (
            "wrong issuer",
            token(
                "teams-key-a",
                "teams-key-a",
                "https://evil.example",
                APP_ID,
                600,
                su,
            ),
        ),
        (
            "wrong audience",
            token(
                "teams-key-a",
                "teams-key-a",
                ISSUER,
                "some-other-bot",
                600,
                su,
            ),
        ),
        (
            "expired beyond skew",
            token("teams-key-a", "teams-key-a", ISSUER, APP_ID, -301 - 60, su),
        ),
        (
            "wrong key, published kid",
            token("teams-key-b", "teams-key-a", ISSUER, APP_ID, 600, su),
        ),
        (
            "unpublished key",
            token("teams-key-b", "teams-key-b", ISSUER, APP_ID, 600, su),
        ),
        (
            "mismatched serviceUrl",
            token(
                "teams-key-a",
                "teams-key-a",
                ISSUER,
                APP_ID,
                600,
                "https://attacker.example/",
            ),
        ),
    ];
    for (what, tok) in cases {
        let r = http
            .post(&url)
            .bearer_auth(tok)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{what}");
    }
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(engine.started(), 0);
    assert!(fx.connector.calls.lock().unwrap().is_empty());
    // Within the skew an expired token still passes.
    let ok = token("teams-key-a", "teams-key-a", ISSUER, APP_ID, -100, su);
    let r = http
        .post(&url)
        .bearer_auth(ok)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the investigation", || engine.started() == 1).await;
    run.shutdown().await;
}

#[tokio::test]
async fn questions_are_answered_in_the_conversation_and_cards_approve() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::new(&["bob"], 1);
    let (fx, run) = setup(dir.path(), engine.clone()).await;
    let http = reqwest::Client::new();
    let url = run.url("/teams/messages");
    let tok = || {
        token(
            "teams-key-a",
            "teams-key-a",
            ISSUER,
            APP_ID,
            600,
            &fx.service_url,
        )
    };
    let body = activity(
        &fx.service_url,
        "<at>medic</at> why is checkout down?",
        None,
        "aad-alice",
    );
    assert_eq!(
        http.post(&url)
            .bearer_auth(tok())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let calls = fx.connector.calls.clone();
    eventually("the adaptive card with buttons", || {
        calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.2.to_string().contains("Action.Submit"))
    })
    .await;
    let started = engine.log.lock().unwrap().started[0].clone();
    assert_eq!(started.requester, "alice");
    {
        let calls = calls.lock().unwrap();
        // Replies go to the activity's serviceUrl, in reply to the question, with our token.
        let (method, path, _, auth) = &calls[0];
        assert_eq!(method, "POST");
        // Conversation ids are percent-encoded as a path segment, as the Bot Framework SDKs do.
        assert_eq!(
            path,
            "/v3/conversations/19%3Aincident%40thread.tacv2%3Bmessageid%3D1700000000000/activities/1700000000001"
        );
        assert_eq!(auth.as_deref(), Some("Bearer outgoing-token"));
        let card = calls
            .iter()
            .find(|c| c.2.to_string().contains("Action.Submit"))
            .unwrap();
        let content = &card.2["attachments"][0]["content"];
        assert_eq!(
            content["actions"][0]["data"],
            json!({"medic_action": "approve", "approval_id": "ap-1"})
        );
        assert!(
            calls.iter().any(|c| c.0 == "PUT"),
            "the progress message is updated in place"
        );
    }
    // Bob approves from the card: executed, and the result is posted.
    let press = activity(
        &fx.service_url,
        "",
        Some(json!({"medic_action": "approve", "approval_id": "ap-1"})),
        "aad-bob",
    );
    assert_eq!(
        http.post(&url)
            .bearer_auth(tok())
            .json(&press)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    eventually("the execution result", || {
        calls.lock().unwrap().iter().any(|c| {
            c.2["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("Execution executed")
        })
    })
    .await;
    let d = engine.log.lock().unwrap().decisions.clone();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].actor, "bob");
    assert_eq!(d[0].via, "teams:aad-bob");
    run.shutdown().await;
}
