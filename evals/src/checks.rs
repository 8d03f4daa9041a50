//! `after_execution` checks against the live sandbox state.

use medic_sandbox::SandboxHandle;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::expected::Check;
use crate::kinds::KindTable;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check in words.
    pub check: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found instead (JSON value, count, or why it could not be read).
    pub found: String,
}

/// The value at a dotted path; numeric segments index lists (`spec.rules.0.weight`).
pub fn lookup_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            Value::Object(map) => map.get(seg)?,
            _ => return None,
        };
    }
    Some(cur)
}

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

/// A parsed label selector (`app=x,tier!=db,env in (a,b),gpu,!spot`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(Vec<Req>);

impl LabelSelector {
    /// Parses a selector; the error says which term is malformed.
    pub fn parse(s: &str) -> std::result::Result<LabelSelector, String> {
        let mut terms = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, ch) in s.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    terms.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(&s[start..]);
        let mut reqs = Vec::new();
        for t in terms.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            reqs.push(parse_term(t)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

fn parse_term(t: &str) -> std::result::Result<Req, String> {
    let set = |rest: &str| -> std::result::Result<Vec<String>, String> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'));
        inner
            .map(|i| {
                i.split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .ok_or_else(|| format!("`{t}`: expected a set like `(a, b)`"))
    };
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Req::NotEq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, rest)) = t.split_once(" notin ") {
        return Ok(Req::NotIn(k.trim().into(), set(rest)?));
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        return Ok(Req::In(k.trim().into(), set(rest)?));
    }
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Req::NotExists(k.trim().into()));
    }
    if t.contains(char::is_whitespace) || t.contains('(') {
        return Err(format!(
            "`{t}` is not a selector term (key=value, key!=value, key in (…), key, !key)"
        ));
    }
    Ok(Req::Exists(t.into()))
}

/// Describes a check for reports.
pub fn describe(c: &Check) -> String {
    match c {
        Check::Path {
            cluster,
            kind,
            namespace,
            name,
            path,
            equals,
        } => {
            let ns = namespace
                .as_deref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!("{cluster}:{kind}/{ns}{name} {path} == {equals}")
        }
        Check::Count {
            cluster,
            kind,
            namespace,
            selector,
            on_node,
            name,
            count,
        } => {
            let mut s = format!("{cluster}: {count} {kind}");
            if let Some(ns) = namespace {
                s.push_str(&format!(" in {ns}"));
            }
            if !selector.is_empty() {
                s.push_str(&format!(" matching {selector}"));
            }
            if let Some(n) = name {
                s.push_str(&format!(" named {n}"));
            }
            if let Some(node) = on_node {
                s.push_str(&format!(" on node {node}"));
            }
            s
        }
        Check::PullRequest { repo, mentions } => {
            format!("github {repo}: a pull request mentioning \"{mentions}\" was opened")
        }
    }
}

/// Evaluates every check against the live state of `sandbox`.
pub fn evaluate(checks: &[Check], sandbox: &SandboxHandle, kinds: &KindTable) -> Vec<CheckOutcome> {
    checks
        .iter()
        .map(|c| evaluate_one(c, sandbox, kinds))
        .collect()
}

fn evaluate_one(c: &Check, sandbox: &SandboxHandle, kinds: &KindTable) -> CheckOutcome {
    let check = describe(c);
    let fail = |found: String| CheckOutcome {
        check: check.clone(),
        passed: false,
        found,
    };
    let kind = match c {
        Check::Path { kind, .. } | Check::Count { kind, .. } => kind,
        Check::PullRequest { repo, mentions } => {
            return pull_request(check, repo, mentions, &sandbox.github_log());
        }
    };
    let Some(info) = kinds.lookup(kind) else {
        return fail(format!("kind {kind} is unknown to the scorer"));
    };
    let av = info.api_version();
    match c {
        Check::Path {
            cluster,
            namespace,
            name,
            path,
            equals,
            ..
        } => {
            let ns = if info.namespaced {
                namespace.as_deref().unwrap_or_default()
            } else {
                ""
            };
            let Some(obj) = sandbox.object(cluster, &av, &info.kind, ns, name) else {
                return fail("the object does not exist".into());
            };
            let got = lookup_path(&obj, path).cloned().unwrap_or(Value::Null);
            if json_equal(&got, equals) {
                CheckOutcome {
                    check,
                    passed: true,
                    found: got.to_string(),
                }
            } else {
                fail(got.to_string())
            }
        }
        Check::Count {
            cluster,
            namespace,
            selector,
            on_node,
            name,
            count,
            ..
        } => {
            let sel = match LabelSelector::parse(selector) {
                Ok(s) => s,
                Err(e) => return fail(format!("bad selector: {e}")),
            };
            let scope = if info.namespaced {
                namespace.as_deref()
            } else {
                None
            };
            let n = sandbox
                .objects(cluster, &av, &info.kind, scope)
                .iter()
                .filter(|o| sel.matches(o))
                .filter(|o| name.as_deref().is_none_or(|n| o["metadata"]["name"] == n))
                .filter(|o| {
                    on_node
                        .as_deref()
                        .is_none_or(|node| o["spec"]["nodeName"] == node)
                })
                .count() as u64;
            if n == *count {
                CheckOutcome {
                    check,
                    passed: true,
                    found: n.to_string(),
                }
            } else {
                fail(format!("{n} objects"))
            }
        }
        // Already answered before the kind lookup (it has no kind); kept exhaustive.
        Check::PullRequest { repo, mentions } => {
            pull_request(check, repo, mentions, &sandbox.github_log())
        }
    }
}

/// Whether `log` (the sandbox's GitHub writes) opened a pull request on `repo` whose title
/// or body mentions `mentions`.
fn pull_request(
    check: String,
    repo: &str,
    mentions: &str,
    log: &[medic_sandbox::GithubRecord],
) -> CheckOutcome {
    let path = format!("/repos/{repo}/pulls");
    let needle = mentions.to_lowercase();
    let opened: Vec<String> = log
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .map(|r| {
            format!(
                "{}\n{}",
                r.body["title"].as_str().unwrap_or_default(),
                r.body["body"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if opened.iter().any(|t| t.to_lowercase().contains(&needle)) {
        return CheckOutcome {
            check,
            passed: true,
            found: format!("{} pull request(s) opened", opened.len()),
        };
    }
    let found = match opened.first() {
        None => "no pull request was opened".to_string(),
        Some(t) => format!(
            "{} pull request(s) opened, none mentioning it (first: \"{}\")",
            opened.len(),
            t.lines().next().unwrap_or_default()
        ),
    };
    CheckOutcome {
        check,
        passed: false,
        found,
    }
}

/// JSON equality in which numbers compare by value (`4` equals `4.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn record(method: &str, path: &str, body: Value) -> medic_sandbox::GithubRecord {
        medic_sandbox::GithubRecord {
            method: method.into(),
            path: path.into(),
            body,
        }
    }

    #[test]
    fn pull_request_must_be_opened_on_the_repo_and_mention_the_text() {
        let log = vec![
            record(
                "POST",
                "/repos/acme/deploy/git/refs",
                json!({"ref": "refs/heads/x"}),
            ),
            record(
                "POST",
                "/repos/acme/other/pulls",
                json!({"title": "Revert a41c9e2: roll api back", "body": ""}),
            ),
        ];
        let miss = pull_request("c".into(), "acme/deploy", "a41c9e2", &log);
        assert!(!miss.passed);
        assert_eq!(miss.found, "no pull request was opened");

        let mut log = log;
        log.push(record(
            "POST",
            "/repos/acme/deploy/pulls",
            json!({"title": "Bump chart", "body": "unrelated"}),
        ));
        let wrong = pull_request("c".into(), "acme/deploy", "a41c9e2", &log);
        assert!(!wrong.passed);
        assert!(
            wrong
                .found
                .contains("none mentioning it (first: \"Bump chart\")"),
            "{}",
            wrong.found
        );

        log.push(record(
            "POST",
            "/repos/acme/deploy/pulls",
            json!({"title": "Revert A41C9E2: roll recsys-api back to revision 15", "body": "why"}),
        ));
        let hit = pull_request("c".into(), "acme/deploy", "a41c9e2", &log);
        assert!(hit.passed, "{}", hit.found);
    }

    #[test]
    fn dotted_paths_with_indices() {
        let v = json!({"spec": {"rules": [{"backendRefs": [{"weight": 0}, {"weight": 100}]}]}});
        assert_eq!(
            lookup_path(&v, "spec.rules.0.backendRefs.1.weight"),
            Some(&json!(100))
        );
        assert_eq!(lookup_path(&v, "spec.rules.1"), None);
        assert_eq!(lookup_path(&v, "spec.rules.x"), None);
        assert_eq!(
            lookup_path(&v, "spec.rules.0.backendRefs.0.weight.deeper"),
            None
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!(4), &json!(4.0)));
        assert!(json_equal(
            &json!({"a": [1, "x"]}),
            &json!({"a": [1.0, "x"]})
        ));
        assert!(!json_equal(&json!("4"), &json!(4)));
        assert!(!json_equal(&json!(true), &json!("true")));
    }

    #[test]
    fn selectors() {
        let pod = json!({"metadata": {"labels": {"app": "qwen", "tier": "gpu"}}});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&pod);
        assert!(m("app=qwen"));
        assert!(m("app==qwen,tier!=cpu"));
        assert!(m("tier in (gpu, cpu)"));
        assert!(m("app,!spot"));
        assert!(m(""));
        assert!(!m("app=llama"));
        assert!(!m("tier notin (gpu)"));
        assert!(!m("spot"));
        assert!(LabelSelector::parse("tier in gpu").is_err());
    }
}
