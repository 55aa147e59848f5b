//! What a run records: per phase, per scenario, per run. Serialized as the JSON run record.

use std::time::Duration;

use pulldoctor::FindingCode;
use serde::{Deserialize, Serialize};

use crate::plan::Phase;
use crate::scenario::BackendKind;

/// A scenario's verdict. Product failures (`failed:*`) are kept apart from infrastructure
/// errors (`error:*`), so a red run says whose problem it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Everything held.
    #[serde(rename = "passed")]
    Passed,
    /// The engine missed the cause, named another, or reported a finding where none belongs.
    #[serde(rename = "failed:detection")]
    FailedDetection,
    /// The engine's remediation did not make the workload healthy.
    #[serde(rename = "failed:remediation")]
    FailedRemediation,
    /// The baseline could not be provisioned or was not healthy to begin with.
    #[serde(rename = "error:baseline")]
    ErrorBaseline,
    /// The fault could not be injected or did not show its symptom.
    #[serde(rename = "error:inject")]
    ErrorInject,
    /// Revert or teardown failed (the run may have left something behind).
    #[serde(rename = "error:cleanup")]
    ErrorCleanup,
    /// Not run: the backend does not support the scenario, or the run was cancelled first.
    #[serde(rename = "skipped")]
    Skipped,
}

impl Status {
    /// The wire name (`failed:detection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::FailedDetection => "failed:detection",
            Status::FailedRemediation => "failed:remediation",
            Status::ErrorBaseline => "error:baseline",
            Status::ErrorInject => "error:inject",
            Status::ErrorCleanup => "error:cleanup",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the scenario counts as a failure of the run.
    pub fn is_failure(self) -> bool {
        !matches!(self, Status::Passed | Status::Skipped)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOutcome {
    /// It did what it should.
    Ok,
    /// It failed (see `detail`).
    Failed,
    /// It ran out of budget.
    TimedOut,
    /// Not needed (e.g. revert after a successful remediation).
    Skipped,
}

/// One phase's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// How it ended.
    pub outcome: PhaseOutcome,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// Its budget in milliseconds, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_millis: Option<u64>,
    /// What happened (errors, observed symptom).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub detail: String,
}

/// How the engine did on one scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grade {
    /// Codes the scenario expects.
    pub expected: Vec<FindingCode>,
    /// Codes the engine reported.
    pub reported: Vec<FindingCode>,
    /// Expected but not reported.
    pub missed: Vec<FindingCode>,
    /// Reported but not expected.
    pub unexpected: Vec<FindingCode>,
    /// Unexpected codes that the scenario names as the usual confusions.
    pub confused_with: Vec<FindingCode>,
    /// Time the engine took, in milliseconds.
    pub diagnose_millis: u64,
    /// Expected codes whose finding blamed none of the resources the fault touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrong_resource: Vec<FindingCode>,
    /// The engine's confidence per reported code: reported, never graded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub confidence: std::collections::BTreeMap<String, String>,
    /// The engine failed: it reported nothing, so every expected code counts as missed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub engine_failed: bool,
}

impl Grade {
    /// Grades `reported` against the expectations.
    pub fn new(expected: &[FindingCode], forbid: &[FindingCode], reported: &[FindingCode], millis: u64) -> Self {
        // Meta codes (the engine's own reach) name no cause: they neither hit nor miss.
        let mut reported: Vec<FindingCode> = reported.iter().copied().filter(|c| c.is_cause()).collect();
        reported.sort();
        reported.dedup();
        let missed = expected.iter().filter(|c| !reported.contains(c)).copied().collect();
        let unexpected: Vec<FindingCode> = reported.iter().filter(|c| !expected.contains(c)).copied().collect();
        let confused_with = unexpected.iter().filter(|c| forbid.contains(c)).copied().collect();
        Self {
            expected: expected.to_vec(),
            reported,
            missed,
            unexpected,
            confused_with,
            diagnose_millis: millis,
            wrong_resource: Vec::new(),
            confidence: Default::default(),
            engine_failed: false,
        }
    }

    /// The grade of an engine that failed to answer: every expected code missed.
    pub fn engine_failed(expected: &[FindingCode], millis: u64) -> Self {
        Self { engine_failed: true, ..Self::new(expected, &[], &[], millis) }
    }

    /// Exactly the expected codes (whatever they blamed).
    pub fn is_exact(&self) -> bool {
        self.missed.is_empty() && self.unexpected.is_empty()
    }
}

/// What the node showed after injection, recorded whatever it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The scenario's label for the symptom (`expect.symptom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The kubelet's waiting reason, or the world's state when nothing failed (`Pending`,
    /// `Running`).
    pub reason: String,
    /// The kubelet's event text (or why the world was pending).
    pub message: String,
    /// Whether `message` matched `expect.message`.
    pub matched: bool,
}

/// How an engine's remediation was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationVerdict {
    /// Applied (by the engine's plan, or by the harness for a machine-applicable proposal) and
    /// the workload recovered.
    Verified,
    /// A `manual` proposal whose typed change is the scenario's own inverse.
    MatchesInverse,
    /// Applied without recovery, or a manual step that is not the inverse.
    Wrong,
    /// No action for the expected findings.
    None,
}

impl RemediationVerdict {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationVerdict::Verified => "verified",
            RemediationVerdict::MatchesInverse => "matches-inverse",
            RemediationVerdict::Wrong => "wrong",
            RemediationVerdict::None => "none",
        }
    }
}

/// One scenario's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioRecord {
    /// Scenario name.
    pub scenario: String,
    /// Backend.
    pub backend: BackendKind,
    /// Verdict.
    pub status: Status,
    /// One line on why (empty when passed).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub reason: String,
    /// Each phase.
    pub phases: Vec<PhaseRecord>,
    /// The engine's grade, when diagnosis ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// What the node showed while the harness waited for the fault's symptom: the last
    /// failing pull seen, whether or not it matched `expect.message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observation>,
    /// How the engine's remediation was judged, when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationVerdict>,
    /// Requests the engine made with its read-only identity and was refused (it tried to
    /// change the world itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Where artifacts were kept (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<String>,
    /// Total wall time in milliseconds.
    pub millis: u64,
}

impl ScenarioRecord {
    /// The time spent in `phase`.
    pub fn phase_millis(&self, phase: Phase) -> Option<u64> {
        self.phases.iter().find(|p| p.phase == phase).map(|p| p.millis)
    }
}

/// The JSON run record: every scenario of one `pullproof run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Format version.
    pub schema_version: String,
    /// pullproof's version.
    pub pullproof: String,
    /// The engine graded.
    pub engine: String,
    /// When the run started (RFC 3339).
    pub started: String,
    /// Total wall time in milliseconds.
    pub millis: u64,
    /// Parallelism used.
    pub parallel: usize,
    /// Each scenario, in catalog order.
    pub scenarios: Vec<ScenarioRecord>,
    /// The run was interrupted (Ctrl-C, SIGTERM): scenarios not run are `skipped`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// What the backend's Kubernetes reported about itself, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesVersions>,
}

/// Versions as the cluster reports them (the API server's `/version`, a Node's `nodeInfo`),
/// never the harness's own constants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesVersions {
    /// `/version` `gitVersion`.
    pub server_version: String,
    /// `status.nodeInfo.kubeletVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
    /// `status.nodeInfo.containerRuntimeVersion` (`containerd://2.1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime_version: Option<String>,
    /// How long the control plane took to start (etcd to a ready API server), when the backend
    /// started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_startup_millis: Option<u64>,
}

impl RunRecord {
    /// How many scenarios ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.scenarios.iter().filter(|s| s.status == status).count()
    }

    /// Whether any scenario failed or errored.
    pub fn failed(&self) -> bool {
        self.scenarios.iter().any(|s| s.status.is_failure())
    }
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FindingCode::*;

    #[test]
    fn grading() {
        let g = Grade::new(
            &[PrivateDnsZoneNotLinked],
            &[AcrFirewallDeniesEgress],
            &[AcrFirewallDeniesEgress, PrivateDnsZoneNotLinked],
            5,
        );
        assert!(!g.is_exact());
        assert_eq!(g.unexpected, [AcrFirewallDeniesEgress]);
        assert_eq!(g.confused_with, [AcrFirewallDeniesEgress]);
        assert!(Grade::new(&[], &[], &[], 1).is_exact());
        let missed = Grade::new(&[ImageNotFound], &[], &[], 1);
        assert_eq!(missed.missed, [ImageNotFound]);
    }

    #[test]
    fn status_wire_names() {
        assert_eq!(serde_json::to_string(&Status::FailedDetection).unwrap(), "\"failed:detection\"");
        assert_eq!(Status::ErrorCleanup.to_string(), "error:cleanup");
        assert!(!Status::Skipped.is_failure());
    }
}
