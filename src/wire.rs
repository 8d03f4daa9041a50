//! Wiring: from flags, `medic.yaml` (or a sandbox bundle) to a running [`Engine`].
//!
//! Two sources of truth: a live estate (kubeconfig contexts, identities, policy and model
//! from `medic.yaml`) or a replayed incident (`--sandbox BUNDLE`: the sandbox starts
//! in-process and the bundle provides clusters, identities, policy and the clock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::Utc;
use medic_agent::{ModelConfig, Session, SessionConfig};
use medic_approvals::{ApprovalBook, IdentityEntry, IdentityMap, KubeAccessReviewer, Policy};
use medic_engine::{Clock, Engine, Remediation};
use medic_playbooks::{ClusterSpec, Clusters, Executor, PlanContext};
use medic_sandbox::{Bundle, Sandbox, SandboxHandle, SandboxOptions};
use medic_tools::ToolContext;

use crate::config::Config;
use crate::kubectx::KubeTarget;

/// Longest a post-check waits in a replay (see [`build_engine`]).
const REPLAY_POST_CHECK_CAP: std::time::Duration = std::time::Duration::from_secs(20);

/// What the caller wants wired.
#[derive(Debug, Default, Clone)]
pub struct WireOptions {
    /// Replay this bundle in an in-process sandbox.
    pub sandbox: Option<PathBuf>,
    /// Analyzers only, even if a model is configured.
    pub no_model: bool,
    /// Override the configured model name (`--model`).
    pub model: Option<String>,
    /// Data directory override (audit log, views).
    pub data_dir: Option<PathBuf>,
}

impl From<&crate::cli::SessionArgs> for WireOptions {
    fn from(a: &crate::cli::SessionArgs) -> Self {
        WireOptions {
            sandbox: a.sandbox.clone(),
            no_model: a.no_model,
            model: a.model.clone(),
            data_dir: a.data_dir.clone(),
        }
    }
}

/// One cluster as medic knows it.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// medic's name for it.
    pub name: String,
    /// The kubeconfig context.
    pub context: String,
    /// Placement labels (region, residency…).
    pub labels: BTreeMap<String, String>,
    /// Prometheus base URL.
    pub prometheus: Option<String>,
}

/// A wired engine and what it runs on.
pub struct Wired {
    /// The engine.
    pub engine: Engine,
    /// The in-process sandbox, when replaying a bundle.
    pub sandbox: Option<SandboxHandle>,
    /// The loaded bundle, when replaying.
    pub bundle: Option<Bundle>,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
    /// Identities (for mapping the terminal user, and for the demo).
    pub identities: Vec<IdentityEntry>,
    /// The clusters.
    pub clusters: Vec<ClusterInfo>,
    /// Holds a temporary data directory alive for sandbox runs.
    _tmp: Option<tempfile::TempDir>,
}

/// Builds the engine.
pub async fn wire(
    config: &Config,
    target: &KubeTarget,
    opts: &WireOptions,
    namespace: Option<String>,
) -> Result<Wired> {
    crate::kubectx::install_crypto_provider();
    let mut tmp = None;
    let (kubeconfig, clusters, identities, policy_text, now0, sandbox, bundle) = match &opts.sandbox
    {
        Some(dir) => {
            let bundle = Bundle::load(dir)?;
            let handle = Sandbox::start(&bundle, SandboxOptions::default()).await?;
            let clusters = bundle_clusters(&bundle, &handle);
            let People {
                identities,
                policy_text: policy,
            } = people(config, Some(&bundle))?;
            let now = bundle.now();
            (
                handle.kubeconfig_path().to_path_buf(),
                clusters,
                identities,
                policy,
                Some(now),
                Some(handle),
                Some(bundle),
            )
        }
        None => {
            let kubeconfig = kubeconfig_path(target)?;
            let clusters = if config.clusters.is_empty() {
                let conn = target.connect().await?;
                vec![ClusterInfo {
                    name: conn.context.clone(),
                    context: conn.context,
                    labels: BTreeMap::new(),
                    prometheus: None,
                }]
            } else {
                config
                    .clusters
                    .iter()
                    .map(|c| ClusterInfo {
                        name: c.name.clone(),
                        context: c.context().to_string(),
                        labels: c.labels.clone(),
                        prometheus: c.prometheus.clone(),
                    })
                    .collect()
            };
            let People {
                identities,
                policy_text: policy,
            } = people(config, None)?;
            (kubeconfig, clusters, identities, policy, None, None, None)
        }
    };

    let data_dir = match (&opts.data_dir, &sandbox) {
        (Some(d), _) => d.clone(),
        (None, Some(_)) => {
            let t = tempfile::Builder::new().prefix("medic-replay-").tempdir()?;
            let p = t.path().to_path_buf();
            tmp = Some(t);
            p
        }
        (None, None) => config.data_dir(),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;

    let github = match &sandbox {
        Some(h) => h.github_url().map(|u| (u, None)),
        None => github_from_config(config)?,
    };
    let parts = Parts {
        kubeconfig,
        clusters: clusters.clone(),
        identities: identities.clone(),
        policy_text,
        now0,
        data_dir: data_dir.clone(),
        github,
        post_check_cap: None,
    };
    let engine = build_engine(config, opts, parts, namespace).await?;
    Ok(Wired {
        engine,
        sandbox,
        bundle,
        data_dir,
        identities,
        clusters,
        _tmp: tmp,
    })
}

/// Who may approve what: the identities and the policy text (file name and text; `None` for
/// the default policy).
pub struct People {
    /// Identities.
    pub identities: Vec<IdentityEntry>,
    /// Policy file name and text, or the default policy.
    pub policy_text: Option<(String, String)>,
}

impl People {
    /// The identity map and the parsed policy (what the approval book takes), each
    /// validated: a problem names the file and what is wrong.
    pub fn build(&self) -> Result<(IdentityMap, Policy)> {
        let map = IdentityMap::new(self.identities.clone())?;
        let policy = match &self.policy_text {
            Some((file, text)) => Policy::parse(text, file, &map)?,
            None => Policy::default(),
        };
        Ok((map, policy))
    }
}

/// The people of a replay (the bundle's identities and policy, with medic.yaml's chat and
/// terminal ids) or of a live estate (medic.yaml's `approvals`). Read again on reload.
pub fn people(config: &Config, bundle: Option<&Bundle>) -> Result<People> {
    Ok(match bundle {
        Some(bundle) => People {
            identities: bundle_identities(&bundle.scenario.identities, config),
            policy_text: bundle
                .policy
                .as_ref()
                .map(|f| (f.path.clone(), f.text.clone())),
        },
        None => People {
            identities: config.approvals.identities.clone(),
            policy_text: match &config.approvals.policy {
                Some(p) => Some((
                    p.display().to_string(),
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read policy {}", p.display()))?,
                )),
                None => None,
            },
        },
    })
}

/// The clusters of a replayed bundle: contexts named after the clusters, region folded into
/// the placement labels, and the sandbox's Prometheus listener per cluster.
pub fn bundle_clusters(bundle: &Bundle, sandbox: &SandboxHandle) -> Vec<ClusterInfo> {
    bundle
        .scenario
        .clusters
        .iter()
        .map(|c| {
            let mut labels = c.labels.clone();
            if let Some(r) = &c.region {
                labels.insert("region".into(), r.clone());
            }
            ClusterInfo {
                name: c.name.clone(),
                context: c.name.clone(),
                labels,
                prometheus: sandbox.prometheus_url(&c.name),
            }
        })
        .collect()
}

/// A bundle's identities as approvals knows them. Who sits at this terminal comes from
/// medic.yaml (`terminal:` of the identity with the same name), so a replay can be approved
/// from the TUI or the CLI.
pub fn bundle_identities(
    identities: &[medic_sandbox::bundle::Identity],
    config: &Config,
) -> Vec<IdentityEntry> {
    // The bundle says who is who in the incident; medic.yaml may add how this machine's
    // people reach medic (terminal user, chat ids the bundle does not give).
    let mine = |i: &medic_sandbox::bundle::Identity| {
        config
            .approvals
            .identities
            .iter()
            .find(|c| c.name == i.name)
    };
    identities
        .iter()
        .map(|i| IdentityEntry {
            name: i.name.clone(),
            kube_user: i.kube_user.clone(),
            groups: i.groups.clone(),
            slack: i
                .slack
                .clone()
                .or_else(|| mine(i).and_then(|c| c.slack.clone())),
            teams: i
                .teams
                .clone()
                .or_else(|| mine(i).and_then(|c| c.teams.clone())),
            terminal: mine(i).and_then(|c| c.terminal.clone()),
            agent: i.agent,
        })
        .collect()
}

/// What an engine is built from.
pub struct Parts {
    /// Kubeconfig with one context per cluster; its default user is medic itself.
    pub kubeconfig: PathBuf,
    /// The clusters.
    pub clusters: Vec<ClusterInfo>,
    /// Identities (people and medic).
    pub identities: Vec<IdentityEntry>,
    /// Policy file name and text, or the default policy.
    pub policy_text: Option<(String, String)>,
    /// The scenario clock's start, for replays.
    pub now0: Option<chrono::DateTime<Utc>>,
    /// Audit log and views.
    pub data_dir: PathBuf,
    /// GitHub API base URL and token (recent changes, revert pull requests).
    pub github: Option<(String, Option<String>)>,
    /// A replay's post-check cap instead of 20 s (`medic eval`: nothing but the plan
    /// changes its sandbox, and reactions apply within the write).
    pub post_check_cap: Option<std::time::Duration>,
}

/// Builds an engine from its parts (used by `wire` and by `medic eval` per scenario).
pub async fn build_engine(
    config: &Config,
    opts: &WireOptions,
    parts: Parts,
    namespace: Option<String>,
) -> Result<Engine> {
    let Parts {
        kubeconfig,
        clusters,
        identities,
        policy_text,
        now0,
        data_dir,
        github,
        post_check_cap,
    } = parts;
    // The clock: the bundle's `now`, advancing with real time, or the wall clock.
    let started = std::time::Instant::now();
    let clock: Clock = match now0 {
        Some(t0) => {
            Arc::new(move || t0 + chrono::Duration::from_std(started.elapsed()).unwrap_or_default())
        }
        None => Arc::new(Utc::now),
    };

    let (identity_map, policy) = People {
        identities: identities.clone(),
        policy_text,
    }
    .build()?;

    // Tools (read-only, as medic).
    let contexts: Vec<&str> = clusters.iter().map(|c| c.context.as_str()).collect();
    let mut tools = ToolContext::from_kubeconfig(&kubeconfig, &contexts).await?;
    for c in &clusters {
        tools = tools.with_labels(&c.context, c.labels.clone())?;
        if let Some(url) = &c.prometheus {
            tools = tools.with_prometheus(&c.context, url.clone())?;
        }
    }
    let runbooks = Path::new("playbooks/runbooks");
    if runbooks.is_dir() {
        tools = tools.with_runbooks(runbooks);
    }
    if let Some(t0) = now0 {
        tools = tools.with_clock(medic_tools::Clock::fixed(t0));
    }
    if let Some((url, token)) = &github {
        tools = tools.with_github(medic_tools::GitHubConfig {
            base_url: Some(url.clone()),
            token: token.clone(),
        });
    }

    // Plans and execution.
    let specs = clusters
        .iter()
        .map(|c| ClusterSpec {
            name: c.context.clone(),
            labels: c.labels.clone(),
        })
        .collect();
    let plan_clusters = Clusters::from_kubeconfig(&kubeconfig, specs).await?;
    let mut reviewer = KubeAccessReviewer::new();
    for conn in plan_clusters.iter() {
        reviewer = reviewer.with_cluster(conn.spec.name.clone(), conn.client().clone());
    }
    let book = Arc::new(
        ApprovalBook::open(
            &data_dir,
            policy,
            identity_map,
            medic_approvals::shared(reviewer),
        )
        .await?,
    );
    let mut plan_ctx = PlanContext::new(plan_clusters.clone(), clock());
    // When the requester is not a mapped person (an alert, an unmapped terminal user),
    // dry-runs run as the first on-call identity that is not medic: the dry-run shows
    // what an approver's execution would meet.
    plan_ctx.dry_run_as =
        identities
            .iter()
            .find(|i| !i.agent)
            .map(|i| medic_approvals::KubeIdentity {
                user: i.kube_user.clone(),
                groups: i.groups.clone(),
            });
    let clock2 = clock.clone();
    let mut executor = Executor::new(plan_clusters, book.clone()).with_clock(move || clock2());
    if now0.is_some() {
        // A replay: the sandbox's reactions settle at once, so a post-check that has not
        // held within this cap never will; waiting out a live plan's 10 minutes would
        // only delay the undo.
        executor = executor.with_post_check_cap(post_check_cap.unwrap_or(REPLAY_POST_CHECK_CAP));
    }
    if let Some((url, token)) = &github {
        let gh = medic_playbooks::GitHub::new(url, token.clone())?;
        plan_ctx.github = Some(gh.clone());
        executor = executor.with_github(gh);
    }
    let remediation = Remediation::new(book, plan_ctx, executor, clock);

    // The model.
    let model = if opts.no_model {
        None
    } else {
        let mut m = config.model.clone().or(ModelConfig::from_env()?);
        if let (Some(m), Some(name)) = (m.as_mut(), &opts.model) {
            m.model = name.clone();
        }
        if m.is_none() && opts.model.is_some() {
            bail!(
                "--model needs a provider: configure `model:` in medic.yaml or set MEDIC_MODEL=provider/model"
            );
        }
        m
    };
    let session_config = SessionConfig {
        namespace,
        ..SessionConfig::default()
    };
    let session = Session::from_model_config(
        model.as_ref(),
        medic_tools::Registry::standard(),
        tools,
        session_config,
    )
    .await?;
    Ok(Engine::new(session, remediation))
}

/// GitHub from medic.yaml: base URL (default api.github.com) and the token from the
/// named environment variable (default `GITHUB_TOKEN`) or file.
fn github_from_config(config: &Config) -> Result<Option<(String, Option<String>)>> {
    let Some(gh) = &config.github else {
        return Ok(None);
    };
    let url = gh
        .base_url
        .clone()
        .unwrap_or_else(|| "https://api.github.com".to_string());
    let token = match (&gh.token_file, &gh.token_env) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("github.token_file: cannot read {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, env) => std::env::var(env.as_deref().unwrap_or("GITHUB_TOKEN")).ok(),
    };
    Ok(Some((url, token)))
}

/// The kubeconfig file kubectl would read first.
fn kubeconfig_path(target: &KubeTarget) -> Result<PathBuf> {
    if let Some(p) = &target.kubeconfig {
        return Ok(p.clone());
    }
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| p.exists())
    {
        return Ok(first);
    }
    let home = dirs::home_dir().ok_or_else(|| anyhow!("no home directory for ~/.kube/config"))?;
    let p = home.join(".kube").join("config");
    if !p.exists() {
        bail!(
            "no kubeconfig: pass --kubeconfig, set $KUBECONFIG, or create ~/.kube/config \
             (or replay an incident with --sandbox BUNDLE)"
        );
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn replay_identities_take_the_terminal_user_from_medic_yaml() {
        let bundle: Vec<medic_sandbox::bundle::Identity> = serde_yaml::from_str(
            "- { name: medic, kube_user: 'system:serviceaccount:medic:medic', agent: true }\n\
             - { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE }\n",
        )
        .unwrap();
        let config = Config::parse(
            Path::new("medic.yaml"),
            "approvals:\n  identities:\n    - { name: alice, kube_user: alice@corp.example, terminal: asmith }\n",
        )
        .unwrap();
        let ids = bundle_identities(&bundle, &config);
        assert_eq!(ids[0].terminal, None);
        assert!(ids[0].agent);
        assert_eq!(ids[1].terminal.as_deref(), Some("asmith"));
        assert_eq!(ids[1].slack.as_deref(), Some("U01ALICE"));
        assert_eq!(ids[1].groups, vec!["sre".to_string()]);
    }
}
