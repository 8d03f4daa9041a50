//! A small Prometheus HTTP API over a bundle's `metrics/*.om` samples, one listener per
//! cluster with `prometheus: true`: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values`. Queries are series selectors, or one range
//! function over a selector — `avg|min|max|sum|count|last_over_time(sel[5m])`,
//! `rate(sel[5m])`, `increase(sel[5m])` — which is what medic's tools and runbooks ask;
//! anything else gets Prometheus' 400 `bad_data` error. Series removed by `delete_series`
//! reactions disappear.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Shared;
use crate::bundle::Sample;
use crate::selector::SeriesSelector;

/// Samples older than this before the evaluation time are stale, as in Prometheus.
const LOOKBACK: f64 = 300.0;

/// One series: name + labels, samples sorted by time.
pub(crate) struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A range function over a selector.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeFn {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Rate,
    Increase,
}

/// A parsed query: a selector, optionally under one range function.
struct Query {
    selector: String,
    range: Option<(RangeFn, f64)>,
}

impl Query {
    fn parse(q: &str) -> Result<Query, PromError> {
        let q = q.trim();
        let Some(open) = q.find('(') else {
            return Ok(Query {
                selector: q.to_owned(),
                range: None,
            });
        };
        let unsupported = || {
            error(
                "bad_data",
                format!(
                    "invalid parameter \"query\": unsupported expression {q:?}: the sandbox answers series selectors and one range function over a selector, such as avg_over_time(name{{label=\"value\"}}[5m]) or rate(name[5m])"
                ),
            )
        };
        let func = match q[..open].trim() {
            "avg_over_time" => RangeFn::Avg,
            "min_over_time" => RangeFn::Min,
            "max_over_time" => RangeFn::Max,
            "sum_over_time" => RangeFn::Sum,
            "count_over_time" => RangeFn::Count,
            "last_over_time" => RangeFn::Last,
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            _ => return Err(unsupported()),
        };
        let inner = q[open + 1..]
            .strip_suffix(')')
            .ok_or_else(unsupported)?
            .trim();
        let (selector, window) = inner
            .strip_suffix(']')
            .and_then(|i| i.rsplit_once('['))
            .ok_or_else(unsupported)?;
        let window = duration(window.trim())
            .filter(|w| *w > 0.0)
            .ok_or_else(unsupported)?;
        Ok(Query {
            selector: selector.trim().to_owned(),
            range: Some((func, window)),
        })
    }

    /// The value of `s` at `t`: the latest sample within the lookback, or the range
    /// function over the samples in `(t - window, t]`.
    fn eval(&self, s: &Series, t: f64) -> Option<f64> {
        let Some((func, window)) = self.range else {
            return at(s, t).map(|(_, v)| v);
        };
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|(ts, _)| *ts <= t && *ts > t - window)
            .copied()
            .collect();
        let (first, last) = (pts.first()?, pts.last()?);
        let values = pts.iter().map(|(_, v)| *v);
        Some(match func {
            RangeFn::Avg => values.sum::<f64>() / pts.len() as f64,
            RangeFn::Min => values.fold(f64::INFINITY, f64::min),
            RangeFn::Max => values.fold(f64::NEG_INFINITY, f64::max),
            RangeFn::Sum => values.sum(),
            RangeFn::Count => pts.len() as f64,
            RangeFn::Last => last.1,
            RangeFn::Rate | RangeFn::Increase => {
                if pts.len() < 2 || last.0 <= first.0 {
                    return None;
                }
                // Counter semantics: a drop is a reset, counted from zero.
                let increase: f64 = pts
                    .windows(2)
                    .map(|w| {
                        if w[1].1 >= w[0].1 {
                            w[1].1 - w[0].1
                        } else {
                            w[1].1
                        }
                    })
                    .sum();
                if func == RangeFn::Rate {
                    increase / (last.0 - first.0)
                } else {
                    // Extrapolated to the whole window, as Prometheus does (roughly).
                    increase * window / (last.0 - first.0).max(window / 2.0).min(window)
                }
            }
        })
    }

    /// Functions other than `last_over_time` drop the metric name, as Prometheus does.
    fn keeps_name(&self) -> bool {
        matches!(self.range, None | Some((RangeFn::Last, _)))
    }
}

#[derive(Clone)]
struct PromState {
    shared: Arc<Shared>,
    series: Arc<Vec<Series>>,
    now: f64,
}

/// Groups the samples that belong to `cluster` into series.
pub(crate) fn series_for(
    samples: &[Sample],
    cluster: &str,
    single_cluster: bool,
    now: f64,
) -> Vec<Series> {
    type Key = (String, Vec<(String, String)>);
    let mut map: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples {
        if !single_cluster && s.labels.get("cluster").map(String::as_str) != Some(cluster) {
            continue;
        }
        let key = (
            s.name.clone(),
            s.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        map.entry(key)
            .or_default()
            .push((s.timestamp.unwrap_or(now), s.value));
    }
    map.into_iter()
        .map(|((name, labels), mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name,
                labels: labels.into_iter().collect(),
                points,
            }
        })
        .collect()
}

pub(crate) fn router(shared: Arc<Shared>, all: Vec<Series>, now: f64) -> Router {
    let state = PromState {
        shared,
        series: Arc::new(all),
        now,
    };
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series_handler).post(series_handler))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .with_state(state)
}

/// Prometheus' error body (`status: error`, `errorType`, `error`), answered with 400.
struct PromError {
    kind: &'static str,
    message: String,
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

fn error(kind: &'static str, message: impl Into<String>) -> PromError {
    PromError {
        kind,
        message: message.into(),
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn params(raw: Option<String>) -> Vec<(String, String)> {
    raw.and_then(|q| {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().ok()?)
            .ok()
    })
    .map(|q| q.0)
    .unwrap_or_default()
}

fn one(p: &[(String, String)], k: &str) -> Option<String> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn time(v: Option<String>, default: f64) -> Result<f64, PromError> {
    let Some(v) = v else { return Ok(default) };
    if let Ok(f) = v.parse::<f64>() {
        return Ok(f);
    }
    chrono::DateTime::parse_from_rfc3339(&v)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|_| {
            error(
                "bad_data",
                format!("invalid parameter \"time\": cannot parse {v:?} to a valid timestamp"),
            )
        })
}

fn duration(v: &str) -> Option<f64> {
    if let Ok(f) = v.parse::<f64>() {
        return Some(f);
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: f64 = num.parse().ok()?;
    Some(
        n * match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            _ => return None,
        },
    )
}

impl PromState {
    fn deleted(&self) -> Vec<SeriesSelector> {
        self.shared
            .world()
            .deleted_series
            .iter()
            .filter_map(|m| SeriesSelector::parse(m).ok())
            .collect()
    }

    fn select(&self, selector: &str) -> Result<Vec<&Series>, PromError> {
        let sel = SeriesSelector::parse(selector)
            .map_err(|e| error("bad_data", format!("invalid parameter \"query\": {e}")))?;
        let deleted = self.deleted();
        Ok(self
            .series
            .iter()
            .filter(|s| {
                sel.matches(&s.name, &s.labels)
                    && !deleted.iter().any(|d| d.matches(&s.name, &s.labels))
            })
            .collect())
    }
}

fn metric(s: &Series, with_name: bool) -> Value {
    let mut m = serde_json::Map::new();
    if with_name {
        m.insert("__name__".into(), s.name.clone().into());
    }
    for (k, v) in &s.labels {
        m.insert(k.clone(), v.clone().into());
    }
    Value::Object(m)
}

fn at(s: &Series, t: f64) -> Option<(f64, f64)> {
    s.points
        .iter()
        .rev()
        .find(|(ts, _)| *ts <= t && *ts > t - LOOKBACK)
        .copied()
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

async fn query(State(st): State<PromState>, RawQuery(raw): RawQuery, body: String) -> Response {
    let mut p = params(raw);
    p.extend(params(Some(body)));
    let Some(q) = one(&p, "query") else {
        return error("bad_data", "invalid parameter \"query\": query is required").into_response();
    };
    let t = match time(one(&p, "time"), st.now) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let query = match Query::parse(&q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let series = match st.select(&query.selector) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let named = query.keeps_name();
    let result: Vec<Value> = series
        .into_iter()
        .filter_map(|s| {
            query
                .eval(s, t)
                .map(|v| json!({"metric": metric(s, named), "value": [t, fmt_value(v)]}))
        })
        .collect();
    ok(json!({"resultType": "vector", "result": result}))
}

async fn query_range(
    State(st): State<PromState>,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    let mut p = params(raw);
    p.extend(params(Some(body)));
    let Some(q) = one(&p, "query") else {
        return error("bad_data", "invalid parameter \"query\": query is required").into_response();
    };
    let (start, end) = match (
        time(one(&p, "start"), st.now - 3600.0),
        time(one(&p, "end"), st.now),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let Some(step) = one(&p, "step")
        .as_deref()
        .and_then(duration)
        .filter(|s| *s > 0.0)
    else {
        return error("bad_data", "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer").into_response();
    };
    if end < start {
        return error(
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        )
        .into_response();
    }
    if (end - start) / step > 11_000.0 {
        return error("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)").into_response();
    }
    let query = match Query::parse(&q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let series = match st.select(&query.selector) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let named = query.keeps_name();
    let mut result = Vec::new();
    for s in series {
        let mut values = Vec::new();
        let mut t = start;
        while t <= end + 1e-9 {
            if let Some(v) = query.eval(s, t) {
                values.push(json!([t, fmt_value(v)]));
            }
            t += step;
        }
        if !values.is_empty() {
            result.push(json!({"metric": metric(s, named), "values": values}));
        }
    }
    ok(json!({"resultType": "matrix", "result": result}))
}

fn matched<'a>(st: &'a PromState, p: &[(String, String)]) -> Result<Vec<&'a Series>, PromError> {
    let matchers: Vec<&String> = p
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| v)
        .collect();
    if matchers.is_empty() {
        let deleted = st.deleted();
        return Ok(st
            .series
            .iter()
            .filter(|s| !deleted.iter().any(|d| d.matches(&s.name, &s.labels)))
            .collect());
    }
    let mut out: Vec<&Series> = Vec::new();
    for m in matchers {
        for s in st.select(m)? {
            if !out.iter().any(|o| std::ptr::eq(*o, s)) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

async fn series_handler(
    State(st): State<PromState>,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    let mut p = params(raw);
    p.extend(params(Some(body)));
    if !p.iter().any(|(k, _)| k == "match[]") {
        return error("bad_data", "no match[] parameter provided").into_response();
    }
    match matched(&st, &p) {
        Ok(s) => ok(Value::Array(
            s.into_iter().map(|s| metric(s, true)).collect(),
        )),
        Err(e) => e.into_response(),
    }
}

async fn labels(State(st): State<PromState>, RawQuery(raw): RawQuery, body: String) -> Response {
    let mut p = params(raw);
    p.extend(params(Some(body)));
    match matched(&st, &p) {
        Ok(s) => {
            let mut names: BTreeSet<String> =
                s.iter().flat_map(|s| s.labels.keys().cloned()).collect();
            names.insert("__name__".into());
            ok(json!(names))
        }
        Err(e) => e.into_response(),
    }
}

async fn label_values(
    State(st): State<PromState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let p = params(raw);
    match matched(&st, &p) {
        Ok(s) => {
            let values: BTreeSet<String> = s
                .iter()
                .filter_map(|s| {
                    if name == "__name__" {
                        Some(s.name.clone())
                    } else {
                        s.labels.get(&name).cloned()
                    }
                })
                .collect();
            ok(json!(values))
        }
        Err(e) => e.into_response(),
    }
}
