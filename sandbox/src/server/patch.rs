//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge
//! patch for the core kinds (lists merged by their Kubernetes merge keys, `$patch`,
//! `$retainKeys`, `$deleteFromPrimitiveList`, `$setElementOrder`), and server-side apply
//! treated as a strategic merge with the field manager recorded in `managedFields`.

use serde_json::{Map, Value, json};

/// The patch types the server accepts, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies `patch` to `target`; an error is a message for a 422 / 400.
pub(crate) fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), String> {
    match kind {
        PatchKind::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| format!("invalid JSON patch: {e}"))?;
            json_patch::patch(target, &p).map_err(|e| e.to_string())
        }
        PatchKind::Strategic | PatchKind::Apply => {
            let Value::Object(p) = patch else {
                return Err("a strategic merge patch must be a JSON object".into());
            };
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(t) = target {
                merge_map(t, p);
            }
            Ok(())
        }
    }
}

fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// The patch value with directives removed (for values inserted as they are).
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| e.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        if let Value::Object(m) = clean(&Value::Object(patch.clone())) {
            *target = m;
        }
        return;
    }
    for (k, pv) in patch {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(t)), Value::Array(remove)) = (target.get_mut(field), pv) {
                t.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if pv.is_null() {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), pv) {
            (Some(Value::Object(tm)), Value::Object(pm)) => {
                match pm.get("$patch").and_then(Value::as_str) {
                    Some("delete") => {
                        target.remove(k);
                    }
                    _ => merge_map(tm, pm),
                }
            }
            (Some(Value::Array(ta)), Value::Array(pa)) => merge_list(k, ta, pa),
            _ => {
                if pv.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(k);
                } else {
                    target.insert(k.clone(), clean(pv));
                }
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
}

fn merge_list(field: &str, target: &mut Vec<Value>, patch: &[Value]) {
    if patch
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = patch
            .iter()
            .filter(|e| e.get("$patch").is_none())
            .map(clean)
            .collect();
        return;
    }
    if field == "finalizers" {
        for p in patch {
            if !target.contains(p) {
                target.push(p.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field, patch) else {
        *target = patch.iter().map(clean).collect();
        return;
    };
    for pe in patch {
        let Some(kv) = pe.get(key).cloned() else {
            target.push(clean(pe));
            continue;
        };
        if pe.get("$patch").and_then(Value::as_str) == Some("delete") {
            target.retain(|e| e.get(key) != Some(&kv));
            continue;
        }
        match target.iter_mut().find(|e| e.get(key) == Some(&kv)) {
            Some(Value::Object(te)) => {
                if let Value::Object(pm) = pe {
                    merge_map(te, pm);
                }
            }
            _ => target.push(clean(pe)),
        }
    }
}

/// Records a field manager in `metadata.managedFields`.
pub(crate) fn record_manager(obj: &mut Value, manager: &str, operation: &str, time: &str) {
    let api_version = obj["apiVersion"].clone();
    let entry = json!({"manager": manager, "operation": operation, "apiVersion": api_version,
        "time": time, "fieldsType": "FieldsV1", "fieldsV1": {}});
    let list = &mut obj["metadata"]["managedFields"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(entries) = list {
        match entries
            .iter_mut()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
        {
            Some(e) => *e = entry,
            None => entries.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn smp(target: Value, patch: Value) -> Value {
        let mut t = target;
        apply(PatchKind::Strategic, &mut t, &patch).unwrap();
        t
    }

    #[test]
    fn containers_merge_by_name() {
        let t = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}]}});
        let p = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}, {"name": "X", "$patch": "delete"}]},
            {"name": "c", "image": "c:1"}]}});
        assert_eq!(
            smp(t, p),
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}]},
                {"name": "b", "image": "b:1"},
                {"name": "c", "image": "c:1"}]}})
        );
    }

    #[test]
    fn directives() {
        let t = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "tolerations": [{"key": "a"}], "m": {"x": 1, "y": 2}}, "metadata": {"finalizers": ["f1"]}});
        let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "tolerations": [{"key": "b"}], "m": {"$patch": "replace", "z": 3}},
            "metadata": {"finalizers": ["f2"], "$deleteFromPrimitiveList/finalizers": ["f1"]}});
        assert_eq!(
            smp(t, p),
            json!({"spec": {"strategy": {"type": "Recreate"}, "tolerations": [{"key": "b"}], "m": {"z": 3}},
                   "metadata": {"finalizers": ["f2"]}})
        );
    }

    #[test]
    fn ports_use_the_right_key() {
        let t = json!({"ports": [{"port": 80, "name": "http"}]});
        assert_eq!(
            smp(t, json!({"ports": [{"port": 80, "targetPort": 8080}]})),
            json!({"ports": [{"port": 80, "name": "http", "targetPort": 8080}]})
        );
    }
}
