//! The `pullproof` binary as a user meets it: listings, validation, plans, and errors that say
//! what to do.

use std::process::{Command, Output};

fn pullproof(args: &[&str]) -> Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(env!("CARGO_BIN_EXE_pullproof")).args(args).env("PULLPROOF_ROOT", root).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

#[test]
fn list_as_json_names_every_scenario() {
    let out = pullproof(&["list", "--output", "json"]);
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 17);
    assert!(rows.iter().any(|r| r["name"] == "private-dns-missing" && r["fault"] == "deleteVnetLink"));
}

#[test]
fn list_filters_by_tag() {
    let (stdout, _) = text(&pullproof(&["list", "--tag", "peering"]));
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.starts_with("SCENARIO"));
}

#[test]
fn validate_passes_on_the_catalog() {
    let out = pullproof(&["validate"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("17 scenario(s) valid, 0 error(s)"));
}

#[test]
fn plan_for_aks_prints_every_request() {
    let out = pullproof(&["plan", "private-dns-missing", "--backend", "aks", "--requests", "--subscription", "sub-1"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("DELETE  /subscriptions/sub-1/resourceGroups/net-rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io/virtualNetworkLinks/aks-vnet-link?api-version=2024-06-01"), "{stdout}");
    assert!(stdout.contains("PUT     /subscriptions/sub-1/resourceGroups/net-rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io/virtualNetworkLinks/aks-vnet-link"), "{stdout}");
}

#[test]
fn unknown_scenario_suggests_the_closest() {
    let out = pullproof(&["run", "private-dns-mising"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no scenario matches `private-dns-mising`")
            && stderr.contains("did you mean `private-dns-missing`?"),
        "{stderr}"
    );
}

#[test]
fn backends_that_cannot_run_here_say_so() {
    let out = pullproof(&["run", "private-dns-missing", "--backend", "aks"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("the aks backend cannot run on this machine") && stderr.contains("--requests"), "{stderr}");
}

#[test]
fn validate_checks_a_draft_file_outside_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let draft = |name: &str, action: &str| {
        format!(
            "name: {name}\nsummary: a draft\ncause: \"Not found: incorrect image name or tag\"\ntags: [image]\nbackends: [host]\n\
             baseline: public-registry\nfault:\n  setImage: {{ image: \"{{loginServer}}/app:v2\" }}\nexpect:\n  symptom: not_found\n  \
             findings: [IMAGE_NOT_FOUND]\n  remediation: proposed\n  actions: [{action}]\nbudgets: {{ inject: 1m }}\n"
        )
    };
    let good = dir.path().join("my-draft.yaml");
    std::fs::write(&good, draft("my-draft", "setImage")).unwrap();
    let out = pullproof(&["validate", good.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("1 scenario(s) valid, 0 error(s)"), "{stdout}");

    let bad = dir.path().join("bad-draft.yaml");
    std::fs::write(&bad, draft("bad-draft", "setImages")).unwrap();
    let out = pullproof(&["validate", bad.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("bad-draft.yaml:13:13: unknown value `setImages`"), "{stderr}");
    assert!(stderr.contains("did you mean `setImage`?"), "{stderr}");
}

#[test]
fn validate_refuses_names_that_select_nothing() {
    let out = pullproof(&["validate", "privat-dns-missing"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no scenario matches `privat-dns-missing`"), "{stderr}");
    assert!(stderr.contains("did you mean `private-dns-missing`?"), "{stderr}");
    let out = pullproof(&["validate", "/nonexistent/x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("scenario file `/nonexistent/x.yaml` does not exist"));
}
