//! The session protocol: [`Op`]s in, [`Event`]s out.
//!
//! Plain serde types with no I/O. The CLI, the TUI, the chat bots and the webhook server are
//! all clients of this contract, so a finding or a pending approval looks the same
//! everywhere. JSON uses `{"type": "...", ...}` tags in `snake_case`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most bytes of a tool's output carried by one [`Event::ToolOutput`].
pub const TOOL_OUTPUT_PREVIEW_BYTES: usize = 16 * 1024;

pub use medic_tools::ObjectRef;

/// What a client sends to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// A question from a person ("why is checkout returning 503s?").
    UserQuestion {
        /// The question text.
        text: String,
    },
    /// An alert from a webhook (Alertmanager, PagerDuty, …).
    Alert {
        /// Where it came from (`alertmanager`, `pagerduty`, …).
        source: String,
        /// The alert as received (labels, annotations, summary).
        payload: Value,
    },
    /// Stop the running investigation; the session answers with what it has.
    Cancel,
    /// A human decision on a pending approval.
    ApprovalDecision {
        /// The approval being decided.
        approval_id: String,
        /// Who decided (the identity Kubernetes knows).
        actor: String,
        /// Approve or deny.
        decision: ApprovalVerdict,
        /// Why, in the approver's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Change what the next investigation looks at.
    SwitchContext {
        /// Cluster (kubeconfig context) to focus on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        /// Namespace to focus on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// Model to use from now on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// End the session.
    Shutdown,
}

/// A human's verdict on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalVerdict {
    /// Execute the plan as approved.
    Approve,
    /// Do not execute.
    Deny,
}

/// What a session tells its clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The session is ready.
    SessionStarted {
        /// Session id (also in tracing spans and the audit log).
        session_id: String,
        /// `provider/model`, or `none` when analyzers answer alone.
        model: String,
        /// How tools are called (`native`, `json`, or `none`).
        tool_mode: String,
    },
    /// A tool call started.
    ToolCallStarted {
        /// Call id (cited by findings).
        call_id: String,
        /// Tool name.
        tool: String,
        /// Arguments as the model gave them.
        args: Value,
    },
    /// A tool call finished.
    ToolCallFinished {
        /// Call id.
        call_id: String,
        /// Wall time in milliseconds.
        duration_ms: u64,
        /// Tokens of the result the model reads.
        tokens: usize,
        /// `true` unless the tool reported an error.
        ok: bool,
        /// The error the model saw, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// First line of the result, for spinners and logs.
        summary: String,
    },
    /// A finished tool call's output as the model read it (already redacted), cut to
    /// [`TOOL_OUTPUT_PREVIEW_BYTES`] for clients that expand a call in place. Sent right
    /// after its `ToolCallFinished`; clients must show it as text, never interpret it.
    ToolOutput {
        /// Call id.
        call_id: String,
        /// The output (possibly cut; `truncated` says so).
        output: String,
        /// Whether `output` was cut.
        #[serde(default)]
        truncated: bool,
    },
    /// Usage so far (sent after every model call).
    TokenUsage(Usage),
    /// A finding (from an analyzer or the model).
    Finding(Finding),
    /// A proposed remediation.
    Proposal(Proposal),
    /// A plan needs a human decision.
    ApprovalRequested {
        /// Approval id.
        approval_id: String,
        /// The proposal it belongs to.
        proposal_id: String,
        /// Hash of the exact plan being approved.
        plan_hash: String,
        /// What will happen, in one paragraph.
        summary: String,
        /// Who may approve (roles or identities).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
    },
    /// An approval was decided.
    ApprovalDecided {
        /// Approval id.
        approval_id: String,
        /// Who decided.
        actor: String,
        /// The verdict.
        decision: ApprovalVerdict,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// One step of an approved plan ran.
    ExecutionStep {
        /// The proposal being executed.
        proposal_id: String,
        /// Step index (0-based).
        step: usize,
        /// What the step does.
        description: String,
        /// `ok`, `failed`, `skipped` or `undone`.
        status: String,
    },
    /// A piece of the answer text, streamed.
    AnswerDelta {
        /// The text fragment.
        text: String,
    },
    /// The investigation ended.
    Done {
        /// Final usage.
        usage: Usage,
        /// Why it ended.
        stop_reason: StopReason,
    },
    /// Something failed; the session may go on.
    Error {
        /// What failed and what to do.
        message: String,
    },
    /// A non-fatal warning (e.g. a proposal for an unknown playbook was dropped).
    Warning {
        /// What happened.
        message: String,
    },
    /// A proposal became an exact plan (with its dry-run) that can be approved.
    PlanReady {
        /// The proposal the plan implements.
        proposal_id: String,
        /// What a person needs to judge the plan.
        plan: PlanView,
    },
    /// The approval state of a plan changed (a decision arrived from any front end, it
    /// expired, was refused, or execution started/finished).
    ApprovalStatus(ApprovalStatus),
}

/// Why an investigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model (or the analyzers) gave a final answer.
    Answered,
    /// Analyzers answered alone (no model configured).
    AnalyzersOnly,
    /// The step budget was hit; a final answer was forced.
    StepBudget,
    /// The token budget was hit; a final answer was forced.
    TokenBudget,
    /// The wall-time budget was hit; a final answer was forced.
    TimeBudget,
    /// The cost budget was hit; a final answer was forced.
    CostBudget,
    /// The model kept repeating identical calls; a final answer was forced.
    RepeatedCalls,
    /// A client cancelled.
    Cancelled,
    /// The model failed; analyzer findings (if any) were still reported.
    ModelError,
}

/// Counters for one investigation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens sent, summed over model calls.
    pub input_tokens: u64,
    /// Completion tokens received.
    pub output_tokens: u64,
    /// Model calls made.
    pub model_calls: u32,
    /// Tool calls run (repeats that were not re-run are not counted).
    pub tool_calls: u32,
    /// Cost in USD when the provider reported it or prices are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Wall time so far in milliseconds.
    pub wall_ms: u64,
}

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Confidence(pub f32);

impl Confidence {
    /// Low (0.3).
    pub const LOW: Confidence = Confidence(0.3);
    /// Medium (0.6).
    pub const MEDIUM: Confidence = Confidence(0.6);
    /// High (0.9).
    pub const HIGH: Confidence = Confidence(0.9);

    /// Clamp to 0..=1 (NaN becomes 0).
    pub fn new(value: f32) -> Self {
        if value.is_nan() {
            Confidence(0.0)
        } else {
            Confidence(value.clamp(0.0, 1.0))
        }
    }

    /// `low`, `medium` or `high`.
    pub fn level(self) -> &'static str {
        if self.0 >= 0.75 {
            "high"
        } else if self.0 >= 0.45 {
            "medium"
        } else {
            "low"
        }
    }
}

/// What a finding cites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceRef {
    /// A tool call of this investigation.
    ToolCall {
        /// The call id.
        call_id: String,
        /// The tool.
        tool: String,
    },
    /// An object, series, log range, GitHub item or runbook (as the tools cite them).
    Source(medic_tools::EvidenceRef),
    /// A short quote (a log line, an event message) supporting the finding.
    Quote {
        /// The quoted text.
        text: String,
    },
}

/// A remediation a finding suggests: a catalogue playbook and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRef {
    /// Playbook name (one of [`crate::PLAYBOOK_CATALOGUE`]).
    pub name: String,
    /// Parameters for the playbook.
    #[serde(default)]
    pub params: Value,
    /// The object it acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectRef>,
}

/// A root cause with evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id within the session (analyzer findings: `<class>:<object>`).
    pub id: String,
    /// One line.
    pub summary: String,
    /// The cause, in a sentence or two.
    pub root_cause: String,
    /// How sure.
    pub confidence: Confidence,
    /// What supports it.
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
    /// Remediations it suggests.
    #[serde(default)]
    pub suggests: Vec<PlaybookRef>,
    /// Who found it: `analyzer:<class>` or `model`.
    pub source: String,
}

/// A proposed remediation; the playbooks crate turns it into a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Proposal id.
    pub id: String,
    /// Playbook name (from the catalogue).
    pub playbook: String,
    /// Parameters.
    pub params: Value,
    /// The object it acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectRef>,
    /// Why.
    pub rationale: String,
    /// Findings it addresses.
    pub finding_ids: Vec<String>,
}

/// A plan as people see it: every front end renders this, so the TUI, Slack, Teams and the
/// CLI show the same facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    /// Plan id.
    pub plan_id: String,
    /// Playbook name, e.g. `rollback`.
    pub playbook: String,
    /// Cluster the plan acts on.
    pub cluster: String,
    /// One-line title.
    pub title: String,
    /// Why this plan and not another, in a few sentences (the playbook's rationale: e.g.
    /// that a GitOps-managed workload is fixed through Git because a live patch would be
    /// reverted by the next sync).
    #[serde(default)]
    pub rationale: String,
    /// Risk level: `low`, `medium`, `high` or `critical`.
    pub risk: String,
    /// Blast radius in words, e.g. "2 pods of ai/llama (33% of replicas)".
    pub blast_radius: String,
    /// The steps, in order, in words.
    pub steps: Vec<String>,
    /// Unified diff of the server-side dry-run, one block per object.
    pub diff: String,
    /// Post-checks and their deadline, in words.
    pub post_checks: Vec<String>,
    /// The undo plan's steps, in words.
    pub undo: Vec<String>,
    /// Plan hash (sha256 hex) the approval is bound to.
    pub hash: String,
}

/// Where an approval stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStatus {
    /// Approval id.
    pub approval_id: String,
    /// Proposal id.
    pub proposal_id: String,
    /// Plan hash the approval is bound to.
    pub plan_hash: String,
    /// `pending`, `approved`, `denied`, `expired`, `executing`, `executed`, `failed` or `undone`.
    pub state: String,
    /// Who approved so far (identity names).
    pub approved_by: Vec<String>,
    /// How many approvals are needed in all.
    pub needed: u32,
    /// Roles (or people) still needed, in words.
    pub waiting_for: Vec<String>,
    /// When the request expires (RFC 3339).
    pub expires_at: String,
    /// The last refusal, e.g. "alice requested this plan and cannot approve it".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The identity that asked for the plan, when it is mapped: front ends do not offer it
    /// the approve button (the four-eyes rule), wherever the request was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// Whether an approval `state` (see [`ApprovalStatus::state`]) is final: nothing more will
/// happen to the approval once it is executed, failed, undone, denied, expired or refused.
pub fn approval_settled(state: &str) -> bool {
    matches!(
        state,
        "executed" | "failed" | "undone" | "denied" | "expired" | "refused"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn sample_finding() -> Finding {
        Finding {
            id: "crashloop:Pod/shop/api-7d9f".into(),
            summary: "api-7d9f is in CrashLoopBackOff (OOMKilled, exit 137)".into(),
            root_cause: "container `api` exceeds its 256Mi memory limit".into(),
            confidence: Confidence::HIGH,
            evidence: vec![
                EvidenceRef::ToolCall {
                    call_id: "call_1".into(),
                    tool: "k8s_list".into(),
                },
                EvidenceRef::Source(medic_tools::EvidenceRef::Object(ObjectRef {
                    cluster: "prod-eu".into(),
                    kind: "Pod".into(),
                    namespace: Some("shop".into()),
                    name: "api-7d9f".into(),
                    uid: None,
                })),
            ],
            suggests: vec![PlaybookRef {
                name: "raise-memory-limit".into(),
                params: json!({"container": "api", "memory": "512Mi"}),
                target: Some(ObjectRef {
                    cluster: "prod-eu".into(),
                    kind: "Deployment".into(),
                    namespace: Some("shop".into()),
                    name: "api".into(),
                    uid: None,
                }),
            }],
            source: "analyzer:crashloop".into(),
        }
    }

    #[test]
    fn finding_event_snapshot() {
        insta::assert_json_snapshot!(Event::Finding(sample_finding()));
    }

    #[test]
    fn tool_and_done_events_snapshot() {
        let events = vec![
            Event::ToolCallStarted {
                call_id: "call_1".into(),
                tool: "k8s_list".into(),
                args: json!({"kind": "Pod", "namespace": "shop"}),
            },
            Event::ToolCallFinished {
                call_id: "call_1".into(),
                duration_ms: 12,
                tokens: 340,
                ok: true,
                error: None,
                summary: "3 pods".into(),
            },
            Event::Done {
                usage: Usage {
                    input_tokens: 2100,
                    output_tokens: 230,
                    model_calls: 2,
                    tool_calls: 1,
                    cost_usd: None,
                    wall_ms: 1500,
                },
                stop_reason: StopReason::Answered,
            },
        ];
        insta::assert_json_snapshot!(events);
    }

    #[test]
    fn ops_round_trip() {
        let ops = vec![
            Op::UserQuestion {
                text: "why 503?".into(),
            },
            Op::Alert {
                source: "alertmanager".into(),
                payload: json!({"labels": {"alertname": "KubePodCrashLooping"}}),
            },
            Op::ApprovalDecision {
                approval_id: "ap_1".into(),
                actor: "alice".into(),
                decision: ApprovalVerdict::Approve,
                reason: None,
            },
            Op::SwitchContext {
                cluster: Some("prod-us".into()),
                namespace: None,
                model: None,
            },
            Op::Cancel,
            Op::Shutdown,
        ];
        let text = serde_json::to_string(&ops).unwrap();
        let back: Vec<Op> = serde_json::from_str(&text).unwrap();
        pretty_assertions::assert_eq!(ops, back);
        let cancel: Op = serde_json::from_str(r#"{"type":"cancel"}"#).unwrap();
        assert_eq!(cancel, Op::Cancel);
    }

    #[test]
    fn confidence_levels() {
        assert_eq!(Confidence::new(1.7).0, 1.0);
        assert_eq!(Confidence::new(f32::NAN).0, 0.0);
        assert_eq!(Confidence::HIGH.level(), "high");
        assert_eq!(Confidence::MEDIUM.level(), "medium");
        assert_eq!(Confidence::LOW.level(), "low");
    }
}
