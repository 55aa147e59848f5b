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
    /// No failing pull and no finding.
    Healthy,
    /// At least one finding.
    Findings,
    /// Pulls fail but no detector named a cause.
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
        let status = match (diagnosis.findings.is_empty(), diagnosis.failures.is_empty()) {
            (false, _) => Status::Findings,
            (true, true) => Status::Healthy,
            (true, false) => Status::Undiagnosed,
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
