//! The real catalog loads cleanly, covers every finding code, and bad files produce
//! file:line:column diagnostics with the closest valid value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pulldoctor::FindingCode;
use pullproof::catalog::{Catalog, Layout};
use pullproof::plan::RunPlan;
use pullproof::scenario::{self, BackendKind, Fault, Mutation};
use rstest::rstest;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn real() -> Catalog {
    Catalog::load(&Layout::under(&root()))
}

#[test]
fn real_catalog_is_valid() {
    let cat = real();
    let errors: Vec<String> = cat.diagnostics.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(cat.entries.len(), 25);
}

#[test]
fn every_finding_code_has_exactly_one_scenario() {
    let cat = real();
    let mut seen = BTreeSet::new();
    for e in &cat.entries {
        for code in &e.scenario.expect.findings {
            assert!(seen.insert(*code), "{code} expected by two scenarios");
        }
    }
    let all: BTreeSet<FindingCode> = FindingCode::ALL.iter().copied().collect();
    assert_eq!(seen, all);
    let healthy = cat.entries.iter().find(|e| e.scenario.name == "healthy-baseline").unwrap();
    assert_eq!(healthy.scenario.fault, Fault::None);
    assert!(healthy.scenario.expect.findings.is_empty());
}

/// The shape of every inverse, for every fault. That each inverse really undoes its fault is
/// checked against the emulator in `emulator_provision.rs`
/// (`every_fault_touching_azure_is_undone_by_its_inverse`: provision, export, fault, inverse,
/// export, compare) for every fault that touches Azure; cluster-only faults (`setImage`, whose
/// inverse `restoreWorkload` puts back the baseline's workload) are checked here only.
#[test]
fn every_fault_has_an_inverse_that_undoes_it() {
    for e in &real().entries {
        let fwd = e.scenario.fault.mutation();
        let inv = e.scenario.fault.inverse(&e.baseline);
        if e.scenario.fault == Fault::None {
            assert_eq!((fwd, inv), (Mutation::Nothing, Mutation::Nothing));
        } else {
            assert_ne!(inv, Mutation::Nothing, "{}", e.scenario.name);
            assert_ne!(fwd, inv, "{}", e.scenario.name);
            if matches!(e.scenario.fault, Fault::SetImage { .. }) {
                assert_eq!(inv, Mutation::RestoreWorkload, "{}", e.scenario.name);
            }
        }
    }
}

#[test]
fn scenario_files_point_editors_at_the_schema() {
    for e in &real().entries {
        let text = std::fs::read_to_string(&e.path).unwrap();
        assert!(text.starts_with("# yaml-language-server: $schema=./schema.json"), "{}", e.path.display());
    }
}

#[test]
fn committed_schemas_are_current() {
    let scenario_schema = std::fs::read_to_string(root().join("scenarios/schema.json")).unwrap();
    assert!(scenario_schema == scenario::schema_json(), "scenarios/schema.json is stale: run `just schema`");
    let baseline_schema = std::fs::read_to_string(root().join("fixtures/baselines/schema.json")).unwrap();
    assert!(
        baseline_schema == scenario::baseline_schema_json(),
        "fixtures/baselines/schema.json is stale: run `just schema`"
    );
}

#[test]
fn selection_by_glob_and_tag() {
    let cat = real();
    let names = |v: Vec<&pullproof::catalog::Entry>| v.iter().map(|e| e.scenario.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(cat.select(&["vnet-*".into()], &[]).unwrap()),
        ["vnet-peering-disconnected", "vnet-peering-missing"]
    );
    let timeouts = names(cat.select(&[], &["timeout".into()]).unwrap());
    assert_eq!(timeouts.len(), 6);
    let err = cat.select(&["privat-dns-missing".into()], &[]).unwrap_err();
    assert!(err.hint.contains("private-dns-missing"), "{err}");
}

#[test]
fn plans_list_every_phase_in_order() {
    let cat = real();
    let e = cat.entries.iter().find(|e| e.scenario.name == "route-table-blackhole").unwrap();
    let plan = RunPlan::new(e, BackendKind::Host);
    let phases: Vec<String> =
        plan.steps.iter().map(|s| serde_json::to_value(s.phase).unwrap().as_str().unwrap().to_string()).collect();
    assert_eq!(
        phases,
        [
            "validate",
            "baseline",
            "steady-state",
            "register-inverse",
            "inject",
            "verify-injected",
            "diagnose",
            "remediate",
            "recover",
            "revert",
            "verify-reverted",
            "artifacts",
            "cleanup"
        ]
    );
    let text = plan.render_text();
    assert!(text.contains("delete route endpoints-blackhole from route table aks-nodes-routes"), "{text}");
    assert!(text.contains("the harness applies the scenario's own"), "{text}");
}

/// Copies the real tree into a temp dir, edits one scenario, and loads it.
fn broken(file: &str, from: &str, to: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (scen, base) = (dir.path().join("scenarios"), dir.path().join("fixtures/baselines"));
    std::fs::create_dir_all(&scen).unwrap();
    std::fs::create_dir_all(&base).unwrap();
    for (src, dst) in [(root().join("scenarios"), &scen), (root().join("fixtures/baselines"), &base)] {
        for f in std::fs::read_dir(src).unwrap() {
            let p = f.unwrap().path();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if p.file_name().unwrap() == file {
                assert!(text.contains(from), "{from} not in {file}");
                text = text.replacen(from, to, 1);
            }
            std::fs::write(dst.join(p.file_name().unwrap()), text).unwrap();
        }
    }
    Catalog::load(&Layout::under(dir.path()))
        .diagnostics
        .iter()
        .map(|d| d.to_string().replace(&format!("{}/", dir.path().display()), ""))
        .collect()
}

#[rstest]
#[case::misspelt_fault_kind(
    "private-dns-missing.yaml",
    "deleteVnetLink:",
    "deleteVnetLnk:",
    "scenarios/private-dns-missing.yaml:11:3: unknown value `deleteVnetLnk`",
    "did you mean `deleteVnetLink`?"
)]
#[case::misspelt_field(
    "healthy-baseline.yaml",
    "summary:",
    "summry:",
    "scenarios/healthy-baseline.yaml:3:1: unknown field `summry`",
    "did you mean `summary`?"
)]
#[case::misspelt_symptom(
    "acr-firewall-denies-egress.yaml",
    "symptom: forbidden",
    "symptom: forbiden",
    "scenarios/acr-firewall-denies-egress.yaml:13:12: unknown value `forbiden`",
    "did you mean `forbidden`?"
)]
#[case::misspelt_code(
    "acrpull-role-missing.yaml",
    "findings: [ACR_PULL_ROLE_MISSING]",
    "findings: [ACR_PULL_ROLE_MISING]",
    "scenarios/acrpull-role-missing.yaml:16:14: unknown value `ACR_PULL_ROLE_MISING`",
    "did you mean `ACR_PULL_ROLE_MISSING`?"
)]
#[case::bad_message_regex(
    "image-tag-not-found.yaml",
    "message: 'failed to resolve image: \\S+/app:v2: not found'",
    "message: 'failed to resolve image: (\\S+/app:v2: not found'",
    "scenarios/image-tag-not-found.yaml:14:12: `expect.message` is not a valid regular expression",
    ""
)]
#[case::missing_message(
    "image-tag-not-found.yaml",
    "  message: 'failed to resolve image: \\S+/app:v2: not found'\n",
    "",
    "scenarios/image-tag-not-found.yaml:12:1: `expect.message` is missing",
    "copy the text from a run"
)]
#[case::unknown_baseline(
    "vnet-peering-missing.yaml",
    "baseline: private-registry",
    "baseline: private-registy",
    "scenarios/vnet-peering-missing.yaml:9:11: baseline `private-registy` does not exist",
    "did you mean `private-registry`?"
)]
#[case::unknown_vnet(
    "private-dns-missing.yaml",
    "vnet: aks-vnet",
    "vnet: aks-vnt",
    "scenarios/private-dns-missing.yaml:11:57: a link of zone `privatelink.azurecr.io` to vnet `aks-vnt` is not in baseline",
    "did you mean `aks-vnet`?"
)]
#[case::bad_budget(
    "acrpull-role-missing.yaml",
    "inject: 1m,",
    "inject: 1 minute,",
    "scenarios/acrpull-role-missing.yaml:22:20: `budgets.inject`: ` minute` in `1 minute` is not a unit",
    ""
)]
#[case::name_mismatch(
    "platform-mismatch.yaml",
    "name: platform-mismatch",
    "name: platform-mismatches",
    "scenarios/platform-mismatch.yaml:2:7: scenario name `platform-mismatches` differs from its file name",
    "rename one"
)]
#[case::forbid_overlaps(
    "image-tag-not-found.yaml",
    "forbid: [ACR_PULL_ROLE_MISSING,",
    "forbid: [IMAGE_NOT_FOUND,",
    "scenarios/image-tag-not-found.yaml",
    ""
)]
#[case::baseline_bad_subnet(
    "private-registry.yaml",
    "subnet: hub-vnet/endpoints",
    "subnet: hub-vnet/endpoint",
    "fixtures/baselines/private-registry.yaml:19:53: the registry's private endpoint names subnet `hub-vnet/endpoint`",
    "did you mean `hub-vnet/endpoints`?"
)]
#[case::missing_symptom(
    "nsg-blocks-registry.yaml",
    "  symptom: timeout\n",
    "",
    "scenarios/nsg-blocks-registry.yaml",
    "`expect.symptom` is missing"
)]
#[case::baseline_misspelt_os(
    "private-registry.yaml",
    "os: Linux",
    "os: Lunix",
    "fixtures/baselines/private-registry.yaml:13:30: unknown value `Lunix` for `cluster.pools[0].os`",
    "did you mean `Linux`?"
)]
#[case::baseline_misspelt_access(
    "private-registry.yaml",
    "access: Allow",
    "access: Alow",
    "fixtures/baselines/private-registry.yaml:43:58: unknown value `Alow` for `nsgs[0].rules[0].access`",
    "did you mean `Allow`?"
)]
#[case::baseline_misspelt_direction(
    "private-registry.yaml",
    "access: Allow",
    "access: Allow, direction: Outbund",
    "fixtures/baselines/private-registry.yaml:43:76: unknown value `Outbund` for `nsgs[0].rules[0].direction`",
    "did you mean `Outbound`?"
)]
#[case::baseline_misspelt_protocol(
    "private-registry.yaml",
    "access: Allow",
    "access: Allow, protocol: Tpc",
    "fixtures/baselines/private-registry.yaml:43:75: unknown value `Tpc` for `nsgs[0].rules[0].protocol`",
    "did you mean `Tcp`?"
)]
#[case::baseline_misspelt_next_hop(
    "private-registry.yaml",
    "nextHopType: VnetLocal",
    "nextHopType: VnetLokal",
    "fixtures/baselines/private-registry.yaml:48:63: unknown value `VnetLokal` for `routeTables[0].routes[0].nextHopType`",
    "did you mean `VnetLocal`?"
)]
#[case::baseline_misspelt_default_action(
    "firewalled-registry.yaml",
    "defaultAction: Deny",
    "defaultAction: Deni",
    "fixtures/baselines/firewalled-registry.yaml:18:20: unknown value `Deni` for `registry.firewall.defaultAction`",
    "did you mean `Deny`?"
)]
#[case::baseline_misspelt_sku(
    "private-registry.yaml",
    "  publicNetworkAccess: false\n",
    "  publicNetworkAccess: false\n  sku: Premum\n",
    "fixtures/baselines/private-registry.yaml:19:8: unknown value `Premum` for `registry.sku`",
    "did you mean `Premium`?"
)]
#[case::baseline_misspelt_role_assignment_mode(
    "private-registry.yaml",
    "  publicNetworkAccess: false\n",
    "  publicNetworkAccess: false\n  roleAssignmentMode: AbacRepositoryPermission\n",
    "fixtures/baselines/private-registry.yaml:19:23: unknown value `AbacRepositoryPermission` for `registry.roleAssignmentMode`",
    "did you mean `AbacRepositoryPermissions`?"
)]
#[case::baseline_public_access_not_a_bool(
    "private-registry.yaml",
    "publicNetworkAccess: false",
    "publicNetworkAccess: Disabled",
    "fixtures/baselines/private-registry.yaml:18:24: `registry.publicNetworkAccess` must be true or false",
    "found `Disabled`"
)]
#[case::fault_rule_misspelt_access(
    "nsg-blocks-registry.yaml",
    "access: Deny",
    "access: Deney",
    "scenarios/nsg-blocks-registry.yaml:13:62: unknown value `Deney` for `fault.addNsgRule.rule.access`",
    "did you mean `Deny`?"
)]
#[case::fault_route_misspelt_next_hop(
    "route-table-blackhole.yaml",
    "nextHopType: None",
    "nextHopType: Nothing",
    "scenarios/route-table-blackhole.yaml:14:82: unknown value `Nothing` for `fault.addRoute.route.nextHopType`",
    ""
)]
#[case::baseline_vnet_link_typo_points_at_the_link(
    "private-registry.yaml",
    "links: [aks-vnet, hub-vnet]",
    "links: [aks-vnt, hub-vnet]",
    "fixtures/baselines/private-registry.yaml:38:13: private DNS zone `privatelink.azurecr.io` names vnet `aks-vnt`",
    "did you mean `aks-vnet`?"
)]
#[case::baseline_nsg_typo_points_at_the_subnet(
    "private-registry.yaml",
    "nsg: aks-nodes-nsg,",
    "nsg: aks-nodes-nsq,",
    "fixtures/baselines/private-registry.yaml:27:50: subnet `aks-vnet/nodes` names NSG `aks-nodes-nsq`, which is not declared",
    "did you mean `aks-nodes-nsg`?"
)]
#[case::baseline_route_table_typo(
    "private-registry.yaml",
    "routeTable: aks-nodes-routes }",
    "routeTable: aks-node-routes }",
    "fixtures/baselines/private-registry.yaml:27:77: subnet `aks-vnet/nodes` names route table `aks-node-routes`",
    "did you mean `aks-nodes-routes`?"
)]
#[case::baseline_peering_typo_points_at_the_second_vnet(
    "private-registry.yaml",
    "between: [aks-vnet, hub-vnet]",
    "between: [aks-vnet, hub-vnt]",
    "fixtures/baselines/private-registry.yaml:34:25: a peering names vnet `hub-vnt`",
    "did you mean `hub-vnet`?"
)]
#[case::baseline_egress_ip_typo(
    "private-registry.yaml",
    "egressIps: [aks-egress]",
    "egressIps: [aks-egres]",
    "fixtures/baselines/private-registry.yaml:14:15: cluster egress names public IP `aks-egres`",
    "did you mean `aks-egress`?"
)]
#[case::findings_not_a_list(
    "acrpull-role-missing.yaml",
    "findings: [ACR_PULL_ROLE_MISSING]",
    "findings: ACR_PULL_ROLE_MISSING",
    "scenarios/acrpull-role-missing.yaml:16:13: `expect.findings` must be a list of finding codes, e.g. [ACR_PULL_ROLE_MISSING]",
    "`findings: [ACR_PULL_ROLE_MISSING]`"
)]
#[case::fault_is_a_list(
    "acrpull-role-missing.yaml",
    "fault:\n  deleteRoleAssignment: { principal: kubelet, role: AcrPull }",
    "fault: []",
    "scenarios/acrpull-role-missing.yaml:11:8: `fault` must name one fault kind with its fields",
    "found a list"
)]
#[case::fault_kind_without_fields(
    "acrpull-role-missing.yaml",
    "fault:\n  deleteRoleAssignment: { principal: kubelet, role: AcrPull }",
    "fault: deleteRoleAssignment",
    "scenarios/acrpull-role-missing.yaml:12:1: fault `deleteRoleAssignment` needs its fields",
    "`deleteRoleAssignment: { ... }`"
)]
#[case::budgets_not_a_mapping(
    "acrpull-role-missing.yaml",
    "budgets: { inject: 1m, diagnose: 30s, remediate: 1m, recover: 2m }",
    "budgets: 5",
    "scenarios/acrpull-role-missing.yaml:22:10: `budgets` must be a mapping of phase to duration, e.g. { inject: 1m",
    "found `5`"
)]
#[case::two_faults(
    "acrpull-role-missing.yaml",
    "  deleteRoleAssignment: { principal: kubelet, role: AcrPull }\n",
    "  deleteRoleAssignment: { principal: kubelet, role: AcrPull }\n  setImage: { image: x }\n",
    "scenarios/acrpull-role-missing.yaml:13:3: a scenario has exactly one fault: found `deleteRoleAssignment` and `setImage`",
    "a scenario of its own"
)]
#[case::duplicate_fault_key(
    "acrpull-role-missing.yaml",
    "expect:\n",
    "fault: none\nexpect:\n",
    "scenarios/acrpull-role-missing.yaml:13:1: duplicate key `fault`",
    "a scenario has exactly one fault"
)]
#[case::duplicate_nested_key(
    "acrpull-role-missing.yaml",
    "  remediation: automatic\n",
    "  remediation: automatic\n  symptom: forbidden\n",
    "scenarios/acrpull-role-missing.yaml:19:3: duplicate key `symptom` in `expect`",
    "keep one `symptom:`"
)]
#[case::list_item_not_a_mapping(
    "private-registry.yaml",
    "pools:\n    - { name: nodepool1, os: Linux, subnet: aks-vnet/nodes }",
    "pools: [nodepool1]",
    "fixtures/baselines/private-registry.yaml:12:11: `cluster.pools[0]` must be a mapping of `key: value` pairs",
    "found `nodepool1`"
)]
#[case::baseline_list_not_a_list(
    "private-registry.yaml",
    "links: [aks-vnet, hub-vnet]",
    "links: aks-vnet",
    "fixtures/baselines/private-registry.yaml:38:12: `privateDnsZones[0].links` must be a list of VNet names, e.g. [aks-vnet]",
    "`links: [aks-vnet]`"
)]
#[case::missing_field_names_its_mapping(
    "acrpull-role-missing.yaml",
    "{ principal: kubelet, role: AcrPull }",
    "{ principal: kubelet }",
    "scenarios/acrpull-role-missing.yaml:12:27: missing field `role` in `fault.deleteRoleAssignment`",
    ""
)]
fn bad_files_are_located(
    #[case] file: &str,
    #[case] from: &str,
    #[case] to: &str,
    #[case] want: &str,
    #[case] hint: &str,
) {
    let diags = broken(file, from, to);
    assert!(
        diags.iter().any(|d| d.starts_with(want) && d.contains(hint)),
        "wanted `{want}` with `{hint}`, got {diags:#?}"
    );
}

#[test]
fn yaml_errors_never_mention_library_internals() {
    for (from, to) in [
        ("expect:\n", "fault: none\nexpect:\n"),
        (
            "  deleteRoleAssignment: { principal: kubelet, role: AcrPull }\n",
            "  deleteRoleAssignment: { principal: kubelet, role: AcrPull }\n  setImage: { image: x }\n",
        ),
        ("fault:\n  deleteRoleAssignment: { principal: kubelet, role: AcrPull }", "fault: []"),
        ("findings: [ACR_PULL_ROLE_MISSING]", "findings: ACR_PULL_ROLE_MISSING"),
        ("budgets: { inject: 1m, diagnose: 30s, remediate: 1m, recover: 2m }", "budgets: 5"),
    ] {
        let diags = broken("acrpull-role-missing.yaml", from, to);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        for internal in
            ["DuplicateKeyPolicy", "Options", "externally tagged", "sequence start", "mapping start", "enum variant"]
        {
            assert!(!diags[0].contains(internal), "`{internal}` in {}", diags[0]);
        }
    }
}
