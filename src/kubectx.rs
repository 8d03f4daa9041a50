//! Resolving `--kubeconfig`, `--context` and `-n` the way kubectl does.
//!
//! kubectl's order: `--kubeconfig`, else every file in `$KUBECONFIG` merged, else
//! `~/.kube/config`; `--context` picks a context, else the file's `current-context`;
//! `-n` overrides the context's namespace, else `default`.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// What the global flags selected.
#[derive(Debug, Clone, Default)]
pub struct KubeTarget {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n/--namespace`.
    pub namespace: Option<String>,
}

/// A connected client plus what it points at.
pub struct Connected {
    /// The client.
    pub client: kube::Client,
    /// The context name in use.
    pub context: String,
    /// The namespace in use (flag, else the context's, else `default`).
    pub namespace: String,
}

/// Installs aws-lc-rs as the process's rustls provider. Every TLS user in the workspace is
/// built on aws-lc-rs only; installing it explicitly keeps a future dependency that enables
/// `ring` from turning client construction into a run-time panic.
pub fn install_crypto_provider() {
    // An Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl KubeTarget {
    /// Reads the kubeconfig this target names.
    pub fn kubeconfig(&self) -> Result<Kubeconfig> {
        match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display())),
            None => Kubeconfig::read().context(
                "no kubeconfig found: pass --kubeconfig, set $KUBECONFIG, or create ~/.kube/config \
                 (or try `medic sandbox serve <bundle>` for a local incident)",
            ),
        }
    }

    /// Connects, failing with the list of known contexts when `--context` is unknown.
    pub async fn connect(&self) -> Result<Connected> {
        install_crypto_provider();
        let kubeconfig = self.kubeconfig()?;
        let context = match &self.context {
            Some(c) => c.clone(),
            None => kubeconfig.current_context.clone().ok_or_else(|| {
                anyhow!("the kubeconfig has no current-context; pass --context <name>")
            })?,
        };
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if !known.contains(&context.as_str()) {
            return Err(anyhow!(
                "unknown context `{context}`; the kubeconfig has: {}",
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("cannot use context `{context}`"))?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config)
            .with_context(|| format!("cannot build a client for context `{context}`"))?;
        Ok(Connected {
            client,
            context,
            namespace,
        })
    }
}
