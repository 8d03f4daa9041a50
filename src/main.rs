//! The `medic` binary: a thin command line over the medic crates.
//!
//! Layout: `cli` declares the commands, `config` reads `medic.yaml`, `kubectx` resolves
//! kubeconfig/context/namespace like kubectl, and one module per command does the work.

mod approvals_cmd;
mod ask;
mod audit_cmd;
mod cli;
mod config;
mod demo;
mod eval_cmd;
mod kubectx;
mod sandbox_cmd;
mod serve_cmd;
mod snapshot;
mod tui_cmd;
mod wire;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, SandboxCommand};
use kubectx::KubeTarget;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs what it does by default; the other commands stay quiet unless asked.
    let verbose = match cli.command {
        Command::Serve(_) => cli.global.verbose.max(1),
        _ => cli.global.verbose,
    };
    let json = cli.global.log_json
        || std::env::var("MEDIC_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    init_tracing(verbose, json);
    // `version` and `completions` stay off the async runtime so they start instantly.
    let result = match &cli.command {
        Command::Version => print_version(),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "medic", &mut std::io::stdout());
            Ok(())
        }
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8, json: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // kube-client logs every failed connection at ERROR; medic reports the same failure
    // itself, with context, so the client's own line is only shown when asked for (-v).
    let quiet = if verbose == 0 { ",kube_client=off" } else { "" };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level}{quiet}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn print_version() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "medic {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "commit:  {}", env!("MEDIC_GIT_SHA"))?;
    writeln!(
        out,
        "target:  {} ({})",
        env!("MEDIC_TARGET"),
        env!("MEDIC_PROFILE")
    )?;
    writeln!(out, "tls:     rustls with aws-lc-rs")?;
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let target = KubeTarget {
        kubeconfig: cli.global.kubeconfig.clone(),
        context: cli.global.context.clone(),
        namespace: cli.global.namespace.clone(),
    };
    match cli.command {
        Command::Version | Command::Completions { .. } => Ok(()),
        Command::Config => {
            let (config, source) = config::Config::discover(cli.global.config.as_deref())?;
            println!("# source: {source}");
            println!("# data directory: {}", config.data_dir().display());
            for c in &config.clusters {
                println!(
                    "# cluster {} uses kubeconfig context {}",
                    c.name,
                    c.context()
                );
            }
            print!("{}", serde_yaml::to_string(&config)?);
            Ok(())
        }
        Command::Snapshot(args) => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            let out = snapshot::run(&target, &args, &config.clusters).await?;
            println!("bundle written to {}", out.display());
            Ok(())
        }
        Command::Ask(ask_args) => {
            let args = &ask_args.session;
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            let wired =
                wire::wire(&config, &target, &args.into(), target.namespace.clone()).await?;
            let start = ask::start_of(args.question.clone(), &wired)?;
            let requester = approvals_cmd::terminal_actor()?;
            let transcript = ask::run(&wired, start, requester, ask_args.json).await?;
            if ask_args.json {
                println!("{}", serde_json::to_string_pretty(&transcript)?);
            }
            if let Some(sandbox) = wired.sandbox {
                sandbox.shutdown().await;
            }
            Ok(())
        }
        Command::Demo {
            bundle,
            no_model,
            tui,
        } => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            if tui {
                let opts = wire::WireOptions {
                    sandbox: Some(match bundle {
                        Some(b) => b,
                        None => demo::find_default()?,
                    }),
                    no_model,
                    ..wire::WireOptions::default()
                };
                return open_tui(&config, &target, &opts, None).await;
            }
            demo::run(&config, bundle, no_model).await
        }
        Command::Tui(args) => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            open_tui(&config, &target, &(&args).into(), args.question.clone()).await
        }
        Command::Eval(args) => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            eval_cmd::run(&config, args).await
        }
        Command::Approvals(cmd) => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            approvals_cmd::run(cmd, &config, &target).await
        }
        Command::Audit(cmd) => {
            let (config, _) = config::Config::discover(cli.global.config.as_deref())?;
            audit_cmd::run(cmd, &config.data_dir(), chrono::Utc::now())
        }
        Command::Serve(args) => serve_cmd::run(cli.global.config.clone(), &target, &args).await,
        Command::Sandbox(SandboxCommand::Check { bundles }) => sandbox_cmd::check(&bundles),
        Command::Sandbox(SandboxCommand::Serve(args)) => sandbox_cmd::serve(args).await,
    }
}

/// `medic tui` (and `medic demo --tui`): the TUI on a wired engine; with a replayed bundle
/// and no question, the bundle's own question starts the session.
async fn open_tui(
    config: &config::Config,
    target: &KubeTarget,
    opts: &wire::WireOptions,
    question: Option<String>,
) -> Result<()> {
    let wired = wire::wire(config, target, opts, target.namespace.clone()).await?;
    let question = match (question, &wired.bundle) {
        (Some(q), _) => Some(q),
        (None, Some(_)) => match ask::start_of(None, &wired)? {
            ask::Start::Question(q) => Some(q),
            ask::Start::Alert { .. } => None,
        },
        (None, None) => None,
    };
    tui_cmd::run(
        &wired,
        approvals_cmd::terminal_actor()?,
        target.namespace.clone(),
        question,
    )
    .await?;
    if let Some(sandbox) = wired.sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}
