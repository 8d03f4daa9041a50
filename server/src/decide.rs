//! A button click, from either platform, becomes one decision: the chat user is mapped to
//! an identity (unmapped people can read, never decide), the same click is forwarded once,
//! the engine runs every approval check, and the card shows the outcome.

use std::time::Duration;

use medic_agent::protocol::ApprovalVerdict;
use medic_approvals::Actor;

use crate::app::Shared;
use crate::engine::{DecisionReply, DecisionRequest};
use crate::metrics::Name;
use crate::session::apply_status;

/// How long a click is remembered (a double click or a Slack retry is one decision).
const CLICK_TTL: Duration = Duration::from_secs(15 * 60);

/// What the person who clicked is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClickOutcome {
    /// Recorded; the card was updated for everyone.
    Recorded,
    /// The same click was already forwarded.
    Duplicate,
    /// Not accepted; show this to the person only.
    Refused(String),
}

pub(crate) async fn click(
    shared: &Shared,
    actor: Actor,
    approval_id: &str,
    verdict: ApprovalVerdict,
) -> ClickOutcome {
    let key = format!("click:{approval_id}:{actor}:{verdict:?}");
    if !shared.dedup.first(&key, CLICK_TTL) {
        shared
            .metrics
            .inc(Name::Approvals, &[("outcome", "duplicate_click")]);
        return ClickOutcome::Duplicate;
    }
    let r = shared.resolved();
    let Some(identity) = r.identities.resolve(&actor) else {
        shared.dedup.forget(&key);
        shared
            .metrics
            .inc(Name::Approvals, &[("outcome", "refused")]);
        return ClickOutcome::Refused(format!(
            "You ({actor}) are not mapped to a Kubernetes identity, so you can read this plan but not approve or deny it. Ask a medic admin to add you to `identities`."
        ));
    };
    let request = DecisionRequest {
        approval_id: approval_id.to_owned(),
        actor: identity.name.clone(),
        via: actor.to_string(),
        verdict,
        reason: None,
    };
    match shared.engine.decide(request).await {
        Ok(DecisionReply::Accepted(status)) => {
            shared
                .metrics
                .inc(Name::Approvals, &[("outcome", "accepted")]);
            if let Some(post) = shared.approval_get(approval_id) {
                apply_status(shared, &post, status).await;
            }
            ClickOutcome::Recorded
        }
        Ok(DecisionReply::Refused { reason, status }) => {
            // A refused click may be retried once the reason is fixed (a role granted).
            shared.dedup.forget(&key);
            shared
                .metrics
                .inc(Name::Approvals, &[("outcome", "refused")]);
            if let (Some(status), Some(post)) = (status, shared.approval_get(approval_id)) {
                apply_status(shared, &post, status).await;
            }
            ClickOutcome::Refused(format!("Not recorded: {reason}"))
        }
        Ok(DecisionReply::Unknown) => {
            shared.dedup.forget(&key);
            ClickOutcome::Refused(format!(
                "Approval {approval_id} is unknown to medic (it may have expired or been superseded)."
            ))
        }
        Err(e) => {
            shared.dedup.forget(&key);
            tracing::error!(error = %e, approval = approval_id, "the engine could not take a decision");
            ClickOutcome::Refused(
                "medic could not record your decision right now; please try again.".into(),
            )
        }
    }
}
