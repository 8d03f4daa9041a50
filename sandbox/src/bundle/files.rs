//! The other files of a bundle: logs, metrics, GitHub JSON, runbooks and the policy.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::metrics::{self, Sample};
use super::yamldoc::parse;
use super::{rel, sorted_entries};
use crate::error::Problem;

/// One container log file.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// Whether this is the last terminated instance (`.previous.log`).
    pub previous: bool,
    /// The lines in order.
    pub lines: Vec<LogLine>,
}

/// One log line: its timestamp and the text after it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The RFC 3339 timestamp the line starts with.
    pub timestamp: DateTime<Utc>,
    /// The timestamp exactly as written.
    pub timestamp_text: String,
    /// The rest of the line.
    pub text: String,
}

/// A GitHub repository's recorded changes (GitHub REST API shapes).
#[derive(Debug, Clone, PartialEq)]
pub struct GithubRepo {
    /// Owner (organisation or user).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// `commits.json`: a list of commits.
    pub commits: Vec<Value>,
    /// `pulls.json`: a list of pull requests.
    pub pulls: Vec<Value>,
    /// `deployments.json`, optional.
    pub deployments: Vec<Value>,
    /// `trees.json`, optional: Git trees as `GET /git/trees/{sha}?recursive=1` answers them
    /// (`sha`, `tree` of `path`/`mode`/`type`/`sha` entries), for reverts under later commits.
    pub trees: Vec<Value>,
}

/// A file kept as text (runbooks, policy).
#[derive(Debug, Clone, PartialEq)]
pub struct RawFile {
    /// Path relative to the bundle.
    pub path: String,
    /// The text.
    pub text: String,
}

fn read(root: &Path, path: &Path, problems: &mut Vec<Problem>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(Problem::new(
                rel(root, path),
                None,
                format!("cannot read the file: {e}"),
            ));
            None
        }
    }
}

/// `clusters/<cluster>/logs/<namespace>/<pod>/<container>[.previous].log`.
pub(crate) fn read_logs(root: &Path, cluster: &str, problems: &mut Vec<Problem>) -> Vec<LogFile> {
    let dir = root.join("clusters").join(cluster).join("logs");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    let layout = "logs must be laid out as logs/<namespace>/<pod>/<container>.log or <container>.previous.log";
    for ns_dir in sorted_entries(&dir, problems, root) {
        if !ns_dir.is_dir() {
            problems.push(Problem::new(rel(root, &ns_dir), None, layout));
            continue;
        }
        for pod_dir in sorted_entries(&ns_dir, problems, root) {
            if !pod_dir.is_dir() {
                problems.push(Problem::new(rel(root, &pod_dir), None, layout));
                continue;
            }
            for file in sorted_entries(&pod_dir, problems, root) {
                let fname = file
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default()
                    .to_string();
                let (container, previous) = if let Some(c) = fname.strip_suffix(".previous.log") {
                    (c.to_string(), true)
                } else if let Some(c) = fname.strip_suffix(".log") {
                    (c.to_string(), false)
                } else {
                    problems.push(Problem::new(rel(root, &file), None, layout));
                    continue;
                };
                if file.is_dir() || container.is_empty() {
                    problems.push(Problem::new(rel(root, &file), None, layout));
                    continue;
                }
                let Some(text) = read(root, &file, problems) else {
                    continue;
                };
                let mut lines = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let (ts, rest) = line.split_once(' ').unwrap_or((line, ""));
                    match DateTime::parse_from_rfc3339(ts) {
                        Ok(t) => lines.push(LogLine {
                            timestamp: t.with_timezone(&Utc),
                            timestamp_text: ts.to_string(),
                            text: rest.to_string(),
                        }),
                        Err(_) => problems.push(Problem::new(
                            rel(root, &file),
                            Some(i + 1),
                            format!("each log line must start with an RFC 3339 timestamp and a space, e.g. \"2026-06-23T11:58:01.123Z message\", found {:?}", truncate(line)),
                        )),
                    }
                }
                out.push(LogFile {
                    namespace: name_of(&ns_dir),
                    pod: name_of(&pod_dir),
                    container,
                    previous,
                    lines,
                });
            }
        }
    }
    out
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string()
}

/// Checks that every log belongs to a pod and container declared in the objects.
pub(crate) fn check_logs(
    cluster: &str,
    logs: &[LogFile],
    objects: &[Value],
    problems: &mut Vec<Problem>,
) {
    for l in logs {
        let file = format!(
            "clusters/{cluster}/logs/{}/{}/{}{}",
            l.namespace,
            l.pod,
            l.container,
            if l.previous { ".previous.log" } else { ".log" }
        );
        let pod = objects.iter().find(|o| {
            o["kind"] == "Pod"
                && o["metadata"]["namespace"] == l.namespace.as_str()
                && o["metadata"]["name"] == l.pod.as_str()
        });
        let Some(pod) = pod else {
            problems.push(Problem::new(
                file,
                None,
                format!(
                    "log for pod {}/{}, which is not among the cluster's objects",
                    l.namespace, l.pod
                ),
            ));
            continue;
        };
        let containers: BTreeSet<&str> = ["containers", "initContainers", "ephemeralContainers"]
            .iter()
            .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str())
            .collect();
        if !containers.contains(l.container.as_str()) {
            problems.push(Problem::new(
                file,
                None,
                format!(
                    "pod {}/{} has no container {:?}",
                    l.namespace, l.pod, l.container
                ),
            ));
        }
    }
}

/// `metrics/*.om`.
pub(crate) fn read_metrics(
    root: &Path,
    clusters: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<Sample> {
    let dir = root.join("metrics");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    for path in sorted_entries(&dir, problems, root) {
        let file = rel(root, &path);
        if path.extension().and_then(|e| e.to_str()) != Some("om") || path.is_dir() {
            problems.push(Problem::new(
                file,
                None,
                "metrics/ must hold only OpenMetrics files ending in .om",
            ));
            continue;
        }
        let Some(text) = read(root, &path, problems) else {
            continue;
        };
        match metrics::parse(&text) {
            Ok(samples) => {
                if clusters.len() > 1 {
                    for (i, s) in samples.iter().enumerate() {
                        match s.labels.get("cluster") {
                            Some(c) if clusters.contains(c) => {}
                            Some(c) => problems.push(Problem::new(
                                file.clone(),
                                line_of_sample(&text, i),
                                format!("series {} has cluster={c:?}, which is not listed in scenario.yaml", s.name),
                            )),
                            None => problems.push(Problem::new(
                                file.clone(),
                                line_of_sample(&text, i),
                                format!("series {} needs a `cluster` label because the bundle has more than one cluster", s.name),
                            )),
                        }
                    }
                }
                out.extend(samples);
            }
            Err((line, msg)) => problems.push(Problem::new(
                file,
                line,
                format!("invalid OpenMetrics: {msg}"),
            )),
        }
    }
    out
}

fn line_of_sample(text: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .nth(index)
        .map(|(i, _)| i + 1)
}

/// `github/<owner>/<repo>/{commits,pulls,deployments}.json`.
pub(crate) fn read_github(root: &Path, problems: &mut Vec<Problem>) -> Vec<GithubRepo> {
    let dir = root.join("github");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    let layout =
        "github/ must be laid out as github/<owner>/<repo>/{commits,pulls,deployments,trees}.json";
    for owner in sorted_entries(&dir, problems, root) {
        if !owner.is_dir() {
            problems.push(Problem::new(rel(root, &owner), None, layout));
            continue;
        }
        for repo in sorted_entries(&owner, problems, root) {
            if !repo.is_dir() {
                problems.push(Problem::new(rel(root, &repo), None, layout));
                continue;
            }
            let mut r = GithubRepo {
                owner: name_of(&owner),
                repo: name_of(&repo),
                commits: vec![],
                pulls: vec![],
                deployments: vec![],
                trees: vec![],
            };
            let mut found = BTreeSet::new();
            for f in sorted_entries(&repo, problems, root) {
                let fname = name_of(&f);
                let slot = match fname.as_str() {
                    "commits.json" => &mut r.commits,
                    "pulls.json" => &mut r.pulls,
                    "deployments.json" => &mut r.deployments,
                    "trees.json" => &mut r.trees,
                    _ => {
                        problems.push(Problem::new(rel(root, &f), None, layout));
                        continue;
                    }
                };
                found.insert(fname.clone());
                let Some(text) = read(root, &f, problems) else {
                    continue;
                };
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Array(items)) => *slot = items,
                    Ok(_) => problems.push(Problem::new(
                        rel(root, &f),
                        Some(1),
                        "must be a JSON array, as the GitHub REST API returns it",
                    )),
                    Err(e) => problems.push(Problem::new(
                        rel(root, &f),
                        Some(e.line()),
                        format!("invalid JSON: {e}"),
                    )),
                }
            }
            for (i, t) in r.trees.iter().enumerate() {
                if !t["sha"].is_string() || !t["tree"].is_array() {
                    problems.push(Problem::new(
                        rel(root, &repo.join("trees.json")),
                        None,
                        format!("tree #{} needs a `sha` string and a `tree` list of path/mode/type/sha entries", i + 1),
                    ));
                }
            }
            for required in ["commits.json", "pulls.json"] {
                if !found.contains(required) {
                    problems.push(Problem::new(rel(root, &repo), None, format!("{required} is missing; every repository needs commits.json and pulls.json")));
                }
            }
            out.push(r);
        }
    }
    out
}

/// `runbooks/*.yaml`, kept as text after a YAML syntax check.
pub(crate) fn read_runbooks(root: &Path, problems: &mut Vec<Problem>) -> Vec<RawFile> {
    let dir = root.join("runbooks");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    for path in sorted_entries(&dir, problems, root) {
        let file = rel(root, &path);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if path.is_dir() || (ext != "yaml" && ext != "yml") {
            problems.push(Problem::new(
                file,
                None,
                "runbooks/ must hold only .yaml or .yml files",
            ));
            continue;
        }
        if let Some(text) = read(root, &path, problems) {
            if let Err((line, msg)) = parse::<Value>(&text, 1) {
                problems.push(Problem::new(
                    file.clone(),
                    line,
                    format!("invalid YAML: {msg}"),
                ));
            }
            out.push(RawFile { path: file, text });
        }
    }
    out
}

/// `policy.yaml`, kept as text after a YAML syntax check.
pub(crate) fn read_policy(root: &Path, problems: &mut Vec<Problem>) -> Option<RawFile> {
    let path = root.join("policy.yaml");
    if !path.exists() {
        return None;
    }
    let text = read(root, &path, problems)?;
    match parse::<Value>(&text, 1) {
        Ok(Value::Object(_)) => {}
        Ok(_) => problems.push(Problem::new(
            "policy.yaml",
            Some(1),
            "the policy must be a YAML mapping",
        )),
        Err((line, msg)) => problems.push(Problem::new(
            "policy.yaml",
            line,
            format!("invalid YAML: {msg}"),
        )),
    }
    Some(RawFile {
        path: "policy.yaml".into(),
        text,
    })
}
