//! The whole catalog on the host backend: real Kubernetes (control plane, a kubelet per
//! scenario), containerd, registry, namespaces and emulator. Every scenario must pass, with real
//! kubelet and containerd errors, and nothing may be left behind.
//!
//! Needs root and the packages `.ci/run` installs; without them the test fails, unless
//! `PULLPROOF_SKIP_HOST_TESTS=1` skips it (loudly).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pullproof::backend::host::{HostBackend, HostOptions};
use pullproof::catalog::{Catalog, Layout};
use pullproof::run::{Compare, External, Pulldoctor, Status, run_many, summary_table};

mod host_ready;
mod leftovers;
use host_ready::host_ready;
use leftovers::Leftovers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

#[test]
fn host_catalog_passes_on_the_host_backend() {
    let options = HostOptions::default();
    if !host_ready("host_catalog_passes_on_the_host_backend") {
        return;
    }
    let catalog = Catalog::load(&Layout::under(&root()));
    assert!(catalog.diagnostics.is_empty(), "{:?}", catalog.diagnostics);
    let before = Leftovers::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    // pulldoctor live (kube-rs, ARM, Graph, the registry) is graded, and on every scenario it
    // must name the same causes as pulldoctor offline, run through the engine contract on the
    // dump and the inventory a user would export.
    let offline = External {
        command: format!(
            r#"{} diagnose --dump "$PULLPROOF_DUMP_DIR" --azure "$PULLPROOF_AZURE_INVENTORY" --output json"#,
            target_bin("pulldoctor").display()
        ),
        timeout: std::time::Duration::from_secs(60),
    };
    let record = rt.block_on(run_many(
        Arc::new(HostBackend::new(options)),
        Arc::new(Compare { first: Pulldoctor, second: offline }),
        catalog.entries.clone(),
        pullproof::run::ManyOptions::parallel(4),
        cancel,
        |_| {},
    ));
    let table = summary_table(&record);
    eprintln!("{table}");
    assert_eq!(record.scenarios.len(), 25);
    for s in &record.scenarios {
        assert_eq!(s.status, Status::Passed, "{}: {}\n{table}", s.scenario, s.reason);
    }
    // What the node showed is recorded as seen, and it is the kubelet's own text: judged here
    // again, independently of the run's verdict.
    for (s, e) in record.scenarios.iter().zip(&catalog.entries) {
        let Some(pattern) = &e.scenario.expect.message else {
            assert!(s.observed.is_none(), "{}: nothing to observe without a fault", s.scenario);
            continue;
        };
        let seen = s.observed.as_ref().unwrap_or_else(|| panic!("{}: nothing recorded", s.scenario));
        assert!(["ErrImagePull", "ImagePullBackOff"].contains(&seen.reason.as_str()), "{}: {seen:?}", s.scenario);
        assert!(
            seen.message.starts_with("Failed to pull image \""),
            "{}: not the kubelet's text: {seen:?}",
            s.scenario
        );
        assert!(pattern.is_match(&seen.message) && seen.matched, "{}: {seen:?}", s.scenario);
        assert_eq!(seen.label.as_deref(), e.scenario.expect.symptom.map(|c| c.as_str()), "{}", s.scenario);
    }
    // Every remediation was judged on what happened: applied and recovered, or (for a
    // person's step) the scenario's own fix named exactly.
    for s in &record.scenarios {
        let want = if s.scenario == "healthy-baseline" { None } else { Some("verified or matches-inverse") };
        let got = s.remediation.map(|v| v.as_str());
        match want {
            None => assert_eq!(got, None, "{}", s.scenario),
            Some(_) => assert!(matches!(got, Some("verified" | "matches-inverse")), "{}: {got:?}", s.scenario),
        }
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
