//! Stack-trace folding: Python tracebacks, Go panics, Java exceptions.

use super::{lossy, split_ts};
use memchr::memchr;
use serde::{Deserialize, Serialize};

/// Which runtime a stack trace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceKind {
    /// `Traceback (most recent call last):`
    Python,
    /// `panic:` / `fatal error:` with goroutine dumps.
    Go,
    /// `…Exception` / `…Error` with `at` frames and `Caused by:`.
    Java,
}

/// A folded stack trace (identical ones counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackTrace {
    /// Runtime.
    pub kind: TraceKind,
    /// The exception / panic line that explains it.
    pub exception: String,
    /// Frames nearest the failure (at most 4).
    pub top_frames: Vec<String>,
    /// Lines the trace took.
    pub lines: u64,
    /// Occurrences of this trace.
    pub count: u64,
    /// First line of the first occurrence.
    pub first_line: u64,
    /// Last line of the first occurrence.
    pub last_line: u64,
    /// Timestamp of the first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<String>,
}

pub(crate) struct OpenTrace {
    pub(crate) kind: TraceKind,
    pub(crate) header: String,
    pub(crate) caused_by: Option<String>,
    pub(crate) first_line: u64,
    pub(crate) last_line: u64,
    pub(crate) first_ts: Option<String>,
    pub(crate) frames: Vec<String>,
    pub(crate) frame_count: u64,
    pub(crate) blank_run: u32,
    /// What a logger put before the trace header (`ERROR 06-23 11:53:20 [core.py:400] `);
    /// continuation lines carry a prefix of the same shape, which is skipped.
    pub(crate) prefix: Vec<u8>,
}

/// Strip a prefix that has the same shape as `prefix` (same bytes, digits may differ).
fn strip_shape<'a>(line: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    if prefix.is_empty() || line.len() < prefix.len() {
        return line;
    }
    let same = line[..prefix.len()]
        .iter()
        .zip(prefix)
        .all(|(a, b)| a == b || (a.is_ascii_digit() && b.is_ascii_digit()));
    if same { &line[prefix.len()..] } else { line }
}

impl OpenTrace {
    /// Whether `t` continues the trace; `Some(true)` also closes it (Python's final line).
    fn accepts(&mut self, t: &[u8]) -> Option<bool> {
        let indented = t.first().is_some_and(|&b| b == b' ' || b == b'\t');
        match self.kind {
            TraceKind::Python => {
                if indented {
                    self.frame(t, t.trim_ascii_start().starts_with(b"File "));
                    Some(false)
                } else if self.frame_count > 0 {
                    self.caused_by = Some(lossy(t));
                    Some(true)
                } else {
                    None
                }
            }
            TraceKind::Go => {
                if t.is_empty() {
                    self.blank_run += 1;
                    return (self.blank_run < 2).then_some(false);
                }
                self.blank_run = 0;
                if indented
                    || t.starts_with(b"goroutine ")
                    || t.starts_with(b"[signal")
                    || t.ends_with(b")")
                    || t.starts_with(b"created by ")
                    || t.starts_with(b"exit status")
                {
                    self.frame(
                        t,
                        !indented && !t.starts_with(b"goroutine ") && !t.starts_with(b"[signal"),
                    );
                    Some(false)
                } else {
                    None
                }
            }
            TraceKind::Java => {
                let tt = t.trim_ascii_start();
                if indented && tt.starts_with(b"at ") {
                    self.frame(t, true);
                    Some(false)
                } else if t.starts_with(b"Caused by:") {
                    self.caused_by = Some(lossy(t));
                    Some(false)
                } else if indented && (tt.starts_with(b"...") || tt.starts_with(b"Suppressed:")) {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }

    fn frame(&mut self, t: &[u8], is_frame: bool) {
        if is_frame {
            self.frame_count += 1;
            if self.frames.len() < 64 {
                self.frames.push(lossy(t.trim_ascii()));
            } else if self.kind == TraceKind::Python {
                // Python's innermost frames are last: keep a sliding window.
                self.frames.remove(0);
                self.frames.push(lossy(t.trim_ascii()));
            }
        }
    }
}

/// Whether a trace starts on this line, and at which offset (Python tracebacks are often
/// written through a logger that prefixes every line).
pub(crate) fn trace_start(t: &[u8]) -> Option<(TraceKind, usize)> {
    if let Some(i) = memchr::memmem::find(t, b"Traceback (most recent call last)") {
        Some((TraceKind::Python, i))
    } else if t.starts_with(b"panic:") || t.starts_with(b"fatal error:") {
        Some((TraceKind::Go, 0))
    } else if memchr::memmem::find(t, b"Exception").is_some()
        || t.starts_with(b"Exception in thread")
        || (t.ends_with(b"Error") && !t.contains(&b' '))
    {
        Some((TraceKind::Java, 0))
    } else {
        None
    }
}

/// Continue a trace from `p` (line number `ln`); returns (position, next line number, closed).
pub(crate) fn walk_trace(
    t: &mut OpenTrace,
    block: &[u8],
    mut p: usize,
    mut ln: u64,
) -> (usize, u64, bool) {
    while p < block.len() {
        let e = p + memchr(b'\n', &block[p..]).unwrap_or(block.len() - p);
        let (_, text) = split_ts(&block[p..e]);
        let text = strip_shape(text, &t.prefix);
        match t.accepts(text) {
            Some(close) => {
                t.last_line = ln;
                p = e + 1;
                ln += 1;
                if close {
                    return (p, ln, true);
                }
            }
            None => return (p, ln, true),
        }
        if t.last_line - t.first_line > 2_000 {
            return (p, ln, true);
        }
    }
    (p, ln, false)
}
