//! Watches: newline-delimited WatchEvents (ADDED / MODIFIED / DELETED, BOOKMARK for streaming
//! lists) from a resourceVersion, fed by the cluster's change broadcast.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::handler::{Req, Target};
use super::read::{Filter, present};
use super::status::{ApiError, ApiResult};
use crate::catalog::ResourceType;

fn line(rt: &ResourceType, event: &str, obj: &Value) -> Bytes {
    let mut v =
        serde_json::to_vec(&json!({"type": event, "object": present(rt, obj)})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

pub(crate) async fn watch(req: &Req, t: &Target) -> ApiResult<Response> {
    let filter = Filter::from_req(req, t)?;
    let initial_events = req.q_bool("sendInitialEvents");
    let since = match req.q("resourceVersion") {
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        ),
        None => None,
    };
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let rt = t.rt.clone();
    let (mut rx, initial, start_rv) = {
        let world = req.shared.world();
        let c = &world.clusters[req.cluster];
        let rx = c.tx.subscribe();
        let mut initial: Vec<(&'static str, Arc<Value>)> = Vec::new();
        match since {
            Some(x) if x > 0 && !initial_events => {
                if x < c.history_floor {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {x} ({})",
                        c.history_floor
                    )));
                }
                initial.extend(
                    c.history
                        .iter()
                        .filter(|ch| {
                            ch.rv > x && ch.storage == rt.storage && filter.matches(&ch.object)
                        })
                        .map(|ch| (ch.event, ch.object.clone())),
                );
            }
            _ => initial.extend(
                c.scan(&rt.storage, filter.namespace.as_deref())
                    .filter(|(_, o)| filter.matches(o))
                    .map(|(_, o)| ("ADDED", o.clone())),
            ),
        }
        (rx, initial, c.rv)
    };
    let mut shutdown = req.shared.shutdown.clone();
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    tokio::spawn(async move {
        for (event, obj) in &initial {
            if tx.send(Ok(line(&rt, event, obj))).await.is_err() {
                return;
            }
        }
        if initial_events {
            let bookmark = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx.send(Ok(line(&rt, "BOOKMARK", &bookmark))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = shutdown.changed() => break,
                _ = tx.closed() => break,
                msg = rx.recv() => match msg {
                    Ok(ch) => {
                        if ch.rv <= start_rv || ch.storage != rt.storage || !filter.matches(&ch.object) {
                            continue;
                        }
                        if tx.send(Ok(line(&rt, ch.event, &ch.object))).await.is_err() {
                            break;
                        }
                    }
                    // A watcher that fell behind is closed; clients re-list, as with a real server.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => break,
                },
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(body_rx),
    ));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
