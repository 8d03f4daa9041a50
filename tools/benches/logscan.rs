//! Log scanning benchmark (harness = false): generates a synthetic log (default 1 GiB,
//! `MEDIC_BENCH_LOG_MB` to change) into a temp file and measures, as medians of
//! `MEDIC_BENCH_RUNS` (default 3) runs on one core:
//! - grep throughput (regex with literal prefilter, line numbers kept),
//! - error clustering + stack-trace folding throughput,
//! - both together (what the `logs` tool does),
//! - the reduction ratio: tokens of the budgeted `logs` rendering ÷ tokens of the raw log
//!   (raw tokens estimated by sampling with o200k_base),
//! - peak RSS (VmHWM).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use medic_tools::budget::{count_tokens, estimate_tokens_sampled, fit};
use medic_tools::logs::LogsOutput;
use medic_tools::logscan::{LogScan, LogScanner, ScanOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn generate(path: &std::path::Path, bytes: u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let paths = [
        "/v1/completions",
        "/v1/chat/completions",
        "/health",
        "/metrics",
        "/v1/embeddings",
    ];
    let users = ["alice", "bob", "svc-batch", "svc-web", "carol"];
    let mut written = 0u64;
    let mut sec = 0u64;
    while written < bytes {
        sec += 1;
        let ts = format!(
            "2026-06-23T{:02}:{:02}:{:02}.{:06}Z",
            (sec / 3600) % 24,
            (sec / 60) % 60,
            sec % 60,
            r.next() % 1_000_000
        );
        let roll = r.next() % 1000;
        let line = if roll < 900 {
            format!(
                "{ts} INFO request id={:016x} method=GET path={} user={} status=200 latency_ms={} bytes={}\n",
                r.next(),
                r.pick(&paths),
                r.pick(&users),
                r.next() % 900,
                r.next() % 100_000
            )
        } else if roll < 960 {
            format!(
                "{ts} WARN kv cache usage at {}% for model llama-3-8b, preempting {} sequences\n",
                80 + r.next() % 20,
                r.next() % 8
            )
        } else if roll < 985 {
            format!(
                "{ts} ERROR upstream connect to 10.0.{}.{}:5432 failed: connection refused (attempt {} of 5) trace={:032x}\n",
                r.next() % 255,
                r.next() % 255,
                r.next() % 5 + 1,
                r.next() as u128 * r.next() as u128
            )
        } else if roll < 995 {
            format!(
                "{ts} ERROR request {:016x} failed: CUDA out of memory. Tried to allocate {} MiB (GPU {})\n",
                r.next(),
                r.next() % 4096,
                r.next() % 8
            )
        } else if roll < 998 {
            format!(
                "{ts} Traceback (most recent call last):\n{ts}   File \"/app/server.py\", line {}, in handle\n{ts}     out = model.generate(batch)\n{ts}   File \"/app/model.py\", line 88, in generate\n{ts}     torch.cuda.synchronize()\n{ts} RuntimeError: CUDA error: an illegal memory access was encountered\n",
                r.next() % 400
            )
        } else {
            format!(
                "{ts} panic: runtime error: index out of range [{}] with length 4\n{ts} \n{ts} goroutine {} [running]:\n{ts} main.route(0xc000{:06x})\n{ts} \t/app/main.go:42 +0x1d\n{ts} main.main()\n{ts} \t/app/main.go:10 +0x25\n",
                r.next() % 10,
                r.next() % 500,
                r.next() % 0xffffff
            )
        };
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    w.flush().unwrap();
}

fn run(path: &std::path::Path, opts: ScanOptions) -> (f64, LogScan) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 8 << 20];
    let start = Instant::now();
    let mut s = LogScanner::new(opts);
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        s.feed(&buf[..n]);
    }
    let out = s.finish();
    (start.elapsed().as_secs_f64(), out)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mb: u64 = std::env::var("MEDIC_BENCH_LOG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let runs: usize = std::env::var("MEDIC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.log");
    let t = Instant::now();
    generate(&path, mb << 20);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "generated {:.0} MiB synthetic log in {:.1}s",
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    // Warm the page cache once so every run reads from memory.
    run(
        &path,
        ScanOptions {
            grep: None,
            errors: false,
            context: 0,
            max_matches: 0,
        },
    );

    let gb = size as f64 / 1e9;
    let report = |name: &str, opts: ScanOptions| -> LogScan {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let (secs, out) = run(&path, opts.clone());
            times.push(secs);
            last = Some(out);
        }
        let m = median(times);
        println!("{name:<34} median {m:>7.3}s  {:>6.2} GB/s", gb / m);
        last.unwrap()
    };
    let grep_only = ScanOptions {
        grep: ScanOptions::with_grep("connection refused|OOMKilled")
            .unwrap()
            .grep,
        errors: false,
        ..ScanOptions::default()
    };
    let g = report("grep (literal alternation)", grep_only);
    println!("  grep matches: {} in {} lines", g.grep_count, g.lines);
    let grep_re = ScanOptions {
        grep: ScanOptions::with_grep(r"status=5\d\d|latency_ms=8\d\d")
            .unwrap()
            .grep,
        errors: false,
        ..ScanOptions::default()
    };
    let g2 = report("grep (regex with literals)", grep_re);
    println!("  grep matches: {}", g2.grep_count);
    let cl = report(
        "error clustering + trace folding",
        ScanOptions {
            grep: None,
            ..ScanOptions::default()
        },
    );
    println!(
        "  error lines {} in {} templates, {} trace kinds ({} traces)",
        cl.error_lines,
        cl.clusters.len(),
        cl.traces.len(),
        cl.traces.iter().map(|t| t.count).sum::<u64>()
    );
    let full = report(
        "grep + clustering (logs tool)",
        ScanOptions::with_grep("connection refused").unwrap(),
    );

    // Reduction: the budgeted rendering vs the raw log.
    let out = LogsOutput {
        cluster: "bench".into(),
        namespace: "ai".into(),
        pod: "llama-0".into(),
        container: "vllm".into(),
        other_containers: vec![],
        previous: false,
        grep: Some("connection refused".into()),
        stream_cut: false,
        scan: full,
    };
    let render = |n: usize| medic_tools::Render::render(&out, n);
    let (text, returned) = fit(&render, medic_tools::budget::DEFAULT_TOOL_BUDGET);
    let mut f = std::fs::File::open(&path).unwrap();
    let mut samples = Vec::new();
    for i in 0..64u64 {
        let mut b = vec![0u8; 64 * 1024];
        f.seek(SeekFrom::Start(size / 64 * i)).unwrap();
        let n = f.read(&mut b).unwrap();
        samples.push(String::from_utf8_lossy(&b[..n]).into_owned());
    }
    let refs: Vec<&str> = samples.iter().map(String::as_str).collect();
    let raw = estimate_tokens_sampled(size, &refs);
    println!(
        "reduction: {returned} tokens returned / ~{raw} raw tokens = {:.2e} (1 : {:.0})",
        returned as f64 / raw as f64,
        raw as f64 / returned as f64
    );
    assert_eq!(returned, count_tokens(&text));
    println!("peak RSS (VmHWM): {:.1} MiB", vm_hwm_kb() as f64 / 1024.0);
}
