//! The run plan of a scenario: every phase, its budget, and what it does, without doing it.
//! This is what `pullproof plan NAME` prints.

use std::fmt::Write;

use serde::Serialize;

use crate::catalog::Entry;
use crate::scenario::{BackendKind, Fault, Mutation, Remediation};

fn first_sentence(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default();
    line.split_once(": ").or_else(|| line.split_once(". ")).map(|(a, _)| a).unwrap_or(line).trim_end_matches('.')
}

/// The lifecycle phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Check the scenario and its baseline.
    Validate,
    /// Provision the baseline (or reuse one) and bring the workload up.
    Baseline,
    /// The workload is healthy before anything breaks.
    SteadyState,
    /// Record how to undo the fault, before injecting it.
    RegisterInverse,
    /// Apply the fault.
    Inject,
    /// See the expected symptom from the real pull.
    VerifyInjected,
    /// Run the engine and grade its findings.
    Diagnose,
    /// Apply the engine's plan (or the scenario's own fix when remediation is proposed).
    Remediate,
    /// The workload is healthy again.
    Recover,
    /// Undo the fault if remediation did not.
    Revert,
    /// The world equals the baseline again.
    VerifyReverted,
    /// Keep logs and state on failure.
    Artifacts,
    /// Tear everything down.
    Cleanup,
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The phase.
    pub phase: Phase,
    /// Its budget (`30s`), if it has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// What it does.
    pub does: String,
}

/// The plan of one scenario on one backend.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPlan {
    /// Scenario name.
    pub scenario: String,
    /// Backend.
    pub backend: BackendKind,
    /// Baseline name.
    pub baseline: String,
    /// The fault's kind.
    pub fault_kind: String,
    /// The forward mutation.
    pub fault: Mutation,
    /// Its inverse.
    pub inverse: Mutation,
    /// The steps.
    pub steps: Vec<Step>,
}

impl RunPlan {
    /// Builds the plan of `entry` on `backend`.
    pub fn new(entry: &Entry, backend: BackendKind) -> Self {
        let s = &entry.scenario;
        let b = &s.budgets;
        let fault = s.fault.mutation();
        let inverse = s.fault.inverse(&entry.baseline);
        let e = &s.expect;
        let codes = |c: &[pulldoctor::FindingCode]| c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
        let step = |phase, budget: Option<&crate::scenario::Budget>, does: String| Step {
            phase,
            budget: budget.map(|b| b.to_string()),
            does,
        };
        let healthy = s.fault == Fault::None;
        let mut steps = vec![
            step(Phase::Validate, None, format!("check {} and baseline {}", entry.path.display(), s.baseline)),
            step(
                Phase::Baseline,
                Some(&b.baseline),
                format!(
                    "provision baseline `{}` ({}) on {backend} and deploy {}/{} with image {}",
                    entry.baseline.name,
                    first_sentence(&entry.baseline.description),
                    entry.baseline.workload.namespace,
                    entry.baseline.workload.name,
                    entry.baseline.workload.image_for(&entry.baseline.registry)
                ),
            ),
            step(Phase::SteadyState, None, "the pull succeeds and the pod is Running".into()),
        ];
        if !healthy {
            steps.push(step(Phase::RegisterInverse, None, format!("register inverse: {}", inverse.describe())));
            steps.push(step(Phase::Inject, Some(&b.inject), format!("{}: {}", s.fault.kind(), fault.describe())));
            steps.push(step(
                Phase::VerifyInjected,
                None,
                format!("the node's pull fails with symptom `{}`", e.symptom.map(|c| c.as_str()).unwrap_or("?")),
            ));
        }
        let diagnose = if healthy {
            "the engine reports no finding".to_string()
        } else {
            let mut d = format!("the engine reports exactly [{}]", codes(&e.findings));
            if !e.forbid.is_empty() {
                let _ = write!(d, "; in particular not [{}]", codes(&e.forbid));
            }
            d
        };
        steps.push(step(Phase::Diagnose, Some(&b.diagnose), diagnose));
        match e.remediation {
            Remediation::Automatic => {
                steps.push(step(
                    Phase::Remediate,
                    Some(&b.remediate),
                    "apply the engine's plan (pulldoctor fix --apply)".into(),
                ));
                steps.push(step(
                    Phase::Recover,
                    Some(&b.recover),
                    "the pull succeeds and the pod is Running again".into(),
                ));
            }
            Remediation::Proposed => {
                steps.push(step(
                    Phase::Remediate,
                    Some(&b.remediate),
                    format!(
                        "the engine proposes a fix for a person; the harness applies the scenario's own: {}",
                        inverse.describe()
                    ),
                ));
                steps.push(step(
                    Phase::Recover,
                    Some(&b.recover),
                    "the pull succeeds and the pod is Running again".into(),
                ));
            }
            Remediation::None => {}
        }
        if !healthy {
            steps.push(step(Phase::Revert, None, format!("if the fault is still live: {}", inverse.describe())));
            steps.push(step(Phase::VerifyReverted, None, "the world matches the baseline again".into()));
        }
        steps.push(step(
            Phase::Artifacts,
            None,
            "on failure: events, pull errors, emulator state, registry and containerd logs (secrets redacted)".into(),
        ));
        steps.push(step(Phase::Cleanup, Some(&b.cleanup), "tear down everything the run created".into()));
        Self {
            scenario: s.name.clone(),
            backend,
            baseline: s.baseline.clone(),
            fault_kind: s.fault.kind().into(),
            fault,
            inverse,
            steps,
        }
    }

    /// Human rendering.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {} on {} (baseline {})", self.scenario, self.backend, self.baseline);
        let _ = writeln!(out, "  fault:   {} — {}", self.fault_kind, self.fault.describe());
        let _ = writeln!(out, "  inverse: {}", self.inverse.describe());
        let _ = writeln!(out);
        for (i, s) in self.steps.iter().enumerate() {
            let phase =
                serde_json::to_value(s.phase).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let budget = s.budget.as_deref().map(|b| format!("[{b}]")).unwrap_or_default();
            let _ = writeln!(out, "  {:>2}. {:<16} {:>7}  {}", i + 1, phase, budget, s.does);
        }
        out
    }
}
