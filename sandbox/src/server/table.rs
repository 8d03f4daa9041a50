//! `meta.k8s.io/v1` Table output for kubectl: pods, nodes, deployments, replicasets,
//! services, namespaces and events get their usual columns; everything else NAME / AGE.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::catalog::ResourceType;

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

/// Kubernetes' short human duration (`5s`, `3m20s`, `2h`, `4d`).
pub(crate) fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        return if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        return if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        return if h % 24 == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{}h", h / 24, h % 24)
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    format!("{}y", h / 24 / 365)
}

fn age(o: &Value, field: &str, now: DateTime<Utc>) -> String {
    o.pointer(field)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human(now - t.with_timezone(&Utc)))
        .unwrap_or_else(|| "<unknown>".into())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn pod_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let statuses = o["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = o["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let mut reason = o["status"]["reason"]
        .as_str()
        .or(o["status"]["phase"].as_str())
        .unwrap_or("Unknown")
        .to_string();
    for c in statuses.iter().rev() {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
            reason = r.to_string();
        } else if c["state"]["terminated"].is_object() {
            reason = format!("ExitCode:{}", n(&c["state"]["terminated"]["exitCode"]));
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    let restarts: i64 = statuses.iter().map(|c| n(&c["restartCount"])).sum();
    let last = statuses
        .iter()
        .filter_map(|c| c["lastState"]["terminated"]["finishedAt"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .max();
    let restarts = match last {
        Some(t) if restarts > 0 => {
            format!("{restarts} ({} ago)", human(now - t.with_timezone(&Utc)))
        }
        _ => restarts.to_string(),
    };
    vec![
        o["metadata"]["name"].clone(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        age(o, "/metadata/creationTimestamp", now).into(),
        o["status"]["podIP"].as_str().unwrap_or("<none>").into(),
        o["spec"]["nodeName"].as_str().unwrap_or("<none>").into(),
        o["status"]["nominatedNodeName"]
            .as_str()
            .unwrap_or("<none>")
            .into(),
        "<none>".into(),
    ]
}

fn node_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ready = o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready".to_string(),
        Some(false) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let addr = |ty: &str| {
        o["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == ty))
            .map(|x| s(&x["address"]))
            .unwrap_or_else(|| "<none>".into())
    };
    let info = &o["status"]["nodeInfo"];
    vec![
        o["metadata"]["name"].clone(),
        status.into(),
        if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }
        .into(),
        age(o, "/metadata/creationTimestamp", now).into(),
        s(&info["kubeletVersion"]).into(),
        addr("InternalIP").into(),
        addr("ExternalIP").into(),
        s(&info["osImage"]).into(),
        s(&info["kernelVersion"]).into(),
        s(&info["containerRuntimeVersion"]).into(),
    ]
}

fn images(o: &Value) -> (String, String) {
    let cs = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        cs.iter()
            .map(|c| s(&c["name"]))
            .collect::<Vec<_>>()
            .join(","),
        cs.iter()
            .map(|c| s(&c["image"]))
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn selector_text(o: &Value) -> String {
    o["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Columns and a row builder per kind.
type RowFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

fn layout(rt: &ResourceType) -> (Vec<Value>, RowFn) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
                col("Nominated Node", "string", 1),
                col("Readiness Gates", "string", 1),
            ],
            pod_cells,
        ),
        ("", "Node") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Roles", "string", 0),
                col("Age", "string", 0),
                col("Version", "string", 0),
                col("Internal-IP", "string", 1),
                col("External-IP", "string", 1),
                col("OS-Image", "string", 1),
                col("Kernel-Version", "string", 1),
                col("Container-Runtime", "string", 1),
            ],
            node_cells,
        ),
        ("apps", "Deployment") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o, now| {
                let (c, i) = images(o);
                vec![
                    o["metadata"]["name"].clone(),
                    format!(
                        "{}/{}",
                        n(&o["status"]["readyReplicas"]),
                        o["spec"]["replicas"].as_i64().unwrap_or(1)
                    )
                    .into(),
                    n(&o["status"]["updatedReplicas"]).into(),
                    n(&o["status"]["availableReplicas"]).into(),
                    age(o, "/metadata/creationTimestamp", now).into(),
                    c.into(),
                    i.into(),
                    selector_text(o).into(),
                ]
            },
        ),
        ("apps", "ReplicaSet") => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Age", "string", 0),
                col("Containers", "string", 1),
                col("Images", "string", 1),
                col("Selector", "string", 1),
            ],
            |o, now| {
                let (c, i) = images(o);
                vec![
                    o["metadata"]["name"].clone(),
                    n(&o["spec"]["replicas"]).into(),
                    n(&o["status"]["replicas"]).into(),
                    n(&o["status"]["readyReplicas"]).into(),
                    age(o, "/metadata/creationTimestamp", now).into(),
                    c.into(),
                    i.into(),
                    selector_text(o).into(),
                ]
            },
        ),
        ("", "Service") => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
            ],
            |o, now| {
                let ports = o["spec"]["ports"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}",
                                    s(&p["port"]),
                                    p["protocol"].as_str().unwrap_or("TCP")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                vec![
                    o["metadata"]["name"].clone(),
                    o["spec"]["type"].as_str().unwrap_or("ClusterIP").into(),
                    o["spec"]["clusterIP"].as_str().unwrap_or("<none>").into(),
                    "<none>".into(),
                    ports.into(),
                    age(o, "/metadata/creationTimestamp", now).into(),
                ]
            },
        ),
        ("", "Namespace") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            |o, now| {
                vec![
                    o["metadata"]["name"].clone(),
                    o["status"]["phase"].as_str().unwrap_or("Active").into(),
                    age(o, "/metadata/creationTimestamp", now).into(),
                ]
            },
        ),
        ("", "Event") => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ],
            |o, now| {
                let last = if o["lastTimestamp"].is_string() {
                    age(o, "/lastTimestamp", now)
                } else {
                    age(o, "/eventTime", now)
                };
                vec![
                    last.into(),
                    s(&o["type"]).into(),
                    s(&o["reason"]).into(),
                    format!(
                        "{}/{}",
                        s(&o["involvedObject"]["kind"]).to_lowercase(),
                        s(&o["involvedObject"]["name"])
                    )
                    .into(),
                    s(&o["message"]).into(),
                ]
            },
        ),
        _ => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            |o, now| {
                vec![
                    o["metadata"]["name"].clone(),
                    age(o, "/metadata/creationTimestamp", now).into(),
                ]
            },
        ),
    }
}

pub(crate) fn render(
    rt: &ResourceType,
    items: &[Arc<Value>],
    resource_version: &str,
    cont: Option<String>,
    include_object: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let (columns, row) = layout(rt);
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = match include_object {
                Some("None") => Value::Null,
                Some("Object") => super::read::present(rt, o).into_owned(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()}),
            };
            json!({"cells": row(o, now), "object": object})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(c) = cont.filter(|c| !c.is_empty()) {
        metadata["continue"] = c.into();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let d = chrono::Duration::seconds;
        assert_eq!(human(d(5)), "5s");
        assert_eq!(human(d(200)), "3m20s");
        assert_eq!(human(d(3600)), "60m");
        assert_eq!(human(d(5 * 3600)), "5h");
        assert_eq!(human(d(86400)), "24h");
        assert_eq!(human(d(3 * 86400 + 3600)), "3d1h");
    }
}
