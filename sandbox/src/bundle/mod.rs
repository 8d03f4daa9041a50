//! Incident bundles: loading a bundle folder, validating every rule of the bundle format, and
//! the typed model the server and the other crates read.

mod files;
mod metrics;
mod objects;
mod scenario;
mod yamldoc;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use files::{GithubRepo, LogFile, LogLine, RawFile};
pub use metrics::Sample;
pub use scenario::{
    Action, Alert, ClusterSpec, Condition, CreateAction, DeleteSeries, Identity, ObjectRef,
    PatchAction, Reaction, Scenario, Start,
};

use crate::catalog::Catalog;
use crate::error::{Error, Problem, Result};
use crate::selector::LabelSelector;

/// The objects and logs of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterData {
    /// Cluster name (as in `scenario.yaml`).
    pub name: String,
    /// Every object, with `uid`, `resourceVersion` and `creationTimestamp` filled in.
    pub objects: Vec<Value>,
    /// Container logs.
    pub logs: Vec<LogFile>,
    /// The highest resourceVersion among the objects.
    pub(crate) max_resource_version: u64,
}

/// A loaded, valid incident bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle folder.
    pub dir: PathBuf,
    /// `scenario.yaml`.
    pub scenario: Scenario,
    /// One entry per scenario cluster, in the same order.
    pub clusters: Vec<ClusterData>,
    /// Every sample of `metrics/*.om`.
    pub samples: Vec<Sample>,
    /// `github/<owner>/<repo>/`.
    pub github: Vec<GithubRepo>,
    /// `runbooks/*.yaml` as text.
    pub runbooks: Vec<RawFile>,
    /// `policy.yaml` as text, when present.
    pub policy: Option<RawFile>,
    now: DateTime<Utc>,
}

impl Bundle {
    /// Loads and validates the bundle in `dir`. When any rule is broken the error is
    /// [`Error::InvalidBundle`] listing every problem found.
    pub fn load(dir: impl AsRef<Path>) -> Result<Bundle> {
        let dir = dir.as_ref();
        let mut problems = Vec::new();
        let bundle = load_inner(dir, &mut problems)?;
        match bundle {
            Some(b) if problems.is_empty() => Ok(b),
            _ => Err(Error::InvalidBundle {
                dir: dir.to_path_buf(),
                problems,
            }),
        }
    }

    /// Every problem of the bundle in `dir` (empty when it is valid). Unreadable folders are
    /// reported as problems too.
    pub fn check(dir: impl AsRef<Path>) -> Vec<Problem> {
        match Bundle::load(dir) {
            Ok(_) => Vec::new(),
            Err(Error::InvalidBundle { problems, .. }) => problems,
            Err(e) => vec![Problem::new(".", None, e.to_string())],
        }
    }

    /// The scenario clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterData> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The identity marked `agent: true`.
    pub fn agent_identity(&self) -> Option<&Identity> {
        self.scenario.identities.iter().find(|i| i.agent)
    }
}

/// Path of `path` relative to the bundle root, with `/` separators.
pub(crate) fn rel(root: &Path, path: &Path) -> String {
    let r = path.strip_prefix(root).unwrap_or(path);
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Entries of a folder sorted by name (hidden files skipped).
pub(crate) fn sorted_entries(dir: &Path, problems: &mut Vec<Problem>, root: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .and_then(|f| f.to_str())
                        .unwrap_or(".")
                        .starts_with('.')
                })
                .collect();
            v.sort();
            v
        }
        Err(e) => {
            problems.push(Problem::new(
                rel(root, dir),
                None,
                format!("cannot read the folder: {e}"),
            ));
            Vec::new()
        }
    }
}

fn load_inner(dir: &Path, problems: &mut Vec<Problem>) -> Result<Option<Bundle>> {
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        });
    }
    let scenario_path = dir.join("scenario.yaml");
    let scenario: Option<Scenario> = match std::fs::read_to_string(&scenario_path) {
        Ok(text) => match yamldoc::parse::<Scenario>(&text, 1) {
            Ok(s) => {
                scenario::check(&s, &text, problems);
                Some(s)
            }
            Err((line, msg)) => {
                problems.push(Problem::new("scenario.yaml", line, msg));
                None
            }
        },
        Err(_) => {
            problems.push(Problem::new(
                "scenario.yaml",
                None,
                "scenario.yaml is missing; every bundle needs one",
            ));
            None
        }
    };
    let cluster_names: Vec<String> = scenario
        .as_ref()
        .map(|s| s.clusters.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let now = scenario
        .as_ref()
        .and_then(|s| DateTime::parse_from_rfc3339(&s.now).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();

    // Folders under clusters/ that the scenario does not declare are almost always typos.
    let clusters_dir = dir.join("clusters");
    if clusters_dir.is_dir() {
        for p in sorted_entries(&clusters_dir, problems, dir) {
            let name = p
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
                .to_string();
            if scenario.is_some() && !cluster_names.contains(&name) {
                problems.push(Problem::new(
                    rel(dir, &p),
                    None,
                    format!("cluster folder {name:?} is not listed in scenario.yaml `clusters`"),
                ));
            }
        }
    }
    let mut clusters = Vec::new();
    for name in &cluster_names {
        let cdir = clusters_dir.join(name);
        if !cdir.is_dir() {
            problems.push(Problem::new(
                format!("clusters/{name}"),
                None,
                format!(
                    "cluster {name:?} is listed in scenario.yaml but clusters/{name}/ is missing"
                ),
            ));
            continue;
        }
        let located = objects::read_dir(dir, name, problems);
        let crds: Vec<Value> = located
            .iter()
            .filter(|o| o.value["kind"] == "CustomResourceDefinition")
            .map(|o| o.value.clone())
            .collect();
        let catalog = Catalog::with_crds(crds.iter());
        let mut objs = objects::check(located, &catalog, problems);
        objects::add_missing_namespaces(&mut objs);
        let max_rv = objects::fill_defaults(name, &mut objs, now);
        let logs = files::read_logs(dir, name, problems);
        files::check_logs(name, &logs, &objs, problems);
        clusters.push(ClusterData {
            name: name.clone(),
            objects: objs,
            logs,
            max_resource_version: max_rv,
        });
    }
    if let Some(s) = &scenario {
        check_reaction_kinds(s, &clusters, dir, problems);
    }
    let samples = files::read_metrics(dir, &cluster_names, problems);
    let github = files::read_github(dir, problems);
    let runbooks = files::read_runbooks(dir, problems);
    let policy = files::read_policy(dir, problems);
    Ok(scenario.map(|scenario| Bundle {
        dir: dir.to_path_buf(),
        scenario,
        clusters,
        samples,
        github,
        runbooks,
        policy,
        now,
    }))
}

/// Reaction kinds must be served by the cluster they name.
fn check_reaction_kinds(
    s: &Scenario,
    clusters: &[ClusterData],
    dir: &Path,
    problems: &mut Vec<Problem>,
) {
    let text = std::fs::read_to_string(dir.join("scenario.yaml")).unwrap_or_default();
    let from = yamldoc::line_of(&text, "reactions:", 1).unwrap_or(1);
    let mut check = |cluster: &str, kind: &str| {
        let Some(c) = clusters.iter().find(|c| c.name == cluster) else {
            return;
        };
        let catalog = Catalog::with_crds(
            c.objects
                .iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition"),
        );
        if catalog.by_kind(kind).is_none() {
            problems.push(Problem::new(
                "scenario.yaml",
                yamldoc::line_of(&text, &format!("kind: {kind}"), from),
                format!(
                    "reaction refers to kind {kind:?}, which cluster {cluster:?} does not serve"
                ),
            ));
        }
    };
    // Patch actions with neither or both of name / selector (reported after the kind checks).
    let mut shape = Vec::new();
    for r in &s.reactions {
        for c in &r.when {
            check(&c.cluster, &c.kind);
        }
        for a in &r.then {
            match a {
                Action::Patch(p) => {
                    check(&p.cluster, &p.kind);
                    let why = match (p.name.is_empty(), &p.selector) {
                        (true, None) => {
                            Some("a patch action needs `name` or `selector`".to_owned())
                        }
                        (false, Some(_)) => Some(format!(
                            "a patch action has both `name` ({}) and `selector`; keep one",
                            p.name
                        )),
                        (true, Some(sel)) => LabelSelector::parse(sel)
                            .err()
                            .map(|e| format!("a patch action's selector {sel:?} is invalid: {e}")),
                        (false, None) => None,
                    };
                    shape.extend(why);
                }
                Action::Delete(d) => check(&d.cluster, &d.kind),
                _ => {}
            }
        }
    }
    for why in shape {
        problems.push(Problem::new(
            "scenario.yaml",
            yamldoc::line_of(&text, "patch:", from),
            why,
        ));
    }
}
