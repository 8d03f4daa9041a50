//! What front ends show: a [`Plan`] as a [`PlanView`], an approval as an [`ApprovalStatus`].
//!
//! Every front end renders these two protocol types, so a plan reads the same in the TUI,
//! Slack, Teams and on the CLI.

use medic_agent::protocol::{ApprovalStatus, PlanView};
use medic_approvals::{ApprovalState, Status};
use medic_playbooks::Plan;

/// The people-facing view of a plan. `hash` is the one approvals bind to.
pub fn plan_view(plan: &Plan, hash: &str) -> PlanView {
    let b = &plan.blast_radius;
    let mut blast = Vec::new();
    if b.pods > 0 {
        blast.push(format!("{} pod(s)", b.pods));
    }
    if b.replicas > 0 {
        blast.push(format!("{} replica(s)", b.replicas));
    }
    if b.traffic_share_percent > 0 {
        blast.push(format!("{}% of traffic", b.traffic_share_percent));
    }
    if !b.nodes.is_empty() {
        blast.push(format!("node(s) {}", b.nodes.join(", ")));
    }
    if !b.namespaces.is_empty() {
        blast.push(format!("namespace(s) {}", b.namespaces.join(", ")));
    }
    let diff = plan
        .dry_run
        .iter()
        .map(|d| {
            let status = if d.ok {
                "dry-run ok".to_string()
            } else if d.deferred {
                format!(
                    "dry-run deferred ({}): {} — refused only until the steps before it have run; dry-run again just before it runs",
                    d.api_status, d.message
                )
            } else {
                format!("dry-run FAILED ({}): {}", d.api_status, d.message)
            };
            format!("# step {} — {status}\n{}", d.step, d.diff)
        })
        .collect::<Vec<_>>()
        .join("\n");
    PlanView {
        plan_id: plan.id.clone(),
        playbook: plan.playbook.clone(),
        cluster: plan.cluster.clone(),
        title: plan.title.clone(),
        rationale: plan.rationale.clone(),
        risk: plan.risk.as_str().to_string(),
        blast_radius: if blast.is_empty() {
            "no workload disruption".to_string()
        } else {
            blast.join(", ")
        },
        steps: plan
            .steps
            .iter()
            .map(|s| format!("[{}] {}", s.cluster, s.description))
            .collect(),
        diff,
        post_checks: plan
            .post_checks
            .iter()
            .map(|c| format!("{} (within {}s)", c.description, c.deadline_seconds))
            .collect(),
        undo: plan
            .undo
            .iter()
            .map(|s| format!("[{}] {}", s.cluster, s.description))
            .collect(),
        hash: hash.to_string(),
    }
}

/// The status of an approval request as front ends show it. `state` overrides the
/// request's own status for execution phases (`executing`, `executed`, `failed`, `undone`);
/// `proposal_id` is the session's proposal the plan came from (the plan id when unknown).
pub fn approval_status(
    s: &ApprovalState,
    proposal_id: Option<&str>,
    state: Option<&str>,
    refusal: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApprovalStatus {
    let progress = s.progress();
    let computed = match s.status {
        Status::Pending if s.request.expires_at <= now => "expired",
        Status::Pending => "pending",
        Status::Approved => match s.finished.as_deref() {
            Some(phase) => phase,
            None if s.executing => "executing",
            None => "approved",
        },
        Status::Denied => "denied",
    };
    let mut waiting_for = Vec::new();
    if s.status == Status::Pending && !progress.complete {
        let left = progress.need.saturating_sub(progress.have);
        let roles = if progress.missing_roles.is_empty() {
            "an eligible approver".to_string()
        } else {
            progress.missing_roles.join(" or ")
        };
        waiting_for.push(format!("{left} more approval(s) from {roles}"));
    }
    ApprovalStatus {
        approval_id: s.request.id.clone(),
        proposal_id: proposal_id
            .map(str::to_string)
            .unwrap_or_else(|| s.request.summary.plan_id.clone()),
        plan_hash: s.request.plan_hash.to_string(),
        state: state.unwrap_or(computed).to_string(),
        approved_by: s.grants.iter().map(|g| g.identity.clone()).collect(),
        needed: progress.need,
        waiting_for,
        expires_at: s.request.expires_at.to_rfc3339(),
        refusal: refusal.or_else(|| {
            s.denial
                .as_ref()
                .map(|d| format!("denied by {}: {}", d.identity, d.reason))
        }),
        requested_by: s.request.requester_identity.clone(),
    }
}
