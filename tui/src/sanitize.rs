//! Neutralising terminal control sequences in text that came from outside.
//!
//! Everything the engine sends (answers, tool summaries, log quotes, plan diffs) may contain
//! bytes a cluster, a log or a model produced. Written to a terminal as-is, an escape
//! sequence could recolour the screen, move the cursor, set the window title, write the
//! clipboard (OSC 52) or plant a hyperlink (OSC 8). So every string is cleaned on the way in:
//! CSI sequences (colours in logs) are dropped, any other escape sequence is made visible as
//! `␛` followed by its text, and the remaining control characters become their visible
//! Unicode control pictures. Nothing is ever interpreted.

/// Returns `text` with every terminal control sequence neutralised.
///
/// Newlines are kept; tabs become four spaces; carriage returns are dropped (they could
/// overwrite what came before on a real terminal); bidirectional overrides are dropped.
pub fn sanitize(text: &str) -> String {
    // Fast path: most text has nothing to clean.
    if !text.chars().any(needs_work) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    // CSI: ESC [ parameters/intermediates, then one final byte in @..~.
                    chars.next();
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                } else {
                    out.push('␛');
                }
            }
            '\u{9b}' => {
                // 8-bit CSI: drop it and its sequence like the 7-bit form.
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            '\r' => {}
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('�'));
            }
            '\u{7f}' => out.push('␡'),
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push('�'),
            c if is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Sanitises and flattens to one line (newlines become `⏎ `), for titles and list rows.
pub fn one_line(text: &str) -> String {
    sanitize(text).trim().replace('\n', " ⏎ ")
}

fn needs_work(c: char) -> bool {
    ((c as u32) < 0x20 && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c) || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(sanitize("pods: 3 ready\nnext"), "pods: 3 ready\nnext");
    }

    #[test]
    fn csi_colours_are_dropped() {
        assert_eq!(sanitize("\x1b[31mERROR\x1b[0m boom"), "ERROR boom");
        assert_eq!(sanitize("a\u{9b}2Jb"), "ab");
    }

    #[test]
    fn osc_sequences_are_made_visible_not_interpreted() {
        // OSC 52 would write the clipboard; OSC 0 would set the title.
        let cleaned = sanitize("x\x1b]52;c;ZWNobyBoaQ==\x07y\x1b]0;pwned\x1b\\z");
        assert_eq!(cleaned, "x␛]52;c;ZWNobyBoaQ==␇y␛]0;pwned␛\\z");
        assert!(!cleaned.contains('\x1b'));
        assert!(!cleaned.contains('\x07'));
    }

    #[test]
    fn control_characters_become_pictures() {
        assert_eq!(sanitize("a\rb\tc\x00d\x7f"), "ab    c␀d␡");
        assert_eq!(sanitize("safe\u{202e}txt.exe"), "safetxt.exe");
    }

    #[test]
    fn one_line_flattens() {
        assert_eq!(one_line(" a\nb "), "a ⏎ b");
    }
}
