//! Findings: what the engine concludes, with proof.

mod code;

pub use code::{FindingCode, UnknownFindingCode};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Pulls fail because of it.
    Error,
    /// Pulls may fail, or will soon.
    Warning,
    /// Worth knowing.
    Info,
}

/// How sure the engine is: `high` when Azure evidence confirms the symptom, lower when some
/// evidence was unavailable and the conclusion rests on the symptom alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Symptom and control-plane evidence agree.
    High,
    /// One of them is missing or indirect.
    Medium,
    /// A guess from the symptom alone.
    Low,
}

/// A resource the finding blames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blame {
    /// The domain kind: `Registry`, `RoleAssignment`, `VnetLink`, `Peering`, `PullSecret`, ...
    pub kind: String,
    /// An ARM id, or `namespace/name` for Kubernetes objects.
    pub id: String,
    /// What is wrong with it (or what is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Blame {
    /// A blamed resource.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self { kind: kind.into(), id: id.into(), note: None }
    }

    /// With a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// A pod container affected by a finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Container name.
    pub container: String,
    /// The image as written in the pod spec.
    pub image: String,
}

/// One diagnosed cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The stable cause code.
    pub code: FindingCode,
    /// Severity.
    pub severity: Severity,
    /// Confidence.
    pub confidence: Confidence,
    /// One or two sentences a person reads first.
    pub summary: String,
    /// The resources at fault.
    pub blamed: Vec<Blame>,
    /// The evidence lines that prove it (no secrets).
    pub evidence: Vec<String>,
    /// The affected containers.
    pub pods: Vec<PodRef>,
    /// What to do.
    pub plan: Plan,
}
