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
    assert_eq!(cat.entries.len(), 17);
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
    assert_eq!(timeouts.len(), 4);
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
    "scenarios/acrpull-role-missing.yaml:15:14: unknown value `ACR_PULL_ROLE_MISING`",
    "did you mean `ACR_PULL_ROLE_MISSING`?"
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
    "scenarios/acrpull-role-missing.yaml:18:20: ` minute` in `1 minute` is not a unit",
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
