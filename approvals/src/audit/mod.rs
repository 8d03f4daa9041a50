//! The audit log: the source of truth. JSON Lines, hash-chained, fsynced with group
//! commit, safe for several processes appending at once.
//!
//! - `record`: [`AuditRecord`], [`RecordKind`], [`RecordDraft`], the hash rule.
//! - `chain`: line reading, chain checking, file locks.
//! - `log`: [`AuditLog`] (open with torn-tail repair, the group-commit writer).
//! - `verify`: [`verify`] and [`export`].

mod chain;
mod log;
mod record;
mod verify;

pub use chain::Broken;
pub use log::{AuditLog, OpenReport, TornTail};
pub use record::{AuditRecord, GENESIS_HASH, RecordDraft, RecordKind};
pub use verify::{BrokenAt, Export, ExportFilter, VerifyReport, export, verify};

pub(crate) use chain::{Lines, lock};

#[cfg(test)]
mod tests;
