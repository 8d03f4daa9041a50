//! `medic snapshot`: capture an incident bundle (see BUNDLE.md) from live clusters.
//!
//! What is captured, per context: every listable namespaced resource of the selected
//! namespaces (events included), the selected Namespace objects, Nodes, RBAC (cluster roles
//! and bindings), and the CustomResourceDefinitions of custom kinds that have objects; current
//! and previous logs of unhealthy pods, bounded per container; optionally Prometheus series
//! over a window. Secret values are never written: each value becomes a redaction marker so
//! the bundle can be shared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{AsyncBufReadExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use serde_json::{Value, json};

use crate::cli::SnapshotArgs;
use crate::kubectx::{Connected, KubeTarget};

/// The base64 of this marker replaces every Secret value.
pub const SECRET_MARKER: &str = "<redacted by medic snapshot>";

/// Resources that cannot be listed meaningfully or duplicate others.
const SKIP: &[(&str, &str)] = &[
    ("events.k8s.io", "events"),
    ("", "componentstatuses"),
    ("", "bindings"),
    ("coordination.k8s.io", "leases"),
    ("metrics.k8s.io", "pods"),
    ("metrics.k8s.io", "nodes"),
];

/// Cluster-scoped kinds captured in full.
const CLUSTER_KINDS: &[(&str, &str)] = &[
    ("", "nodes"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("storage.k8s.io", "storageclasses"),
    ("resource.k8s.io", "resourceslices"),
    ("resource.k8s.io", "deviceclasses"),
];

/// Runs the snapshot.
///
/// `known` are the clusters of medic.yaml: a captured context that matches one keeps its
/// region and labels (residency…), which placement policies need when the bundle is replayed.
pub async fn run(
    target: &KubeTarget,
    args: &SnapshotArgs,
    known: &[crate::config::ClusterConfig],
) -> Result<PathBuf> {
    prepare_output(&args.output)?;
    let now = Utc::now();
    let mut contexts = vec![target.context.clone()];
    contexts.extend(args.also_contexts.iter().cloned().map(Some));
    let mut clusters = Vec::new();
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} [{pos} objects]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let mut agent_user = None;
    for context in contexts {
        let t = KubeTarget {
            context,
            ..target.clone()
        };
        let conn = t.connect().await?;
        progress.set_prefix(conn.context.clone());
        if agent_user.is_none() {
            agent_user = whoami(&conn.client).await;
        }
        let name = folder_name(&conn.context);
        capture_cluster(&conn, &name, args, &args.output, &progress).await?;
        let labels = known
            .iter()
            .find(|c| c.context() == conn.context)
            .map(|c| c.labels.clone())
            .unwrap_or_default();
        clusters.push((name, labels));
    }
    if let Some(url) = &args.prometheus {
        progress.set_message(format!("series from {url}"));
        let names: Vec<String> = clusters.iter().map(|(n, _)| n.clone()).collect();
        capture_series(url, &args.series, &args.window, now, &names, &args.output).await?;
    }
    progress.finish_and_clear();
    write_scenario(&args.output, args, now, &clusters, agent_user.as_deref())?;
    Ok(args.output.clone())
}

fn prepare_output(dir: &Path) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} already exists and is not empty; choose a new folder so nothing is overwritten",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// A context name usable as a folder and cluster name (`arn:aws:eks:…/prod` → `prod`).
fn folder_name(context: &str) -> String {
    let base = context.rsplit('/').next().unwrap_or(context);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Who the client is, from a SelfSubjectReview; None when the server does not offer it.
async fn whoami(client: &kube::Client) -> Option<String> {
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"
            }))
            .ok()?,
        )
        .ok()?;
    let v: Value = client.request(req).await.ok()?;
    v.pointer("/status/userInfo/username")
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn capture_cluster(
    conn: &Connected,
    cluster: &str,
    args: &SnapshotArgs,
    out: &Path,
    progress: &ProgressBar,
) -> Result<()> {
    let client = conn.client.clone();
    progress.set_message("discovering API resources");
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .with_context(|| format!("API discovery failed on context `{}`", conn.context))?;
    let namespaces: Vec<String> = if args.all_namespaces {
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
        );
        list_all(&api)
            .await?
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    } else if !args.namespaces.is_empty() {
        args.namespaces.clone()
    } else {
        vec![conn.namespace.clone()]
    };
    let dir = out.join("clusters").join(cluster).join("objects");
    std::fs::create_dir_all(&dir)?;
    let mut used_groups: BTreeSet<(String, String)> = BTreeSet::new();
    let mut crds: Vec<Value> = Vec::new();
    let mut pods: Vec<Value> = Vec::new();

    // Namespaces themselves.
    let ns_api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    let mut ns_docs = Vec::new();
    for ns in &namespaces {
        match ns_api.get_opt(ns).await? {
            Some(o) => ns_docs.push(clean(serde_json::to_value(o)?)),
            None => bail!(
                "namespace `{ns}` does not exist on context `{}`",
                conn.context
            ),
        }
    }
    write_docs(&dir.join("namespaces.yaml"), &ns_docs)?;
    progress.inc(ns_docs.len() as u64);

    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST)
                || SKIP.contains(&(ar.group.as_str(), ar.plural.as_str()))
            {
                continue;
            }
            let docs: Vec<Value> = match caps.scope {
                Scope::Namespaced => {
                    let mut all = Vec::new();
                    for ns in &namespaces {
                        progress.set_message(format!("{} in {ns}", ar.plural));
                        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                        all.extend(list_all(&api).await.unwrap_or_default());
                    }
                    all.into_iter()
                        .map(|o| to_doc(o, &ar))
                        .collect::<Result<_>>()?
                }
                Scope::Cluster => {
                    let wanted = CLUSTER_KINDS.contains(&(ar.group.as_str(), ar.plural.as_str()));
                    let is_crd = ar.group == "apiextensions.k8s.io"
                        && ar.plural == "customresourcedefinitions";
                    if !wanted && !is_crd {
                        continue;
                    }
                    progress.set_message(ar.plural.clone());
                    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                    let objs = list_all(&api).await.unwrap_or_default();
                    let docs: Vec<Value> = objs
                        .into_iter()
                        .map(|o| to_doc(o, &ar))
                        .collect::<Result<_>>()?;
                    if is_crd {
                        crds = docs;
                        continue;
                    }
                    docs
                }
            };
            if docs.is_empty() {
                continue;
            }
            if ar.plural == "pods" && ar.group.is_empty() {
                pods = docs.clone();
            }
            used_groups.insert((ar.group.clone(), ar.kind.clone()));
            progress.inc(docs.len() as u64);
            let file = if ar.group.is_empty() {
                format!("{}.yaml", ar.plural)
            } else {
                format!("{}.{}.yaml", ar.plural, ar.group)
            };
            write_docs(&dir.join(file), &docs)?;
        }
    }
    let in_use: Vec<Value> = crds
        .into_iter()
        .filter(|crd| {
            let group = crd.pointer("/spec/group").and_then(Value::as_str);
            let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str);
            matches!((group, kind), (Some(g), Some(k)) if used_groups.contains(&(g.to_string(), k.to_string())))
        })
        .collect();
    if !in_use.is_empty() {
        write_docs(&dir.join("customresourcedefinitions.yaml"), &in_use)?;
    }
    capture_logs(&client, cluster, &pods, args.max_log_lines, out, progress).await
}

async fn list_all(api: &Api<DynamicObject>) -> Result<Vec<DynamicObject>> {
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        out.extend(page.items);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

fn to_doc(obj: DynamicObject, ar: &ApiResource) -> Result<Value> {
    let mut v = serde_json::to_value(obj)?;
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), json!(ar.api_version));
        map.insert("kind".into(), json!(ar.kind));
    }
    if ar.kind == "Secret" && ar.group.is_empty() {
        redact_secret(&mut v);
    }
    Ok(clean(v))
}

/// Drops what a replay does not need (managedFields) and keeps identity fields.
fn clean(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

fn redact_secret(v: &mut Value) {
    use base64::Engine as _;
    let marker = base64::engine::general_purpose::STANDARD.encode(SECRET_MARKER);
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            *value = json!(marker);
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("stringData");
    }
}

fn write_docs(path: &Path, docs: &[Value]) -> Result<()> {
    let mut text = String::new();
    for d in docs {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(d)?);
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn unhealthy(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if !matches!(phase, Some("Running") | Some("Succeeded")) {
        return true;
    }
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    statuses.into_iter().flatten().any(|c| {
        c.get("ready") == Some(&json!(false)) && phase != Some("Succeeded")
            || c.get("restartCount").and_then(Value::as_u64).unwrap_or(0) > 0
    })
}

async fn capture_logs(
    client: &kube::Client,
    cluster: &str,
    pods: &[Value],
    max_lines: usize,
    out: &Path,
    progress: &ProgressBar,
) -> Result<()> {
    for pod in pods.iter().filter(|p| unhealthy(p)) {
        let (Some(ns), Some(name)) = (
            pod.pointer("/metadata/namespace").and_then(Value::as_str),
            pod.pointer("/metadata/name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
        let dir = out
            .join("clusters")
            .join(cluster)
            .join("logs")
            .join(ns)
            .join(name);
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in statuses {
            let Some(container) = c.get("name").and_then(Value::as_str) else {
                continue;
            };
            progress.set_message(format!("logs {ns}/{name}/{container}"));
            let restarted = c.get("restartCount").and_then(Value::as_u64).unwrap_or(0) > 0;
            for previous in [false, true] {
                if previous && !restarted {
                    continue;
                }
                let params = LogParams {
                    container: Some(container.to_string()),
                    previous,
                    timestamps: true,
                    tail_lines: Some(i64::try_from(max_lines).unwrap_or(i64::MAX)),
                    ..LogParams::default()
                };
                // A container that never started has no log; that is not an error.
                let Ok(stream) = api.log_stream(name, &params).await else {
                    continue;
                };
                let mut lines = stream.lines();
                let mut text = String::new();
                let mut n = 0;
                while let Some(line) = lines.try_next().await? {
                    if n == max_lines {
                        break;
                    }
                    text.push_str(&line);
                    text.push('\n');
                    n += 1;
                }
                if text.is_empty() {
                    continue;
                }
                std::fs::create_dir_all(&dir)?;
                let file = if previous {
                    format!("{container}.previous.log")
                } else {
                    format!("{container}.log")
                };
                std::fs::write(dir.join(file), text)?;
            }
        }
    }
    Ok(())
}

async fn capture_series(
    base: &str,
    selectors: &[String],
    window: &str,
    now: DateTime<Utc>,
    clusters: &[String],
    out: &Path,
) -> Result<()> {
    if selectors.is_empty() {
        bail!(
            "--prometheus needs at least one --series selector, e.g. --series 'DCGM_FI_DEV_XID_ERRORS'"
        );
    }
    let window = crate::config::humantime_like(window)
        .ok_or_else(|| anyhow!("--window: expected a duration such as 1h, found `{window}`"))?;
    let step = (window.as_secs() / 240).max(15);
    let start = now.timestamp() - i64::try_from(window.as_secs()).unwrap_or(3600);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // family name → rendered sample lines, so each family stays contiguous as OpenMetrics requires.
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sel in selectors {
        let url = format!("{}/api/v1/query_range", base.trim_end_matches('/'));
        let resp: Value = http
            .get(&url)
            .query(&[
                ("query", sel.as_str()),
                ("start", &start.to_string()),
                ("end", &now.timestamp().to_string()),
                ("step", &step.to_string()),
            ])
            .send()
            .await
            .with_context(|| format!("Prometheus at {base} is unreachable"))?
            .json()
            .await
            .with_context(|| format!("Prometheus at {base} did not answer with JSON"))?;
        if resp.get("status") != Some(&json!("success")) {
            bail!(
                "Prometheus rejected `{sel}`: {}",
                resp.get("error").unwrap_or(&Value::Null)
            );
        }
        for series in resp
            .pointer("/data/result")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(metric) = series.get("metric").and_then(Value::as_object) else {
                continue;
            };
            let Some(name) = metric.get("__name__").and_then(Value::as_str) else {
                continue;
            };
            let mut labels: BTreeMap<&str, &str> = metric
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                .collect();
            if clusters.len() == 1 && !labels.contains_key("cluster") {
                labels.insert("cluster", clusters[0].as_str());
            }
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let lines = families.entry(name.to_string()).or_default();
            for point in series
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(t), Some(v)) = (
                    point.get(0).and_then(Value::as_f64),
                    point.get(1).and_then(Value::as_str),
                ) {
                    lines.push(format!("{name}{{{}}} {v} {t}", rendered.join(",")));
                }
            }
        }
    }
    let mut text = String::new();
    for (name, lines) in families {
        text.push_str(&format!("# TYPE {name} gauge\n"));
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    std::fs::create_dir_all(out.join("metrics"))?;
    std::fs::write(out.join("metrics").join("snapshot.om"), text)?;
    Ok(())
}

fn write_scenario(
    out: &Path,
    args: &SnapshotArgs,
    now: DateTime<Utc>,
    clusters: &[(String, BTreeMap<String, String>)],
    agent_user: Option<&str>,
) -> Result<()> {
    let question = args.question.clone().unwrap_or_else(|| {
        "What is wrong in the captured namespaces, and what should we do about it?".to_string()
    });
    let scenario = json!({
        "version": 1,
        "title": format!(
            "Snapshot of {} at {}",
            clusters.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            now.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        "description": "Captured by `medic snapshot`. Secret values are redacted.",
        "now": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "clusters": clusters.iter().map(|(name, labels)| {
            let mut c = json!({ "name": name, "prometheus": args.prometheus.is_some() });
            let mut labels = labels.clone();
            if let Some(region) = labels.remove("region") {
                c["region"] = json!(region);
            }
            if !labels.is_empty() {
                c["labels"] = json!(labels);
            }
            c
        }).collect::<Vec<_>>(),
        "start": { "question": question },
        "identities": [
            { "name": "medic", "kube_user": agent_user.unwrap_or("system:serviceaccount:medic:medic"), "agent": true }
        ],
    });
    std::fs::write(out.join("scenario.yaml"), serde_yaml::to_string(&scenario)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn folder_names_are_safe() {
        assert_eq!(folder_name("arn:aws:eks:us-east-1:1:cluster/prod"), "prod");
        assert_eq!(folder_name("gke_proj_eu w"), "gke_proj_eu-w");
    }

    #[test]
    fn unhealthy_pods() {
        let ok = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0}]}});
        let crash = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 5}]}});
        let pending = json!({"status": {"phase": "Pending"}});
        assert!(!unhealthy(&ok));
        assert!(unhealthy(&crash));
        assert!(unhealthy(&pending));
    }

    #[test]
    fn secrets_are_redacted() {
        let mut s = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}, "stringData": {"x": "y"}});
        redact_secret(&mut s);
        assert_eq!(
            s["data"]["password"],
            json!("PHJlZGFjdGVkIGJ5IG1lZGljIHNuYXBzaG90Pg==")
        );
        assert!(s.get("stringData").is_none());
    }
}
