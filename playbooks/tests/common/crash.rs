#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! The kill -9 harness shared by `tests/crash.rs` (a few dozen iterations) and
//! `benches/crash.rs` (`CRASH_ITERATIONS=1000`).
//!
//! The parent serves gpu-xid79 from an in-process sandbox (so its request log survives the
//! child) and runs a child process that plans, requests, approves (bob) and executes through
//! [`Executor::resume`]. The child prints a line for everything acknowledged to it (the book
//! returned, or the executor emitted a progress event, which happens only after its record
//! was fsynced). The parent SIGKILLs the child at random points, then restarts it, until a
//! child finishes. After every kill: the log is reopened (torn-tail repair, as a restart
//! does), `audit verify` must pass, and every acknowledged record must be in the log. At the
//! end of an iteration: every mutation the sandbox accepted happened exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medic_approvals::audit::{AuditLog, AuditRecord, ExportFilter, RecordKind, export, verify};
use medic_approvals::{
    Actor, ApprovalBook, Decision, IdentityEntry, IdentityMap, KubeAccessReviewer,
    Outcome as BookOutcome, Policy, shared,
};
use medic_playbooks::{
    ClusterSpec, Clusters, Executor, Outcome, Plan, PlanContext, Progress, propose,
};
use medic_sandbox::{Bundle, Sandbox, SandboxOptions};
use serde_json::{Value, json};

pub const CHILD_ENV: &str = "MEDIC_CRASH_CHILD";
const POLICY: &str = "version: 1\nexpiry: 15m\nroles:\n  - name: sre\n    members: [\"group:sre\"]\n    max_risk: critical\n  - name: platform-leads\n    members: [\"group:platform-leads\"]\n    max_risk: critical\n";

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/bundles/gpu-xid79")
}

fn identities(bundle: &Bundle) -> IdentityMap {
    let entries = bundle
        .scenario
        .identities
        .iter()
        .map(|i| IdentityEntry {
            name: i.name.clone(),
            kube_user: i.kube_user.clone(),
            groups: i.groups.clone(),
            slack: i.slack.clone(),
            teams: i.teams.clone(),
            terminal: None,
            agent: i.agent,
        })
        .collect();
    IdentityMap::new(entries).unwrap()
}

/// Child mode: `MEDIC_CRASH_CHILD=<kubeconfig>|<data dir>|<now>`.
pub fn child_main(spec: &str) {
    // Ends any partial line a test harness printed, so every tag starts a line.
    println!();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut parts = spec.split('|');
    let (kubeconfig, data, now) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let now: chrono::DateTime<chrono::Utc> = now.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let bundle = Bundle::load(bundle_dir()).unwrap();
        let ids = identities(&bundle);
        let specs = bundle.scenario.clusters.iter().map(|c| ClusterSpec { name: c.name.clone(), labels: c.labels.clone() }).collect();
        let clusters = Clusters::from_kubeconfig(Path::new(kubeconfig), specs).await.unwrap();
        let mut reviewer = KubeAccessReviewer::new();
        for c in clusters.iter() {
            reviewer = reviewer.with_cluster(c.spec.name.clone(), c.client().clone());
        }
        let policy = Policy::parse(POLICY, "policy.yaml", &ids).unwrap();
        let book = Arc::new(ApprovalBook::open(data, policy, ids.clone(), shared(reviewer)).await.unwrap());
        // The plan is made once and kept, so every restart approves the very same plan.
        let plan_file = Path::new(data).join("plan.json");
        let plan: Plan = match std::fs::read(&plan_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Err(_) => {
                let mut ctx = PlanContext::new(clusters.clone(), now);
                ctx.dry_run_as = Some(ids.by_name("alice").unwrap().kube.clone());
                let plan = propose(&ctx, "gpu-rebalance", json!({"cluster": "aks-eu-west", "node": "gpu-node-3", "selector": "app=llama"}))
                    .await
                    .unwrap();
                let tmp = Path::new(data).join("plan.json.tmp");
                std::fs::write(&tmp, serde_json::to_vec(&plan).unwrap()).unwrap();
                std::fs::File::open(&tmp).unwrap().sync_all().unwrap();
                std::fs::rename(&tmp, &plan_file).unwrap();
                plan
            }
        };
        println!("PLANNED {}", plan.hash().unwrap());
        let req = book.request(&plan, &"alice".parse::<Actor>().unwrap(), now).await.unwrap();
        println!("REQUESTED {}", req.id);
        let approved = match book.decide::<Plan>(&req.id, &"bob".parse::<Actor>().unwrap(), Decision::Approve, &req.plan_hash, now).await.unwrap() {
            BookOutcome::Approved(a) => *a,
            other => panic!("approval failed: {}", other.describe()),
        };
        println!("APPROVED {}", req.id);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        let printer = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                println!("EVENT {}", serde_json::to_string(&p).unwrap());
            }
        });
        let exec = Executor::new(clusters, book.clone()).with_clock(move || now).with_progress(tx);
        let report = exec.resume(&approved).await.unwrap();
        drop(exec);
        let _ = printer.await;
        println!("DONE {}", serde_json::to_string(&report.outcome).unwrap());
    });
}

/// A small xorshift generator: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// When to kill a child: once it has printed `after_lines` tagged lines (acknowledgements),
/// `extra` later. Counting acknowledgements rather than wall time puts kills at every stage
/// however slow the machine is; `extra` lands them between records (mid-step).
#[derive(Debug, Clone, Copy)]
struct KillAt {
    after_lines: usize,
    extra: Duration,
}

const TAGS: [&str; 5] = ["PLANNED", "REQUESTED", "APPROVED", "EVENT", "DONE"];

fn tagged(l: &str) -> bool {
    TAGS.iter().any(|t| l.starts_with(t))
}

/// Runs one child to the end or kills it at `kill`; returns its stdout lines, whether it
/// was killed, and when each line arrived.
fn run_child(
    cmd: &mut Command,
    kill: Option<KillAt>,
    stderr: &Path,
) -> (Vec<String>, bool, Vec<Duration>) {
    let err = std::fs::File::create(stderr).unwrap();
    let spawned = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(|l| l.ok()) {
            sink.lock().unwrap().push((l, spawned.elapsed()));
        }
    });
    let mut killed = false;
    let mut armed: Option<Instant> = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(spawned.elapsed() < Duration::from_secs(120), "child hung");
        if let Some(k) = kill {
            if armed.is_none() {
                let seen = lines
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(l, _)| tagged(l))
                    .count();
                if seen >= k.after_lines {
                    armed = Some(Instant::now());
                }
            }
            if armed.is_some_and(|t| t.elapsed() >= k.extra) {
                child.kill().unwrap(); // SIGKILL on Unix
                killed = true;
                child.wait().unwrap();
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    reader.join().unwrap();
    let timed = lines.lock().unwrap().clone();
    let times = timed.iter().map(|(_, t)| *t).collect();
    (timed.into_iter().map(|(l, _)| l).collect(), killed, times)
}

fn all_records(log: &Path) -> Vec<AuditRecord> {
    if !log.exists() {
        return Vec::new();
    }
    export(log, ExportFilter::default())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Every line the child printed must be backed by a record in the log.
fn check_acks(lines: &[String], records: &[AuditRecord]) -> usize {
    let has = |pred: &dyn Fn(&AuditRecord) -> bool| records.iter().any(pred);
    let mut checked = 0;
    for l in lines {
        let (tag, rest) = l.split_once(' ').unwrap_or((l.as_str(), ""));
        let ok = match tag {
            "REQUESTED" => has(&|r| {
                r.kind == RecordKind::ApprovalRequested && r.approval_id.as_deref() == Some(rest)
            }),
            "APPROVED" => {
                has(&|r| r.kind == RecordKind::Decision && r.approval_id.as_deref() == Some(rest))
            }
            "EVENT" => {
                let e: Value = serde_json::from_str(rest).unwrap();
                match e["event"].as_str().unwrap() {
                    "step_finished" => has(&|r| {
                        matches!(r.kind, RecordKind::StepApplied | RecordKind::Undo)
                            && r.payload["phase"] == e["phase"]
                            && r.payload["step"] == e["step"]
                    }),
                    "post_check" => has(&|r| {
                        r.kind == RecordKind::PostCheck
                            && r.payload["description"] == e["description"]
                    }),
                    "finished" => {
                        has(&|r| r.kind == RecordKind::Other("execution_finished".into()))
                    }
                    "refused" => has(&|r| r.kind == RecordKind::Refusal),
                    _ => continue,
                }
            }
            "DONE" => has(&|r| r.kind == RecordKind::Other("execution_finished".into())),
            _ => continue,
        };
        assert!(ok, "acknowledged but not in the audit log: {l}");
        checked += 1;
    }
    checked
}

/// What the parent saw over all iterations.
#[derive(Debug, Default)]
pub struct CrashStats {
    pub iterations: usize,
    pub kills: usize,
    pub acks_checked: usize,
    pub resumed_steps: usize,
    pub seed: u64,
    /// Kills by the last thing the child had acknowledged.
    pub kills_after: std::collections::BTreeMap<String, usize>,
}

fn stage(lines: &[String]) -> String {
    const TAGS: [&str; 5] = ["PLANNED", "REQUESTED", "APPROVED", "EVENT", "DONE"];
    let mut ours = lines
        .iter()
        .filter(|l| TAGS.iter().any(|t| l.starts_with(t)));
    match ours.next_back() {
        None => "startup".into(),
        Some(l) => {
            let (tag, rest) = l.split_once(' ').unwrap_or((l.as_str(), ""));
            if tag == "EVENT" {
                let e: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                match e["event"].as_str().unwrap_or("?") {
                    "step_started" | "step_finished" => {
                        format!("{} step {}", e["event"].as_str().unwrap_or("?"), e["step"])
                    }
                    other => other.to_owned(),
                }
            } else {
                tag.to_lowercase()
            }
        }
    }
}

/// Runs `iterations` crash iterations; `child` builds the command that runs child mode
/// (the env var is added here).
pub fn run(iterations: usize, child: impl Fn() -> Command) -> CrashStats {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    let mut stats = CrashStats {
        seed,
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bundle = Bundle::load(bundle_dir()).unwrap();
    // From the calibration run: when each acknowledgement arrived (since spawn). A kill
    // is armed after a random number k of them and fires a random part of the way to the
    // (k+1)-th, so kills spread over every stage instead of piling up after the end.
    let mut calibrated: Option<Vec<Duration>> = None;
    for it in 0..iterations + 1 {
        let sandbox = rt
            .block_on(Sandbox::start(&bundle, SandboxOptions::default()))
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let log = data.path().join("audit.jsonl");
        let spec = format!(
            "{}|{}|{}",
            sandbox.kubeconfig_path().display(),
            data.path().display(),
            sandbox.now().to_rfc3339()
        );
        let make = || {
            let mut c = child();
            c.env(CHILD_ENV, &spec);
            c
        };
        let mut kills_left = if calibrated.is_some() {
            1 + rng.below(3)
        } else {
            0
        };
        let mut finished = None;
        for _attempt in 0..10 {
            let kill = match &calibrated {
                Some(stamps) if kills_left > 0 => {
                    let k = rng.below(stamps.len() as u64) as usize;
                    let since = if k == 0 {
                        Duration::ZERO
                    } else {
                        stamps[k - 1]
                    };
                    let gap = stamps[k].saturating_sub(since);
                    Some(KillAt {
                        after_lines: k,
                        extra: Duration::from_micros(rng.below(gap.as_micros() as u64 + 1)),
                    })
                }
                _ => None,
            };
            let err_file = data.path().join("child.err");
            let (lines, killed, times) = run_child(&mut make(), kill, &err_file);
            if calibrated.is_none() {
                let stamps: Vec<Duration> = lines
                    .iter()
                    .zip(&times)
                    .filter(|(l, _)| tagged(l))
                    .map(|(_, t)| *t)
                    .collect();
                assert!(
                    lines.iter().any(|l| l.starts_with("DONE")),
                    "calibration run did not finish: {lines:?}\n{}",
                    std::fs::read_to_string(&err_file).unwrap_or_default()
                );
                calibrated = Some(stamps);
            }
            if killed {
                kills_left -= 1;
                stats.kills += 1;
                *stats.kills_after.entry(stage(&lines)).or_default() += 1;
                // A restart: reopening the log repairs a torn tail; then it must verify.
                if log.exists() {
                    drop(AuditLog::open(&log).unwrap());
                }
            }
            if log.exists() {
                let report = verify(&log).unwrap();
                assert!(
                    report.is_ok(),
                    "iteration {it} (seed {seed}): audit verify failed: {:?}",
                    report.first_broken
                );
            }
            let records = all_records(&log);
            stats.acks_checked += check_acks(&lines, &records);
            if let Some(done) = lines.iter().find_map(|l| l.strip_prefix("DONE ")) {
                finished = Some(serde_json::from_str::<Outcome>(done).unwrap());
                break;
            }
            assert!(
                killed,
                "iteration {it} (seed {seed}): the child ended without finishing: {lines:?}\n{}",
                std::fs::read_to_string(&err_file).unwrap_or_default()
            );
        }
        let outcome =
            finished.unwrap_or_else(|| panic!("iteration {it} (seed {seed}) never finished"));
        assert_eq!(outcome, Outcome::Succeeded, "iteration {it} (seed {seed})");
        // No step applied twice: every accepted write is unique.
        let mut writes: HashMap<String, usize> = HashMap::new();
        for r in sandbox.request_log() {
            let write = matches!(r.verb.as_str(), "create" | "patch" | "update" | "delete");
            if write
                && !r.dry_run
                && (200..300).contains(&r.status)
                && r.resource != "subjectaccessreviews"
            {
                *writes
                    .entry(format!(
                        "{} {} {}/{} {}/{}",
                        r.cluster, r.verb, r.resource, r.subresource, r.namespace, r.name
                    ))
                    .or_default() += 1;
                assert_eq!(r.effective_user, "bob@corp.example");
            }
        }
        for (k, n) in &writes {
            assert_eq!(*n, 1, "iteration {it} (seed {seed}): {k} applied {n} times");
        }
        assert_eq!(writes.len(), 3, "iteration {it} (seed {seed}): {writes:?}");
        let records = all_records(&log);
        stats.resumed_steps += records
            .iter()
            .filter(|r| r.payload["recovered"] == true)
            .count();
        if it > 0 {
            stats.iterations += 1;
        }
        rt.block_on(sandbox.shutdown());
    }
    stats
}
