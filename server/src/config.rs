//! Configuration: the `server` section of `medic.yaml` ([`ServerConfig`]) and its resolved,
//! reloadable form (secrets read, runbooks and identities loaded).
//!
//! Secrets never sit in the YAML: each is named by an environment variable (`*_env`) or a
//! file (`*_file`); files are re-read on reload, so a rotated secret is picked up by SIGHUP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medic_approvals::{IdentityEntry, IdentityMap};
use medic_tools::runbooks::{Channel, Runbook, load_runbooks};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServerError};

/// Where a secret comes from: an environment variable or a file (first non-empty wins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// File holding the secret (trailing whitespace is trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// A secret read from `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef {
            env: None,
            file: Some(path.into()),
        }
    }

    /// A secret read from the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef {
            env: Some(name.into()),
            file: None,
        }
    }

    fn is_set(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    /// Reads the secret now; `Ok(None)` when neither source is configured.
    pub fn read(&self, name: &'static str) -> Result<Option<String>> {
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
                Ok(_) => Err(ServerError::Secret {
                    name,
                    from: format!("${var}"),
                    reason: "it is empty".into(),
                }),
                Err(e) => Err(ServerError::Secret {
                    name,
                    from: format!("${var}"),
                    reason: e.to_string(),
                }),
            };
        }
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).map_err(|e| ServerError::Secret {
                name,
                from: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(ServerError::Secret {
                    name,
                    from: path.display().to_string(),
                    reason: "the file is empty".into(),
                });
            }
            return Ok(Some(text.to_owned()));
        }
        Ok(None)
    }
}

/// Slack app settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The signing secret (verifies every request from Slack).
    pub signing_secret: SecretRef,
    /// The bot token (`xoxb-…`) for the Web API.
    pub bot_token: SecretRef,
    /// Web API base URL; default `https://slack.com/api` (tests point it at a local server).
    #[serde(default = "default_slack_api")]
    pub api_base_url: String,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

/// Microsoft Teams (Bot Framework) settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The bot's Microsoft app id: the audience incoming tokens must carry.
    pub app_id: String,
    /// The app password (client secret) used to obtain outgoing tokens.
    #[serde(default)]
    pub app_password: SecretRef,
    /// OpenID configuration of the Bot Framework token issuer.
    #[serde(default = "default_openid")]
    pub openid_config_url: String,
    /// Accepted token issuer.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Where outgoing tokens are obtained (OAuth client credentials).
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Scope requested for outgoing tokens.
    #[serde(default = "default_scope")]
    pub token_scope: String,
    /// Service URL used for proactive posts to a runbook's Teams channel.
    #[serde(default = "default_service_url")]
    pub service_url: String,
    /// Clock skew tolerated on `exp` / `nbf`, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u64,
    /// How long fetched signing keys are trusted before they are fetched again, in seconds.
    #[serde(default = "default_key_ttl")]
    pub keys_ttl_secs: u64,
}

fn default_openid() -> String {
    "https://login.botframework.com/v1/.well-known/openidconfiguration".into()
}
fn default_issuer() -> String {
    "https://api.botframework.com".into()
}
fn default_token_url() -> String {
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token".into()
}
fn default_scope() -> String {
    "https://api.botframework.com/.default".into()
}
fn default_service_url() -> String {
    "https://smba.trafficmanager.net/teams/".into()
}
fn default_skew() -> u64 {
    300
}
fn default_key_ttl() -> u64 {
    24 * 3600
}

/// Alert receivers and the automation around them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Bearer token Alertmanager must send (`http_config.authorization.credentials_file`).
    /// Without it the Alertmanager endpoint answers 404 (it is unsigned otherwise).
    #[serde(default)]
    pub alertmanager_token: SecretRef,
    /// PagerDuty v3 webhook signing secrets; several during rotation.
    #[serde(default)]
    pub pagerduty_secrets: Vec<SecretRef>,
    /// Alert groups that may wait for an investigation slot; beyond it webhooks get 503.
    #[serde(default = "default_queue")]
    pub queue_size: usize,
    /// Investigations running at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrent: usize,
    /// How long a fingerprint is remembered for de-duplication, in seconds.
    #[serde(default = "default_dedup_ttl")]
    pub dedup_ttl_secs: u64,
    /// A group investigated this recently gets new alerts added to its thread instead of a
    /// new investigation, in seconds.
    #[serde(default = "default_regroup")]
    pub reinvestigate_after_secs: u64,
    /// Where to post when no runbook matches (none: the investigation still runs, unposted).
    #[serde(default)]
    pub default_channel: Option<Channel>,
    /// Folder of on-call runbooks (`playbooks/runbooks`).
    #[serde(default)]
    pub runbooks_dir: Option<PathBuf>,
}

fn default_queue() -> usize {
    256
}
fn default_concurrency() -> usize {
    4
}
fn default_dedup_ttl() -> u64 {
    24 * 3600
}
fn default_regroup() -> u64 {
    4 * 3600
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            alertmanager_token: SecretRef::default(),
            pagerduty_secrets: Vec::new(),
            queue_size: default_queue(),
            max_concurrent: default_concurrency(),
            dedup_ttl_secs: default_dedup_ttl(),
            reinvestigate_after_secs: default_regroup(),
            default_channel: None,
            runbooks_dir: None,
        }
    }
}

/// The per-hour model spend cap (either limit, or both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendConfig {
    /// Tokens (in + out) per rolling hour.
    #[serde(default)]
    pub tokens_per_hour: Option<u64>,
    /// USD per rolling hour (when the engine reports cost).
    #[serde(default)]
    pub usd_per_hour: Option<f64>,
}

/// The `server` section of `medic.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Slack; absent disables `/slack/*`.
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    /// Teams; absent disables `/teams/*`.
    #[serde(default)]
    pub teams: Option<TeamsConfig>,
    /// Alert webhooks.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Model spend cap.
    #[serde(default)]
    pub spend: SpendConfig,
    /// Chat identities (the same entries as `approvals.identities`).
    #[serde(default)]
    pub identities: Vec<IdentityEntry>,
    /// Where queued work is checkpointed at shutdown and picked up at start.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How long shutdown waits for running investigations before cancelling them, seconds.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Timeout of every outgoing HTTP call, in seconds.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

fn default_grace() -> u64 {
    20
}
fn default_http_timeout() -> u64 {
    10
}

/// The parts of the configuration that are read from disk or the environment, resolved.
/// Swapped as a whole on reload.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub config: ServerConfig,
    pub slack_signing_secret: Option<Vec<u8>>,
    pub slack_bot_token: Option<String>,
    pub teams_password: Option<String>,
    pub alertmanager_token: Option<String>,
    pub pagerduty_secrets: Vec<Vec<u8>>,
    pub runbooks: Vec<Runbook>,
    pub identities: IdentityMap,
}

impl Resolved {
    /// Reads every secret and file the configuration names; all-or-nothing.
    pub fn load(config: ServerConfig) -> Result<Resolved> {
        if config.alerts.queue_size == 0 || config.alerts.max_concurrent == 0 {
            return Err(ServerError::Config(format!(
                "alerts.queue_size and alerts.max_concurrent must be at least 1, found {} and {}",
                config.alerts.queue_size, config.alerts.max_concurrent
            )));
        }
        let (slack_signing_secret, slack_bot_token) = match &config.slack {
            Some(s) => {
                let secret = s
                    .signing_secret
                    .read("slack.signing_secret")?
                    .ok_or_else(|| {
                        ServerError::Config("slack.signing_secret needs `env` or `file`".into())
                    })?;
                (
                    Some(secret.into_bytes()),
                    s.bot_token.read("slack.bot_token")?,
                )
            }
            None => (None, None),
        };
        let teams_password = match &config.teams {
            Some(t) if t.app_id.trim().is_empty() => {
                return Err(ServerError::Config("teams.app_id must not be empty".into()));
            }
            Some(t) => t.app_password.read("teams.app_password")?,
            None => None,
        };
        let alertmanager_token = config
            .alerts
            .alertmanager_token
            .read("alerts.alertmanager_token")?;
        let mut pagerduty_secrets = Vec::new();
        for s in &config.alerts.pagerduty_secrets {
            if !s.is_set() {
                return Err(ServerError::Config(
                    "every alerts.pagerduty_secrets entry needs `env` or `file`".into(),
                ));
            }
            if let Some(v) = s.read("alerts.pagerduty_secrets")? {
                pagerduty_secrets.push(v.into_bytes());
            }
        }
        let runbooks = match &config.alerts.runbooks_dir {
            Some(dir) => load_dir(dir)?,
            None => Vec::new(),
        };
        let identities = IdentityMap::new(config.identities.clone())
            .map_err(|e| ServerError::Identities(e.to_string()))?;
        Ok(Resolved {
            config,
            slack_signing_secret,
            slack_bot_token,
            teams_password,
            alertmanager_token,
            pagerduty_secrets,
            runbooks,
            identities,
        })
    }

    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.config.http_timeout_secs.max(1))
    }
}

fn load_dir(dir: &Path) -> Result<Vec<Runbook>> {
    load_runbooks(dir).map_err(|e| ServerError::Runbooks(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_yaml_with_defaults() {
        let cfg: ServerConfig = serde_yaml::from_str(
            "slack:\n  signing_secret: { env: SLACK_SIGNING_SECRET }\n  bot_token: { file: /run/secrets/slack }\nalerts:\n  queue_size: 10\nspend: { tokens_per_hour: 100000 }\n",
        )
        .unwrap();
        assert_eq!(
            cfg.slack.as_ref().unwrap().api_base_url,
            "https://slack.com/api"
        );
        assert_eq!(cfg.alerts.queue_size, 10);
        assert_eq!(cfg.alerts.max_concurrent, 4);
        assert_eq!(cfg.spend.tokens_per_hour, Some(100_000));
        assert!(serde_yaml::from_str::<ServerConfig>("slak: {}\n").is_err());
    }

    #[test]
    fn secrets_come_from_files_and_empty_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(
            SecretRef::file(&p).read("x").unwrap().as_deref(),
            Some("abc")
        );
        std::fs::write(&p, "  \n").unwrap();
        let err = SecretRef::file(&p).read("x").unwrap_err().to_string();
        assert!(err.contains("the file is empty"), "{err}");
        assert_eq!(SecretRef::default().read("x").unwrap(), None);
    }

    #[test]
    fn slack_without_a_signing_secret_is_refused() {
        let cfg = ServerConfig {
            slack: Some(SlackConfig::default()),
            ..ServerConfig::default()
        };
        assert!(
            Resolved::load(cfg)
                .unwrap_err()
                .to_string()
                .contains("slack.signing_secret")
        );
    }
}
