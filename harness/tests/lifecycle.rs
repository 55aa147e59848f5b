//! The runner's state machine, driven by a scripted world: statuses, revert, and cleanup on
//! every path. (Real worlds are exercised by the host backend's end-to-end tests.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pulldoctor::plan::Change;
use pulldoctor::{FindingCode, Report};
use pullproof::catalog::{Catalog, Entry, Layout};
use pullproof::run::{
    Backend, BackendError, Engine, EngineInput, Health, RemediationVerdict, RunOptions, Status, World, run_scenario,
};
use pullproof::scenario::{BackendKind, Mutation};

/// What real containerd and kubelet say (verbatim from a host run) for a pull whose token
/// request was refused.
const UNAUTHORIZED: &str = "Failed to pull image \"pullproofacr.azurecr.io/app:v1\": failed to pull and unpack image \"pullproofacr.azurecr.io/app:v1\": failed to resolve image: failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://pullproofacr.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&service=pullproofacr.azurecr.io: 401 Unauthorized";
/// ... for a tag that was never pushed.
const NOT_FOUND: &str = "Failed to pull image \"pullproofacr.azurecr.io/app:v2\": rpc error: code = NotFound desc = failed to pull and unpack image \"pullproofacr.azurecr.io/app:v2\": failed to resolve image: pullproofacr.azurecr.io/app:v2: not found";
/// ... for a dropped packet.
const TIMEOUT: &str = "Failed to pull image \"pullproofacr.azurecr.io/app:v1\": rpc error: code = DeadlineExceeded desc = failed to pull and unpack image \"pullproofacr.azurecr.io/app:v1\": failed to resolve image: failed to do request: Head \"https://pullproofacr.azurecr.io/v2/app/manifests/v1\": dial tcp 10.2.0.5:443: i/o timeout";

#[derive(Default)]
struct Script {
    /// What the kubelet says while the fault is live.
    message: Option<&'static str>,
    /// Whether applying the engine's plan (or a proposal) fixes the world.
    fix_works: bool,
    /// The typed changes the world reports for the scenario's inverse.
    inverse_changes: Vec<Change>,
    /// What the world says the fault touched.
    touched: Vec<String>,
    /// Whether provisioning fails.
    provision_fails: bool,
    log: Vec<String>,
}

struct FakeBackend(Arc<Mutex<Script>>);
struct FakeWorld {
    script: Arc<Mutex<Script>>,
    fault: Mutation,
    broken: bool,
}

impl Backend for FakeBackend {
    type World = FakeWorld;
    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }
    async fn provision(&self, e: &Entry) -> Result<FakeWorld, BackendError> {
        let mut s = self.0.lock().unwrap();
        s.log.push("provision".into());
        if s.provision_fails {
            return Err(BackendError::new("no capacity"));
        }
        Ok(FakeWorld { script: self.0.clone(), fault: e.scenario.fault.mutation(), broken: false })
    }
}

impl World for FakeWorld {
    async fn sync(&mut self) -> Result<Health, BackendError> {
        let s = self.script.lock().unwrap();
        Ok(match (self.broken, s.message) {
            (true, Some(text)) => Health::Failing { reason: "ErrImagePull".into(), message: text.into() },
            _ => Health::Running,
        })
    }
    async fn apply(&mut self, m: &Mutation) -> Result<(), BackendError> {
        self.script.lock().unwrap().log.push(format!("apply {}", m.describe()));
        // The fault breaks the world; its inverse (or anything else) does not.
        self.broken = *m == self.fault;
        Ok(())
    }
    async fn engine_input(&mut self) -> Result<EngineInput, BackendError> {
        Ok(EngineInput {
            dir: None,
            run_as: None,
            kubeconfig: None,
            dump_dir: PathBuf::new(),
            inventory: PathBuf::new(),
            namespace: "shop".into(),
            pod: None,
            arm_endpoint: None,
            ca_file: None,
            arm_token: None,
            graph_endpoint: None,
            graph_token: None,
            registry_addresses: Default::default(),
            azure_login: None,
        })
    }
    async fn remediate(&mut self, _: &pulldoctor::Plan) -> Result<Vec<String>, BackendError> {
        let mut s = self.script.lock().unwrap();
        s.log.push("remediate".into());
        if s.fix_works {
            self.broken = false;
        }
        Ok(vec!["fixed".into()])
    }
    async fn apply_proposal(&mut self, a: &pulldoctor::Action) -> Result<String, BackendError> {
        let mut s = self.script.lock().unwrap();
        s.log.push(format!("propose {}", a.describe()));
        if s.fix_works {
            self.broken = false;
        }
        Ok(a.describe())
    }
    fn touched(&self, _: &pullproof::scenario::Fault) -> Vec<String> {
        self.script.lock().unwrap().touched.clone()
    }
    fn changes_of(&self, m: &Mutation) -> Vec<Change> {
        if *m == self.fault { vec![] } else { self.script.lock().unwrap().inverse_changes.clone() }
    }
    async fn artifacts(&mut self, _: &Path) {}
    async fn teardown(self) -> Result<(), BackendError> {
        self.script.lock().unwrap().log.push("teardown".into());
        Ok(())
    }
}

/// An engine that reports fixed codes, each with a one-action plan (by default an automatic
/// `reconcileCluster`).
struct Says(Vec<FindingCode>, serde_json::Value);

fn reconcile() -> serde_json::Value {
    serde_json::json!({ "action": "reconcileCluster", "clusterId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c" })
}

impl Engine for Says {
    fn name(&self) -> String {
        "says".into()
    }
    async fn diagnose(&self, _: &EngineInput) -> Result<Report, String> {
        let findings: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|c| {
                serde_json::json!({
                    "code": c, "severity": "error", "confidence": "high", "summary": "s", "blamed": [{ "kind": "Route", "id": ROUTE }], "evidence": [], "pods": [],
                    "plan": { "actions": if self.1.is_null() { vec![] } else { vec![self.1.clone()] } }
                })
            })
            .collect();
        let doc = serde_json::json!({
            "schemaVersion": "1", "engine": { "name": "says", "version": "0" },
            "status": if findings.is_empty() { "healthy" } else { "findings" }, "failing": [], "findings": findings
        });
        serde_json::from_value(doc).map_err(|e| e.to_string())
    }
}

fn entry(name: &str) -> Entry {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Catalog::load(&Layout::under(root)).entries.into_iter().find(|e| e.scenario.name == name).unwrap()
}

async fn run(name: &str, script: Script, says: Vec<FindingCode>) -> (pullproof::run::ScenarioRecord, Vec<String>) {
    run_with(name, script, Says(says, reconcile())).await
}

async fn run_with(name: &str, script: Script, engine: Says) -> (pullproof::run::ScenarioRecord, Vec<String>) {
    let script = Arc::new(Mutex::new(script));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script.clone()),
        &engine,
        &entry(name),
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    let log = script.lock().unwrap().log.clone();
    (rec, log)
}

#[tokio::test]
async fn passes_when_detected_and_fixed() {
    let script = Script { message: Some(UNAUTHORIZED), fix_works: true, ..Default::default() };
    let (rec, log) = run("kubelet-identity-removed", script, vec![FindingCode::KubeletIdentityNotOnVmss]).await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    let seen = rec.observed.as_ref().expect("what the node showed is recorded");
    assert_eq!(
        (seen.label.as_deref(), seen.message.as_str(), seen.matched),
        (Some("unauthorized"), UNAUTHORIZED, true)
    );
    assert_eq!(rec.remediation, Some(RemediationVerdict::Verified));
    assert_eq!(log.first().map(String::as_str), Some("provision"));
    assert!(log.contains(&"remediate".to_string()));
    assert_eq!(log.last().map(String::as_str), Some("teardown"));
}

#[tokio::test]
async fn wrong_code_is_a_detection_failure_naming_the_confusion() {
    let script = Script { message: Some(UNAUTHORIZED), ..Default::default() };
    let (rec, log) = run("kubelet-identity-removed", script, vec![FindingCode::AcrPullRoleMissing]).await;
    assert_eq!(rec.status, Status::FailedDetection);
    assert!(rec.reason.contains("missed KUBELET_IDENTITY_NOT_ON_VMSS"), "{}", rec.reason);
    let grade = rec.grade.unwrap();
    assert_eq!(grade.confused_with, [FindingCode::AcrPullRoleMissing]);
    // The fault is reverted and the world torn down anyway.
    assert!(log.iter().any(|l| l.starts_with("apply attach the kubelet identity")), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("teardown"));
}

#[tokio::test]
async fn a_fix_that_does_not_heal_is_a_remediation_failure() {
    let script = Script { message: Some(UNAUTHORIZED), fix_works: false, ..Default::default() };
    let mut e = entry("kubelet-identity-removed");
    e.scenario.budgets.recover = pullproof::scenario::Budget(std::time::Duration::from_millis(400));
    let script = Arc::new(Mutex::new(script));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script.clone()),
        &Says(vec![FindingCode::KubeletIdentityNotOnVmss], reconcile()),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::FailedRemediation, "{rec:#?}");
    assert_eq!(script.lock().unwrap().log.last().map(String::as_str), Some("teardown"));
}

#[tokio::test]
async fn a_fault_without_its_message_is_an_inject_error_that_shows_what_was_seen() {
    let mut e = entry("private-dns-missing");
    e.scenario.budgets.inject = pullproof::scenario::Budget(std::time::Duration::from_millis(300));
    let script = Arc::new(Mutex::new(Script { message: Some(TIMEOUT), ..Default::default() }));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script.clone()),
        &Says(vec![], reconcile()),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::ErrorInject);
    assert!(rec.reason.contains("403 Forbidden/"), "the expectation is named: {}", rec.reason);
    assert!(rec.reason.contains("dial tcp 10.2.0.5:443: i/o timeout"), "the text seen is shown: {}", rec.reason);
    let seen = rec.observed.expect("a mismatch is recorded too");
    assert!(!seen.matched);
    assert_eq!(seen.message, TIMEOUT);
}

#[tokio::test]
async fn the_symptom_is_judged_by_the_scenarios_text_not_by_its_class() {
    // A 401 from the token endpoint is `unauthorized` to any parser; kubelet-identity-removed
    // expects the anonymous-only attempt (the node had no credential to offer), so a pull that
    // offered a credential and was refused does not count.
    let offered = "Failed to pull image \"r.azurecr.io/app:v1\": failed to pull and unpack image \"r.azurecr.io/app:v1\": failed to resolve image: failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://r.azurecr.io/oauth2/token?scope=x: 401 Unauthorized";
    let mut e = entry("kubelet-identity-removed");
    e.scenario.budgets.inject = pullproof::scenario::Budget(std::time::Duration::from_millis(300));
    let script = Arc::new(Mutex::new(Script { message: Some(offered), ..Default::default() }));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script),
        &Says(vec![FindingCode::KubeletIdentityNotOnVmss], reconcile()),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::ErrorInject, "{rec:#?}");
}

#[tokio::test]
async fn healthy_baseline_with_a_false_positive_fails() {
    let (rec, _) = run("healthy-baseline", Script::default(), vec![FindingCode::ImageNotFound]).await;
    assert_eq!(rec.status, Status::FailedDetection);
    let (rec, log) = run("healthy-baseline", Script::default(), vec![]).await;
    assert_eq!(rec.status, Status::Passed);
    assert!(!log.iter().any(|l| l.starts_with("apply")));
}

#[tokio::test]
async fn provisioning_failure_is_a_baseline_error() {
    let (rec, _) = run("acrpull-role-missing", Script { provision_fails: true, ..Default::default() }, vec![]).await;
    assert_eq!(rec.status, Status::ErrorBaseline);
    assert!(rec.reason.contains("no capacity"));
}

fn set_image(tag: &str) -> serde_json::Value {
    serde_json::json!({ "action": "setImage", "workload": { "kind": "Deployment", "namespace": "shop", "name": "web" }, "container": "web", "image": format!("r.azurecr.io/app:{tag}") })
}

fn manual(change: Option<Change>) -> serde_json::Value {
    let mut m = serde_json::json!({ "action": "manual", "description": "look into it", "commands": [] });
    if let Some(c) = change {
        m["change"] = serde_json::to_value(c).unwrap();
    }
    m
}

const ROUTE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/aks-nodes-routes/routes/endpoints-blackhole";

#[tokio::test]
async fn a_machine_applicable_proposal_is_applied_by_the_harness_and_verified_by_recovery() {
    let script = Script { message: Some(NOT_FOUND), fix_works: true, ..Default::default() };
    let (rec, log) =
        run_with("image-tag-not-found", script, Says(vec![FindingCode::ImageNotFound], set_image("v1"))).await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    assert_eq!(rec.remediation, Some(RemediationVerdict::Verified));
    assert!(log.iter().any(|l| l.starts_with("propose set image")), "{log:?}");
    assert!(!log.contains(&"remediate".to_string()), "a proposal is not the engine's plan applied: {log:?}");
}

#[tokio::test]
async fn a_proposal_that_does_not_heal_is_wrong() {
    let mut e = entry("image-tag-not-found");
    e.scenario.budgets.recover = pullproof::scenario::Budget(std::time::Duration::from_millis(400));
    let script = Arc::new(Mutex::new(Script { message: Some(NOT_FOUND), fix_works: false, ..Default::default() }));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script.clone()),
        &Says(vec![FindingCode::ImageNotFound], set_image("v3")),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::FailedRemediation, "{rec:#?}");
    assert_eq!(rec.remediation, Some(RemediationVerdict::Wrong));
    assert!(rec.reason.contains("did not recover"), "{}", rec.reason);
    let log = script.lock().unwrap().log.clone();
    assert!(log.iter().any(|l| l.starts_with("apply restore the workload")), "still reverted: {log:?}");
}

#[tokio::test]
async fn a_message_only_guess_with_prose_is_not_a_remediation() {
    // The loophole: a 15-line engine proposing `manual: "look into it"` used to pass.
    for (name, message) in [("image-tag-not-found", NOT_FOUND), ("route-table-blackhole", TIMEOUT)] {
        let code = if name == "image-tag-not-found" { FindingCode::ImageNotFound } else { FindingCode::RouteBlackhole };
        let script = Script { message: Some(message), ..Default::default() };
        let (rec, log) = run_with(name, script, Says(vec![code], manual(None))).await;
        assert_eq!(rec.status, Status::FailedRemediation, "{name}: {rec:#?}");
        assert_eq!(rec.remediation, Some(RemediationVerdict::Wrong), "{name}");
        assert!(rec.reason.contains("say no typed change"), "{}", rec.reason);
        assert_eq!(log.last().map(String::as_str), Some("teardown"));
    }
}

#[tokio::test]
async fn a_typed_manual_step_counts_only_when_it_is_the_scenarios_inverse() {
    let right = Script { message: Some(TIMEOUT), inverse_changes: vec![Change::delete(ROUTE)], ..Default::default() };
    let (rec, log) = run_with(
        "route-table-blackhole",
        right,
        Says(vec![FindingCode::RouteBlackhole], manual(Some(Change::delete(ROUTE.to_uppercase())))),
    )
    .await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    assert_eq!(rec.remediation, Some(RemediationVerdict::MatchesInverse));
    assert!(log.iter().any(|l| l.starts_with("apply delete route")), "the harness reverts: {log:?}");

    let wrong = Script { message: Some(TIMEOUT), inverse_changes: vec![Change::delete(ROUTE)], ..Default::default() };
    let other = ROUTE.replace("endpoints-blackhole", "default-route");
    let (rec, _) = run_with(
        "route-table-blackhole",
        wrong,
        Says(vec![FindingCode::RouteBlackhole], manual(Some(Change::delete(other)))),
    )
    .await;
    assert_eq!(rec.status, Status::FailedRemediation);
    assert_eq!(rec.remediation, Some(RemediationVerdict::Wrong));
    assert!(rec.reason.contains("is not the fix"), "{}", rec.reason);
}

#[tokio::test]
async fn no_proposal_is_none() {
    let script = Script { message: Some(NOT_FOUND), ..Default::default() };
    let engine = Says(vec![FindingCode::ImageNotFound], serde_json::Value::Null);
    let (rec, _) = run_with("image-tag-not-found", script, engine).await;
    assert_eq!(rec.status, Status::FailedRemediation, "{rec:#?}");
    assert_eq!(rec.remediation, Some(RemediationVerdict::None));
}

#[tokio::test]
async fn unsupported_backend_is_skipped() {
    let e = entry("platform-mismatch");
    struct KindBackend;
    impl Backend for KindBackend {
        type World = FakeWorld;
        fn kind(&self) -> BackendKind {
            BackendKind::Kind
        }
        async fn provision(&self, _: &Entry) -> Result<FakeWorld, BackendError> {
            unreachable!()
        }
    }
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &KindBackend,
        &Says(vec![], reconcile()),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::Skipped);
}

#[tokio::test]
async fn an_interrupted_run_says_so_and_counts_nothing_as_passed() {
    let script = Arc::new(Mutex::new(Script { message: Some(UNAUTHORIZED), ..Default::default() }));
    let (tx, cancel) = tokio::sync::watch::channel(false);
    tx.send(true).unwrap();
    let record = pullproof::run::run_many(
        Arc::new(FakeBackend(script.clone())),
        Arc::new(Says(vec![], reconcile())),
        vec![entry("acrpull-role-missing"), entry("private-dns-missing")],
        pullproof::run::ManyOptions::parallel(2),
        cancel,
        |_| {},
    )
    .await;
    assert!(record.cancelled);
    assert!(record.scenarios.iter().all(|s| s.status == Status::Skipped), "{record:#?}");
    assert!(script.lock().unwrap().log.is_empty(), "nothing may start after the interrupt");
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["cancelled"], true);
}

#[tokio::test]
async fn the_right_code_blaming_the_wrong_resource_is_not_detected() {
    let elsewhere = ROUTE.replace("endpoints-blackhole", "default-route");
    let script = Script { message: Some(TIMEOUT), touched: vec![elsewhere.clone()], ..Default::default() };
    let (rec, _) =
        run_with("route-table-blackhole", script, Says(vec![FindingCode::RouteBlackhole], manual(None))).await;
    assert_eq!(rec.status, Status::FailedDetection, "{rec:#?}");
    assert!(rec.reason.contains("right code, wrong resource") && rec.reason.contains(&elsewhere), "{}", rec.reason);
    let grade = rec.grade.clone().unwrap();
    assert_eq!(grade.wrong_resource, [FindingCode::RouteBlackhole]);
    let run = pullproof::run::RunRecord {
        schema_version: "1".into(),
        pullproof: "0".into(),
        engine: "says".into(),
        started: String::new(),
        millis: 0,
        parallel: 1,
        scenarios: vec![rec],
        cancelled: false,
        kubernetes: None,
    };
    let c = pullproof::run::Conformance::of(&run);
    assert_eq!(c.rows[0].detection, pullproof::run::conformance::Detection::DetectedWrongResource);

    // Blaming it (ids compare case-insensitively) is right.
    let script = Script {
        message: Some(TIMEOUT),
        touched: vec![ROUTE.to_lowercase()],
        inverse_changes: vec![Change::delete(ROUTE)],
        ..Default::default()
    };
    let (rec, _) = run_with(
        "route-table-blackhole",
        script,
        Says(vec![FindingCode::RouteBlackhole], manual(Some(Change::delete(ROUTE)))),
    )
    .await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    assert_eq!(rec.grade.unwrap().confidence.get("ROUTE_BLACKHOLE").map(String::as_str), Some("high"));
}
