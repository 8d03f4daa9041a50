//! Masking the variable parts of error lines into templates, byte by byte (this runs on every
//! error line of logs that can be gigabytes long, so it neither decodes UTF-8 nor allocates
//! per word).

fn classify(w: &[u8]) -> Option<&'static [u8]> {
    if !w.iter().any(u8::is_ascii_digit) {
        return None;
    }
    if w.len() == 36 && w[8] == b'-' && w[13] == b'-' && w[18] == b'-' && w[23] == b'-' {
        return Some(b"<uuid>");
    }
    if w.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && w.iter().filter(|&&c| c == b'.').count() == 3
    {
        return Some(b"<ip>");
    }
    if w.starts_with(b"0x") || w.starts_with(b"0X") {
        return Some(b"<hex>");
    }
    let digits_end = w
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.' || *c == b'-' || *c == b'+'))
        .unwrap_or(w.len());
    if digits_end > 0
        && w.len() - digits_end <= 3
        && w[digits_end..]
            .iter()
            .all(|c| c.is_ascii_alphabetic() || *c == b'%')
    {
        return Some(b"<n>");
    }
    if w.len() >= 6 && w.iter().all(u8::is_ascii_hexdigit) {
        return Some(b"<hex>");
    }
    let letters = w.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if w.len() <= 6 && letters > 0 && w[letters..].iter().all(u8::is_ascii_digit) {
        return None; // v1, http2, sha256
    }
    Some(b"<id>")
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'='
            | b','
            | b';'
            | b':'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'|'
            | b'/'
            | b'@'
    )
}

/// Mask the variable parts of a line into `out` (cleared first): numbers `<n>`, hex `<hex>`,
/// uuids `<uuid>`, IPs `<ip>`, other words with digits `<id>`, quoted strings `"…"`.
pub fn template_into(text: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let text = &text[..text.len().min(300)];
    let mut i = 0;
    let mut word_start = 0;
    let flush = |out: &mut Vec<u8>, w: &[u8]| {
        if !w.is_empty() {
            out.extend_from_slice(classify(w).unwrap_or(w));
        }
    };
    while i < text.len() {
        let b = text[i];
        if b == b'"' || b == b'\'' {
            flush(out, &text[word_start..i]);
            let close = text[i + 1..].iter().position(|&c| c == b);
            out.push(b);
            out.extend_from_slice("…".as_bytes());
            match close {
                Some(p) => {
                    out.push(b);
                    i += p + 2;
                }
                None => i = text.len(),
            }
            word_start = i;
            continue;
        }
        if is_delim(b) {
            flush(out, &text[word_start..i]);
            out.push(b);
            word_start = i + 1;
        }
        i += 1;
    }
    flush(out, &text[word_start.min(text.len())..]);
}

/// Mask the variable parts of a line so similar errors share one template.
pub fn template(text: &[u8]) -> String {
    let mut out = Vec::new();
    template_into(text, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}
