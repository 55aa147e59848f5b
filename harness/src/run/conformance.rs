//! How well an engine did over a run: per scenario detected / missed / wrong code / false
//! positive, how its remediation was judged (`verified`, `matches-inverse`, `wrong`, `none`),
//! with precision and recall over the codes.

use std::fmt::Write;

use serde::Serialize;

use super::record::{RemediationVerdict, RunRecord};

/// The verdict on one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// Exactly the expected codes (none for the healthy control).
    Detected,
    /// Exactly the expected codes, but a finding blamed none of the resources the fault
    /// touched (`detected-wrong-resource`).
    DetectedWrongResource,
    /// Nothing reported where a cause was expected.
    Missed,
    /// Only other codes reported.
    WrongCode,
    /// Some of the expected codes and nothing else (a scenario expecting several).
    Partial,
    /// The expected code plus others, or any code on the healthy control.
    FalsePositive,
    /// The engine failed (crashed, timed out, answered no report): every expected code missed.
    EngineFailed,
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
    /// How the engine's remediation was judged: `verified` (applied, and the workload
    /// recovered), `matches-inverse` (a typed manual step equal to the scenario's own fix),
    /// `wrong` or `none`. Never inferred from the harness's own revert.
    pub remediation: Option<RemediationVerdict>,
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
    /// Expected codes reported / all codes reported (`None`: the engine reported no cause).
    pub precision: Option<f64>,
    /// Expected codes reported / all codes expected (`None`: nothing was graded).
    pub recall: Option<f64>,
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
                    remediation: None,
                    diagnose_millis: None,
                });
                continue;
            };
            let hit = g.expected.len() - g.missed.len();
            tp += hit;
            fp += g.unexpected.len();
            fn_ += g.missed.len();
            let detection = if g.engine_failed {
                Detection::EngineFailed
            } else {
                match (g.missed.is_empty(), g.unexpected.is_empty()) {
                    (true, true) if !g.wrong_resource.is_empty() => Detection::DetectedWrongResource,
                    (true, true) => Detection::Detected,
                    (true, false) => Detection::FalsePositive,
                    (false, true) if hit > 0 => Detection::Partial,
                    (false, false) if hit > 0 => Detection::FalsePositive,
                    (false, true) => Detection::Missed,
                    (false, false) => Detection::WrongCode,
                }
            };
            rows.push(Row {
                scenario: s.scenario.clone(),
                detection,
                remediation: s.remediation,
                diagnose_millis: Some(g.diagnose_millis),
            });
        }
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        Self { engine: run.engine.clone(), rows, precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn_) }
    }

    /// Human rendering.
    pub fn render_text(&self) -> String {
        let mut out = format!("conformance of {}\n", self.engine);
        let width = self.rows.iter().map(|r| r.scenario.len()).max().unwrap_or(8).max(8);
        let _ = writeln!(out, "  {:<width$}  {:<23} {:<15} {:>9}", "SCENARIO", "DETECTION", "REMEDIATION", "DIAGNOSE");
        for r in &self.rows {
            let det =
                serde_json::to_value(r.detection).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let rem = r.remediation.map(RemediationVerdict::as_str).unwrap_or("-");
            let ms = r.diagnose_millis.map(|m| format!("{m}ms")).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "  {:<width$}  {det:<23} {rem:<15} {ms:>9}", r.scenario);
        }
        let show = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into());
        let _ = writeln!(out, "  precision {}, recall {}", show(self.precision), show(self.recall));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::{Grade, ScenarioRecord, Status};
    use crate::scenario::BackendKind;
    use pulldoctor::FindingCode as C;

    fn scenario(name: &str, status: Status, grade: Option<Grade>) -> ScenarioRecord {
        ScenarioRecord {
            scenario: name.into(),
            backend: BackendKind::Host,
            status,
            reason: String::new(),
            phases: vec![],
            grade,
            observed: None,
            remediation: None,
            refused: vec![],
            artifacts: None,
            millis: 10,
        }
    }

    fn run(scenarios: Vec<ScenarioRecord>) -> RunRecord {
        RunRecord {
            schema_version: "1".into(),
            pullproof: "0".into(),
            engine: "e".into(),
            started: String::new(),
            millis: 0,
            parallel: 1,
            scenarios,
            cancelled: false,
            kubernetes: None,
        }
    }

    #[test]
    fn an_engine_that_fails_everywhere_scores_zero_recall_not_perfect() {
        let r = run(vec![
            scenario("a", Status::FailedDetection, Some(Grade::engine_failed(&[C::AcrPullRoleMissing], 5))),
            scenario("b", Status::FailedDetection, Some(Grade::engine_failed(&[C::ImageNotFound], 5))),
        ]);
        let c = Conformance::of(&r);
        assert!(c.rows.iter().all(|row| row.detection == Detection::EngineFailed));
        assert_eq!(c.recall, Some(0.0));
        assert_eq!(c.precision, None, "nothing reported: precision is undefined, not perfect");
        assert!(c.render_text().contains("precision n/a, recall 0.00"));
    }

    #[test]
    fn verdicts_cover_every_shape() {
        let g = |expected: &[C], reported: &[C]| Some(Grade::new(expected, &[], reported, 1));
        let both = [C::AcrPullRoleMissing, C::SpSecretExpired];
        let r = run(vec![
            scenario("exact", Status::Passed, g(&[C::ImageNotFound], &[C::ImageNotFound])),
            scenario("missed", Status::FailedDetection, g(&[C::ImageNotFound], &[])),
            scenario("wrong", Status::FailedDetection, g(&[C::ImageNotFound], &[C::LoginServerTypo])),
            scenario("extra", Status::FailedDetection, g(&[C::ImageNotFound], &[C::ImageNotFound, C::LoginServerTypo])),
            scenario("partial", Status::FailedDetection, g(&both, &[C::AcrPullRoleMissing])),
            scenario("healthy-noise", Status::FailedDetection, g(&[], &[C::ImageNotFound])),
            scenario("not-built", Status::ErrorBaseline, None),
        ]);
        let c = Conformance::of(&r);
        let verdicts: Vec<Detection> = c.rows.iter().map(|row| row.detection).collect();
        assert_eq!(
            verdicts,
            [
                Detection::Detected,
                Detection::Missed,
                Detection::WrongCode,
                Detection::FalsePositive,
                Detection::Partial,
                Detection::FalsePositive,
                Detection::NotGraded
            ]
        );
        // tp 3 (exact, extra, partial), fp 3 (wrong, extra, healthy-noise), fn 3 (missed, wrong, partial)
        assert_eq!(c.precision, Some(0.5));
        assert_eq!(c.recall, Some(0.5));
    }
}
