//! YAML helpers that keep line numbers: documents of a multi-document file with their first
//! line, parse errors mapped to absolute lines, and a line finder for semantic errors.

use serde::de::DeserializeOwned;

/// One YAML document of a file: its text and the one-based line it starts on.
pub(crate) struct Doc<'a> {
    pub text: &'a str,
    pub first_line: usize,
}

/// Splits `text` on `---` separator lines.
pub(crate) fn split_docs(text: &str) -> Vec<Doc<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            docs.push(Doc {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push(Doc {
        text: &text[start..],
        first_line: start_line,
    });
    // Point semantic errors at the first line with content, not at a leading comment.
    docs.into_iter()
        .map(|d| {
            let skip = d
                .text
                .lines()
                .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
                .count();
            Doc {
                text: d.text,
                first_line: d.first_line + skip,
            }
        })
        .collect()
}

/// Parses YAML text; an error becomes (absolute line, message without the location suffix).
pub(crate) fn parse<T: DeserializeOwned>(
    text: &str,
    first_line: usize,
) -> Result<T, (Option<usize>, String)> {
    serde_yaml::from_str::<T>(text).map_err(|e| yaml_error(&e, first_line))
}

/// The line and message of a serde_yaml error, relative to a document starting at `first_line`.
pub(crate) fn yaml_error(e: &serde_yaml::Error, first_line: usize) -> (Option<usize>, String) {
    let line = e.location().map(|l| l.line() + first_line - 1);
    // Locations inside the message are relative to the document; the absolute line is
    // reported separately.
    let msg = e.to_string();
    let msg = match regex::Regex::new(r" at line \d+ column \d+") {
        Ok(re) => re.replace_all(&msg, "").into_owned(),
        Err(_) => msg,
    };
    (line, msg)
}

/// The one-based line of the first line containing `needle`, searching from line `from`.
pub(crate) fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let text = "a: 1\n---\n# c\nb: 2\n--- \nc: 3\n";
        let docs = split_docs(text);
        let got: Vec<(usize, &str)> = docs.iter().map(|d| (d.first_line, d.text)).collect();
        assert_eq!(got, vec![(1, "a: 1\n"), (4, "# c\nb: 2\n"), (6, "c: 3\n")]);
    }

    #[test]
    fn errors_carry_absolute_lines() {
        let (line, msg) = parse::<serde_json::Value>("a: 1\nb: [\n", 10).unwrap_err();
        assert_eq!(line, Some(12));
        assert!(!msg.contains(" at line "), "{msg}");
    }
}
