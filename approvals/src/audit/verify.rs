//! `medic audit verify` and `medic audit export`.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chain::{Broken, Chain, Lines, lock};
use super::record::{AuditRecord, RecordKind};
use crate::error::{Error, Result};

/// The first broken record of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenAt {
    /// 1-based line number.
    pub line: u64,
    /// The seq written on that line, when it could be read.
    pub seq: Option<u64>,
    /// Expected vs found.
    pub problem: Broken,
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The log verified.
    pub path: PathBuf,
    /// Records that verified before the first problem (all of them when none).
    pub records: u64,
    /// Seq of the last good record.
    pub last_seq: u64,
    /// Hash of the last good record (anchor it elsewhere to detect tail truncation).
    pub last_hash: String,
    /// The first broken record, if any.
    pub first_broken: Option<BrokenAt>,
}

impl VerifyReport {
    /// True when every record verified.
    pub fn is_ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_broken {
            None => write!(
                f,
                "{}: ok, {} records, last seq {}, last hash {}",
                self.path.display(),
                self.records,
                self.last_seq,
                self.last_hash
            ),
            Some(b) => write!(
                f,
                "{}: BROKEN at line {}{}: {} ({} records verified before it, last good seq {})",
                self.path.display(),
                b.line,
                b.seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
                b.problem,
                self.records,
                self.last_seq
            ),
        }
    }
}

/// Verifies the whole chain and reports the FIRST broken record: an edited record (hash
/// mismatch), a deleted, inserted or reordered record (seq / prev_hash mismatch), an
/// invalid line, or a torn tail. Takes a shared lock so it never reads a half-written batch.
pub fn verify(path: &Path) -> Result<VerifyReport> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    lock(&file, path, false)?;
    let result = verify_locked(path);
    let _ = file.unlock();
    result
}

fn verify_locked(path: &Path) -> Result<VerifyReport> {
    let mut lines = Lines::open(path, 0, 1)?;
    let mut chain = Chain::genesis();
    let mut records = 0;
    let mut first_broken = None;
    while let Some(line) = lines.next_line().map_err(|e| Error::io("read", path, e))? {
        let checked = if line.complete {
            chain.check(&line.bytes)
        } else {
            Err(Broken::TornTail {
                bytes: line.bytes.len() as u64,
            })
        };
        match checked {
            Ok(rec) => {
                chain.advance(&rec);
                records += 1;
            }
            Err(problem) => {
                let seq = serde_json::from_slice::<serde_json::Value>(&line.bytes)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(|s| s.as_u64()));
                first_broken = Some(BrokenAt {
                    line: line.no,
                    seq,
                    problem,
                });
                break;
            }
        }
    }
    Ok(VerifyReport {
        path: path.to_owned(),
        records,
        last_seq: chain.seq,
        last_hash: chain.hash,
        first_broken,
    })
}

/// Which records [`export`] yields; every field given must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportFilter {
    /// Records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Records of this proposal.
    pub proposal: Option<String>,
    /// Records of this approval request.
    pub approval: Option<String>,
    /// Records by this actor (exact actor string).
    pub actor: Option<String>,
    /// Records of this kind.
    pub kind: Option<RecordKind>,
}

impl ExportFilter {
    /// True when the record passes the filter.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.since.is_none_or(|t| r.at >= t)
            && self
                .proposal
                .as_ref()
                .is_none_or(|p| r.proposal_id.as_ref() == Some(p))
            && self
                .approval
                .as_ref()
                .is_none_or(|a| r.approval_id.as_ref() == Some(a))
            && self.actor.as_ref().is_none_or(|a| &r.actor == a)
            && self.kind.as_ref().is_none_or(|k| &r.kind == k)
    }
}

/// Iterator over the records of a log that pass a filter (see [`export`]).
pub struct Export {
    path: PathBuf,
    lines: Lines,
    filter: ExportFilter,
}

impl Iterator for Export {
    type Item = Result<AuditRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => return Some(Err(Error::io("read", self.path.clone(), e))),
            };
            if !line.complete {
                // A write in progress or torn: not a record yet.
                return None;
            }
            match serde_json::from_slice::<AuditRecord>(&line.bytes) {
                Ok(r) if self.filter.matches(&r) => return Some(Ok(r)),
                Ok(_) => continue,
                Err(e) => {
                    return Some(Err(Error::AuditCorrupt {
                        path: self.path.clone(),
                        line: line.no,
                        problem: format!("not a valid audit record: {e}"),
                    }));
                }
            }
        }
    }
}

/// Streams the log's records that pass `filter`, oldest first. It does not verify the
/// chain (use [`verify`]); an unreadable line is an error item.
pub fn export(path: &Path, filter: ExportFilter) -> Result<Export> {
    Ok(Export {
        path: path.to_owned(),
        lines: Lines::open(path, 0, 1)?,
        filter,
    })
}
