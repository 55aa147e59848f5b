//! Grading engines through the contract: pulldoctor run as an external program gets the same
//! verdicts as linked in, and a naive engine gets an honest conformance report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pullproof::backend::host::{HostBackend, HostOptions, preflight};
use pullproof::catalog::{Catalog, Layout};
use pullproof::run::conformance::Detection;
use pullproof::run::{Conformance, External, Status, run_many};

mod leftovers;
use leftovers::Leftovers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

const FAST: &[&str] = &[
    "healthy-baseline",
    "acrpull-role-missing",
    "kubelet-identity-removed",
    "private-dns-missing",
    "image-tag-not-found",
];

fn grade(command: String) -> Option<pullproof::run::RunRecord> {
    let options = HostOptions::default();
    if let Err(e) = preflight(&options) {
        assert!(
            std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() == Ok("1"),
            "the host backend cannot run here: {e} (or set PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly)"
        );
        eprintln!("SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1): {e}");
        return None;
    }
    let catalog = Catalog::load(&Layout::under(&root()));
    let entries: Vec<_> = catalog.entries.into_iter().filter(|e| FAST.contains(&e.scenario.name.as_str())).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let engine = External { command, timeout: std::time::Duration::from_secs(60) };
    let before = Leftovers::now();
    let run = rt.block_on(run_many(
        Arc::new(HostBackend::new(options)),
        Arc::new(engine),
        entries,
        pullproof::run::ManyOptions::parallel(3),
        cancel,
        |_| {},
    ));
    let left = Leftovers::now().new_since(&before);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
    Some(run)
}

#[test]
fn host_pulldoctor_through_the_contract_passes() {
    let pulldoctor = target_bin("pulldoctor");
    let cmd = format!(
        r#"{} diagnose --dump "$PULLPROOF_DUMP_DIR" --azure "$PULLPROOF_AZURE_INVENTORY" --output json"#,
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
    assert_eq!(row("healthy-baseline").detection, Detection::Detected);
    assert_eq!(row("acrpull-role-missing").detection, Detection::Detected);
    // A 401 alone does not say whose identity is broken: the naive guess is the wrong code.
    assert_eq!(row("kubelet-identity-removed").detection, Detection::WrongCode);
    // 403 without Azure evidence: firewall guessed, DNS was the cause.
    assert_eq!(row("private-dns-missing").detection, Detection::WrongCode);
    assert_eq!(row("image-tag-not-found").detection, Detection::Detected);
    // Right code, but no plan: remediation fails where it must be automatic.
    assert_eq!(row("acrpull-role-missing").remediated, Some(false));
    let (precision, recall) = (c.precision.unwrap(), c.recall.unwrap());
    assert!(precision < 1.0 && recall < 1.0, "{c:?}");
    assert!((recall - 2.0 / 4.0).abs() < 1e-9, "{c:?}");
}

#[test]
fn host_an_engine_reads_the_kubelets_events_live_through_its_kubeconfig() {
    let script = root().join("examples/engines/events.py");
    let Some(run) = grade(format!("python3 {}", script.display())) else { return };
    let c = Conformance::of(&run);
    let row = |name: &str| c.rows.iter().find(|r| r.scenario == name).unwrap();
    // The kubelet's own Failed events, read with the engine's read-only kubeconfig.
    assert_eq!(row("acrpull-role-missing").detection, Detection::Detected, "{c:?}");
    assert_eq!(row("image-tag-not-found").detection, Detection::Detected, "{c:?}");
    assert_eq!(row("healthy-baseline").detection, Detection::Detected, "{c:?}");
}
