//! `policy.yaml` → [`Policy`], collecting every problem with its key and line.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::locate::Lines;
use super::{AutoApprove, DEFAULT_EXPIRY, Freeze, Member, Policy, Role, Threshold};
use crate::error::{ConfigProblem, Error, Result};
use crate::glob::patterns_intersect;
use crate::identity::IdentityMap;
use crate::plan::Risk;

fn all() -> Vec<String> {
    vec!["*".to_owned()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(default)]
    roles: Vec<RawRole>,
    #[serde(default)]
    thresholds: Vec<RawThreshold>,
    #[serde(default)]
    freezes: Vec<RawFreeze>,
    #[serde(default)]
    auto_approve: Vec<RawAuto>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default = "all")]
    playbooks: Vec<String>,
    #[serde(default = "all")]
    clusters: Vec<String>,
    #[serde(default = "all")]
    namespaces: Vec<String>,
    max_risk: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    #[serde(default)]
    name: Option<String>,
    min_risk: String,
    approvals: u32,
    #[serde(default)]
    from_roles: Vec<String>,
    #[serde(default = "all")]
    playbooks: Vec<String>,
    #[serde(default = "all")]
    clusters: Vec<String>,
    #[serde(default = "all")]
    namespaces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    name: String,
    start: String,
    end: String,
    #[serde(default = "all")]
    clusters: Vec<String>,
    #[serde(default = "all")]
    namespaces: Vec<String>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuto {
    runbook: String,
    #[serde(default)]
    playbooks: Vec<String>,
    #[serde(default = "all")]
    clusters: Vec<String>,
    #[serde(default = "all")]
    namespaces: Vec<String>,
    max_risk: String,
    run_as: String,
}

/// Parses `15m`, `90s`, `1h30m`, `2d` (units s, m, h, d; at least one second).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || {
        format!("bad duration {s:?}: expected a number followed by s, m, h or d, e.g. 15m or 1h30m")
    };
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

struct Check<'a> {
    lines: Lines,
    problems: Vec<ConfigProblem>,
    ids: &'a IdentityMap,
}

impl Check<'_> {
    fn problem(&mut self, key: String, message: String) {
        let line = self.lines.line_of(&key);
        self.problems.push(ConfigProblem { key, line, message });
    }

    fn risk(&mut self, key: String, s: &str) -> Risk {
        match s.parse::<Risk>() {
            Ok(r) => r,
            Err(_) => {
                self.problem(
                    key,
                    format!("unknown risk {s:?}; expected low, medium, high or critical"),
                );
                Risk::Low
            }
        }
    }

    fn time(&mut self, key: String, s: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                self.problem(
                    key,
                    format!("bad time {s:?} ({e}); expected RFC 3339, e.g. 2026-12-24T00:00:00Z"),
                );
                None
            }
        }
    }

    fn patterns(&mut self, key: String, pats: &[String]) {
        if pats.is_empty() {
            self.problem(
                key,
                "empty list matches nothing; use [\"*\"] for everything".into(),
            );
        } else if let Some(i) = pats.iter().position(|p| p.is_empty()) {
            self.problem(format!("{key}[{i}]"), "empty pattern".into());
        }
    }
}

impl Policy {
    /// Reads and validates a policy file against the identity map.
    pub fn load(path: &Path, identities: &IdentityMap) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Policy::parse(&text, &path.display().to_string(), identities)
    }

    /// Parses and validates policy YAML. `file` names the source in errors. Every problem
    /// found is reported at once, each with its key path and line.
    pub fn parse(text: &str, file: &str, identities: &IdentityMap) -> Result<Policy> {
        let fail = |problems| Error::Policy {
            file: file.to_owned(),
            problems,
        };
        if text.trim().is_empty() {
            return Err(fail(vec![ConfigProblem {
                key: "(file)".into(),
                line: None,
                message: "the policy is empty; delete the file to use the default policy".into(),
            }]));
        }
        let raw: RawPolicy = serde_yaml::from_str(text).map_err(|e| {
            fail(vec![ConfigProblem {
                key: "(structure)".into(),
                line: e.location().map(|l| l.line()),
                message: e.to_string(),
            }])
        })?;
        let mut c = Check {
            lines: Lines::index(text),
            problems: Vec::new(),
            ids: identities,
        };
        let policy = build(raw, &mut c);
        if c.problems.is_empty() {
            Ok(policy)
        } else {
            // Report in file order, which is how people fix them.
            c.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(fail(c.problems))
        }
    }
}

fn build(raw: RawPolicy, c: &mut Check<'_>) -> Policy {
    if let Some(v) = raw.version
        && v != 1
    {
        c.problem(
            "version".into(),
            format!("unsupported version {v}; expected 1"),
        );
    }
    let expiry = match raw.expiry.as_deref().map(parse_duration) {
        None => DEFAULT_EXPIRY,
        Some(Ok(d)) => d,
        Some(Err(msg)) => {
            c.problem("expiry".into(), msg);
            DEFAULT_EXPIRY
        }
    };

    let roles = build_roles(raw.roles, c);
    let mut role_names: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
    let mut seen = HashSet::new();
    role_names.retain(|n| seen.insert(n.clone()));

    let mut thresholds = Vec::new();
    for (i, t) in raw.thresholds.into_iter().enumerate() {
        let key = format!("thresholds[{i}]");
        let min_risk = c.risk(format!("{key}.min_risk"), &t.min_risk);
        if t.approvals == 0 {
            c.problem(format!("{key}.approvals"), "must be at least 1".into());
        }
        let mut known = true;
        for (j, r) in t.from_roles.iter().enumerate() {
            if !role_names.contains(r) {
                known = false;
                c.problem(
                    format!("{key}.from_roles[{j}]"),
                    format!(
                        "unknown role {r:?}; defined roles: {}",
                        role_names.join(", ")
                    ),
                );
            }
        }
        c.patterns(format!("{key}.playbooks"), &t.playbooks);
        c.patterns(format!("{key}.clusters"), &t.clusters);
        c.patterns(format!("{key}.namespaces"), &t.namespaces);
        if known && t.approvals > 0 {
            let counted: Vec<&Role> = roles
                .iter()
                .filter(|r| t.from_roles.is_empty() || t.from_roles.contains(&r.name))
                .filter(|r| r.max_risk >= min_risk)
                .collect();
            let eligible: BTreeSet<&str> = c
                .ids
                .iter()
                .filter(|id| counted.iter().any(|r| r.has_member(id)))
                .map(|id| id.name.as_str())
                .collect();
            if (eligible.len() as u64) < u64::from(t.approvals) {
                let mut names: Vec<&str> = counted.iter().map(|r| r.name.as_str()).collect();
                let mut seen = HashSet::new();
                names.retain(|n| seen.insert(*n));
                c.problem(
                    format!("{key}.approvals"),
                    format!(
                        "requires {} approvals but only {} distinct identities ({}) are members of roles that may approve {min_risk}-risk plans ({})",
                        t.approvals,
                        eligible.len(),
                        eligible.into_iter().collect::<Vec<_>>().join(", "),
                        names.join(", ")
                    ),
                );
            }
        }
        thresholds.push(Threshold {
            name: t.name.unwrap_or_else(|| format!("thresholds[{i}]")),
            min_risk,
            approvals: t.approvals,
            from_roles: t.from_roles,
            playbooks: t.playbooks,
            clusters: t.clusters,
            namespaces: t.namespaces,
        });
    }

    let freezes = build_freezes(raw.freezes, c);

    let mut auto_approve = Vec::new();
    for (i, a) in raw.auto_approve.into_iter().enumerate() {
        let key = format!("auto_approve[{i}]");
        if a.runbook.is_empty() {
            c.problem(format!("{key}.runbook"), "empty runbook name".into());
        }
        c.patterns(format!("{key}.playbooks"), &a.playbooks);
        c.patterns(format!("{key}.clusters"), &a.clusters);
        c.patterns(format!("{key}.namespaces"), &a.namespaces);
        let max_risk = c.risk(format!("{key}.max_risk"), &a.max_risk);
        if max_risk > Risk::Low {
            c.problem(
                format!("{key}.max_risk"),
                format!("auto-approval is limited to low-risk plans; found {max_risk}"),
            );
        }
        match c.ids.by_name(&a.run_as) {
            None => c.problem(
                format!("{key}.run_as"),
                format!(
                    "unknown identity {:?}; run_as must name an identity from the identity map",
                    a.run_as
                ),
            ),
            Some(id) if id.agent => c.problem(
                format!("{key}.run_as"),
                format!(
                    "{} is the agent identity; medic cannot authorize its own actions",
                    a.run_as
                ),
            ),
            Some(_) => {}
        }
        auto_approve.push(AutoApprove {
            runbook: a.runbook,
            playbooks: a.playbooks,
            clusters: a.clusters,
            namespaces: a.namespaces,
            max_risk,
            run_as: a.run_as,
        });
    }

    Policy {
        expiry,
        roles,
        thresholds,
        freezes,
        auto_approve,
    }
}

fn build_roles(raw: Vec<RawRole>, c: &mut Check<'_>) -> Vec<Role> {
    let mut seen = HashSet::new();
    let mut roles = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("roles[{i}]");
        if r.name.is_empty() {
            c.problem(format!("{key}.name"), "empty role name".into());
        } else if !seen.insert(r.name.clone()) {
            c.problem(
                format!("{key}.name"),
                format!("duplicate role {:?}", r.name),
            );
        }
        if r.members.is_empty() {
            c.problem(
                format!("{key}.members"),
                format!("role {:?} has no members", r.name),
            );
        }
        let mut members = Vec::new();
        for (j, m) in r.members.iter().enumerate() {
            let member = if m == "*" {
                Some(Member::Any)
            } else if let Some(u) = m.strip_prefix("user:") {
                (!u.is_empty()).then(|| Member::User(u.to_owned()))
            } else if let Some(g) = m.strip_prefix("group:") {
                (!g.is_empty()).then(|| Member::Group(g.to_owned()))
            } else if c.ids.by_name(m).is_some() {
                Some(Member::Identity(m.clone()))
            } else {
                None
            };
            match member {
                Some(member) => members.push(member),
                None => c.problem(
                    format!("{key}.members[{j}]"),
                    format!("unknown identity {m:?}; expected a name from the identity map, user:<kube user>, group:<kube group> or *"),
                ),
            }
            if c.ids.by_name(m).is_some_and(|id| id.agent) {
                c.problem(
                    format!("{key}.members[{j}]"),
                    format!("{m} is the agent identity, which can never approve"),
                );
            }
        }
        c.patterns(format!("{key}.playbooks"), &r.playbooks);
        c.patterns(format!("{key}.clusters"), &r.clusters);
        c.patterns(format!("{key}.namespaces"), &r.namespaces);
        let max_risk = c.risk(format!("{key}.max_risk"), &r.max_risk);
        roles.push(Role {
            name: r.name,
            members,
            playbooks: r.playbooks,
            clusters: r.clusters,
            namespaces: r.namespaces,
            max_risk,
        });
    }
    roles
}

fn build_freezes(raw: Vec<RawFreeze>, c: &mut Check<'_>) -> Vec<Freeze> {
    let mut freezes: Vec<(usize, Freeze)> = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let key = format!("freezes[{i}]");
        let start = c.time(format!("{key}.start"), &f.start);
        let end = c.time(format!("{key}.end"), &f.end);
        if f.reason.trim().is_empty() {
            c.problem(
                format!("{key}.reason"),
                "a freeze needs a reason; it is shown to everyone it blocks".into(),
            );
        }
        c.patterns(format!("{key}.clusters"), &f.clusters);
        c.patterns(format!("{key}.namespaces"), &f.namespaces);
        let (Some(start), Some(end)) = (start, end) else {
            continue;
        };
        if end <= start {
            c.problem(
                format!("{key}.end"),
                format!(
                    "freeze {:?} ends ({end}) before it starts ({start})",
                    f.name
                ),
            );
            continue;
        }
        let freeze = Freeze {
            name: f.name,
            start,
            end,
            clusters: f.clusters,
            namespaces: f.namespaces,
            reason: f.reason,
        };
        for (j, other) in &freezes {
            if freeze.start < other.end
                && other.start < freeze.end
                && patterns_intersect(&freeze.clusters, &other.clusters)
                && patterns_intersect(&freeze.namespaces, &other.namespaces)
            {
                c.problem(
                    format!("{key}.start"),
                    format!(
                        "freeze {:?} overlaps freeze {:?} (freezes[{j}]) in time and scope; merge them into one",
                        freeze.name, other.name
                    ),
                );
            }
        }
        freezes.push((i, freeze));
    }
    freezes.into_iter().map(|(_, f)| f).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn ids() -> IdentityMap {
        IdentityMap::from_yaml(
            r#"
- { name: medic, kube_user: "system:serviceaccount:medic:medic", agent: true }
- { name: alice, kube_user: alice@corp.example, groups: [sre], slack: U01ALICE }
- { name: bob,   kube_user: bob@corp.example,   groups: [platform-leads], teams: "29:1bob" }
- { name: carol, kube_user: carol@corp.example, groups: [sre] }
- { name: bot,   kube_user: "system:serviceaccount:medic:runbooks" }
"#,
        )
        .unwrap()
    }

    fn problems(src: &str) -> Vec<String> {
        match Policy::parse(src, "policy.yaml", &ids()) {
            Ok(_) => panic!("policy unexpectedly valid"),
            Err(Error::Policy { file, problems }) => {
                assert_eq!(file, "policy.yaml");
                problems.iter().map(|p| p.to_string()).collect()
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn example_policy_is_valid() {
        let text = include_str!("../../policy.example.yaml");
        let p = Policy::parse(text, "policy.example.yaml", &ids()).unwrap();
        assert_eq!(p.expiry, Duration::from_secs(15 * 60));
        assert_eq!(p.roles.len(), 2);
        assert_eq!(p.thresholds.len(), 2);
        assert_eq!(p.freezes.len(), 1);
        assert_eq!(p.auto_approve.len(), 1);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "15", "m", "15 minutes", "0s", "1x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_collected_with_key_and_line() {
        let src = r#"version: 2
expiry: 15 minutes
roles:
  - name: sre
    members: [alice, carol, dave]
    max_risk: critical
  - name: sre
    members: [medic]
    namespaces: []
    max_risk: high
thresholds:
  - min_risk: high
    approvals: 3
    from_roles: [sre]
  - min_risk: severe
    approvals: 0
    from_roles: [leads]
freezes:
  - name: quarter-end
    start: 2026-12-20T00:00:00Z
    end: 2026-12-19T00:00:00Z
    reason: close of books
  - name: black-friday
    start: 2026-11-27T00:00:00Z
    end: 2026-11-30T00:00:00Z
    namespaces: [payments]
    reason: peak traffic
  - name: payments-week
    start: 2026-11-29T00:00:00Z
    end: yesterday
    reason: ""
  - name: payments-again
    start: 2026-11-28T00:00:00Z
    end: 2026-12-01T00:00:00Z
    clusters: ["aks-*"]
    namespaces: ["pay*"]
    reason: audit
auto_approve:
  - runbook: gpu-xid
    playbooks: [rollout-restart]
    max_risk: high
    run_as: medic
  - runbook: oom
    playbooks: [raise-memory-limit]
    max_risk: low
    run_as: zed
"#;
        let expected = vec![
            "line 1: version: unsupported version 2; expected 1",
            "line 2: expiry: bad duration \"15 minutes\": expected a number followed by s, m, h or d, e.g. 15m or 1h30m",
            "line 5: roles[0].members[2]: unknown identity \"dave\"; expected a name from the identity map, user:<kube user>, group:<kube group> or *",
            "line 7: roles[1].name: duplicate role \"sre\"",
            "line 8: roles[1].members[0]: medic is the agent identity, which can never approve",
            "line 9: roles[1].namespaces: empty list matches nothing; use [\"*\"] for everything",
            "line 13: thresholds[0].approvals: requires 3 approvals but only 2 distinct identities (alice, carol) are members of roles that may approve high-risk plans (sre)",
            "line 15: thresholds[1].min_risk: unknown risk \"severe\"; expected low, medium, high or critical",
            "line 16: thresholds[1].approvals: must be at least 1",
            "line 17: thresholds[1].from_roles[0]: unknown role \"leads\"; defined roles: sre",
            "line 21: freezes[0].end: freeze \"quarter-end\" ends (2026-12-19 00:00:00 UTC) before it starts (2026-12-20 00:00:00 UTC)",
            "line 30: freezes[2].end: bad time \"yesterday\" (premature end of input); expected RFC 3339, e.g. 2026-12-24T00:00:00Z",
            "line 31: freezes[2].reason: a freeze needs a reason; it is shown to everyone it blocks",
            "line 33: freezes[3].start: freeze \"payments-again\" overlaps freeze \"black-friday\" (freezes[1]) in time and scope; merge them into one",
            "line 41: auto_approve[0].max_risk: auto-approval is limited to low-risk plans; found high",
            "line 42: auto_approve[0].run_as: medic is the agent identity; medic cannot authorize its own actions",
            "line 46: auto_approve[1].run_as: unknown identity \"zed\"; run_as must name an identity from the identity map",
        ];
        assert_eq!(problems(src), expected);
    }

    #[test]
    fn structural_errors_name_the_line() {
        let got = problems("roles:\n  - name: sre\n    membrs: [alice]\n    max_risk: low\n");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("line 3: (structure): roles[0]: unknown field `membrs`"),
            "{}",
            got[0]
        );
        assert_eq!(
            problems("   \n"),
            vec!["(file): the policy is empty; delete the file to use the default policy"]
        );
    }

    #[test]
    fn error_message_names_the_file() {
        let err = Policy::parse("expiry: soon\n", "/etc/medic/policy.yaml", &ids()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid approval policy /etc/medic/policy.yaml (1 problem(s)); fix them and restart:\n  - line 1: expiry: bad duration \"soon\": expected a number followed by s, m, h or d, e.g. 15m or 1h30m"
        );
    }
}
