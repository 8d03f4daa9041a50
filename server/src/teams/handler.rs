//! `POST /teams/messages`: Bot Framework activities. A message is a question (mentions
//! stripped) answered in the same conversation; a message whose `value` carries
//! `medic_action` is an Adaptive Card button press (Approve / Deny).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_agent::protocol::{ApprovalVerdict, Op};
use medic_approvals::Actor;
use serde_json::Value;

use crate::app::Shared;
use crate::chat::Surface;
use crate::decide::{ClickOutcome, click};
use crate::engine::{Origin, SessionRequest};
use crate::metrics::Name;
use crate::session::{self, Spec};
use crate::teams::auth::{AuthFailure, authenticate};

/// Removes `<at>…</at>` mentions from a Teams message.
fn strip_mentions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("<at>") {
        out.push_str(&rest[..i]);
        match rest[i..].find("</at>") {
            Some(j) => rest = &rest[i + j + 5..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `POST /teams/messages`.
pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = shared.resolved();
    let Some(cfg) = r.config.teams.clone() else {
        return (StatusCode::NOT_FOUND, "Teams is not configured").into_response();
    };
    let activity: Option<Value> = serde_json::from_slice(&body).ok();
    let service_url = activity
        .as_ref()
        .and_then(|a| a["serviceUrl"].as_str())
        .map(str::to_owned);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(fail) = authenticate(
        &shared.http,
        &cfg,
        &shared.teams_keys,
        auth,
        service_url.as_deref(),
    )
    .await
    {
        let (code, reason) = match &fail {
            AuthFailure::Missing => (StatusCode::UNAUTHORIZED, "missing bearer token".to_owned()),
            AuthFailure::Invalid(why) => (StatusCode::FORBIDDEN, why.clone()),
            AuthFailure::KeysUnavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why.clone()),
        };
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", "teams_auth")]);
        tracing::warn!(%reason, "Teams request rejected");
        return (code, reason).into_response();
    }
    let (Some(activity), Some(service_url)) = (activity, service_url) else {
        return (StatusCode::BAD_REQUEST, "not a Bot Framework activity").into_response();
    };
    if activity["type"].as_str() != Some("message") {
        return StatusCode::OK.into_response();
    }
    let conversation = activity["conversation"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let activity_id = activity["id"].as_str().unwrap_or_default().to_owned();
    let from = &activity["from"];
    let actors: Vec<Actor> = [from["aadObjectId"].as_str(), from["id"].as_str()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .map(|s| Actor::Teams(s.to_owned()))
        .collect();
    let actor = actors
        .iter()
        .find(|a| r.identities.resolve(a).is_some())
        .or(actors.first())
        .cloned();
    let Some(actor) = actor else {
        return (StatusCode::BAD_REQUEST, "the activity has no sender").into_response();
    };
    let value = &activity["value"];
    if let Some(action) = value["medic_action"].as_str() {
        let verdict = match action {
            "approve" => ApprovalVerdict::Approve,
            "deny" => ApprovalVerdict::Deny,
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    "medic_action must be approve or deny",
                )
                    .into_response();
            }
        };
        let Some(approval_id) = value["approval_id"].as_str().map(str::to_owned) else {
            return (StatusCode::BAD_REQUEST, "approval_id is missing").into_response();
        };
        let reply_to = activity["replyToId"].as_str().map(str::to_owned);
        let s = shared.clone();
        tokio::spawn(async move {
            if let ClickOutcome::Refused(text) =
                click(&s, actor.clone(), &approval_id, verdict).await
            {
                // Teams has no ephemeral messages in channels: reply in the card's thread.
                let mut surface = Surface::Teams {
                    service_url,
                    conversation,
                    reply_to,
                };
                if let Err(e) = s.post(&mut surface, &crate::card::notice(text)).await {
                    tracing::warn!(error = %e, "could not reply with the refusal");
                }
            }
        });
        return StatusCode::OK.into_response();
    }
    let question = strip_mentions(activity["text"].as_str().unwrap_or_default());
    let requester = r
        .identities
        .resolve(&actor)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| actor.to_string());
    let surface = Surface::Teams {
        service_url,
        conversation: conversation.clone(),
        reply_to: Some(activity_id.clone()),
    };
    let spend_wait = shared.spend.over_cap(&r.config.spend);
    let s = shared.clone();
    tokio::spawn(async move {
        let mut surface = surface;
        if question.is_empty() {
            let _ = s
                .post(
                    &mut surface,
                    &crate::card::notice(
                        "Ask me about your cluster, e.g. “why is checkout returning 503s?”",
                    ),
                )
                .await;
            return;
        }
        if let Some(wait) = spend_wait {
            let text = format!(
                "The hourly model spend cap is reached; ask again in about {} minute(s).",
                wait.as_secs().div_ceil(60)
            );
            let _ = s.post(&mut surface, &crate::card::notice(text)).await;
            return;
        }
        let spec = Spec {
            request: SessionRequest {
                key: format!("teams:{conversation}:{activity_id}"),
                origin: Origin::Teams,
                requester,
                op: Op::UserQuestion {
                    text: question.clone(),
                },
            },
            surface,
            title: crate::card::clip(&question, 150),
            group_key: None,
        };
        session::run(s, spec, None).await;
    });
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_mentions_are_stripped() {
        assert_eq!(strip_mentions("<at>medic</at> why 503?"), "why 503?");
    }
}
