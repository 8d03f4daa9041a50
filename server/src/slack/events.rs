//! `POST /slack/events` (Events API) and `POST /slack/interactivity` (button clicks).
//! Both verify the signature on the raw body first, reject replays, answer at once and do
//! the work in the background, well inside Slack's 3-second limit.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use medic_agent::protocol::{ApprovalVerdict, Op};
use medic_approvals::Actor;
use serde_json::{Value, json};

use crate::app::Shared;
use crate::chat::Surface;
use crate::decide::{ClickOutcome, click};
use crate::engine::{Origin, SessionRequest};
use crate::metrics::Name;
use crate::session::{self, Spec};
use crate::slack::blocks::{APPROVE, DENY};
use crate::slack::verify::{Rejection, verify};

/// How long an event id is remembered against Slack's retries.
const EVENT_TTL: Duration = Duration::from_secs(3600);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signature, window and replay checks; `Err` is the response to send.
fn authenticate(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), Box<Response>> {
    let r = shared.resolved();
    let Some(secret) = r.slack_signing_secret.as_deref() else {
        return Err(Box::new(
            (StatusCode::NOT_FOUND, "Slack is not configured").into_response(),
        ));
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sig = h("x-slack-signature");
    let result = verify(
        secret,
        h("x-slack-request-timestamp"),
        sig,
        body,
        unix_now(),
    )
    .and_then(|()| {
        if shared.replay.first_time(sig.unwrap_or_default()) {
            Ok(())
        } else {
            Err(Rejection::Replayed)
        }
    });
    result.map_err(|rej| {
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", rej.reason())]);
        tracing::warn!(reason = rej.reason(), "Slack request rejected");
        Box::new((StatusCode::UNAUTHORIZED, rej.reason()).into_response())
    })
}

/// Removes `<@U…>` mentions (the bot's own among them) from a message.
fn strip_mentions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("<@") {
        out.push_str(&rest[..i]);
        match rest[i..].find('>') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `POST /slack/events`.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authenticate(&shared, &headers, &body) {
        return *resp;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response(),
    };
    match v["type"].as_str() {
        Some("url_verification") => {
            axum::Json(json!({ "challenge": v["challenge"] })).into_response()
        }
        Some("event_callback") => {
            let event_id = v["event_id"].as_str().unwrap_or_default();
            if !event_id.is_empty()
                && !shared
                    .dedup
                    .first(&format!("slack-event:{event_id}"), EVENT_TTL)
            {
                // A retry (X-Slack-Retry-Num) of an event already being handled.
                let retry = headers
                    .get("x-slack-retry-num")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("?");
                tracing::info!(event_id, retry, "duplicate Slack event ignored");
                shared
                    .metrics
                    .inc(Name::Rejected, &[("reason", "slack_retry_duplicate")]);
                return StatusCode::OK.into_response();
            }
            let ev = &v["event"];
            let kind = ev["type"].as_str().unwrap_or_default();
            let direct = kind == "message" && ev["channel_type"].as_str() == Some("im");
            let from_bot = ev.get("bot_id").is_some_and(|b| !b.is_null())
                || ev.get("subtype").is_some_and(|s| !s.is_null());
            if (kind == "app_mention" || direct) && !from_bot {
                let question = strip_mentions(ev["text"].as_str().unwrap_or_default());
                let channel = ev["channel"].as_str().unwrap_or_default().to_owned();
                let user = ev["user"].as_str().unwrap_or_default().to_owned();
                let ts = ev["thread_ts"]
                    .as_str()
                    .or(ev["ts"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                tokio::spawn(ask(shared.clone(), channel, ts, user, question));
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

async fn ask(
    shared: Arc<Shared>,
    channel: String,
    thread_ts: String,
    user: String,
    question: String,
) {
    let mut surface = Surface::Slack {
        channel: channel.clone(),
        thread_ts: Some(thread_ts.clone()),
    };
    if question.is_empty() {
        let _ = shared
            .post(
                &mut surface,
                &crate::card::notice(
                    "Ask me about your cluster, e.g. “why is checkout returning 503s?”",
                ),
            )
            .await;
        return;
    }
    let r = shared.resolved();
    if let Some(wait) = shared.spend.over_cap(&r.config.spend) {
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", "spend_cap")]);
        let text = format!(
            "The hourly model spend cap is reached; ask again in about {} minute(s).",
            wait.as_secs().div_ceil(60)
        );
        let _ = shared.post(&mut surface, &crate::card::notice(text)).await;
        return;
    }
    let actor = Actor::Slack(user.clone());
    let requester = r
        .identities
        .resolve(&actor)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| actor.to_string());
    let spec = Spec {
        request: SessionRequest {
            key: format!("slack:{channel}:{thread_ts}"),
            origin: Origin::Slack,
            requester,
            op: Op::UserQuestion {
                text: question.clone(),
            },
        },
        surface,
        title: crate::card::clip(&question, 150),
        group_key: None,
    };
    session::run(shared, spec, None).await;
}

/// `POST /slack/interactivity` (`application/x-www-form-urlencoded`, field `payload`).
pub(crate) async fn interactivity(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authenticate(&shared, &headers, &body) {
        return *resp;
    }
    let Some(payload) = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
    else {
        return (StatusCode::BAD_REQUEST, "expected a form field `payload`").into_response();
    };
    let v: Value = match serde_json::from_str(&payload) {
        Ok(v) => v,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("payload is not JSON: {e}")).into_response();
        }
    };
    if v["type"].as_str() != Some("block_actions") {
        return StatusCode::OK.into_response();
    }
    let user = v["user"]["id"].as_str().unwrap_or_default().to_owned();
    let channel = v["channel"]["id"]
        .as_str()
        .or(v["container"]["channel_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let thread = v["container"]["thread_ts"]
        .as_str()
        .or(v["message"]["thread_ts"].as_str())
        .map(str::to_owned);
    for a in v["actions"].as_array().into_iter().flatten() {
        let verdict = match a["action_id"].as_str() {
            Some(APPROVE) => ApprovalVerdict::Approve,
            Some(DENY) => ApprovalVerdict::Deny,
            _ => continue,
        };
        let Some(approval_id) = a["value"].as_str().map(str::to_owned) else {
            continue;
        };
        if user.is_empty() {
            continue;
        }
        let (s, user, channel, thread) = (
            shared.clone(),
            user.clone(),
            channel.clone(),
            thread.clone(),
        );
        tokio::spawn(async move {
            if let ClickOutcome::Refused(text) =
                click(&s, Actor::Slack(user.clone()), &approval_id, verdict).await
                && let Err(e) = s
                    .slack_ephemeral(&channel, &user, thread.as_deref(), &text)
                    .await
            {
                tracing::warn!(error = %e, "could not send the ephemeral refusal");
            }
        });
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(
            strip_mentions("<@U0MEDIC> why is   checkout down?"),
            "why is checkout down?"
        );
        assert_eq!(strip_mentions("hi <@U1|bob> and <@U2"), "hi and <@U2");
    }
}
