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

/// `--dump DIR --azure FILE` of a fixture.
fn offline(fixture: &str) -> Vec<std::ffi::OsString> {
    let fx = fixtures().join(fixture);
    vec!["--dump".into(), fx.join("dump").into(), "--azure".into(), fx.join("azure.json").into()]
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

#[test]
fn offline_selection_flags_narrow_the_dump() {
    let run = |args: &[&str]| {
        bin().arg("diagnose").args(offline("acrpull-role-missing")).args(args).args(["-o", "json"]).output().unwrap()
    };
    // Every namespace by default: the shop pods fail.
    let o = run(&[]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_of(&o)["failing"].as_array().unwrap().len(), 2);
    // Another namespace: nothing of shop's.
    let o = run(&["-n", "kube-system"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(json_of(&o)["status"], "healthy");
    // A pod the dump does not hold is the user's error.
    let o = run(&["-n", "kube-system", "nosuchpod"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: pod kube-system/nosuchpod not found in the dump"), "{err}");
    // One pod: only its failure.
    let o = run(&["-n", "shop", "web-pf5sj8wm4r-zplb7"]);
    assert_eq!(code(&o), 1);
    let v = json_of(&o);
    assert_eq!(v["failing"].as_array().unwrap().len(), 1);
    assert_eq!(v["findings"][0]["pods"].as_array().unwrap().len(), 1);
    assert_eq!(v["findings"][0]["pods"][0]["name"], "web-pf5sj8wm4r-zplb7");
    // A pod without -n: found in the one namespace holding it.
    assert_eq!(code(&run(&["web-pf5sj8wm4r-w8js5"])), 1);
    // Label selectors.
    let o = run(&["-l", "app=cart"]);
    assert_eq!((code(&o), json_of(&o)["status"].clone()), (0, "healthy".into()));
    let o = run(&["-n", "shop", "-l", "app in (web,api)"]);
    assert_eq!(json_of(&o)["failing"].as_array().unwrap().len(), 2);
    let o = run(&["-l", "app=("]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
}

/// `fixture`'s inventory with `unavailable` entries added, in `dir`.
fn inventory_with_unavailable(dir: &std::path::Path, fixture: &str, entries: serde_json::Value) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["unavailable"] = entries;
    let path = dir.join(format!("{fixture}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

#[test]
fn offline_diagnose_lowers_confidence_like_fix_and_the_linked_engine() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = "acrpull-role-missing";
    let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
    let inv = azure_model::Inventory::from_json(&text).unwrap();
    let registry = inv.registries[0].id.clone();
    let azure = inventory_with_unavailable(
        dir.path(),
        fixture,
        serde_json::json!([{"what": format!("azure: role assignments at {registry}"), "reason": "403 AuthorizationFailed: no"}]),
    );
    let report_of = |command: &str| {
        let o = bin()
            .args([command, "--dump"])
            .arg(fixtures().join(fixture).join("dump"))
            .arg("--azure")
            .arg(&azure)
            .args(["-o", "json"])
            .output()
            .unwrap();
        assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
        let v = json_of(&o);
        if command == "fix" {
            // `fix -o json` is itself a report (the engine contract), with the plan and audit.
            serde_json::from_value::<pulldoctor::Report>(v.clone()).expect("fix -o json is a contract report");
            assert!(v["audit"].is_object() && v["plan"].is_array(), "{v:#}");
        }
        v
    };
    let diagnose = report_of("diagnose");
    let f = diagnose["findings"].as_array().unwrap().iter().find(|f| f["code"] == "ACR_PULL_ROLE_MISSING").unwrap();
    assert_eq!(f["confidence"], "medium", "{f:#}");
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("evidence unavailable: azure: role assignments")),
        "{f:#}"
    );
    // The same report `fix` starts from.
    assert_eq!(diagnose["findings"], report_of("fix")["findings"]);
}

#[test]
fn warnings_alone_do_not_make_a_healthy_cluster_fail() {
    let dir = tempfile::tempdir().unwrap();
    let azure = inventory_with_unavailable(
        dir.path(),
        "healthy-baseline",
        serde_json::json!([{"what": "kubernetes: nodes", "reason": "403 Forbidden: nodes is forbidden"}]),
    );
    let o = bin()
        .args(["diagnose", "--dump"])
        .arg(fixtures().join("healthy-baseline/dump"))
        .arg("--azure")
        .arg(&azure)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let v = json_of(&o);
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["findings"][0]["code"], "EVIDENCE_UNAVAILABLE", "the warning is kept");
    // `fix` has nothing to do either, and does not claim to have fixed anything.
    let o = bin()
        .args(["fix", "--dump"])
        .arg(fixtures().join("healthy-baseline/dump"))
        .arg("--azure")
        .arg(&azure)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let v = json_of(&o);
    assert_eq!(v["alreadyFixed"], false, "{v:#}");
    assert!(v["plan"].as_array().unwrap().is_empty());
}

#[test]
fn fix_on_a_healthy_cluster_fixed_nothing() {
    let o = bin().arg("fix").args(offline("healthy-baseline")).args(["-o", "json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["alreadyFixed"], false, "nothing was planned, so nothing was found already fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_namespace_stays_healthy_for_a_user_who_cannot_list_nodes() {
    let fixture = "healthy-baseline";
    let mut state = KubeState::from_dump(&fixtures().join(fixture).join("dump"));
    state.forbidden.insert("nodes".into());
    let mock = MockKube::start(state).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = mock.kubeconfig(dir.path(), "shop");
    let o = tokio::task::block_in_place(|| {
        bin().env("KUBECONFIG", &kubeconfig).args(["diagnose", "--no-azure", "-o", "json"]).output().unwrap()
    });
    assert_eq!(code(&o), 0, "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["status"], "healthy");
    let f = &v["findings"][0];
    assert_eq!(f["code"], "EVIDENCE_UNAVAILABLE");
    // The grant covers nodes (cluster-scoped), not the view role.
    let commands: Vec<&str> = f["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()))
        .collect();
    assert!(
        commands.contains(&"kubectl create clusterrole pulldoctor-nodes --verb=get,list --resource=nodes"),
        "{commands:#?}"
    );
    assert!(commands.iter().all(|c| !c.contains("clusterrole=view")), "{commands:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_graph_reads_name_the_grant_for_pulldoctors_own_app() {
    let fixture = "sp-secret-expired";
    let emu = emulator(fixture).await;
    let proxy = collect_support::DenyingProxy::start(&emu, &["/v1.0/"]).await;
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = mock.kubeconfig(dir.path(), "shop");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let o = tokio::task::block_in_place(|| {
        let mut c = bin();
        c.env("KUBECONFIG", &kubeconfig)
            .args(["diagnose", "-o", "json", "--arm-endpoint", &proxy.url, "--graph-endpoint", &proxy.url])
            .arg("--ca-file")
            .arg(&ca)
            .args(["--token-url", &token_url(&emu), "--client-id", &emu.operator().client_id])
            .env("PULLDOCTOR_CLIENT_SECRET", emu.operator().client_secret.expose());
        c.output().unwrap()
    });
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    let codes: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["SP_SECRET_EXPIRED", "EVIDENCE_UNAVAILABLE"], "{v:#}");
    assert_eq!(v["findings"][0]["confidence"], "low");
    let commands: Vec<&str> = v["findings"][1]["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["commands"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()))
        .collect();
    let app = emu.operator().client_id.clone();
    assert!(
        commands.contains(&format!("az ad app permission add --id {app} --api 00000003-0000-0000-c000-000000000000 --api-permissions 9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30=Role").as_str()),
        "{commands:#?}"
    );
    assert!(commands.contains(&format!("az ad app permission admin-consent --id {app}").as_str()), "{commands:#?}");
    assert!(commands.iter().all(|c| !c.contains("--role Reader")), "Graph needs no ARM role: {commands:#?}");
}
