//! `pulldoctor explain -o json`: one message read alone, without evidence.
//!
//! The JSON follows `engine/schema/explain.schema.json`, generated from these types
//! ([`schema_json`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::detect::{Candidate, candidates};
use crate::symptom::Symptom;

/// The version of the explain document; bumped on incompatible changes.
pub const SCHEMA_VERSION: &str = "1";

/// What one image-pull message says and which causes it points at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// The parsed message.
    pub symptom: Symptom,
    /// Likely causes from the symptom alone, most likely first (`pulldoctor diagnose` confirms
    /// them with evidence).
    pub candidates: Vec<Candidate>,
}

impl Explanation {
    /// Parses `message` and ranks the causes it points at.
    pub fn of(message: &str) -> Self {
        let symptom = Symptom::parse(message);
        let candidates = candidates(&symptom);
        Explanation { schema_version: SCHEMA_VERSION.to_string(), symptom, candidates }
    }
}

/// The JSON Schema of [`Explanation`], pretty-printed (what `engine/schema/explain.schema.json`
/// holds).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Explanation);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
