//! Who is who: chat and terminal identities mapped to Kubernetes users and groups.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigProblem, Error, Result};

/// The Kubernetes user and groups an identity acts as (and is impersonated as).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KubeIdentity {
    /// Kubernetes user name.
    pub user: String,
    /// Kubernetes groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One entry of the identity configuration (same shape as a bundle's `identities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityEntry {
    /// Plain name (`alice`); policies name members by it.
    pub name: String,
    /// Kubernetes user name.
    pub kube_user: String,
    /// Kubernetes groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Slack user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    /// Microsoft Teams (AAD) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<String>,
    /// Terminal (OS) user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
    /// True for medic's own identity, which can never approve.
    #[serde(default)]
    pub agent: bool,
}

/// A resolved identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Plain name.
    pub name: String,
    /// What Kubernetes knows it as.
    pub kube: KubeIdentity,
    /// medic itself.
    pub agent: bool,
}

/// Who is acting, as the front end saw them. Written `kind:id` (`slack:U01ALICE`,
/// `teams:29:1bob`, `terminal:alice`, `runbook:gpu-xid`); a bare word is a plain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// A plain identity name (`alice`, `medic`).
    Name(String),
    /// A Slack user id.
    Slack(String),
    /// A Microsoft Teams id.
    Teams(String),
    /// An OS user at a terminal.
    Terminal(String),
    /// An on-call runbook acting without a human (auto-approval); never mapped.
    Runbook(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Name(n) => f.write_str(n),
            Actor::Slack(n) => write!(f, "slack:{n}"),
            Actor::Teams(n) => write!(f, "teams:{n}"),
            Actor::Terminal(n) => write!(f, "terminal:{n}"),
            Actor::Runbook(n) => write!(f, "runbook:{n}"),
        }
    }
}

impl FromStr for Actor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let actor = match s.split_once(':') {
            Some(("slack", id)) => Actor::Slack(id.to_owned()),
            Some(("teams", id)) => Actor::Teams(id.to_owned()),
            Some(("terminal", id)) => Actor::Terminal(id.to_owned()),
            Some(("runbook", id)) => Actor::Runbook(id.to_owned()),
            Some(("name", id)) => Actor::Name(id.to_owned()),
            _ => Actor::Name(s.to_owned()),
        };
        let empty = match &actor {
            Actor::Name(n)
            | Actor::Slack(n)
            | Actor::Teams(n)
            | Actor::Terminal(n)
            | Actor::Runbook(n) => n.is_empty(),
        };
        if empty {
            return Err(Error::Invalid {
                what: "actor",
                message: format!("expected `kind:id` or a name, found {s:?}"),
            });
        }
        Ok(actor)
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What changed between two identity maps, by identity name (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentityDiff {
    /// New names.
    pub added: Vec<String>,
    /// Names no longer listed.
    pub removed: Vec<String>,
    /// Names whose Kubernetes user, groups or chat ids changed.
    pub changed: Vec<String>,
}

/// Maps actors to identities. Unmapped actors can read but never approve.
#[derive(Debug, Clone, Default)]
pub struct IdentityMap {
    identities: Vec<Identity>,
    by_key: HashMap<Actor, usize>,
}

impl IdentityMap {
    /// Builds the map, rejecting duplicate names and chat ids (all problems listed).
    pub fn new(entries: Vec<IdentityEntry>) -> Result<IdentityMap> {
        let mut map = IdentityMap::default();
        let mut problems = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let key = format!("identities[{i}]");
            if e.name.is_empty() || e.name.contains(':') {
                problems.push(problem(
                    &key,
                    format!(
                        "name must be non-empty and contain no ':', found {:?}",
                        e.name
                    ),
                ));
                continue;
            }
            if e.kube_user.is_empty() {
                problems.push(problem(
                    &key,
                    format!("identity {} has an empty kube_user", e.name),
                ));
                continue;
            }
            let idx = map.identities.len();
            let mut keys = vec![Actor::Name(e.name.clone())];
            keys.extend(e.slack.clone().map(Actor::Slack));
            keys.extend(e.teams.clone().map(Actor::Teams));
            keys.extend(e.terminal.clone().map(Actor::Terminal));
            for k in keys {
                if let Some(&other) = map.by_key.get(&k) {
                    problems.push(problem(
                        &key,
                        format!(
                            "{k} is already used by identity {}",
                            map.identities[other].name
                        ),
                    ));
                } else {
                    map.by_key.insert(k, idx);
                }
            }
            map.identities.push(Identity {
                name: e.name,
                kube: KubeIdentity {
                    user: e.kube_user,
                    groups: e.groups,
                },
                agent: e.agent,
            });
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(Error::Identity { problems })
        }
    }

    /// Parses a YAML list of entries (the shape of a bundle's `identities`).
    pub fn from_yaml(text: &str) -> Result<IdentityMap> {
        let entries: Vec<IdentityEntry> =
            serde_yaml::from_str(text).map_err(|e| Error::Identity {
                problems: vec![ConfigProblem {
                    key: "identities".into(),
                    line: e.location().map(|l| l.line()),
                    message: e.to_string(),
                }],
            })?;
        IdentityMap::new(entries)
    }

    /// The identity an actor maps to, if any. Runbooks never map.
    pub fn resolve(&self, actor: &Actor) -> Option<&Identity> {
        self.by_key.get(actor).map(|&i| &self.identities[i])
    }

    /// The identity with this plain name.
    pub fn by_name(&self, name: &str) -> Option<&Identity> {
        self.resolve(&Actor::Name(name.to_owned()))
    }

    /// All identities, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Identity> {
        self.identities.iter()
    }

    /// Who was added, removed or changed (Kubernetes user, groups, chat ids) from `old` to
    /// this map, by name.
    pub fn diff(&self, old: &IdentityMap) -> IdentityDiff {
        let view = |m: &IdentityMap| -> BTreeMap<String, (Identity, Vec<String>)> {
            m.identities
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut keys: Vec<String> = m
                        .by_key
                        .iter()
                        .filter(|(_, at)| **at == i)
                        .map(|(k, _)| k.to_string())
                        .collect();
                    keys.sort();
                    (id.name.clone(), (id.clone(), keys))
                })
                .collect()
        };
        let (before, after) = (view(old), view(self));
        IdentityDiff {
            added: after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .cloned()
                .collect(),
            removed: before
                .keys()
                .filter(|k| !after.contains_key(*k))
                .cloned()
                .collect(),
            changed: after
                .iter()
                .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }
}

fn problem(key: &str, message: String) -> ConfigProblem {
    ConfigProblem {
        key: key.to_owned(),
        line: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const IDS: &str = r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE, terminal: alice }
- { name: bob,   kube_user: bob@corp.example,   groups: [platform-leads], teams: "29:1bob" }
"#;

    #[test]
    fn diff_names_added_removed_and_changed_people() {
        let old = IdentityMap::from_yaml(IDS).unwrap();
        let new = IdentityMap::from_yaml(
            r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: bob,   kube_user: bob@corp.example,   groups: [platform-leads], teams: "29:1bob", slack: U02BOB }
- { name: dave,  kube_user: dave@corp.example,  groups: [sre] }
"#,
        )
        .unwrap();
        assert_eq!(
            new.diff(&old),
            IdentityDiff {
                added: vec!["dave".into()],
                removed: vec!["alice".into()],
                changed: vec!["bob".into()],
            }
        );
        assert_eq!(old.diff(&old), IdentityDiff::default());
    }

    #[test]
    fn resolves_every_kind_of_actor() {
        let map = IdentityMap::from_yaml(IDS).unwrap();
        let alice = map.resolve(&"slack:U01ALICE".parse().unwrap()).unwrap();
        assert_eq!(alice.kube.user, "alice@corp.example");
        assert_eq!(
            map.resolve(&"terminal:alice".parse().unwrap())
                .unwrap()
                .name,
            "alice"
        );
        assert_eq!(
            map.resolve(&"teams:29:1bob".parse().unwrap()).unwrap().name,
            "bob"
        );
        assert_eq!(map.resolve(&"bob".parse().unwrap()).unwrap().name, "bob");
        assert!(map.resolve(&"slack:U0NOBODY".parse().unwrap()).is_none());
        assert!(map.resolve(&"runbook:alice".parse().unwrap()).is_none());
        assert!(map.by_name("medic").unwrap().agent);
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = IdentityMap::from_yaml(
            "- { name: a, kube_user: a, slack: U1 }\n- { name: b, kube_user: b, slack: U1 }\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid identity configuration (1 problem(s)):\n  - identities[1]: slack:U1 is already used by identity a"
        );
    }

    #[test]
    fn actor_round_trips() {
        for s in [
            "alice",
            "slack:U1",
            "teams:29:1bob",
            "terminal:root",
            "runbook:gpu-xid",
        ] {
            let a: Actor = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert!("slack:".parse::<Actor>().is_err());
    }
}
