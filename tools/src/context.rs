//! The session's view of the world: clusters, Prometheus, GitHub, runbooks, budgets, clock.

use crate::budget::Budgets;
use crate::error::{Result, ToolError};
use chrono::{DateTime, Utc};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Timeout for every call to an API server, Prometheus or GitHub.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One cluster the session can read.
#[derive(Clone)]
pub struct Cluster {
    /// Cluster name as the model sees it (the kubeconfig context name).
    pub name: String,
    /// A client built from that context.
    pub client: kube::Client,
    /// Namespace used when a call names none.
    pub default_namespace: String,
    /// Base URL of the cluster's Prometheus (e.g. `http://127.0.0.1:9090`), if any.
    pub prometheus: Option<String>,
    /// Placement labels (region, residency, …).
    pub labels: BTreeMap<String, String>,
    /// Discovered custom resources by `group/Kind`, so discovery runs once per kind.
    pub(crate) resources: Arc<Mutex<HashMap<String, (ApiResource, bool)>>>,
    /// When set, the cluster-wide pod list is read once and shared (see
    /// [`ToolContext::with_shared_pod_list`]).
    pub(crate) pod_share: Option<Arc<PodShare>>,
}

/// The cluster-wide pod list, read at most once (the outcome, error included, is shared).
pub(crate) type PodShare =
    tokio::sync::OnceCell<std::result::Result<Arc<Vec<crate::k8s::core::PodSummary>>, ToolError>>;

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("default_namespace", &self.default_namespace)
            .field("prometheus", &self.prometheus)
            .field("labels", &self.labels)
            .finish()
    }
}

impl Cluster {
    /// A cluster from an existing client.
    pub fn new(
        name: impl Into<String>,
        client: kube::Client,
        default_namespace: impl Into<String>,
    ) -> Self {
        Cluster {
            name: name.into(),
            client,
            default_namespace: default_namespace.into(),
            prometheus: None,
            labels: BTreeMap::new(),
            resources: Arc::new(Mutex::new(HashMap::new())),
            pod_share: None,
        }
    }

    /// Build a cluster from one context of a kubeconfig file.
    pub async fn from_kubeconfig(path: &Path, context: &str) -> Result<Self> {
        install_crypto_provider();
        let kc = Kubeconfig::read_from(path).map_err(|e| {
            ToolError::Config(format!(
                "cannot read kubeconfig {}: {e}; pass a readable kubeconfig file",
                path.display()
            ))
        })?;
        let known: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
        if !known.iter().any(|c| c == context) {
            return Err(ToolError::Config(format!(
                "context `{context}` is not in {}; known contexts: {}",
                path.display(),
                known.join(", ")
            )));
        }
        let opts = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| ToolError::Config(format!("kubeconfig context `{context}`: {e}")))?;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(CALL_TIMEOUT);
        config.write_timeout = Some(CALL_TIMEOUT);
        let ns = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| ToolError::Config(format!("building a client for `{context}`: {e}")))?;
        Ok(Cluster::new(context, client, ns))
    }

    /// Set the Prometheus base URL.
    pub fn with_prometheus(mut self, url: impl Into<String>) -> Self {
        self.prometheus = Some(url.into().trim_end_matches('/').to_string());
        self
    }

    /// Set placement labels.
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }
}

/// kube, reqwest and octocrab all use rustls; make aws-lc-rs the process provider so no
/// client panics choosing between providers. Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// GitHub access: base URL (GitHub Enterprise: `https://ghe.example/api/v3`) and token.
#[derive(Clone, Default)]
pub struct GitHubConfig {
    /// API base URL; `https://api.github.com` when `None`.
    pub base_url: Option<String>,
    /// Personal or installation token.
    pub token: Option<String>,
}

impl std::fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GitHubConfig {
    /// From `GITHUB_API_URL`, and `GITHUB_TOKEN` / `GH_TOKEN` or the file named by
    /// `GITHUB_TOKEN_FILE`.
    pub fn from_env() -> Result<Self> {
        let token = match std::env::var("GITHUB_TOKEN_FILE") {
            Ok(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| ToolError::Config(format!("GITHUB_TOKEN_FILE {path}: {e}")))?
                    .trim()
                    .to_string(),
            ),
            Err(_) => std::env::var("GITHUB_TOKEN")
                .or_else(|_| std::env::var("GH_TOKEN"))
                .ok(),
        };
        Ok(GitHubConfig {
            base_url: std::env::var("GITHUB_API_URL").ok(),
            token,
        })
    }

    pub(crate) fn client(&self) -> Result<octocrab::Octocrab> {
        install_crypto_provider();
        let mut b = octocrab::Octocrab::builder()
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(CALL_TIMEOUT));
        if let Some(url) = &self.base_url {
            b = b
                .base_uri(url.as_str())
                .map_err(|e| ToolError::Config(format!("GitHub base URL `{url}`: {e}")))?;
        }
        if let Some(t) = &self.token {
            b = b.personal_token(t.clone());
        }
        b.build()
            .map_err(|e| ToolError::Config(format!("building the GitHub client: {e}")))
    }
}

/// The clock: a scenario fixes it; otherwise the wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock stopped at `t` (sandbox scenarios).
    pub fn fixed(t: DateTime<Utc>) -> Self {
        Clock { fixed: Some(t) }
    }
    /// The wall clock.
    pub fn system() -> Self {
        Clock { fixed: None }
    }
    /// Current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

/// Everything a tool call may read.
#[derive(Debug, Clone)]
pub struct ToolContext {
    clusters: BTreeMap<String, Cluster>,
    default_cluster: Option<String>,
    /// GitHub access, if configured.
    pub github: Option<GitHubConfig>,
    /// Folder of runbook YAML files.
    pub runbooks: Option<PathBuf>,
    /// Budgets.
    pub budgets: Budgets,
    /// The clock.
    pub clock: Clock,
    pub(crate) http: reqwest::Client,
}

impl Default for ToolContext {
    fn default() -> Self {
        ToolContext::new()
    }
}

impl ToolContext {
    /// An empty context (no clusters) with default budgets and the wall clock.
    pub fn new() -> Self {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        ToolContext {
            clusters: BTreeMap::new(),
            default_cluster: None,
            github: None,
            runbooks: None,
            budgets: Budgets::default(),
            clock: Clock::system(),
            http,
        }
    }

    /// One cluster per context of `kubeconfig`; the first context is the default cluster.
    pub async fn from_kubeconfig(kubeconfig: &Path, contexts: &[&str]) -> Result<Self> {
        let mut ctx = ToolContext::new();
        for c in contexts {
            ctx = ctx.with_cluster(Cluster::from_kubeconfig(kubeconfig, c).await?);
        }
        Ok(ctx)
    }

    /// Add a cluster; the first one added is the default.
    pub fn with_cluster(mut self, cluster: Cluster) -> Self {
        if self.default_cluster.is_none() {
            self.default_cluster = Some(cluster.name.clone());
        }
        self.clusters.insert(cluster.name.clone(), cluster);
        self
    }

    /// Set the Prometheus URL of a known cluster.
    pub fn with_prometheus(mut self, cluster: &str, url: impl Into<String>) -> Result<Self> {
        let c = self.clusters.remove(cluster).ok_or_else(|| {
            ToolError::Config(format!(
                "cannot set Prometheus for unknown cluster `{cluster}`"
            ))
        })?;
        self.clusters
            .insert(cluster.to_string(), c.with_prometheus(url));
        Ok(self)
    }

    /// Set labels of a known cluster.
    pub fn with_labels(mut self, cluster: &str, labels: BTreeMap<String, String>) -> Result<Self> {
        let c = self.clusters.remove(cluster).ok_or_else(|| {
            ToolError::Config(format!("cannot label unknown cluster `{cluster}`"))
        })?;
        self.clusters
            .insert(cluster.to_string(), c.with_labels(labels));
        Ok(self)
    }

    /// Configure GitHub.
    pub fn with_github(mut self, gh: GitHubConfig) -> Self {
        self.github = Some(gh);
        self
    }

    /// Set the runbook folder.
    pub fn with_runbooks(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runbooks = Some(dir.into());
        self
    }

    /// Set budgets.
    pub fn with_budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// Set the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A copy of this context in which every cluster's pod list is read at most once and
    /// shared by the calls made through the copy: the pod listing itself (one namespace is
    /// filtered from it), the requests summed per node, and the GPU view. Meant for one burst
    /// of reads, such as an investigation's analyzer collection; calls through `self` (or a
    /// new copy) read live again. Listings with a label selector are never shared.
    pub fn with_shared_pod_list(&self) -> ToolContext {
        let mut ctx = self.clone();
        for c in ctx.clusters.values_mut() {
            c.pod_share = Some(Arc::new(PodShare::new()));
        }
        ctx
    }

    /// Names of the configured clusters.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// All clusters.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    /// The named cluster, or the default one when `name` is `None`.
    pub fn cluster(&self, name: Option<&str>) -> Result<&Cluster> {
        let name = match name {
            Some(n) => n,
            None => self.default_cluster.as_deref().ok_or_else(|| {
                ToolError::Config("no cluster is configured for this session".into())
            })?,
        };
        self.clusters.get(name).ok_or_else(|| {
            ToolError::InvalidArgs(format!(
                "unknown cluster `{name}`; known clusters: {}",
                self.cluster_names().join(", ")
            ))
        })
    }
}
