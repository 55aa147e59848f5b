//! The runner's state machine, driven by a scripted world: statuses, revert, and cleanup on
//! every path. (Real worlds are exercised by the host backend's end-to-end tests.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pulldoctor::symptom::SymptomClass;
use pulldoctor::{FindingCode, Report};
use pullproof::catalog::{Catalog, Entry, Layout};
use pullproof::run::{Backend, BackendError, Engine, EngineInput, Health, RunOptions, Status, World, run_scenario};
use pullproof::scenario::{BackendKind, Mutation};

#[derive(Default)]
struct Script {
    /// The symptom the world shows while the fault is live.
    symptom: Option<SymptomClass>,
    /// Whether applying the engine's plan fixes the world.
    fix_works: bool,
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
        Ok(match (self.broken, s.symptom) {
            (true, Some(class)) => Health::Failing { message: "x".into(), class },
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
                    "code": c, "severity": "error", "confidence": "high", "summary": "s", "blamed": [], "evidence": [], "pods": [],
                    "plan": { "actions": [self.1.clone()] }
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
    let script = Script { symptom: Some(SymptomClass::Unauthorized), fix_works: true, ..Default::default() };
    let (rec, log) = run("kubelet-identity-removed", script, vec![FindingCode::KubeletIdentityNotOnVmss]).await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    assert_eq!(rec.observed_symptom.as_deref(), Some("unauthorized"));
    assert_eq!(log.first().map(String::as_str), Some("provision"));
    assert!(log.contains(&"remediate".to_string()));
    assert_eq!(log.last().map(String::as_str), Some("teardown"));
}

#[tokio::test]
async fn wrong_code_is_a_detection_failure_naming_the_confusion() {
    let script = Script { symptom: Some(SymptomClass::Unauthorized), ..Default::default() };
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
    let script = Script { symptom: Some(SymptomClass::Unauthorized), fix_works: false, ..Default::default() };
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
async fn a_fault_without_its_symptom_is_an_inject_error() {
    let mut e = entry("private-dns-missing");
    e.scenario.budgets.inject = pullproof::scenario::Budget(std::time::Duration::from_millis(300));
    let script = Arc::new(Mutex::new(Script { symptom: Some(SymptomClass::Timeout), ..Default::default() }));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let rec = run_scenario(
        &FakeBackend(script.clone()),
        &Says(vec![], reconcile()),
        &e,
        RunOptions { artifacts_dir: None, keep: false, cancel },
    )
    .await;
    assert_eq!(rec.status, Status::ErrorInject);
    assert!(rec.reason.contains("did not show symptom `forbidden`"), "{}", rec.reason);
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

#[tokio::test]
async fn proposed_remediation_applies_the_scenarios_own_fix() {
    let script = Script { symptom: Some(SymptomClass::NotFound), ..Default::default() };
    let set_image = serde_json::json!({ "action": "setImage", "workload": { "kind": "Deployment", "namespace": "shop", "name": "web" }, "container": "web", "image": "r.azurecr.io/app:v1" });
    let (rec, log) = run_with("image-tag-not-found", script, Says(vec![FindingCode::ImageNotFound], set_image)).await;
    assert_eq!(rec.status, Status::Passed, "{rec:#?}");
    assert!(log.iter().any(|l| l.starts_with("apply restore the workload")), "{log:?}");
    assert!(!log.contains(&"remediate".to_string()));
}

#[tokio::test]
async fn a_proposal_of_the_wrong_kind_fails_remediation() {
    let script = Script { symptom: Some(SymptomClass::NotFound), ..Default::default() };
    let (rec, log) = run("image-tag-not-found", script, vec![FindingCode::ImageNotFound]).await;
    assert_eq!(rec.status, Status::FailedRemediation, "{rec:#?}");
    assert!(
        rec.reason.contains("proposed [reconcileCluster], not the right fix (one of: setImage, manual)"),
        "{}",
        rec.reason
    );
    // The fault is still reverted and the world torn down.
    assert!(log.iter().any(|l| l.starts_with("apply restore the workload")), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("teardown"));
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
    let script = Arc::new(Mutex::new(Script { symptom: Some(SymptomClass::Unauthorized), ..Default::default() }));
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
