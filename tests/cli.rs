//! End-to-end tests of the `medic` binary's basic commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn medic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .env_remove("MEDIC_CONFIG")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run medic")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn version_prints_build_facts() {
    let out = medic(&["version"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(
        s.starts_with(&format!("medic {}\n", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert!(s.contains("tls:     rustls with aws-lc-rs"), "{s}");
    let out = medic(&["--version"]);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("medic {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_only_working_commands() {
    let out = medic(&["--help"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    for cmd in ["sandbox", "snapshot", "version", "completions", "config"] {
        assert!(s.contains(cmd), "--help lacks {cmd}: {s}");
    }
    for flag in ["--kubeconfig", "--context", "-n, --namespace", "--config"] {
        assert!(s.contains(flag), "--help lacks {flag}: {s}");
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = medic(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(text(&out.stdout).contains("snapshot"), "{shell}");
    }
}

#[test]
fn invalid_config_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("medic.yaml");
    std::fs::write(
        &path,
        "clusters:\n  - name: prod\n    promethus: http://x\n",
    )
    .unwrap();
    let out = medic(&["--config", path.to_str().unwrap(), "config"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("clusters[0]: unknown field `promethus`"),
        "{err}"
    );
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn config_from_env_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("medic.yaml");
    std::fs::write(
        &path,
        "clusters:\n  - { name: eu, context: prod-eu, labels: { residency: eu } }\ndata_dir: /srv/medic\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .arg("config")
        .env("MEDIC_CONFIG", &path)
        .output()
        .unwrap();
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        s.contains("# cluster eu uses kubeconfig context prod-eu"),
        "{s}"
    );
    assert!(s.contains("# data directory: /srv/medic"), "{s}");

    // No file anywhere: defaults, and the message says where it looked.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .arg("config")
        .env_remove("MEDIC_CONFIG")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("# source: defaults"),
        "{}",
        text(&out.stdout)
    );
}

/// Building a kube client over HTTPS must not panic on a missing or ambiguous rustls
/// crypto provider (kube with `ring` plus reqwest/octocrab with aws-lc-rs did exactly that).
#[test]
fn kube_client_builds_from_kubeconfig_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        r#"apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: { server: "https://127.0.0.1:9", insecure-skip-tls-verify: true }
users:
- name: u
  user: { token: "t" }
contexts:
- name: prod
  context: { cluster: prod, user: u, namespace: ai }
current-context: prod
"#,
    )
    .unwrap();
    let out_dir = dir.path().join("bundle");
    let out = medic(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "snapshot",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("CryptoProvider"), "{err}");
    assert!(
        err.contains("discovery failed") || err.contains("error"),
        "{err}"
    );
}

#[test]
fn unknown_context_lists_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n- name: a\n  context: { cluster: a, user: a }\n- name: b\n  context: { cluster: b, user: b }\ncurrent-context: a\n",
    )
    .unwrap();
    let out = medic(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--context",
        "nope",
        "snapshot",
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown context `nope`; the kubeconfig has: a, b"),
        "{}",
        text(&out.stderr)
    );
}
