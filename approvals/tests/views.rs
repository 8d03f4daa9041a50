#![allow(clippy::unwrap_used, clippy::expect_used)]
//! sled views: rebuilt when missing, replayed when behind, in memory for a second process.

mod common;

use chrono::Duration;
use common::*;
use medic_approvals::*;
use pretty_assertions::assert_eq;

async fn scenario(book: &ApprovalBook) -> (String, String) {
    let a = book
        .request(
            &plan("gpu-rebalance", "ai", Risk::High),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    book.decide::<TestPlan>(
        &a.id,
        &actor("carol"),
        Decision::Approve,
        &a.plan_hash,
        t0(),
    )
    .await
    .unwrap();
    let b = book
        .request(&plan("scale", "web", Risk::Low), &actor("medic"), t0())
        .await
        .unwrap();
    book.record_proposal(
        "prop-1",
        &actor("medic"),
        serde_json::json!({"finding": "xid 79"}),
        t0(),
    )
    .await
    .unwrap();
    (a.id, b.id)
}

async fn snapshot(
    book: &ApprovalBook,
    ids: &(String, String),
) -> (
    Vec<String>,
    Option<ApprovalState>,
    Option<ApprovalState>,
    Option<serde_json::Value>,
    Vec<u64>,
) {
    let pending = book
        .list_pending(t0())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.request.id)
        .collect();
    (
        pending,
        book.get(&ids.0).await.unwrap(),
        book.get(&ids.1).await.unwrap(),
        book.proposal("prop-1").await.unwrap(),
        book.records_by_actor("carol").await.unwrap(),
    )
}

#[tokio::test]
async fn views_are_rebuilt_after_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, before) = {
        let book = book(dir.path()).await;
        assert!(book.views_persistent().await.unwrap());
        let ids = scenario(&book).await;
        let snap = snapshot(&book, &ids).await;
        (ids, snap)
    };
    assert_eq!(before.0.len(), 2);
    assert_eq!(before.1.as_ref().unwrap().grants.len(), 1);
    assert!(before.3.is_some());
    assert_eq!(before.4.len(), 2); // access review + decision by carol
    std::fs::remove_dir_all(dir.path().join(VIEWS_DIR)).unwrap();
    let book = book(dir.path()).await;
    assert_eq!(snapshot(&book, &ids).await, before);
}

#[tokio::test]
async fn views_behind_the_log_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("views-copy");
    let (ids, after) = {
        let book = book(dir.path()).await;
        let ids = scenario(&book).await;
        drop(book);
        // Keep the views as they are now, then move the log on.
        copy_dir(&dir.path().join(VIEWS_DIR), &saved);
        let book = common::book(dir.path()).await;
        book.decide::<TestPlan>(
            &ids.0,
            &actor("alice"),
            Decision::Approve,
            &PlanHash::of(&plan("gpu-rebalance", "ai", Risk::High)).unwrap(),
            t0(),
        )
        .await
        .unwrap();
        let snap = snapshot(&book, &ids).await;
        (ids, snap)
    };
    assert_eq!(after.1.as_ref().unwrap().status, Status::Approved);
    std::fs::remove_dir_all(dir.path().join(VIEWS_DIR)).unwrap();
    copy_dir(&saved, &dir.path().join(VIEWS_DIR));
    let book = book(dir.path()).await;
    assert!(book.views_persistent().await.unwrap());
    assert_eq!(snapshot(&book, &ids).await, after);
    let last = medic_approvals::audit::verify(book.audit().path())
        .unwrap()
        .last_seq;
    assert_eq!(book.views_seq().await.unwrap(), last);
}

#[tokio::test]
async fn views_that_disagree_with_the_log_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("views-copy");
    let ids = {
        let book = book(dir.path()).await;
        let ids = scenario(&book).await;
        drop(book);
        copy_dir(&dir.path().join(VIEWS_DIR), &saved);
        ids
    };
    // A different history of the same length: the views' anchor hash no longer matches.
    std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
    std::fs::remove_dir_all(dir.path().join(VIEWS_DIR)).unwrap();
    copy_dir(&saved, &dir.path().join(VIEWS_DIR));
    let book = book(dir.path()).await;
    assert_eq!(book.get(&ids.0).await.unwrap(), None);
    assert!(book.list_pending(t0()).await.unwrap().is_empty());
    assert_eq!(book.views_seq().await.unwrap(), 0);
}

#[tokio::test]
async fn a_second_process_uses_in_memory_views_and_both_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = book(dir.path()).await;
    let cli = book(dir.path()).await; // sled is locked by `server`
    assert!(server.views_persistent().await.unwrap());
    assert!(!cli.views_persistent().await.unwrap());
    let req = server
        .request(
            &plan("gpu-rebalance", "ai", Risk::High),
            &actor("medic"),
            t0(),
        )
        .await
        .unwrap();
    // The CLI sees the server's request and decides on it.
    assert_eq!(cli.list_pending(t0()).await.unwrap().len(), 1);
    let out = cli
        .decide::<TestPlan>(
            &req.id,
            &actor("terminal:alice"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::Pending { have: 1, .. }),
        "{}",
        out.describe()
    );
    // The server sees the CLI's decision, and completes the approval.
    assert_eq!(server.get(&req.id).await.unwrap().unwrap().grants.len(), 1);
    let out = server
        .decide::<TestPlan>(
            &req.id,
            &actor("bob"),
            Decision::Approve,
            &req.plan_hash,
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Approved(_)), "{}", out.describe());
    assert_eq!(
        cli.get(&req.id).await.unwrap().unwrap().status,
        Status::Approved
    );
    assert!(
        medic_approvals::audit::verify(server.audit().path())
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn dedup_keys_survive_restarts_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = std::time::Duration::from_secs(600);
    {
        let book = book(dir.path()).await;
        assert!(
            book.check_and_set_dedup("slack:retry:Ev123", ttl, &actor("medic"), t0())
                .await
                .unwrap()
        );
        assert!(
            !book
                .check_and_set_dedup("slack:retry:Ev123", ttl, &actor("medic"), t0())
                .await
                .unwrap()
        );
        assert!(
            book.check_and_set_dedup("alert:fp:abc", ttl, &actor("medic"), t0())
                .await
                .unwrap()
        );
    }
    std::fs::remove_dir_all(dir.path().join(VIEWS_DIR)).unwrap();
    let book = book(dir.path()).await;
    assert!(
        !book
            .check_and_set_dedup(
                "slack:retry:Ev123",
                ttl,
                &actor("medic"),
                t0() + Duration::minutes(5)
            )
            .await
            .unwrap()
    );
    assert!(
        book.check_and_set_dedup(
            "slack:retry:Ev123",
            ttl,
            &actor("medic"),
            t0() + Duration::minutes(10)
        )
        .await
        .unwrap()
    );
    let dedups = medic_approvals::audit::export(
        book.audit().path(),
        medic_approvals::audit::ExportFilter {
            kind: Some(medic_approvals::audit::RecordKind::Dedup),
            ..Default::default()
        },
    )
    .unwrap()
    .count();
    assert_eq!(dedups, 3);
}

#[tokio::test]
async fn a_torn_tail_is_reported_by_the_book() {
    let dir = tempfile::tempdir().unwrap();
    {
        let book = book(dir.path()).await;
        scenario(&book).await;
    }
    let log = dir.path().join(AUDIT_FILE);
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let book = book(dir.path()).await;
    let warnings = book.open_report().warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(medic_approvals::audit::verify(&log).unwrap().is_ok());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
