//! Helpers shared by the integration tests: paths and kube clients on a sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use medic_sandbox::SandboxHandle;

/// The workspace root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A starter bundle by name.
pub fn starter(name: &str) -> PathBuf {
    repo().join("sandbox/bundles").join(name)
}

/// A client on `cluster` that authenticates as medic and impersonates `user` with `groups`,
/// the way an approved plan is executed.
pub async fn client_as(
    sandbox: &SandboxHandle,
    cluster: &str,
    user: &str,
    groups: &[&str],
) -> kube::Client {
    let kc = Kubeconfig::read_from(sandbox.kubeconfig_path()).unwrap();
    let opts = KubeConfigOptions {
        context: Some(cluster.to_string()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    kube::Client::try_from(config).unwrap()
}

/// Like [`client_as`], from a kubeconfig path (for engine doubles that only get the path).
pub async fn client_from(
    kubeconfig: &std::path::Path,
    cluster: &str,
    user: Option<(&str, &[&str])>,
) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let opts = KubeConfigOptions {
        context: Some(cluster.to_string()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    if let Some((user, groups)) = user {
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    kube::Client::try_from(config).unwrap()
}
