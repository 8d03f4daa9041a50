//! `medic eval`: the scenario suite against the real engine, one sandbox per scenario.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use medic_agent::ModelConfig;
use medic_agent::scripted::{Script, ScriptedServer};
use medic_approvals::Actor;
use medic_evals::{
    ActorForm, Bar, EngineFactory, EngineLink, EvalMode, RunOptions, ScenarioRun, run_suite,
};

use crate::cli::EvalArgs;
use crate::config::Config;
use crate::wire::{Parts, WireOptions, build_engine, bundle_clusters, bundle_identities};

/// What the scripted model does when a scenario brings no `model-script.yaml`: look at the
/// events once, then stand by the analyzers' findings it was given. Deterministic, offline,
/// and it exercises the whole model path (prompt, tool schemas, a tool call, a final answer).
const GENERIC_SCRIPT: &str = r#"
steps:
  - tool_calls: [{name: k8s_events, arguments: {}}]
  - final:
      answer: "The analyzer findings above are consistent with the events; no further evidence changes them."
      findings: []
"#;

/// How long a plan's post-checks may poll in an eval. Each scenario has its own sandbox,
/// nothing but the plan writes to it, and the sandbox applies a scenario's reactions inside
/// the write that triggers them: a check that does not hold after a few polls never will.
/// (Replays in general allow 20 s; a failing check there only delays the undo.)
const POST_CHECK_CAP: Duration = Duration::from_secs(3);

/// Builds one engine per scenario on the scenario's sandbox.
struct Factory {
    config: Config,
    /// Data directories and scripted servers live as long as the suite.
    keep: Mutex<Vec<(tempfile::TempDir, Option<ScriptedServer>)>>,
}

impl EngineFactory for Factory {
    async fn open(&self, run: &ScenarioRun<'_>) -> medic_evals::Result<EngineLink> {
        self.open_inner(run)
            .await
            .map_err(|e| medic_evals::Error::Engine(format!("{e:#}")))
    }
}

impl Factory {
    async fn open_inner(&self, run: &ScenarioRun<'_>) -> Result<EngineLink> {
        let data = tempfile::Builder::new().prefix("medic-eval-").tempdir()?;
        let clusters = bundle_clusters(run.bundle, run.sandbox);
        let identities = bundle_identities(run.identities(), &self.config);
        let mut opts = WireOptions::default();
        let mut scripted = None;
        let mut config = self.config.clone();
        match run.mode {
            EvalMode::NoModel => opts.no_model = true,
            EvalMode::Scripted => {
                let own = run.dir.join("model-script.yaml");
                let script = if own.exists() {
                    Script::from_file(&own)?
                } else {
                    Script::from_yaml(GENERIC_SCRIPT)?
                };
                let server = ScriptedServer::start(script).await?;
                let mut mc = ModelConfig::openai_compatible(server.base_url.clone(), "scripted");
                mc.max_retries = 0;
                config.model = Some(mc);
                scripted = Some(server);
            }
            // An empty name: the configured model as it is.
            EvalMode::Model(name) => opts.model = Some(name.clone()).filter(|n| !n.is_empty()),
        }
        let parts = Parts {
            kubeconfig: run.kubeconfig_path().to_path_buf(),
            clusters,
            identities,
            policy_text: run
                .bundle
                .policy
                .as_ref()
                .map(|f| (f.path.clone(), f.text.clone())),
            now0: Some(run.now()),
            data_dir: data.path().to_path_buf(),
            github: run.sandbox.github_url().map(|u| (u, None)),
            post_check_cap: Some(POST_CHECK_CAP),
        };
        let engine = build_engine(&config, &opts, parts, None).await?;
        let requester = Actor::Name(run.requester.unwrap_or("medic").to_string());
        let link = engine.connect(requester);
        if let Ok(mut keep) = self.keep.lock() {
            keep.push((data, scripted));
        }
        Ok(EngineLink {
            ops: link.ops,
            events: link.events,
        })
    }
}

/// Runs the suite and compares it with the bar.
pub async fn run(config: &Config, args: EvalArgs) -> Result<()> {
    let mode = if args.no_model {
        EvalMode::NoModel
    } else if args.scripted {
        EvalMode::Scripted
    } else if let Some(m) = &args.model {
        EvalMode::Model(m.clone())
    } else if config.model.is_some() || std::env::var_os("MEDIC_MODEL").is_some() {
        EvalMode::Model(String::new())
    } else {
        EvalMode::NoModel
    };
    if matches!(mode, EvalMode::Model(_))
        && config.model.is_none()
        && ModelConfig::from_env()?.is_none()
    {
        bail!(
            "a real model needs a provider: configure `model:` in medic.yaml or set \
             MEDIC_MODEL=provider/model (or run --no-model or --scripted, which need none)"
        );
    }
    let default_dirs = vec![
        PathBuf::from("evals/scenarios"),
        PathBuf::from("sandbox/bundles"),
    ];
    let dirs = if args.scenarios.is_empty() {
        default_dirs.clone()
    } else {
        args.scenarios.clone()
    };
    // The bar is measured on the whole default set; a filtered or different set is not
    // comparable with it.
    let whole_suite = args.filter.is_none() && dirs == default_dirs;
    let opts = RunOptions {
        mode: mode.clone(),
        jobs: args.jobs.max(1),
        filter: args.filter.clone(),
        progress: true,
        settle: Duration::from_secs(1),
        // An approved plan runs against the scenario's own sandbox: its steps and capped
        // post-checks finish in seconds, so a plan still running after this is stuck (e.g.
        // a wait step whose state the scenario never reaches) and is reported as such.
        approval_budget: Duration::from_secs(30),
        actor: ActorForm::Name,
        ..RunOptions::default()
    };
    let factory = Factory {
        config: config.clone(),
        keep: Mutex::new(Vec::new()),
    };
    let report = run_suite(&factory, &dirs, &opts).await?;
    // What failed and what medic said instead, scenario by scenario (the JSON and Markdown
    // reports carry the same messages and more).
    for r in report.scenarios.iter().filter(|r| !r.passed) {
        println!("✗ {}", r.name);
        for f in &r.failures {
            println!("    {f}");
        }
    }
    println!("{}", report.summary());
    if let Some(p) = &args.json {
        report.write_json(p)?;
    }
    if let Some(p) = &args.markdown {
        report.write_markdown(p)?;
    }
    let bar_path = Path::new("evals/bar.json");
    if whole_suite && bar_path.exists() {
        let comparison = Bar::load(bar_path)?.compare(&report, "evals/bar.json");
        println!("{comparison}");
        if !comparison.passed() {
            bail!("the eval scores fell below the bar recorded in evals/bar.json");
        }
    }
    let t = &report.totals;
    if t.unapproved_executions > 0 || t.never_violations > 0 {
        bail!(
            "{} execution(s) without approval and {} `never` violation(s)",
            t.unapproved_executions,
            t.never_violations
        );
    }
    Ok(())
}
