//! The few Slack Web API methods medic calls: `chat.postMessage`, `chat.update`,
//! `chat.postEphemeral`. The base URL is configurable so tests record calls locally.

use serde_json::{Value, json};

use crate::card::Card;
use crate::error::{Result, ServerError};
use crate::slack::blocks;

/// A Slack Web API client bound to one bot token.
pub(crate) struct SlackApi<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub token: &'a str,
}

impl SlackApi<'_> {
    async fn call(&self, method: &str, body: Value) -> Result<Value> {
        let url = format!("{}/{method}", self.base.trim_end_matches('/'));
        let err = |reason: String| ServerError::Chat {
            platform: "slack",
            method: method.to_owned(),
            reason,
        };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| err(format!("HTTP {status}, body is not JSON: {e}")))?;
        if v["ok"].as_bool() != Some(true) {
            return Err(err(format!(
                "HTTP {status}, error `{}`",
                v["error"].as_str().unwrap_or("unknown")
            )));
        }
        Ok(v)
    }

    /// Posts a card; returns (channel id, message ts).
    pub async fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        card: &Card,
    ) -> Result<(String, String)> {
        let mut body = json!({
            "channel": channel,
            "text": blocks::fallback(card),
            "blocks": blocks::blocks(card),
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let v = self.call("chat.postMessage", body).await?;
        let ch = v["channel"].as_str().unwrap_or(channel).to_owned();
        let ts = v["ts"].as_str().unwrap_or_default().to_owned();
        Ok((ch, ts))
    }

    /// Replaces a message's content.
    pub async fn update(&self, channel: &str, ts: &str, card: &Card) -> Result<()> {
        let body = json!({ "channel": channel, "ts": ts, "text": blocks::fallback(card), "blocks": blocks::blocks(card) });
        self.call("chat.update", body).await.map(|_| ())
    }

    /// Shows `text` to one user only.
    pub async fn ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<()> {
        let mut body = json!({ "channel": channel, "user": user, "text": blocks::escape(text) });
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        self.call("chat.postEphemeral", body).await.map(|_| ())
    }
}
