//! Materialised views in sled, derived from the audit log.
//!
//! The log is authoritative; sled is a cache of it that survives restarts. Every record is
//! applied in one atomic sled batch together with `meta:applied` (its seq and hash), so
//! the views are always "the log up to seq N". On open, records after N are replayed; if
//! record N in the log has another hash, or the log is shorter than N, the views are
//! dropped and rebuilt from the start.
//!
//! sled locks its directory for the whole process. A second process (the CLI while
//! `medic serve` runs) cannot open it, so it builds the same views in a temporary
//! in-memory sled from the log instead: identical code, a full replay, nothing shared.
//!
//! Key layout (one tree, so a record's updates share one atomic batch):
//! `meta:applied`, `req:<approval id>` (state), `plan:<approval id>` (plan JSON),
//! `pending:<approval id>`, `proposal:<proposal id>`, `dedup:<key>`,
//! `actor:<actor>\0<seq, 20 digits>` (kind).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{AuditRecord, Lines, RecordKind};
use crate::error::{Error, Result};
use crate::state::{ApprovalRequest, ApprovalState, DecisionPayload, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Applied {
    seq: u64,
    hash: String,
}

/// A dedup key's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub expires_at: DateTime<Utc>,
    pub seq: u64,
}

/// Payload of an `approval_requested` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RequestedPayload {
    pub request: ApprovalRequest,
    pub plan: Value,
}

pub(crate) struct Views {
    db: sled::Db,
    /// False when another process holds the sled directory and these views are in memory.
    pub persistent: bool,
    log: PathBuf,
    /// Byte offset and line number just past the last record read from the log.
    offset: u64,
    line: u64,
    applied: Applied,
}

fn enc<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::json(what, e))
}

fn dec<T: for<'de> Deserialize<'de>>(what: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::json(what, e))
}

impl Views {
    /// Opens the views at `dir` (or in memory when another process holds them) and
    /// brings them up to date with the log.
    pub(crate) fn open(dir: &Path, log: &Path) -> Result<Views> {
        let (db, persistent) = match sled::open(dir) {
            Ok(db) => (db, true),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                tracing::info!(dir = %dir.display(), "approval views are held by another medic process; using in-memory views rebuilt from the audit log");
                (sled::Config::new().temporary(true).open()?, false)
            }
            Err(e) if dir.exists() && !matches!(e, sled::Error::Io(_)) => {
                // A damaged cache is rebuilt, never trusted.
                tracing::warn!(dir = %dir.display(), error = %e, "approval views are damaged; rebuilding them from the audit log");
                std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
                (sled::open(dir)?, true)
            }
            Err(e) => return Err(e.into()),
        };
        let mut views = Views {
            db,
            persistent,
            log: log.to_owned(),
            offset: 0,
            line: 1,
            applied: Applied {
                seq: 0,
                hash: String::new(),
            },
        };
        views.sync_from_start()?;
        Ok(views)
    }

    /// The seq of the last record applied.
    pub(crate) fn applied_seq(&self) -> u64 {
        self.applied.seq
    }

    fn sync_from_start(&mut self) -> Result<()> {
        let stored: Option<Applied> = match self.db.get("meta:applied")? {
            Some(b) => Some(dec("views meta", &b)?),
            None => None,
        };
        if let Some(anchor) = stored.filter(|a| a.seq > 0) {
            match self.find(anchor.seq)? {
                Some(rec) if rec.hash == anchor.hash => {
                    self.applied = anchor;
                }
                found => {
                    tracing::warn!(
                        views_seq = anchor.seq,
                        log_has_it = found.is_some(),
                        "approval views do not match the audit log; rebuilding them"
                    );
                    self.db.clear()?;
                }
            }
        }
        self.offset = 0;
        self.line = 1;
        self.catch_up()
    }

    fn find(&self, seq: u64) -> Result<Option<AuditRecord>> {
        if !self.log.exists() {
            return Ok(None);
        }
        let mut lines = Lines::open(&self.log, 0, 1)?;
        while let Some(l) = lines
            .next_line()
            .map_err(|e| Error::io("read", &self.log, e))?
        {
            if !l.complete {
                break;
            }
            let rec: AuditRecord = dec("audit record", &l.bytes)?;
            if rec.seq == seq {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// Applies every complete record after the last one read.
    pub(crate) fn catch_up(&mut self) -> Result<()> {
        if !self.log.exists() {
            return Ok(());
        }
        let mut lines = Lines::open(&self.log, self.offset, self.line)?;
        while let Some(l) = lines
            .next_line()
            .map_err(|e| Error::io("read", &self.log, e))?
        {
            if !l.complete {
                break;
            }
            let rec: AuditRecord = dec("audit record", &l.bytes)?;
            if rec.seq > self.applied.seq {
                self.apply(&rec)?;
            }
            self.offset = l.offset + l.bytes.len() as u64 + 1;
            self.line = l.no + 1;
        }
        Ok(())
    }

    fn apply(&mut self, rec: &AuditRecord) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut actor_key = format!("actor:{}", rec.actor).into_bytes();
        actor_key.push(0);
        actor_key.extend(format!("{:020}", rec.seq).bytes());
        batch.insert(actor_key, rec.kind.as_str().as_bytes());
        match &rec.kind {
            RecordKind::ApprovalRequested => {
                let p: RequestedPayload = serde_json::from_value(rec.payload.clone())
                    .map_err(|e| Error::json("approval_requested payload", e))?;
                let id = p.request.id.clone();
                batch.insert(format!("plan:{id}").as_bytes(), enc("plan", &p.plan)?);
                batch.insert(format!("pending:{id}").as_bytes(), &[]);
                batch.insert(
                    format!("req:{id}").as_bytes(),
                    enc("approval state", &ApprovalState::new(p.request))?,
                );
            }
            RecordKind::Decision => {
                if let Some(id) = &rec.approval_id
                    && let Some(mut state) = self.get(id)?
                {
                    let d: DecisionPayload = serde_json::from_value(rec.payload.clone())
                        .map_err(|e| Error::json("decision payload", e))?;
                    state.apply_decision(rec.seq, &rec.actor, rec.at, &d);
                    if state.status != Status::Pending {
                        batch.remove(format!("pending:{id}").as_bytes());
                    }
                    batch.insert(
                        format!("req:{id}").as_bytes(),
                        enc("approval state", &state)?,
                    );
                }
            }
            RecordKind::ExecutionIntent => {
                if let Some(id) = &rec.approval_id
                    && let Some(mut state) = self.get(id)?
                    && !state.executing
                {
                    state.executing = true;
                    batch.insert(
                        format!("req:{id}").as_bytes(),
                        enc("approval state", &state)?,
                    );
                }
            }
            RecordKind::Other(k) if k == "execution_finished" => {
                let phase = match rec.payload["outcome"]["outcome"].as_str() {
                    Some("succeeded") => "executed",
                    Some("refused") => "refused",
                    Some("stopped") => "failed",
                    Some("rolled_back") => "undone",
                    _ => "finished",
                };
                if let Some(id) = &rec.approval_id
                    && let Some(mut state) = self.get(id)?
                {
                    state.finished = Some(phase.to_owned());
                    batch.insert(
                        format!("req:{id}").as_bytes(),
                        enc("approval state", &state)?,
                    );
                }
            }
            RecordKind::ProposalMade => {
                if let Some(pid) = &rec.proposal_id {
                    batch.insert(
                        format!("proposal:{pid}").as_bytes(),
                        enc("proposal", &serde_json::json!({ "seq": rec.seq, "at": rec.at, "actor": rec.actor, "payload": rec.payload }))?,
                    );
                }
            }
            RecordKind::Dedup => {
                let key = rec.payload.get("key").and_then(Value::as_str);
                let exp = rec
                    .payload
                    .get("expires_at")
                    .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok());
                if let (Some(key), Some(expires_at)) = (key, exp) {
                    batch.insert(
                        format!("dedup:{key}").as_bytes(),
                        enc(
                            "dedup",
                            &DedupEntry {
                                expires_at,
                                seq: rec.seq,
                            },
                        )?,
                    );
                }
            }
            _ => {}
        }
        let applied = Applied {
            seq: rec.seq,
            hash: rec.hash.clone(),
        };
        batch.insert("meta:applied", enc("views meta", &applied)?);
        self.db.apply_batch(batch)?;
        self.applied = applied;
        Ok(())
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<ApprovalState>> {
        match self.db.get(format!("req:{id}"))? {
            Some(b) => Ok(Some(dec("approval state", &b)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn plan(&self, id: &str) -> Result<Option<Value>> {
        match self.db.get(format!("plan:{id}"))? {
            Some(b) => Ok(Some(dec("plan", &b)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn pending(&self) -> Result<Vec<ApprovalState>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix("pending:") {
            let (k, _) = item?;
            let id = String::from_utf8_lossy(&k["pending:".len()..]).into_owned();
            if let Some(s) = self.get(&id)? {
                out.push(s);
            }
        }
        out.sort_by_key(|a| a.request.created);
        Ok(out)
    }

    pub(crate) fn dedup(&self, key: &str) -> Result<Option<DedupEntry>> {
        match self.db.get(format!("dedup:{key}"))? {
            Some(b) => Ok(Some(dec("dedup", &b)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn proposal(&self, id: &str) -> Result<Option<Value>> {
        match self.db.get(format!("proposal:{id}"))? {
            Some(b) => Ok(Some(dec("proposal", &b)?)),
            None => Ok(None),
        }
    }

    /// Seqs of the records by `actor`, oldest first.
    pub(crate) fn by_actor(&self, actor: &str) -> Result<Vec<u64>> {
        let mut prefix = format!("actor:{actor}").into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(&prefix) {
            let (k, _) = item?;
            let digits = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Ok(seq) = digits.parse() {
                out.push(seq);
            }
        }
        Ok(out)
    }

    pub(crate) fn flush(&self) {
        if self.persistent {
            let _ = self.db.flush();
        }
    }
}
