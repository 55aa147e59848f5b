//! Running scenarios: the lifecycle of one ([`lifecycle`]), many in parallel ([`run_many`]),
//! and what is recorded ([`record`], [`junit`]).

pub mod backend;
pub mod conformance;
pub mod engine;
pub mod junit;
pub mod lifecycle;
pub mod record;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, watch};

pub use backend::{Backend, BackendError, EngineInput, Health, World};
pub use conformance::Conformance;
pub use engine::{Compare, Engine, External, Pulldoctor};
pub use lifecycle::{RunOptions, run_scenario};
pub use record::{
    Grade, KubernetesVersions, Observation, PhaseRecord, RemediationVerdict, RunRecord, ScenarioRecord, Status,
};

use crate::catalog::Entry;
use crate::plan::Phase;

/// Progress events, for a live display.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A scenario started.
    Started {
        /// Its name.
        scenario: String,
    },
    /// A scenario finished.
    Finished(Box<ScenarioRecord>),
}

/// How [`run_many`] runs: how many scenarios at once, where failure artifacts go, and whether
/// worlds are kept up for a person.
#[derive(Debug, Clone, Copy)]
pub struct ManyOptions<'a> {
    /// At most this many scenarios at once.
    pub parallel: usize,
    /// Failure artifacts go to `DIR/<scenario>/`.
    pub artifacts_dir: Option<&'a Path>,
    /// Keep each world up after its scenario until the run is cancelled.
    pub keep: bool,
}

impl ManyOptions<'_> {
    /// `parallel` at once, no artifacts, nothing kept.
    pub fn parallel(parallel: usize) -> Self {
        Self { parallel, artifacts_dir: None, keep: false }
    }
}

/// Runs `entries` on `backend` with at most `parallel` at once. Each scenario gets its own
/// world, so they cannot see each other. `progress` hears about every start and finish. With
/// `keep`, each world stays up after its scenario until the run is cancelled.
pub async fn run_many<B, E>(
    backend: Arc<B>,
    engine: Arc<E>,
    entries: Vec<Entry>,
    how: ManyOptions<'_>,
    cancel: watch::Receiver<bool>,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> RunRecord
where
    B: Backend + 'static,
    E: Engine + 'static,
{
    let started_at = now_rfc3339();
    let started = Instant::now();
    let ManyOptions { parallel, artifacts_dir, keep } = how;
    let parallel = parallel.max(1);
    let gate = Arc::new(Semaphore::new(parallel));
    let progress = Arc::new(progress);
    // Longest first (by inject budget: the dropped-packet scenarios wait out containerd's dial
    // timeout), so the slow ones overlap instead of trailing; records keep catalog order.
    let order: Vec<String> = entries.iter().map(|e| e.scenario.name.clone()).collect();
    let mut entries = entries;
    entries.sort_by_key(|e| std::cmp::Reverse(e.scenario.budgets.inject));
    let mut tasks = Vec::new();
    for entry in entries {
        // The permit is taken here, in order, not inside the task: tasks on a multi-threaded
        // runtime reach the semaphore in no particular order, which let a slow scenario start last.
        let permit = gate.clone().acquire_owned().await;
        let (backend, engine, progress, cancel) = (backend.clone(), engine.clone(), progress.clone(), cancel.clone());
        let artifacts_dir = artifacts_dir.map(Path::to_path_buf);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            progress(Progress::Started { scenario: entry.scenario.name.clone() });
            let rec = if *cancel.borrow() {
                skipped(&entry, backend.kind(), "cancelled before it started")
            } else {
                run_scenario(backend.as_ref(), engine.as_ref(), &entry, RunOptions { artifacts_dir, keep, cancel })
                    .await
            };
            progress(Progress::Finished(Box::new(rec.clone())));
            rec
        }));
    }
    let mut scenarios = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => scenarios.push(r),
            Err(e) => tracing::error!("a scenario task panicked: {e}"),
        }
    }
    scenarios.sort_by_key(|r| order.iter().position(|n| n == &r.scenario));
    let kubernetes = backend.versions().await;
    backend.finish().await;
    RunRecord {
        schema_version: "1".into(),
        pullproof: env!("CARGO_PKG_VERSION").into(),
        engine: engine.name(),
        started: started_at,
        millis: record::millis(started.elapsed()),
        parallel,
        scenarios,
        cancelled: *cancel.borrow(),
        kubernetes,
    }
}

/// The record of a run aborted at once (a second interrupt): the scenarios that finished keep
/// their records, every other one is `skipped`, and the run is `cancelled`.
pub fn aborted(
    engine: String,
    started: &str,
    millis: u64,
    parallel: usize,
    entries: &[Entry],
    backend: crate::scenario::BackendKind,
    finished: Vec<ScenarioRecord>,
) -> RunRecord {
    let scenarios = entries
        .iter()
        .map(|e| {
            finished.iter().find(|r| r.scenario == e.scenario.name).cloned().unwrap_or_else(|| {
                skipped(e, backend, "aborted by a second interrupt before it finished (its world was reclaimed)")
            })
        })
        .collect();
    RunRecord {
        schema_version: "1".into(),
        pullproof: env!("CARGO_PKG_VERSION").into(),
        engine,
        started: started.into(),
        millis,
        parallel: parallel.max(1),
        scenarios,
        cancelled: true,
        kubernetes: None,
    }
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn skipped(entry: &Entry, backend: crate::scenario::BackendKind, why: &str) -> ScenarioRecord {
    ScenarioRecord {
        scenario: entry.scenario.name.clone(),
        backend,
        status: Status::Skipped,
        reason: why.into(),
        phases: vec![],
        grade: None,
        observed: None,
        remediation: None,
        refused: vec![],
        artifacts: None,
        millis: 0,
    }
}

/// The summary table: one row per scenario with its status and each main phase's time.
pub fn summary_table(run: &RunRecord) -> String {
    use std::fmt::Write;
    let cols = [
        Phase::Baseline,
        Phase::Inject,
        Phase::VerifyInjected,
        Phase::Diagnose,
        Phase::Remediate,
        Phase::Recover,
        Phase::Cleanup,
    ];
    let width = run.scenarios.iter().map(|s| s.scenario.len()).max().unwrap_or(8).max(8);
    let mut out = String::new();
    let _ = write!(out, "{:<width$}  {:<18}", "SCENARIO", "STATUS");
    for h in ["BASELINE", "INJECT", "VERIFY", "DIAGNOSE", "REMEDIATE", "RECOVER", "CLEANUP", "TOTAL"] {
        let _ = write!(out, " {h:>9}");
    }
    out.push('\n');
    let secs = |ms: Option<u64>| ms.map(|m| format!("{:.2}s", m as f64 / 1000.0)).unwrap_or_else(|| "-".into());
    for s in &run.scenarios {
        let _ = write!(out, "{:<width$}  {:<18}", s.scenario, s.status.as_str());
        for c in cols {
            let _ = write!(out, " {:>9}", secs(s.phase_millis(c)));
        }
        let _ = writeln!(out, " {:>9}", secs(Some(s.millis)));
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} errors, {} skipped in {:.1}s (parallel {})",
        run.count(Status::Passed),
        run.count(Status::FailedDetection) + run.count(Status::FailedRemediation),
        run.scenarios.iter().filter(|s| s.status.as_str().starts_with("error:")).count(),
        run.count(Status::Skipped),
        run.millis as f64 / 1000.0,
        run.parallel
    );
    for s in run.scenarios.iter().filter(|s| s.status.is_failure()) {
        let _ = writeln!(out, "  {} {}: {}", s.status, s.scenario, s.reason);
        if let Some(a) = &s.artifacts {
            let _ = writeln!(out, "    artifacts: {a}");
        }
    }
    out
}

/// Writes `run.json`, `junit.xml` and `conformance.json` into `dir`.
pub fn write_reports(run: &RunRecord, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(run).unwrap_or_default())?;
    std::fs::write(
        dir.join("conformance.json"),
        serde_json::to_string_pretty(&Conformance::of(run)).unwrap_or_default(),
    )?;
    std::fs::write(dir.join("junit.xml"), junit::render(run))
}
