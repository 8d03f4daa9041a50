//! Width-aware text helpers: word wrapping of styled spans, truncation.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Display width of `s` in terminal cells.
pub(crate) fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Cuts `s` to at most `max` cells, ending with `…` when something was cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

enum Piece {
    Text(String, Style, bool),
    Break,
}

fn pieces(spans: &[Span<'_>]) -> Vec<Piece> {
    let mut out = Vec::new();
    for span in spans {
        for (i, segment) in span.content.split('\n').enumerate() {
            if i > 0 {
                out.push(Piece::Break);
            }
            let mut cur = String::new();
            let mut cur_space = false;
            for c in segment.chars() {
                let space = c == ' ';
                if !cur.is_empty() && space != cur_space {
                    out.push(Piece::Text(std::mem::take(&mut cur), span.style, cur_space));
                }
                cur_space = space;
                cur.push(c);
            }
            if !cur.is_empty() {
                out.push(Piece::Text(cur, span.style, cur_space));
            }
        }
    }
    out
}

struct Wrapper {
    width: usize,
    first: Vec<Span<'static>>,
    rest: Vec<Span<'static>>,
    lines: Vec<Line<'static>>,
    cur: Vec<Span<'static>>,
    used: usize,
}

impl Wrapper {
    fn prefix(&self) -> &[Span<'static>] {
        if self.lines.is_empty() {
            &self.first
        } else {
            &self.rest
        }
    }

    fn avail(&self) -> usize {
        let p: usize = self.prefix().iter().map(|s| width(&s.content)).sum();
        self.width.saturating_sub(p).max(1)
    }

    fn push(&mut self, text: String, style: Style) {
        self.used += width(&text);
        match self.cur.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push_str(&text),
            _ => self.cur.push(Span::styled(text, style)),
        }
    }

    fn newline(&mut self) {
        // Trailing spaces at a wrap point carry no meaning.
        if let Some(last) = self.cur.last_mut() {
            let trimmed = last.content.trim_end().to_owned();
            last.content = trimmed.into();
        }
        let mut spans = self.prefix().to_vec();
        spans.append(&mut self.cur);
        self.lines.push(Line::from(spans));
        self.used = 0;
    }

    fn word(&mut self, text: String, style: Style) {
        let w = width(&text);
        let avail = self.avail();
        if self.used + w <= avail {
            self.push(text, style);
            return;
        }
        if self.used > 0 {
            self.newline();
        }
        if w <= self.avail() {
            self.push(text, style);
            return;
        }
        // A word longer than the line: break it by cells.
        let mut chunk = String::new();
        for c in text.chars() {
            let cw = c.width().unwrap_or(0);
            if self.used + width(&chunk) + cw > self.avail() {
                self.push(std::mem::take(&mut chunk), style);
                self.newline();
            }
            chunk.push(c);
        }
        if !chunk.is_empty() {
            self.push(chunk, style);
        }
    }
}

/// Word-wraps styled spans to `width` cells. `first` prefixes the first line, `rest` every
/// following one (hanging indents for list items, quote bars). Newlines in the spans are
/// hard breaks.
pub(crate) fn wrap(
    spans: &[Span<'_>],
    max_width: usize,
    first: Vec<Span<'static>>,
    rest: Vec<Span<'static>>,
) -> Vec<Line<'static>> {
    let mut w = Wrapper {
        width: max_width,
        first,
        rest,
        lines: Vec::new(),
        cur: Vec::new(),
        used: 0,
    };
    for piece in pieces(spans) {
        match piece {
            Piece::Break => w.newline(),
            Piece::Text(text, style, true) => {
                if w.used > 0 {
                    let n = width(&text);
                    if w.used + n <= w.avail() {
                        w.push(text, style);
                    } else {
                        w.newline();
                    }
                }
            }
            Piece::Text(text, style, false) => w.word(text, style),
        }
    }
    if w.used > 0 || !w.cur.is_empty() || w.lines.is_empty() {
        w.newline();
    }
    w.lines
}

/// Wraps plain text in one style with the same prefix on every line.
pub(crate) fn wrap_plain(
    text: &str,
    style: Style,
    width: usize,
    indent: &str,
) -> Vec<Line<'static>> {
    let prefix = vec![Span::raw(indent.to_owned())];
    wrap(
        &[Span::styled(text.to_owned(), style)],
        width,
        prefix.clone(),
        prefix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wraps_on_words_with_hanging_indent() {
        let lines = wrap(
            &[Span::raw("the quick brown fox jumps over")],
            12,
            vec![Span::raw("- ")],
            vec![Span::raw("  ")],
        );
        assert_eq!(
            plain(&lines),
            vec!["- the quick", "  brown fox", "  jumps over"]
        );
    }

    #[test]
    fn breaks_long_words_and_keeps_hard_breaks() {
        let lines = wrap(&[Span::raw("abcdefghij\nxy")], 4, vec![], vec![]);
        assert_eq!(plain(&lines), vec!["abcd", "efgh", "ij", "xy"]);
    }

    #[test]
    fn truncates_by_cells() {
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("hi", 6), "hi");
        assert_eq!(truncate("日本語テキスト", 5), "日本…");
    }
}
