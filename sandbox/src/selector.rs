//! Selectors: Kubernetes label and field selectors, and Prometheus series selectors.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed Kubernetes label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LabelSelector {
    reqs: Vec<Req>,
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for part in split_top(s) {
            let p = part.trim();
            let bad = || format!("unable to parse requirement: {p:?}");
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                Ok(inner
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect())
            };
            let req = if let Some(k) = p.strip_prefix('!') {
                Req::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                Req::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==") {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once('=') {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                Req::NotIn(k.trim().into(), set(rest)?)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                Req::In(k.trim().into(), set(rest)?)
            } else {
                Req::Exists(p.to_string())
            };
            let key = match &req {
                Req::Eq(k, _)
                | Req::NotEq(k, _)
                | Req::In(k, _)
                | Req::NotIn(k, _)
                | Req::Exists(k)
                | Req::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(bad());
            }
            reqs.push(req);
        }
        Ok(LabelSelector { reqs })
    }

    /// From a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                reqs.push(Req::Eq(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for e in sel["matchExpressions"].as_array().into_iter().flatten() {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Req::In(key, values),
                "NotIn" => Req::NotIn(key, values),
                "Exists" => Req::Exists(key),
                _ => Req::NotExists(key),
            });
        }
        LabelSelector { reqs }
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A field selector (`metadata.name=x,spec.nodeName!=y`), evaluated on dotted paths.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: '{p}'; can't understand '{p}'"));
            };
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, eq, want)| {
            let got = match lookup(obj, path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

/// Value at a dotted path; numeric segments index lists.
pub(crate) fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A Prometheus series selector: `name{label="v",label!="v",label=~"re",label!~"re"}`.
#[derive(Debug, Clone)]
pub struct SeriesSelector {
    matchers: Vec<(String, MatchOp, String, Option<Regex>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MatchOp {
    Eq,
    Ne,
    Re,
    Nre,
}

impl SeriesSelector {
    /// Parses a selector; anything else (functions, operators, ranges) is an error.
    pub fn parse(s: &str) -> Result<SeriesSelector, String> {
        let s = s.trim();
        let (name, rest) = match s.find('{') {
            Some(i) => (s[..i].trim(), Some(&s[i..])),
            None => (s, None),
        };
        let mut matchers = Vec::new();
        if !name.is_empty() {
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                return Err(format!(
                    "unsupported expression {s:?}: only series selectors like name{{label=\"value\"}} are answered"
                ));
            }
            matchers.push(("__name__".to_string(), MatchOp::Eq, name.to_string(), None));
        }
        if let Some(rest) = rest {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| {
                    format!("unsupported expression {s:?}: expected a closing '}}' at the end")
                })?;
            let mut chars = inner.trim();
            while !chars.is_empty() {
                let op_at = chars
                    .find(['=', '!'])
                    .ok_or_else(|| format!("unexpected {chars:?} in selector"))?;
                let label = chars[..op_at].trim().to_string();
                let after = &chars[op_at..];
                let (op, len) = if after.starts_with("=~") {
                    (MatchOp::Re, 2)
                } else if after.starts_with("!~") {
                    (MatchOp::Nre, 2)
                } else if after.starts_with("!=") {
                    (MatchOp::Ne, 2)
                } else {
                    (MatchOp::Eq, 1)
                };
                let after = after[len..].trim_start();
                let body = after
                    .strip_prefix('"')
                    .ok_or_else(|| format!("label {label:?} needs a quoted value"))?;
                let (value, consumed) = read_quoted(body)
                    .ok_or_else(|| format!("unterminated value for label {label:?}"))?;
                let re = match op {
                    MatchOp::Re | MatchOp::Nre => Some(
                        Regex::new(&format!("^(?:{value})$"))
                            .map_err(|e| format!("bad regex {value:?}: {e}"))?,
                    ),
                    _ => None,
                };
                if label.is_empty() {
                    return Err(format!("empty label name in {s:?}"));
                }
                matchers.push((label, op, value, re));
                chars = body[consumed..].trim_start();
                chars = chars.strip_prefix(',').unwrap_or(chars).trim_start();
            }
        }
        if matchers.is_empty() {
            return Err("a selector needs a metric name or at least one label matcher".into());
        }
        Ok(SeriesSelector { matchers })
    }

    /// Whether a series (name + labels) matches.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(label, op, want, re)| {
            let got = if label == "__name__" {
                name
            } else {
                labels.get(label).map(String::as_str).unwrap_or("")
            };
            match op {
                MatchOp::Eq => got == want,
                MatchOp::Ne => got != want,
                MatchOp::Re => re.as_ref().is_some_and(|r| r.is_match(got)),
                MatchOp::Nre => re.as_ref().is_some_and(|r| !r.is_match(got)),
            }
        })
    }
}

/// Reads a double-quoted string body (after the opening quote); returns (value, bytes consumed
/// including the closing quote).
pub(crate) fn read_quoted(body: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut escaped = false;
    for (i, ch) in body.char_indices() {
        if escaped {
            out.push(match ch {
                'n' => '\n',
                other => other,
            });
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            return Some((out, i + 1));
        } else {
            out.push(ch);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let o = json!({"metadata": {"labels": {"app": "llama", "tier": "gpu"}}});
        for (sel, want) in [
            ("app=llama", true),
            ("app==llama", true),
            ("app!=llama", false),
            ("app in (x, llama)", true),
            ("app notin (llama)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing,app=llama", true),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed")
                .unwrap()
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.name==q")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&json!({}))
        );
    }

    #[test]
    fn series_selectors() {
        let s = SeriesSelector::parse(r#"DCGM_FI_DEV_XID_ERRORS{node="gpu-3",gpu=~"0|1",x!="y"}"#)
            .unwrap();
        let mut l = BTreeMap::new();
        l.insert("node".to_string(), "gpu-3".to_string());
        l.insert("gpu".to_string(), "1".to_string());
        assert!(s.matches("DCGM_FI_DEV_XID_ERRORS", &l));
        assert!(!s.matches("other", &l));
        assert!(SeriesSelector::parse("rate(x[5m])").is_err());
    }
}
