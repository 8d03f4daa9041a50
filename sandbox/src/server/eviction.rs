//! The Eviction subresource: deletes a pod unless that would break a PodDisruptionBudget.

use axum::response::Response;
use serde_json::{Value, json};

use super::handler::{Req, Target};
use super::state::{ClusterState, meta_str};
use super::status::{ApiError, ApiResult, json_response, success};
use super::write::check_preconditions;
use crate::selector::LabelSelector;

fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// `intstr` scaled against `total` (percentages round up, as Kubernetes does).
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.parse::<i64>().ok().map(|p| (p * total + 99) / 100),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// (budget name, desired healthy, currently healthy) for each PDB covering the pod.
fn budgets(c: &ClusterState, pod: &Value) -> Vec<(String, i64, i64)> {
    let ns = meta_str(pod, "namespace");
    let pods: Vec<&Value> = c.scan("/pods", Some(ns)).map(|(_, p)| p.as_ref()).collect();
    c.scan("policy/poddisruptionbudgets", Some(ns))
        .filter_map(|(_, pdb)| {
            let sel = LabelSelector::from_object(&pdb["spec"]["selector"]);
            if sel.is_empty() || !sel.matches(pod) {
                return None;
            }
            let covered: Vec<&&Value> = pods.iter().filter(|p| sel.matches(p)).collect();
            let expected = covered.len() as i64;
            let healthy = covered.iter().filter(|p| is_ready(p)).count() as i64;
            let desired = if let Some(min) = scaled(&pdb["spec"]["minAvailable"], expected) {
                min
            } else if let Some(max) = scaled(&pdb["spec"]["maxUnavailable"], expected) {
                expected - max
            } else {
                return None;
            };
            Some((meta_str(pdb, "name").to_string(), desired, healthy))
        })
        .collect()
}

pub(crate) fn evict(req: &Req, t: &Target) -> ApiResult<Response> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding Eviction: {e}")))?
    };
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != t.name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {} vs {}",
            t.name, body_name
        )));
    }
    let options = &body["deleteOptions"];
    let dry = req.dry_run
        || options["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let mut world = req.shared.world();
    let c = &mut world.clusters[req.cluster];
    let pod = c
        .get(&t.rt, &t.namespace, &t.name)
        .ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    check_preconditions(&t.rt, &t.name, options, &pod)?;
    // Pods that are not Ready can always go: evicting them does not reduce availability.
    if is_ready(&pod) {
        let found = budgets(c, &pod);
        if found.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some((name, desired, healthy)) = found.first()
            && healthy - desired <= 0
        {
            return Err(ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                json!([{"reason": "DisruptionBudget", "message": format!("The disruption budget {name} needs {desired} healthy pods and has {healthy} currently")}]),
            ));
        }
    }
    if !dry {
        c.remove(&t.rt, &t.namespace, &t.name, false);
    }
    Ok(json_response(201, &success(201, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&json!("50%"), 3), Some(2));
        assert_eq!(scaled(&json!(2), 3), Some(2));
        assert_eq!(scaled(&json!("1"), 3), Some(1));
    }
}
