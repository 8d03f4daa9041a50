//! Benchmarks: sandbox start-up for a 10,000-pod / 1,000-node bundle, and listing those pods
//! through kube-rs. Prints medians. `cargo bench -p medic-sandbox --bench sandbox`
//! (`-- --pods N --nodes M --runs R` to change the size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let pods = arg("--pods", 10_000);
    let nodes = arg("--nodes", 1_000);
    let runs = arg("--runs", 7);
    let dir = tempfile::tempdir().unwrap();
    medic_sandbox::generate::synthesize(dir.path(), pods, nodes).unwrap();

    let mut load = Vec::new();
    let mut start = Vec::new();
    let mut handle = None;
    for _ in 0..runs.min(5) {
        let t = Instant::now();
        let bundle = medic_sandbox::Bundle::load(dir.path()).unwrap();
        load.push(t.elapsed());
        let t = Instant::now();
        let options = medic_sandbox::SandboxOptions {
            kubeconfig_path: Some(dir.path().join("out/kubeconfig")),
            ..Default::default()
        };
        let h = medic_sandbox::Sandbox::start(&bundle, options)
            .await
            .unwrap();
        start.push(t.elapsed());
        if let Some(old) = handle.replace(h) {
            old.shutdown().await;
        }
    }
    let h = handle.unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(h.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<Pod> = Api::all(client);

    let mut list = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let got = api.list(&ListParams::default()).await.unwrap();
        list.push(t.elapsed());
        assert_eq!(got.items.len(), pods);
    }
    let mut by_node = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let got = api
            .list(&ListParams::default().fields(&format!("spec.nodeName=node-{:04}", i % nodes)))
            .await
            .unwrap();
        by_node.push(t.elapsed());
        assert!(!got.items.is_empty());
    }
    println!("bundle: {pods} pods on {nodes} nodes");
    println!(
        "Bundle::load (parse + validate)       median {}",
        ms(median(load))
    );
    println!(
        "Sandbox::start (state + TLS + listen) median {}",
        ms(median(start))
    );
    println!(
        "kube-rs list all {pods} pods            median {} over {runs} runs",
        ms(median(list))
    );
    println!(
        "kube-rs list pods of one node          median {} over {runs} runs",
        ms(median(by_node))
    );
    h.shutdown().await;
}
