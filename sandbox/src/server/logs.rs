//! Pod logs: `container`, `previous`, `tailLines`, `sinceSeconds` / `sinceTime` (relative to
//! the scenario clock), `timestamps`, `limitBytes`. `follow` returns what exists.

use axum::response::Response;
use chrono::{DateTime, Utc};

use super::handler::{Req, Target};
use super::status::{ApiError, ApiResult};

pub(crate) fn logs(req: &Req, t: &Target) -> ApiResult<Response> {
    let (pod, logs, now) = {
        let world = req.shared.world();
        let c = &world.clusters[req.cluster];
        (
            c.get(&t.rt, &t.namespace, &t.name),
            c.logs.clone(),
            world.now,
        )
    };
    let pod = pod.ok_or_else(|| ApiError::not_found(&t.rt, &t.name))?;
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    let container = match req.q("container") {
        Some(c) => c.to_string(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                t.name,
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            return Err(ApiError::bad_request(msg));
        }
    };
    if !containers.contains(&container)
        && !init.contains(&container)
        && !ephemeral.contains(&container)
    {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {}",
            t.name
        )));
    }
    let previous = req.q_bool("previous");
    let file = logs.iter().find(|l| {
        l.namespace == t.namespace
            && l.pod == t.name
            && l.container == container
            && l.previous == previous
    });
    let Some(file) = file else {
        if previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container {container:?} in pod {:?} not found",
                t.name
            )));
        }
        return Ok(text(String::new()));
    };
    let since: Option<DateTime<Utc>> = if let Some(s) = req.q("sinceSeconds") {
        let secs: i64 = s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid sinceSeconds {s:?}")))?;
        Some(now - chrono::Duration::seconds(secs))
    } else if let Some(s) = req.q("sinceTime") {
        Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::bad_request(format!("invalid sinceTime {s:?}")))?
                .with_timezone(&Utc),
        )
    } else {
        None
    };
    let stamps = req.q_bool("timestamps");
    let mut lines: Vec<String> = file
        .lines
        .iter()
        .filter(|l| since.is_none_or(|s| l.timestamp >= s))
        .map(|l| {
            if stamps {
                format!("{} {}\n", l.timestamp_text, l.text)
            } else {
                format!("{}\n", l.text)
            }
        })
        .collect();
    if let Some(n) = req.q("tailLines") {
        let n: usize = n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid tailLines {n:?}")))?;
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut out = lines.concat();
    if let Some(limit) = req.q("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
        let mut cut = limit.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(text(out))
}

fn text(body: String) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}
