//! What a scenario expects from the engine and the world.

use pulldoctor::FindingCode;
use pulldoctor::symptom::SymptomClass;
use serde::{Deserialize, Serialize};

/// How the fault must be remediated for the scenario to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Remediation {
    /// The engine's plan is applied as is and must make the workload healthy.
    Automatic,
    /// The engine must propose the right action (it needs a person); the harness then applies the
    /// scenario's own inverse and checks recovery.
    Proposed,
    /// Nothing to remediate (the healthy baseline).
    None,
}

/// The assertions of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectations {
    /// The symptom class the node's pull must show once the fault is live (verify-injected).
    /// Omitted only when there is no fault: the pull must then succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom: Option<SymptomClass>,
    /// The finding codes the engine must report. Any other code fails the scenario.
    #[serde(default)]
    pub findings: Vec<FindingCode>,
    /// The codes this fault is most easily mistaken for; reported by name when an engine
    /// confuses them.
    #[serde(default)]
    pub forbid: Vec<FindingCode>,
    /// How remediation must happen.
    pub remediation: Remediation,
}
