//! Markdown to styled terminal lines: headings, paragraphs, emphasis, inline code, code
//! blocks, nested lists, task lists, block quotes, links, rules and tables.
//!
//! The answer streams in, so this runs on incomplete text too: an unclosed code fence simply
//! runs to the end. Input has already been through [`crate::sanitize`], so nothing here can
//! reach the terminal as a control sequence.

use pulldown_cmark::{
    Alignment, CodeBlockKind, Event as Md, HeadingLevel, Options, Parser, Tag, TagEnd,
};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::text::{truncate, width, wrap};

/// Renders Markdown `src` into lines no wider than `width` cells.
pub(crate) fn render(src: &str, width: usize) -> Vec<Line<'static>> {
    let mut r = Renderer::new(width.max(10));
    let parser = Parser::new_ext(
        src,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    );
    for event in parser {
        r.event(event);
    }
    r.finish()
}

struct ListLevel {
    /// The next number of an ordered list.
    next: Option<u64>,
    /// Cells before this list's bullets.
    pad: usize,
    /// Width of this list's current bullet (nested lists indent past it).
    bullet: usize,
}

struct Table {
    align: Vec<Alignment>,
    rows: Vec<Vec<String>>,
    header_rows: usize,
    in_head: bool,
}

struct Renderer {
    width: usize,
    lines: Vec<Line<'static>>,
    inline: Vec<Span<'static>>,
    styles: Vec<Style>,
    lists: Vec<ListLevel>,
    /// The bullet the next flushed line of the current item starts with.
    bullet: Option<String>,
    quote: usize,
    code: Option<String>,
    links: Vec<String>,
    table: Option<Table>,
    cell: String,
}

const CODE: Style = Style::new().fg(Color::Yellow);
const DIM: Style = Style::new().fg(Color::DarkGray);

impl Renderer {
    fn new(width: usize) -> Self {
        Renderer {
            width,
            lines: Vec::new(),
            inline: Vec::new(),
            styles: vec![Style::new()],
            lists: Vec::new(),
            bullet: None,
            quote: 0,
            code: None,
            links: Vec::new(),
            table: None,
            cell: String::new(),
        }
    }

    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    fn push_style(&mut self, f: impl FnOnce(Style) -> Style) {
        let s = f(self.style());
        self.styles.push(s);
    }

    fn pop_style(&mut self) {
        if self.styles.len() > 1 {
            self.styles.pop();
        }
    }

    fn quote_prefix(&self) -> String {
        "│ ".repeat(self.quote)
    }

    fn indent(&self) -> usize {
        self.lists.last().map_or(0, |l| l.pad)
    }

    /// Where text inside the current item starts.
    fn item_indent(&self) -> usize {
        self.lists.last().map_or(0, |l| l.pad + l.bullet)
    }

    /// Prefixes for the first and following lines of the block being flushed.
    fn prefixes(&mut self) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
        let quote = Span::styled(self.quote_prefix(), DIM);
        let pad = " ".repeat(self.indent());
        match self.bullet.take() {
            Some(b) => {
                let hang = " ".repeat(self.indent() + width(&b));
                (
                    vec![
                        quote.clone(),
                        Span::raw(pad),
                        Span::styled(b, Style::new().fg(Color::Cyan)),
                    ],
                    vec![quote, Span::raw(hang)],
                )
            }
            None => {
                let pad = " ".repeat(self.item_indent());
                (
                    vec![quote.clone(), Span::raw(pad.clone())],
                    vec![quote, Span::raw(pad)],
                )
            }
        }
    }

    fn flush(&mut self) {
        if self.inline.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.inline);
        let (first, rest) = self.prefixes();
        self.lines.extend(wrap(&spans, self.width, first, rest));
    }

    /// A blank line between top-level blocks.
    fn gap(&mut self) {
        if self.lists.is_empty() && self.lines.last().is_some_and(|l| l.width() > 0) {
            let q = self.quote_prefix();
            self.lines.push(Line::styled(q.trim_end().to_owned(), DIM));
        }
    }

    fn text(&mut self, t: &str) {
        if let Some(code) = self.code.as_mut() {
            code.push_str(t);
        } else if self.table.is_some() {
            self.cell.push_str(t);
        } else {
            let style = self.style();
            self.inline.push(Span::styled(t.to_owned(), style));
        }
    }

    fn event(&mut self, event: Md<'_>) {
        match event {
            Md::Start(tag) => self.start(tag),
            Md::End(tag) => self.end(tag),
            Md::Text(t) => self.text(&t),
            Md::Code(t) => {
                if self.table.is_some() {
                    self.cell.push_str(&t);
                } else {
                    let style = self.style().patch(CODE);
                    self.inline.push(Span::styled(t.into_string(), style));
                }
            }
            Md::SoftBreak => self.text(" "),
            Md::HardBreak => self.text("\n"),
            Md::Rule => {
                self.flush();
                self.gap();
                let n = self.width.min(40);
                self.lines.push(Line::styled("─".repeat(n), DIM));
            }
            Md::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
            Md::Html(t) | Md::InlineHtml(t) | Md::InlineMath(t) | Md::DisplayMath(t) => {
                self.text(&t)
            }
            Md::FootnoteReference(t) => self.text(&format!("[{t}]")),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {
                self.flush();
                if self.bullet.is_none() {
                    self.gap();
                }
            }
            Tag::Heading { level, .. } => {
                self.flush();
                self.gap();
                let style = match level {
                    HeadingLevel::H1 => Style::new()
                        .fg(Color::Magenta)
                        .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                    HeadingLevel::H2 => {
                        Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
                    }
                    _ => Style::new().add_modifier(Modifier::BOLD),
                };
                self.styles.push(style);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.gap();
                self.quote += 1;
                self.push_style(|s| s.add_modifier(Modifier::ITALIC));
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                self.gap();
                if let CodeBlockKind::Fenced(lang) = kind
                    && !lang.is_empty()
                {
                    let q = self.quote_prefix();
                    self.lines.push(Line::from(vec![
                        Span::styled(q, DIM),
                        Span::styled(format!("╭ {lang}"), DIM),
                    ]));
                }
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                self.flush();
                if self.lists.is_empty() {
                    self.gap();
                }
                let pad = self.item_indent();
                self.lists.push(ListLevel {
                    next: start,
                    pad,
                    bullet: 2,
                });
            }
            Tag::Item => {
                self.flush();
                let bullet = match self.lists.last_mut() {
                    Some(ListLevel { next: Some(n), .. }) => {
                        let b = format!("{n}. ");
                        *n += 1;
                        b
                    }
                    _ => match self.lists.len() {
                        1 => "• ".to_owned(),
                        2 => "◦ ".to_owned(),
                        _ => "▪ ".to_owned(),
                    },
                };
                if let Some(level) = self.lists.last_mut() {
                    level.bullet = width(&bullet);
                }
                self.bullet = Some(bullet);
            }
            Tag::Table(align) => {
                self.flush();
                self.gap();
                self.table = Some(Table {
                    align,
                    rows: Vec::new(),
                    header_rows: 0,
                    in_head: false,
                });
            }
            Tag::TableHead => {
                if let Some(t) = self.table.as_mut() {
                    t.in_head = true;
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableRow => {
                if let Some(t) = self.table.as_mut() {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => self.cell.clear(),
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.links.push(dest_url.into_string());
                self.push_style(|s| s.fg(Color::Blue).add_modifier(Modifier::UNDERLINED));
            }
            Tag::Image { dest_url, .. } => {
                self.text("[image: ");
                self.links.push(dest_url.into_string());
                self.push_style(|s| s);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.flush(),
            TagEnd::Heading(_) => {
                self.flush();
                self.pop_style();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote = self.quote.saturating_sub(1);
                self.pop_style();
            }
            TagEnd::CodeBlock => self.code_block(),
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Item => {
                self.flush();
                self.bullet = None;
            }
            TagEnd::Table => self.table(),
            TagEnd::TableHead => {
                if let Some(t) = self.table.as_mut() {
                    t.in_head = false;
                    t.header_rows = t.rows.len();
                }
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.cell);
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(cell.trim().to_owned());
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => self.pop_style(),
            TagEnd::Link => {
                self.pop_style();
                if let Some(url) = self.links.pop() {
                    let shown: String = self
                        .inline
                        .iter()
                        .rev()
                        .take(1)
                        .map(|s| s.content.to_string())
                        .collect();
                    if shown != url {
                        self.inline.push(Span::styled(format!(" ({url})"), DIM));
                    }
                }
            }
            TagEnd::Image => {
                self.pop_style();
                if let Some(url) = self.links.pop() {
                    self.text(&format!(" {url}]"));
                }
            }
            _ => {}
        }
    }

    fn code_block(&mut self) {
        let Some(code) = self.code.take() else { return };
        let q = self.quote_prefix();
        let pad = " ".repeat(self.item_indent());
        let prefix = format!("{q}{pad}│ ");
        let avail = self.width.saturating_sub(width(&prefix)).max(1);
        for line in code.trim_end_matches('\n').split('\n') {
            for chunk in hard_wrap(line, avail) {
                self.lines.push(Line::from(vec![
                    Span::styled(prefix.clone(), DIM),
                    Span::styled(chunk, CODE),
                ]));
            }
        }
    }

    fn table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let cols = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        if cols == 0 {
            return;
        }
        let mut widths = vec![1usize; cols];
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(width(cell));
            }
        }
        // Shrink the widest column until the table fits: separators take 3 cells each.
        let q = self.quote_prefix();
        let budget = self.width.saturating_sub(width(&q) + 3 * (cols - 1));
        while widths.iter().sum::<usize>() > budget {
            let Some((i, w)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w) else {
                break;
            };
            if w <= 3 {
                break;
            }
            widths[i] = w - 1;
        }
        let head = Style::new().add_modifier(Modifier::BOLD);
        for (r, row) in table.rows.iter().enumerate() {
            let mut spans = vec![Span::styled(q.clone(), DIM)];
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" │ ", DIM));
                }
                let cell = truncate(row.get(i).map(String::as_str).unwrap_or(""), *w);
                let fill = w.saturating_sub(width(&cell));
                let text = match table.align.get(i) {
                    Some(Alignment::Right) => format!("{}{cell}", " ".repeat(fill)),
                    Some(Alignment::Center) => format!(
                        "{}{cell}{}",
                        " ".repeat(fill / 2),
                        " ".repeat(fill - fill / 2)
                    ),
                    _ => format!("{cell}{}", " ".repeat(fill)),
                };
                spans.push(Span::styled(
                    text,
                    if r < table.header_rows {
                        head
                    } else {
                        Style::new()
                    },
                ));
            }
            self.lines.push(Line::from(spans));
            if r + 1 == table.header_rows {
                let sep: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.lines
                    .push(Line::styled(format!("{q}{}", sep.join("─┼─")), DIM));
            }
        }
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        // A streamed answer may stop inside a code block or a table.
        if self.code.is_some() {
            self.code_block();
        }
        if self.table.is_some() {
            self.table();
        }
        self.flush();
        self.lines
    }
}

/// Splits a line of code into chunks of at most `avail` cells, keeping every space.
fn hard_wrap(line: &str, avail: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut used = 0;
    for c in line.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > avail {
            out.push(String::new());
            used = 0;
        }
        used += w;
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(src: &str, width: usize) -> String {
        render(src, width)
            .iter()
            .map(|l| l.to_string().trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn renders_blocks() {
        let src = "# Root cause\n\nThe pod `api` is **OOMKilled**.\n\n- first point\n- second point that wraps around\n  1. nested\n\n```yaml\nlimits:\n  memory: 256Mi\n```\n\n> quoted\n";
        insta::assert_snapshot!(plain(src, 30));
    }

    #[test]
    fn renders_tables_that_fit() {
        let src = "| Pod | Status | Restarts |\n|---|---|--:|\n| api-7d9f | CrashLoopBackOff | 12 |\n| web-1 | Running | 0 |\n";
        insta::assert_snapshot!(plain(src, 60));
        let narrow = plain(src, 24);
        assert!(narrow.lines().all(|l| width(l) <= 24), "{narrow}");
    }

    #[test]
    fn unclosed_fence_still_renders() {
        let out = plain("text\n\n```\nkubectl get pods\n", 40);
        assert!(out.contains("│ kubectl get pods"), "{out}");
    }
}
