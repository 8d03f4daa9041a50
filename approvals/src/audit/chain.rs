//! Reading the log line by line and checking the hash chain.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::record::{AuditRecord, GENESIS_HASH, hash_of};
use crate::error::{Error, Result};

/// One physical line of the log.
pub(crate) struct RawLine {
    /// 1-based line number.
    pub no: u64,
    /// Byte offset of its first byte.
    pub offset: u64,
    /// Its bytes, without the newline.
    pub bytes: Vec<u8>,
    /// False when the file ended before a newline (a torn write).
    pub complete: bool,
}

/// Streams the lines of a file from `offset` (which must start a line).
pub(crate) struct Lines {
    reader: BufReader<File>,
    offset: u64,
    no: u64,
}

impl Lines {
    pub(crate) fn open(path: &Path, offset: u64, first_line: u64) -> Result<Lines> {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("seek in", path, e))?;
        Ok(Lines {
            reader: BufReader::with_capacity(1 << 16, file),
            offset,
            no: first_line.saturating_sub(1),
        })
    }

    /// The next line, `None` at the end.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<RawLine>> {
        let mut bytes = Vec::new();
        let n = self.reader.read_until(b'\n', &mut bytes)?;
        if n == 0 {
            return Ok(None);
        }
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        self.no += 1;
        let line = RawLine {
            no: self.no,
            offset: self.offset,
            bytes,
            complete,
        };
        self.offset += n as u64;
        Ok(Some(line))
    }
}

/// What is wrong with a record, relative to the chain before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Broken {
    /// The last line has no newline: a write was cut short (crash or truncation).
    TornTail {
        /// Bytes in the partial line.
        bytes: u64,
    },
    /// The line is not a valid audit record.
    InvalidRecord {
        /// The parse error.
        error: String,
    },
    /// The seq is not the previous one plus one: a record was deleted, inserted or moved.
    SeqOutOfOrder {
        /// previous seq + 1.
        expected: u64,
        /// The seq on the line.
        found: u64,
    },
    /// `prev_hash` is not the previous record's hash: a record before it was removed or replaced.
    PrevHashMismatch {
        /// The previous record's hash.
        expected: String,
        /// The line's `prev_hash`.
        found: String,
    },
    /// The record's content does not match its hash: it was edited.
    HashMismatch {
        /// The hash recomputed from the content.
        expected: String,
        /// The line's `hash`.
        found: String,
    },
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::TornTail { bytes } => write!(
                f,
                "torn tail: the last line ({bytes} bytes) has no newline; a write was cut short"
            ),
            Broken::InvalidRecord { error } => write!(f, "not a valid audit record: {error}"),
            Broken::SeqOutOfOrder { expected, found } => write!(
                f,
                "expected seq {expected}, found seq {found}: a record was deleted, inserted or reordered"
            ),
            Broken::PrevHashMismatch { expected, found } => write!(
                f,
                "expected prev_hash {expected} (the previous record's hash), found {found}: the record before it was removed or replaced"
            ),
            Broken::HashMismatch { expected, found } => write!(
                f,
                "content hashes to {expected} but the record says {found}: the record was edited"
            ),
        }
    }
}

/// The end of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub seq: u64,
    pub hash: String,
}

impl Chain {
    pub(crate) fn genesis() -> Chain {
        Chain {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Checks that `bytes` is the record that follows; returns it without advancing.
    pub(crate) fn check(&self, bytes: &[u8]) -> std::result::Result<AuditRecord, Broken> {
        let invalid = |e: serde_json::Error| Broken::InvalidRecord {
            error: e.to_string(),
        };
        let value: Value = serde_json::from_slice(bytes).map_err(invalid)?;
        let rec: AuditRecord = serde_json::from_value(value.clone()).map_err(invalid)?;
        if rec.seq != self.seq + 1 {
            return Err(Broken::SeqOutOfOrder {
                expected: self.seq + 1,
                found: rec.seq,
            });
        }
        if rec.prev_hash != self.hash {
            return Err(Broken::PrevHashMismatch {
                expected: self.hash.clone(),
                found: rec.prev_hash,
            });
        }
        let expected = hash_of(&self.hash, value).map_err(|e| Broken::InvalidRecord {
            error: e.to_string(),
        })?;
        if expected != rec.hash {
            return Err(Broken::HashMismatch {
                expected,
                found: rec.hash,
            });
        }
        Ok(rec)
    }

    pub(crate) fn advance(&mut self, rec: &AuditRecord) {
        self.seq = rec.seq;
        self.hash.clone_from(&rec.hash);
    }
}

const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes an flock on `file` (exclusive or shared), polling so it can time out.
pub(crate) fn lock(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let start = Instant::now();
    let mut wait = Duration::from_micros(50);
    loop {
        let r = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                if start.elapsed() > LOCK_TIMEOUT {
                    return Err(Error::LockTimeout {
                        path: path.to_owned(),
                        seconds: LOCK_TIMEOUT.as_secs(),
                    });
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(2));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
    }
}
