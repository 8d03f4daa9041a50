//! A selector-only Prometheus HTTP API over a bundle's `metrics/*.om` samples, one listener per
//! cluster with `prometheus: true`: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values`. Queries must be plain series selectors;
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

    fn select(&self, query: &str) -> Result<Vec<&Series>, PromError> {
        let sel = SeriesSelector::parse(query)
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

fn metric(s: &Series) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("__name__".into(), s.name.clone().into());
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
    let series = match st.select(&q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result: Vec<Value> = series
        .into_iter()
        .filter_map(|s| {
            at(s, t).map(|(_, v)| json!({"metric": metric(s), "value": [t, fmt_value(v)]}))
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
    let series = match st.select(&q) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let mut result = Vec::new();
    for s in series {
        let mut values = Vec::new();
        let mut t = start;
        while t <= end + 1e-9 {
            if let Some((_, v)) = at(s, t) {
                values.push(json!([t, fmt_value(v)]));
            }
            t += step;
        }
        if !values.is_empty() {
            result.push(json!({"metric": metric(s), "values": values}));
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
        Ok(s) => ok(Value::Array(s.into_iter().map(metric).collect())),
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
