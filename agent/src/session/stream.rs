//! Streaming the final answer while the model is still writing it.
//!
//! Both tool modes ask the model to end with `{"final": {"answer": "…", "findings": […]}}`,
//! so the text a person should see arrives inside a JSON string. [`AnswerStream`] is fed the
//! raw text deltas of a model call and hands back the decoded pieces of that `answer` string
//! as soon as they are complete, without waiting for the object to close.
//!
//! Only the first top-level JSON object of a reply is read (the tolerant parser lets a tool
//! call that comes first win, so a later `final` would not be the answer). Replies in plain
//! prose are streamed only when the call offered no tools (a forced final answer), and only
//! up to the first `{`, because prose may still carry a JSON call or answer further on.

/// One open JSON container.
#[derive(Debug)]
enum Frame {
    /// An object, with its current key and whether a key is expected next.
    Object { key: String, want_key: bool },
    /// An array.
    Array,
}

/// What the reader is doing.
#[derive(Debug, PartialEq)]
enum Mode {
    /// Leading whitespace / code fence not decided yet.
    Detect,
    /// Inside the first JSON object.
    Json,
    /// Plain prose (streamed only when allowed).
    Prose,
    /// Nothing more to stream.
    Done,
}

/// The string being read, if any.
#[derive(Debug, PartialEq)]
enum Str {
    /// Not in a string.
    None,
    /// An object key.
    Key,
    /// A value; `true` when it is the answer and is streamed.
    Value(bool),
}

/// Incremental extractor of the `final.answer` string.
#[derive(Debug)]
pub(crate) struct AnswerStream {
    text: String,
    pos: usize,
    mode: Mode,
    prose_ok: bool,
    stack: Vec<Frame>,
    string: Str,
    key: String,
    emitted: String,
}

impl AnswerStream {
    /// `prose_ok`: stream a plain-prose reply too (the call offered no tools).
    pub(crate) fn new(prose_ok: bool) -> Self {
        AnswerStream {
            text: String::new(),
            pos: 0,
            mode: Mode::Detect,
            prose_ok,
            stack: Vec::new(),
            string: Str::None,
            key: String::new(),
            emitted: String::new(),
        }
    }

    /// Everything handed out so far.
    pub(crate) fn emitted(&self) -> &str {
        &self.emitted
    }

    /// Feed a delta; returns the answer text that became available (may be empty).
    pub(crate) fn push(&mut self, delta: &str) -> String {
        self.text.push_str(delta);
        let mut out = String::new();
        loop {
            let progressed = match self.mode {
                Mode::Detect => self.detect(),
                Mode::Json => self.json(&mut out),
                Mode::Prose => {
                    self.prose(&mut out);
                    false
                }
                Mode::Done => false,
            };
            if !progressed {
                break;
            }
        }
        self.emitted.push_str(&out);
        out
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    /// Decide between JSON and prose; `true` when the mode changed.
    fn detect(&mut self) -> bool {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        let skipped = rest.len() - trimmed.len();
        if trimmed.is_empty() {
            self.pos += skipped;
            return false;
        }
        if trimmed.starts_with('{') {
            self.pos += skipped;
            self.mode = Mode::Json;
            return true;
        }
        if trimmed.starts_with('`') {
            // A code fence: wait for its line to end, then look again.
            if trimmed.len() < 3 && "```".starts_with(trimmed) {
                return false;
            }
            if !trimmed.starts_with("```") {
                self.mode = Mode::Prose;
                return true;
            }
            return match trimmed.find('\n') {
                Some(nl) => {
                    self.pos += skipped + nl + 1;
                    true
                }
                None => false,
            };
        }
        self.pos += skipped;
        self.mode = Mode::Prose;
        true
    }

    fn prose(&mut self, out: &mut String) {
        if !self.prose_ok {
            self.mode = Mode::Done;
            return;
        }
        let rest = &self.text[self.pos..];
        match rest.find('{') {
            Some(i) => {
                out.push_str(&rest[..i]);
                self.mode = Mode::Done;
            }
            None => {
                out.push_str(rest);
                self.pos = self.text.len();
            }
        }
    }

    /// Whether a value string at the current position is the answer.
    fn at_answer(&self) -> bool {
        let keys: Vec<&str> = self
            .stack
            .iter()
            .map(|f| match f {
                Frame::Object { key, .. } => key.as_str(),
                Frame::Array => "[]",
            })
            .collect();
        matches!(
            keys.as_slice(),
            ["final" | "final_answer"] | ["final" | "final_answer", "answer"]
        )
    }

    /// Read JSON as far as the text allows; `true` when the mode changed.
    fn json(&mut self, out: &mut String) -> bool {
        loop {
            let Some(c) = self.rest().chars().next() else {
                return false;
            };
            if self.string != Str::None {
                match c {
                    '"' => {
                        self.pos += 1;
                        if self.string == Str::Key
                            && let Some(Frame::Object { key, .. }) = self.stack.last_mut()
                        {
                            *key = std::mem::take(&mut self.key);
                        }
                        self.string = Str::None;
                    }
                    '\\' => {
                        let Some((decoded, used)) = unescape(self.rest()) else {
                            return false; // the escape is not complete yet
                        };
                        self.pos += used;
                        self.take_char(decoded, out);
                    }
                    other => {
                        self.pos += other.len_utf8();
                        self.take_char(other, out);
                    }
                }
                continue;
            }
            self.pos += c.len_utf8();
            match c {
                '{' => self.stack.push(Frame::Object {
                    key: String::new(),
                    want_key: true,
                }),
                '[' => self.stack.push(Frame::Array),
                '}' | ']' => {
                    self.stack.pop();
                    if self.stack.is_empty() {
                        self.mode = Mode::Done;
                        return true;
                    }
                }
                ':' => {
                    if let Some(Frame::Object { want_key, .. }) = self.stack.last_mut() {
                        *want_key = false;
                    }
                }
                ',' => {
                    if let Some(Frame::Object { want_key, .. }) = self.stack.last_mut() {
                        *want_key = true;
                    }
                }
                '"' => {
                    let want_key = matches!(
                        self.stack.last(),
                        Some(Frame::Object { want_key: true, .. })
                    );
                    self.string = if want_key {
                        self.key.clear();
                        Str::Key
                    } else {
                        Str::Value(self.at_answer())
                    };
                }
                // Whitespace, numbers, true / false / null: nothing to track.
                _ => {}
            }
        }
    }

    fn take_char(&mut self, c: char, out: &mut String) {
        match self.string {
            Str::Key => self.key.push(c),
            Str::Value(true) => out.push(c),
            _ => {}
        }
    }
}

/// Decode the escape at the start of `s` (which begins with `\`): the char and the bytes
/// used, or `None` when more text is needed.
fn unescape(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    let kind = *b.get(1)?;
    let simple = match kind {
        b'n' => Some('\n'),
        b't' => Some('\t'),
        b'r' => Some('\r'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'/' => Some('/'),
        b'u' => None,
        // An invalid escape: keep the character, as a lenient reader would.
        other => Some(char::from(other)),
    };
    if let Some(c) = simple {
        return Some((c, 2));
    }
    let hi = u32::from_str_radix(s.get(2..6)?, 16).ok()?;
    if (0xD800..0xDC00).contains(&hi) {
        // A surrogate pair: the low half follows as another `\uXXXX`.
        if s.len() < 12 {
            return None;
        }
        if s.get(6..8) == Some("\\u")
            && let Some(lo) = s.get(8..12).and_then(|h| u32::from_str_radix(h, 16).ok())
            && (0xDC00..0xE000).contains(&lo)
        {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return Some((char::from_u32(c).unwrap_or('\u{FFFD}'), 12));
        }
        return Some(('\u{FFFD}', 6));
    }
    Some((char::from_u32(hi).unwrap_or('\u{FFFD}'), 6))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// Feed `text` in pieces of `n` chars; return the pieces handed out.
    fn feed(text: &str, n: usize, prose_ok: bool) -> (Vec<String>, String) {
        let mut s = AnswerStream::new(prose_ok);
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::new();
        for c in chars.chunks(n) {
            let p = s.push(&c.iter().collect::<String>());
            if !p.is_empty() {
                pieces.push(p);
            }
        }
        (pieces, s.emitted().to_string())
    }

    #[test]
    fn streams_the_answer_of_a_final_object_at_any_split() {
        let answer = "**Root cause**: GPU 0 on `gpu-node-3` fell off the bus (Xid 79).\n- drain \"it\" \\ now ✓ 🚀";
        let reply = json!({"final": {"findings": [{"summary": "x", "answer": "not this"}], "answer": answer}})
            .to_string();
        for n in [1, 2, 3, 5, 7, 16, 1000] {
            let (pieces, all) = feed(&reply, n, false);
            assert_eq!(all, answer, "split {n}");
            if n < 10 {
                assert!(pieces.len() > 3, "split {n}: {pieces:?}");
            }
        }
    }

    #[test]
    fn code_fences_and_escaped_unicode() {
        let reply = "```json\n{\"final\": {\"answer\": \"caf\\u00e9 \\ud83d\\ude80 ok\"}}\n```";
        for n in [1, 4, 9] {
            assert_eq!(feed(reply, n, false).1, "café 🚀 ok");
        }
    }

    #[test]
    fn a_string_final_is_the_answer() {
        assert_eq!(
            feed(r#"{"final": "all healthy"}"#, 3, false).1,
            "all healthy"
        );
    }

    #[test]
    fn tool_calls_and_other_strings_are_not_streamed() {
        for reply in [
            r#"{"tool": "k8s_list", "arguments": {"kind": "pods", "answer": "x"}}"#,
            r#"{"answer": "top-level answer without final"}"#,
            r#"{"tool": "logs", "arguments": {}} {"final": {"answer": "late"}}"#,
            r#"[{"final": {"answer": "in an array"}}]"#,
        ] {
            assert_eq!(feed(reply, 4, false).1, "", "{reply}");
        }
    }

    #[test]
    fn prose_streams_only_when_allowed_and_only_before_json() {
        assert_eq!(feed("The GPU failed.", 3, false).1, "");
        assert_eq!(feed("The GPU failed.", 3, true).1, "The GPU failed.");
        assert_eq!(
            feed("Here: {\"final\": {\"answer\": \"x\"}}", 3, true).1,
            "Here: "
        );
    }
}
