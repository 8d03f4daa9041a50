//! Frame render time for a 2,000-message session, and peak RSS.
//!
//! `cargo bench -p medic-tui --bench render` prints the median and p99 time to render one
//! frame into a `TestBackend` (so only medic's layout and widget code is measured, not the
//! terminal), for a few sizes and views, then the process's VmHWM.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use chrono::{TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use medic_agent::protocol::{Confidence, Event, Finding, StopReason, Usage};
use medic_tui::{App, TuiOptions, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const ANSWER: &str = "### Cause\n\nThe pod `api` is **OOMKilled** after the rollout; see the table.\n\n\
- restarts climbed to 12\n- the previous ReplicaSet was healthy\n\n| Pod | Restarts |\n|---|--:|\n| api-1 | 12 |\n\n\
```\nkubectl -n shop rollout undo deploy/api --to-revision=41\n```\n";

fn session(messages: usize) -> App {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 20, 0, 0).unwrap();
    let mut app = App::new(&TuiOptions::new("carol"), now);
    let mut i = 0;
    // Each round adds a question, a finding every third round, an answer and a done notice.
    while app_messages(i) < messages {
        app.ask(&format!(
            "question {i}: why is checkout slow in region {}?",
            i % 7
        ));
        for c in 0..2 {
            let id = format!("call_{i}_{c}");
            app.on_event(Event::ToolCallStarted {
                call_id: id.clone(),
                tool: "k8s_list".into(),
                args: json!({"kind": "Pod", "namespace": "shop"}),
            });
            app.on_event(Event::ToolCallFinished {
                call_id: id.clone(),
                duration_ms: 40,
                tokens: 300,
                ok: c == 0,
                error: None,
                summary: "6 pods".into(),
            });
            // Every call carries its output (about 1 KiB, with a colour escape to clean).
            app.on_event(Event::ToolOutput {
                call_id: id,
                output: output(16),
                truncated: false,
            });
        }
        if i % 3 == 0 {
            app.on_event(Event::Finding(Finding {
                id: format!("f{i}"),
                summary: "api is crash-looping".into(),
                root_cause: "the new image exceeds its memory limit".into(),
                confidence: Confidence::HIGH,
                evidence: vec![],
                suggests: vec![],
                source: "analyzer:crashloop".into(),
            }));
        }
        for chunk in ANSWER.as_bytes().chunks(24) {
            app.on_event(Event::AnswerDelta {
                text: String::from_utf8_lossy(chunk).into_owned(),
            });
        }
        app.on_event(Event::Done {
            usage: Usage::default(),
            stop_reason: StopReason::Answered,
        });
        i += 1;
    }
    app
}

/// `lines` lines of a pod listing, about 64 bytes each.
fn output(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!("api-5c8b-{i:04}   1/1   \x1b[32mRunning\x1b[0m   0   3d   10.244.3.{i}\n")
        })
        .collect()
}

/// Chat items after `rounds` rounds.
fn app_messages(rounds: usize) -> usize {
    rounds * 3 + rounds.div_ceil(3)
}

fn measure(label: &str, app: &App, w: u16, h: u16, frames: usize) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    for _ in 0..10 {
        t.draw(|f| render(app, f)).unwrap();
    }
    let mut times: Vec<f64> = (0..frames)
        .map(|_| {
            let start = Instant::now();
            t.draw(|f| render(app, f)).unwrap();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("{label:<44} {w:>3}x{h:<3} median {median:>8.1} µs   p99 {p99:>8.1} µs");
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let frames = std::env::var("FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut app = session(2000);
    println!("session: 2,000+ chat messages, {} tool calls", 2 * 2000 / 3);
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    measure("chat, following the tail", &app, 80, 24, frames);
    measure("chat, following the tail", &app, 160, 50, frames);
    measure("chat, following the tail", &app, 240, 70, frames);
    // Scroll a long way up: more items must be laid out.
    for _ in 0..60 {
        measure_quiet(&app, 160, 50);
        app.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    }
    measure("chat, scrolled up 600 lines", &app, 160, 50, frames);
    app.on_key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE));
    measure("trace pane focused (1,300 calls)", &app, 80, 24, frames);
    // The last call expanded to a full 16 KiB output preview.
    app.on_event(Event::ToolOutput {
        call_id: format!("call_{}_1", app_rounds(2000) - 1),
        output: output(256),
        truncated: true,
    });
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    measure(
        "trace, last call expanded (16 KiB output)",
        &app,
        80,
        24,
        frames,
    );
    measure(
        "trace, last call expanded (16 KiB output)",
        &app,
        160,
        50,
        frames,
    );
    println!("VmHWM {}", vm_hwm());
}

/// Rounds `session(messages)` plays.
fn app_rounds(messages: usize) -> usize {
    (0..).find(|&r| app_messages(r) >= messages).unwrap_or(0)
}

fn measure_quiet(app: &App, w: u16, h: u16) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
}
