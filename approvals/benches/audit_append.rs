//! Audit append throughput and latency with fdatasync.
//!
//! `cargo bench -p medic-approvals --bench audit_append` prints, as medians over runs:
//! one-at-a-time appends (records/s, p50/p99 latency) and group commit from many
//! concurrent appenders (records/s, p99 latency of one append). Targets: >= 1,000/s and
//! >= 20,000/s. Writes under the target directory (a real disk, not tmpfs).
//!
//! Each one-at-a-time run is paired with a run of the floor — the same bytes appended
//! with a bare `write` + `fdatasync` to a file in the same directory — so the difference
//! is medic's software cost, whatever the disk is doing at that moment (on a shared
//! machine the flush time varies by 10x from minute to minute).
//! `MEDIC_BENCH_DIR=/dev/shm` measures the software alone (tmpfs: sync is free).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use medic_approvals::audit::{AuditLog, RecordDraft, RecordKind, verify};
use serde_json::json;

fn draft(i: u64) -> RecordDraft {
    RecordDraft::new(
        Utc::now(),
        "slack:U01ALICE",
        RecordKind::StepApplied,
        json!({ "step": i, "verb": "patch", "resource": "deployments", "name": "llama", "namespace": "ai",
                "response": { "code": 200, "auditID": "6f1d6c1e-1d2a-4c7e-9a55-0e5b7f3b9d21" } }),
    )
    .approval("3f0a8f2e-2b55-4d1c-8d3b-6a1f0c9e7a10")
    .plan_hash("9c1f3e1b7d2a4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcdef")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The floor: `n` appends of one record's bytes with a bare write + fdatasync each.
fn floor(dir: &std::path::Path, n: u64, line: &[u8]) -> (f64, Duration, Duration) {
    use std::io::Write;
    let path = dir.join(format!("floor-{}.jsonl", uuid::Uuid::new_v4()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(line).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (rate, pct(&lat, 0.5), pct(&lat, 0.99))
}

fn sequential(dir: &std::path::Path, n: u64) -> (f64, Duration, Duration) {
    let path = dir.join(format!("seq-{}.jsonl", uuid::Uuid::new_v4()));
    let (log, _) = AuditLog::open(&path).unwrap();
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        log.append_blocking(draft(i)).unwrap();
        lat.push(t.elapsed());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    assert!(verify(&path).unwrap().is_ok());
    (rate, pct(&lat, 0.5), pct(&lat, 0.99))
}

fn grouped(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    tasks: u64,
    per_task: u64,
) -> (f64, Duration) {
    let path = dir.join(format!("group-{}.jsonl", uuid::Uuid::new_v4()));
    let (log, _) = AuditLog::open(&path).unwrap();
    let (rate, mut lat) = rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_task as usize);
                    for i in 0..per_task {
                        let s = Instant::now();
                        log.append(draft(t * per_task + i)).await.unwrap();
                        lat.push(s.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.await.unwrap());
        }
        (
            (tasks * per_task) as f64 / start.elapsed().as_secs_f64(),
            lat,
        )
    });
    lat.sort();
    let report = verify(&path).unwrap();
    assert!(report.is_ok() && report.records == tasks * per_task);
    (rate, pct(&lat, 0.99))
}

fn main() {
    // MEDIC_BENCH_DIR=/dev/shm measures the code alone (tmpfs: sync is free).
    let base = std::env::var_os("MEDIC_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit-bench")
        });
    println!("writing under {}", base.display());
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let runs = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One record's bytes as the log writes them, for the floor.
    let sample = {
        let path = dir.path().join("sample.jsonl");
        let (log, _) = AuditLog::open(&path).unwrap();
        log.append_blocking(draft(0)).unwrap();
        drop(log);
        std::fs::read(&path).unwrap()
    };
    let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut frates, mut fp50s, mut fp99s) = (Vec::new(), Vec::new(), Vec::new());
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for _ in 0..runs {
        let (r, p50, p99) = floor(dir.path(), 2000, &sample);
        frates.push(r);
        fp50s.push(us(p50));
        fp99s.push(us(p99));
        let (r, p50, p99) = sequential(dir.path(), 2000);
        rates.push(r);
        p50s.push(us(p50));
        p99s.push(us(p99));
    }
    let (fp50, p50) = (median(fp50s), median(p50s.clone()));
    println!(
        "floor, bare write + fdatasync of the same {} bytes: median {:.0} records/s, p50 {:.0} us, p99 {:.0} us",
        sample.len(),
        median(frates),
        fp50,
        median(fp99s)
    );
    println!(
        "audit append, one at a time (fdatasync each): median {:.0} records/s, p50 {:.0} us, p99 {:.0} us  (target >= 1,000/s; {runs} runs x 2000); software over the floor at p50: {:.0} us",
        median(rates),
        p50,
        median(p99s),
        p50 - fp50
    );

    let mut rates = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..runs {
        let (r, p99) = grouped(&rt, dir.path(), 256, 200);
        rates.push(r);
        p99s.push(p99.as_secs_f64() * 1e6);
    }
    println!(
        "audit append, group commit (256 concurrent appenders): median {:.0} records/s, p99 of one append {:.0} us  (target >= 20,000/s; {runs} runs x 51200)",
        median(rates),
        median(p99s)
    );
}
