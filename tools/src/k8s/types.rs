//! Small shared types: conditions, resource amounts, quantities, times.

use crate::redact::clean;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A status condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Condition type (`Ready`, `Available`, …).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Message (cleaned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Last transition (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Condition {
    /// `Type=Status (Reason: message)`.
    pub fn line(&self) -> String {
        let mut s = format!("{}={}", self.type_, self.status);
        match (&self.reason, &self.message) {
            (Some(r), Some(m)) => s.push_str(&format!(" ({r}: {})", short(m, 160))),
            (Some(r), None) => s.push_str(&format!(" ({r})")),
            (None, Some(m)) => s.push_str(&format!(" ({})", short(m, 160))),
            _ => {}
        }
        s
    }

    /// From a JSON condition object (CRDs).
    pub fn from_json(v: &Value) -> Option<Condition> {
        Some(Condition {
            type_: v.get("type")?.as_str()?.to_string(),
            status: str_at(v, &["status"]).unwrap_or_else(|| "Unknown".into()),
            reason: str_at(v, &["reason"]).filter(|s| !s.is_empty()),
            message: str_at(v, &["message"])
                .filter(|s| !s.is_empty())
                .map(|m| clean(&m)),
            since: str_at(v, &["lastTransitionTime"]),
        })
    }

    /// All conditions under `status.conditions` of a JSON object.
    pub fn all_json(obj: &Value) -> Vec<Condition> {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Condition::from_json).collect())
            .unwrap_or_default()
    }
}

/// A string or an optional string (k8s-openapi uses both for condition fields).
pub trait StrLike {
    /// The text, empty when absent.
    fn text(&self) -> &str;
}
impl StrLike for String {
    fn text(&self) -> &str {
        self
    }
}
impl StrLike for Option<String> {
    fn text(&self) -> &str {
        self.as_deref().unwrap_or("")
    }
}

/// Build a condition from typed fields.
pub fn cond(
    type_: &impl StrLike,
    status: &impl StrLike,
    reason: Option<&String>,
    message: Option<&String>,
    since: Option<&Time>,
) -> Condition {
    Condition {
        type_: type_.text().to_string(),
        status: status.text().to_string(),
        reason: reason.filter(|s| !s.is_empty()).cloned(),
        message: message.filter(|s| !s.is_empty()).map(|m| clean(m)),
        since: since.map(time),
    }
}

/// Amounts of the resources scheduling cares about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// `nvidia.com/gpu` (plus `amd.com/gpu`) devices.
    pub gpu: u64,
    /// Other extended resources (MIG profiles such as `nvidia.com/mig-1g.10gb`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended: BTreeMap<String, u64>,
}

impl Resources {
    /// From a resource list (requests, limits, capacity).
    pub fn from_map(m: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (k, q) in m.into_iter().flatten() {
            let v = parse_quantity(&q.0);
            match k.as_str() {
                "cpu" => r.cpu_milli = (v * 1000.0).round() as u64,
                "memory" => r.memory_bytes = v as u64,
                "nvidia.com/gpu" | "amd.com/gpu" => r.gpu += v as u64,
                "pods" | "ephemeral-storage" => {}
                k if k.starts_with("hugepages-") => {}
                k => {
                    r.extended.insert(k.to_string(), v as u64);
                }
            }
        }
        r
    }

    /// Add another amount.
    pub fn add(&mut self, o: &Resources) {
        self.cpu_milli += o.cpu_milli;
        self.memory_bytes += o.memory_bytes;
        self.gpu += o.gpu;
        for (k, v) in &o.extended {
            *self.extended.entry(k.clone()).or_default() += v;
        }
    }

    /// `cpu 1500m mem 2.0Gi gpu 1`.
    pub fn line(&self) -> String {
        let mut s = format!("cpu {}m mem {}", self.cpu_milli, bytes(self.memory_bytes));
        if self.gpu > 0 {
            s.push_str(&format!(" gpu {}", self.gpu));
        }
        for (k, v) in &self.extended {
            s.push_str(&format!(" {k} {v}"));
        }
        s
    }
}

/// Parse a Kubernetes quantity (`100m`, `1.5`, `512Mi`, `2G`, `1e3`) into base units.
pub fn parse_quantity(s: &str) -> f64 {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().unwrap_or(0.0);
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        e if e.starts_with('e') || e.starts_with('E') => 10f64.powi(e[1..].parse().unwrap_or(0)),
        _ => 1.0,
    };
    n * mult
}

/// Bytes as `1.5Gi`.
pub fn bytes(b: u64) -> String {
    let gi = 1024.0 * 1024.0 * 1024.0;
    let b = b as f64;
    if b >= gi {
        format!("{:.1}Gi", b / gi)
    } else {
        format!("{:.0}Mi", b / (1024.0 * 1024.0))
    }
}

/// RFC 3339 text of a Kubernetes time.
pub fn time(t: &Time) -> String {
    t.0.to_string()
}

/// A string at a JSON path.
pub fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer at a JSON path.
pub fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_i64()
        .or_else(|| cur.as_str().and_then(|s| s.parse().ok()))
}

/// Shorten text to `n` characters, marking the cut.
pub fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Labels worth showing (placement, app identity), values cleaned.
pub fn key_labels(labels: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    const KEEP: &[&str] = &[
        "app",
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "node.kubernetes.io/instance-type",
        "kubernetes.azure.com/agentpool",
        "agentpool",
        "argocd.argoproj.io/instance",
        "residency",
        "medic.dev/repo",
    ];
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| KEEP.contains(&k.as_str()) || k.starts_with("nvidia.com/"))
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}

/// Annotations worth showing, cleaned; `last-applied-configuration` is dropped as noise.
pub fn annotations(a: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    a.into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
        .map(|(k, v)| (k.clone(), short(&crate::redact::clean_named(k, v), 300)))
        .collect()
}

/// When an object was last written in a way that touched one of `fields` (top-level keys
/// such as `data` or `spec`), read from its `metadata.managedFields` JSON: `(time RFC 3339,
/// field manager)`. An entry without `fieldsV1` counts (what it touched is unknown); with
/// `fields` empty every entry counts. `None` when the object carries no managed fields.
pub fn last_write(managed_fields: Option<&Value>, fields: &[&str]) -> Option<(String, String)> {
    let mut best: Option<(chrono::DateTime<chrono::Utc>, String, String)> = None;
    for e in managed_fields
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(t) = e.get("time").and_then(Value::as_str) else {
            continue;
        };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) else {
            continue;
        };
        let touched = fields.is_empty()
            || match e.get("fieldsV1").and_then(Value::as_object) {
                None => true,
                Some(f) => fields.iter().any(|k| f.contains_key(&format!("f:{k}"))),
            };
        if touched && best.as_ref().is_none_or(|b| at > b.0) {
            let manager = e.get("manager").and_then(Value::as_str).unwrap_or("");
            best = Some((
                at.with_timezone(&chrono::Utc),
                t.to_string(),
                clean(manager),
            ));
        }
    }
    best.map(|(_, t, m)| (t, m))
}

/// [`last_write`] over typed object metadata.
pub fn last_write_meta(
    md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    fields: &[&str],
) -> Option<(String, String)> {
    let mf = serde_json::to_value(md.managed_fields.as_ref()?).ok()?;
    last_write(Some(&mf), fields)
}

/// Render a map as `k=v, …`.
pub fn kv(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How healthy an object looks, for ordering (problems first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Failing.
    Broken,
    /// Partly working or progressing.
    Degraded,
    /// Fine.
    Healthy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_write_counts_only_the_fields_asked_for() {
        let mf = serde_json::json!([
            {"manager": "kubectl-edit", "time": "2026-11-18T19:22:46Z", "fieldsV1": {"f:data": {"f:router.yaml": {}}}},
            {"manager": "labeler", "time": "2026-11-18T20:00:00Z", "fieldsV1": {"f:metadata": {"f:labels": {}}}},
            {"manager": "old", "time": "2026-05-02T09:00:00Z", "fieldsV1": {"f:data": {}}}
        ]);
        assert_eq!(
            last_write(Some(&mf), &["data"]),
            Some(("2026-11-18T19:22:46Z".into(), "kubectl-edit".into()))
        );
        assert_eq!(
            last_write(Some(&mf), &[]).map(|w| w.1).as_deref(),
            Some("labeler")
        );
        assert_eq!(last_write(Some(&mf), &["spec"]), None);
        assert_eq!(last_write(None, &["data"]), None);
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), 0.1);
        assert_eq!(parse_quantity("2"), 2.0);
        assert_eq!(parse_quantity("512Mi"), 512.0 * 1024.0 * 1024.0);
        assert_eq!(parse_quantity("1G"), 1e9);
        assert_eq!(parse_quantity("1e3"), 1000.0);
    }
}
