//! ARM's error envelope: `{"error": {"code", "message", "target", "details", "additionalInfo"}}`.

use serde::{Deserialize, Serialize};

/// The outer envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArmError {
    /// The error.
    pub error: ArmErrorBody,
}

/// The error body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArmErrorBody {
    /// A stable code (`ResourceNotFound`, `AuthorizationFailed`, `InvalidApiVersionParameter`...).
    pub code: String,
    /// Human text.
    pub message: String,
    /// What the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ArmErrorBody>,
}

impl ArmError {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ArmErrorBody { code: code.into(), message: message.into(), target: None, details: vec![] } }
    }
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}
