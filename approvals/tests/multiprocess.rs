#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several OS processes appending to one audit log keep one linear chain.

use std::process::Command;

use chrono::Utc;
use medic_approvals::audit::{AuditLog, RecordDraft, RecordKind, verify};

const CHILD_ENV: &str = "MEDIC_AUDIT_CHILD_LOG";

#[test]
#[ignore = "helper: run as a child process by processes_appending_keep_a_linear_chain"]
fn child_appender() {
    let path = std::env::var(CHILD_ENV).expect("run by the parent test");
    let n: u64 = std::env::var("MEDIC_AUDIT_CHILD_N")
        .unwrap()
        .parse()
        .unwrap();
    let who = format!("process-{}", std::process::id());
    let (log, _) = AuditLog::open(std::path::Path::new(&path)).unwrap();
    // Several threads per process so batches from different processes interleave.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            let who = who.clone();
            std::thread::spawn(move || {
                for i in 0..n / 4 {
                    log.append_blocking(RecordDraft::new(
                        Utc::now(),
                        &who,
                        RecordKind::Other("load".into()),
                        serde_json::json!({ "t": t, "i": i }),
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn processes_appending_keep_a_linear_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let per_child = 200u64;
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_appender",
                    "--ignored",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(CHILD_ENV, &path)
                .env("MEDIC_AUDIT_CHILD_N", per_child.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // The parent appends too, from its own handle.
    let (log, _) = AuditLog::open(&path).unwrap();
    for i in 0..100 {
        log.append_blocking(RecordDraft::new(
            Utc::now(),
            "parent",
            RecordKind::Other("load".into()),
            serde_json::json!({ "i": i }),
        ))
        .unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = verify(&path).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 3 * per_child + 100);
    // And the parent's handle continues the chain after the others.
    let rec = log
        .append_blocking(RecordDraft::new(
            Utc::now(),
            "parent",
            RecordKind::Other("end".into()),
            serde_json::json!({}),
        ))
        .unwrap();
    assert_eq!(rec.seq, 3 * per_child + 101);
    assert!(verify(&path).unwrap().is_ok());
}

const CRASH_ENV: &str = "MEDIC_AUDIT_CRASH_LOG";

#[test]
#[ignore = "helper: run as a child process by kill_9_never_loses_an_acknowledged_record"]
fn crash_child() {
    use std::io::Write;
    let path = std::env::var(CRASH_ENV).expect("run by the parent test");
    let (log, _) = AuditLog::open(std::path::Path::new(&path)).unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let rec = log
                        .append_blocking(RecordDraft::new(
                            Utc::now(),
                            "crash",
                            RecordKind::Other("load".into()),
                            serde_json::json!({ "t": t, "i": i, "pad": "x".repeat(300) }),
                        ))
                        .unwrap();
                    // Only acknowledged (fsynced) records are reported to the parent.
                    let mut o = out.lock().unwrap();
                    writeln!(o, "{} {}", rec.seq, rec.hash).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// kill -9 at pseudo-random points while four threads append: after every restart the
/// log verifies (a torn tail is truncated on open) and every acknowledged record is there.
/// `MEDIC_CRASH_ITERATIONS=1000` runs the long version on demand.
#[test]
fn kill_9_never_loses_an_acknowledged_record() {
    use std::io::BufRead;
    let iterations: u64 = std::env::var("MEDIC_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..iterations {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--test-threads=1",
                "--quiet",
                "--nocapture",
            ])
            .env(CRASH_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                .filter_map(|l| {
                    let (seq, hash) = l.split_once(' ')?;
                    Some((seq.parse::<u64>().ok()?, hash.to_owned()))
                })
                .collect::<Vec<_>>()
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(30 + seed % 150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acked.extend(reader.join().unwrap());
        // Restart: open repairs a torn tail, then the chain must verify.
        let (log, _) = AuditLog::open(&path).unwrap();
        drop(log);
        let report = verify(&path).unwrap();
        assert!(report.is_ok(), "{report}");
    }
    let on_disk: std::collections::HashMap<u64, String> =
        medic_approvals::audit::export(&path, Default::default())
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.seq, r.hash)
            })
            .collect();
    assert!(!acked.is_empty());
    for (seq, hash) in &acked {
        assert_eq!(
            on_disk.get(seq),
            Some(hash),
            "acknowledged record {seq} lost or changed"
        );
    }
}
