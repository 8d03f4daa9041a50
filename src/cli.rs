//! The command line: global flags that behave like kubectl's, and one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// medic investigates Kubernetes incidents, explains the root cause with evidence, and
/// proposes typed remediations that run only after an RBAC-checked human approval.
#[derive(Debug, Parser)]
#[command(
    name = "medic",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "Start here:
  medic sandbox serve sandbox/bundles/gpu-xid79 -- kubectl get pods -A
                        replay a recorded incident as a local cluster
  medic snapshot -n ai -o incident/
                        capture an incident bundle from a live cluster")]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace to use (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// medic.yaml to read (default: $MEDIC_CONFIG, then $XDG_CONFIG_HOME/medic/medic.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log as JSON lines on stderr (also when `MEDIC_LOG_FORMAT=json`).
    #[arg(long, global = true)]
    pub log_json: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve or check incident bundles as local Kubernetes API servers.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Capture an incident bundle from a live cluster.
    Snapshot(SnapshotArgs),
    /// Print version and build information.
    Version,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Show the configuration medic would use and where it came from.
    Config,
    /// Replay a built-in incident end to end: investigate, plan, approve, execute, audit.
    Demo {
        /// The bundle to replay (default: sandbox/bundles/gpu-xid79).
        bundle: Option<PathBuf>,
        /// Analyzers only, even if a model is configured.
        #[arg(long)]
        no_model: bool,
        /// Open the same incident in the TUI instead (approve there as your mapped identity).
        #[arg(long)]
        tui: bool,
    },
    /// Investigate a question (or a replayed incident) and propose remediations.
    Ask(AskArgs),
    /// Run the eval scenarios, each on its own sandbox, and score medic against them.
    Eval(EvalArgs),
    /// The chat TUI: investigate, read evidence, approve — in the terminal.
    Tui(SessionArgs),
    /// List, show, approve or deny remediation plans waiting for approval.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Verify or export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The HTTP front door: Slack and Teams bots, Alertmanager and PagerDuty webhooks that
    /// run on-call runbooks, `/healthz`, `/readyz` and `/metrics`.
    Serve(HttpServeArgs),
}

/// `medic serve`
#[derive(Debug, Args)]
pub struct HttpServeArgs {
    /// Address to listen on (`0.0.0.0:8080` in a pod; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Replay this incident bundle in an in-process sandbox and answer from it (demos, tests).
    #[arg(long, value_name = "BUNDLE")]
    pub sandbox: Option<PathBuf>,
    /// Analyzers only: no model, even if one is configured.
    #[arg(long)]
    pub no_model: bool,
    /// Use this model name with the configured provider.
    #[arg(long, value_name = "NAME", conflicts_with = "no_model")]
    pub model: Option<String>,
    /// Data directory for the audit log (default: medic.yaml's; a temporary one with --sandbox).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `medic audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and report the first broken record (edit, deletion, reordering,
    /// torn tail). Exits non-zero when the log is broken.
    Verify {
        /// The audit log (default: audit.jsonl in the data directory).
        #[arg(long, value_name = "PATH")]
        log: Option<PathBuf>,
    },
    /// Print records as JSON Lines, oldest first.
    Export {
        /// The audit log (default: audit.jsonl in the data directory).
        #[arg(long, value_name = "PATH")]
        log: Option<PathBuf>,
        /// Only records at or after this time (RFC 3339) or this long ago (e.g. 2h).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records of this proposal id.
        #[arg(long, value_name = "ID")]
        proposal: Option<String>,
        /// Only records of this approval id.
        #[arg(long, value_name = "ID")]
        approval: Option<String>,
        /// Only records by this actor (e.g. `slack:U01ALICE`, `terminal:alice`, `medic`).
        #[arg(long, value_name = "ACTOR")]
        actor: Option<String>,
        /// Only records of this kind (e.g. `decision`, `step_applied`).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
    },
}

/// `medic sandbox …`
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a bundle: one API server per cluster on 127.0.0.1 and a kubeconfig to reach them.
    Serve(ServeArgs),
    /// Validate bundles and print every problem found (file, line, rule).
    Check {
        /// Bundle folders.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
}

/// `medic sandbox serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Where to write the generated kubeconfig (default: a file in a temporary folder).
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,
    /// First port to listen on (one per cluster, consecutive); default: ephemeral ports.
    #[arg(long)]
    pub port: Option<u16>,
    /// A command to run against the sandbox (with KUBECONFIG set); medic exits with its
    /// status instead of serving until Ctrl-C. Example: `-- kubectl get pods -A`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `medic snapshot`
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Output bundle folder (must not exist or be empty).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Namespaces to capture (repeatable; default: -n, else the context's namespace).
    #[arg(long = "include-namespace", value_name = "NAME")]
    pub namespaces: Vec<String>,
    /// Capture every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Extra contexts to capture as further clusters of the same bundle.
    #[arg(long = "also-context", value_name = "NAME")]
    pub also_contexts: Vec<String>,
    /// At most this many log lines per container (current and previous).
    #[arg(long, default_value_t = 2000)]
    pub max_log_lines: usize,
    /// Prometheus base URL to capture series from.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Series selectors to capture (repeatable), e.g. 'DCGM_FI_DEV_XID_ERRORS'.
    #[arg(long = "series", value_name = "SELECTOR")]
    pub series: Vec<String>,
    /// How far back to capture series, e.g. 1h.
    #[arg(long, default_value = "1h")]
    pub window: String,
    /// The question the bundle starts with.
    #[arg(long)]
    pub question: Option<String>,
}

/// `medic ask`
#[derive(Debug, Args)]
pub struct AskArgs {
    /// What to investigate, and with what.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Print one JSON document (findings, proposals, plans, approvals, usage) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a session investigates and with which engine (`medic ask`, `medic tui`).
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The question; with --sandbox and no question, the bundle's own question or alert.
    pub question: Option<String>,
    /// Replay this incident bundle in an in-process sandbox and investigate it.
    #[arg(long, value_name = "BUNDLE")]
    pub sandbox: Option<PathBuf>,
    /// Analyzers only: no model, even if one is configured.
    #[arg(long)]
    pub no_model: bool,
    /// Use this model name with the configured provider.
    #[arg(long, value_name = "NAME", conflicts_with = "no_model")]
    pub model: Option<String>,
    /// Data directory for the audit log (default: medic.yaml's; a temporary one with --sandbox).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `medic approvals …`
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Plans waiting for approval.
    List {
        /// Data directory (default: medic.yaml's).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Include undecided requests that have expired.
        #[arg(long)]
        all: bool,
    },
    /// One plan: steps, dry-run diff, post-checks, undo, and who approved.
    Show {
        /// Approval id.
        id: String,
        /// Data directory (default: medic.yaml's).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Approve a plan as the terminal user's mapped identity; runs it when this completes
    /// the approval (every check is re-run right before execution).
    Approve {
        /// Approval id.
        id: String,
        /// Data directory (default: medic.yaml's).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Deny a plan; a deny from anyone eligible wins.
    Deny {
        /// Approval id.
        id: String,
        /// Why (recorded and shown to the others).
        #[arg(long, required = true)]
        reason: String,
        /// Data directory (default: medic.yaml's).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `medic eval`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Scenario folders, or folders of them (default: evals/scenarios and sandbox/bundles).
    #[arg(long = "scenarios", value_name = "DIR")]
    pub scenarios: Vec<PathBuf>,
    /// Only scenarios whose name contains this, or that carry this tag.
    #[arg(long, value_name = "TAG")]
    pub filter: Option<String>,
    /// Analyzers only.
    #[arg(long, conflicts_with_all = ["scripted", "model"])]
    pub no_model: bool,
    /// The scripted model (deterministic, offline): exercises the model path and counts tokens.
    #[arg(long, conflicts_with = "model")]
    pub scripted: bool,
    /// A real model: this model name with the configured provider.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Write the full report as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write the full report as Markdown.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
}
