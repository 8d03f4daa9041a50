//! Running many scenarios: discovery, filtering, `--jobs N` concurrency and the progress bar.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::EngineFactory;
use crate::error::{Error, Result};
use crate::report::{Report, ScenarioResult};
use crate::runner::{RunOptions, discover, load_scenario, matches_filter, run_scenario};

/// Runs every scenario folder under each of `dirs` (e.g. `evals/scenarios` and
/// `sandbox/bundles`; a scenario folder itself is taken as is) that passes `opts.filter`,
/// `opts.jobs` at a time.
pub async fn run_suite<F: EngineFactory>(
    factory: &F,
    dirs: &[PathBuf],
    opts: &RunOptions,
) -> Result<Report> {
    let mut folders = Vec::new();
    for d in dirs {
        // A scenario folder itself, or a folder of scenarios.
        if d.join("scenario.yaml").is_file() {
            folders.push(d.clone());
        } else {
            folders.extend(discover(d)?);
        }
    }
    run_scenarios(factory, &folders, opts)
        .await
        .map_err(|e| match e {
            Error::NoScenarios { filter, .. } => Error::NoScenarios {
                dir: PathBuf::from(
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                filter,
            },
            other => other,
        })
}

/// Runs the given scenario folders that pass `opts.filter`.
pub async fn run_scenarios<F: EngineFactory>(
    factory: &F,
    folders: &[PathBuf],
    opts: &RunOptions,
) -> Result<Report> {
    let started = Instant::now();
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for dir in folders {
        let name = folder_name(dir);
        match load_scenario(dir) {
            Ok(s) => {
                if matches_filter(&s.name, &s.expected.tags, opts.filter.as_deref()) {
                    loaded.push(s);
                }
            }
            Err(e) => {
                if matches_filter(&name, &[], opts.filter.as_deref()) {
                    let mut r = ScenarioResult::new(&name, &[], &opts.mode);
                    r.fail_infrastructure(format!("could not load: {e}"));
                    r.finish();
                    failed.push(r);
                }
            }
        }
    }
    if loaded.is_empty() && failed.is_empty() {
        return Err(Error::NoScenarios {
            dir: folders
                .first()
                .and_then(|f| f.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            filter: opts.filter.clone().unwrap_or_else(|| "none".into()),
        });
    }
    let bar = if opts.progress {
        ProgressBar::new((loaded.len() + failed.len()) as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} scenarios {msg}",
    ) {
        bar.set_style(style);
    }
    bar.inc(failed.len() as u64);
    // Without a terminal (CI, a log file) the bar does not draw: one line per scenario then.
    let lines = opts.progress && !std::io::stderr().is_terminal();
    let total = loaded.len() + failed.len();
    let done = AtomicUsize::new(failed.len());
    let jobs = opts.jobs.max(1);
    let mut results: Vec<ScenarioResult> = futures::stream::iter(loaded.iter())
        .map(|s| {
            let bar = bar.clone();
            let done = &done;
            async move {
                let r = run_scenario(factory, s, opts).await;
                let mark = if r.passed { "✓" } else { "✗" };
                bar.set_message(format!("{mark} {}", r.name));
                bar.inc(1);
                if lines {
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!(
                        "[{n}/{total}] {mark} {} ({:.1} s)",
                        r.name,
                        r.wall_ms as f64 / 1000.0
                    );
                }
                r
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    bar.finish_and_clear();
    results.extend(failed);
    Ok(Report::new(
        &opts.mode,
        results,
        started.elapsed().as_millis() as u64,
    ))
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}
