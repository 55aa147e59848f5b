//! The whole catalog on the host backend: real Kubernetes (control plane, a kubelet per
//! scenario), containerd, registry, namespaces and emulator. Every scenario must pass, with real
//! kubelet and containerd errors, and nothing may be left behind.
//!
//! Needs root and the packages `.ci/run` installs; without them the test fails, unless
//! `PULLPROOF_SKIP_HOST_TESTS=1` skips it (loudly).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pullproof::backend::host::{HostBackend, HostOptions, preflight};
use pullproof::catalog::{Catalog, Layout};
use pullproof::run::{Pulldoctor, Status, run_many, summary_table};

mod leftovers;
use leftovers::Leftovers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
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
    let before = Leftovers::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let record = rt.block_on(run_many(
        Arc::new(HostBackend::new(options)),
        Arc::new(Pulldoctor),
        catalog.entries.clone(),
        pullproof::run::ManyOptions::parallel(4),
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
    // Versions as the cluster reported them, not our constants.
    let pins = pullproof_host_runtime::components::Pins::pinned();
    let k = record.kubernetes.as_ref().expect("the run record names the cluster's versions");
    assert_eq!(k.server_version, pins.kubernetes);
    assert_eq!(k.kubelet_version.as_deref(), Some(pins.kubernetes.as_str()));
    assert_eq!(k.container_runtime_version, Some(format!("containerd://{}", pins.containerd.trim_start_matches('v'))));
    let left = Leftovers::now().new_since(&before);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
}
