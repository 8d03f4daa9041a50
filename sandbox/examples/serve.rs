//! Serves a bundle until Ctrl-C: `cargo run -p medic-sandbox --example serve -- <bundle> [kubeconfig]`.
#![allow(clippy::print_stdout)]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: serve <bundle> [kubeconfig-path]")?;
    let bundle = medic_sandbox::Bundle::load(&dir)?;
    let options = medic_sandbox::SandboxOptions {
        kubeconfig_path: args.next().map(Into::into),
        ..Default::default()
    };
    let handle = medic_sandbox::Sandbox::start(&bundle, options).await?;
    for (name, _) in handle.clusters() {
        println!("{name}: {}", handle.cluster_url(&name).unwrap_or_default());
    }
    println!("kubeconfig: {}", handle.kubeconfig_path().display());
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
