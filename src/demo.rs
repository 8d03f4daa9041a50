//! `medic demo`: a whole incident, end to end, on a built-in bundle — no cluster, no key.
//!
//! The sandbox starts in-process, the investigation runs (analyzers, plus the model if one
//! is configured), the plan with its dry-run diff is shown, the demo approves it as the
//! bundle's on-call identities (saying so), the plan executes against the sandbox as the
//! approver, post-checks run, and the audit trail is verified.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use medic_agent::protocol::Event;
use medic_approvals::Actor;
use tokio::sync::mpsc;

use crate::ask::{self, start_of};
use crate::config::Config;
use crate::kubectx::KubeTarget;
use crate::wire::{WireOptions, wire};

/// The bundle the demo replays unless told otherwise.
pub const DEFAULT_BUNDLE: &str = "sandbox/bundles/gpu-xid79";

/// Runs the demo on `bundle` (default: [`DEFAULT_BUNDLE`], looked up next to the binary's
/// source tree and in the current directory).
pub async fn run(config: &Config, bundle: Option<PathBuf>, no_model: bool) -> Result<()> {
    let bundle = match bundle {
        Some(b) => b,
        None => find_default()?,
    };
    let opts = WireOptions {
        sandbox: Some(bundle.clone()),
        no_model,
        ..WireOptions::default()
    };
    let wired = wire(config, &KubeTarget::default(), &opts, None).await?;
    let Some(scenario) = wired.bundle.as_ref().map(|b| b.scenario.clone()) else {
        bail!("the demo needs a bundle");
    };
    println!("━━ medic demo: {} ━━", scenario.title);
    println!(
        "A recorded incident is replayed as a live Kubernetes API on 127.0.0.1 (cluster(s): {}); \
         medic reads it through the same client it uses against real clusters.\n",
        wired
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let start = start_of(None, &wired)?;
    let requester = Actor::Name("medic".to_string());
    let transcript = ask::run(&wired, start, requester, false).await?;

    let Some((proposal_id, plan)) = transcript.plans.first().cloned() else {
        println!("\nmedic proposed no remediation; nothing to approve.");
        return finish(&wired.data_dir).await;
    };
    let Some(status) = transcript
        .approvals
        .iter()
        .find(|a| a.proposal_id == proposal_id)
        .cloned()
    else {
        bail!("the plan for {proposal_id} has no approval request");
    };
    println!("\n━━ approval ━━");
    println!(
        "The plan needs {} approval(s). In real life the on-call engineers approve it from \
         Slack, Teams, the TUI or `medic approvals approve`; the demo approves it for them:",
        status.needed
    );
    let approvers: Vec<String> = wired
        .identities
        .iter()
        .filter(|i| !i.agent)
        .map(|i| i.name.clone())
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let Event::ExecutionStep {
                step,
                description,
                status,
                ..
            } = e
            {
                if step > 0 {
                    println!("    step {step}: {status} — {description}");
                } else {
                    println!("    {status}: {description}");
                }
            }
        }
    });
    let mut last = status;
    for name in approvers {
        if last.state != "pending" {
            break;
        }
        println!("  → approving plan {} as `{name}`", &plan.hash[..12]);
        last = wired
            .engine
            .remediation()
            .decide(
                &last.approval_id,
                &Actor::Name(name.clone()),
                true,
                None,
                Some(&plan.hash),
                &tx,
            )
            .await?;
        match &last.refusal {
            Some(r) if last.state == "pending" => println!("    refused: {r}"),
            _ => println!(
                "    {}: approved by {}{}",
                last.state,
                last.approved_by.join(", "),
                last.waiting_for
                    .first()
                    .map(|w| format!("; waiting for {w}"))
                    .unwrap_or_default()
            ),
        }
    }
    drop(tx);
    let _ = printer.await;
    println!("\nresult: {}", last.state);
    if let Some(r) = &last.refusal {
        println!("  {r}");
    }
    if let Some(sandbox) = &wired.sandbox {
        let writes: Vec<_> = sandbox
            .request_log()
            .into_iter()
            .filter(|r| {
                !r.dry_run && matches!(r.verb.as_str(), "create" | "patch" | "update" | "delete")
            })
            .filter(|r| r.resource != "subjectaccessreviews")
            .collect();
        println!("\nchanges the API server saw ({}):", writes.len());
        for r in writes {
            println!(
                "  {} {}{} {}/{} as {} → {}",
                r.verb,
                r.resource,
                if r.subresource.is_empty() {
                    String::new()
                } else {
                    format!("/{}", r.subresource)
                },
                r.namespace,
                r.name,
                r.effective_user,
                r.status
            );
        }
    }
    let ok = last.state == "executed";
    finish(&wired.data_dir).await?;
    if let Some(sandbox) = wired.sandbox {
        sandbox.shutdown().await;
    }
    if !ok {
        bail!(
            "the demo's plan did not execute cleanly (state: {})",
            last.state
        );
    }
    Ok(())
}

async fn finish(data_dir: &Path) -> Result<()> {
    let log = medic_approvals::ApprovalBook::audit_path(data_dir);
    let report = medic_approvals::audit::verify(&log)?;
    println!(
        "\n━━ audit ━━\n$ medic audit verify --log {}\n{report}",
        log.display()
    );
    if !report.is_ok() {
        bail!("the audit log does not verify");
    }
    Ok(())
}

/// The built-in demo bundle: `sandbox/bundles/gpu-xid79` next to the binary's sources or the
/// current directory.
pub fn find_default() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from(DEFAULT_BUNDLE),
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_BUNDLE),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("scenario.yaml").exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot find the built-in bundle {DEFAULT_BUNDLE}; run from the repository or pass a bundle folder"
            )
        })
}
