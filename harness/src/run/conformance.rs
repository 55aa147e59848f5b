//! How well an engine did over a run: per scenario detected / missed / wrong code / false
//! positive and remediated or not, with precision and recall over the codes.

use std::fmt::Write;

use serde::Serialize;

use super::record::{RunRecord, Status};
use crate::plan::Phase;

/// The verdict on one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// Exactly the expected codes (none for the healthy control).
    Detected,
    /// Nothing reported where a cause was expected.
    Missed,
    /// Only other codes reported.
    WrongCode,
    /// The expected code plus others, or any code on the healthy control.
    FalsePositive,
    /// The engine never got to diagnose (the world could not be built or broken).
    NotGraded,
}

/// One row of the conformance report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Scenario.
    pub scenario: String,
    /// Detection verdict.
    pub detection: Detection,
    /// Whether the workload was healthy again after the engine's (or the proposed) fix.
    pub remediated: Option<bool>,
    /// Time to diagnose, ms.
    pub diagnose_millis: Option<u64>,
}

/// The conformance report of one engine.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conformance {
    /// The engine.
    pub engine: String,
    /// Rows, catalog order.
    pub rows: Vec<Row>,
    /// Expected codes reported / all codes reported.
    pub precision: f64,
    /// Expected codes reported / all codes expected.
    pub recall: f64,
}

impl Conformance {
    /// Computes the report from a run.
    pub fn of(run: &RunRecord) -> Self {
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        let mut rows = Vec::new();
        for s in &run.scenarios {
            let Some(g) = &s.grade else {
                rows.push(Row {
                    scenario: s.scenario.clone(),
                    detection: Detection::NotGraded,
                    remediated: None,
                    diagnose_millis: None,
                });
                continue;
            };
            let hit = g.expected.len() - g.missed.len();
            tp += hit;
            fp += g.unexpected.len();
            fn_ += g.missed.len();
            let detection = match (g.missed.is_empty(), g.unexpected.is_empty()) {
                (true, true) => Detection::Detected,
                (true, false) => Detection::FalsePositive,
                (false, _) if hit > 0 => Detection::FalsePositive,
                (false, true) => Detection::Missed,
                (false, false) => Detection::WrongCode,
            };
            let remediated = s.phase_millis(Phase::Remediate).map(|_| s.status == Status::Passed);
            rows.push(Row {
                scenario: s.scenario.clone(),
                detection,
                remediated,
                diagnose_millis: Some(g.diagnose_millis),
            });
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        Self { engine: run.engine.clone(), rows, precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn_) }
    }

    /// Human rendering.
    pub fn render_text(&self) -> String {
        let mut out = format!("conformance of {}\n", self.engine);
        let width = self.rows.iter().map(|r| r.scenario.len()).max().unwrap_or(8).max(8);
        let _ = writeln!(out, "  {:<width$}  {:<14} {:<11} {:>9}", "SCENARIO", "DETECTION", "REMEDIATED", "DIAGNOSE");
        for r in &self.rows {
            let det =
                serde_json::to_value(r.detection).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let rem = match r.remediated {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let ms = r.diagnose_millis.map(|m| format!("{m}ms")).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "  {:<width$}  {det:<14} {rem:<11} {ms:>9}", r.scenario);
        }
        let _ = writeln!(out, "  precision {:.2}, recall {:.2}", self.precision, self.recall);
        out
    }
}
