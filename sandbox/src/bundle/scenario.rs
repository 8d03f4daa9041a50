//! `scenario.yaml`: the typed model and the rules that need nothing but the scenario itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::yamldoc::line_of;
use crate::error::Problem;

/// The parsed `scenario.yaml`.
///
/// `title`, `description` and `expected` are for humans and the scorer only; the sandbox server
/// never serves them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Format version; must be 1.
    pub version: u32,
    /// Human title (never served).
    #[serde(default)]
    pub title: String,
    /// Free text for humans (never served).
    #[serde(default)]
    pub description: String,
    /// The replay clock, RFC 3339 (see [`crate::Bundle::now`] for the parsed value).
    pub now: String,
    /// The clusters of the incident; the first is the kubeconfig's current context.
    pub clusters: Vec<ClusterSpec>,
    /// What starts the investigation.
    pub start: Start,
    /// Who is who in this replay.
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// How the world responds to actions.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// What a good outcome is (evals only; never served).
    #[serde(default)]
    pub expected: Option<Value>,
}

/// One cluster of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Folder name under `clusters/` and the kubeconfig context name.
    pub name: String,
    /// Optional region (placement / residency policies).
    #[serde(default)]
    pub region: Option<String>,
    /// Optional labels such as `residency: eu`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether `metrics/*.om` series with this cluster's label are served for it.
    #[serde(default)]
    pub prometheus: bool,
}

/// The start of an investigation: exactly one of a question or an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// A question in plain language.
    #[serde(default)]
    pub question: Option<String>,
    /// An alert as its source sent it.
    #[serde(default)]
    pub alert: Option<Alert>,
}

/// An alert that starts an investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// `alertmanager` or `pagerduty`.
    pub source: String,
    /// The webhook payload.
    pub payload: Value,
}

/// A person or agent and the Kubernetes user it acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Short name (kubeconfig user name).
    pub name: String,
    /// The Kubernetes user name.
    pub kube_user: String,
    /// Kubernetes groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether this is medic itself (the default context's user); exactly one identity is.
    #[serde(default)]
    pub agent: bool,
    /// Slack user id.
    #[serde(default)]
    pub slack: Option<String>,
    /// Microsoft Teams id.
    #[serde(default)]
    pub teams: Option<String>,
}

/// Conditions and the actions applied once they all hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    /// Every condition must hold on the live state.
    pub when: Vec<Condition>,
    /// Applied once, in order.
    pub then: Vec<Action>,
}

/// A condition on the live sandbox state: either `path`/`equals` on one object, or a count of
/// objects matching `selector` (optionally on node `on_node`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Cluster name.
    pub cluster: String,
    /// Object kind.
    pub kind: String,
    /// Namespace of the object(s).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name (path conditions).
    #[serde(default)]
    pub name: Option<String>,
    /// Dotted JSON path; numeric segments index lists.
    #[serde(default)]
    pub path: Option<String>,
    /// The JSON value the path must hold.
    #[serde(default)]
    pub equals: Option<Value>,
    /// Label selector (count conditions).
    #[serde(default)]
    pub selector: Option<String>,
    /// Only count pods on this node.
    #[serde(default)]
    pub on_node: Option<String>,
    /// How many objects must match.
    #[serde(default)]
    pub count: Option<u64>,
}

/// One action of a reaction, written as a one-key map (`{ patch: {...} }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ActionRepr", into = "ActionRepr")]
pub enum Action {
    /// JSON merge patch of one object.
    Patch(PatchAction),
    /// Drop series matching a selector from the metrics view.
    DeleteSeries(DeleteSeries),
    /// Delete one object.
    Delete(ObjectRef),
    /// Create an object.
    Create(CreateAction),
}

/// The YAML shape of an action: exactly one of these keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patch: Option<PatchAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete_series: Option<DeleteSeries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    create: Option<CreateAction>,
}

impl TryFrom<ActionRepr> for Action {
    type Error = String;
    fn try_from(r: ActionRepr) -> Result<Action, String> {
        let mut found = Vec::new();
        if let Some(p) = r.patch {
            found.push(Action::Patch(p));
        }
        if let Some(d) = r.delete_series {
            found.push(Action::DeleteSeries(d));
        }
        if let Some(d) = r.delete {
            found.push(Action::Delete(d));
        }
        if let Some(c) = r.create {
            found.push(Action::Create(c));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(format!(
                "an action must have exactly one of `patch`, `delete_series`, `delete` or `create`, found {n}"
            )),
        }
    }
}

impl From<Action> for ActionRepr {
    fn from(a: Action) -> ActionRepr {
        let mut r = ActionRepr::default();
        match a {
            Action::Patch(p) => r.patch = Some(p),
            Action::DeleteSeries(d) => r.delete_series = Some(d),
            Action::Delete(d) => r.delete = Some(d),
            Action::Create(c) => r.create = Some(c),
        }
        r
    }
}

/// `patch` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAction {
    /// Cluster name.
    pub cluster: String,
    /// Object kind.
    pub kind: String,
    /// Namespace (namespaced kinds).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name; or, when empty, every object matching `selector`.
    #[serde(default)]
    pub name: String,
    /// Label selector: patch every matching object (in `namespace` when given). For objects
    /// whose names are chosen at run time, such as a migration medic names when it plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// RFC 7386 merge patch.
    pub merge: Value,
}

/// `delete_series` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSeries {
    /// A series selector such as `DCGM_FI_DEV_XID_ERRORS{node="gpu-node-3"}`.
    #[serde(rename = "match")]
    pub matcher: String,
}

/// A reference to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// Cluster name.
    pub cluster: String,
    /// Object kind.
    pub kind: String,
    /// Namespace (namespaced kinds).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

/// `create` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAction {
    /// Cluster name.
    pub cluster: String,
    /// The full object (apiVersion, kind, metadata...).
    pub object: Value,
}

const FILE: &str = "scenario.yaml";

/// Rules on the scenario alone (cross-file rules live in `validate`).
pub(crate) fn check(s: &Scenario, text: &str, problems: &mut Vec<Problem>) {
    let at = |needle: &str| line_of(text, needle, 1);
    if s.version != 1 {
        problems.push(Problem::new(
            FILE,
            at("version"),
            format!("`version` must be 1, found {}", s.version),
        ));
    }
    if chrono::DateTime::parse_from_rfc3339(&s.now).is_err() {
        problems.push(Problem::new(
            FILE,
            at("now"),
            format!(
                "`now` must be an RFC 3339 timestamp such as \"2026-06-23T12:00:00Z\", found {:?}",
                s.now
            ),
        ));
    }
    if s.clusters.is_empty() {
        problems.push(Problem::new(
            FILE,
            at("clusters"),
            "`clusters` must list at least one cluster",
        ));
    }
    let mut seen = BTreeSet::new();
    for c in &s.clusters {
        let valid = !c.name.is_empty()
            && c.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !valid {
            problems.push(Problem::new(
                FILE,
                at(&format!("name: {}", c.name)),
                format!("cluster name {:?} must be non-empty and use only letters, digits, '-', '_' or '.'", c.name),
            ));
        }
        if !seen.insert(c.name.as_str()) {
            let first = at(&format!("name: {}", c.name)).unwrap_or(1);
            problems.push(Problem::new(
                FILE,
                line_of(text, &format!("name: {}", c.name), first + 1),
                format!(
                    "cluster {:?} is listed more than once; cluster names must be unique",
                    c.name
                ),
            ));
        }
    }
    match (&s.start.question, &s.start.alert) {
        (Some(_), None) | (None, Some(_)) => {}
        _ => problems.push(Problem::new(
            FILE,
            at("start"),
            "`start` must give exactly one of `question` or `alert`",
        )),
    }
    if let Some(q) = &s.start.question
        && q.trim().is_empty()
    {
        problems.push(Problem::new(
            FILE,
            at("question"),
            "`start.question` must not be empty",
        ));
    }
    check_identities(s, text, problems);
    check_reactions(s, text, problems);
}

fn check_identities(s: &Scenario, text: &str, problems: &mut Vec<Problem>) {
    let at = |needle: &str| line_of(text, needle, 1);
    let agents: Vec<&Identity> = s.identities.iter().filter(|i| i.agent).collect();
    if agents.len() != 1 {
        problems.push(Problem::new(
            FILE,
            at("identities"),
            format!("`identities` must mark exactly one identity `agent: true` (medic itself), found {}", agents.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut users = BTreeSet::new();
    for i in &s.identities {
        if !names.insert(i.name.as_str()) {
            let first = at(&format!("name: {}", i.name)).unwrap_or(1);
            problems.push(Problem::new(
                FILE,
                line_of(text, &format!("name: {}", i.name), first + 1),
                format!(
                    "identity {:?} is listed more than once; identity names must be unique",
                    i.name
                ),
            ));
        }
        if !users.insert(i.kube_user.as_str()) {
            problems.push(Problem::new(
                FILE,
                at(&i.kube_user),
                format!("kube_user {:?} belongs to more than one identity; each identity needs its own user", i.kube_user),
            ));
        }
    }
}

fn check_reactions(s: &Scenario, text: &str, problems: &mut Vec<Problem>) {
    let from = line_of(text, "reactions:", 1).unwrap_or(1);
    let clusters: BTreeSet<&str> = s.clusters.iter().map(|c| c.name.as_str()).collect();
    let cluster_ok = |name: &str, problems: &mut Vec<Problem>| {
        if !clusters.contains(name) {
            problems.push(Problem::new(
                FILE,
                line_of(text, &format!("cluster: {name}"), from),
                format!("reaction refers to cluster {name:?}, which is not listed in `clusters`"),
            ));
        }
    };
    for (ri, r) in s.reactions.iter().enumerate() {
        if r.when.is_empty() || r.then.is_empty() {
            problems.push(Problem::new(
                FILE,
                line_of(text, "when", from),
                format!(
                    "reaction {} needs at least one `when` condition and one `then` action",
                    ri + 1
                ),
            ));
        }
        for c in &r.when {
            cluster_ok(&c.cluster, problems);
            let by_path = c.path.is_some() || c.equals.is_some();
            let by_count = c.count.is_some() || c.selector.is_some() || c.on_node.is_some();
            let line = line_of(text, &format!("kind: {}", c.kind), from);
            if by_path == by_count
                || (by_path && (c.path.is_none() || c.equals.is_none() || c.name.is_none()))
                || (by_count && c.count.is_none())
            {
                problems.push(Problem::new(
                    FILE,
                    line,
                    format!(
                        "reaction {} condition on {} must be either `name` + `path` + `equals` or `count` (with optional `selector` / `on_node`)",
                        ri + 1,
                        c.kind
                    ),
                ));
            }
            if let Some(p) = &c.path
                && p.split('.').any(str::is_empty)
            {
                problems.push(Problem::new(
                    FILE,
                    line_of(text, p, from),
                    format!("path {p:?} must be a dotted JSON path with no empty segment, e.g. spec.rules.0.backendRefs.1.weight"),
                ));
            }
        }
        for a in &r.then {
            match a {
                Action::Patch(p) => cluster_ok(&p.cluster, problems),
                Action::Delete(d) => cluster_ok(&d.cluster, problems),
                Action::Create(c) => cluster_ok(&c.cluster, problems),
                Action::DeleteSeries(d) => {
                    if crate::selector::SeriesSelector::parse(&d.matcher).is_err() {
                        problems.push(Problem::new(
                            FILE,
                            line_of(text, "delete_series", from),
                            format!("delete_series match {:?} must be a series selector such as name{{label=\"value\"}}", d.matcher),
                        ));
                    }
                }
            }
        }
    }
}
