//! Grading engines through the contract: pulldoctor run as an external program gets the same
//! verdicts as linked in, and a naive engine gets an honest conformance report.

use pullproof::run::conformance::Detection;
use pullproof::run::{Conformance, RemediationVerdict, Status};

mod grading;
mod leftovers;
use grading::{root, target_bin, why};

const FAST: &[&str] = &[
    "healthy-baseline",
    "acrpull-role-missing",
    "kubelet-identity-removed",
    "private-dns-missing",
    "image-tag-not-found",
];

fn grade(command: String) -> Option<pullproof::run::RunRecord> {
    grading::grade(command, FAST, std::time::Duration::from_secs(60))
}

#[test]
fn host_pulldoctor_through_the_contract_passes() {
    let pulldoctor = target_bin("pulldoctor");
    // The inventory is what a user can export: no record of what the harness pushed (exit 3,
    // an engine failure, if it is there). pulldoctor then runs live on the contract's inputs
    // alone, as a user runs it: Kubernetes through the read-only kubeconfig, ARM and Graph with
    // the token, tags and platforms from the registry.
    let cmd = format!(
        r#"python3 -c 'import json,os,sys; sys.exit(3 if "registryContent" in json.load(open(os.environ["PULLPROOF_AZURE_INVENTORY"])) else 0)' && KUBECONFIG="$PULLPROOF_KUBECONFIG" {} diagnose -n "$PULLPROOF_NAMESPACE" --arm-endpoint "$PULLPROOF_ARM_ENDPOINT" --graph-endpoint "$PULLPROOF_GRAPH_ENDPOINT" --ca-file "$PULLPROOF_CA_FILE" --access-token "$PULLPROOF_ARM_TOKEN" --registry-address "$PULLPROOF_REGISTRY_ADDRESSES" --output json"#,
        pulldoctor.display()
    );
    let Some(run) = grade(cmd) else { return };
    for s in &run.scenarios {
        assert_eq!(s.status, Status::Passed, "{}: {}", s.scenario, s.reason);
    }
    let c = Conformance::of(&run);
    assert_eq!((c.precision, c.recall), (Some(1.0), Some(1.0)));
    assert!(c.rows.iter().all(|r| r.detection == Detection::Detected));
}

#[test]
fn host_naive_engine_gets_an_honest_grade() {
    let script = root().join("examples/engines/naive.py");
    let Some(run) = grade(format!("python3 {}", script.display())) else { return };
    let c = Conformance::of(&run);
    let row = |name: &str| c.rows.iter().find(|r| r.scenario == name).unwrap();
    assert_eq!(row("healthy-baseline").detection, Detection::Detected, "{}", why(&run));
    // The right code, but a missing role is not the workload's fault.
    assert_eq!(row("acrpull-role-missing").detection, Detection::DetectedWrongResource, "{}", why(&run));
    // A 401 alone does not say whose identity is broken: the naive guess is the wrong code.
    assert_eq!(row("kubelet-identity-removed").detection, Detection::WrongCode, "{}", why(&run));
    // 403 without Azure evidence: firewall guessed, DNS was the cause.
    assert_eq!(row("private-dns-missing").detection, Detection::WrongCode, "{}", why(&run));
    assert_eq!(row("image-tag-not-found").detection, Detection::Detected, "{}", why(&run));
    // Right code and resource, but no plan: nothing to remediate with.
    assert_eq!(row("image-tag-not-found").remediation, Some(RemediationVerdict::None), "{}", why(&run));
    let (precision, recall) = (c.precision.unwrap(), c.recall.unwrap());
    assert!(precision < 1.0 && recall < 1.0, "{c:?}\n{}", why(&run));
    assert!((recall - 2.0 / 4.0).abs() < 1e-9, "{c:?}\n{}", why(&run));
}

#[test]
fn host_an_engine_reads_the_kubelets_events_live_through_its_kubeconfig() {
    let script = root().join("examples/engines/events.py");
    let Some(run) = grade(format!("python3 {}", script.display())) else { return };
    let c = Conformance::of(&run);
    let row = |name: &str| c.rows.iter().find(|r| r.scenario == name).unwrap();
    // The kubelet's own Failed events, read with the engine's read-only kubeconfig (blaming
    // the workload, which is right only for a bad tag).
    assert_eq!(row("acrpull-role-missing").detection, Detection::DetectedWrongResource, "{c:?}\n{}", why(&run));
    assert_eq!(row("image-tag-not-found").detection, Detection::Detected, "{c:?}\n{}", why(&run));
    assert_eq!(row("healthy-baseline").detection, Detection::Detected, "{c:?}\n{}", why(&run));
}
