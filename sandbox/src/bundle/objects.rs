//! `clusters/<cluster>/objects/*.yaml`: reading Kubernetes objects with their file and line,
//! the object rules, and the defaults the sandbox fills in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::yamldoc::{parse, split_docs};
use super::{rel, sorted_entries};
use crate::catalog::{Catalog, split_api_version};
use crate::error::Problem;

/// An object as read, with where it came from.
pub(crate) struct Located {
    pub value: Value,
    pub file: String,
    pub line: usize,
}

/// Reads every object file of one cluster.
pub(crate) fn read_dir(root: &Path, cluster: &str, problems: &mut Vec<Problem>) -> Vec<Located> {
    let dir = root.join("clusters").join(cluster).join("objects");
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    for path in sorted_entries(&dir, problems, root) {
        let file = rel(root, &path);
        if path.is_dir() {
            problems.push(Problem::new(
                file,
                None,
                "objects/ must hold only .yaml or .yml files, found a folder",
            ));
            continue;
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if ext != "yaml" && ext != "yml" {
            problems.push(Problem::new(
                file,
                None,
                "objects/ must hold only .yaml or .yml files",
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem::new(
                    file,
                    None,
                    format!("cannot read the file: {e}"),
                ));
                continue;
            }
        };
        for doc in split_docs(&text) {
            match parse::<Value>(doc.text, doc.first_line) {
                Ok(Value::Null) => {}
                Ok(Value::Object(m)) => {
                    let v = Value::Object(m);
                    if v["kind"].as_str().is_some_and(|k| k.ends_with("List")) && v["items"].is_array() {
                        for item in v["items"].as_array().into_iter().flatten() {
                            out.push(Located { value: item.clone(), file: file.clone(), line: doc.first_line });
                        }
                    } else {
                        out.push(Located { value: v, file: file.clone(), line: doc.first_line });
                    }
                }
                Ok(_) => problems.push(Problem::new(
                    file.clone(),
                    Some(doc.first_line),
                    "each YAML document must be a Kubernetes object (a mapping with apiVersion, kind and metadata)",
                )),
                Err((line, msg)) => problems.push(Problem::new(file.clone(), line, format!("invalid YAML: {msg}"))),
            }
        }
    }
    out
}

/// Applies the object rules; returns the valid objects.
pub(crate) fn check(
    objects: Vec<Located>,
    catalog: &Catalog,
    problems: &mut Vec<Problem>,
) -> Vec<Value> {
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut out = Vec::new();
    for o in objects {
        let v = &o.value;
        let at = |msg: String| Problem::new(o.file.clone(), Some(o.line), msg);
        let (Some(api_version), Some(kind)) = (v["apiVersion"].as_str(), v["kind"].as_str()) else {
            problems.push(at("every object needs `apiVersion` and `kind`".into()));
            continue;
        };
        let Some(name) = v["metadata"]["name"].as_str().filter(|n| !n.is_empty()) else {
            problems.push(at(format!("{kind} needs `metadata.name`")));
            continue;
        };
        let Some(rt) = catalog.by_api_version_kind(api_version, kind) else {
            problems.push(at(format!(
                "{kind} {name:?}: kind {kind} in {api_version} is not served; add its CustomResourceDefinition to the objects or use a built-in kind"
            )));
            continue;
        };
        let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
        if rt.namespaced && ns.is_empty() {
            problems.push(at(format!(
                "{kind} {name:?} is namespaced and needs `metadata.namespace`"
            )));
            continue;
        }
        if !rt.namespaced && !ns.is_empty() {
            problems.push(at(format!(
                "{kind} {name:?} is cluster-scoped and must not set `metadata.namespace`"
            )));
            continue;
        }
        let here = format!("{}:{}", o.file, o.line);
        if let Some(first) = seen.get(&(rt.storage.clone(), ns.to_string(), name.to_string())) {
            let whom = if ns.is_empty() {
                format!("{kind} {name:?}")
            } else {
                format!("{kind} {ns}/{name}")
            };
            problems.push(at(format!(
                "{whom} is defined more than once in this cluster (first at {first})"
            )));
            continue;
        }
        seen.insert((rt.storage.clone(), ns.to_string(), name.to_string()), here);
        out.push(o.value);
    }
    out
}

/// Adds namespaces that objects use but nobody declared (plus `default` and `kube-system`).
pub(crate) fn add_missing_namespaces(objects: &mut Vec<Value>) {
    let declared: BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace" && o["apiVersion"] == "v1")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let mut used: BTreeSet<String> = ["default", "kube-system"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    used.extend(
        objects
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_string)),
    );
    for ns in used.difference(&declared) {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
    }
}

/// A UUID derived from the object's identity, so it is the same on every start.
pub(crate) fn stable_uid(
    cluster: &str,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> String {
    let (group, _) = split_api_version(api_version);
    let digest = Sha256::digest(format!("{cluster}/{group}/{kind}/{ns}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Fills `uid`, `resourceVersion` and `creationTimestamp` where absent (deterministically), and
/// returns the highest resourceVersion in use.
pub(crate) fn fill_defaults(cluster: &str, objects: &mut [Value], now: DateTime<Utc>) -> u64 {
    let mut max_rv: u64 = objects
        .iter()
        .filter_map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .max()
        .unwrap_or(0);
    let created =
        (now - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for o in objects.iter_mut() {
        let api_version = o["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        let ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !meta.contains_key("uid") {
            meta.insert(
                "uid".into(),
                stable_uid(cluster, &api_version, &kind, &ns, &name).into(),
            );
        }
        let has_rv = meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| s.parse::<u64>().is_ok());
        if !has_rv {
            max_rv += 1;
            meta.insert("resourceVersion".into(), max_rv.to_string().into());
        }
        if !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), created.clone().into());
        }
        if matches!(
            kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) && !meta.contains_key("generation")
        {
            meta.insert("generation".into(), 1.into());
        }
    }
    link_uids(objects);
    max_rv
}

/// Hand-written bundles cannot know derived uids: references by kind and name (owner
/// references, an event's involvedObject / regarding) get the referenced object's uid.
fn link_uids(objects: &mut [Value]) {
    let index: BTreeMap<(String, String, String), String> = objects
        .iter()
        .filter_map(|o| {
            let kind = o["kind"].as_str()?.to_string();
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let name = o["metadata"]["name"].as_str()?.to_string();
            Some(((kind, ns, name), o["metadata"]["uid"].as_str()?.to_string()))
        })
        .collect();
    let find = |kind: &Value, ns: &str, name: &Value| -> Option<String> {
        let key = (
            kind.as_str()?.to_string(),
            ns.to_string(),
            name.as_str()?.to_string(),
        );
        index
            .get(&key)
            .or_else(|| index.get(&(key.0.clone(), String::new(), key.2.clone())))
            .cloned()
    };
    for o in objects.iter_mut() {
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
            for r in refs {
                if r["uid"].is_null()
                    && let Some(uid) = find(&r["kind"], &ns, &r["name"])
                {
                    r["uid"] = uid.into();
                }
            }
        }
        if o["kind"] == "Event" {
            for field in ["involvedObject", "regarding"] {
                let target = &o[field];
                if target.is_object() && target["uid"].is_null() {
                    let tns = target["namespace"].as_str().unwrap_or(&ns).to_string();
                    if let Some(uid) = find(&target["kind"], &tns, &target["name"]) {
                        o[field]["uid"] = uid.into();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn uids_are_stable_and_distinct() {
        let a = stable_uid("c", "v1", "Pod", "ns", "a");
        assert_eq!(a, stable_uid("c", "v1", "Pod", "ns", "a"));
        assert_ne!(a, stable_uid("c", "v1", "Pod", "ns", "b"));
        assert_eq!(a.len(), 36);
    }
}
