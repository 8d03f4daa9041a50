#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

use chrono::{TimeZone, Utc};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn draft(i: u64) -> RecordDraft {
    let at =
        Utc.with_ymd_and_hms(2026, 6, 23, 12, 0, 0).unwrap() + chrono::Duration::seconds(i as i64);
    RecordDraft::new(
        at,
        "alice",
        RecordKind::Other("test".into()),
        json!({ "i": i, "note": "x" }),
    )
    .proposal(format!("p{}", i % 3))
}

fn write_n(path: &Path, n: u64) {
    let (log, _) = AuditLog::open(path).unwrap();
    for i in 0..n {
        log.append_blocking(draft(i)).unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

#[test]
fn append_reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit/log.jsonl");
    write_n(&path, 3);
    let (log, report) = AuditLog::open(&path).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.torn_tail, None);
    let rec = log.append_blocking(draft(3)).unwrap();
    assert_eq!(rec.seq, 4);
    assert_eq!(rec.prev_hash, report.last_hash);
    let v = verify(&path).unwrap();
    assert!(v.is_ok(), "{v}");
    assert_eq!(
        (v.records, v.last_seq, v.last_hash.clone()),
        (4, 4, rec.hash.clone())
    );
    let all: Vec<AuditRecord> = export(&path, ExportFilter::default())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    assert_eq!(all[3], rec);
}

#[test]
fn export_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 6);
    let filter = ExportFilter {
        proposal: Some("p1".into()),
        since: Some(Utc.with_ymd_and_hms(2026, 6, 23, 12, 0, 2).unwrap()),
        ..Default::default()
    };
    let seqs: Vec<u64> = export(&path, filter)
        .unwrap()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(seqs, vec![5]);
    let by_kind = ExportFilter {
        kind: Some(RecordKind::Decision),
        ..Default::default()
    };
    assert_eq!(export(&path, by_kind).unwrap().count(), 0);
    let by_actor = ExportFilter {
        actor: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(export(&path, by_actor).unwrap().count(), 6);
}

fn broken(path: &Path) -> BrokenAt {
    let r = verify(path).unwrap();
    r.first_broken.expect("verify should fail")
}

#[test]
fn verify_catches_an_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 5);
    let mut l = lines(&path);
    l[2] = l[2].replace("\"note\":\"x\"", "\"note\":\"y\"");
    write_lines(&path, &l);
    let b = broken(&path);
    assert_eq!((b.line, b.seq), (3, Some(3)));
    assert!(
        matches!(b.problem, Broken::HashMismatch { .. }),
        "{:?}",
        b.problem
    );
    let r = verify(&path).unwrap();
    assert_eq!(r.records, 2);
    assert!(
        r.to_string()
            .contains("BROKEN at line 3 (seq 3): content hashes to"),
        "{r}"
    );
}

#[test]
fn verify_catches_a_deleted_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 5);
    let mut l = lines(&path);
    l.remove(1);
    write_lines(&path, &l);
    let b = broken(&path);
    assert_eq!(b.line, 2);
    assert_eq!(
        b.problem,
        Broken::SeqOutOfOrder {
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn verify_catches_a_deleted_record_with_renumbered_seqs() {
    // Someone deletes record 2 and renumbers the rest: the chain of hashes still breaks.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 4);
    let mut l = lines(&path);
    l.remove(1);
    for (i, line) in l.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["seq"] = json!(i as u64 + 1);
        *line = serde_json::to_string(&v).unwrap();
    }
    write_lines(&path, &l);
    let b = broken(&path);
    assert_eq!(b.line, 2);
    assert!(
        matches!(b.problem, Broken::PrevHashMismatch { .. }),
        "{:?}",
        b.problem
    );
}

#[test]
fn verify_catches_swapped_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 5);
    let mut l = lines(&path);
    l.swap(2, 3);
    write_lines(&path, &l);
    let b = broken(&path);
    assert_eq!((b.line, b.seq), (3, Some(4)));
    assert_eq!(
        b.problem,
        Broken::SeqOutOfOrder {
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn verify_catches_a_truncated_tail_and_open_repairs_it_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 4);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 20).unwrap();
    drop(f);
    let b = broken(&path);
    assert_eq!(b.line, 4);
    assert!(matches!(b.problem, Broken::TornTail { .. }));

    let (log, report) = AuditLog::open(&path).unwrap();
    let torn = report.torn_tail.clone().expect("torn tail reported");
    assert_eq!(torn.line, 4);
    assert_eq!(report.records, 3);
    assert_eq!(report.warnings().len(), 1);
    assert!(
        report.warnings()[0].contains("truncated a torn last line (line 4"),
        "{:?}",
        report.warnings()
    );
    let rec = log.append_blocking(draft(9)).unwrap();
    assert_eq!(rec.seq, 4);
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn invalid_json_as_last_line_is_torn_but_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    write_n(&path, 3);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"seq\": 4, garbage\n").unwrap();
    drop(f);
    let (_, report) = AuditLog::open(&path).unwrap();
    assert_eq!(report.torn_tail.map(|t| t.line), Some(4));
    assert_eq!(lines(&path).len(), 3);

    let mut l = lines(&path);
    l[1] = "not json".into();
    write_lines(&path, &l);
    let err = AuditLog::open(&path).unwrap_err();
    assert!(
        matches!(err, crate::Error::AuditCorrupt { line: 2, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_share_syncs_and_keep_a_linear_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let (log, _) = AuditLog::open(&path).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                seqs.push(log.append(draft(t * 100 + i)).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=800).collect::<Vec<_>>());
    let v = verify(&path).unwrap();
    assert!(v.is_ok(), "{v}");
    assert_eq!(v.records, 800);
}

#[test]
fn two_handles_on_threads_keep_one_chain() {
    // Two independent opens of the same file behave like two processes: flock + tail re-read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let (a, _) = AuditLog::open(&path).unwrap();
    let (b, _) = AuditLog::open(&path).unwrap();
    let ta = std::thread::spawn(move || {
        (0..200)
            .map(|i| a.append_blocking(draft(i)).unwrap().seq)
            .collect::<Vec<_>>()
    });
    let tb = std::thread::spawn(move || {
        (0..200)
            .map(|i| b.append_blocking(draft(i)).unwrap().seq)
            .collect::<Vec<_>>()
    });
    let mut all = ta.join().unwrap();
    all.extend(tb.join().unwrap());
    all.sort_unstable();
    assert_eq!(all, (1..=400).collect::<Vec<_>>());
    let v = verify(&path).unwrap();
    assert!(v.is_ok(), "{v}");
    assert_eq!(v.records, 400);
}
