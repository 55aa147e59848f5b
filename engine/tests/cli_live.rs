//! The `pulldoctor` binary: the offline commands as before, and live `diagnose` / `fix` against
//! an in-process Kubernetes API server (through a kubeconfig) and the emulator (through
//! `--arm-endpoint`, `--graph-endpoint`, `--ca-file`, `--token-url`, client id and secret).

mod collect_support;

use std::process::{Command, Output};

use collect_support::{KubeState, MockKube, emulator, fixtures, token_url};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulldoctor"));
    c.env_remove("AZURE_SUBSCRIPTION_ID").env_remove("KUBECONFIG");
    c
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn offline_commands_work_as_before() {
    let fx = fixtures();
    let o = bin()
        .args(["diagnose", "--dump"])
        .arg(fx.join("acrpull-role-missing/dump"))
        .arg("--azure")
        .arg(fx.join("acrpull-role-missing/azure.json"))
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "ACR_PULL_ROLE_MISSING");
    assert_eq!(v["findings"][0]["confidence"], "high");
    let o = bin()
        .args(["diagnose", "--dump"])
        .arg(fx.join("healthy-baseline/dump"))
        .arg("--azure")
        .arg(fx.join("healthy-baseline/azure.json"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let o = bin().args(["diagnose", "--dump", "/nonexistent-dump"]).output().unwrap();
    assert_eq!(code(&o), 2);
    let o = bin()
        .args(["diagnose", "--dump"])
        .arg(fx.join("healthy-baseline/dump"))
        .args(["--now", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    let o = bin().args(["explain", "Failed to pull image \"a.azurecr.io/x:1\": rpc error: code = NotFound desc = failed to pull and unpack image \"a.azurecr.io/x:1\": failed to resolve reference \"a.azurecr.io/x:1\": a.azurecr.io/x:1: not found"]).output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("symptom: not_found"));
    let o = bin().arg("schema").output().unwrap();
    assert_eq!(code(&o), 0);
    let on_disk =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), on_disk, "the report schema is unchanged");
}

#[test]
fn offline_fix_shows_the_plan() {
    let fx = fixtures();
    let o = bin()
        .args(["fix", "--dump"])
        .arg(fx.join("private-dns-missing/dump"))
        .arg("--azure")
        .arg(fx.join("private-dns-missing/azure.json"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("plan:"), "{out}");
    assert!(out.contains("write  PUT /subscriptions/"), "{out}");
    assert!(out.contains("[planned]"), "{out}");
}

fn live_args(c: &mut Command, emu: &pullproof_emulator::RunningEmulator, ca: &std::path::Path) {
    c.args(["--arm-endpoint", &emu.base_url, "--graph-endpoint", &emu.base_url])
        .arg("--ca-file")
        .arg(ca)
        .args(["--token-url", &token_url(emu), "--client-id", &emu.operator().client_id])
        .env("PULLDOCTOR_CLIENT_SECRET", emu.operator().client_secret.expose());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_diagnose_and_fix_twice() {
    let fixture = "acrpull-role-missing";
    let emu = emulator(fixture).await;
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = mock.kubeconfig(dir.path(), "shop");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();

    let run = |args: &[&str]| {
        let mut c = bin();
        c.env("KUBECONFIG", &kubeconfig).args(args);
        live_args(&mut c, &emu, &ca);
        c.output().unwrap()
    };
    let o = tokio::task::block_in_place(|| run(&["diagnose", "--output", "json", "--stats"]));
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "ACR_PULL_ROLE_MISSING");
    let stats = String::from_utf8_lossy(&o.stderr);
    assert!(stats.contains(" ARM, ") && stats.contains("2 failing pod(s)"), "{stats}");

    // One pod by name, text output.
    let pod = v["failing"][0]["pod"]["name"].as_str().unwrap().to_string();
    let o = tokio::task::block_in_place(|| run(&["diagnose", "-n", "shop", &pod]));
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ACR_PULL_ROLE_MISSING"));

    // Dry run: nothing written.
    let o = tokio::task::block_in_place(|| run(&["fix", "-n", "shop"]));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("[would apply]"), "{out}");
    assert!(emu.export().role_assignments.len() == collect_support_count(fixture), "a dry run wrote");

    // Apply (no terminal: no prompt), JSON audit.
    let o = tokio::task::block_in_place(|| run(&["fix", "-n", "shop", "--apply", "--yes", "--output", "json"]));
    assert_eq!(code(&o), 0, "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["audit"]["records"][0]["outcome"], "applied");
    assert!(v["audit"]["records"][0]["before"].is_object());
    assert!(v["audit"]["records"][0]["after"].is_object());
    assert_eq!(emu.export().role_assignments.len(), collect_support_count(fixture) + 1);

    // Second run: the role is there, nothing is planned or written.
    let o = tokio::task::block_in_place(|| run(&["fix", "-n", "shop", "--apply", "--yes", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["plan"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(emu.export().role_assignments.len(), collect_support_count(fixture) + 1);
    let secret = emu.operator().client_secret.expose().to_string();
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&secret));
}

fn collect_support_count(fixture: &str) -> usize {
    let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
    azure_model::Inventory::from_json(&text).unwrap().role_assignments.len()
}

#[test]
fn a_missing_kubeconfig_is_an_error() {
    let o = bin()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .args(["diagnose", "--no-azure"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error:"));
}
