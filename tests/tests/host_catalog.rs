//! The whole catalog on the host backend: real containerd, registry, namespaces and emulator.
//! Every scenario must pass, with real containerd errors, and nothing may be left behind.
//!
//! Needs root and the packages `.ci/run` installs; without them the test fails, unless
//! `PULLPROOF_SKIP_HOST_TESTS=1` skips it (loudly).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pullproof::backend::host::{HostBackend, HostOptions, preflight};
use pullproof::catalog::{Catalog, Layout};
use pullproof::run::{Pulldoctor, Status, run_many, summary_table};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn leftovers() -> (Vec<String>, bool) {
    let ns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let ours: Vec<String> = ns.lines().filter(|l| l.starts_with("pp-")).map(str::to_string).collect();
    let containerd = std::process::Command::new("pgrep")
        .args(["-f", "pullproof-.*/config.toml"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (ours, containerd)
}

#[test]
fn host_catalog_passes_on_the_host_backend() {
    let options = HostOptions::default();
    if let Err(e) = preflight(&options) {
        if std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() != Ok("1") {
            panic!("the host backend cannot run here: {e} (or set PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly)");
        }
        eprintln!("SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1) host_catalog_passes_on_the_host_backend: {e}");
        return;
    }
    let catalog = Catalog::load(&Layout::under(&root()));
    assert!(catalog.diagnostics.is_empty(), "{:?}", catalog.diagnostics);
    let (before_ns, _) = leftovers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let record = rt.block_on(run_many(
        Arc::new(HostBackend::new(options)),
        Arc::new(Pulldoctor),
        catalog.entries.clone(),
        4,
        None,
        false,
        cancel,
        |_| {},
    ));
    let table = summary_table(&record);
    eprintln!("{table}");
    assert_eq!(record.scenarios.len(), 17);
    for s in &record.scenarios {
        assert_eq!(s.status, Status::Passed, "{}: {}\n{table}", s.scenario, s.reason);
    }
    // The symptom came from real containerd: each fault's expected class was observed.
    for (s, e) in record.scenarios.iter().zip(&catalog.entries) {
        assert_eq!(s.observed_symptom.as_deref(), e.scenario.expect.symptom.map(|c| c.as_str()), "{}", s.scenario);
    }
    let (after_ns, containerd) = leftovers();
    assert_eq!(after_ns, before_ns, "network namespaces left behind");
    assert!(!containerd, "a containerd of ours is still running");
}
