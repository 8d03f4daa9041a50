#![allow(clippy::unwrap_used, clippy::expect_used)]
//! kill -9 at random points during approval and execution, a few dozen times
//! (`CRASH_ITERATIONS`, default 16; the bench runs 1,000). The child is this test binary
//! re-executed in child mode.

#[path = "common/crash.rs"]
mod crash;

#[test]
fn crash_child() {
    // Child mode only; a no-op in a normal test run.
    if let Ok(spec) = std::env::var(crash::CHILD_ENV) {
        crash::child_main(&spec);
        std::process::exit(0);
    }
}

#[test]
fn kill_nine_at_random_points_loses_nothing_and_applies_nothing_twice() {
    let n = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let exe = std::env::current_exe().unwrap();
    let stats = crash::run(n, || {
        let mut c = std::process::Command::new(&exe);
        c.args(["--exact", "crash_child", "--nocapture", "--test-threads=1"]);
        c
    });
    eprintln!("{stats:?}");
    assert_eq!(stats.iterations, n);
    // A kill drawn after the child already finished does not happen; most do.
    assert!(stats.kills >= n / 2, "{stats:?}");
}
