//! `medic approvals list | show | approve | deny` for the terminal.
//!
//! The terminal user is the OS user, mapped to a Kubernetes identity by the `terminal:` key
//! of `approvals.identities` in medic.yaml; an unmapped user can read but never approve.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use chrono::Utc;
use medic_approvals::{Actor, ApprovalBook, IdentityMap, KubeAccessReviewer, Policy};
use medic_playbooks::Plan;
use tokio::sync::mpsc;

use crate::cli::ApprovalsCommand;
use crate::config::Config;
use crate::kubectx::KubeTarget;
use crate::wire::{WireOptions, wire};

/// The OS user at this terminal, as an approvals actor ($USER, $LOGNAME, else `id -un`).
/// A user nobody mapped can still ask and read; approvals refuse them with the reason.
pub fn terminal_actor() -> Result<Actor> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .filter(|u| !u.is_empty())
        .ok_or_else(|| anyhow!("cannot tell who you are: set $USER"))?;
    Ok(Actor::Terminal(user))
}

/// Runs an approvals subcommand.
pub async fn run(cmd: ApprovalsCommand, config: &Config, target: &KubeTarget) -> Result<()> {
    match cmd {
        ApprovalsCommand::List { data_dir, all } => {
            let book = open_book(config, data_dir).await?;
            let now = Utc::now();
            // Undecided requests, expired ones included; shown only with --all.
            let undecided = book.list_pending(chrono::DateTime::<Utc>::MIN_UTC).await?;
            let expired = undecided
                .iter()
                .filter(|s| s.request.expires_at <= now)
                .count();
            let pending: Vec<_> = undecided
                .into_iter()
                .filter(|s| all || s.request.expires_at > now)
                .collect();
            if pending.is_empty() {
                println!("no plans are waiting for approval");
            }
            if expired > 0 && !all {
                println!("({expired} expired request(s) not shown; --all includes them)");
            }
            if pending.is_empty() {
                return Ok(());
            }
            println!(
                "{:<36}  {:<18}  {:<16}  {:<8}  {:<9}  {:<20}  EXPIRES",
                "ID", "PLAYBOOK", "CLUSTER", "RISK", "APPROVALS", "REQUESTED BY"
            );
            for s in pending {
                let p = s.progress();
                println!(
                    "{:<36}  {:<18}  {:<16}  {:<8}  {:<9}  {:<20}  {}",
                    s.request.id,
                    s.request.summary.playbook,
                    s.request.summary.clusters().join(","),
                    s.request.summary.risk.as_str(),
                    format!("{}/{}", p.have, p.need),
                    s.request.requester,
                    if s.request.expires_at <= now {
                        "expired".to_string()
                    } else {
                        s.request.expires_at.format("%H:%M:%SZ").to_string()
                    }
                );
            }
            Ok(())
        }
        ApprovalsCommand::Show { id, data_dir } => {
            let book = open_book(config, data_dir).await?;
            let state = book.get(&id).await?.ok_or_else(|| {
                anyhow!("no approval request `{id}`; `medic approvals list` shows the pending ones")
            })?;
            let recorded = book
                .recorded_plan(&id)
                .await?
                .ok_or_else(|| anyhow!("approval `{id}` has no recorded plan"))?;
            let plan: Plan = serde_json::from_value(recorded.plan)?;
            println!("{}", plan.render());
            let status = medic_engine::view::approval_status(&state, None, None, None, Utc::now());
            println!("\nplan hash: {}", status.plan_hash);
            println!(
                "requested by {} at {}",
                state.request.requester, state.request.created
            );
            println!("state: {}", status.state);
            println!(
                "approved by: {}",
                if status.approved_by.is_empty() {
                    "nobody yet".to_string()
                } else {
                    status.approved_by.join(", ")
                }
            );
            for w in &status.waiting_for {
                println!("waiting for: {w}");
            }
            println!("expires at {}", status.expires_at);
            if let Some(r) = &status.refusal {
                println!("{r}");
            }
            Ok(())
        }
        ApprovalsCommand::Approve { id, data_dir } => {
            decide(config, target, id, data_dir, true, None).await
        }
        ApprovalsCommand::Deny {
            id,
            reason,
            data_dir,
        } => decide(config, target, id, data_dir, false, Some(reason)).await,
    }
}

async fn decide(
    config: &Config,
    target: &KubeTarget,
    id: String,
    data_dir: Option<PathBuf>,
    approve: bool,
    reason: Option<String>,
) -> Result<()> {
    let actor = terminal_actor()?;
    let opts = WireOptions {
        data_dir,
        no_model: true,
        ..WireOptions::default()
    };
    let wired = wire(config, target, &opts, None).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let medic_agent::protocol::Event::ExecutionStep {
                step,
                description,
                status,
                ..
            } = e
            {
                if step > 0 {
                    println!("  step {step}: {status} — {description}");
                } else {
                    println!("  {status}: {description}");
                }
            }
        }
    });
    let status = wired
        .engine
        .remediation()
        .decide(&id, &actor, approve, reason, None, &tx)
        .await?;
    drop(tx);
    let _ = printer.await;
    println!("approval {}: {}", status.approval_id, status.state);
    for w in &status.waiting_for {
        println!("waiting for {w}");
    }
    if let Some(r) = &status.refusal {
        println!("{r}");
    }
    // Success means the decision counted: an approval executed (or recorded, waiting for
    // more), or a deny recorded. A refusal, a request already decided, or an execution
    // that was refused, stopped or undone exits non-zero.
    let already = status
        .refusal
        .as_deref()
        .is_some_and(|r| r.starts_with("already "));
    let went_through = if approve {
        status.state == "executed" || (status.state == "pending" && status.refusal.is_none())
    } else {
        status.state == "denied" && !already
    };
    if !went_through {
        bail!(
            "approval {}: your {} did not go through (state {})",
            status.approval_id,
            if approve { "approval" } else { "deny" },
            status.state
        );
    }
    Ok(())
}

/// The book alone (no clusters): enough to read approvals.
async fn open_book(config: &Config, data_dir: Option<PathBuf>) -> Result<Arc<ApprovalBook>> {
    let data_dir = data_dir.unwrap_or_else(|| config.data_dir());
    let map = IdentityMap::new(config.approvals.identities.clone())?;
    let policy = match &config.approvals.policy {
        Some(p) => Policy::load(p, &map)?,
        None => Policy::default(),
    };
    Ok(Arc::new(
        ApprovalBook::open(
            &data_dir,
            policy,
            map,
            medic_approvals::shared(KubeAccessReviewer::new()),
        )
        .await?,
    ))
}
