//! Failure classes visible on pods: crash loops, image pulls, configuration, scheduling,
//! probes.

use super::{Analyzer, FindingBuilder, Observations, owner_target, pod_ref, pods};
use crate::protocol::{Confidence, Finding};
use medic_tools::k8s::tools::Summary;
use serde_json::json;

/// CrashLoopBackOff caused by OOMKilled.
struct CrashLoopOom;

impl Analyzer for CrashLoopOom {
    fn name(&self) -> &'static str {
        "crashloop-oom"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (item, pod) in pods(obs) {
            for c in &pod.containers {
                let oom = c.last_terminated.as_ref().is_some_and(|t| {
                    t.reason.as_deref() == Some("OOMKilled") || t.exit_code == 137
                }) || c.reason.as_deref() == Some("OOMKilled");
                // A past OOM on a container that is running and ready again is history.
                if !oom || c.restarts == 0 || (c.ready && c.state == "running") {
                    continue;
                }
                let limit = c.limits.memory_bytes;
                let target = owner_target(obs, &item, pod);
                out.push(
                    FindingBuilder::new(
                        self.name(),
                        &pod_ref(&item, pod),
                        format!(
                            "{}/{} container `{}` is OOMKilled ({} restarts)",
                            pod.namespace, pod.name, c.name, c.restarts
                        ),
                        format!(
                            "container `{}` exceeds its memory limit ({} MiB) and is killed by the kernel",
                            c.name,
                            limit >> 20
                        ),
                    )
                    .confidence(Confidence::HIGH)
                    .call(item.call_id, "k8s_list")
                    .suggest(
                        "raise-memory-limit",
                        json!({"container": c.name, "increase_percent": 100}),
                        target,
                    )
                    .build(),
                );
            }
        }
        out
    }
}

const CONFIG_ERROR_REASONS: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

/// Containers that cannot start because a ConfigMap / Secret / key is missing.
struct CrashLoopConfig;

impl Analyzer for CrashLoopConfig {
    fn name(&self) -> &'static str {
        "missing-config"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (item, pod) in pods(obs) {
            for c in &pod.containers {
                let Some(reason) = c.reason.as_deref() else {
                    continue;
                };
                if !CONFIG_ERROR_REASONS.contains(&reason) {
                    continue;
                }
                let msg = c.message.clone().unwrap_or_default();
                out.push(
                    FindingBuilder::new(
                        self.name(),
                        &pod_ref(&item, pod),
                        format!(
                            "{}/{} container `{}` cannot start: {reason}",
                            pod.namespace, pod.name, c.name
                        ),
                        format!("missing or invalid configuration referenced by the pod: {msg}"),
                    )
                    .confidence(Confidence::HIGH)
                    .call(item.call_id, "k8s_list")
                    .quote(msg)
                    .build(),
                );
            }
        }
        out
    }
}

/// CrashLoopBackOff with a non-OOM exit code.
struct CrashLoopExit;

impl Analyzer for CrashLoopExit {
    fn name(&self) -> &'static str {
        "crashloop"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (item, pod) in pods(obs) {
            for c in &pod.containers {
                if c.reason.as_deref() != Some("CrashLoopBackOff") {
                    continue;
                }
                let last = c.last_terminated.as_ref();
                if last
                    .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled") || t.exit_code == 137)
                {
                    continue; // crashloop-oom covers it
                }
                let code = last.map(|t| t.exit_code).unwrap_or(-1);
                let why = last
                    .and_then(|t| t.message.clone().or(t.reason.clone()))
                    .unwrap_or_default();
                let first = why
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                // A crash that names a configuration error points at what the pod reads.
                let config_error = is_config_error(&why);
                let root_cause = if config_error && !pod.configmaps.is_empty() {
                    format!(
                        "the process exits with code {code} on a configuration error ({first}); it reads ConfigMap {} — check what changed there",
                        pod.configmaps.join(", ")
                    )
                } else if first.is_empty() {
                    format!(
                        "the process exits with code {code} shortly after start; check its previous logs"
                    )
                } else {
                    format!("the process exits with code {code} shortly after start: {first}")
                };
                let mut b = FindingBuilder::new(
                    self.name(),
                    &pod_ref(&item, pod),
                    format!(
                        "{}/{} container `{}` is in CrashLoopBackOff (exit {code}, {} restarts)",
                        pod.namespace, pod.name, c.name, c.restarts
                    ),
                    root_cause,
                )
                .confidence(Confidence::MEDIUM)
                .call(item.call_id, "k8s_list")
                .quote(first.to_string());
                if config_error {
                    for cm in &pod.configmaps {
                        b = b.object(super::obj(
                            item.cluster,
                            "ConfigMap",
                            Some(&pod.namespace),
                            cm,
                        ));
                    }
                }
                // No remediation of its own: a bad rollout (its own class) is rolled back;
                // a crash on an unchanged template is not fixed by a rollback or restart.
                out.push(b.build());
            }
        }
        out
    }
}

/// Whether a crash message reports a configuration (parse / validation) error.
fn is_config_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "config",
        "yaml:",
        "json:",
        "toml:",
        "did not find expected",
        "cannot unmarshal",
        "parse error",
        "failed to parse",
    ]
    .iter()
    .any(|n| t.contains(n))
}

/// ImagePullBackOff / ErrImagePull.
struct ImagePull;

impl Analyzer for ImagePull {
    fn name(&self) -> &'static str {
        "image-pull"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (item, pod) in pods(obs) {
            for c in &pod.containers {
                if !matches!(
                    c.reason.as_deref(),
                    Some("ImagePullBackOff" | "ErrImagePull")
                ) {
                    continue;
                }
                out.push(
                    FindingBuilder::new(
                        self.name(),
                        &pod_ref(&item, pod),
                        format!("{}/{} cannot pull image `{}`", pod.namespace, pod.name, c.image),
                        format!(
                            "image `{}` cannot be pulled (wrong tag, missing image or registry credentials): {}",
                            c.image,
                            c.message.clone().unwrap_or_default()
                        ),
                    )
                    .confidence(Confidence::HIGH)
                    .call(item.call_id, "k8s_list")
                    .build(),
                );
            }
        }
        out
    }
}

/// Every pod analyzer.
pub(crate) fn all() -> Vec<Box<dyn Analyzer>> {
    vec![
        Box::new(CrashLoopOom),
        Box::new(CrashLoopConfig),
        Box::new(CrashLoopExit),
        Box::new(ImagePull),
        Box::new(Pending {
            class: "pending-cpu",
            needle: "insufficient cpu",
            cause: "no node has enough free CPU for the pod's requests",
        }),
        Box::new(Pending {
            class: "pending-memory",
            needle: "insufficient memory",
            cause: "no node has enough free memory for the pod's requests",
        }),
        Box::new(Pending {
            class: "pending-gpu",
            needle: "insufficient nvidia.com/gpu",
            cause: "no schedulable node has a free nvidia.com/gpu",
        }),
        Box::new(Pending {
            class: "pending-taint",
            needle: "untolerated taint",
            cause: "the nodes with room carry taints the pod does not tolerate",
        }),
        Box::new(Pending {
            class: "pending-affinity",
            needle: "didn't match pod's node affinity",
            cause: "no node matches the pod's node affinity / node selector",
        }),
        Box::new(Pending {
            class: "pending-pvc",
            needle: "unbound immediate persistentvolumeclaims",
            cause: "a PersistentVolumeClaim the pod mounts is not bound",
        }),
        Box::new(ProbeFailing),
    ]
}

/// Why a pending pod is not scheduled: its PodScheduled condition, else its latest
/// FailedScheduling event.
fn scheduling_message(
    obs: &Observations<'_>,
    cluster: &str,
    pod: &medic_tools::k8s::core::PodSummary,
) -> Option<String> {
    if let Some(c) = pod
        .conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        && let Some(m) = &c.message
    {
        return Some(m.clone());
    }
    super::events(obs)
        .find(|(_, cl, e)| {
            *cl == cluster
                && e.reason == "FailedScheduling"
                && e.kind == "Pod"
                && e.namespace == pod.namespace
                && e.name == pod.name
        })
        .map(|(_, _, e)| e.message.clone())
}

/// A pod stuck in Pending for one scheduling reason.
struct Pending {
    class: &'static str,
    needle: &'static str,
    cause: &'static str,
}

impl Analyzer for Pending {
    fn name(&self) -> &'static str {
        self.class
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        // One finding per owner (a Deployment's five Pending replicas are one problem).
        let mut groups: Vec<(String, Finding, usize)> = Vec::new();
        for (item, pod) in pods(obs) {
            if pod.phase != "Pending" || pod.node.is_some() {
                continue;
            }
            let Some(msg) = scheduling_message(obs, item.cluster, pod) else {
                continue;
            };
            if !msg.to_ascii_lowercase().contains(self.needle) {
                continue;
            }
            let owner = owner_target(obs, &item, pod);
            let key = owner
                .as_ref()
                .map_or_else(|| pod_ref(&item, pod).display(), |o| o.display());
            if let Some(g) = groups.iter_mut().find(|g| g.0 == key) {
                g.2 += 1;
                continue;
            }
            let subject = owner.clone().unwrap_or_else(|| pod_ref(&item, pod));
            let mut b = FindingBuilder::new(
                self.class,
                &subject,
                format!("{} has Pending pods: {}", subject.display(), self.needle),
                format!("{}: {msg}", self.cause),
            )
            .confidence(Confidence::HIGH)
            .call(item.call_id, "k8s_list")
            .object(pod_ref(&item, pod))
            .quote(msg.clone());
            if self.class == "pending-pvc" {
                for claim in &pod.pvcs {
                    b = b.object(super::obj(
                        item.cluster,
                        "PersistentVolumeClaim",
                        Some(&pod.namespace),
                        claim,
                    ));
                }
            }
            if self.class == "pending-taint" {
                // A healthy node left cordoned is the fixable case.
                // Never a node cordoned because its GPUs failed.
                if let Some((ni, n)) = super::nodes(obs).find(|(ni, n)| {
                    ni.cluster == item.cluster
                        && n.unschedulable
                        && n.ready
                        && !super::gpu::gpu_fault(obs, ni.cluster, &n.name)
                        && !super::nodes::draining(obs, ni.cluster, &n.name)
                }) {
                    b = b.suggest(
                        "uncordon",
                        json!({}),
                        Some(super::obj(ni.cluster, "Node", None, &n.name)),
                    );
                }
            }
            groups.push((key, b.build(), 1));
        }
        groups
            .into_iter()
            .map(|(_, mut f, n)| {
                if n > 1 {
                    f.summary = format!("{} ({n} pods)", f.summary);
                }
                f
            })
            .collect()
    }
}

/// Readiness / liveness probes failing (Unhealthy events, or running pods never Ready).
struct ProbeFailing;

impl Analyzer for ProbeFailing {
    fn name(&self) -> &'static str {
        "probe-failing"
    }
    fn analyze(&self, obs: &Observations<'_>) -> Vec<Finding> {
        let mut failing = Vec::new();
        for (item, pod) in pods(obs) {
            if pod.phase != "Running" || pod.ready {
                continue;
            }
            let ev = super::events(obs).find(|(_, cl, e)| {
                *cl == item.cluster
                    && e.reason == "Unhealthy"
                    && e.namespace == pod.namespace
                    && e.name == pod.name
            });
            if let Some((_, _, e)) = ev {
                failing.push((item, pod, e, owner_target(obs, &item, pod)));
            }
        }
        // Several replicas of one workload timing out together: it is overloaded (often
        // CPU-throttled), and more replicas help where a restart would not.
        let timeout = |m: &str| {
            let m = m.to_ascii_lowercase();
            m.contains("deadline exceeded") || m.contains("timeout") || m.contains("timed out")
        };
        let mut out = Vec::new();
        for (item, pod, e, target) in &failing {
            let kind = if e.message.to_ascii_lowercase().contains("liveness") {
                "liveness"
            } else {
                "readiness"
            };
            let overloaded = target
                .as_ref()
                .filter(|t| t.kind == "Deployment")
                .and_then(|t| {
                    let peers = failing
                        .iter()
                        .filter(|(_, _, pe, pt)| pt.as_ref() == Some(t) && timeout(&pe.message))
                        .count();
                    let autoscaled = obs.summaries().any(|i| {
                        matches!(i.summary, Summary::Hpa(h) if i.cluster == t.cluster
                        && Some(&h.namespace) == t.namespace.as_ref()
                        && h.target.rsplit('/').next() == Some(t.name.as_str()))
                    });
                    let desired = super::workloads(obs).find_map(|(wi, w)| {
                        (wi.cluster == t.cluster
                            && w.kind == "Deployment"
                            && Some(&w.namespace) == t.namespace.as_ref()
                            && w.name == t.name)
                            .then_some(w.desired)
                    })?;
                    (peers >= 2 && !autoscaled && desired > 0).then_some((peers, desired))
                });
            let mut root_cause = format!(
                "the {kind} probe fails, so the pod is not Ready: {}",
                e.message
            );
            if let Some((peers, _)) = overloaded {
                root_cause.push_str(&format!(
                    "; {peers} replicas time out together: the workload is overloaded (CPU throttled or short of replicas), not stuck"
                ));
            }
            let b = FindingBuilder::new(
                self.name(),
                &pod_ref(item, pod),
                format!(
                    "{}/{} fails its {kind} probe (x{})",
                    pod.namespace, pod.name, e.count
                ),
                root_cause,
            )
            .confidence(Confidence::MEDIUM)
            .call(item.call_id, "k8s_list")
            .quote(e.message.clone());
            let b = match overloaded {
                Some((_, desired)) => b.suggest(
                    "scale",
                    json!({"replicas": desired + (desired / 2).max(1)}),
                    target.clone(),
                ),
                None => b.suggest("rollout-restart", json!({}), target.clone()),
            };
            out.push(b.build());
        }
        out
    }
}
