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
    assert_eq!(rows.len(), 25);
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
    assert!(stdout.contains("25 scenario(s) valid, 0 error(s)"));
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
             baseline: public-registry\nfault:\n  setImage: {{ image: \"{{loginServer}}/app:v2\" }}\nexpect:\n  symptom: not_found\n  message: 'app:v2: not found'\n  \
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
    assert!(stderr.contains("bad-draft.yaml:14:13: unknown value `setImages`"), "{stderr}");
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

/// Runs `pullproof` against a copy of the tree in which each `(file, from, to)` edit is made.
fn pullproof_edited(edits: &[(&str, &str, &str)], args: &[&str]) -> Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["scenarios", "fixtures/baselines"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for f in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = f.unwrap().path();
            let mut text = std::fs::read_to_string(&p).unwrap();
            for (file, from, to) in edits {
                if p.file_name().unwrap() == *file {
                    assert!(text.contains(from), "{from} not in {file}");
                    text = text.replacen(from, to, 1);
                }
            }
            std::fs::write(dir.path().join(sub).join(p.file_name().unwrap()), text).unwrap();
        }
    }
    Command::new(env!("CARGO_BIN_EXE_pullproof")).args(args).env("PULLPROOF_ROOT", dir.path()).output().unwrap()
}

fn pullproof_with(file: &str, from: &str, to: &str, args: &[&str]) -> Output {
    pullproof_edited(&[(file, from, to)], args)
}

#[test]
fn plan_of_an_invalid_scenario_prints_its_errors() {
    let out = pullproof_edited(
        &[
            ("private-dns-missing.yaml", "vnet: aks-vnet", "vnet: aks-vnt"),
            ("healthy-baseline.yaml", "summary:", "summry:"),
        ],
        &["plan", "private-dns-missing"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stderr.contains("private-dns-missing.yaml:11:57: a link of zone `privatelink.azurecr.io` to vnet `aks-vnt`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `aks-vnet`?"), "{stderr}");
    assert!(stderr.contains("scenario `private-dns-missing` is invalid"), "{stderr}");
    assert!(!stderr.contains("no scenario matches"), "{stderr}");
    // Only the selected file's errors: another broken scenario stays out of it.
    assert!(!stderr.contains("healthy-baseline"), "{stderr}");
    assert_eq!(stderr.matches("error: ").count(), 2, "{stderr}");
}

#[test]
fn plan_of_a_scenario_on_a_broken_baseline_prints_the_baseline_errors() {
    let out = pullproof_with("private-registry.yaml", "os: Linux", "os: Lunix", &["plan", "private-dns-missing"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("private-registry.yaml:13:30: unknown value `Lunix` for `cluster.pools[0].os`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `Linux`?"), "{stderr}");
    assert!(stderr.contains("private-dns-missing.yaml:9:11: baseline `private-registry` has errors"), "{stderr}");
    assert!(stderr.contains("scenario `private-dns-missing` is invalid"), "{stderr}");
}

#[test]
fn run_of_an_invalid_scenario_prints_its_errors() {
    let out = pullproof_with(
        "acrpull-role-missing.yaml",
        "findings: [ACR_PULL_ROLE_MISSING]",
        "findings: ACR_PULL_ROLE_MISSING",
        &["run", "acrpull-role-missing"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("acrpull-role-missing.yaml:16:13: `expect.findings` must be a list of finding codes"),
        "{stderr}"
    );
}

#[test]
fn requests_keep_azure_spellings_of_enum_values() {
    let out = pullproof(&[
        "plan",
        "nsg-blocks-registry",
        "route-table-blackhole",
        "--backend",
        "aks",
        "--requests",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let body = |doc: &serde_json::Value, part: &str, path_end: &str| {
        let reqs = doc["requests"][part].as_array().unwrap();
        reqs.iter().find(|r| r["path"].as_str().unwrap().ends_with(path_end)).unwrap()["body"].clone()
    };
    let nsg = &docs[0];
    let rules = body(nsg, "baseline", "networkSecurityGroups/aks-nodes-nsg")["properties"]["securityRules"].clone();
    assert_eq!(
        rules[0]["properties"],
        serde_json::json!({
            "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "443",
            "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
            "access": "Allow", "priority": 1000, "direction": "Outbound"
        })
    );
    let added = body(nsg, "fault", "securityRules/deny-hub-endpoints");
    assert_eq!(added["properties"]["access"], "Deny");
    assert_eq!(added["properties"]["protocol"], "Tcp");
    let registry = body(nsg, "baseline", "registries/pullproofacr");
    assert_eq!(registry["sku"]["name"], "Premium");
    assert_eq!(registry["properties"]["roleAssignmentMode"], "LegacyRegistryPermissions");
    assert_eq!(registry["properties"]["publicNetworkAccess"], "Disabled");
    let cluster = body(nsg, "baseline", "managedClusters/aks-priv");
    assert_eq!(cluster["properties"]["agentPoolProfiles"][0]["osType"], "Linux");
    let routes = body(nsg, "baseline", "routeTables/aks-nodes-routes")["properties"]["routes"].clone();
    assert_eq!(routes[0]["properties"]["nextHopType"], "VnetLocal");
    let blackhole = body(&docs[1], "fault", "routes/endpoints-blackhole");
    assert_eq!(blackhole["properties"]["nextHopType"], "None");

    let out = pullproof(&["plan", "acr-firewall-denies-egress", "--backend", "aks", "--requests", "-o", "json"]);
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let registry = body(&docs[0], "baseline", "registries/pullproofacr");
    assert_eq!(registry["properties"]["networkRuleSet"]["defaultAction"], "Deny");
}
