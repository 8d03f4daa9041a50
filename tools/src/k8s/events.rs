//! `k8s_events`: recent events, warnings first.

use super::namespace_error;
use super::net::*;
use super::tools::*;
use crate::context::ToolContext;
use crate::error::Result;
use crate::evidence::{EvidenceRef, ObjectRef};
use crate::tool::{Render, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `k8s_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    /// Default: first cluster.
    pub cluster: Option<String>,
    /// Namespace; omit for all.
    pub namespace: Option<String>,
    /// Only events about this object name.
    pub name: Option<String>,
    /// Only Warning events.
    pub warnings_only: Option<bool>,
}

/// Result of `k8s_events`.
#[derive(Debug, Clone, Serialize)]
pub struct EventsOutput {
    /// Cluster.
    pub cluster: String,
    /// Namespace (None: all).
    pub namespace: Option<String>,
    /// Events, warnings and recent first.
    pub events: Vec<EventSummary>,
}

impl Render for EventsOutput {
    fn render(&self, max: usize) -> String {
        let warnings = self.events.iter().filter(|e| e.type_ == "Warning").count();
        let mut s = format!(
            "cluster {}: {} events in {} ({warnings} warnings)\n",
            self.cluster,
            self.events.len(),
            self.namespace
                .as_deref()
                .map_or("all namespaces".to_string(), |n| format!("namespace {n}"))
        );
        for e in self.events.iter().take(max) {
            s.push_str(&e.line());
            s.push('\n');
        }
        if self.events.len() > max {
            let rest = &self.events[max..];
            let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
            for e in rest {
                *reasons.entry(e.reason.as_str()).or_default() += 1;
            }
            s.push_str(&format!(
                "… {} more omitted (by reason: {})\n",
                rest.len(),
                reasons
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        let mut seen = std::collections::BTreeSet::new();
        self.events
            .iter()
            .filter(|e| e.type_ == "Warning")
            .filter(|e| seen.insert((e.kind.clone(), e.namespace.clone(), e.name.clone())))
            .take(30)
            .map(|e| {
                EvidenceRef::Object(ObjectRef {
                    cluster: self.cluster.clone(),
                    kind: e.kind.clone(),
                    namespace: (!e.namespace.is_empty()).then(|| e.namespace.clone()),
                    name: e.name.clone(),
                    uid: e.uid.clone(),
                })
            })
            .collect()
    }
}

/// `k8s_events`.
pub struct EventsTool;

impl Tool for EventsTool {
    const NAME: &'static str = "k8s_events";
    type Args = EventsArgs;
    type Output = EventsOutput;
    fn description() -> &'static str {
        "Events with counts and first/last seen, warnings first."
    }
    async fn call(&self, ctx: &ToolContext, a: EventsArgs) -> Result<EventsOutput> {
        let c = ctx.cluster(a.cluster.as_deref())?;
        let ns = a.namespace.as_deref();
        let mut events = list_events(c, ns).await?;
        if let Some(n) = &a.name {
            events.retain(|e| &e.name == n);
        }
        if a.warnings_only == Some(true) {
            events.retain(|e| e.type_ == "Warning");
        }
        if events.is_empty()
            && let Some(n) = ns
            && !super::namespaces(c).await.iter().any(|k| k == n)
        {
            return Err(namespace_error(c, Some(n)).await);
        }
        Ok(EventsOutput {
            cluster: c.name.clone(),
            namespace: ns.map(str::to_string),
            events,
        })
    }
}
