//! The engine contract: the committed JSON Schema matches the types, and the real binary's
//! offline diagnosis follows it, with the documented exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn committed_report_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("engine/schema/report.schema.json")).unwrap();
    assert!(
        committed == pulldoctor::report::schema_json(),
        "engine/schema/report.schema.json is stale: run `just schema`"
    );
}

fn diagnose(fixture: &str, json: bool) -> (i32, String) {
    let dir = root().join("fixtures/evidence").join(fixture);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulldoctor"));
    cmd.arg("diagnose").arg("--dump").arg(dir.join("dump")).arg("--azure").arg(dir.join("azure.json"));
    if json {
        cmd.args(["--output", "json"]);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn binary_reports_findings_with_exit_code_1() {
    let (code, stdout) = diagnose("private-dns-missing", true);
    assert_eq!(code, 1);
    let report: pulldoctor::Report = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report.codes(), [pulldoctor::FindingCode::PrivateDnsZoneNotLinked]);
    let (code, text) = diagnose("private-dns-missing", false);
    assert_eq!(code, 1);
    assert!(text.contains("PRIVATE_DNS_ZONE_NOT_LINKED") && text.contains("proof:") && text.contains("fix"), "{text}");
}

#[test]
fn binary_says_healthy_with_exit_code_0() {
    let (code, text) = diagnose("healthy-baseline", false);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("healthy"));
}

#[test]
fn binary_explains_errors_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_pulldoctor"))
        .args(["diagnose", "--dump", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read dump directory /nonexistent/dir") && err.contains("kubectl cluster-info dump"),
        "{err}"
    );
}

#[test]
fn explain_ranks_candidates_as_json() {
    let msg = r#"Failed to pull image "myacr.azurecr.io/app:v1": rpc error: code = NotFound desc = failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": myacr.azurecr.io/app:v1: not found"#;
    let out =
        Command::new(env!("CARGO_BIN_EXE_pulldoctor")).args(["explain", msg, "--output", "json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["symptom"]["class"], "not_found");
    assert_eq!(v["candidates"][0]["code"], "IMAGE_NOT_FOUND");
}

#[test]
fn unreadable_evidence_is_a_finding_not_a_crash() {
    let dir = root().join("fixtures/evidence/acrpull-role-missing");
    let mut evidence = pulldoctor::Evidence::load(&dir.join("dump"), Some(&dir.join("azure.json"))).unwrap();
    evidence.azure.role_assignments.clear();
    evidence.azure.unavailable.push(azure_model::inventory::Unavailable {
        what: "azure: role assignments at /subscriptions/s/resourceGroups/acr-rg".into(),
        reason: "AuthorizationFailed: the client has no authorization to perform action 'Microsoft.Authorization/roleAssignments/read'".into(),
    });
    let report = pulldoctor::collect::report(&pulldoctor::diagnose(&evidence), &evidence);
    let reach = report
        .findings
        .iter()
        .find(|f| f.code == pulldoctor::FindingCode::EvidenceUnavailable)
        .expect("a reach finding");
    assert!(reach.evidence[0].contains("AuthorizationFailed"));
    assert!(reach.plan.actions[0].commands().iter().any(|c| c.contains("--role Reader")));
    assert!(!pulldoctor::FindingCode::EvidenceUnavailable.is_cause());
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"EVIDENCE_UNAVAILABLE\""));
}

#[test]
fn the_nodes_cluster_is_judged_when_the_inventory_holds_several() {
    let dir = root().join("fixtures/evidence/acrpull-role-missing");
    let mut evidence = pulldoctor::Evidence::load(&dir.join("dump"), Some(&dir.join("azure.json"))).unwrap();
    let ours = evidence.azure.managed_clusters[0].clone();
    // Another cluster sharing the registry, listed first, whose identity does hold AcrPull.
    let mut other = ours.clone();
    other.id = other.id.replace(&ours.name, "aks-other");
    other.name = "aks-other".into();
    other.properties.node_resource_group = Some("MC_rg_aks-other_westeurope".into());
    evidence.azure.managed_clusters.insert(0, other);
    assert_eq!(pulldoctor::detect::cluster_of_nodes(&evidence).unwrap().name, ours.name);
    let codes = pulldoctor::diagnose(&evidence).findings.iter().map(|f| f.code).collect::<Vec<_>>();
    assert_eq!(codes, [pulldoctor::FindingCode::AcrPullRoleMissing]);
}

#[test]
fn already_fixed_is_part_of_the_contract() {
    let doc = r#"{"schemaVersion":"1","engine":{"name":"x","version":"0"},"status":"findings","failing":[],"findings":[],"alreadyFixed":true}"#;
    let r: pulldoctor::Report = serde_json::from_str(doc).unwrap();
    assert!(r.already_fixed);
    let plain =
        r#"{"schemaVersion":"1","engine":{"name":"x","version":"0"},"status":"healthy","failing":[],"findings":[]}"#;
    let r: pulldoctor::Report = serde_json::from_str(plain).unwrap();
    assert!(!r.already_fixed);
    assert!(!serde_json::to_string(&r).unwrap().contains("alreadyFixed"));
}

#[test]
fn unreadable_graph_leaves_a_managed_identity_finding_alone() {
    let dir = root().join("fixtures/evidence/acrpull-role-missing");
    let mut evidence = pulldoctor::Evidence::load(&dir.join("dump"), Some(&dir.join("azure.json"))).unwrap();
    let before = pulldoctor::collect::report(&pulldoctor::diagnose(&evidence), &evidence);
    evidence.azure.unavailable.push(azure_model::inventory::Unavailable {
        what: "azure: microsoft graph".into(),
        reason: "not read (--no-graph)".into(),
    });
    let after = pulldoctor::collect::report(&pulldoctor::diagnose(&evidence), &evidence);
    let role = |r: &pulldoctor::Report| {
        r.findings.iter().find(|f| f.code == pulldoctor::FindingCode::AcrPullRoleMissing).unwrap().clone()
    };
    assert_eq!(role(&after).confidence, role(&before).confidence);
    assert!(!role(&after).evidence.iter().any(|e| e.contains("evidence unavailable")));
}
