//! `medic audit verify` and `medic audit export` on a real hash-chained log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use medic_approvals::audit::{AuditLog, RecordDraft, RecordKind};
use serde_json::json;

fn medic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .env_remove("MEDIC_CONFIG")
        .output()
        .unwrap()
}

fn write_log(path: &Path) {
    let (log, _) = AuditLog::open(path).unwrap();
    let t: DateTime<Utc> = "2026-06-23T12:00:00Z".parse().unwrap();
    let records = [
        ("medic", RecordKind::ProposalMade, "p1"),
        ("medic", RecordKind::ApprovalRequested, "p1"),
        ("slack:U01ALICE", RecordKind::Decision, "p1"),
        ("teams:29:1bob", RecordKind::Decision, "p2"),
    ];
    for (i, (actor, kind, proposal)) in records.into_iter().enumerate() {
        let at = t + chrono::Duration::seconds(i64::try_from(i).unwrap() * 60);
        log.append_blocking(RecordDraft::new(at, actor, kind, json!({"n": i})).proposal(proposal))
            .unwrap();
    }
}

#[test]
fn verify_passes_then_names_the_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let out = medic(&["audit", "verify", "--log", log.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok, 4 records"), "{stdout}");

    // Edit the third record's payload without fixing its hash.
    let text = std::fs::read_to_string(&log).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replace("\"n\":2", "\"n\":7")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    let out = medic(&["audit", "verify", "--log", log.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("BROKEN at line 3"), "{stdout}");
}

/// Rewrites the log's lines with `f` and returns what `medic audit verify` printed and
/// whether it succeeded.
fn verify_after(f: impl FnOnce(&mut Vec<String>) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let tail = f(&mut lines);
    std::fs::write(&log, lines.join("\n") + &tail).unwrap();
    let out = medic(&["audit", "verify", "--log", log.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_names_a_deleted_a_swapped_record_and_a_torn_tail() {
    let (ok, out) = verify_after(|l| {
        l.remove(1);
        "\n".into()
    });
    assert!(!ok);
    assert!(
        out.contains("BROKEN at line 2 (seq 3): expected seq 2, found seq 3: a record was deleted"),
        "{out}"
    );
    let (ok, out) = verify_after(|l| {
        l.swap(1, 2);
        "\n".into()
    });
    assert!(!ok);
    assert!(
        out.contains("BROKEN at line 2 (seq 3): expected seq 2, found seq 3"),
        "{out}"
    );
    // A crash in the middle of the last write: the line has no newline.
    let (ok, out) = verify_after(|l| {
        let last = l.pop().unwrap();
        l.push(last[..last.len() / 2].to_owned());
        String::new()
    });
    assert!(!ok);
    assert!(out.contains("BROKEN at line 4"), "{out}");
    assert!(out.contains("torn tail"), "{out}");
    assert!(out.contains("3 records verified before it"), "{out}");
}

#[test]
fn export_filters_by_actor_proposal_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log);
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["audit", "export", "--log", log.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = medic(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(lines(&[]).len(), 4);
    let by_actor = lines(&["--actor", "slack:U01ALICE"]);
    assert_eq!(by_actor.len(), 1);
    assert_eq!(by_actor[0]["kind"], "decision");
    assert_eq!(lines(&["--proposal", "p1"]).len(), 3);
    assert_eq!(lines(&["--since", "2026-06-23T12:02:00Z"]).len(), 2);
    assert_eq!(lines(&["--kind", "decision"]).len(), 2);
}

#[test]
fn missing_log_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = medic(&[
        "audit",
        "verify",
        "--log",
        dir.path().join("nope.jsonl").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audit log at"));
}
