//! Engines built to fail, graded on real worlds: each must get exactly the grade its failure
//! deserves (`examples/engines/adversarial/`). A grader that passed any of them would be lying.

use std::time::Duration;

use pullproof::run::conformance::Detection;
use pullproof::run::{Conformance, RemediationVerdict, Status};

mod grading;
mod leftovers;
use grading::{grade, grade_as, root, why};

fn engine(name: &str) -> String {
    format!("python3 {}", root().join("examples/engines/adversarial").join(name).display())
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn host_a_message_guesser_never_gets_a_remediation_counted() {
    let proposed = ["image-tag-not-found", "route-table-blackhole"];
    let Some(run) = grade(engine("guesser.py"), &proposed, MINUTE) else { return };
    let c = Conformance::of(&run);
    let row = |name: &str| c.rows.iter().find(|r| r.scenario == name).unwrap();
    let status = |name: &str| run.scenarios.iter().find(|s| s.scenario == name).unwrap().status;
    // The right code from the message text, blaming the workload: right for a bad tag...
    assert_eq!(row("image-tag-not-found").detection, Detection::Detected, "{c:?}\n{}", why(&run));
    // ...but "look into it" is not a fix, and nothing was applied on its behalf.
    assert_eq!(row("image-tag-not-found").remediation, Some(RemediationVerdict::Wrong), "{c:?}\n{}", why(&run));
    assert_eq!(status("image-tag-not-found"), Status::FailedRemediation);
    // A dropped route is not the workload's fault.
    assert_eq!(row("route-table-blackhole").detection, Detection::DetectedWrongResource, "{c:?}\n{}", why(&run));
    assert_eq!(status("route-table-blackhole"), Status::FailedDetection);
    for r in &c.rows {
        assert!(
            !matches!(r.remediation, Some(RemediationVerdict::Verified | RemediationVerdict::MatchesInverse)),
            "{c:?}\n{}",
            why(&run)
        );
    }
}

#[test]
fn host_an_engine_that_reports_everything_has_false_positives_and_low_precision() {
    let Some(run) = grade(engine("everything.py"), &["healthy-baseline", "image-tag-not-found"], MINUTE) else {
        return;
    };
    let c = Conformance::of(&run);
    assert!(c.rows.iter().all(|r| r.detection == Detection::FalsePositive), "{c:?}\n{}", why(&run));
    assert_eq!(c.recall, Some(1.0));
    assert!(c.precision.unwrap() < 0.1, "{c:?}\n{}", why(&run));
}

#[test]
fn host_an_engine_that_reports_nothing_has_zero_recall() {
    let Some(run) = grade(engine("silent.py"), &["healthy-baseline", "acrpull-role-missing"], MINUTE) else {
        return;
    };
    let c = Conformance::of(&run);
    let row = |name: &str| c.rows.iter().find(|r| r.scenario == name).unwrap();
    assert_eq!(row("healthy-baseline").detection, Detection::Detected, "{}", why(&run));
    // "Healthy" on a broken world is a miss, never a pass.
    assert_eq!(row("acrpull-role-missing").detection, Detection::Missed, "{}", why(&run));
    assert_eq!(c.recall, Some(0.0));
    let broken = run.scenarios.iter().find(|s| s.scenario == "acrpull-role-missing").unwrap();
    assert_eq!(broken.status, Status::FailedDetection);
}

#[test]
fn host_an_engine_that_crashes_or_hangs_is_engine_failed() {
    for (command, timeout) in
        [(engine("crash.py"), MINUTE), (format!("{} hang", engine("crash.py")), Duration::from_secs(5))]
    {
        let Some(run) = grade(command.clone(), &["acrpull-role-missing"], timeout) else { return };
        let c = Conformance::of(&run);
        assert_eq!(c.rows[0].detection, Detection::EngineFailed, "{command}: {c:?}\n{}", why(&run));
        assert_eq!(c.recall, Some(0.0));
        assert_eq!(run.scenarios[0].status, Status::FailedDetection, "{}", why(&run));
    }
}

#[test]
fn host_an_engine_that_writes_to_azure_is_refused_and_the_attempt_recorded() {
    // pull-secret-sp-invalid's inventory holds an application, so both ARM and Graph are tried.
    // Run unprivileged, it also tries to read the world's files beside its own folder, and
    // fails (exit 4) if it can.
    let (_, isolated) = grading::options();
    let command = format!("{}{}", engine("arm-writer.py"), if isolated { " --expect-isolated" } else { "" });
    let Some((run, _)) = grade_as(command, &["pull-secret-sp-invalid"], MINUTE) else { return };
    let s = &run.scenarios[0];
    assert!(
        s.refused.iter().any(|r| r.starts_with("ARM PATCH ") && r.contains("AuthorizationFailed")),
        "{:?}",
        s.refused
    );
    assert!(
        s.refused.iter().any(|r| r.starts_with("Graph POST ") && r.contains("Authorization_RequestDenied")),
        "{:?}",
        s.refused
    );
    // It diagnosed nothing (a miss, not an engine failure: it could read none of the world's
    // files), and the world was never its to change: the scenario still ran to its end
    // (revert and cleanup verified by the leftovers check).
    assert_eq!(s.status, Status::FailedDetection, "{}", s.reason);
    assert!(!s.grade.as_ref().unwrap().engine_failed, "{}", s.reason);
}
