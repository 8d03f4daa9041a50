//! Alertmanager's webhook (payload version 4). It is unsigned, so it is authenticated by a
//! bearer token (Alertmanager's `http_config.authorization.credentials_file`), compared in
//! constant time; without a configured token the endpoint is off (404).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::dispatch::{AlertBatch, AlertItem, AlertStatus};
use crate::app::Shared;
use crate::engine::Origin;
use crate::metrics::Name;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    version: String,
    group_key: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    external_url: String,
    #[serde(default)]
    truncated_alerts: u64,
    alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    fingerprint: String,
}

/// Whether the `Authorization` header carries `token`.
pub(crate) fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(got) = got.strip_prefix("Bearer ") else {
        return false;
    };
    bool::from(got.trim().as_bytes().ct_eq(token.as_bytes()))
}

fn to_batch(p: Payload) -> Result<AlertBatch, String> {
    if p.version != "4" {
        return Err(format!(
            "expected Alertmanager webhook version \"4\", found {:?}",
            p.version
        ));
    }
    let mut alerts = Vec::with_capacity(p.alerts.len());
    for (i, a) in p.alerts.into_iter().enumerate() {
        let status = match a.status.as_str() {
            "firing" => AlertStatus::Firing,
            "resolved" => AlertStatus::Resolved,
            other => {
                return Err(format!(
                    "alerts[{i}].status must be firing or resolved, found {other:?}"
                ));
            }
        };
        // Older senders omit the fingerprint; the sorted label set identifies the alert.
        let fingerprint = if a.fingerprint.is_empty() {
            format!("{:?}", a.labels)
        } else {
            a.fingerprint
        };
        alerts.push(AlertItem {
            fingerprint,
            status,
            labels: a.labels,
            annotations: a.annotations,
            starts_at: a.starts_at,
        });
    }
    Ok(AlertBatch {
        origin: Origin::Alertmanager,
        group_key: p.group_key,
        common_labels: p.common_labels,
        alerts,
        extra: json!({
            "status": p.status,
            "receiver": p.receiver,
            "external_url": p.external_url,
            "common_annotations": p.common_annotations,
            "truncated_alerts": p.truncated_alerts,
        }),
    })
}

/// `POST /alerts/alertmanager`.
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = shared.resolved();
    let Some(token) = r.alertmanager_token.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "the Alertmanager receiver is not configured (alerts.alertmanager_token)",
        )
            .into_response();
    };
    if !bearer_ok(&headers, token) {
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", "alertmanager_auth")]);
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
    }
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager v4 webhook: {e}"),
            )
                .into_response();
        }
    };
    match to_batch(payload) {
        Ok(batch) => super::admit(&shared, batch),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_a_v4_payload() {
        let p: Payload = serde_json::from_value(json!({
            "version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": "firing", "receiver": "medic",
            "groupLabels": {"alertname": "X"}, "commonLabels": {"alertname": "X"}, "commonAnnotations": {},
            "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "X", "pod": "p"}, "annotations": {},
                        "startsAt": "2026-11-21T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": "abc"}]
        }))
        .unwrap();
        let b = to_batch(p).unwrap();
        assert_eq!(b.alerts[0].fingerprint, "abc");
        assert_eq!(b.alerts[0].status, AlertStatus::Firing);
        let bad: Payload =
            serde_json::from_value(json!({"version": "3", "groupKey": "g", "alerts": []})).unwrap();
        assert!(to_batch(bad).unwrap_err().contains("version"));
    }

    #[test]
    fn bearer_is_checked() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "t0k"));
        h.insert(header::AUTHORIZATION, "Bearer t0k".parse().unwrap());
        assert!(bearer_ok(&h, "t0k"));
        assert!(!bearer_ok(&h, "t0k2"));
    }
}
