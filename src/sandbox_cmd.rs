//! `medic sandbox serve` and `medic sandbox check`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};

use crate::cli::ServeArgs;

/// Validates each bundle and prints every problem; fails when any bundle has one.
pub fn check(bundles: &[PathBuf]) -> Result<()> {
    let mut bad = 0usize;
    for dir in bundles {
        let problems = Bundle::check(dir);
        if problems.is_empty() {
            println!("ok   {}", dir.display());
        } else {
            bad += 1;
            println!("FAIL {} ({} problem(s))", dir.display(), problems.len());
            for p in problems {
                println!("  {}: {p}", dir.display());
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} bundle(s) invalid", bundles.len());
    }
    Ok(())
}

/// Serves a bundle until Ctrl-C, or runs `args.command` against it and exits with its status.
pub async fn serve(args: ServeArgs) -> Result<()> {
    crate::kubectx::install_crypto_provider();
    let bundle = Bundle::load(&args.bundle)?;
    let mut ports = HashMap::new();
    if let Some(first) = args.port {
        for (i, c) in bundle.scenario.clusters.iter().enumerate() {
            let port = u16::try_from(i)
                .ok()
                .and_then(|i| first.checked_add(i))
                .context("--port: not enough ports above the one given")?;
            ports.insert(c.name.clone(), port);
        }
    }
    let options = SandboxOptions {
        ports,
        kubeconfig_path: args.write_kubeconfig.clone(),
        ..SandboxOptions::default()
    };
    let handle = Sandbox::start(&bundle, options).await?;
    let kubeconfig = handle.kubeconfig_path().to_path_buf();
    if !args.command.is_empty() {
        let status = tokio::process::Command::new(&args.command[0])
            .args(&args.command[1..])
            .env("KUBECONFIG", &kubeconfig)
            .status()
            .await
            .with_context(|| format!("cannot run `{}`", args.command[0]))?;
        handle.shutdown().await;
        if !status.success() {
            bail!("`{}` exited with {status}", args.command.join(" "));
        }
        return Ok(());
    }
    eprintln!(
        "Serving {} ({})",
        bundle.scenario.title,
        args.bundle.display()
    );
    for (name, addr) in handle.clusters() {
        eprintln!("  cluster {name:<20} http://{addr}");
    }
    eprintln!(
        "\nIn another terminal:\n  export KUBECONFIG={}",
        kubeconfig.display()
    );
    eprintln!("  kubectl get pods -A\n\nCtrl-C stops the sandbox.");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
