//! Outgoing Bot Framework calls: replies and updates sent to the activity's `serviceUrl`,
//! proactive posts to a channel, and the OAuth client-credentials token they carry.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::card::Card;
use crate::error::{Result, ServerError};
use crate::teams::cards;

/// Caches the outgoing access token until shortly before it expires.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    token: Mutex<Option<(String, Instant)>>,
}

/// What outgoing calls need.
pub(crate) struct TeamsApi<'a> {
    pub http: &'a reqwest::Client,
    pub app_id: &'a str,
    pub password: Option<&'a str>,
    pub token_url: &'a str,
    pub scope: &'a str,
    pub cache: &'a TokenCache,
}

fn err(method: &str, reason: String) -> ServerError {
    ServerError::Chat {
        platform: "teams",
        method: method.to_owned(),
        reason,
    }
}

impl TeamsApi<'_> {
    async fn token(&self) -> Result<Option<String>> {
        // Without a password (the Bot Framework Emulator, local tests) calls go unauthenticated.
        let Some(password) = self.password else {
            return Ok(None);
        };
        let mut guard = self.cache.token.lock().await;
        if let Some((t, until)) = guard.as_ref()
            && Instant::now() < *until
        {
            return Ok(Some(t.clone()));
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id),
            ("client_secret", password),
            ("scope", self.scope),
        ];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| err("token", e.to_string()))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| err("token", format!("HTTP {status}: {e}")))?;
        let Some(token) = v["access_token"].as_str() else {
            return Err(err(
                "token",
                format!("HTTP {status}, no access_token in the answer"),
            ));
        };
        let ttl = v["expires_in"]
            .as_u64()
            .unwrap_or(3600)
            .saturating_sub(120)
            .max(30);
        *guard = Some((token.to_owned(), Instant::now() + Duration::from_secs(ttl)));
        Ok(Some(token.to_owned()))
    }

    async fn send(&self, method: reqwest::Method, url: String, body: Value) -> Result<Value> {
        let mut req = self.http.request(method, &url).json(&body);
        if let Some(t) = self.token().await? {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| err(&url, e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(err(
                &url,
                format!("HTTP {status}: {}", crate::card::clip(&text, 200)),
            ));
        }
        // Some connector answers are empty (updates); treat them as `{}`.
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// Posts a card into a conversation, as a reply when `reply_to` is given; returns the
    /// new activity id.
    pub async fn post(
        &self,
        service_url: &str,
        conversation: &str,
        reply_to: Option<&str>,
        card: &Card,
    ) -> Result<String> {
        let base = service_url.trim_end_matches('/');
        let url = match reply_to {
            Some(id) => format!(
                "{base}/v3/conversations/{}/activities/{}",
                enc(conversation),
                enc(id)
            ),
            None => format!("{base}/v3/conversations/{}/activities", enc(conversation)),
        };
        let mut act = cards::activity(card);
        if let Some(id) = reply_to {
            act["replyToId"] = json!(id);
        }
        let v = self.send(reqwest::Method::POST, url, act).await?;
        Ok(v["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Replaces an activity's content.
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        activity_id: &str,
        card: &Card,
    ) -> Result<()> {
        let base = service_url.trim_end_matches('/');
        let url = format!(
            "{base}/v3/conversations/{}/activities/{}",
            enc(conversation),
            enc(activity_id)
        );
        let mut act = cards::activity(card);
        act["id"] = json!(activity_id);
        self.send(reqwest::Method::PUT, url, act).await.map(|_| ())
    }

    /// Starts a new thread in a channel; returns (conversation id, activity id).
    pub async fn post_to_channel(
        &self,
        service_url: &str,
        channel_id: &str,
        card: &Card,
    ) -> Result<(String, String)> {
        let base = service_url.trim_end_matches('/');
        let body = json!({
            "isGroup": true,
            "channelData": { "channel": { "id": channel_id } },
            "activity": cards::activity(card),
        });
        let v = self
            .send(
                reqwest::Method::POST,
                format!("{base}/v3/conversations"),
                body,
            )
            .await?;
        let conv = v["id"].as_str().unwrap_or_default().to_owned();
        let act = v["activityId"].as_str().unwrap_or_default().to_owned();
        if conv.is_empty() {
            return Err(err(
                "v3/conversations",
                "the answer has no conversation id".into(),
            ));
        }
        Ok((conv, act))
    }
}

/// Percent-encodes a path segment (conversation ids contain `:` `;` `@`).
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
