//! The TUI end to end: the real binary in tmux, driven with `send-keys` and read with
//! `capture-pane`, over the gpu-xid79 bundle served by `medic sandbox serve` and a scripted
//! model started by this test.
//!
//! carol asks in one terminal and watches the tools run; in a second terminal the on-call
//! engineer opens the plan carol's session proposed and approves it as alice; the plan waits
//! for its second approval (the default policy's two-person rule for high risk); the same
//! terminal switches identity by switching medic.yaml and approves as bob; the plan executes
//! as bob and its post-checks pass. The approval book and audit log are shared through one
//! data directory.
//!
//! Every wait polls the screen with a generous bound; nothing asserts on time. The tmux
//! server runs on its own socket (`-S`, in the test's temporary directory) and is killed,
//! with every process it ran, when the test ends, pass or fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medic_agent::scripted::{Script, ScriptStep, ScriptedCall, ScriptedServer};
use serde_json::json;

/// Upper bound on any one wait (a cold debug binary on a busy machine is slow).
const WAIT: Duration = Duration::from_secs(180);
const QUESTION: &str = "Users see intermittent 5xx from the llama endpoint and one llama pod \
                        keeps restarting in namespace ai on aks-eu-west. What is wrong?";

/// Everything started by the test, stopped on drop by PID / handle.
struct Rig {
    /// The private tmux server's socket (inside the test's temporary directory).
    socket: String,
    sandbox: Option<Child>,
    /// Process ids seen in tmux panes, and the tmux server's.
    pids: BTreeSet<u32>,
    dir: std::path::PathBuf,
}

impl Rig {
    /// A rig whose tmux server lives in `dir` (nothing started yet).
    fn new(dir: &Path) -> Rig {
        assert!(
            tmux_available(),
            "this test drives the TUI in tmux: install it (scripts/install-tmux.sh)"
        );
        Rig {
            socket: dir.join("tmux.sock").display().to_string(),
            dir: dir.to_path_buf(),
            sandbox: None,
            pids: BTreeSet::new(),
        }
    }

    /// `command` run by a shell that writes its exit status to `<dir>/<name>.status`:
    /// tmux marks a pane dead before it reaps the process, and under load its
    /// `pane_dead_status` was seen to stay empty, so the status is taken from the shell.
    fn recording(&self, name: &str, command: &str) -> String {
        format!(
            "{command}; echo $? > {}",
            self.dir.join(format!("{name}.status")).display()
        )
    }

    /// Opens a detached 160×50 terminal named `name` running `command`; it stays on screen
    /// after the command exits, so its exit can be checked.
    fn open(&mut self, name: &str, size: (u16, u16), command: &str) {
        let (w, h) = (size.0.to_string(), size.1.to_string());
        self.tmux_ok(&["new-session", "-d", "-s", name, "-x", &w, "-y", &h, command]);
        self.tmux_ok(&["set-option", "-g", "escape-time", "0"]);
        self.tmux_ok(&["set-option", "-g", "remain-on-exit", "on"]);
        self.note_pids();
    }

    /// `#{format}` of `target`, e.g. `pane_dead`.
    fn pane_info(&self, target: &str, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["display-message", "-p", "-t", target, format])
                .stdout,
        )
        .trim()
        .to_owned()
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-S", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn tmux_ok(&self, args: &[&str]) {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Records the PIDs of every pane and of the server, for the final kill.
    fn note_pids(&mut self) {
        let out = self.tmux(&["list-panes", "-a", "-F", "#{pane_pid}"]);
        let server = self.tmux(&["display-message", "-p", "#{pid}"]);
        for text in [out.stdout, server.stdout] {
            for pid in String::from_utf8_lossy(&text).split_whitespace() {
                if let Ok(pid) = pid.parse() {
                    self.pids.insert(pid);
                }
            }
        }
    }

    fn screen(&self, target: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", target]).stdout)
            .into_owned()
    }

    /// Polls `target`'s screen until `ok` holds; panics with the last screen after [`WAIT`].
    fn wait_until(&mut self, target: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            self.note_pids();
            let screen = self.screen(target);
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > WAIT {
                panic!("waited for {what} in `{target}`; the screen is:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the program in `target` has exited; returns its exit status.
    fn wait_exit(&mut self, target: &str) -> String {
        let start = Instant::now();
        while self.pane_info(target, "#{pane_dead}") != "1" {
            if start.elapsed() > WAIT {
                panic!(
                    "waited for `{target}` to exit; the screen is:\n{}",
                    self.screen(target)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        // A command opened through `recording` left its status in a file; otherwise tmux
        // reports it once it has reaped the process (the status or the signal).
        let file = self.dir.join(format!("{target}.status"));
        loop {
            if let Ok(status) = std::fs::read_to_string(&file)
                && !status.trim().is_empty()
            {
                return status.trim().to_owned();
            }
            let status = self.pane_info(target, "#{pane_dead_status}");
            if !status.is_empty() {
                return status;
            }
            let signal = self.pane_info(target, "#{pane_dead_signal}");
            if !signal.is_empty() {
                return format!("signal {signal}");
            }
            if start.elapsed() > WAIT {
                return String::new();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&mut self, target: &str, needle: &str) -> String {
        self.wait_until(target, needle, |s| s.contains(needle))
    }

    /// Types `keys` (tmux key names, e.g. `Escape`, `Enter`, `3`).
    fn keys(&self, target: &str, keys: &[&str]) {
        for k in keys {
            self.tmux_ok(&["send-keys", "-t", target, k]);
            // One key per write, so Esc is never read as Alt+key.
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// Types `text` literally.
    fn type_text(&self, target: &str, text: &str) {
        self.tmux_ok(&["send-keys", "-t", target, "-l", text]);
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.note_pids();
        let _ = self.tmux(&["kill-server"]);
        for pid in &self.pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.sandbox.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn script() -> Script {
    Script {
        native_tools: true,
        steps: vec![
            ScriptStep {
                tool_calls: vec![ScriptedCall {
                    name: "k8s_describe".into(),
                    arguments: json!({"kind": "nodes", "name": "gpu-node-3"}),
                }],
                ..ScriptStep::default()
            },
            ScriptStep {
                r#final: Some(json!({
                    "answer": "## Xid 79 on gpu-node-3\n\nGPU 2 of **gpu-node-3** fell off the bus; the llama replica on it crash-loops.\n\n| Node | GPUs healthy |\n|---|--:|\n| gpu-node-3 | 7 of 8 |\n\n- cordon the node\n- evict its llama pods\n",
                    "findings": [{
                        "summary": "gpu-node-3 lost a GPU (Xid 79)",
                        "root_cause": "Xid 79: GPU 2 of gpu-node-3 fell off the bus",
                        "confidence": 0.9,
                        "evidence": ["Node/gpu-node-3"],
                        "playbook": {"name": "gpu-rebalance", "params": {}, "target": {"kind": "Node", "name": "gpu-node-3"}}
                    }]
                })),
                ..ScriptStep::default()
            },
        ],
    }
}

/// medic.yaml for one terminal: the same identities everywhere, the terminal user `oncall`
/// mapped to `approver` (the other people are mapped to their own login).
fn config(dir: &Path, approver: &str, model_url: &str) -> PathBuf {
    let terminal = |name: &str| {
        if name == approver {
            "oncall".to_owned()
        } else {
            name.to_owned()
        }
    };
    let text = format!(
        "clusters:\n  - name: aks-eu-west\n    labels: {{ residency: eu, region: westeurope }}\n\
         model:\n  provider: openai-compatible\n  model: scripted\n  base_url: {model_url}\n  max_retries: 0\n  tool_mode: native\n\
         approvals:\n  identities:\n\
         \x20   - {{ name: medic, kube_user: 'system:serviceaccount:medic:medic', agent: true }}\n\
         \x20   - {{ name: alice, kube_user: alice@corp.example, groups: [sre], terminal: {a} }}\n\
         \x20   - {{ name: bob, kube_user: bob@corp.example, groups: [platform-leads], terminal: {b} }}\n\
         \x20   - {{ name: carol, kube_user: carol@corp.example, groups: [developers], terminal: {c} }}\n\
         data_dir: {data}\n",
        a = terminal("alice"),
        b = terminal("bob"),
        c = terminal("carol"),
        data = dir.join("data").display(),
    );
    let path = dir.join(format!("medic-{approver}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The shell command a pane runs: the real binary, as `user`, with `config`.
fn tui_command(user: &str, config: &Path, kubeconfig: &Path) -> String {
    format!(
        "cd {root} && exec env USER={user} LOGNAME={user} TERM=xterm-256color \
         XDG_CONFIG_HOME={root}/target/medic-tui-test-no-config MEDIC_MODEL= \
         {bin} --config {config} --kubeconfig {kc} -n ai tui",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = env!("CARGO_BIN_EXE_medic"),
        config = config.display(),
        kc = kubeconfig.display(),
    )
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn ask_watch_open_and_approve_twice_from_two_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut rig = Rig::new(dir.path());

    // The sandbox: one API server for aks-eu-west on 127.0.0.1, shared by both terminals.
    let log = std::fs::File::create(dir.path().join("sandbox.log")).unwrap();
    rig.sandbox = Some(
        Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["sandbox", "serve", "sandbox/bundles/gpu-xid79"])
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.path().join("sandbox.log")).unwrap_or_default();
        if text.contains("Ctrl-C stops the sandbox") && kubeconfig.exists() {
            break;
        }
        if let Some(status) = rig.sandbox.as_mut().unwrap().try_wait().unwrap() {
            panic!("medic sandbox serve exited ({status}):\n{text}");
        }
        assert!(start.elapsed() < WAIT, "the sandbox did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The scripted model, served from this process.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let model = rt.block_on(ScriptedServer::start(script())).unwrap();
    let carol_cfg = config(dir.path(), "nobody", &model.base_url);
    let alice_cfg = config(dir.path(), "alice", &model.base_url);
    let bob_cfg = config(dir.path(), "bob", &model.base_url);

    // carol's terminal.
    rig.open(
        "carol",
        (160, 50),
        &tui_command("carol", &carol_cfg, &kubeconfig),
    );
    rig.wait_for("carol", "as carol");
    // The session is up (its first event) before anything is typed.
    rig.wait_for("carol", "model openai-compatible/scripted");

    // Ask; watch the tools run; the answer and the plan arrive.
    rig.type_text("carol", QUESTION);
    rig.keys("carol", &["Enter"]);
    rig.wait_until("carol", "a tool call in the trace", |s| {
        s.contains("✓ ▸ ") || s.contains("✗ ▸ ")
    });
    let screen = rig.wait_for("carol", "done (answered)");
    assert!(screen.contains("k8s_describe"), "{screen}");
    assert!(screen.contains("Xid 79 on gpu-node-3"), "{screen}");
    assert!(screen.contains("FINDING"), "{screen}");
    // The Markdown table is drawn as a table.
    assert!(screen.contains("│ GPUs healthy"), "{screen}");
    rig.keys("carol", &["Escape", "3", "/"]);
    rig.type_text("carol", "gpu-rebalance");
    rig.keys("carol", &["Enter"]);
    let screen = rig.wait_for("carol", "approval PENDING · 0 of 2");
    assert!(screen.contains("gpu-node-3"), "{screen}");
    assert!(screen.contains("Dry-run diff"), "{screen}");
    // carol asked, so she may not approve her own plan; the pane says why.
    assert!(
        screen.contains("cannot approve") || !screen.contains("approve as carol"),
        "{screen}"
    );

    // The on-call terminal, as alice: the plan requested elsewhere shows up.
    rig.open(
        "oncall",
        (160, 50),
        &tui_command("oncall", &alice_cfg, &kubeconfig),
    );
    rig.wait_for("oncall", "as alice");
    rig.wait_for("oncall", "approval requested");
    rig.keys("oncall", &["Escape", "3"]);
    rig.keys("oncall", &["/"]);
    rig.type_text("oncall", "gpu-rebalance");
    rig.keys("oncall", &["Enter"]);
    rig.wait_for("oncall", "approval PENDING · 0 of 2");
    rig.wait_for("oncall", "approve as alice");
    rig.keys("oncall", &["a"]);
    let dialog = rig.wait_for("oncall", "Confirm approve");
    assert!(
        dialog.contains("on cluster aks-eu-west as alice"),
        "{dialog}"
    );
    rig.keys("oncall", &["y"]);
    let screen = rig.wait_for("oncall", "approval PENDING · 1 of 2 · approved by alice");
    assert!(screen.contains("waiting for 1 more approval"), "{screen}");
    // The decision reaches carol's open TUI too (the engine polls the shared book).
    rig.wait_for("carol", "1 of 2 · approved by alice");

    // Same terminal, other identity: quit, switch medic.yaml, open again as bob.
    rig.keys("oncall", &[":"]);
    rig.type_text("oncall", "q");
    rig.keys("oncall", &["Enter"]);
    rig.wait_exit("oncall");
    rig.tmux_ok(&[
        "respawn-pane",
        "-k",
        "-t",
        "oncall",
        &tui_command("oncall", &bob_cfg, &kubeconfig),
    ]);
    rig.wait_for("oncall", "as bob");
    rig.wait_for("oncall", "approval requested");
    rig.keys("oncall", &["Escape", "3"]);
    rig.keys("oncall", &["/"]);
    rig.type_text("oncall", "gpu-rebalance");
    rig.keys("oncall", &["Enter"]);
    rig.wait_for("oncall", "1 of 2 · approved by alice");
    rig.wait_for("oncall", "approve as bob");
    rig.keys("oncall", &["a"]);
    let dialog = rig.wait_for("oncall", "Confirm approve");
    assert!(dialog.contains("on cluster aks-eu-west as bob"), "{dialog}");
    rig.keys("oncall", &["y"]);

    // bob's approval completes it: the plan executes as bob and its post-checks pass.
    let screen = rig.wait_for(
        "oncall",
        "approval EXECUTED · 2 of 2 · approved by alice, bob",
    );
    rig.keys("oncall", &["G"]);
    let end = rig.wait_for("oncall", "✓ finished Succeeded");
    assert!(end.contains("✓ passed post-check"), "{end}\n{screen}");
    assert!(!end.contains("✗ failed"), "{end}");
    assert!(end.contains("as bob@corp.example"), "{end}\n{screen}");
    // For `--nocapture`: how it ended.
    println!("{end}");

    // Both approvals and the execution are in the shared audit log.
    let audit = std::fs::read_to_string(dir.path().join("data/audit.jsonl")).unwrap();
    assert!(audit.contains("\"alice\""), "audit lacks alice");
    assert!(audit.contains("\"bob\""), "audit lacks bob");
    model.stop();
    drop(rig);
}

#[test]
fn sandbox_replay_at_80x24_help_history_and_ctrl_c_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::new(dir.path());
    // No medic.yaml: the bundle brings clusters and identities; nobody maps this terminal
    // user, so the TUI can read but not approve. The bundle's own question is asked.
    let command = format!(
        "cd {root} && env -u MEDIC_CONFIG -u MEDIC_MODEL USER=oncall LOGNAME=oncall \
         TERM=xterm-256color XDG_CONFIG_HOME={cfg} \
         {bin} tui --sandbox sandbox/bundles/gpu-xid79 --no-model --data-dir {data}",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = env!("CARGO_BIN_EXE_medic"),
        cfg = dir.path().join("no-config").display(),
        data = dir.path().join("data").display(),
    );
    let command = rig.recording("replay", &command);
    rig.open("replay", (80, 24), &command);
    let screen = rig.wait_for("replay", "done (answered by analyzers)");
    assert!(screen.contains("(no identity)"), "{screen}");
    // 80×24: one pane at a time, the others as tabs in its title.
    assert!(screen.contains("1 Chat"), "{screen}");
    assert!(screen.contains("2 Trace"), "{screen}");
    rig.keys("replay", &["Escape", "3"]);
    let screen = rig.wait_for("replay", "gpu-rebalance");
    assert!(
        screen.contains("cannot approve: this terminal has no mapped identity"),
        "{screen}"
    );
    // Key help, then back.
    rig.keys("replay", &["?"]);
    let help = rig.wait_for("replay", " Keys ");
    assert!(help.contains("Ctrl-C"), "{help}");
    rig.keys("replay", &["Escape"]);
    rig.wait_until("replay", "the help to close", |s| !s.contains(" Keys "));
    // Past sessions from the data directory's log: this replay's approval requests.
    rig.keys("replay", &[":"]);
    rig.type_text("replay", "history");
    rig.keys("replay", &["Enter"]);
    let history = rig.wait_for("replay", "Past sessions");
    assert!(history.contains("[requested]"), "{history}");
    rig.keys("replay", &["Escape"]);
    // Ctrl-C once warns (nothing is running), twice quits cleanly.
    rig.keys("replay", &["C-c"]);
    rig.wait_for("replay", "press Ctrl-C again to quit");
    rig.keys("replay", &["C-c"]);
    assert_eq!(rig.wait_exit("replay"), "0");

    // `medic demo --tui` opens the built-in incident the same way.
    let command = format!(
        "cd {root} && env -u MEDIC_CONFIG -u MEDIC_MODEL USER=oncall LOGNAME=oncall \
         TERM=xterm-256color XDG_CONFIG_HOME={cfg} {bin} demo --tui --no-model",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = env!("CARGO_BIN_EXE_medic"),
        cfg = dir.path().join("no-config").display(),
    );
    let command = rig.recording("demo", &command);
    rig.open("demo", (80, 24), &command);
    rig.wait_for("demo", "done (answered by analyzers)");
    rig.keys("demo", &["Escape", "3"]);
    rig.wait_for("demo", "gpu-rebalance");
    rig.keys("demo", &["C-c"]);
    rig.wait_for("demo", "press Ctrl-C again to quit");
    rig.keys("demo", &["C-c"]);
    assert_eq!(rig.wait_exit("demo"), "0");
}
