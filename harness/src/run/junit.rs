//! JUnit XML, the format CI systems show test results in.

use std::fmt::Write;

use super::record::{RunRecord, Status};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders a run as one `<testsuite>` with a `<testcase>` per scenario.
pub fn render(run: &RunRecord) -> String {
    let failures = run
        .scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::FailedDetection | Status::FailedRemediation))
        .count();
    let errors = run.scenarios.iter().filter(|s| s.status.as_str().starts_with("error:")).count();
    let skipped = run.count(Status::Skipped);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"pullproof\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        run.scenarios.len(),
        run.millis as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"pullproof/{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{}\" time=\"{:.3}\">",
        esc(&run.engine),
        run.scenarios.len(),
        esc(&run.started),
        run.millis as f64 / 1000.0
    );
    for s in &run.scenarios {
        let _ = write!(
            out,
            "    <testcase classname=\"pullproof.{}\" name=\"{}\" time=\"{:.3}\"",
            s.backend,
            esc(&s.scenario),
            s.millis as f64 / 1000.0
        );
        let phases: Vec<String> =
            s.phases.iter().map(|p| format!("{:?} {:?} {}ms {}", p.phase, p.outcome, p.millis, p.detail)).collect();
        let body = esc(&phases.join("\n"));
        match s.status {
            Status::Passed => {
                let _ = writeln!(out, ">\n      <system-out>{body}</system-out>\n    </testcase>");
            }
            Status::Skipped => {
                let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", esc(&s.reason));
            }
            Status::FailedDetection | Status::FailedRemediation => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"{}\" message=\"{}\">{body}</failure>\n    </testcase>",
                    s.status,
                    esc(&s.reason)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    ">\n      <error type=\"{}\" message=\"{}\">{body}</error>\n    </testcase>",
                    s.status,
                    esc(&s.reason)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::ScenarioRecord;
    use crate::scenario::BackendKind;

    #[test]
    fn escapes_and_counts() {
        let rec = |name: &str, status| ScenarioRecord {
            scenario: name.into(),
            backend: BackendKind::Host,
            status,
            reason: "missed <IMAGE_NOT_FOUND> & \"more\"".into(),
            phases: vec![],
            grade: None,
            observed: None,
            remediation: None,
            refused: vec![],
            artifacts: None,
            millis: 1500,
        };
        let run = RunRecord {
            schema_version: "1".into(),
            pullproof: "0".into(),
            engine: "pulldoctor".into(),
            started: "2026-11-22T00:00:00Z".into(),
            millis: 3000,
            parallel: 2,
            scenarios: vec![rec("a", Status::Passed), rec("b", Status::FailedDetection), rec("c", Status::ErrorInject)],
            cancelled: false,
            kubernetes: None,
        };
        let xml = render(&run);
        assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""));
        assert!(xml.contains("missed &lt;IMAGE_NOT_FOUND&gt; &amp; &quot;more&quot;"));
        assert!(xml.contains("<failure type=\"failed:detection\""));
        assert!(xml.contains("<error type=\"error:inject\""));
        assert_eq!(xml.matches("<testcase").count(), 3);
    }
}
