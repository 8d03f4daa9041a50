//! The sandbox API server: one plain-HTTP listener per cluster on 127.0.0.1, a kubeconfig with
//! one context per cluster, and a handle for tests and evals.
//!
//! Modules: `routes` (paths), `handler` (authentication, impersonation, authorization, the
//! request log, dispatch), `read` (get/list/table), `watch`, `logs`, `write` (create, update,
//! delete, patch, status/scale), `patch` (strategic merge), `eviction`, `reviews` (access
//! reviews), `rbac`, `reactions`, `discovery`, `kubeconfig`, `state`, `status`.

mod discovery;
mod eviction;
mod github;
mod handler;
mod kubeconfig;
mod logs;
mod patch;
mod prometheus;
mod proto;
mod rbac;
mod reactions;
mod read;
mod reviews;
mod routes;
mod state;
mod status;
mod table;
mod tls;
mod validate;
mod watch;
mod write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::bundle::Bundle;
use crate::error::{Error, Result};
pub use github::GithubRecord;
use rbac::UserInfo;
use state::World;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Fixed ports per cluster name; clusters not listed get an ephemeral port.
    pub ports: HashMap<String, u16>,
    /// Where to write the kubeconfig; default: a fresh folder under the system temp folder.
    pub kubeconfig_path: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS. kubectl sends no credentials over plain HTTP, so
    /// this only suits clients such as kube-rs.
    pub plain_http: bool,
    /// Serve the Prometheus HTTP API (selectors only) for clusters with `prometheus: true`.
    pub prometheus: bool,
    /// Serve the bundle's `github/` folder as a GitHub-REST-shaped API.
    pub github: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            ports: HashMap::new(),
            kubeconfig_path: None,
            plain_http: false,
            prometheus: true,
            github: true,
        }
    }
}

/// One API request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Cluster name.
    pub cluster: String,
    /// The authenticated user (empty when authentication failed).
    pub user: String,
    /// The user the request ran as after impersonation.
    pub effective_user: String,
    /// Groups of the effective user.
    pub groups: Vec<String>,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection
    /// (empty for non-resource requests such as discovery).
    pub verb: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource (`log`, `eviction`, `status`, `scale`) or empty.
    pub subresource: String,
    /// Namespace or empty.
    pub namespace: String,
    /// Object name or empty (for create: the name in the body).
    pub name: String,
    /// Whether `dryRun=All` was asked.
    pub dry_run: bool,
    /// HTTP status code of the answer.
    pub status: u16,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Wall-clock time the request arrived.
    pub time: DateTime<Utc>,
}

/// State shared by every listener of one sandbox.
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub tokens: HashMap<String, UserInfo>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves consistent-enough state for a test server.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts sandboxes.
pub struct Sandbox;

/// A running sandbox. Dropping it without [`SandboxHandle::shutdown`] leaves the listeners
/// running until the runtime ends.
pub struct SandboxHandle {
    shared: Arc<Shared>,
    addrs: Vec<(String, SocketAddr)>,
    prometheus_addrs: Vec<(String, SocketAddr)>,
    github_addr: Option<SocketAddr>,
    github_state: github::GithubState,
    scheme: &'static str,
    ca_pem: Option<String>,
    tokens: Vec<(String, String)>,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Serves every cluster of `bundle` on 127.0.0.1 and writes the kubeconfig. Must be called
    /// inside a tokio runtime.
    pub async fn start(bundle: &Bundle, options: SandboxOptions) -> Result<SandboxHandle> {
        for name in options.ports.keys() {
            if bundle.cluster(name).is_none() {
                return Err(Error::Options(format!(
                    "a port was given for cluster {name:?}, which the bundle does not have"
                )));
            }
        }
        let mut tokens = HashMap::new();
        let mut token_list = Vec::new();
        for id in &bundle.scenario.identities {
            let token = format!("sandbox-{}-{}", id.name, uuid::Uuid::new_v4().simple());
            let mut groups = id.groups.clone();
            groups.push("system:authenticated".into());
            tokens.insert(
                token.clone(),
                UserInfo {
                    name: id.kube_user.clone(),
                    groups,
                },
            );
            token_list.push((id.name.clone(), token));
        }
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(World::from_bundle(bundle)),
            requests: Mutex::new(Vec::new()),
            tokens,
            shutdown: shutdown_rx,
        });
        let tls = if options.plain_http {
            None
        } else {
            Some(tls::self_signed()?)
        };
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for (index, c) in bundle.clusters.iter().enumerate() {
            let port = options.ports.get(&c.name).copied().unwrap_or(0);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| Error::Bind { port, source })?;
            let addr = listener
                .local_addr()
                .map_err(|source| Error::Bind { port, source })?;
            let app = handler::router(shared.clone(), index);
            let mut stop = shared.shutdown.clone();
            match &tls {
                Some(t) => tasks.push(tokio::spawn(tls::serve(
                    listener,
                    t.acceptor.clone(),
                    app,
                    stop,
                ))),
                None => tasks.push(tokio::spawn(async move {
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    });
                    if let Err(e) = serve.await {
                        tracing::warn!(error = %e, "sandbox listener stopped");
                    }
                })),
            }
            addrs.push((c.name.clone(), addr));
        }
        let mut prometheus_addrs = Vec::new();
        if options.prometheus {
            let now = bundle.now().timestamp_millis() as f64 / 1000.0;
            for c in bundle.scenario.clusters.iter().filter(|c| c.prometheus) {
                let series = prometheus::series_for(
                    &bundle.samples,
                    &c.name,
                    bundle.clusters.len() == 1,
                    now,
                );
                let app = prometheus::router(shared.clone(), series, now);
                let (addr, task) = serve_plain(app, shared.shutdown.clone()).await?;
                prometheus_addrs.push((c.name.clone(), addr));
                tasks.push(task);
            }
        }
        let github_state = github::GithubState::new(bundle.github.clone());
        let github_addr = if options.github {
            let (addr, task) = serve_plain(
                github::router(github_state.clone()),
                shared.shutdown.clone(),
            )
            .await?;
            tasks.push(task);
            Some(addr)
        } else {
            None
        };
        let agent = bundle
            .agent_identity()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let ca = tls.as_ref().map(|t| t.ca_pem.clone());
        let yaml = kubeconfig::render(scheme, &addrs, ca.as_deref(), &token_list, &agent)?;
        let path = match options.kubeconfig_path {
            Some(p) => p,
            None => std::env::temp_dir()
                .join(format!("medic-sandbox-{}", uuid::Uuid::new_v4().simple()))
                .join("kubeconfig"),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &yaml).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(SandboxHandle {
            shared,
            addrs,
            prometheus_addrs,
            github_addr,
            github_state,
            scheme,
            ca_pem: ca,
            tokens: token_list,
            kubeconfig_path: path,
            kubeconfig_yaml: yaml,
            shutdown_tx,
            tasks,
        })
    }
}

impl SandboxHandle {
    /// Path of the generated kubeconfig.
    pub fn kubeconfig_path(&self) -> &std::path::Path {
        &self.kubeconfig_path
    }

    /// The generated kubeconfig as YAML.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// `https://127.0.0.1:<port>` (or `http://` with `plain_http`) of a cluster.
    pub fn cluster_url(&self, cluster: &str) -> Option<String> {
        self.addrs
            .iter()
            .find(|(n, _)| n == cluster)
            .map(|(_, a)| format!("{}://{a}", self.scheme))
    }

    /// `http://127.0.0.1:<port>` of a cluster's Prometheus API (clusters with `prometheus: true`).
    pub fn prometheus_url(&self, cluster: &str) -> Option<String> {
        self.prometheus_addrs
            .iter()
            .find(|(n, _)| n == cluster)
            .map(|(_, a)| format!("http://{a}"))
    }

    /// `http://127.0.0.1:<port>` of the GitHub-shaped API (use it as the API base URL).
    pub fn github_url(&self) -> Option<String> {
        self.github_addr.map(|a| format!("http://{a}"))
    }

    /// Writes (pull requests, refs) the GitHub-shaped API received, in order.
    pub fn github_log(&self) -> Vec<GithubRecord> {
        self.github_state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// PEM of the CA that signed the listeners' certificate (None with `plain_http`).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Cluster names and their listener addresses, in scenario order.
    pub fn clusters(&self) -> Vec<(String, SocketAddr)> {
        self.addrs.clone()
    }

    /// The bearer token of an identity (by its scenario `name`).
    pub fn token(&self, identity: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(n, _)| n == identity)
            .map(|(_, t)| t.as_str())
    }

    /// Every request served so far, in arrival order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The live object, as the API would return it (`api_version` like `apps/v1`; `namespace`
    /// empty for cluster-scoped kinds).
    pub fn object(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let world = self.shared.world();
        let c = &world.clusters[world.cluster_index(cluster)?];
        let rt = c.catalog.by_api_version_kind(api_version, kind)?;
        c.get(rt, namespace, name).map(|o| (*o).clone())
    }

    /// Every live object of a kind (optionally in one namespace).
    pub fn objects(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let world = self.shared.world();
        let Some(c) = world.cluster_index(cluster).map(|i| &world.clusters[i]) else {
            return vec![];
        };
        let Some(rt) = c.catalog.by_api_version_kind(api_version, kind) else {
            return vec![];
        };
        c.scan(&rt.storage, namespace)
            .map(|(_, o)| (**o).clone())
            .collect()
    }

    /// Series selectors removed by `delete_series` reactions so far.
    pub fn deleted_series(&self) -> Vec<String> {
        self.shared.world().deleted_series.clone()
    }

    /// Indexes (in scenario order) of the reactions that have fired.
    pub fn fired_reactions(&self) -> Vec<usize> {
        self.shared
            .world()
            .reactions
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| *f)
            .map(|(i, _)| i)
            .collect()
    }

    /// The scenario clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.world().now
    }

    /// Stops every listener (open watches end). Connections a client keeps open get two
    /// seconds to finish before their listener is dropped.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for mut t in self.tasks {
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

/// Serves `app` over plain HTTP on an ephemeral 127.0.0.1 port until shutdown.
async fn serve_plain(
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| Error::Bind { port: 0, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { port: 0, source })?;
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "sandbox listener stopped");
        }
    });
    Ok((addr, task))
}
