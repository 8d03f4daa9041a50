//! Human-readable diffs of one object before and after a (dry-run) change.

use serde_json::Value;
use similar::TextDiff;

/// Metadata that changes on every write and would only add noise to a diff.
const NOISE: &[&str] = &[
    "resourceVersion",
    "managedFields",
    "generation",
    "creationTimestamp",
    "uid",
];

fn clean(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in NOISE {
            meta.shift_remove(*k);
        }
    }
    v
}

fn yaml(v: &Value) -> String {
    serde_yaml::to_string(&clean(v)).unwrap_or_else(|_| v.to_string())
}

/// A unified diff of `before` → `after` rendered as YAML, labelled with `label`
/// (e.g. `Node gpu-node-3`). Empty when nothing changes.
pub(crate) fn unified(label: &str, before: &Value, after: &Value) -> String {
    let (a, b) = (yaml(before), yaml(after));
    if a == b {
        return String::new();
    }
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header(&format!("{label} (live)"), &format!("{label} (after)"))
        .to_string()
}

/// A diff for an object that goes away (eviction, delete).
pub(crate) fn removed(label: &str, summary: &str) -> String {
    format!("--- {label} (live)\n+++ {label} (after)\n-{summary}\n")
}

/// A diff for an object that appears (create).
pub(crate) fn created(label: &str, after: &Value) -> String {
    let b = yaml(after);
    let mut out = format!("--- {label} (absent)\n+++ {label} (after)\n");
    for line in b.lines() {
        out.push('+');
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_shows_only_the_change() {
        let before =
            json!({"metadata": {"name": "n", "resourceVersion": "1"}, "spec": {"a": 1, "b": 2}});
        let after =
            json!({"metadata": {"name": "n", "resourceVersion": "2"}, "spec": {"a": 1, "b": 3}});
        let d = unified("Node n", &before, &after);
        assert!(d.contains("-  b: 2"), "{d}");
        assert!(d.contains("+  b: 3"), "{d}");
        assert!(!d.contains("resourceVersion"));
        assert_eq!(unified("Node n", &before, &before), "");
    }
}
