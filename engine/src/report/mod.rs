//! The report: the engine contract's JSON document, and its human rendering.
//!
//! The JSON follows `engine/schema/report.schema.json`, generated from these types
//! ([`schema_json`]). Any engine that writes this document can be graded by pullproof.

mod text;

pub use text::render_text;

use serde::{Deserialize, Serialize};

use crate::detect::Diagnosis;
use crate::finding::{Finding, PodRef};
use crate::symptom::Symptom;

/// The version of the report format. Bumped only on incompatible changes.
pub const SCHEMA_VERSION: &str = "1";

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No failing pull and no cause found (meta findings such as `EVIDENCE_UNAVAILABLE` may
    /// still be listed, as warnings).
    Healthy,
    /// At least one finding that names a cause.
    Findings,
    /// Pulls fail but no detector named a cause (meta findings may still be listed).
    Undiagnosed,
}

/// The engine that wrote the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EngineInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// A container whose image cannot be pulled, with what its message says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailingPull {
    /// The pod and container.
    pub pod: PodRef,
    /// The node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The kubelet's message.
    pub message: String,
    /// The parsed symptom.
    pub symptom: Symptom,
}

/// The engine contract: what a diagnosis engine writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// Who wrote it.
    pub engine: EngineInfo,
    /// The verdict.
    pub status: Status,
    /// The failing pulls examined.
    pub failing: Vec<FailingPull>,
    /// The causes found.
    pub findings: Vec<Finding>,
    /// Evidence that could not be collected (lowers confidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<azure_model::inventory::Unavailable>,
    /// The engine has already applied its own fix: a grader checks that the workload recovers
    /// instead of applying `findings[].plan`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_fixed: bool,
}

impl Report {
    /// Builds the report of a diagnosis.
    pub fn from_diagnosis(diagnosis: &Diagnosis, unavailable: Vec<azure_model::inventory::Unavailable>) -> Self {
        // Meta findings (EVIDENCE_UNAVAILABLE) name no cause: they are reported as warnings and
        // never decide the verdict, so a healthy namespace stays healthy for a user who may not
        // list nodes.
        let causes = diagnosis.findings.iter().any(|f| f.code.is_cause());
        let status = match (causes, diagnosis.failures.is_empty()) {
            (true, _) => Status::Findings,
            (false, true) => Status::Healthy,
            (false, false) => Status::Undiagnosed,
        };
        Self {
            schema_version: SCHEMA_VERSION.to_string(),
            engine: EngineInfo { name: "pulldoctor".into(), version: env!("CARGO_PKG_VERSION").into() },
            status,
            failing: diagnosis
                .failures
                .iter()
                .map(|f| FailingPull {
                    pod: f.pod.clone(),
                    node: f.node.clone(),
                    message: f.message.clone(),
                    symptom: f.symptom.clone(),
                })
                .collect(),
            findings: diagnosis.findings.clone(),
            unavailable,
            already_fixed: false,
        }
    }

    /// The finding codes, in order.
    pub fn codes(&self) -> Vec<crate::FindingCode> {
        self.findings.iter().map(|f| f.code).collect()
    }
}

/// The JSON Schema of [`Report`], pretty-printed (what `engine/schema/report.schema.json` holds).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Report);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Exit codes of `pulldoctor diagnose`: 0 healthy, 1 findings (or undiagnosed failures), 2 error.
/// Meta findings (evidence pulldoctor could not read) never change the exit code.
pub mod exit {
    /// Nothing wrong.
    pub const HEALTHY: u8 = 0;
    /// Something wrong was found.
    pub const FINDINGS: u8 = 1;
    /// The engine could not do its job.
    pub const ERROR: u8 = 2;
}

impl Status {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Healthy => exit::HEALTHY,
            Status::Findings | Status::Undiagnosed => exit::FINDINGS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, FindingCode, Severity};
    use crate::plan::Plan;

    fn finding(code: FindingCode) -> Finding {
        Finding {
            code,
            severity: Severity::Warning,
            confidence: Confidence::High,
            summary: "s".into(),
            blamed: vec![],
            evidence: vec![],
            pods: vec![],
            plan: Plan::default(),
        }
    }

    #[test]
    fn meta_findings_never_decide_the_verdict() {
        let unavailable = vec![azure_model::inventory::Unavailable {
            what: "kubernetes: nodes".into(),
            reason: "403 Forbidden: nodes is forbidden".into(),
        }];
        // Nothing fails: healthy (exit 0), the warning kept.
        let d = Diagnosis { failures: vec![], findings: vec![finding(FindingCode::EvidenceUnavailable)] };
        let r = Report::from_diagnosis(&d, unavailable.clone());
        assert_eq!(r.status, Status::Healthy);
        assert_eq!(r.status.exit_code(), exit::HEALTHY);
        assert_eq!(r.codes(), [FindingCode::EvidenceUnavailable]);
        let text = render_text(&r);
        assert!(text.starts_with("healthy: no pod is waiting on an image pull (1 warning(s)"), "{text}");
        assert!(text.contains("EVIDENCE_UNAVAILABLE"), "{text}");
        // A cause decides.
        let d = Diagnosis {
            failures: vec![],
            findings: vec![finding(FindingCode::AcrPullRoleMissing), finding(FindingCode::EvidenceUnavailable)],
        };
        let r = Report::from_diagnosis(&d, unavailable);
        assert_eq!(r.status, Status::Findings);
        assert!(render_text(&r).starts_with("1 finding(s) for 0 failing pull(s) (1 warning(s)"), "{}", render_text(&r));
    }
}
