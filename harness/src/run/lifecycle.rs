//! One scenario's lifecycle: baseline, steady state, inject, verify, diagnose, remediate,
//! recover, revert, artifacts, cleanup. Each phase has a budget and a record; a failure or a
//! cancellation at any phase still reverts and cleans up.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::backend::{Backend, Health, World};
use super::engine::Engine;
use super::record::{Grade, PhaseOutcome, PhaseRecord, ScenarioRecord, Status, millis};
use crate::catalog::Entry;
use crate::plan::Phase;
use crate::scenario::{ActionKind, Budget, Fault, Mutation, Remediation};

/// How often the runner lets the node retry a pull while waiting for a state.
const POLL: Duration = Duration::from_millis(150);

/// Options for one scenario run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where failure artifacts go (`DIR/<scenario>/`); none: not kept.
    pub artifacts_dir: Option<PathBuf>,
    /// Leave the world up after the scenario (before the revert) and wait for cancellation,
    /// so a person can look at it.
    pub keep: bool,
    /// Cancellation (Ctrl-C): when it turns true the run jumps to revert and cleanup.
    pub cancel: watch::Receiver<bool>,
}

struct Recorder {
    phases: Vec<PhaseRecord>,
}

impl Recorder {
    fn push(
        &mut self,
        phase: Phase,
        outcome: PhaseOutcome,
        started: Instant,
        budget: Option<Budget>,
        detail: impl Into<String>,
    ) {
        self.phases.push(PhaseRecord {
            phase,
            outcome,
            millis: millis(started.elapsed()),
            budget_millis: budget.map(|b| millis(b.0)),
            detail: detail.into(),
        });
    }
}

enum Wait<T> {
    Done(T),
    TimedOut(String),
    Cancelled,
    Failed(String),
}

/// Polls `world.sync()` until `want` accepts the health, the budget runs out, or the run is
/// cancelled. Returns the last health seen on timeout.
async fn wait_for<W: World>(
    world: &mut W,
    budget: Duration,
    cancel: &mut watch::Receiver<bool>,
    want: impl Fn(&Health) -> bool,
) -> Wait<Health> {
    let deadline = Instant::now() + budget;
    let mut last = String::from("no sync finished");
    loop {
        if *cancel.borrow() {
            return Wait::Cancelled;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Wait::TimedOut(last);
        }
        let sync = tokio::time::timeout(remaining, world.sync());
        let result = tokio::select! {
            r = sync => r,
            _ = cancel.changed() => return Wait::Cancelled,
        };
        match result {
            Err(_) => return Wait::TimedOut(last),
            Ok(Err(e)) => return Wait::Failed(e.to_string()),
            Ok(Ok(h)) => {
                if want(&h) {
                    return Wait::Done(h);
                }
                last = describe(&h);
            }
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

fn describe(h: &Health) -> String {
    match h {
        Health::Running => "Running".into(),
        Health::Failing { message, class } => format!("{class}: {message}"),
        Health::Pending(why) => format!("Pending: {why}"),
    }
}

async fn timed<T, E: std::fmt::Display>(budget: Duration, f: impl Future<Output = Result<T, E>>) -> Result<T, String> {
    match tokio::time::timeout(budget, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("ran out of its {} budget", Budget(budget))),
    }
}

/// Runs one scenario on `backend`, grading `engine`.
pub async fn run_scenario<B: Backend, E: Engine>(
    backend: &B,
    engine: &E,
    entry: &Entry,
    mut opts: RunOptions,
) -> ScenarioRecord {
    let started = Instant::now();
    let s = &entry.scenario;
    let b = &s.budgets;
    let mut rec = Recorder { phases: Vec::new() };
    let record = |status: Status,
                  reason: String,
                  rec: Recorder,
                  grade: Option<Grade>,
                  observed: Option<String>,
                  artifacts: Option<String>| {
        ScenarioRecord {
            scenario: s.name.clone(),
            backend: backend.kind(),
            status,
            reason,
            phases: rec.phases,
            grade,
            observed_symptom: observed,
            artifacts,
            millis: millis(started.elapsed()),
        }
    };
    if !s.backends.contains(&backend.kind()) {
        return record(
            Status::Skipped,
            format!("scenario does not support backend {}", backend.kind()),
            rec,
            None,
            None,
            None,
        );
    }

    // validate: the catalog already checked the files; nothing left to do but record it.
    rec.push(Phase::Validate, PhaseOutcome::Ok, Instant::now(), None, "");

    // baseline
    let t = Instant::now();
    let mut world = match timed(b.baseline.0, backend.provision(entry)).await {
        Ok(w) => {
            rec.push(Phase::Baseline, PhaseOutcome::Ok, t, Some(b.baseline), "");
            w
        }
        Err(e) => {
            rec.push(Phase::Baseline, PhaseOutcome::Failed, t, Some(b.baseline), e.clone());
            return record(Status::ErrorBaseline, format!("baseline: {e}"), rec, None, None, None);
        }
    };

    let mut status = Status::Passed;
    let mut reason = String::new();
    let mut grade = None;
    let mut observed = None;
    // The engine's report, kept for the artifacts of a failed run.
    let mut engine_report: Option<String> = None;
    let mut fault_live = false;
    let inverse = s.fault.inverse(&entry.baseline);

    'phases: {
        // steady state: the baseline's pull must succeed before anything breaks.
        let t = Instant::now();
        match wait_for(&mut world, b.baseline.0, &mut opts.cancel, |h| *h == Health::Running).await {
            Wait::Done(_) => rec.push(Phase::SteadyState, PhaseOutcome::Ok, t, None, ""),
            Wait::Cancelled => {
                (status, reason) = (Status::Skipped, "cancelled".into());
                break 'phases;
            }
            Wait::TimedOut(last) | Wait::Failed(last) => {
                rec.push(Phase::SteadyState, PhaseOutcome::Failed, t, None, last.clone());
                (status, reason) = (Status::ErrorBaseline, format!("the healthy baseline is not Running: {last}"));
                break 'phases;
            }
        }

        if s.fault != Fault::None {
            rec.push(Phase::RegisterInverse, PhaseOutcome::Ok, Instant::now(), None, inverse.describe());
            let t = Instant::now();
            let inject_started = t;
            fault_live = true;
            if let Err(e) = timed(b.inject.0, world.apply(&s.fault.mutation())).await {
                rec.push(Phase::Inject, PhaseOutcome::Failed, t, Some(b.inject), e.clone());
                (status, reason) = (Status::ErrorInject, format!("inject: {e}"));
                break 'phases;
            }
            rec.push(Phase::Inject, PhaseOutcome::Ok, t, Some(b.inject), s.fault.mutation().describe());

            let want = s.expect.symptom;
            let t = Instant::now();
            let left = b.inject.0.saturating_sub(inject_started.elapsed());
            match wait_for(
                &mut world,
                left,
                &mut opts.cancel,
                |h| matches!(h, Health::Failing { class, .. } if Some(*class) == want),
            )
            .await
            {
                Wait::Done(Health::Failing { message, class }) => {
                    observed = Some(class.to_string());
                    rec.push(Phase::VerifyInjected, PhaseOutcome::Ok, t, Some(b.inject), format!("{class}: {message}"));
                }
                Wait::Done(_) => unreachable!("wait_for only returns accepted states"),
                Wait::Cancelled => {
                    (status, reason) = (Status::Skipped, "cancelled".into());
                    break 'phases;
                }
                Wait::TimedOut(last) | Wait::Failed(last) => {
                    rec.push(Phase::VerifyInjected, PhaseOutcome::Failed, t, Some(b.inject), last.clone());
                    let want = want.map(|c| c.as_str()).unwrap_or("?");
                    (status, reason) =
                        (Status::ErrorInject, format!("the fault did not show symptom `{want}`; last: {last}"));
                    break 'phases;
                }
            }
        }

        // diagnose
        let t = Instant::now();
        let report = match timed(b.diagnose.0, async {
            let input = world.engine_input().await.map_err(|e| e.to_string())?;
            engine.diagnose(&input).await
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                rec.push(Phase::Diagnose, PhaseOutcome::Failed, t, Some(b.diagnose), e.clone());
                (status, reason) = (Status::FailedDetection, format!("the engine failed: {e}"));
                grade = Some(Grade::engine_failed(&s.expect.findings, millis(t.elapsed())));
                break 'phases;
            }
        };
        engine_report = serde_json::to_string_pretty(&report).ok();
        let g = Grade::new(&s.expect.findings, &s.expect.forbid, &report.codes(), millis(t.elapsed()));
        let detail = format!("reported [{}]", g.reported.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "));
        if !g.is_exact() {
            rec.push(Phase::Diagnose, PhaseOutcome::Failed, t, Some(b.diagnose), detail);
            let mut why = Vec::new();
            if !g.missed.is_empty() {
                why.push(format!("missed {}", codes(&g.missed)));
            }
            if !g.unexpected.is_empty() {
                why.push(format!("also reported {}", codes(&g.unexpected)));
            }
            (status, reason) = (Status::FailedDetection, why.join("; "));
            grade = Some(g);
            break 'phases;
        }
        rec.push(Phase::Diagnose, PhaseOutcome::Ok, t, Some(b.diagnose), detail);
        grade = Some(g);

        // remediate + recover
        if s.expect.remediation != Remediation::None {
            let t = Instant::now();
            let expected: Vec<_> = report.findings.iter().filter(|f| s.expect.findings.contains(&f.code)).collect();
            let applied = match s.expect.remediation {
                _ if report.already_fixed => "the engine says it applied its own fix".to_string(),
                Remediation::Automatic => {
                    let plans: Vec<&pulldoctor::Plan> = expected.iter().map(|f| &f.plan).collect();
                    if let Some(p) = plans.iter().find(|p| !p.is_automatic()) {
                        let first =
                            p.actions.iter().find(|a| a.needs_human()).map(|a| a.describe()).unwrap_or_default();
                        rec.push(
                            Phase::Remediate,
                            PhaseOutcome::Failed,
                            t,
                            Some(b.remediate),
                            format!("needs a person: {first}"),
                        );
                        (status, reason) = (Status::FailedRemediation, format!("the plan is not automatic: {first}"));
                        break 'phases;
                    }
                    let mut lines = Vec::new();
                    for p in plans {
                        match timed(b.remediate.0, world.remediate(p)).await {
                            Ok(l) => lines.extend(l),
                            Err(e) => {
                                rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), e.clone());
                                (status, reason) =
                                    (Status::FailedRemediation, format!("applying the plan failed: {e}"));
                                break 'phases;
                            }
                        }
                    }
                    lines.join("; ")
                }
                Remediation::Proposed => {
                    if expected.iter().all(|f| f.plan.actions.is_empty()) {
                        rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), "no action proposed");
                        (status, reason) = (Status::FailedRemediation, "the engine proposed no fix".into());
                        break 'phases;
                    }
                    if let Err(why) = proposal_fits(&s.expect.actions, &expected) {
                        rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), why.clone());
                        (status, reason) = (Status::FailedRemediation, why);
                        break 'phases;
                    }
                    if let Err(e) = timed(b.remediate.0, world.apply(&inverse)).await {
                        rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), e.clone());
                        (status, reason) =
                            (Status::ErrorCleanup, format!("applying the scenario's own fix failed: {e}"));
                        break 'phases;
                    }
                    fault_live = false;
                    format!(
                        "engine proposed: {}; applied the scenario's own fix: {}",
                        proposals(&expected),
                        inverse.describe()
                    )
                }
                Remediation::None => unreachable!("checked above"),
            };
            rec.push(Phase::Remediate, PhaseOutcome::Ok, t, Some(b.remediate), applied);

            let t = Instant::now();
            match wait_for(&mut world, b.recover.0, &mut opts.cancel, |h| *h == Health::Running).await {
                Wait::Done(_) => rec.push(Phase::Recover, PhaseOutcome::Ok, t, Some(b.recover), ""),
                Wait::Cancelled => {
                    (status, reason) = (Status::Skipped, "cancelled".into());
                    break 'phases;
                }
                Wait::TimedOut(last) | Wait::Failed(last) => {
                    rec.push(Phase::Recover, PhaseOutcome::Failed, t, Some(b.recover), last.clone());
                    (status, reason) =
                        (Status::FailedRemediation, format!("still not Running after remediation: {last}"));
                    break 'phases;
                }
            }
        }
    }

    if opts.keep && !*opts.cancel.borrow() {
        eprintln!("\n{}: the world is kept ({} so far).\n{}", s.name, status.as_str(), world.access());
        let _ = opts.cancel.wait_for(|c| *c).await;
    }

    // revert: undo the fault if it may still be live (after an automatic fix the world differs
    // from the baseline in the engine's way; the inverse brings it back to the baseline's).
    if fault_live && inverse != Mutation::Nothing {
        let t = Instant::now();
        match timed(b.cleanup.0, world.apply(&inverse)).await {
            Ok(()) => rec.push(Phase::Revert, PhaseOutcome::Ok, t, None, inverse.describe()),
            Err(e) => {
                rec.push(Phase::Revert, PhaseOutcome::Failed, t, None, e.clone());
                if !status.is_failure() {
                    (status, reason) = (Status::ErrorCleanup, format!("revert: {e}"));
                }
            }
        }
        if status == Status::Passed {
            let t = Instant::now();
            match wait_for(&mut world, b.recover.0, &mut opts.cancel, |h| *h == Health::Running).await {
                Wait::Done(_) => rec.push(Phase::VerifyReverted, PhaseOutcome::Ok, t, None, ""),
                Wait::Cancelled => {}
                Wait::TimedOut(last) | Wait::Failed(last) => {
                    rec.push(Phase::VerifyReverted, PhaseOutcome::Failed, t, None, last.clone());
                    (status, reason) = (Status::ErrorCleanup, format!("not Running after revert: {last}"));
                }
            }
        }
    }

    let mut artifacts = None;
    if status.is_failure()
        && let Some(dir) = &opts.artifacts_dir
    {
        let t = Instant::now();
        let dir = dir.join(&s.name);
        let _ = std::fs::create_dir_all(&dir);
        world.artifacts(&dir).await;
        if let Some(report) = &engine_report {
            let _ = std::fs::write(dir.join("engine-report.json"), report);
        }
        rec.push(Phase::Artifacts, PhaseOutcome::Ok, t, None, dir.display().to_string());
        artifacts = Some(dir.display().to_string());
    }

    let t = Instant::now();
    match timed(b.cleanup.0, world.teardown()).await {
        Ok(()) => rec.push(Phase::Cleanup, PhaseOutcome::Ok, t, Some(b.cleanup), ""),
        Err(e) => {
            rec.push(Phase::Cleanup, PhaseOutcome::Failed, t, Some(b.cleanup), e.clone());
            if !status.is_failure() {
                (status, reason) = (Status::ErrorCleanup, format!("cleanup: {e}"));
            }
        }
    }
    record(status, reason, rec, grade, observed, artifacts)
}

fn codes(c: &[pulldoctor::FindingCode]) -> String {
    c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

fn proposals(findings: &[&pulldoctor::Finding]) -> String {
    findings.iter().flat_map(|f| f.plan.actions.iter().map(|a| a.describe())).collect::<Vec<_>>().join("; ")
}

/// Whether the expected findings' plans include an action of one of the `right` kinds (any
/// proposal fits when the scenario names none).
fn proposal_fits(right: &[ActionKind], expected: &[&pulldoctor::Finding]) -> Result<(), String> {
    if right.is_empty() {
        return Ok(());
    }
    let proposed: Vec<ActionKind> =
        expected.iter().flat_map(|f| f.plan.actions.iter()).filter_map(ActionKind::of).collect();
    if proposed.iter().any(|k| right.contains(k)) {
        return Ok(());
    }
    let names = |kinds: &[ActionKind]| {
        kinds
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!("the engine proposed [{}], not the right fix (one of: {})", names(&proposed), names(right)))
}
