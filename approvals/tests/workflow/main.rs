#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The approval workflow end to end over a real audit log and sled views. One test binary,
//! split by concern.

#[path = "../common/mod.rs"]
mod common;

mod decisions;
mod refusals;

use medic_approvals::audit::{ExportFilter, RecordKind, export};
use medic_approvals::*;

pub(crate) fn refused<P>(o: Outcome<P>) -> Refusal {
    match o {
        Outcome::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got: {}", other.describe()),
    }
}

pub(crate) fn approved<P>(o: Outcome<P>) -> Approved<P> {
    match o {
        Outcome::Approved(a) => *a,
        other => panic!("expected approval, got: {}", other.describe()),
    }
}

pub(crate) async fn last_refusal_message(book: &ApprovalBook) -> String {
    let filter = ExportFilter {
        kind: Some(RecordKind::Refusal),
        ..Default::default()
    };
    let last = export(book.audit().path(), filter)
        .unwrap()
        .last()
        .unwrap()
        .unwrap();
    last.payload["message"].as_str().unwrap().to_owned()
}
