//! Live state of every cluster: objects keyed by storage/namespace/name, a global
//! resourceVersion per cluster, a change history and a broadcast for watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::bundle::{Bundle, LogFile, Reaction};
use crate::catalog::{Catalog, ResourceType};

/// (storage, namespace, name).
pub(crate) type Key = (String, String, String);

/// How many changes a cluster remembers for watches that resume from a resourceVersion.
const HISTORY: usize = 10_000;

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub rv: u64,
    pub storage: String,
    pub event: &'static str,
    pub object: Arc<Value>,
}

pub(crate) struct ClusterState {
    pub name: String,
    pub catalog: Catalog,
    pub rv: u64,
    pub objects: BTreeMap<Key, Arc<Value>>,
    pub history: VecDeque<Arc<Change>>,
    /// The resourceVersion before the oldest change kept in `history`.
    pub history_floor: u64,
    pub tx: broadcast::Sender<Arc<Change>>,
    pub logs: Arc<Vec<LogFile>>,
}

pub(crate) struct World {
    pub clusters: Vec<ClusterState>,
    pub reactions: Vec<(Reaction, bool)>,
    pub deleted_series: Vec<String>,
    pub now: DateTime<Utc>,
}

pub(crate) fn key_of(rt: &ResourceType, ns: &str, name: &str) -> Key {
    (
        rt.storage.clone(),
        if rt.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

pub(crate) fn meta_str<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or_default()
}

impl World {
    pub fn from_bundle(bundle: &Bundle) -> World {
        let clusters = bundle
            .clusters
            .iter()
            .map(|c| {
                let catalog = Catalog::with_crds(
                    c.objects
                        .iter()
                        .filter(|o| o["kind"] == "CustomResourceDefinition"),
                );
                let mut objects = BTreeMap::new();
                for o in &c.objects {
                    let av = o["apiVersion"].as_str().unwrap_or_default();
                    let kind = o["kind"].as_str().unwrap_or_default();
                    if let Some(rt) = catalog.by_api_version_kind(av, kind) {
                        objects.insert(
                            key_of(rt, meta_str(o, "namespace"), meta_str(o, "name")),
                            Arc::new(o.clone()),
                        );
                    }
                }
                let (tx, _) = broadcast::channel(4096);
                ClusterState {
                    name: c.name.clone(),
                    catalog,
                    rv: c.max_resource_version,
                    objects,
                    history: VecDeque::new(),
                    history_floor: c.max_resource_version,
                    tx,
                    logs: Arc::new(c.logs.clone()),
                }
            })
            .collect();
        World {
            clusters,
            reactions: bundle
                .scenario
                .reactions
                .iter()
                .map(|r| (r.clone(), false))
                .collect(),
            deleted_series: Vec::new(),
            now: bundle.now(),
        }
    }

    pub fn cluster_index(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.name == name)
    }
}

impl ClusterState {
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(&key_of(rt, ns, name)).cloned()
    }

    /// Objects of one storage, optionally in one namespace, in key order.
    pub fn scan<'a>(
        &'a self,
        storage: &'a str,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let start: Key = (
            storage.to_string(),
            ns.unwrap_or_default().to_string(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.0 == storage && ns.is_none_or(|n| k.1 == n))
    }

    fn record(&mut self, storage: &str, event: &'static str, object: Arc<Value>) {
        let change = Arc::new(Change {
            rv: self.rv,
            storage: storage.to_string(),
            event,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// Stores `obj` with a fresh resourceVersion and tells watchers.
    pub fn put(&mut self, rt: &ResourceType, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let key = key_of(rt, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
        let event = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let obj = Arc::new(obj);
        self.objects.insert(key, obj.clone());
        self.record(&rt.storage, event, obj.clone());
        obj
    }

    /// Removes an object (and, unless `orphan`, everything it owns, recursively).
    pub fn remove(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Arc<Value>> {
        let key = key_of(rt, ns, name);
        let old = self.objects.remove(&key)?;
        self.rv += 1;
        let mut gone = (*old).clone();
        gone["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let gone = Arc::new(gone);
        self.record(&rt.storage, "DELETED", gone.clone());
        if !orphan {
            let uid = meta_str(&old, "uid").to_string();
            let owned: Vec<(Key, ResourceType)> = self
                .objects
                .iter()
                .filter(|(_, o)| {
                    o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()))
                })
                .filter_map(|(k, o)| {
                    let rt = self
                        .catalog
                        .by_api_version_kind(o["apiVersion"].as_str()?, o["kind"].as_str()?)?;
                    Some((k.clone(), rt.clone()))
                })
                .collect();
            for (k, rt) in owned {
                self.remove(&rt, &k.1, &k.2, false);
            }
            if rt.kind == "Namespace" {
                let inside: Vec<(Key, Option<ResourceType>)> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| k.1 == name)
                    .map(|(k, o)| {
                        let rt = o["apiVersion"]
                            .as_str()
                            .zip(o["kind"].as_str())
                            .and_then(|(a, k)| self.catalog.by_api_version_kind(a, k))
                            .cloned();
                        (k.clone(), rt)
                    })
                    .collect();
                for (k, rt) in inside {
                    if let Some(rt) = rt {
                        self.remove(&rt, &k.1, &k.2, true);
                    }
                }
            }
        }
        Some(gone)
    }

    /// What a Deployment write implies for its ReplicaSets: a template never seen before gets a
    /// new ReplicaSet with the next revision; a template that matches an older ReplicaSet
    /// (a rollback) gives that ReplicaSet the next revision. The active ReplicaSet is scaled to
    /// the Deployment's replicas and the others to zero. Returns the revision.
    pub fn roll_deployment(
        &mut self,
        deploy: &Value,
        template_changed: bool,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let apps = self.catalog.by_plural("apps", "v1", "replicasets")?.clone();
        let ns = meta_str(deploy, "namespace").to_string();
        let name = meta_str(deploy, "name").to_string();
        let uid = meta_str(deploy, "uid").to_string();
        let template = &deploy["spec"]["template"];
        let hash = template_hash(template);
        let replicas = deploy["spec"]["replicas"].as_u64().unwrap_or(1);
        let owned: Vec<Arc<Value>> = self
            .scan(&apps.storage, Some(&ns))
            .map(|(_, o)| o.clone())
            .filter(|o| {
                // Hand-written bundles cannot know the derived uid, so the owner's name counts too.
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| {
                        r.iter().any(|r| {
                            r["uid"] == uid.as_str()
                                || (r["kind"] == "Deployment" && r["name"] == name.as_str())
                        })
                    })
            })
            .collect();
        let revision_of = |o: &Value| -> u64 {
            o["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        let max_rev = owned.iter().map(|o| revision_of(o)).max().unwrap_or(0);
        let active = owned
            .iter()
            .find(|o| template_hash(&o["spec"]["template"]) == hash)
            .cloned();
        if !template_changed && active.is_none() {
            // A pure scale of a Deployment whose ReplicaSet the bundle does not hold.
            return None;
        }
        let is_latest = active
            .as_ref()
            .is_some_and(|a| revision_of(a) == max_rev && max_rev > 0);
        let revision = if is_latest { max_rev } else { max_rev + 1 };
        for o in &owned {
            let is_active = active
                .as_ref()
                .is_some_and(|a| meta_str(a, "name") == meta_str(o, "name"));
            let want = if is_active { replicas } else { 0 };
            let mut next = (**o).clone();
            let mut changed = false;
            if next["spec"]["replicas"].as_u64() != Some(want) {
                next["spec"]["replicas"] = want.into();
                changed = true;
            }
            if is_active && revision_of(o) != revision {
                next["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                    revision.to_string().into();
                changed = true;
            }
            if changed {
                self.put(&apps, next);
            }
        }
        if active.is_none() {
            let mut labels = template["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels["pod-template-hash"] = hash.clone().into();
            let mut tpl = template.clone();
            tpl["metadata"]["labels"] = labels.clone();
            let mut selector = deploy["spec"]["selector"].clone();
            if !selector.is_object() {
                selector = json!({});
            }
            selector["matchLabels"]["pod-template-hash"] = hash.clone().into();
            let rs_name = format!("{name}-{hash}");
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name, "namespace": ns, "labels": labels,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "generation": 1,
                    "annotations": {"deployment.kubernetes.io/revision": revision.to_string(),
                                    "deployment.kubernetes.io/desired-replicas": replicas.to_string()},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                                         "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": tpl},
                "status": {"replicas": 0, "observedGeneration": 1},
            });
            self.put(&apps, rs);
        }
        Some(revision)
    }
}

/// A short stable hash of a pod template, ignoring the `pod-template-hash` label (which
/// ReplicaSets add to their copy of the template).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    if t["metadata"]["labels"]
        .as_object()
        .is_some_and(|l| l.is_empty())
        && let Some(m) = t["metadata"].as_object_mut()
    {
        m.remove("labels");
    }
    if t["metadata"].as_object().is_some_and(|m| m.is_empty())
        && let Some(o) = t.as_object_mut()
    {
        o.remove("metadata");
    }
    let digest = Sha256::digest(serde_json::to_vec(&canonical(&t)).unwrap_or_default());
    // Same alphabet idea as Kubernetes' SafeEncodeString: no vowels, no ambiguous characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest
        .iter()
        .take(10)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Sorts object keys so that equal templates hash equally whatever their key order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
