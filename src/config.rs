//! `medic.yaml`: where it is found, what it holds, and how it is checked.
//!
//! The file is optional: a missing file means defaults (no clusters beyond the kubeconfig's
//! current context, no model — analyzers only — and data under the XDG data directory).
//! A present but invalid file is an error naming the key and the line, so nothing runs on a
//! half-understood configuration.
//!
//! Secrets never live in the YAML itself: every secret is named by an environment variable
//! (`*_env`) or a file (`*_file`). A key that looks like an inline secret is refused with a
//! message that says which of the two to use instead.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that points at the configuration file.
pub const CONFIG_ENV: &str = "MEDIC_CONFIG";

/// The whole of `medic.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Clusters medic may investigate, by the name medic uses for them.
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    /// The model provider (see `medic_agent::ModelConfig`); absent means analyzers only.
    #[serde(default)]
    pub model: Option<medic_agent::ModelConfig>,
    /// GitHub (or GitHub Enterprise) access for recent changes and revert pull requests.
    #[serde(default)]
    pub github: Option<GitHubSection>,
    /// `medic serve`: Slack, Teams, alert webhooks and runbooks (see
    /// `medic_server::ServerConfig`). Its people are `approvals.identities`.
    #[serde(default)]
    pub server: Option<medic_server::ServerConfig>,
    /// Approval policy and identity mapping.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// Where medic keeps its audit log and state; defaults to `$XDG_DATA_HOME/medic`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// One cluster: a kubeconfig context plus what medic knows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// medic's name for the cluster (shown to people and the model).
    pub name: String,
    /// Kubeconfig context; defaults to `name`.
    #[serde(default)]
    pub context: Option<String>,
    /// Kubeconfig file for this cluster; defaults to `--kubeconfig` / `$KUBECONFIG` / `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Prometheus base URL for this cluster's metrics.
    #[serde(default)]
    pub prometheus: Option<String>,
    /// Default namespace when none is given.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels used by placement policies, e.g. `region: westeurope`, `residency: eu`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ClusterConfig {
    /// The kubeconfig context this cluster is reached through.
    pub fn context(&self) -> &str {
        self.context.as_deref().unwrap_or(&self.name)
    }
}

/// GitHub access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubSection {
    /// API base URL; `https://api.github.com` unless GitHub Enterprise.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the token (default `GITHUB_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Approval policy and identity mapping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    /// Path of the approval policy (`policy.yaml`); absent means the built-in default.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Chat and terminal identities mapped to Kubernetes users and groups (the approvals
    /// crate's own entry type, so the two cannot drift apart).
    #[serde(default)]
    pub identities: Vec<medic_approvals::IdentityEntry>,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Read from this file.
    File(PathBuf),
    /// No file was found at this path; defaults apply.
    Defaults(Option<PathBuf>),
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or `$MEDIC_CONFIG` could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML did not match the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde's message, which names the key path, line and column.
        message: String,
    },
    /// The shape was right but a value is not usable.
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key, or 0 when unknown.
        line: usize,
        /// Dotted key path, e.g. `clusters[1].prometheus`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Keys that would hold an inline secret. They are refused so secrets are never only in YAML.
const INLINE_SECRET_KEYS: &[(&str, &str)] = &[
    ("api_key", "api_key_env or api_key_file"),
    ("token", "token_env or token_file"),
    (
        "signing_secret",
        "signing_secret: { env: VAR } or { file: PATH }",
    ),
    ("bot_token", "bot_token: { env: VAR } or { file: PATH }"),
    (
        "app_password",
        "app_password: { env: VAR } or { file: PATH }",
    ),
    (
        "alertmanager_token",
        "alertmanager_token: { env: VAR } or { file: PATH }",
    ),
    ("password", "an *_env or *_file key"),
];

impl Config {
    /// Finds and loads the configuration: `explicit` (from `--config`), else `$MEDIC_CONFIG`,
    /// else `$XDG_CONFIG_HOME/medic/medic.yaml`. A missing default file yields defaults; a
    /// missing explicit file is an error (the user asked for it).
    pub fn discover(explicit: Option<&Path>) -> Result<(Self, Source), ConfigError> {
        let from_env = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
        if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
            return Self::load(&path).map(|c| (c, Source::File(path)));
        }
        let default = dirs::config_dir().map(|d| d.join("medic").join("medic.yaml"));
        match default {
            Some(path) if path.exists() => Self::load(&path).map(|c| (c, Source::File(path))),
            other => Ok((Self::default(), Source::Defaults(other))),
        }
    }

    /// Loads and validates one file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates YAML text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |line, key: String, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        };
        if let Some((line, key, instead)) = find_inline_secret(text) {
            return Err(invalid(
                line,
                key,
                format!("secrets are not read from medic.yaml; use {instead} instead"),
            ));
        }
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Config = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(|key, needle, message| invalid(line_of(text, needle), key, message))?;
        Ok(config)
    }

    fn validate(
        &self,
        invalid: impl Fn(String, &str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let key = |k: &str| format!("clusters[{i}].{k}");
            if c.name.trim().is_empty() {
                return Err(invalid(key("name"), "name:", "must not be empty".into()));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    &c.name,
                    format!("cluster `{}` is listed twice; names must be unique", c.name),
                ));
            }
            if let Some(url) = &c.prometheus
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    key("prometheus"),
                    url,
                    format!("expected an http:// or https:// URL, found `{url}`"),
                ));
            }
        }
        if let Some(m) = &self.model {
            m.validate()
                .map_err(|e| invalid("model".into(), "model:", e.to_string()))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, id) in self.approvals.identities.iter().enumerate() {
            if !names.insert(id.name.as_str()) {
                return Err(invalid(
                    format!("approvals.identities[{i}].name"),
                    &id.name,
                    format!("identity `{}` is listed twice", id.name),
                ));
            }
        }
        Ok(())
    }

    /// The data directory: configured, else `$XDG_DATA_HOME/medic`, else `./.medic`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| dirs::data_dir().map(|d| d.join("medic")))
            .unwrap_or_else(|| PathBuf::from(".medic"))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Defaults(Some(p)) => write!(f, "defaults ({} not found)", p.display()),
            Source::Defaults(None) => write!(f, "defaults"),
        }
    }
}

/// Parses `90s`, `2m`, `1h`, `500ms`.
pub fn humantime_like(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(std::time::Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// Finds a key such as `api_key:` holding a value; returns (line, key, what to use instead).
fn find_inline_secret(text: &str) -> Option<(usize, String, &'static str)> {
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        // `{ env: … }` / `{ file: … }` names where a secret is; typed parsing refuses any
        // other key inside the braces.
        if value.is_empty() || value == "null" || value == "~" || value.starts_with('{') {
            continue;
        }
        if let Some((k, instead)) = INLINE_SECRET_KEYS.iter().find(|(k, _)| *k == key.trim()) {
            return Some((i + 1, (*k).to_string(), instead));
        }
    }
    None
}

/// 1-based line of the first occurrence of `needle`, or 0.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("medic.yaml"), text)
    }

    #[test]
    fn full_file_parses() {
        let cfg = parse(
            r#"
clusters:
  - name: aks-eu-west
    context: prod-eu
    prometheus: http://127.0.0.1:9090
    labels: { region: westeurope, residency: eu }
model:
  provider: openai-compatible
  model: qwen2.5-coder
  base_url: http://127.0.0.1:8080/v1
  api_key_env: LLAMA_KEY
github: { token_env: GH_TOKEN }
approvals:
  policy: /etc/medic/policy.yaml
  identities:
    - { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE }
data_dir: /var/lib/medic
"#,
        )
        .unwrap();
        assert_eq!(cfg.clusters[0].context(), "prod-eu");
        assert_eq!(cfg.clusters[0].labels["residency"], "eu");
        assert_eq!(cfg.data_dir(), PathBuf::from("/var/lib/medic"));
        assert_eq!(cfg.approvals.identities[0].groups, vec!["sre".to_string()]);
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("clusters:\n  - name: a\n    promethus: http://x\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("clusters[0]"), "{msg}");
        assert!(msg.contains("unknown field `promethus`"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let msg = parse("clusters:\n  - name: a\n    labels: [eu]\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("clusters[0].labels"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn inline_secret_is_refused() {
        let err = parse("model:\n  provider: openai\n  model: gpt-4o\n  api_key: sk-live\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "medic.yaml:4: `api_key`: secrets are not read from medic.yaml; use api_key_env or api_key_file instead"
        );
    }

    #[test]
    fn server_secrets_are_named_never_inline() {
        let ok = parse(
            "server:\n  slack:\n    signing_secret: { env: SLACK_SIGNING_SECRET }\n    bot_token: { file: /run/secrets/slack }\n",
        )
        .unwrap();
        assert!(ok.server.unwrap().slack.is_some());
        let err = parse("server:\n  slack:\n    signing_secret: 8f14e45fceea\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("medic.yaml:3: `signing_secret`"), "{err}");
        let err = parse("server:\n  slack:\n    signing_secret: { value: 8f14e45fceea }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `value`"), "{err}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let err = parse("clusters:\n  - name: a\n  - name: b\n    prometheus: 127.0.0.1:9090\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "medic.yaml:4: `clusters[1].prometheus`: expected an http:// or https:// URL, found `127.0.0.1:9090`"
        );
        let err = parse("clusters:\n  - name: a\n  - name: a\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
        let err = parse("model: { provider: openai-compatible, model: x }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs `base_url`"), "{err}");
        let err = parse("model: { provider: chatgpt, model: x }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.provider: unknown variant `chatgpt`"),
            "{err}"
        );
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let err = Config::discover(Some(Path::new("/nonexistent/medic.yaml"))).unwrap_err();
        assert!(err.to_string().contains("cannot read configuration"));
    }

    #[test]
    fn durations() {
        assert_eq!(
            humantime_like("90s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            humantime_like("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(humantime_like("2x"), None);
    }
}
