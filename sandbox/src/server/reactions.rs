//! Scenario `reactions`: after every successful, non-dry-run write, each reaction that has not
//! fired yet is checked against the live state of every cluster; when all its conditions hold
//! its actions run once, in order. Actions are `patch` (JSON merge patch), `delete`,
//! `create` and `delete_series` (recorded for the metrics view). Actions can make further
//! reactions fire; the loop ends when a pass fires nothing.

use serde_json::Value;

use super::state::{World, meta_str};
use crate::bundle::{Action, Condition};
use crate::selector::{LabelSelector, lookup};

pub(crate) fn run(world: &mut World) {
    loop {
        let mut fired = false;
        for i in 0..world.reactions.len() {
            if world.reactions[i].1 {
                continue;
            }
            let reaction = world.reactions[i].0.clone();
            if reaction.when.iter().all(|c| holds(world, c)) {
                world.reactions[i].1 = true;
                fired = true;
                tracing::info!(reaction = i, "sandbox reaction fired");
                for a in &reaction.then {
                    act(world, a);
                }
            }
        }
        if !fired {
            break;
        }
    }
}

fn holds(world: &World, c: &Condition) -> bool {
    let Some(ci) = world.cluster_index(&c.cluster) else {
        return false;
    };
    let cluster = &world.clusters[ci];
    let Some(rt) = cluster.catalog.by_kind(&c.kind) else {
        return false;
    };
    let ns = c.namespace.as_deref().unwrap_or_default();
    if let (Some(path), Some(name)) = (&c.path, &c.name) {
        let Some(obj) = cluster.get(rt, ns, name) else {
            return false;
        };
        let got = lookup(&obj, path).cloned().unwrap_or(Value::Null);
        return Some(&got) == c.equals.as_ref();
    }
    let Some(want) = c.count else { return false };
    let Ok(sel) = LabelSelector::parse(c.selector.as_deref().unwrap_or_default()) else {
        return false;
    };
    let scope = if rt.namespaced && !ns.is_empty() {
        Some(ns)
    } else {
        None
    };
    let n = cluster
        .scan(&rt.storage, scope)
        .filter(|(_, o)| sel.matches(o))
        .filter(|(_, o)| {
            c.name
                .as_deref()
                .is_none_or(|name| meta_str(o, "name") == name)
        })
        .filter(|(_, o)| {
            c.on_node
                .as_deref()
                .is_none_or(|node| o["spec"]["nodeName"] == node)
        })
        .count();
    n as u64 == want
}

fn act(world: &mut World, a: &Action) {
    let now = world.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match a {
        Action::DeleteSeries(d) => world.deleted_series.push(d.matcher.clone()),
        Action::Patch(p) => {
            let Some(ci) = world.cluster_index(&p.cluster) else {
                return;
            };
            let c = &mut world.clusters[ci];
            let Some(rt) = c.catalog.by_kind(&p.kind).cloned() else {
                return;
            };
            let ns = p.namespace.as_deref().unwrap_or_default();
            let targets: Vec<Value> = match &p.selector {
                Some(sel) => {
                    let Ok(sel) = LabelSelector::parse(sel) else {
                        return;
                    };
                    let scope = (rt.namespaced && !ns.is_empty()).then_some(ns);
                    c.scan(&rt.storage, scope)
                        .filter(|(_, o)| sel.matches(o))
                        .map(|(_, o)| (**o).clone())
                        .collect()
                }
                None => c
                    .get(&rt, ns, &p.name)
                    .map(|o| (*o).clone())
                    .into_iter()
                    .collect(),
            };
            for mut next in targets {
                json_patch::merge(&mut next, &p.merge);
                c.put(&rt, next);
            }
        }
        Action::Delete(d) => {
            let Some(ci) = world.cluster_index(&d.cluster) else {
                return;
            };
            let c = &mut world.clusters[ci];
            if let Some(rt) = c.catalog.by_kind(&d.kind).cloned() {
                c.remove(
                    &rt,
                    d.namespace.as_deref().unwrap_or_default(),
                    &d.name,
                    false,
                );
            }
        }
        Action::Create(cr) => {
            let Some(ci) = world.cluster_index(&cr.cluster) else {
                return;
            };
            let c = &mut world.clusters[ci];
            let mut obj = cr.object.clone();
            let (Some(av), Some(kind)) = (obj["apiVersion"].as_str(), obj["kind"].as_str()) else {
                return;
            };
            let Some(rt) = c.catalog.by_api_version_kind(av, kind).cloned() else {
                return;
            };
            if c.get(&rt, meta_str(&obj, "namespace"), meta_str(&obj, "name"))
                .is_some()
            {
                return;
            }
            if obj["metadata"]["uid"].is_null() {
                obj["metadata"]["uid"] = uuid::Uuid::new_v4().to_string().into();
            }
            if obj["metadata"]["creationTimestamp"].is_null() {
                obj["metadata"]["creationTimestamp"] = now.into();
            }
            c.put(&rt, obj);
        }
    }
}
