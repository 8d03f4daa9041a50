//! The kubeconfig the sandbox writes: one context per cluster (named after it), one user per
//! identity, the agent identity as every context's user, the first cluster as current context.

use std::net::SocketAddr;

use serde_json::json;

use crate::error::Result;

pub(crate) fn render(
    scheme: &str,
    clusters: &[(String, SocketAddr)],
    ca_pem: Option<&str>,
    tokens: &[(String, String)],
    agent: &str,
) -> Result<String> {
    use base64::Engine;
    let cluster_entry = |addr: &SocketAddr| {
        let mut c = json!({"server": format!("{scheme}://{addr}")});
        if let Some(ca) = ca_pem {
            c["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(ca).into();
        }
        c
    };
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters.iter().map(|(name, addr)| json!({"name": name, "cluster": cluster_entry(addr)})).collect::<Vec<_>>(),
        "users": tokens.iter().map(|(name, token)| json!({"name": name, "user": {"token": token}})).collect::<Vec<_>>(),
        "contexts": clusters.iter().map(|(name, _)| json!({"name": name, "context": {"cluster": name, "user": agent}})).collect::<Vec<_>>(),
        "current-context": clusters.first().map(|(n, _)| n.clone()).unwrap_or_default(),
        "preferences": {},
    });
    Ok(serde_yaml::to_string(&config)?)
}
