//! Reading live state for the executor: preconditions, wait / post-check conditions (polled
//! with backoff), and "did this step already take effect?" for resuming after a crash.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Result;
use crate::github::GitHub;
use crate::kube::{ClusterConn, Clusters, at_path};
use crate::playbooks::pod_ready;
use crate::step::{Check, ObjectRef, Operation, PatchBody, Step};

/// Compares a pinned reference with live state. `Ok(None)` when it still matches,
/// `Ok(Some(why))` when it changed or is gone.
pub(crate) async fn unchanged(conn: &ClusterConn, r: &ObjectRef) -> Result<Option<String>> {
    let live = conn
        .get(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name)
        .await?;
    let Some(live) = live else {
        return Ok(Some(format!(
            "{} no longer exists on {}",
            r.display(),
            conn.spec.name
        )));
    };
    let uid = live["metadata"]["uid"].as_str();
    if let Some(want) = &r.uid
        && uid != Some(want.as_str())
    {
        return Ok(Some(format!(
            "{} was re-created (uid {} instead of {want})",
            r.display(),
            uid.unwrap_or("?")
        )));
    }
    let rv = live["metadata"]["resourceVersion"].as_str();
    if let Some(want) = &r.resource_version
        && rv != Some(want.as_str())
    {
        return Ok(Some(format!(
            "{} changed since the plan was made (resourceVersion {} instead of {want})",
            r.display(),
            rv.unwrap_or("?")
        )));
    }
    Ok(None)
}

/// Evaluates a condition once, as medic. Returns whether it holds and what was seen.
pub(crate) async fn evaluate(conn: &ClusterConn, check: &Check) -> Result<(bool, String)> {
    match check {
        Check::FieldEquals {
            target,
            path,
            value,
        } => {
            let live = get_ref(conn, target).await?;
            let found = live
                .as_ref()
                .map(|o| at_path(o, path).clone())
                .unwrap_or(Value::Null);
            Ok((&found == value, format!("{path} is {found}")))
        }
        Check::FieldAtLeast {
            target,
            path,
            value,
        } => {
            let live = get_ref(conn, target).await?;
            let found = live
                .as_ref()
                .and_then(|o| at_path(o, path).as_i64())
                .unwrap_or(0);
            Ok((found >= *value, format!("{path} is {found}")))
        }
        Check::RolloutComplete {
            deployment,
            replicas,
        } => {
            let Some(d) = get_ref(conn, deployment).await? else {
                return Ok((false, "the Deployment is gone".into()));
            };
            let s = &d["status"];
            let n = |k: &str| s[k].as_i64().unwrap_or(0);
            let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
            let observed = s["observedGeneration"].as_i64().unwrap_or(0);
            let done = observed >= generation
                && n("updatedReplicas") >= *replicas
                && n("readyReplicas") >= *replicas
                && n("availableReplicas") >= *replicas
                && n("unavailableReplicas") == 0;
            Ok((
                done,
                format!(
                    "observedGeneration {observed}/{generation}, updated {}, ready {}, available {}, unavailable {}",
                    n("updatedReplicas"),
                    n("readyReplicas"),
                    n("availableReplicas"),
                    n("unavailableReplicas")
                ),
            ))
        }
        Check::ReadyPodsElsewhere {
            namespace,
            selector,
            avoid_node,
            min,
            max_on_node,
        } => {
            let pods = conn
                .list("v1", "Pod", Some(namespace), Some(selector), None)
                .await?;
            let on_node = pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == avoid_node.as_str())
                .count() as i64;
            let ready = pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] != avoid_node.as_str() && pod_ready(p))
                .count() as i64;
            Ok((
                on_node <= *max_on_node && ready >= *min,
                format!("{ready} Ready elsewhere, {on_node} still on {avoid_node}"),
            ))
        }
        Check::Gone { target } => {
            let live = get_ref(conn, target).await?;
            let detail = match &live {
                None => "not found".to_owned(),
                Some(o) if gone(target, Some(o)) => "re-created under another uid".to_owned(),
                Some(o) => match o["metadata"]["deletionTimestamp"].as_str() {
                    Some(t) => format!("still terminating (deletion requested at {t})"),
                    None => "still present".to_owned(),
                },
            };
            Ok((gone(target, live.as_ref()), detail))
        }
    }
}

/// True when `r` is gone: absent, or present under another uid than the pinned one.
fn gone(r: &ObjectRef, live: Option<&Value>) -> bool {
    match live {
        None => true,
        Some(live) => r
            .uid
            .as_deref()
            .is_some_and(|u| live["metadata"]["uid"] != u),
    }
}

async fn get_ref(conn: &ClusterConn, r: &ObjectRef) -> Result<Option<Value>> {
    conn.get(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name)
        .await
}

/// Polls a condition with backoff until it holds or `deadline` passes. Errors while
/// reading count as "not yet" (the API may be briefly unavailable); the last one is reported.
pub(crate) async fn poll(conn: &ClusterConn, check: &Check, deadline: Duration) -> (bool, String) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let (ok, detail) = match evaluate(conn, check).await {
            Ok(r) => r,
            Err(e) => (false, format!("could not read: {e}")),
        };
        if ok {
            return (true, detail);
        }
        if start.elapsed() >= deadline {
            return (false, format!("{detail} after {}s", deadline.as_secs()));
        }
        let left = deadline.saturating_sub(start.elapsed());
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn without_tests(ops: &Value) -> Value {
    Value::Array(
        ops.as_array()
            .map(|a| a.iter().filter(|o| o["op"] != "test").cloned().collect())
            .unwrap_or_default(),
    )
}

/// True when applying `patch` to `live` changes nothing: the patch already took effect.
fn patch_holds(live: &Value, patch: &PatchBody) -> bool {
    let mut after = live.clone();
    match patch {
        PatchBody::Merge(b) | PatchBody::Strategic(b) | PatchBody::Apply(b) => {
            json_patch::merge(&mut after, b)
        }
        PatchBody::Json(ops) => {
            let Ok(p) = serde_json::from_value::<json_patch::Patch>(without_tests(ops)) else {
                return false;
            };
            if json_patch::patch(&mut after, &p).is_err() {
                return false;
            }
        }
    }
    &after == live
}

/// After a crash between an intent record and its outcome: did the step take effect?
pub(crate) async fn effect_observed(
    clusters: &Clusters,
    github: Option<&GitHub>,
    step: &Step,
) -> Result<bool> {
    let conn = clusters.get(&step.cluster)?;
    Ok(match &step.op {
        Operation::Patch { target, patch, .. } => match get_ref(conn, target).await? {
            Some(live) => patch_holds(&live, patch),
            None => false,
        },
        Operation::Cordon { node, set_taints } | Operation::Uncordon { node, set_taints } => {
            let Some(live) = get_ref(conn, node).await? else {
                return Ok(false);
            };
            let cordon = matches!(step.op, Operation::Cordon { .. });
            let state_ok = (live["spec"]["unschedulable"] == true) == cordon;
            let taints_ok = set_taints.as_ref().is_none_or(|ts| {
                let have = live["spec"]["taints"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                have.len() == ts.len()
                    && ts.iter().all(|t| {
                        have.iter()
                            .any(|h| h["key"] == t.key.as_str() && h["effect"] == t.effect.as_str())
                    })
            });
            state_ok && taints_ok
        }
        Operation::Evict { pod } | Operation::Delete { target: pod } => {
            gone(pod, get_ref(conn, pod).await?.as_ref())
        }
        Operation::Scale {
            target, replicas, ..
        } => get_ref(conn, target)
            .await?
            .is_some_and(|d| d["spec"]["replicas"].as_i64() == Some(*replicas)),
        Operation::SetRouteWeights { route, weights } => match get_ref(conn, route).await? {
            Some(live) => weights.iter().all(|w| {
                at_path(
                    &live,
                    &format!("spec.rules.{}.backendRefs.{}.weight", w.rule, w.backend),
                )
                .as_i64()
                    == Some(w.weight)
            }),
            None => false,
        },
        Operation::Create { object } => {
            let r = ObjectRef::of(object);
            get_ref(conn, &r).await?.is_some()
        }
        Operation::WaitFor { .. } => false,
        Operation::RevertPullRequest(pr) => match github {
            Some(gh) => gh.find_pull(&pr.repo, &pr.branch).await?.is_some(),
            None => false,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_holds_only_when_already_applied() {
        let live = json!({"spec": {"template": {"spec": {"image": "v1"}}, "replicas": 3}});
        assert!(patch_holds(
            &live,
            &PatchBody::Merge(json!({"spec": {"replicas": 3}}))
        ));
        assert!(!patch_holds(
            &live,
            &PatchBody::Merge(json!({"spec": {"replicas": 4}}))
        ));
        let ops = json!([{"op": "test", "path": "/spec/replicas", "value": 9}, {"op": "replace", "path": "/spec/template/spec/image", "value": "v1"}]);
        assert!(patch_holds(&live, &PatchBody::Json(ops)));
        let ops = json!([{"op": "replace", "path": "/spec/template/spec/image", "value": "v2"}]);
        assert!(!patch_holds(&live, &PatchBody::Json(ops)));
    }
}
