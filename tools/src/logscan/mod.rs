//! The log scanning core: grep, error clustering, first-error context and stack-trace folding
//! over a stream of bytes, fed in chunks so logs of any size are never held whole.
//!
//! [`LogScanner::feed`] takes arbitrary chunks; complete lines are processed block by block
//! with byte-level regexes run over the whole block (literal prefilters find candidates, then
//! line boundaries are found with `memchr`), so lines that match nothing cost only the
//! prefilter and a newline count. [`scan`] drives it from any `BufRead`.

use crate::redact::clean;

mod template;
#[cfg(test)]
mod tests;
mod trace;

use memchr::{memchr, memrchr};
use regex::bytes::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::sync::OnceLock;
pub use template::{template, template_into};
use trace::{OpenTrace, trace_start, walk_trace};
pub use trace::{StackTrace, TraceKind};

/// What to look for.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Lines matching this are collected (compiled multi-line, byte level).
    pub grep: Option<Regex>,
    /// Most grep matches kept (the count is exact regardless).
    pub max_matches: usize,
    /// Lines kept before and after the first error.
    pub context: usize,
    /// Whether to cluster error lines into templates and fold stack traces.
    pub errors: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            grep: None,
            max_matches: 200,
            context: 3,
            errors: true,
        }
    }
}

impl ScanOptions {
    /// Options with a grep pattern (multi-line mode so `^`/`$` work per line).
    pub fn with_grep(pattern: &str) -> std::result::Result<Self, regex::Error> {
        Ok(ScanOptions {
            grep: Some(Regex::new(&format!("(?m){pattern}"))?),
            ..ScanOptions::default()
        })
    }
}

/// One log line (text cleaned and redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// 1-based line number in the scanned log.
    pub line: u64,
    /// Timestamp prefix, when the line had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The text after the timestamp.
    pub text: String,
}

/// Error lines that share a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorCluster {
    /// The line with variable parts masked (`<n>`, `<hex>`, `<uuid>`, `<ip>`, `<id>`, `"…"`).
    pub template: String,
    /// How many lines had this template.
    pub count: u64,
    /// First line number.
    pub first_line: u64,
    /// Last line number.
    pub last_line: u64,
    /// Timestamp of the first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<String>,
    /// Timestamp of the last occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<String>,
    /// One real line (the first), cleaned.
    pub example: String,
}

/// The lines around the first error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorContext {
    /// Lines before.
    pub before: Vec<LogLine>,
    /// The first error line.
    pub error: LogLine,
    /// Lines after.
    pub after: Vec<LogLine>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogScan {
    /// Bytes scanned.
    pub bytes: u64,
    /// Lines scanned.
    pub lines: u64,
    /// Timestamp of the first line.
    pub first_ts: Option<String>,
    /// Timestamp of the last line.
    pub last_ts: Option<String>,
    /// Lines matching the grep pattern.
    pub grep_count: u64,
    /// The first `max_matches` of them.
    pub matches: Vec<LogLine>,
    /// Lines recognised as errors (trace lines excluded, each trace counts once).
    pub error_lines: u64,
    /// Error templates, most frequent first.
    pub clusters: Vec<ErrorCluster>,
    /// Error lines not clustered because the template table was full.
    pub unclustered: u64,
    /// Context of the first error.
    pub first_error: Option<ErrorContext>,
    /// Folded stack traces, most frequent first.
    pub traces: Vec<StackTrace>,
}

const MAX_TEMPLATES: usize = 5_000;
const MAX_LINE_CARRY: usize = 1 << 20;

fn error_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::expect_used)] // a constant pattern, checked by the unit tests
        Regex::new(
            r#"ERROR|FATAL|CRITICAL|PANIC|panic:|fatal error:|Traceback \(most recent call last\)|Exception|level=error|level=fatal|"level":"error"|"level":"fatal"|\[error\]|Error:|error:|OOMKilled|[Oo]ut of memory|segfault|Xid|[Ff]ailed to "#,
        )
        .expect("error pattern compiles")
    })
}

/// Count `\n` bytes (SIMD via memchr's counting iterator, chosen at run time): this runs
/// over every byte scanned.
pub fn count_newlines(s: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', s).count() as u64
}

/// Split an RFC 3339 timestamp prefix (as `kubectl logs --timestamps` writes) off a line.
pub fn split_ts(line: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > 20
        && line[0].is_ascii_digit()
        && line[4] == b'-'
        && line[10] == b'T'
        && let Some(sp) = memchr(b' ', &line[..line.len().min(40)])
    {
        return (Some(&line[..sp]), &line[sp + 1..]);
    }
    (None, line)
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mk_line(line: u64, raw: &[u8]) -> LogLine {
    let (ts, text) = split_ts(raw);
    let text = if text.len() > 2_000 {
        &text[..2_000]
    } else {
        text
    };
    LogLine {
        line,
        ts: ts.map(lossy),
        text: clean(&String::from_utf8_lossy(text)),
    }
}

#[derive(Default)]
struct Cluster {
    count: u64,
    first_line: u64,
    last_line: u64,
    first_ts: Option<String>,
    /// Raw bytes, reused: updated on every occurrence.
    last_ts: Vec<u8>,
    example: String,
}

/// Incremental scanner; feed chunks, then [`LogScanner::finish`].
pub struct LogScanner {
    opts: ScanOptions,
    out: LogScan,
    carry: Vec<u8>,
    /// Lines before the current block.
    base: u64,
    tail: VecDeque<LogLine>,
    after_remaining: usize,
    open: Option<OpenTrace>,
    clusters: HashMap<Vec<u8>, Cluster>,
    /// Reused buffer for templates.
    scratch: Vec<u8>,
    traces: HashMap<(TraceKind, String), StackTrace>,
}

impl LogScanner {
    /// A scanner with `opts`.
    pub fn new(opts: ScanOptions) -> Self {
        LogScanner {
            opts,
            out: LogScan::default(),
            carry: Vec::new(),
            base: 0,
            tail: VecDeque::new(),
            after_remaining: 0,
            open: None,
            clusters: HashMap::new(),
            scratch: Vec::new(),
            traces: HashMap::new(),
        }
    }

    /// Feed the next chunk (any size, any split).
    pub fn feed(&mut self, mut data: &[u8]) {
        self.out.bytes += data.len() as u64;
        if !self.carry.is_empty() {
            match memchr(b'\n', data) {
                None => {
                    self.carry.extend_from_slice(data);
                    if self.carry.len() > MAX_LINE_CARRY {
                        // A pathological line without newline: process what we have.
                        self.carry.push(b'\n');
                        let c = std::mem::take(&mut self.carry);
                        self.block(&c);
                    }
                    return;
                }
                Some(i) => {
                    self.carry.extend_from_slice(&data[..=i]);
                    let c = std::mem::take(&mut self.carry);
                    self.block(&c);
                    data = &data[i + 1..];
                }
            }
        }
        match memrchr(b'\n', data) {
            None => self.carry.extend_from_slice(data),
            Some(i) => {
                self.block(&data[..=i]);
                self.carry.extend_from_slice(&data[i + 1..]);
            }
        }
    }

    /// Process complete lines (`block` ends with `\n`).
    fn block(&mut self, block: &[u8]) {
        if block.is_empty() {
            return;
        }
        if self.out.first_ts.is_none() && self.base == 0 {
            let first = &block[..memchr(b'\n', block).unwrap_or(block.len())];
            self.out.first_ts = split_ts(first).0.map(lossy);
        }
        {
            let body = &block[..block.len() - 1];
            let ls = memrchr(b'\n', body).map_or(0, |i| i + 1);
            if let Some(ts) = split_ts(&body[ls..]).0 {
                self.out.last_ts = Some(lossy(ts));
            }
        }
        // Lines after the first error that spill into this block.
        let mut p = 0usize;
        let mut ln = self.base + 1;
        if self.after_remaining > 0 {
            while self.after_remaining > 0 && p < block.len() {
                let e = p + memchr(b'\n', &block[p..]).unwrap_or(block.len() - p);
                if let Some(fe) = self.out.first_error.as_mut() {
                    fe.after.push(mk_line(ln, &block[p..e]));
                }
                self.after_remaining -= 1;
                p = e + 1;
                ln += 1;
            }
        }
        // The grep pass counts newlines up to its last match; finish the count from there so
        // every byte is counted once.
        let n_lines = match self.opts.grep.clone() {
            Some(re) => {
                let (counted, ln) = self.grep_pass(&re, block);
                (ln - self.base - 1) + count_newlines(&block[counted..])
            }
            None => count_newlines(block),
        };
        if self.opts.errors {
            self.error_pass(block);
        }
        if self.out.first_error.is_none() && self.opts.context > 0 {
            self.remember_tail(block, n_lines);
        }
        self.base += n_lines;
        self.out.lines = self.base;
    }

    /// Collect grep matches; returns the position and line number counted up to.
    fn grep_pass(&mut self, re: &Regex, block: &[u8]) -> (usize, u64) {
        let (mut pos, mut counted, mut ln) = (0usize, 0usize, self.base + 1);
        while pos < block.len() {
            let Some(m) = re.find_at(block, pos) else {
                break;
            };
            let ls = memrchr(b'\n', &block[..m.start()]).map_or(0, |i| i + 1);
            let le = ls + memchr(b'\n', &block[ls..]).unwrap_or(block.len() - ls);
            ln += count_newlines(&block[counted..ls]);
            counted = ls;
            self.out.grep_count += 1;
            if self.out.matches.len() < self.opts.max_matches {
                self.out.matches.push(mk_line(ln, &block[ls..le]));
            }
            pos = le + 1;
        }
        (counted, ln)
    }

    fn error_pass(&mut self, block: &[u8]) {
        let (mut pos, mut counted, mut ln) = (0usize, 0usize, self.base + 1);
        if let Some(mut t) = self.open.take() {
            let (p, l, closed) = walk_trace(&mut t, block, 0, ln);
            pos = p;
            counted = p;
            ln = l;
            if closed {
                self.close_trace(t);
            } else {
                self.open = Some(t);
                return;
            }
        }
        let re = error_regex();
        while pos < block.len() {
            let Some(m) = re.find_at(block, pos) else {
                break;
            };
            let ls = memrchr(b'\n', &block[..m.start()]).map_or(0, |i| i + 1);
            let le = ls + memchr(b'\n', &block[ls..]).unwrap_or(block.len() - ls);
            ln += count_newlines(&block[counted..ls]);
            counted = ls;
            let (ts, text) = split_ts(&block[ls..le]);
            if self.out.first_error.is_none() {
                self.first_error(block, ls, le, ln);
            }
            let mut next = le + 1;
            match trace_start(text) {
                Some((kind, offset)) => {
                    let mut t = OpenTrace {
                        kind,
                        prefix: text[..offset].to_vec(),
                        header: lossy(&text[offset..]),
                        caused_by: None,
                        first_line: ln,
                        last_line: ln,
                        first_ts: ts.map(lossy),
                        frames: Vec::new(),
                        frame_count: 0,
                        blank_run: 0,
                    };
                    let (p, l, closed) = walk_trace(&mut t, block, le + 1, ln + 1);
                    if t.frame_count == 0 && closed {
                        self.add_error(ln, ts, text);
                    } else if closed {
                        self.close_trace(t);
                    } else {
                        self.open = Some(t);
                        return;
                    }
                    next = p;
                    counted = p;
                    ln = l;
                }
                None => self.add_error(ln, ts, text),
            }
            pos = next;
        }
    }

    fn first_error(&mut self, block: &[u8], ls: usize, le: usize, ln: u64) {
        let k = self.opts.context;
        let mut before = Vec::new();
        let mut s = ls;
        let mut l = ln;
        while before.len() < k && s > 0 {
            let ps = memrchr(b'\n', &block[..s - 1]).map_or(0, |i| i + 1);
            l -= 1;
            before.push(mk_line(l, &block[ps..s - 1]));
            s = ps;
        }
        while before.len() < k {
            match self.tail.pop_back() {
                Some(t) => before.push(t),
                None => break,
            }
        }
        before.reverse();
        let mut after = Vec::new();
        let mut p = le + 1;
        let mut l = ln + 1;
        while after.len() < k && p < block.len() {
            let e = p + memchr(b'\n', &block[p..]).unwrap_or(block.len() - p);
            after.push(mk_line(l, &block[p..e]));
            p = e + 1;
            l += 1;
        }
        self.after_remaining = k - after.len();
        self.out.first_error = Some(ErrorContext {
            before,
            error: mk_line(ln, &block[ls..le]),
            after,
        });
    }

    fn remember_tail(&mut self, block: &[u8], n_lines: u64) {
        let k = self.opts.context;
        let mut lines = Vec::new();
        let mut end = block.len() - 1;
        let mut l = self.base + n_lines;
        while lines.len() < k {
            let s = memrchr(b'\n', &block[..end]).map_or(0, |i| i + 1);
            lines.push(mk_line(l, &block[s..end]));
            if s == 0 {
                break;
            }
            end = s - 1;
            l -= 1;
        }
        for line in lines.into_iter().rev() {
            self.tail.push_back(line);
            if self.tail.len() > k {
                self.tail.pop_front();
            }
        }
    }

    fn add_error(&mut self, ln: u64, ts: Option<&[u8]>, text: &[u8]) {
        self.out.error_lines += 1;
        template_into(text, &mut self.scratch);
        // Look up by slice first so a known template costs no allocation.
        let c = match self.clusters.get_mut(self.scratch.as_slice()) {
            Some(c) => c,
            None => {
                if self.clusters.len() >= MAX_TEMPLATES {
                    self.out.unclustered += 1;
                    return;
                }
                self.clusters.entry(self.scratch.clone()).or_default()
            }
        };
        if c.count == 0 {
            c.first_line = ln;
            c.first_ts = ts.map(lossy);
            c.example = lossy(&text[..text.len().min(500)]);
        }
        c.count += 1;
        c.last_line = ln;
        c.last_ts.clear();
        c.last_ts.extend_from_slice(ts.unwrap_or_default());
    }

    fn close_trace(&mut self, t: OpenTrace) {
        self.out.error_lines += 1;
        let exception = t.caused_by.clone().unwrap_or_else(|| t.header.clone());
        let key = (t.kind, template(exception.as_bytes()));
        if let Some(existing) = self.traces.get_mut(&key) {
            existing.count += 1;
            return;
        }
        let top: Vec<String> = match t.kind {
            TraceKind::Python => t.frames.iter().rev().take(4).rev().cloned().collect(),
            _ => t.frames.iter().take(4).cloned().collect(),
        };
        let exception = match (&t.kind, &t.caused_by) {
            (TraceKind::Java, Some(c)) => format!("{} / {}", t.header, c),
            _ => exception,
        };
        self.traces.insert(
            key,
            StackTrace {
                kind: t.kind,
                exception: clean(&exception),
                top_frames: top.iter().map(|f| clean(f)).collect(),
                lines: t.last_line - t.first_line + 1,
                count: 1,
                first_line: t.first_line,
                last_line: t.last_line,
                first_ts: t.first_ts,
            },
        );
    }

    /// Finish: flush the last partial line and order results by relevance.
    pub fn finish(mut self) -> LogScan {
        if !self.carry.is_empty() {
            let mut c = std::mem::take(&mut self.carry);
            c.push(b'\n');
            self.block(&c);
        }
        if let Some(t) = self.open.take() {
            self.close_trace(t);
        }
        let mut clusters: Vec<ErrorCluster> = self
            .clusters
            .into_iter()
            .map(|(k, c)| ErrorCluster {
                template: clean(&String::from_utf8_lossy(&k)),
                count: c.count,
                first_line: c.first_line,
                last_line: c.last_line,
                first_ts: c.first_ts,
                last_ts: (!c.last_ts.is_empty()).then(|| lossy(&c.last_ts)),
                example: clean(&c.example),
            })
            .collect();
        clusters.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
        let mut traces: Vec<StackTrace> = self.traces.into_values().collect();
        traces.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
        self.out.clusters = clusters;
        self.out.traces = traces;
        self.out
    }
}

/// Scan a whole reader (a file, a decompressed stream) with `opts`.
pub fn scan<R: BufRead>(mut reader: R, opts: ScanOptions) -> std::io::Result<LogScan> {
    let mut s = LogScanner::new(opts);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        s.feed(buf);
        reader.consume(n);
    }
    Ok(s.finish())
}
