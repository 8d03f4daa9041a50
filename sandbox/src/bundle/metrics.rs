//! OpenMetrics text (`metrics/*.om`): enough of the format to validate a file and expose its
//! samples.

use std::collections::BTreeMap;

use crate::selector::read_quoted;

/// One sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with any `_total` / `_bucket` suffix as written).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
    /// Timestamp in seconds since the Unix epoch, when given.
    pub timestamp: Option<f64>,
}

/// Parses OpenMetrics text; an error is (one-based line, message).
pub(crate) fn parse(text: &str) -> Result<Vec<Sample>, (Option<usize>, String)> {
    let mut samples = Vec::new();
    let mut saw_eof = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if saw_eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err((
                Some(n),
                "content after \"# EOF\"; the EOF marker must be the last line".into(),
            ));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.starts_with('#') {
            let mut parts = line.splitn(4, ' ');
            let _hash = parts.next();
            match parts.next() {
                Some("TYPE" | "HELP" | "UNIT") => continue,
                _ => {
                    return Err((
                        Some(n),
                        format!(
                            "unknown comment {line:?}; only \"# TYPE\", \"# HELP\", \"# UNIT\" and \"# EOF\" are allowed"
                        ),
                    ));
                }
            }
        }
        if line.trim().is_empty() {
            return Err((
                Some(n),
                "empty line; OpenMetrics does not allow blank lines before \"# EOF\"".into(),
            ));
        }
        samples.push(parse_sample(line).map_err(|m| (Some(n), m))?);
    }
    if !saw_eof {
        return Err((None, "the file must end with \"# EOF\"".into()));
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("sample {line:?} has no value"))?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut cur = body;
        loop {
            cur = cur.trim_start();
            if let Some(after) = cur.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = cur
                .find('=')
                .ok_or_else(|| format!("label without '=' in {line:?}"))?;
            let label = cur[..eq].trim().to_string();
            let quoted = cur[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("label {label:?} needs a quoted value"))?;
            let (value, used) = read_quoted(quoted)
                .ok_or_else(|| format!("unterminated value for label {label:?}"))?;
            labels.insert(label, value);
            cur = &quoted[used..];
            cur = cur.strip_prefix(',').unwrap_or(cur);
        }
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("sample {line:?} has no value"))?;
    let value =
        parse_number(value_text).ok_or_else(|| format!("value {value_text:?} is not a number"))?;
    let timestamp = match fields.next() {
        Some(t) => Some(
            t.parse::<f64>()
                .map_err(|_| format!("timestamp {t:?} is not a number of seconds"))?,
        ),
        None => None,
    };
    if let Some(extra) = fields.next()
        && extra != "#"
    {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp,
    })
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_samples() {
        let text = "# TYPE x gauge\nx{node=\"a\",gpu=\"0\"} 1.5 1750000000\nx 2\n# EOF\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels["node"], "a");
        assert_eq!(s[0].timestamp, Some(1_750_000_000.0));
        assert_eq!(s[1].timestamp, None);
    }

    #[test]
    fn rejects_missing_eof_and_bad_values() {
        assert_eq!(
            parse("x 1\n").unwrap_err().1,
            "the file must end with \"# EOF\""
        );
        assert_eq!(
            parse("x abc\n# EOF\n").unwrap_err(),
            (Some(1), "value \"abc\" is not a number".to_string())
        );
    }
}
