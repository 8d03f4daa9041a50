//! medic-sandbox: incident bundles and a local server speaking the Kubernetes API.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> medic_sandbox::Result<()> {
//! use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
//! let bundle = Bundle::load("sandbox/bundles/gpu-xid79")?; // Error::InvalidBundle lists every problem
//! let handle = Sandbox::start(&bundle, SandboxOptions::default()).await?;
//! println!("KUBECONFIG={}", handle.kubeconfig_path().display());
//! let _pod = handle.object("aks-eu-west", "v1", "Pod", "ai", "llama-0");
//! let _log = handle.request_log();
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! `Bundle::check(dir)` returns every [`Problem`] (file, line, rule) for `medic sandbox check`.
//!
//! # Layout
//!
//! - [`bundle`]: the bundle format (`scenario.yaml`, objects, logs, metrics, GitHub JSON,
//!   runbooks, policy): loading, validation (all problems at once), and the defaults the
//!   sandbox fills in (`uid` derived from cluster/kind/namespace/name, `resourceVersion`,
//!   `creationTimestamp`, and uids of references by name in owner references and events).
//! - `catalog`: the resource types a cluster serves — core kinds, a built-in list of custom
//!   resources (KubeVirt, Gateway API, KEDA, KAITO, DRA v1 + v1beta1, Argo CD), and CRDs
//!   found among the objects.
//! - `selector`: label, field and Prometheus series selectors.
//! - [`generate`]: synthetic bundles for benchmarks.
//! - [`server`]: [`Sandbox::start`] serves each cluster on its own 127.0.0.1 HTTPS listener
//!   (a throw-away CA per start, carried in the kubeconfig: kubectl sends no credentials over
//!   plain HTTP), plus a selector-only Prometheus API per cluster with `prometheus: true` and
//!   a GitHub-REST-shaped API over `github/`.
//!
//! # Behaviour worth knowing
//!
//! - Every identity gets a random bearer token per start; the `agent: true` identity is the
//!   user of every context; the first cluster is the current context.
//! - Authorization is RBAC from the bundle only. As on a real API server, an impersonated
//!   user has only the groups given with `Impersonate-Group` (plus `system:authenticated`),
//!   so `kubectl auth can-i ... --as alice` ignores alice's scenario groups unless
//!   `--as-group` is given too. Discovery, `/version` and self access reviews are open to
//!   every authenticated user.
//! - `title`, `description` and `expected` are never served.
//! - Reactions run after each successful non-dry-run write; `delete_series` hides series from
//!   the Prometheus API; `patch`, `delete` and `create` actions change objects (watchers see
//!   them).
//! - kube-rs 5 retries 429 answers up to 15 times by default: set `Config::default_retry =
//!   false` when an eviction refused by a PodDisruptionBudget must surface. kube-rs sends
//!   `EvictParams::delete_options` as `delete_options`, which API servers (and this one)
//!   ignore: ask for a dry-run eviction with `EvictParams::post_options.dry_run`.
//! - kube-rs does not send impersonation headers from a kubeconfig; add them with
//!   `Config::headers` (`Impersonate-User`, `Impersonate-Group`).

pub mod bundle;
mod catalog;
mod error;
pub mod generate;
mod selector;
pub mod server;

pub use bundle::{Bundle, Scenario};
pub use error::{Error, Problem, Result};
pub use selector::SeriesSelector;
pub use server::{GithubRecord, RequestRecord, Sandbox, SandboxHandle, SandboxOptions};
