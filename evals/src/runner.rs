//! Running one scenario end to end: sandbox → engine → start op → events until `Done` →
//! score → approve as the eligible identities → wait for execution → post-checks and
//! `never` against the request log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medic_agent::protocol::{ApprovalVerdict, ObjectRef, Op};
use medic_sandbox::{Bundle, Sandbox, SandboxHandle, SandboxOptions};
use serde::{Deserialize, Serialize};

use crate::checks::{self, CheckOutcome};
use crate::engine::{EngineFactory, EngineLink, EvalMode, ScenarioRun, redacted, start_op};
use crate::error::{Error, Result};
use crate::expected::{Expected, Remediation};
use crate::kinds::KindTable;
use crate::never::{NeverMatcher, RequestSummary, is_mutation};
use crate::report::{ApprovalTrace, ScenarioResult};
use crate::score::{self, Owners};
use crate::transcript::{Transcript, await_status, next_event, trace_has};

/// Which form of an identity goes into `Op::ApprovalDecision.actor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorForm {
    /// The Kubernetes user (`alice@corp.example`), as the protocol documents.
    KubeUser,
    /// The scenario's short name (`alice`).
    Name,
}

/// How scenarios are run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How the engine answers.
    pub mode: EvalMode,
    /// Scenarios run at once (each on its own sandbox).
    pub jobs: usize,
    /// Keep scenarios whose name contains this, or that carry it as a tag.
    pub filter: Option<String>,
    /// Wall time from the start op to `Done`; then `Cancel` is sent.
    pub investigation_budget: Duration,
    /// After `Done`, how long to wait without any event for plans and approval requests.
    pub settle: Duration,
    /// How long to wait for an approval to be acknowledged and for its plan to finish.
    pub approval_budget: Duration,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// What `actor` carries in approval decisions.
    pub actor: ActorForm,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: EvalMode::NoModel,
            jobs: 1,
            filter: None,
            investigation_budget: Duration::from_secs(300),
            settle: Duration::from_secs(10),
            approval_budget: Duration::from_secs(120),
            progress: false,
            actor: ActorForm::KubeUser,
        }
    }
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Folder name.
    pub name: String,
    /// Folder.
    pub dir: PathBuf,
    /// The bundle (with `expected`).
    pub bundle: Bundle,
    /// The parsed `expected`.
    pub expected: Expected,
    /// Kinds of this bundle.
    pub kinds: KindTable,
}

/// Loads the bundle in `dir` and parses its `expected`; every kind `expected` names must be
/// known.
pub fn load_scenario(dir: &Path) -> Result<LoadedScenario> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let bundle = Bundle::load(dir)?;
    let raw = bundle
        .scenario
        .expected
        .clone()
        .ok_or_else(|| Error::NoExpected {
            scenario: name.clone(),
        })?;
    let expected = Expected::parse(&name, &raw)?;
    let kinds = KindTable::for_bundle(&bundle);
    for kind in expected.kinds() {
        if kind != "Eviction" && kinds.lookup(kind).is_none() {
            return Err(Error::UnknownKind {
                scenario: name.clone(),
                kind: kind.into(),
            });
        }
    }
    Ok(LoadedScenario {
        name,
        dir: dir.to_path_buf(),
        bundle,
        expected,
        kinds,
    })
}

/// Scenario folders (those holding a `scenario.yaml`) directly under `dir`, sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.yaml").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Whether a scenario passes the filter (name substring or exact tag).
pub fn matches_filter(name: &str, tags: &[String], filter: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(f) => name.contains(f) || tags.iter().any(|t| t == f),
    }
}

/// Owners of an object, read from the live sandbox's `ownerReferences`.
struct SandboxOwners<'a> {
    sandbox: &'a SandboxHandle,
    kinds: &'a KindTable,
    default_cluster: &'a str,
}

impl Owners for SandboxOwners<'_> {
    fn owners(&self, o: &ObjectRef) -> Vec<ObjectRef> {
        let Some(info) = self.kinds.lookup(&o.kind) else {
            return vec![];
        };
        let cluster = if o.cluster.is_empty() {
            self.default_cluster
        } else {
            o.cluster.as_str()
        };
        let ns = o.namespace.as_deref().unwrap_or_default();
        let Some(obj) = self
            .sandbox
            .object(cluster, &info.api_version(), &info.kind, ns, &o.name)
        else {
            return vec![];
        };
        let refs = obj["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        refs.iter()
            .filter_map(|r| {
                let kind = r["kind"].as_str()?;
                let name = r["name"].as_str()?;
                let namespaced = self.kinds.lookup(kind).is_none_or(|k| k.namespaced);
                Some(ObjectRef {
                    cluster: cluster.to_string(),
                    kind: kind.to_string(),
                    namespace: if namespaced {
                        o.namespace.clone()
                    } else {
                        None
                    },
                    name: name.to_string(),
                    uid: None,
                })
            })
            .collect()
    }
}

/// Runs one loaded scenario with `factory` and scores it. Infrastructure failures (sandbox,
/// engine) are reported in the result's `error`, never as a panic.
pub async fn run_scenario<F: EngineFactory>(
    factory: &F,
    scenario: &LoadedScenario,
    opts: &RunOptions,
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult::new(&scenario.name, &scenario.expected.tags, &opts.mode);
    let sandbox = match Sandbox::start(&scenario.bundle, SandboxOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            result.fail_infrastructure(format!("sandbox did not start: {e}"));
            result.wall_ms = started.elapsed().as_millis() as u64;
            return result;
        }
    };
    if let Err(e) = drive(factory, scenario, opts, &sandbox, &mut result).await {
        result.fail_infrastructure(e.to_string());
    }
    // `never` is checked whatever happened: a crashed engine may still have acted.
    match NeverMatcher::new(&scenario.name, &scenario.expected.never, &scenario.kinds) {
        Ok(m) => result.never_violations = m.violations(&sandbox.request_log()),
        Err(e) => result.fail_infrastructure(e.to_string()),
    }
    sandbox.shutdown().await;
    result.wall_ms = started.elapsed().as_millis() as u64;
    result.finish();
    result
}

async fn drive<F: EngineFactory>(
    factory: &F,
    scenario: &LoadedScenario,
    opts: &RunOptions,
    sandbox: &SandboxHandle,
    result: &mut ScenarioResult,
) -> Result<()> {
    let bundle = redacted(&scenario.bundle);
    let run = ScenarioRun {
        name: &scenario.name,
        dir: &scenario.dir,
        bundle: &bundle,
        sandbox,
        mode: &opts.mode,
        requester: scenario.expected.requester.as_deref(),
    };
    let EngineLink { ops, mut events } =
        match tokio::time::timeout(Duration::from_secs(60), factory.open(&run)).await {
            Ok(link) => link?,
            Err(_) => {
                return Err(Error::Engine(
                    "the engine factory did not open a session within 60 s".into(),
                ));
            }
        };
    let start = start_op(&bundle).ok_or_else(|| {
        Error::Engine("scenario.yaml has neither start.question nor start.alert".into())
    })?;
    let send = |op: Op| {
        ops.send(op).map_err(|_| Error::EngineClosed {
            while_doing: "sending an op".into(),
        })
    };
    send(start)?;

    // 1. The investigation, until Done (or the budget; then Cancel and a short grace).
    let mut t = Transcript::default();
    let deadline = Instant::now() + opts.investigation_budget;
    while !t.done {
        match next_event(&mut events, deadline, "waiting for Done").await? {
            Some(ev) => t.absorb(ev),
            None => break,
        }
    }
    if !t.done {
        result.notes.push(format!(
            "investigation exceeded its {:.1} s budget; sent Cancel",
            opts.investigation_budget.as_secs_f64()
        ));
        send(Op::Cancel)?;
        let grace = Instant::now() + Duration::from_secs(10);
        while !t.done {
            match next_event(&mut events, grace, "waiting for Done after Cancel").await? {
                Some(ev) => t.absorb(ev),
                None => break,
            }
        }
    }

    // 2. Plans and approval requests for the proposals arrive after Done.
    // The quiet timer restarts on every event; the approval budget caps the whole wait.
    let settle_cap = Instant::now() + opts.approval_budget;
    while t.unsettled() > 0 {
        match next_event(
            &mut events,
            (Instant::now() + opts.settle).min(settle_cap),
            "waiting for approval requests",
        )
        .await?
        {
            Some(ev) => t.absorb(ev),
            None => {
                result.notes.push(format!(
                    "{} proposal(s) got no approval request within {:.1} s of quiet",
                    t.unsettled(),
                    opts.settle.as_secs_f64()
                ));
                break;
            }
        }
    }
    while let Ok(ev) = events.try_recv() {
        t.absorb(ev);
    }

    // 3. Score what was said, before anything changes the world.
    let default_cluster = scenario
        .bundle
        .clusters
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let owners = SandboxOwners {
        sandbox,
        kinds: &scenario.kinds,
        default_cluster: &default_cluster,
    };
    let e = &scenario.expected;
    result.root_cause = score::score_root_cause(
        e,
        &t.findings,
        &t.proposals,
        &t.answer,
        &default_cluster,
        &owners,
    );
    result.remediation = score::score_remediation(e, &t.proposals, &default_cluster);
    result.top_finding = score::top_finding(&t.findings).map(|f| f.summary.clone());
    result.proposals = t
        .proposals
        .iter()
        .map(|p| {
            format!(
                "{} on {}",
                p.playbook,
                p.target.as_ref().map(|o| o.display()).unwrap_or_default()
            )
        })
        .collect();
    result.engine_errors = t.errors.clone();

    // 4. Nothing may have been executed before anyone approved.
    let before = sandbox.request_log();
    result.unapproved_executions = before
        .iter()
        .filter(|r| is_mutation(r))
        .map(RequestSummary::of)
        .collect();

    // 5. Approve every requested plan: first as the requester when the scenario names one
    //    (the engine must refuse), then as the eligible identities, one at a time.
    let actor_of = |i: &medic_sandbox::bundle::Identity| match opts.actor {
        ActorForm::KubeUser => i.kube_user.clone(),
        ActorForm::Name => i.name.clone(),
    };
    let identities = &scenario.bundle.scenario.identities;
    let requester = e
        .requester
        .as_deref()
        .and_then(|r| identities.iter().find(|i| i.name == r));
    let approvers: Vec<(String, String)> = identities
        .iter()
        .filter(|i| !i.agent && e.requester.as_deref() != Some(i.name.as_str()))
        .map(|i| (i.name.clone(), actor_of(i)))
        .collect();
    let approval_ids: Vec<String> = t.approvals.iter().map(|(a, _)| a.clone()).collect();
    // Approvals of the plan `expected.remediation` names: it must end `executed`.
    let mut expected_approvals = Vec::new();
    for approval_id in approval_ids {
        let proposal = t
            .approvals
            .iter()
            .find(|(a, _)| *a == approval_id)
            .and_then(|(_, pid)| t.proposals.iter().find(|p| p.id == *pid));
        if proposal.is_some_and(|p| score::is_expected_plan(e, p, &default_cluster)) {
            expected_approvals.push(result.approvals.len());
        }
        let plan = proposal.map_or_else(
            || format!("approval {approval_id}"),
            |p| {
                let target = p.target.as_ref().map(|o| o.display()).unwrap_or_default();
                format!("{} on {target}", p.playbook)
            },
        );
        let mut trace = ApprovalTrace {
            approval_id: approval_id.clone(),
            plan,
            approved_as: vec![],
            state: t
                .statuses
                .get(&approval_id)
                .map_or_else(|| "pending".into(), |s| s.state.clone()),
            refusals: vec![],
            self_approval_accepted: None,
        };
        let mut attempts: Vec<(String, String, Duration)> = Vec::new();
        if let Some(r) = requester {
            attempts.push((r.name.clone(), actor_of(r), opts.settle));
        }
        attempts.extend(
            approvers
                .iter()
                .map(|(n, a)| (n.clone(), a.clone(), opts.approval_budget)),
        );
        for (index, (name, actor, wait)) in attempts.into_iter().enumerate() {
            if trace.state != "pending" {
                break;
            }
            let is_requester = requester.is_some() && index == 0;
            send(Op::ApprovalDecision {
                approval_id: approval_id.clone(),
                actor: actor.clone(),
                decision: ApprovalVerdict::Approve,
                reason: Some(if is_requester {
                    format!("medic eval: {name} requested this plan and tries to approve it")
                } else {
                    format!("medic eval approves as eligible identity {name}")
                }),
            })?;
            trace.approved_as.push(name.clone());
            let (status, engine_error) =
                await_status(&mut events, &mut t, &approval_id, &mut trace, wait).await?;
            let answered_with_error = engine_error.is_some();
            if let Some(message) = engine_error {
                result.notes.push(format!(
                    "approving as {name}: the engine answered with an error: {message}"
                ));
            }
            if let Some(r) = requester {
                let by_requester = trace_has(&t, &approval_id, &r.name, &r.kube_user);
                let accepted = by_requester
                    || (is_requester && trace.state != "pending" && trace.state != "denied");
                trace.self_approval_accepted =
                    Some(trace.self_approval_accepted.unwrap_or(false) || accepted);
            }
            if status.is_none() {
                if is_requester || answered_with_error {
                    // No answer to the self-approval is fine (it may be refused silently).
                    continue;
                }
                result.notes.push(format!(
                    "approval {approval_id}: no status within {:.1} s after approving as {name}",
                    wait.as_secs_f64()
                ));
                break;
            }
        }
        result.approvals.push(trace);
    }

    // 6. Post-checks on the live state.
    if !e.after_execution.is_empty() {
        let mut outcomes = checks::evaluate(&e.after_execution, sandbox, &scenario.kinds);
        // The world may look fixed while medic reported its plan as failed and undid what
        // it could (evictions cannot be undone): that is not a passed post-check.
        for a in expected_approvals
            .iter()
            .filter_map(|i| result.approvals.get(*i))
            .filter(|a| a.state != "executed")
        {
            outcomes.push(CheckOutcome {
                check: format!("the approved {} plan ends executed", a.plan),
                passed: false,
                found: if a.refusals.is_empty() {
                    a.state.clone()
                } else {
                    format!("{}: {}", a.state, a.refusals.join("; "))
                },
            });
        }
        result.post_check = Some(outcomes.iter().all(|o| o.passed));
        result.checks = outcomes;
    } else if matches!(e.remediation, Remediation::Playbook { .. }) {
        result.notes.push(
            "a playbook is expected but `after_execution` is empty; nothing to post-check".into(),
        );
    }

    // 7. Counters, and what the engine warned about.
    result
        .notes
        .extend(t.warnings.iter().map(|w| format!("engine warning: {w}")));
    let usage = t.usage.clone().unwrap_or_default();
    result.model_calls = usage.model_calls;
    result.tool_calls = usage.tool_calls.max(t.tool_calls_seen);
    result.input_tokens = usage.input_tokens;
    result.output_tokens = usage.output_tokens;
    result.investigation_ms = usage.wall_ms;
    result.stop_reason = t.stop_reason.clone();
    let _ = ops.send(Op::Shutdown);
    Ok(())
}
