//! On-call runbooks: the YAML format, loading, matching against alerts, and the
//! `runbook_search` tool.
//!
//! A runbook (`playbooks/runbooks/<name>.yaml`) looks like:
//!
//! ```yaml
//! name: gpu-xid-errors                 # unique, kebab-case
//! description: A GPU reports Xid errors (driver/hardware faults).
//! match:
//!   alerts: [GPUXidErrors, DCGMXidError]  # alertname values; any one matches
//!   labels:                             # every matcher must hold
//!     severity: "~critical|page"        # "~re" regex (full match), "!v" not equal, else exact
//!   keywords: [xid, "fell off the bus"] # free-text search terms
//! investigation:                        # hints handed to the investigation, in order
//!   - Check DCGM_FI_DEV_XID_ERRORS per GPU on the node named by the alert.
//! channel: { kind: slack, target: "#gpu-oncall" }   # or kind: teams
//! approvers: { groups: [sre], users: [], min: 1 }   # who is paged to approve
//! playbooks: [gpu-rebalance, uncordon]  # the only remediations allowed for this alert
//! preapprove: []                        # low-risk playbooks a policy MAY pre-approve
//! ```
//!
//! `preapprove` only names candidates; nothing is pre-approved unless the approval policy
//! says so.

use crate::context::ToolContext;
use crate::error::{Result, ToolError};
use crate::evidence::EvidenceRef;
use crate::tool::{Render, Tool};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What a runbook matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookMatch {
    /// Alert names (`alertname` label); any one matches.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Label matchers; all must hold (`~re` regex, `!v` not equal, else exact).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Free-text search terms.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Chat platform of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Slack.
    Slack,
    /// Microsoft Teams.
    Teams,
}

/// Where an automated investigation is posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Platform.
    pub kind: ChannelKind,
    /// Channel name or id (Slack `#name`/`C…`, Teams channel id).
    pub target: String,
}

/// Who is paged to approve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// Groups (as the approval policy and Kubernetes know them).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Individual users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Approvals to ask for (the policy may require more).
    #[serde(default = "one")]
    pub min: u32,
}

fn one() -> u32 {
    1
}

/// An on-call runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Unique name.
    pub name: String,
    /// What situation it covers.
    pub description: String,
    /// What it matches.
    #[serde(rename = "match", default)]
    pub matches: RunbookMatch,
    /// Investigation hints.
    #[serde(default)]
    pub investigation: Vec<String>,
    /// Where to post.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Who approves.
    #[serde(default)]
    pub approvers: Approvers,
    /// Playbooks allowed for this alert.
    #[serde(default)]
    pub playbooks: Vec<String>,
    /// Playbooks a policy may pre-approve (candidates only).
    #[serde(default)]
    pub preapprove: Vec<String>,
}

fn label_ok(matcher: &str, value: Option<&str>) -> bool {
    if let Some(re) = matcher.strip_prefix('~') {
        return match (Regex::new(&format!("^(?:{re})$")), value) {
            (Ok(r), Some(v)) => r.is_match(v),
            _ => false,
        };
    }
    if let Some(not) = matcher.strip_prefix('!') {
        return value != Some(not);
    }
    value == Some(matcher)
}

impl Runbook {
    /// Check the runbook is usable; the error names what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!("`name` must be kebab-case, found `{}`", self.name));
        }
        if self.matches.alerts.is_empty()
            && self.matches.labels.is_empty()
            && self.matches.keywords.is_empty()
        {
            return Err("`match` needs at least one of alerts, labels, keywords".into());
        }
        for (k, m) in &self.matches.labels {
            if let Some(re) = m.strip_prefix('~')
                && let Err(e) = Regex::new(re)
            {
                return Err(format!(
                    "label matcher `{k}: {m}` is not a valid regex: {e}"
                ));
            }
        }
        Ok(())
    }

    /// Whether an alert (its labels, `alertname` included) matches: the alert name is listed
    /// (when names are given) and every label matcher holds.
    pub fn matches_alert(&self, labels: &BTreeMap<String, String>) -> bool {
        let name_ok = self.matches.alerts.is_empty()
            || labels
                .get("alertname")
                .is_some_and(|a| self.matches.alerts.iter().any(|x| x == a));
        let labels_ok = self
            .matches
            .labels
            .iter()
            .all(|(k, m)| label_ok(m, labels.get(k).map(String::as_str)));
        name_ok && labels_ok && !(self.matches.alerts.is_empty() && self.matches.labels.is_empty())
    }

    /// Free-text relevance: how many query words appear in the name, description, keywords,
    /// alert names and hints.
    pub fn text_score(&self, text: &str) -> usize {
        let hay = format!(
            "{} {} {} {} {}",
            self.name,
            self.description,
            self.matches.keywords.join(" "),
            self.matches.alerts.join(" "),
            self.investigation.join(" ")
        )
        .to_lowercase();
        let mut score: usize = text
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 3 && hay.contains(*w))
            .count();
        score += self
            .matches
            .keywords
            .iter()
            .filter(|k| text.to_lowercase().contains(&k.to_lowercase()))
            .count()
            * 3;
        score
    }
}

/// Load every `*.yaml` / `*.yml` runbook in `dir`; a broken file is an error naming it.
pub fn load_runbooks(dir: &Path) -> Result<Vec<Runbook>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ToolError::Config(format!("cannot read runbook folder {}: {e}", dir.display()))
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut out: Vec<Runbook> = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| ToolError::Config(format!("cannot read runbook {}: {e}", p.display())))?;
        let rb: Runbook = serde_yaml::from_str(&text)
            .map_err(|e| ToolError::Config(format!("runbook {} is not valid: {e}", p.display())))?;
        rb.validate()
            .map_err(|e| ToolError::Config(format!("runbook {}: {e}", p.display())))?;
        if out.iter().any(|r| r.name == rb.name) {
            return Err(ToolError::Config(format!(
                "runbook {}: name `{}` is used twice",
                p.display(),
                rb.name
            )));
        }
        out.push(rb);
    }
    Ok(out)
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunbookHit {
    /// The runbook.
    pub runbook: Runbook,
    /// Matched the alert's labels.
    pub alert_match: bool,
    /// Free-text score.
    pub text_score: usize,
}

/// Runbooks matching an alert first, then by text relevance.
pub fn search(
    runbooks: &[Runbook],
    labels: &BTreeMap<String, String>,
    text: Option<&str>,
) -> Vec<RunbookHit> {
    let mut hits: Vec<RunbookHit> = runbooks
        .iter()
        .map(|r| {
            let mut query = text.unwrap_or("").to_string();
            for v in labels.values() {
                query.push(' ');
                query.push_str(v);
            }
            RunbookHit {
                runbook: r.clone(),
                alert_match: !labels.is_empty() && r.matches_alert(labels),
                text_score: r.text_score(&query),
            }
        })
        .filter(|h| h.alert_match || h.text_score > 0)
        .collect();
    hits.sort_by(|a, b| {
        b.alert_match
            .cmp(&a.alert_match)
            .then(b.text_score.cmp(&a.text_score))
            .then(a.runbook.name.cmp(&b.runbook.name))
    });
    hits
}

/// Arguments of `runbook_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookArgs {
    /// Alert labels incl. alertname.
    pub labels: Option<BTreeMap<String, String>>,
    /// Free text, e.g. "xid gpu".
    pub text: Option<String>,
}

/// Result of `runbook_search`.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookOutput {
    /// Runbooks searched.
    pub searched: usize,
    /// Hits, best first.
    pub hits: Vec<RunbookHit>,
}

impl Render for RunbookOutput {
    fn render(&self, max: usize) -> String {
        let mut s = format!(
            "{} runbooks matched (of {})\n",
            self.hits.len(),
            self.searched
        );
        for h in self.hits.iter().take(max.max(1)) {
            let r = &h.runbook;
            s.push_str(&format!(
                "runbook {}{}: {}\n  playbooks allowed: {}\n",
                r.name,
                if h.alert_match {
                    " (matches the alert)"
                } else {
                    ""
                },
                r.description,
                if r.playbooks.is_empty() {
                    "none".to_string()
                } else {
                    r.playbooks.join(", ")
                }
            ));
            for hint in r.investigation.iter().take(if max >= 3 { 8 } else { 2 }) {
                s.push_str(&format!("  - {hint}\n"));
            }
        }
        if self.hits.len() > max.max(1) {
            s.push_str(&format!(
                "… {} more runbooks omitted\n",
                self.hits.len() - max.max(1)
            ));
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        self.hits
            .iter()
            .take(3)
            .map(|h| EvidenceRef::Runbook {
                name: h.runbook.name.clone(),
            })
            .collect()
    }
}

/// `runbook_search`.
pub struct RunbookTool;

impl Tool for RunbookTool {
    const NAME: &'static str = "runbook_search";
    type Args = RunbookArgs;
    type Output = RunbookOutput;
    fn description() -> &'static str {
        "Find on-call runbooks for an alert (labels) or free text: investigation hints and the playbooks allowed."
    }
    async fn call(&self, ctx: &ToolContext, a: RunbookArgs) -> Result<RunbookOutput> {
        let dir = ctx.runbooks.as_ref().ok_or_else(|| {
            ToolError::NotFound("no runbook library is configured for this session".into())
        })?;
        let labels = a.labels.unwrap_or_default();
        if labels.is_empty() && a.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(ToolError::InvalidArgs(
                "give `labels` (alert labels with alertname) or `text`".into(),
            ));
        }
        let all = load_runbooks(dir)?;
        Ok(RunbookOutput {
            searched: all.len(),
            hits: search(&all, &labels, a.text.as_deref()),
        })
    }
}
