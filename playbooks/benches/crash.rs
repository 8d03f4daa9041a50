#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The crash test at scale: `CRASH_ITERATIONS=1000 cargo bench -p medic-playbooks --bench crash`.
//! Each iteration kills the executing child with SIGKILL 1–3 times at random points during
//! approval and execution, restarts it, and checks that no acknowledged audit record was
//! lost, no step was applied twice, and `audit verify` passes after every restart.

#[path = "../tests/common/crash.rs"]
mod crash;

fn main() {
    if let Ok(spec) = std::env::var(crash::CHILD_ENV) {
        crash::child_main(&spec);
        return;
    }
    let n = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let exe = std::env::current_exe().unwrap();
    let start = std::time::Instant::now();
    let stats = crash::run(n, || std::process::Command::new(&exe));
    println!(
        "crash: {} iterations, {} kills, {} acknowledged records checked, {} steps found already applied on resume, seed {}, {:.1}s",
        stats.iterations,
        stats.kills,
        stats.acks_checked,
        stats.resumed_steps,
        stats.seed,
        start.elapsed().as_secs_f64()
    );
    let late: usize = ["done", "finished"]
        .iter()
        .filter_map(|s| stats.kills_after.get(*s))
        .sum();
    println!(
        "kills before the child finished: {} (the rest landed while it was exiting)",
        stats.kills - late
    );
    println!("kills after: {:?}", stats.kills_after);
}
