//! A real Prometheus for tests: backfill a bundle's `metrics/*.om` with
//! `promtool tsdb create-blocks-from openmetrics`, start `prometheus` on 127.0.0.1 with an
//! ephemeral port over those blocks, wait until ready, kill it (by its PID) on drop.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `None` (with a message) only when the binaries are absent and `CI` is not set; under CI a
/// missing Prometheus fails the test (scripts/install-prometheus.sh installs it).
pub fn available() -> bool {
    if have("prometheus") && have("promtool") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
        panic!("CI is set but prometheus/promtool are missing: run scripts/install-prometheus.sh");
    }
    eprintln!(
        "SKIPPED: prometheus/promtool not installed (run scripts/install-prometheus.sh); this test runs whenever they are, and always under CI"
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn start(bundle_dir: &Path) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(bundle_dir.join("metrics"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "om"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "bundle {} has no metrics/*.om",
        bundle_dir.display()
    );
    for f in &files {
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(f)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool failed on {}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--query.lookback-delta=5m")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{}/-/ready", p.url)).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p
}
