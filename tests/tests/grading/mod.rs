//! Grading an external engine on a few scenarios of the host backend, with nothing left behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pullproof::backend::host::{HostBackend, HostOptions, preflight};
use pullproof::catalog::{Catalog, Layout};
use pullproof::run::{External, RunRecord, run_many};

use crate::leftovers::Leftovers;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

/// Runs `command` through the engine contract on the scenarios `names`; `None` when the host
/// backend cannot run here and `PULLPROOF_SKIP_HOST_TESTS=1` says to skip.
pub fn grade(command: String, names: &[&str], timeout: std::time::Duration) -> Option<RunRecord> {
    grade_as(command, names, timeout).map(|(run, _)| run)
}

/// Whether engines run as an unprivileged user here: `nobody` exists and can reach the
/// checkout (a checkout under a private home cannot be; engines then run as root, said loudly).
pub fn options() -> (HostOptions, bool) {
    let mut options = HostOptions::default();
    let isolated = options.engine_user.is_some_and(|u| u.can_reach(&root().join("examples")));
    if !isolated {
        eprintln!("NOTE: engines run as root here: `nobody` cannot reach {}", root().display());
        options.engine_user = None;
    }
    (options, isolated)
}

/// Each scenario's status, reason and phases: what a failed assertion on a run should print,
/// so a failure in CI says why without the artifacts of a machine that is gone.
pub fn why(run: &RunRecord) -> String {
    run.scenarios
        .iter()
        .map(|s| {
            let phases: Vec<String> =
                s.phases.iter().map(|p| format!("{:?} {:?} {}ms {}", p.phase, p.outcome, p.millis, p.detail)).collect();
            format!("{} {:?}: {}\n  {}", s.scenario, s.status, s.reason, phases.join("\n  "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`grade`], and whether the engine ran as an unprivileged user.
pub fn grade_as(command: String, names: &[&str], timeout: std::time::Duration) -> Option<(RunRecord, bool)> {
    let (options, isolated) = options();
    if let Err(e) = preflight(&options) {
        assert!(
            std::env::var("PULLPROOF_SKIP_HOST_TESTS").as_deref() == Ok("1"),
            "the host backend cannot run here: {e} (or set PULLPROOF_SKIP_HOST_TESTS=1 to skip knowingly)"
        );
        eprintln!("SKIPPED (PULLPROOF_SKIP_HOST_TESTS=1): {e}");
        return None;
    }
    let catalog = Catalog::load(&Layout::under(&root()));
    let entries: Vec<_> = catalog.entries.into_iter().filter(|e| names.contains(&e.scenario.name.as_str())).collect();
    assert_eq!(entries.len(), names.len(), "unknown scenario among {names:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let engine = External { command, timeout };
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
    Some((run, isolated))
}
