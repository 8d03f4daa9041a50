//! Prometheus metrics, written in the text exposition format by hand (a handful of
//! counters, gauges and one histogram do not need a registry crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Webhook latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Name {
    InvestigationsStarted,
    InvestigationsFinished,
    InvestigationsRunning,
    ToolCalls,
    Tokens,
    Approvals,
    Executions,
    WebhookRequests,
    Alerts,
    QueueDepth,
    Rejected,
    SpendHour,
}

impl Name {
    fn meta(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Name::InvestigationsStarted => (
                "medic_investigations_started_total",
                "counter",
                "Investigations started, by origin.",
            ),
            Name::InvestigationsFinished => (
                "medic_investigations_finished_total",
                "counter",
                "Investigations finished, by stop reason.",
            ),
            Name::InvestigationsRunning => (
                "medic_investigations_running",
                "gauge",
                "Investigations running now.",
            ),
            Name::ToolCalls => (
                "medic_tool_calls_total",
                "counter",
                "Tool calls finished, by tool and result.",
            ),
            Name::Tokens => (
                "medic_model_tokens_total",
                "counter",
                "Model tokens, by direction.",
            ),
            Name::Approvals => (
                "medic_approvals_total",
                "counter",
                "Approval events, by outcome.",
            ),
            Name::Executions => (
                "medic_executions_total",
                "counter",
                "Plan executions and steps, by status.",
            ),
            Name::WebhookRequests => (
                "medic_webhook_requests_total",
                "counter",
                "Webhook requests, by endpoint and status code.",
            ),
            Name::Alerts => (
                "medic_alerts_total",
                "counter",
                "Alerts received, by what happened to them.",
            ),
            Name::QueueDepth => (
                "medic_alert_queue_depth",
                "gauge",
                "Alert groups waiting for an investigation slot.",
            ),
            Name::Rejected => (
                "medic_webhook_rejected_total",
                "counter",
                "Webhooks turned away, by reason.",
            ),
            Name::SpendHour => (
                "medic_model_spend_tokens_last_hour",
                "gauge",
                "Model tokens spent in the last rolling hour.",
            ),
        }
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(Name, Labels), f64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a metrics lock leaves plain numbers behind; keep counting.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Adds `by` to a counter (or gauge).
    pub(crate) fn add(&self, name: Name, labels: &[(&'static str, &str)], by: f64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        );
        *lock(&self.values).entry(key).or_insert(0.0) += by;
    }

    /// Increments a counter by one.
    pub(crate) fn inc(&self, name: Name, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// Sets a gauge.
    pub(crate) fn set(&self, name: Name, labels: &[(&'static str, &str)], value: f64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        );
        lock(&self.values).insert(key, value);
    }

    /// Reads a value (tests and the bench use it).
    pub fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        lock(&self.values)
            .iter()
            .filter(|((n, l), _)| {
                n.meta().0 == metric
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// Records one webhook request's handling time.
    pub(crate) fn observe_webhook(&self, endpoint: &str, status: u16, took: Duration) {
        self.inc(
            Name::WebhookRequests,
            &[("endpoint", endpoint), ("code", &status.to_string())],
        );
        let secs = took.as_secs_f64();
        let mut h = lock(&self.latency);
        let entry = h.entry(endpoint.to_owned()).or_default();
        if entry.counts.is_empty() {
            entry.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                entry.counts[i] += 1;
            }
        }
        entry.sum += secs;
        entry.count += 1;
    }

    /// The text exposition (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let values = lock(&self.values);
        let mut last: Option<Name> = None;
        for ((name, labels), v) in values.iter() {
            let (metric, kind, help) = name.meta();
            if last != Some(*name) {
                let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
                last = Some(*name);
            }
            let _ = writeln!(
                out,
                "{metric}{} {v}",
                fmt_labels(labels.iter().map(|(k, v)| (*k, v.as_str())))
            );
        }
        drop(values);
        let h = lock(&self.latency);
        if !h.is_empty() {
            let m = "medic_webhook_duration_seconds";
            let _ = writeln!(
                out,
                "# HELP {m} Time to acknowledge a webhook.\n# TYPE {m} histogram"
            );
            for (endpoint, hist) in h.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let le = b.to_string();
                    let _ = writeln!(
                        out,
                        "{m}_bucket{} {}",
                        fmt_labels([("endpoint", endpoint.as_str()), ("le", le.as_str())]),
                        hist.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{m}_bucket{} {}",
                    fmt_labels([("endpoint", endpoint.as_str()), ("le", "+Inf")]),
                    hist.count
                );
                let _ = writeln!(
                    out,
                    "{m}_sum{} {}",
                    fmt_labels([("endpoint", endpoint.as_str())]),
                    hist.sum
                );
                let _ = writeln!(
                    out,
                    "{m}_count{} {}",
                    fmt_labels([("endpoint", endpoint.as_str())]),
                    hist.count
                );
            }
        }
        out
    }
}

fn fmt_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let parts: Vec<String> = labels
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.inc(Name::InvestigationsStarted, &[("origin", "slack")]);
        m.inc(Name::InvestigationsStarted, &[("origin", "slack")]);
        m.observe_webhook("slack_events", 200, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("# TYPE medic_investigations_started_total counter\nmedic_investigations_started_total{origin=\"slack\"} 2\n"), "{text}");
        assert!(
            text.contains(
                "medic_webhook_duration_seconds_bucket{endpoint=\"slack_events\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "medic_webhook_duration_seconds_bucket{endpoint=\"slack_events\",le=\"0.001\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("medic_webhook_duration_seconds_count{endpoint=\"slack_events\"} 1"),
            "{text}"
        );
        assert_eq!(
            m.get("medic_investigations_started_total", &[("origin", "slack")]),
            2.0
        );
    }
}
