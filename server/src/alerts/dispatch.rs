//! From alert batches to investigations: de-duplication by fingerprint, grouping by group
//! key, one investigation per group at a time, a bounded queue with backpressure, the spend
//! cap, and resolved alerts closing or annotating their investigation.
//!
//! A group's life: new firing alerts queue an investigation (503 + Retry-After when the
//! queue is full, and then nothing is remembered, so the sender's retry is not a
//! duplicate); alerts that join while it is queued are folded in; alerts that join while it
//! runs, or soon after, are added to its thread; when every alert of the group resolved, a
//! running investigation is cancelled and the thread says so. A group investigated longer
//! ago than `reinvestigate_after_secs`, or fully resolved, gets a fresh investigation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::chat::Surface;
use crate::engine::Origin;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert as the receivers normalise it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlertItem {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
}

/// One webhook's alerts, all of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlertBatch {
    pub origin: Origin,
    pub group_key: String,
    pub common_labels: BTreeMap<String, String>,
    pub alerts: Vec<AlertItem>,
    /// Source fields worth keeping (external URL, incident link, annotations).
    #[serde(default)]
    pub extra: Value,
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Admission {
    Accepted {
        new: usize,
        duplicate: usize,
        resolved: usize,
    },
    Busy {
        retry_after: Duration,
        reason: &'static str,
    },
}

/// Work the caller does after the lock is released.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Followup {
    Annotate(Surface, String),
    Cancel(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Queued,
    Running,
    Finished(Instant),
}

#[derive(Debug)]
struct Group {
    origin: Origin,
    phase: Phase,
    common_labels: BTreeMap<String, String>,
    alerts: BTreeMap<String, AlertItem>,
    extra: Value,
    thread: Option<Surface>,
    generation: u64,
    interrupted: bool,
}

impl Group {
    fn all_resolved(&self) -> bool {
        !self.alerts.is_empty()
            && self
                .alerts
                .values()
                .all(|a| a.status == AlertStatus::Resolved)
    }
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, Group>,
    seen: HashMap<String, Instant>,
}

/// A job for a worker: the group and everything needed to start its session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    pub group_key: String,
    pub session_key: String,
    pub origin: Origin,
    pub common_labels: BTreeMap<String, String>,
    pub alerts: Vec<AlertItem>,
    pub extra: Value,
}

/// Limits the dispatcher works with (from the reloadable configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub dedup_ttl: Duration,
    pub reinvestigate_after: Duration,
}

/// The alert dispatcher.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    state: Mutex<State>,
    tx: mpsc::Sender<String>,
    pub(crate) rx: tokio::sync::Mutex<mpsc::Receiver<String>>,
    queued: AtomicUsize,
}

fn session_key(origin: &Origin, group: &str, generation: u64) -> String {
    let o = match origin {
        Origin::Alertmanager => "alertmanager",
        Origin::Pagerduty => "pagerduty",
        Origin::Slack => "slack",
        Origin::Teams => "teams",
    };
    format!("alert:{o}:{group}#{generation}")
}

impl Dispatcher {
    pub fn new(queue_size: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue_size.max(1));
        Dispatcher {
            state: Mutex::new(State::default()),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            queued: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Groups waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Takes a batch. `spend_wait` is `Some` when the spend cap blocks new investigations.
    pub fn submit(
        &self,
        batch: AlertBatch,
        limits: Limits,
        spend_wait: Option<Duration>,
    ) -> (Admission, Vec<Followup>) {
        let now = Instant::now();
        let mut st = self.state();
        if st.seen.len() > 100_000 {
            st.seen.retain(|_, until| *until > now);
        }
        let mut fresh: Vec<AlertItem> = Vec::new();
        let mut duplicate = 0;
        let mut resolved: Vec<AlertItem> = Vec::new();
        for a in batch.alerts {
            let key = match a.status {
                AlertStatus::Firing => format!("{}@{}", a.fingerprint, a.starts_at),
                AlertStatus::Resolved => format!("{}@{}/resolved", a.fingerprint, a.starts_at),
            };
            if st.seen.get(&key).is_some_and(|until| *until > now)
                || fresh
                    .iter()
                    .chain(&resolved)
                    .any(|f| f.fingerprint == a.fingerprint && f.status == a.status)
            {
                duplicate += 1;
                continue;
            }
            match a.status {
                AlertStatus::Firing => fresh.push(a),
                AlertStatus::Resolved => resolved.push(a),
            }
        }
        let mut followups = Vec::new();
        let group_key = batch.group_key.clone();
        let needs_new = match st.groups.get(&group_key) {
            None => !fresh.is_empty(),
            Some(g) => {
                !fresh.is_empty()
                    && match g.phase {
                        Phase::Finished(at) => {
                            g.all_resolved() || now.duration_since(at) >= limits.reinvestigate_after
                        }
                        _ => false,
                    }
            }
        };
        if needs_new {
            if let Some(wait) = spend_wait {
                return (
                    Admission::Busy {
                        retry_after: wait,
                        reason: "spend_cap",
                    },
                    followups,
                );
            }
            if self.tx.try_send(group_key.clone()).is_err() {
                return (
                    Admission::Busy {
                        retry_after: Duration::from_secs(30),
                        reason: "queue_full",
                    },
                    followups,
                );
            }
            self.queued.fetch_add(1, Ordering::SeqCst);
            let generation = st
                .groups
                .get(&group_key)
                .map(|g| g.generation + 1)
                .unwrap_or(1);
            st.groups.insert(
                group_key.clone(),
                Group {
                    origin: batch.origin.clone(),
                    phase: Phase::Queued,
                    common_labels: batch.common_labels.clone(),
                    alerts: BTreeMap::new(),
                    extra: batch.extra.clone(),
                    thread: None,
                    generation,
                    interrupted: false,
                },
            );
        }
        let (n_new, n_resolved) = (fresh.len(), resolved.len());
        for a in fresh.iter().chain(&resolved) {
            let key = match a.status {
                AlertStatus::Firing => format!("{}@{}", a.fingerprint, a.starts_at),
                AlertStatus::Resolved => format!("{}@{}/resolved", a.fingerprint, a.starts_at),
            };
            st.seen.insert(key, now + limits.dedup_ttl);
        }
        if let Some(g) = st.groups.get_mut(&group_key) {
            let joined: Vec<String> = fresh
                .iter()
                .filter(|a| !g.alerts.contains_key(&a.fingerprint))
                .map(describe)
                .collect();
            for a in fresh.into_iter().chain(resolved) {
                g.alerts.insert(a.fingerprint.clone(), a);
            }
            if !needs_new
                && !joined.is_empty()
                && g.phase != Phase::Queued
                && let Some(t) = &g.thread
            {
                let mut text = format!(
                    "{} more alert(s) joined this group: {}",
                    joined.len(),
                    joined
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                if joined.len() > 5 {
                    text.push_str(&format!("; … {} more", joined.len() - 5));
                }
                followups.push(Followup::Annotate(t.clone(), text));
            }
            if n_resolved > 0 && g.all_resolved() {
                let key = session_key(&g.origin, &group_key, g.generation);
                match g.phase {
                    Phase::Running => {
                        followups.push(Followup::Cancel(key));
                        if let Some(t) = &g.thread {
                            followups.push(Followup::Annotate(t.clone(), "Every alert of this group resolved; the investigation was stopped.".into()));
                        }
                    }
                    Phase::Finished(_) => {
                        if let Some(t) = &g.thread {
                            followups.push(Followup::Annotate(
                                t.clone(),
                                "Every alert of this group resolved.".into(),
                            ));
                        }
                    }
                    Phase::Queued => {}
                }
            }
        }
        (
            Admission::Accepted {
                new: n_new,
                duplicate,
                resolved: n_resolved,
            },
            followups,
        )
    }

    /// A worker took `group_key` off the queue: the job to run, or `None` when the group
    /// resolved before it started.
    pub fn begin(&self, group_key: &str) -> Option<Job> {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let mut st = self.state();
        let g = st.groups.get_mut(group_key)?;
        if g.all_resolved() {
            g.phase = Phase::Finished(Instant::now());
            return None;
        }
        g.phase = Phase::Running;
        Some(Job {
            group_key: group_key.to_owned(),
            session_key: session_key(&g.origin, group_key, g.generation),
            origin: g.origin.clone(),
            common_labels: g.common_labels.clone(),
            alerts: g
                .alerts
                .values()
                .filter(|a| a.status == AlertStatus::Firing)
                .cloned()
                .collect(),
            extra: g.extra.clone(),
        })
    }

    /// The investigation of `group_key` finished (`interrupted`: cancelled by shutdown).
    pub fn finish(&self, group_key: &str, interrupted: bool) {
        let mut st = self.state();
        if let Some(g) = st.groups.get_mut(group_key) {
            g.phase = Phase::Finished(Instant::now());
            g.interrupted = interrupted;
        }
    }

    /// The session posted its first message here.
    pub fn set_thread(&self, group_key: &str, thread: Surface) {
        if let Some(g) = self.state().groups.get_mut(group_key) {
            g.thread = Some(thread);
        }
    }

    /// Groups that still need an investigation (queued, or interrupted by shutdown), as
    /// batches that can be submitted again after a restart.
    pub fn checkpoint(&self) -> Vec<AlertBatch> {
        let st = self.state();
        let mut out: Vec<AlertBatch> = st
            .groups
            .iter()
            .filter(|(_, g)| {
                !g.all_resolved()
                    && (g.phase == Phase::Queued || g.interrupted || g.phase == Phase::Running)
            })
            .map(|(k, g)| AlertBatch {
                origin: g.origin.clone(),
                group_key: k.clone(),
                common_labels: g.common_labels.clone(),
                alerts: g.alerts.values().cloned().collect(),
                extra: g.extra.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        out
    }
}

/// `alertname` plus the most telling labels, for thread notes and titles.
pub(crate) fn describe(a: &AlertItem) -> String {
    let name = a
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| "alert".into());
    let mut parts = Vec::new();
    for k in [
        "namespace",
        "pod",
        "node",
        "deployment",
        "service",
        "cluster",
    ] {
        if let Some(v) = a.labels.get(k) {
            parts.push(format!("{k}={v}"));
        }
    }
    if parts.is_empty() {
        name
    } else {
        format!("{name} ({})", parts.join(", "))
    }
}

/// The investigation title of a job.
pub(crate) fn title(job: &Job) -> String {
    let name = job
        .common_labels
        .get("alertname")
        .cloned()
        .or_else(|| {
            job.alerts
                .first()
                .and_then(|a| a.labels.get("alertname").cloned())
        })
        .unwrap_or_else(|| "alert".into());
    let mut scope = Vec::new();
    for k in ["cluster", "namespace", "service", "node"] {
        if let Some(v) = job.common_labels.get(k) {
            scope.push(format!("{k}={v}"));
        }
    }
    let scope = if scope.is_empty() {
        String::new()
    } else {
        format!(" ({})", scope.join(", "))
    };
    format!("[FIRING:{}] {name}{scope}", job.alerts.len())
}

/// The `Op::Alert` payload of a job.
pub(crate) fn payload(job: &Job, runbook: Option<&medic_tools::runbooks::Runbook>) -> Value {
    json!({
        "group_key": job.group_key,
        "common_labels": job.common_labels,
        "alerts": job.alerts,
        "source": job.extra,
        "runbook": runbook.map(|r| json!({
            "name": r.name,
            "description": r.description,
            "investigation": r.investigation,
            "playbooks": r.playbooks,
            "preapprove": r.preapprove,
            "approvers": { "groups": r.approvers.groups, "users": r.approvers.users, "min": r.approvers.min },
        })),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn alert(fp: &str, status: AlertStatus) -> AlertItem {
        AlertItem {
            fingerprint: fp.into(),
            status,
            labels: BTreeMap::from([
                ("alertname".into(), "KubePodCrashLooping".into()),
                ("pod".into(), fp.into()),
            ]),
            annotations: BTreeMap::new(),
            starts_at: "2026-11-21T10:00:00Z".into(),
        }
    }

    fn batch(group: &str, alerts: Vec<AlertItem>) -> AlertBatch {
        AlertBatch {
            origin: Origin::Alertmanager,
            group_key: group.into(),
            common_labels: BTreeMap::new(),
            alerts,
            extra: Value::Null,
        }
    }

    const LIMITS: Limits = Limits {
        dedup_ttl: Duration::from_secs(3600),
        reinvestigate_after: Duration::from_secs(3600),
    };

    #[test]
    fn dedups_groups_and_backpressures() {
        let d = Dispatcher::new(1);
        let (a, _) = d.submit(
            batch(
                "g1",
                vec![
                    alert("a", AlertStatus::Firing),
                    alert("a", AlertStatus::Firing),
                ],
            ),
            LIMITS,
            None,
        );
        assert_eq!(
            a,
            Admission::Accepted {
                new: 1,
                duplicate: 1,
                resolved: 0
            }
        );
        // Same group while queued: folded in, no second job.
        let (a, _) = d.submit(
            batch(
                "g1",
                vec![
                    alert("a", AlertStatus::Firing),
                    alert("b", AlertStatus::Firing),
                ],
            ),
            LIMITS,
            None,
        );
        assert_eq!(
            a,
            Admission::Accepted {
                new: 1,
                duplicate: 1,
                resolved: 0
            }
        );
        assert_eq!(d.queued(), 1);
        // Another group: the queue (size 1) is full → busy, and nothing is remembered.
        let (a, _) = d.submit(
            batch("g2", vec![alert("c", AlertStatus::Firing)]),
            LIMITS,
            None,
        );
        assert!(matches!(
            a,
            Admission::Busy {
                reason: "queue_full",
                ..
            }
        ));
        assert_eq!(d.rx.try_lock().unwrap().try_recv().unwrap(), "g1");
        let job = d.begin("g1").unwrap();
        assert_eq!(job.alerts.len(), 2);
        let (a, _) = d.submit(
            batch("g2", vec![alert("c", AlertStatus::Firing)]),
            LIMITS,
            None,
        );
        assert_eq!(
            a,
            Admission::Accepted {
                new: 1,
                duplicate: 0,
                resolved: 0
            }
        );
    }

    #[test]
    fn resolved_group_cancels_its_running_investigation() {
        let d = Dispatcher::new(4);
        d.submit(
            batch("g", vec![alert("a", AlertStatus::Firing)]),
            LIMITS,
            None,
        );
        d.rx.try_lock().unwrap().try_recv().unwrap();
        let job = d.begin("g").unwrap();
        d.set_thread(
            "g",
            Surface::Slack {
                channel: "C1".into(),
                thread_ts: Some("1.0".into()),
            },
        );
        let (_, f) = d.submit(
            batch("g", vec![alert("b", AlertStatus::Firing)]),
            LIMITS,
            None,
        );
        assert!(
            matches!(&f[0], Followup::Annotate(_, t) if t.starts_with("1 more alert(s) joined"))
        );
        let (_, f) = d.submit(
            batch(
                "g",
                vec![
                    alert("a", AlertStatus::Resolved),
                    alert("b", AlertStatus::Resolved),
                ],
            ),
            LIMITS,
            None,
        );
        assert_eq!(f[0], Followup::Cancel(job.session_key));
        d.finish("g", false);
        // Fired again after resolving: a new investigation.
        let mut again = alert("a", AlertStatus::Firing);
        again.starts_at = "2026-11-21T11:00:00Z".into();
        d.submit(batch("g", vec![again]), LIMITS, None);
        assert_eq!(d.queued(), 1);
        assert!(d.begin("g").unwrap().session_key.ends_with("#2"));
    }

    #[test]
    fn spend_cap_blocks_only_new_investigations() {
        let d = Dispatcher::new(4);
        let (a, _) = d.submit(
            batch("g", vec![alert("a", AlertStatus::Firing)]),
            LIMITS,
            Some(Duration::from_secs(120)),
        );
        assert_eq!(
            a,
            Admission::Busy {
                retry_after: Duration::from_secs(120),
                reason: "spend_cap"
            }
        );
        assert_eq!(d.queued(), 0);
    }
}
