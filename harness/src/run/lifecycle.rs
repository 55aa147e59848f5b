//! One scenario's lifecycle: baseline, steady state, inject, verify, diagnose, remediate,
//! recover, revert, artifacts, cleanup. Each phase has a budget and a record; a failure or a
//! cancellation at any phase still reverts and cleans up.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::backend::{Backend, Health, World};
use super::engine::Engine;
use super::record::{
    Grade, Observation, PhaseOutcome, PhaseRecord, RemediationVerdict, ScenarioRecord, Status, millis,
};
use crate::catalog::Entry;
use crate::plan::Phase;
use crate::scenario::{Budget, Fault, Mutation, Remediation};

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
    scenario: String,
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
        // One line per phase at info level (`RUST_LOG=pullproof::run=info`), for people watching
        // a run and for the interrupt test, which signals the harness at chosen phases.
        tracing::info!(scenario = %self.scenario, phase = ?phase, outcome = ?outcome, "phase ended");
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
        Health::Failing { reason, message } => format!("{reason}: {message}"),
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
    let mut rec = Recorder { scenario: s.name.clone(), phases: Vec::new() };
    let record = |status: Status,
                  reason: String,
                  rec: Recorder,
                  grade: Option<Grade>,
                  observed: Option<Observation>,
                  remediation: Option<RemediationVerdict>,
                  artifacts: Option<String>| {
        ScenarioRecord {
            scenario: s.name.clone(),
            backend: backend.kind(),
            status,
            reason,
            phases: rec.phases,
            grade,
            observed,
            remediation,
            refused: Vec::new(),
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
            return record(Status::ErrorBaseline, format!("baseline: {e}"), rec, None, None, None, None);
        }
    };

    let mut status = Status::Passed;
    let mut reason = String::new();
    let mut grade = None;
    let mut observed = None;
    let mut verdict = None;
    let mut refused = Vec::new();
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

            // Judged by the scenario's own expectation over the kubelet's text, never by an
            // engine's parser; whatever was seen is recorded.
            let label = s.expect.symptom.map(|c| c.as_str().to_string());
            let pattern = s.expect.message.clone();
            let seen: std::sync::Mutex<Option<Observation>> = std::sync::Mutex::new(None);
            let matches = |h: &Health| {
                let o = observe(h, label.clone(), pattern.as_ref());
                let matched = o.matched;
                if let Ok(mut last) = seen.lock() {
                    // A failing pull is kept over a later pending state (a pod being replaced).
                    if o.reason != PENDING || last.as_ref().is_none_or(|l| l.reason == PENDING) {
                        *last = Some(o);
                    }
                }
                matched
            };
            let t = Instant::now();
            let left = b.inject.0.saturating_sub(inject_started.elapsed());
            let waited = wait_for(&mut world, left, &mut opts.cancel, matches).await;
            observed = seen.into_inner().ok().flatten();
            match waited {
                Wait::Done(h) => rec.push(Phase::VerifyInjected, PhaseOutcome::Ok, t, Some(b.inject), describe(&h)),
                Wait::Cancelled => {
                    (status, reason) = (Status::Skipped, "cancelled".into());
                    break 'phases;
                }
                Wait::TimedOut(last) | Wait::Failed(last) => {
                    let shown = observed.as_ref().map(|o| format!("{}: {}", o.reason, o.message)).unwrap_or(last);
                    let want = pattern.as_ref().map(|p| p.as_str()).unwrap_or("?");
                    rec.push(Phase::VerifyInjected, PhaseOutcome::Failed, t, Some(b.inject), shown.clone());
                    (status, reason) = (
                        Status::ErrorInject,
                        format!("the fault did not show a message matching /{want}/; last seen: {shown}"),
                    );
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
                refused = world.engine_refusals();
                break 'phases;
            }
        };
        engine_report = serde_json::to_string_pretty(&report).ok();
        refused = world.engine_refusals();
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
        // The right code must also blame what the fault touched.
        let mut g = g;
        g.confidence = report
            .findings
            .iter()
            .map(|f| {
                (
                    f.code.as_str().to_string(),
                    serde_json::to_value(f.confidence)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                )
            })
            .collect();
        let touched = world.touched(&s.fault);
        if !touched.is_empty() {
            let mut wrong = Vec::new();
            for code in &s.expect.findings {
                let blamed: Vec<&str> = report
                    .findings
                    .iter()
                    .filter(|f| f.code == *code)
                    .flat_map(|f| f.blamed.iter().map(|b| b.id.as_str()))
                    .collect();
                if !blamed.iter().any(|id| touched.iter().any(|t| azure_model::id::same_id(id, t))) {
                    wrong.push(format!(
                        "{code} blamed [{}], none of what the fault touched [{}]",
                        blamed.join(", "),
                        touched.join(", ")
                    ));
                    g.wrong_resource.push(*code);
                }
            }
            if !wrong.is_empty() {
                rec.push(Phase::Diagnose, PhaseOutcome::Failed, t, Some(b.diagnose), detail);
                (status, reason) =
                    (Status::FailedDetection, format!("right code, wrong resource: {}", wrong.join("; ")));
                grade = Some(g);
                break 'phases;
            }
        }
        rec.push(Phase::Diagnose, PhaseOutcome::Ok, t, Some(b.diagnose), detail);
        grade = Some(g);

        // remediate + recover
        if s.expect.remediation != Remediation::None {
            let t = Instant::now();
            let expected: Vec<_> = report.findings.iter().filter(|f| s.expect.findings.contains(&f.code)).collect();
            let actions: Vec<&pulldoctor::Action> = expected.iter().flat_map(|f| f.plan.actions.iter()).collect();
            if actions.is_empty() && !report.already_fixed {
                rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), "no action proposed");
                verdict = Some(RemediationVerdict::None);
                (status, reason) = (Status::FailedRemediation, "the engine proposed no fix".into());
                break 'phases;
            }
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
                        verdict = Some(RemediationVerdict::Wrong);
                        (status, reason) = (Status::FailedRemediation, format!("the plan is not automatic: {first}"));
                        break 'phases;
                    }
                    let mut lines = Vec::new();
                    for p in plans {
                        match timed(b.remediate.0, world.remediate(p)).await {
                            Ok(l) => lines.extend(l),
                            Err(e) => {
                                rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), e.clone());
                                verdict = Some(RemediationVerdict::Wrong);
                                (status, reason) =
                                    (Status::FailedRemediation, format!("applying the plan failed: {e}"));
                                break 'phases;
                            }
                        }
                    }
                    lines.join("; ")
                }
                Remediation::Proposed => {
                    match judge_proposal(&mut world, &actions, &inverse, b, &mut opts.cancel).await {
                        Proposal::Cancelled => {
                            (status, reason) = (Status::Skipped, "cancelled".into());
                            break 'phases;
                        }
                        Proposal::Verified(detail) => {
                            rec.push(Phase::Remediate, PhaseOutcome::Ok, t, Some(b.remediate), detail);
                            verdict = Some(RemediationVerdict::Verified);
                        }
                        Proposal::MatchesInverse(detail) => {
                            rec.push(Phase::Remediate, PhaseOutcome::Ok, t, Some(b.remediate), detail);
                            verdict = Some(RemediationVerdict::MatchesInverse);
                        }
                        Proposal::Wrong(detail) => {
                            rec.push(Phase::Remediate, PhaseOutcome::Failed, t, Some(b.remediate), detail.clone());
                            verdict = Some(RemediationVerdict::Wrong);
                            (status, reason) = (Status::FailedRemediation, detail);
                        }
                    }
                    // Verified proposals recovered already; a matching manual step is carried
                    // out by the revert below (the harness's inverse), which is not graded.
                    break 'phases;
                }
                Remediation::None => unreachable!("checked above"),
            };
            rec.push(Phase::Remediate, PhaseOutcome::Ok, t, Some(b.remediate), applied);

            let t = Instant::now();
            match wait_for(&mut world, b.recover.0, &mut opts.cancel, |h| *h == Health::Running).await {
                Wait::Done(_) => {
                    rec.push(Phase::Recover, PhaseOutcome::Ok, t, Some(b.recover), "");
                    verdict = Some(RemediationVerdict::Verified);
                }
                Wait::Cancelled => {
                    (status, reason) = (Status::Skipped, "cancelled".into());
                    break 'phases;
                }
                Wait::TimedOut(last) | Wait::Failed(last) => {
                    rec.push(Phase::Recover, PhaseOutcome::Failed, t, Some(b.recover), last.clone());
                    verdict = Some(RemediationVerdict::Wrong);
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
    let mut done = record(status, reason, rec, grade, observed, verdict, artifacts);
    done.refused = refused;
    done
}

fn codes(c: &[pulldoctor::FindingCode]) -> String {
    c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// The state name of an observation made while the world was still pending.
const PENDING: &str = "Pending";

/// What `h` shows, judged against the scenario's `expect.message`.
fn observe(h: &Health, label: Option<String>, pattern: Option<&crate::scenario::MessagePattern>) -> Observation {
    let (reason, message) = match h {
        Health::Failing { reason, message } => (reason.clone(), message.clone()),
        Health::Pending(why) => (PENDING.to_string(), why.clone()),
        Health::Running => ("Running".to_string(), "the image was pulled and the pod runs".to_string()),
    };
    let matched = matches!(h, Health::Failing { .. }) && pattern.is_some_and(|p| p.is_match(&message));
    Observation { label, reason, message, matched }
}

/// How a proposed remediation fared.
enum Proposal {
    Verified(String),
    MatchesInverse(String),
    Wrong(String),
    Cancelled,
}

/// Judges an engine's proposal: machine-applicable actions are applied with the harness's own
/// code and count only if the workload then recovers; a `manual` action counts only when its
/// typed change is one of the changes the scenario's own inverse makes. Prose never counts.
async fn judge_proposal<W: World>(
    world: &mut W,
    actions: &[&pulldoctor::Action],
    inverse: &Mutation,
    b: &crate::scenario::Budgets,
    cancel: &mut watch::Receiver<bool>,
) -> Proposal {
    let mut notes = Vec::new();
    let applicable: Vec<&&pulldoctor::Action> = actions.iter().filter(|a| !a.needs_human()).collect();
    if !applicable.is_empty() {
        let mut applied = Vec::new();
        let mut failed = None;
        for a in applicable {
            match timed(b.remediate.0, world.apply_proposal(a)).await {
                Ok(line) => applied.push(line),
                Err(e) => {
                    failed = Some(format!("could not apply the proposed `{}`: {e}", a.describe()));
                    break;
                }
            }
        }
        match failed {
            Some(why) => notes.push(why),
            None => match wait_for(world, b.recover.0, cancel, |h| *h == Health::Running).await {
                Wait::Done(_) => {
                    return Proposal::Verified(format!(
                        "applied the engine's proposal: {}; the workload recovered",
                        applied.join("; ")
                    ));
                }
                Wait::Cancelled => return Proposal::Cancelled,
                Wait::TimedOut(last) | Wait::Failed(last) => notes.push(format!(
                    "applied the engine's proposal ({}) and the workload did not recover: {last}",
                    applied.join("; ")
                )),
            },
        }
    }
    let fixes = world.changes_of(inverse);
    let manual: Vec<&pulldoctor::plan::Change> = actions
        .iter()
        .filter_map(|a| match a {
            pulldoctor::Action::Manual { change: Some(c), .. } => Some(c),
            _ => None,
        })
        .collect();
    if let Some(c) = manual.iter().find(|c| fixes.iter().any(|f| same_change(c, f))) {
        return Proposal::MatchesInverse(format!("the engine's manual step ({c}) is the scenario's own fix"));
    }
    let untyped = actions.iter().filter(|a| matches!(a, pulldoctor::Action::Manual { change: None, .. })).count();
    if !manual.is_empty() {
        notes.push(format!(
            "its manual step ({}) is not the fix",
            manual.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    if untyped > 0 {
        notes.push(format!(
            "{untyped} manual step(s) say no typed change (`change: {{operation, resourceId}}`), so they cannot count"
        ));
    }
    Proposal::Wrong(format!("the proposal was not the fix: {}", notes.join("; ")))
}

/// Whether an engine's typed change is the same as one the harness knows: the same operation
/// on the same resource; a creation may name the new resource as it likes, so only its type
/// and parent must agree.
fn same_change(engine: &pulldoctor::plan::Change, fix: &pulldoctor::plan::Change) -> bool {
    use azure_model::id::{ResourceId, same_id};
    use pulldoctor::plan::ChangeOperation;
    if engine.operation != fix.operation {
        return false;
    }
    if engine.operation != ChangeOperation::Create {
        return same_id(&engine.resource_id, &fix.resource_id);
    }
    match (ResourceId::parse(&engine.resource_id), ResourceId::parse(&fix.resource_id)) {
        (Ok(e), Ok(f)) => {
            e.resource_type().eq_ignore_ascii_case(&f.resource_type())
                && match (e.parent(), f.parent()) {
                    (Some(ep), Some(fp)) => same_id(ep.as_str(), fp.as_str()),
                    (None, None) => {
                        e.resource_group().zip(f.resource_group()).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
                    }
                    _ => false,
                }
        }
        _ => false,
    }
}
