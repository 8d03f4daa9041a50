//! Prometheus: instant and range queries (plain selectors or PromQL) over the HTTP API, and
//! per-series summaries computed in Rust — min / max / mean / last, the largest change point,
//! and the windows where a threshold was crossed — ordered most relevant first.

use crate::context::{Cluster, ToolContext};
use crate::error::{Result, ToolError};
use crate::evidence::EvidenceRef;
use crate::redact::clean;
use crate::tool::{Render, Tool};
use chrono::{DateTime, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One series as returned by Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// Labels (values cleaned).
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` samples in time order.
    pub samples: Vec<(f64, f64)>,
}

/// A shift in a series' level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// When the new level starts (RFC 3339).
    pub at: String,
    /// Mean before.
    pub before: f64,
    /// Mean after.
    pub after: f64,
}

/// A span of samples above (or below) the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// First sample past the threshold.
    pub start: String,
    /// Last sample past the threshold.
    pub end: String,
    /// Most extreme value in the window.
    pub peak: f64,
}

/// Summary of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// Labels (values cleaned).
    pub labels: BTreeMap<String, String>,
    /// Samples summarised.
    pub samples: usize,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// First value.
    pub first: f64,
    /// Last value.
    pub last: f64,
    /// Time of the last sample.
    pub last_at: String,
    /// The largest level shift, if significant.
    pub change: Option<ChangePoint>,
    /// Where the threshold was crossed.
    pub crossings: Vec<Window>,
    /// Relevance score used for ordering.
    pub score: f64,
}

fn rfc(ts: f64) -> String {
    Utc.timestamp_opt(ts.floor() as i64, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Find the most significant level shift: compare the mean of a window before each sample
/// with the mean of a window after it, relative to the windows' spread (so a short spike is
/// found as well as a lasting step). Linear in the number of samples via prefix sums.
pub fn change_point(samples: &[(f64, f64)]) -> Option<ChangePoint> {
    let n = samples.len();
    if n < 6 {
        return None;
    }
    let w = (n / 10).clamp(3, 20);
    let mut pre = vec![0.0; n + 1];
    let mut pre2 = vec![0.0; n + 1];
    for (i, (_, v)) in samples.iter().enumerate() {
        pre[i + 1] = pre[i] + v;
        pre2[i + 1] = pre2[i] + v * v;
    }
    let stats = |a: usize, b: usize| {
        let len = (b - a) as f64;
        let m = (pre[b] - pre[a]) / len;
        (m, ((pre2[b] - pre2[a]) / len - m * m).max(0.0))
    };
    let mut best: Option<(usize, f64, f64, f64)> = None;
    for k in w..=n - w {
        let (ml, vl) = stats(k - w, k);
        let (mr, vr) = stats(k, k + w);
        let spread = ((vl + vr) / 2.0).sqrt();
        let scale = ml.abs().max(mr.abs()).max(1e-9);
        let effect = (mr - ml).abs() / (spread + 0.05 * scale);
        if best.is_none_or(|b| effect > b.3) {
            best = Some((k, ml, mr, effect));
        }
    }
    let (k, before, after, effect) = best?;
    (effect >= 3.0).then(|| ChangePoint {
        at: rfc(samples[k].0),
        before,
        after,
    })
}

/// Windows where samples are above (`above = true`) or below the threshold.
pub fn crossings(samples: &[(f64, f64)], threshold: f64, above: bool) -> Vec<Window> {
    let past = |v: f64| if above { v > threshold } else { v < threshold };
    let mut out = Vec::new();
    let mut cur: Option<(f64, f64, f64)> = None;
    for &(t, v) in samples {
        if past(v) {
            cur = Some(match cur {
                None => (t, t, v),
                Some((s, _, p)) => (s, t, if above { p.max(v) } else { p.min(v) }),
            });
        } else if let Some((s, e, p)) = cur.take() {
            out.push(Window {
                start: rfc(s),
                end: rfc(e),
                peak: p,
            });
        }
    }
    if let Some((s, e, p)) = cur {
        out.push(Window {
            start: rfc(s),
            end: rfc(e),
            peak: p,
        });
    }
    out
}

/// Summarise series and order them most relevant first: threshold crossings, then the size
/// of level shifts, then the range of values.
pub fn summarize(series: &[RawSeries], threshold: Option<f64>, above: bool) -> Vec<SeriesSummary> {
    let mut out: Vec<SeriesSummary> = series
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| {
            let vals: Vec<f64> = s
                .samples
                .iter()
                .map(|x| x.1)
                .filter(|v| v.is_finite())
                .collect();
            let n = vals.len().max(1) as f64;
            let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = vals.iter().sum::<f64>() / n;
            let change = change_point(&s.samples);
            let crossings = threshold
                .map(|t| crossings(&s.samples, t, above))
                .unwrap_or_default();
            let scale = max.abs().max(min.abs()).max(1e-9);
            let shift = change
                .as_ref()
                .map_or(0.0, |c| (c.after - c.before).abs() / scale);
            let crossed: usize = crossings.len();
            let score =
                crossed as f64 * 10.0 + shift * 5.0 + (max - min).abs() / scale + max.abs() / 1e12;
            let (last_t, last) = *s.samples.last().unwrap_or(&(0.0, 0.0));
            SeriesSummary {
                labels: s.labels.clone(),
                samples: s.samples.len(),
                min,
                max,
                mean,
                first: s.samples.first().map_or(0.0, |x| x.1),
                last,
                last_at: rfc(last_t),
                change,
                crossings,
                score,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(
                b.max
                    .partial_cmp(&a.max)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
    });
    out
}

fn parse_sample(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    let t = a.first()?.as_f64()?;
    let x: f64 = a.get(1)?.as_str()?.parse().ok()?;
    Some((t, x))
}

/// Parse the `data` of a Prometheus query response (vector, matrix or scalar).
pub fn parse_result(data: &Value) -> Vec<RawSeries> {
    let kind = data.get("resultType").and_then(Value::as_str).unwrap_or("");
    let result = data.get("result");
    if kind == "scalar" {
        return result
            .and_then(parse_sample)
            .map(|s| {
                vec![RawSeries {
                    labels: BTreeMap::new(),
                    samples: vec![s],
                }]
            })
            .unwrap_or_default();
    }
    result
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let labels = r
                .get("metric")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), clean(v.as_str().unwrap_or(""))))
                        .collect()
                })
                .unwrap_or_default();
            let samples = match r.get("values").and_then(Value::as_array) {
                Some(vals) => vals.iter().filter_map(parse_sample).collect(),
                None => r.get("value").and_then(parse_sample).into_iter().collect(),
            };
            RawSeries { labels, samples }
        })
        .collect()
}

/// Run a query against a cluster's Prometheus: instant at `end` when `range` is `None`,
/// else a range query over `[end - range, end]` with `step` seconds.
pub async fn query(
    ctx: &ToolContext,
    c: &Cluster,
    promql: &str,
    end: DateTime<Utc>,
    range: Option<(chrono::Duration, u64)>,
) -> Result<Vec<RawSeries>> {
    let base = c.prometheus.as_deref().ok_or_else(|| {
        ToolError::NotFound(format!(
            "cluster `{}` has no Prometheus configured; metrics are unavailable there, use k8s_* and logs tools instead",
            c.name
        ))
    })?;
    let endt = end.timestamp().to_string();
    let req = match range {
        None => ctx
            .http
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", promql), ("time", endt.as_str())]),
        Some((r, step)) => {
            let start = (end - r).timestamp().to_string();
            let step = step.max(1).to_string();
            ctx.http.get(format!("{base}/api/v1/query_range")).query(&[
                ("query", promql),
                ("start", start.as_str()),
                ("end", endt.as_str()),
                ("step", step.as_str()),
            ])
        }
    };
    let resp = req.send().await.map_err(|e| {
        ToolError::Upstream(format!(
            "Prometheus of cluster `{}` at {base} is unreachable ({}); metrics are unavailable, continue with k8s_* and logs",
            c.name,
            if e.is_timeout() { "timed out".to_string() } else if e.is_connect() { "connection refused".to_string() } else { e.to_string() }
        ))
    })?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| {
        ToolError::Upstream(format!(
            "Prometheus of cluster `{}` answered HTTP {status} with a body that is not JSON: {e}",
            c.name
        ))
    })?;
    if body.get("status").and_then(Value::as_str) != Some("success") {
        let et = body
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let msg = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(if status.as_u16() == 400 || et == "bad_data" {
            ToolError::InvalidArgs(format!(
                "Prometheus rejected the query {promql:?}: {msg}; pass a selector such as `up{{job=\"api\"}}` or valid PromQL"
            ))
        } else {
            ToolError::Upstream(format!(
                "Prometheus of cluster `{}` failed ({status}, {et}): {msg}",
                c.name
            ))
        });
    }
    Ok(parse_result(body.get("data").unwrap_or(&Value::Null)))
}

/// Arguments of `metrics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsArgs {
    /// Default: first cluster.
    pub cluster: Option<String>,
    /// Selector or PromQL, e.g. rate(http_requests_total{code=~"5.."}[5m]).
    pub query: String,
    /// Range in minutes; omit for an instant query.
    #[schemars(range(min = 1, max = 10080))]
    pub range_minutes: Option<u32>,
    /// Step seconds for range queries (default: range/120).
    pub step_seconds: Option<u32>,
    /// Report windows above this value (below if `below`).
    pub threshold: Option<f64>,
    /// Threshold means "below".
    pub below: Option<bool>,
}

/// Result of `metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsOutput {
    /// Cluster.
    pub cluster: String,
    /// Query.
    pub query: String,
    /// Window start (RFC 3339); equals `end` for instant queries.
    pub start: String,
    /// Window end.
    pub end: String,
    /// Labels every series shares (not repeated per series).
    pub common_labels: BTreeMap<String, String>,
    /// Series, most relevant first.
    pub series: Vec<SeriesSummary>,
}

fn num(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

impl Render for MetricsOutput {
    fn render(&self, max: usize) -> String {
        let instant = self.start == self.end;
        let mut s = format!(
            "metrics in {} for {}: {} series {}{}\n",
            self.cluster,
            serde_json::to_string(&self.query).unwrap_or_default(),
            self.series.len(),
            if instant {
                format!("at {}", self.end)
            } else {
                format!("from {} to {}", self.start, self.end)
            },
            if self.common_labels.is_empty() {
                String::new()
            } else {
                format!(
                    "; common labels {{{}}}",
                    crate::k8s::types::kv(&self.common_labels)
                )
            }
        );
        for x in self.series.iter().take(max) {
            let labels: BTreeMap<String, String> = x
                .labels
                .iter()
                .filter(|(k, _)| !self.common_labels.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if instant {
                s.push_str(&format!(
                    "  {{{}}} = {}\n",
                    crate::k8s::types::kv(&labels),
                    num(x.last)
                ));
                continue;
            }
            s.push_str(&format!(
                "  {{{}}} last {} min {} max {} mean {} ({} samples)",
                crate::k8s::types::kv(&labels),
                num(x.last),
                num(x.min),
                num(x.max),
                num(x.mean),
                x.samples
            ));
            if let Some(c) = &x.change {
                s.push_str(&format!(
                    "; shift at {} {} → {}",
                    c.at,
                    num(c.before),
                    num(c.after)
                ));
            }
            for w in x.crossings.iter().take(3) {
                s.push_str(&format!(
                    "; past threshold {} → {} peak {}",
                    w.start,
                    w.end,
                    num(w.peak)
                ));
            }
            if x.crossings.len() > 3 {
                s.push_str(&format!("; +{} more windows", x.crossings.len() - 3));
            }
            s.push('\n');
        }
        if self.series.len() > max {
            s.push_str(&format!(
                "  … {} more series omitted (less change); narrow the selector\n",
                self.series.len() - max
            ));
        }
        s
    }
    fn evidence(&self) -> Vec<EvidenceRef> {
        vec![EvidenceRef::Series {
            cluster: self.cluster.clone(),
            query: self.query.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
        }]
    }
}

/// Labels shared by every series.
pub fn common_labels(series: &[SeriesSummary]) -> BTreeMap<String, String> {
    let Some(first) = series.first() else {
        return BTreeMap::new();
    };
    if series.len() < 2 {
        return first
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() == "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    first
        .labels
        .iter()
        .filter(|(k, v)| series.iter().all(|s| s.labels.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `metrics`.
pub struct MetricsTool;

impl Tool for MetricsTool {
    const NAME: &'static str = "metrics";
    type Args = MetricsArgs;
    type Output = MetricsOutput;
    fn description() -> &'static str {
        "Prometheus query (selector or PromQL), instant or range: per-series min/max/mean/last, shifts, threshold windows."
    }
    async fn call(&self, ctx: &ToolContext, a: MetricsArgs) -> Result<MetricsOutput> {
        let c = ctx.cluster(a.cluster.as_deref())?;
        if a.query.trim().is_empty() {
            return Err(ToolError::InvalidArgs(
                "`query` is empty; pass a selector such as `up` or PromQL".into(),
            ));
        }
        let end = ctx.clock.now();
        let range = a.range_minutes.map(|m| {
            let step = a
                .step_seconds
                .map(u64::from)
                .unwrap_or_else(|| (u64::from(m) * 60 / 120).max(15));
            (chrono::Duration::minutes(i64::from(m)), step)
        });
        let raw = query(ctx, c, &a.query, end, range).await?;
        let series = summarize(&raw, a.threshold, !a.below.unwrap_or(false));
        let start = range.map_or(end, |(r, _)| end - r);
        Ok(MetricsOutput {
            cluster: c.name.clone(),
            query: a.query,
            start: start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            end: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            common_labels: common_labels(&series),
            series,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn series(vals: &[f64]) -> Vec<(f64, f64)> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| (1_750_000_000.0 + 60.0 * i as f64, *v))
            .collect()
    }

    #[test]
    fn finds_the_shift_and_threshold_window() {
        let s = series(&[
            10.0, 11.0, 10.0, 9.0, 10.0, 10.0, 95.0, 97.0, 96.0, 98.0, 97.0, 12.0,
        ]);
        let c = change_point(&s).unwrap();
        assert_eq!(c.at, rfc(s[6].0));
        let w = crossings(&s, 90.0, true);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].start.clone(), w[0].end.clone(), w[0].peak),
            (rfc(s[6].0), rfc(s[10].0), 98.0)
        );
        assert!(change_point(&series(&[5.0, 5.1, 4.9, 5.0, 5.0, 5.1, 4.9, 5.0])).is_none());
    }

    #[test]
    fn relevant_series_first() {
        let flat = RawSeries {
            labels: [("node".to_string(), "a".to_string())].into(),
            samples: series(&[50.0; 10]),
        };
        let hot = RawSeries {
            labels: [("node".to_string(), "b".to_string())].into(),
            samples: series(&[50.0, 50.0, 50.0, 50.0, 99.0, 99.0, 99.0, 99.0, 99.0, 99.0]),
        };
        let out = summarize(&[flat, hot], Some(90.0), true);
        assert_eq!(out[0].labels["node"], "b");
        assert_eq!(out[0].crossings.len(), 1);
        assert_eq!(out[1].max, 50.0);
    }
}
