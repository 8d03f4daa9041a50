//! medic-tools: typed, read-only tools through which medic's agent and analyzers see the world.
//!
//! Layout:
//! - [`tool`]: the [`Tool`] trait, [`Render`], the type-erased [`Registry`] that validates
//!   arguments ([`schema`]), gives every call an id, a span, a duration and a token size, and
//!   fits output into the per-tool budget ([`budget`]).
//! - [`context`]: [`ToolContext`] — clusters (kube clients from kubeconfig contexts), their
//!   Prometheus URLs and labels, GitHub, the runbook folder, budgets and the clock;
//!   [`ToolContext::with_shared_pod_list`] makes a copy that reads each cluster's pods once
//!   for a burst of calls (an investigation's analyzer collection).
//! - [`k8s`]: typed summaries of Kubernetes objects (core kinds and CRDs) and the
//!   `k8s_list` / `k8s_describe` / `k8s_events` tools.
//! - [`logscan`]: the streaming log scanning core (grep, error templates, stack-trace folding)
//!   as plain functions over bytes; [`logs`] is the `logs` tool around it.
//! - [`prom`]: Prometheus queries and per-series summaries (`metrics` tool); [`gpu`]: the DCGM
//!   view joined with nodes and pods (`gpu_status` tool).
//! - [`github`]: commits, pull requests, releases, deployments, compare (`github` tool).
//! - [`runbooks`]: the runbook format and the `runbook_search` tool.
//! - [`redact`]: credential redaction and terminal-escape stripping applied to every untrusted
//!   string before it leaves a tool.
//! - [`evidence`]: references findings cite.
//!
//! Every tool only reads (get / list / log / HTTP GET). Token sizes use tiktoken's
//! `o200k_base` tables embedded by `tiktoken-rs` (see [`budget`]).
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> medic_tools::Result<()> {
//! use medic_tools::{Clock, Registry, ToolContext};
//! let ctx = ToolContext::from_kubeconfig("kubeconfig".as_ref(), &["aks-eu-west"]).await?
//!     .with_prometheus("aks-eu-west", "http://127.0.0.1:9090")?
//!     .with_runbooks("playbooks/runbooks")
//!     .with_clock(Clock::fixed("2026-06-23T12:00:00Z".parse().unwrap_or_default()));
//! let registry = Registry::standard();
//! let schemas = registry.schemas(); // for the model's first request
//! let result = registry.call(&ctx, "k8s_list", serde_json::json!({"kind": "pods"})).await?;
//! let typed = result.output::<medic_tools::k8s::tools::ListOutput>(); // for analyzers
//! # let _ = (schemas, typed); Ok(()) }
//! ```
//!
//! Analyzers can also call the typed functions directly: [`k8s::tools::list_pods`],
//! [`k8s::tools::all_pods`],
//! [`k8s::tools::list_nodes`], [`k8s::tools::list_events`], [`k8s::tools::list_kind`],
//! [`k8s::tools::rollout`], [`k8s::tools::describe`], [`logs::read_logs`],
//! [`logscan::scan`], [`prom::query`] + [`prom::summarize`], [`gpu::gpu_view`],
//! [`github::github`], [`runbooks::load_runbooks`] + [`runbooks::search`].

pub mod budget;
pub mod context;
pub mod error;
pub mod evidence;
pub mod github;
pub mod gpu;
pub mod k8s;
pub mod logs;
pub mod logscan;
pub mod prom;
pub mod redact;
pub mod runbooks;
pub mod schema;
pub mod tool;

pub use budget::{Budgets, count_tokens};
pub use context::{Clock, Cluster, GitHubConfig, ToolContext};
pub use error::{Result, ToolError};
pub use evidence::{EvidenceRef, ObjectRef};
pub use tool::{Registry, Render, Tool, ToolResult, ToolSchema};
