//! Azure collection against pullproof's emulator over real HTTPS (its CA trusted, tokens from
//! its Entra endpoint with client credentials): every evidence fixture is loaded into the
//! emulator, its dump served by an in-process Kubernetes API server, and the live diagnosis
//! must name the fixture's codes. Refused reads become `unavailable` entries.

mod collect_support;

use std::collections::BTreeSet;

use collect_support::{DenyingProxy, KubeState, MockKube, clients, emulator, expected_codes, fixture_names, fixtures};
use pulldoctor::collect::{self, KubeOptions, Selection, Target};
use pulldoctor::finding::Confidence;
use pulldoctor::{Evidence, diagnose};

fn shop() -> Selection {
    Selection { namespace: Some("shop".into()), ..Default::default() }
}

/// The registry content (tags, platforms) comes from ACR's data plane, which the emulator does
/// not serve: it is taken from the fixture.
fn with_registry_content(evidence: &mut Evidence, fixture: &str) {
    let text = std::fs::read_to_string(fixtures().join(fixture).join("azure.json")).unwrap();
    evidence.azure.registry_content = azure_model::Inventory::from_json(&text).unwrap().registry_content;
}

#[tokio::test]
async fn every_fixture_diagnoses_live_to_its_expected_codes() {
    let mut failures = Vec::new();
    for fixture in fixture_names() {
        let emu = emulator(&fixture).await;
        let az = clients(&emu);
        let mock = MockKube::start(KubeState::from_dump(&fixtures().join(&fixture).join("dump"))).await;
        let live =
            collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
                .await
                .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let mut evidence = live.evidence;
        with_registry_content(&mut evidence, &fixture);
        let report = collect::report(&diagnose(&evidence), &evidence);
        let got: BTreeSet<String> = report.findings.iter().map(|f| f.code.to_string()).collect();
        let want = expected_codes(&fixture);
        println!("{fixture}: {} ARM, {} Graph requests, {:?}", live.arm_requests, live.graph_requests, live.elapsed);
        if got != want || !report.unavailable.is_empty() {
            failures.push(format!("{fixture}: got {got:?}, want {want:?}, unavailable {:?}", report.unavailable));
        }
        assert!(live.arm_requests <= 15, "{fixture}: {} ARM requests", live.arm_requests);
        emu.shutdown().await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn one_pod_costs_at_most_15_arm_requests() {
    let mut worst = 0;
    for fixture in fixture_names().into_iter().filter(|f| f != "healthy-baseline") {
        let emu = emulator(&fixture).await;
        let az = clients(&emu);
        let mock = MockKube::start(KubeState::from_dump(&fixtures().join(&fixture).join("dump"))).await;
        let all = collect::k8s::collect(mock.client("shop"), &shop(), KubeOptions::default()).await.unwrap();
        let pod = all.pods[0].metadata.name.clone().unwrap();
        let one = Selection { namespace: Some("shop".into()), pod: Some(pod), ..Default::default() };
        let before = az.arm.requests_sent();
        let live =
            collect::collect_live(mock.client("shop"), &one, KubeOptions::default(), Some(&az), &Target::default())
                .await
                .unwrap();
        assert_eq!(az.arm.requests_sent() - before, live.arm_requests);
        println!("{fixture}: one pod, {} ARM requests", live.arm_requests);
        assert!(live.arm_requests <= 15, "{fixture}: {} ARM requests for one pod", live.arm_requests);
        worst = worst.max(live.arm_requests);
        emu.shutdown().await;
    }
    println!("most ARM requests for one pod: {worst}");
}

#[tokio::test]
async fn a_named_cluster_is_read_directly() {
    let fixture = "acrpull-role-missing";
    let emu = emulator(fixture).await;
    let az = clients(&emu);
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let inv = emu.export();
    let cluster = inv.managed_clusters[0].clone();
    let rg = azure_model::ResourceId::parse(&cluster.id).unwrap().resource_group().unwrap().to_string();
    let target =
        Target { subscription: Some(emu.subscription_id().into()), cluster: Some((rg.clone(), cluster.name.clone())) };
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &target).await.unwrap();
    assert_eq!(live.evidence.azure.managed_clusters[0].name, cluster.name);
    let codes: Vec<_> = diagnose(&live.evidence).findings.iter().map(|f| f.code.to_string()).collect();
    assert_eq!(codes, ["ACR_PULL_ROLE_MISSING"]);
    // A cluster that does not exist is the user's error.
    let target = Target { cluster: Some((rg, "nope".into())), ..target };
    let err = collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &target)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn refused_role_assignments_are_unavailable_and_lower_confidence() {
    let fixture = "acrpull-role-missing";
    let emu = emulator(fixture).await;
    let proxy = DenyingProxy::start(&emu, &["roleAssignments"]).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .expect("a 403 is not an error");
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    assert_eq!(report.unavailable.len(), 1, "{:?}", report.unavailable);
    let u = &report.unavailable[0];
    assert!(u.what.starts_with("azure: role assignments at /subscriptions/"), "{u:?}");
    assert!(u.reason.starts_with("403 AuthorizationFailed"), "{u:?}");
    let f = &report.findings[0];
    assert_eq!(f.code.to_string(), "ACR_PULL_ROLE_MISSING");
    assert_eq!(f.confidence, Confidence::Medium, "a guess without the assignments");
    assert!(f.evidence.iter().any(|e| e.starts_with("evidence unavailable: azure: role assignments")));
    let text = pulldoctor::report::render_text(&report);
    assert!(text.contains("evidence not available:"), "{text}");
}

#[tokio::test]
async fn refused_graph_reads_are_unavailable() {
    let fixture = "sp-secret-expired";
    let emu = emulator(fixture).await;
    let proxy = DenyingProxy::start(&emu, &["/v1.0/"]).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    assert!(
        report.unavailable.iter().any(|u| u.what.starts_with("azure: directory application")),
        "{:?}",
        report.unavailable
    );
    // Without the application, expiry cannot be confirmed: the finding is still made, at
    // lowered confidence, and says which evidence was missing.
    let causes: Vec<String> =
        report.findings.iter().filter(|f| f.code.is_cause()).map(|f| f.code.to_string()).collect();
    assert_eq!(causes, ["SP_SECRET_EXPIRED"], "{:#?}", report.findings);
    let f = report.findings.iter().find(|f| f.code.to_string() == "SP_SECRET_EXPIRED").unwrap();
    assert_ne!(f.confidence, Confidence::High, "{f:#?}");
    assert_eq!(f.confidence, Confidence::Low, "{f:#?}");
    assert!(
        f.evidence.iter().any(|e| e.starts_with("evidence unavailable: azure: directory application")),
        "{:#?}",
        f.evidence
    );
    assert_eq!(f.pods.len(), 2);
}

#[tokio::test]
async fn no_graph_is_recorded_as_skipped_and_proposes_no_grant() {
    let fixture = "sp-secret-expired";
    let emu = emulator(fixture).await;
    let mut config = collect_support::azure_config(&emu);
    config.read_graph = false;
    let az = config.clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    assert_eq!(live.graph_requests, 0);
    let report = collect::report(&diagnose(&live.evidence), &live.evidence);
    assert!(
        report.unavailable.iter().any(|u| u.what == "azure: microsoft graph" && u.reason == "not read: --no-graph"),
        "{:?}",
        report.unavailable
    );
    // Expiry is not judged silently: the finding is made at low confidence and says why.
    let f = report.findings.iter().find(|f| f.code.to_string() == "SP_SECRET_EXPIRED").unwrap();
    assert_eq!(f.confidence, Confidence::Low, "{f:#?}");
    assert!(f.evidence.iter().any(|e| e.contains("--no-graph")), "{:#?}", f.evidence);
    // The user chose it: no Graph permission is proposed, and the text says it was skipped.
    let meta = report.findings.iter().find(|f| f.code.to_string() == "EVIDENCE_UNAVAILABLE").unwrap();
    assert!(meta.summary.contains("skipped on request"), "{}", meta.summary);
    assert!(meta.plan.actions.is_empty(), "{:#?}", meta.plan.actions);
}

#[tokio::test]
async fn each_resource_is_read_once_and_nothing_without_failures() {
    let fixture = "vnet-peering-missing";
    let emu = emulator(fixture).await;
    let proxy = DenyingProxy::start(&emu, &[]).await;
    let az = proxy.azure_config(&emu).clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
        .await
        .unwrap();
    let log = proxy.log.lock().unwrap().clone();
    let arm: Vec<&String> = log.iter().filter(|l| l.contains("/subscriptions")).collect();
    let unique: BTreeSet<String> = arm.iter().map(|l| l.to_ascii_lowercase()).collect();
    assert_eq!(unique.len(), arm.len(), "a resource read twice: {arm:#?}");
    assert!(arm.len() <= 15, "{arm:#?}");

    // A healthy namespace makes no Azure request at all.
    let emu2 = emulator("healthy-baseline").await;
    let proxy2 = DenyingProxy::start(&emu2, &[]).await;
    let az2 = proxy2.azure_config(&emu2).clients().unwrap();
    let mock2 = MockKube::start(KubeState::from_dump(&fixtures().join("healthy-baseline").join("dump"))).await;
    let live =
        collect::collect_live(mock2.client("shop"), &shop(), KubeOptions::default(), Some(&az2), &Target::default())
            .await
            .unwrap();
    assert_eq!(live.arm_requests, 0);
    assert!(proxy2.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn no_token_is_one_unavailable_entry() {
    let fixture = "acrpull-role-missing";
    let emu = emulator(fixture).await;
    let mut cfg = collect_support::azure_config(&emu);
    cfg.auth = pulldoctor::credential::AzureAuth::ClientCredentials {
        token_url: collect_support::token_url(&emu),
        client_id: emu.operator().client_id.clone(),
        client_secret: "wrong".into(),
    };
    let az = cfg.clients().unwrap();
    let mock = MockKube::start(KubeState::from_dump(&fixtures().join(fixture).join("dump"))).await;
    let live =
        collect::collect_live(mock.client("shop"), &shop(), KubeOptions::default(), Some(&az), &Target::default())
            .await
            .unwrap();
    let u = &live.evidence.azure.unavailable;
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].what, "azure: resource manager");
    assert!(u[0].reason.contains("AADSTS7000215"), "{u:?}");
}
