//! The engine's reach: evidence it could not read becomes one finding that says what was
//! missing, why, and which permission would let pulldoctor see it. It names no cause.

use super::Context;
use crate::finding::{Blame, Confidence, Finding, FindingCode, Severity};
use crate::plan::{Action, Plan};

/// `EVIDENCE_UNAVAILABLE` when any read was refused or failed.
pub fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let missing = &ctx.evidence.azure.unavailable;
    if missing.is_empty() {
        return vec![];
    }
    let azure: Vec<&str> = missing.iter().map(|u| u.what.as_str()).filter(|w| !w.starts_with("kubernetes")).collect();
    let kube = missing.iter().any(|u| u.what.starts_with("kubernetes"));
    let mut commands = Vec::new();
    if !azure.is_empty() {
        commands.push(
            "az role assignment create --assignee <pulldoctor's identity> --role Reader --scope <the subscription or the resource groups of the cluster, registry and VNets>"
                .to_string(),
        );
    }
    if kube {
        commands.push(
            "kubectl create clusterrolebinding pulldoctor-view --clusterrole=view --user=<pulldoctor's user>".into(),
        );
        commands.push(
            "# pull secrets need `get` on secrets in the workload's namespace (the view role does not grant it)".into(),
        );
    }
    vec![Finding {
        code: FindingCode::EvidenceUnavailable,
        severity: Severity::Warning,
        confidence: Confidence::High,
        summary: format!(
            "pulldoctor could not read {} piece(s) of evidence; findings that depend on them have lower confidence, and some causes may be missed",
            missing.len()
        ),
        blamed: missing.iter().map(|u| Blame::new("Evidence", u.what.clone()).note(u.reason.clone())).collect(),
        evidence: missing.iter().map(|u| format!("{}: {}", u.what, u.reason)).collect(),
        pods: ctx.failures.iter().map(|f| f.pod.clone()).collect(),
        plan: Plan::new(vec![Action::Manual {
            description: "give pulldoctor's identity read access to what it could not read".into(),
            commands,
        }]),
    }]
}
