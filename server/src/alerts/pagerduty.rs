//! PagerDuty v3 webhooks: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, each an
//! HMAC-SHA256 of the raw body; during a secret rotation PagerDuty signs with every active
//! secret, so any listed signature matching any configured secret is accepted. Incidents
//! become single-alert groups (`incident.triggered` / `reopened` fire,
//! `incident.resolved` resolves); other event types are acknowledged and ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::dispatch::{AlertBatch, AlertItem, AlertStatus};
use crate::app::Shared;
use crate::engine::Origin;
use crate::metrics::Name;

/// The hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Whether any `v1=` signature in `header` matches any secret.
pub(crate) fn verify(secrets: &[Vec<u8>], header: Option<&str>, body: &[u8]) -> bool {
    let Some(header) = header else { return false };
    let sigs: Vec<&str> = header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .collect();
    let mut ok = false;
    for secret in secrets {
        let expected = sign(secret, body);
        for s in &sigs {
            // No early exit: the time taken does not reveal which pair matched.
            ok |= !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(s.as_bytes()));
        }
    }
    ok
}

/// The alert name hidden in an incident title like `[FIRING:1] GPUXidErrors (node-3)`.
fn alertname(title: &str) -> String {
    let rest = match title.trim_start().strip_prefix('[') {
        Some(r) => r.split_once(']').map(|(_, t)| t).unwrap_or(r),
        None => title,
    };
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|t| t.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .unwrap_or(title)
        .to_owned()
}

pub(crate) fn to_batch(v: &Value) -> Result<Option<AlertBatch>, String> {
    let ev = &v["event"];
    let event_type = ev["event_type"]
        .as_str()
        .ok_or("missing event.event_type")?;
    let status = match event_type {
        "incident.triggered" | "incident.reopened" => AlertStatus::Firing,
        "incident.resolved" => AlertStatus::Resolved,
        _ => return Ok(None),
    };
    let data = &ev["data"];
    let id = data["id"]
        .as_str()
        .ok_or("missing event.data.id (the incident id)")?;
    let title = data["title"].as_str().unwrap_or(id);
    let mut labels = BTreeMap::from([
        ("alertname".to_owned(), alertname(title)),
        ("title".to_owned(), title.to_owned()),
        ("source".to_owned(), "pagerduty".to_owned()),
    ]);
    for (label, ptr) in [
        ("service", "/service/summary"),
        ("urgency", "/urgency"),
        ("priority", "/priority/summary"),
        ("incident_key", "/incident_key"),
    ] {
        if let Some(s) = data.pointer(ptr).and_then(Value::as_str) {
            labels.insert(label.to_owned(), s.to_owned());
        }
    }
    let starts_at = if event_type == "incident.reopened" {
        ev["occurred_at"].as_str().unwrap_or_default()
    } else {
        data["created_at"]
            .as_str()
            .or(ev["occurred_at"].as_str())
            .unwrap_or_default()
    };
    Ok(Some(AlertBatch {
        origin: Origin::Pagerduty,
        group_key: format!("pagerduty:{id}"),
        common_labels: labels.clone(),
        alerts: vec![AlertItem {
            fingerprint: id.to_owned(),
            status,
            labels,
            annotations: BTreeMap::new(),
            starts_at: starts_at.to_owned(),
        }],
        extra: json!({ "event_id": ev["id"], "event_type": event_type, "html_url": data["html_url"] }),
    }))
}

/// `POST /alerts/pagerduty`.
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = shared.resolved();
    if r.pagerduty_secrets.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "the PagerDuty receiver is not configured (alerts.pagerduty_secrets)",
        )
            .into_response();
    }
    let sig = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok());
    if !verify(&r.pagerduty_secrets, sig, &body) {
        shared
            .metrics
            .inc(Name::Rejected, &[("reason", "pagerduty_signature")]);
        return (StatusCode::UNAUTHORIZED, "no valid X-PagerDuty-Signature").into_response();
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response(),
    };
    match to_batch(&v) {
        Ok(Some(batch)) => super::admit(&shared, batch),
        Ok(None) => (
            StatusCode::OK,
            axum::Json(json!({ "ignored": v["event"]["event_type"] })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not a PagerDuty v3 incident event: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rotation_accepts_either_secret() {
        let body = br#"{"event":{}}"#;
        let old = b"old-secret".to_vec();
        let new = b"new-secret".to_vec();
        let header = format!("v1={},v1={}", sign(&old, body), sign(&new, body));
        assert!(verify(std::slice::from_ref(&new), Some(&header), body));
        assert!(verify(std::slice::from_ref(&old), Some(&header), body));
        assert!(!verify(&[b"other".to_vec()], Some(&header), body));
        assert!(!verify(&[new], Some("v1=00"), body));
        assert!(!verify(&[old], None, body));
    }

    #[test]
    fn incident_titles_give_alert_names() {
        assert_eq!(
            alertname("[FIRING:1] GPUXidErrors (node-3)"),
            "GPUXidErrors"
        );
        assert_eq!(alertname("Checkout 503s"), "Checkout");
        let v = json!({"event": {"id": "E1", "event_type": "incident.triggered", "occurred_at": "t",
            "data": {"id": "P1", "title": "[FIRING:1] GPUXidErrors", "created_at": "c", "urgency": "high",
                     "service": {"summary": "inference"}}}});
        let b = to_batch(&v).unwrap().unwrap();
        assert_eq!(b.group_key, "pagerduty:P1");
        assert_eq!(b.alerts[0].labels["alertname"], "GPUXidErrors");
        assert_eq!(b.alerts[0].labels["service"], "inference");
        let ack = json!({"event": {"event_type": "incident.acknowledged", "data": {"id": "P1"}}});
        assert_eq!(to_batch(&ack).unwrap(), None);
    }
}
