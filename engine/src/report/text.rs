//! Human rendering: the cause, the proof, the fix, readable at a glance.

use std::fmt::Write;

use super::{Report, Status};

/// Renders a report for a person.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let warnings = report.findings.iter().filter(|f| !f.code.is_cause()).count();
    let warned = if warnings > 0 {
        format!(" ({warnings} warning(s) about what pulldoctor could not read, below)")
    } else {
        String::new()
    };
    match report.status {
        Status::Healthy => {
            let _ = writeln!(out, "healthy: no pod is waiting on an image pull{warned}");
        }
        Status::Undiagnosed => {
            let _ = writeln!(out, "{} failing pull(s), no known cause found{warned}:", report.failing.len());
            for f in &report.failing {
                let _ = writeln!(
                    out,
                    "  {}/{} [{}] {}: {}",
                    f.pod.namespace, f.pod.name, f.pod.container, f.symptom.class, f.message
                );
            }
        }
        Status::Findings => {
            let _ = writeln!(
                out,
                "{} finding(s) for {} failing pull(s){warned}",
                report.findings.len() - warnings,
                report.failing.len()
            );
        }
    }
    for (i, f) in report.findings.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}. {}  ({:?}, {:?} confidence)", i + 1, f.code, f.severity, f.confidence);
        let _ = writeln!(out, "   {}", f.summary);
        if !f.pods.is_empty() {
            let shown: Vec<String> = f.pods.iter().take(5).map(|p| format!("{}/{}", p.namespace, p.name)).collect();
            let more = f.pods.len().saturating_sub(5);
            let _ = writeln!(
                out,
                "   pods: {}{}",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
        }
        if !f.blamed.is_empty() {
            let _ = writeln!(out, "   blame:");
            for b in &f.blamed {
                let note = b.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default();
                let _ = writeln!(out, "     {} {}{}", b.kind, b.id, note);
            }
        }
        if !f.evidence.is_empty() {
            let _ = writeln!(out, "   proof:");
            for e in &f.evidence {
                let _ = writeln!(out, "     - {e}");
            }
        }
        if !f.plan.actions.is_empty() {
            let _ = writeln!(
                out,
                "   fix{}:",
                if f.plan.is_automatic() { " (pulldoctor fix --apply can do this)" } else { "" }
            );
            // A command shared by consecutive actions (the `SECRET=$(...)` that both a secret
            // rotation and the pull secret using it start with) is run once.
            let mut shown: Vec<String> = Vec::new();
            for a in &f.plan.actions {
                let _ = writeln!(out, "     * {}", a.describe());
                for c in a.commands() {
                    if shown.contains(&c) {
                        continue;
                    }
                    let _ = writeln!(out, "         $ {c}");
                    shown.push(c);
                }
            }
        }
    }
    if !report.unavailable.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "evidence not available:");
        for u in &report.unavailable {
            let _ = writeln!(out, "  {}: {}", u.what, u.reason);
        }
    }
    out
}
