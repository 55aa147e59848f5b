//! Remediation: a plan's actions as requests ([`translate`], pure) and their execution
//! ([`Executor`]), with an audit trail.
//!
//! - Dry-run by default: the executor reads the current state and says for each step whether
//!   it is already done, would change something, or needs a person. Nothing is written.
//! - With `apply`, each step is checked before it is written (idempotent: a second run finds
//!   every step done), written, then read again to record the state after. One exception: a
//!   service-principal cluster's secret reset, whose result no API shows, runs whenever the plan
//!   asks for it (see [`translate`]'s module docs).
//! - A step whose later write fails after earlier ones succeeded says so; a rerun repeats the
//!   whole step (writes are creates and updates, so repeating them is safe).
//! - Write `POST`s are never re-sent by azure-rest's retries once the service may have received
//!   them (a second `addPassword` would make a second secret); reads are.
//! - Only creates and updates. Deleting is never automated; a step that would overwrite some
//!   other resource of the user's (a link or rule of the same name) stops as a conflict.
//! - A write the engine's identity may not make (403) ends as `manual`, with the commands a
//!   person with the rights runs.
//! - The audit trail says what, where, the state before and after, never a secret value.

mod execute;
pub mod kubernetes;
pub mod translate;

use std::fmt::Write as _;

use serde::Serialize;

pub use execute::{Connections, Executor};
pub use kubernetes::{ApiFailure, ApiFuture, KubernetesApi};
pub use translate::{ObjectRef, PlanContext, Step, translate};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Written and verified.
    Applied,
    /// The check found it done: nothing written.
    AlreadyDone,
    /// Dry-run: the check says it would be written.
    WouldApply,
    /// Dry-run without a connection to check the state.
    Planned,
    /// A person must do it (commands given).
    Manual,
    /// Writing would overwrite another resource of the user's: not done.
    Conflict,
    /// A request failed.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadyDone => "already done",
            Outcome::WouldApply => "would apply",
            Outcome::Planned => "planned",
            Outcome::Manual => "manual",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// What (one line).
    pub what: String,
    /// Where (a resource id or `namespace/name`).
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The state the check looked at, before.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub before: serde_json::Value,
    /// The same state after the writes.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub after: serde_json::Value,
    /// The write requests sent (or that would be), `METHOD path`.
    pub requests: Vec<String>,
    /// Why it failed, conflicts, or needs a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Commands for a person.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// The audit trail of one `pulldoctor fix` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// Whether writes were allowed (`--apply`).
    pub applied: bool,
    /// One record per step.
    pub records: Vec<AuditRecord>,
}

impl Audit {
    /// Whether any step failed or conflicted.
    pub fn failed(&self) -> bool {
        self.records.iter().any(|r| matches!(r.outcome, Outcome::Failed | Outcome::Conflict))
    }

    /// Whether something remains to be done (by the tool or a person).
    pub fn pending(&self) -> bool {
        self.records.iter().any(|r| !matches!(r.outcome, Outcome::Applied | Outcome::AlreadyDone))
    }

    /// Whether every step was found done (a second run after a successful fix).
    pub fn already_fixed(&self) -> bool {
        !self.records.is_empty() && self.records.iter().all(|r| r.outcome == Outcome::AlreadyDone)
    }

    /// The exit code: 0 nothing left to do, 1 something left (dry-run or manual steps), 2 a step
    /// failed.
    pub fn exit_code(&self) -> u8 {
        if self.failed() {
            crate::report::exit::ERROR
        } else if self.pending() {
            crate::report::exit::FINDINGS
        } else {
            crate::report::exit::HEALTHY
        }
    }
}

/// The plan as a person reads it: each step, its requests, and manual commands.
pub fn render_plan(steps: &[Step]) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        let _ = writeln!(out, "nothing to fix");
        return out;
    }
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, s.summary);
        match &s.manual {
            Some(m) => {
                let _ = writeln!(out, "   needs a person: {}", m.description);
                for c in &m.commands {
                    let _ = writeln!(out, "     $ {c}");
                }
            }
            None => {
                for r in &s.reads {
                    let _ = writeln!(out, "   check  {}", r.line());
                }
                for w in &s.writes {
                    let _ = writeln!(out, "   write  {}", w.request.line());
                }
            }
        }
    }
    out
}

/// The audit trail as text.
pub fn render_audit(audit: &Audit) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "{}", if audit.applied { "applied:" } else { "dry run (nothing written; pass --apply to fix):" });
    for (i, r) in audit.records.iter().enumerate() {
        let _ = writeln!(out, "{}. [{}] {}", i + 1, r.outcome.as_str(), r.what);
        if !r.target.is_empty() {
            let _ = writeln!(out, "   where:  {}", r.target);
        }
        if !r.before.is_null() {
            let _ = writeln!(out, "   before: {}", r.before);
        }
        if !r.after.is_null() {
            let _ = writeln!(out, "   after:  {}", r.after);
        }
        for q in &r.requests {
            let _ = writeln!(
                out,
                "   {} {q}",
                if audit.applied && r.outcome == Outcome::Applied { "sent" } else { "would send" }
            );
        }
        if let Some(n) = &r.note {
            let _ = writeln!(out, "   note:   {n}");
        }
        for c in &r.commands {
            let _ = writeln!(out, "     $ {c}");
        }
    }
    out
}
