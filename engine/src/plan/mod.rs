//! Remediation plans: typed actions, planned purely, applied by a shell.
//!
//! The engine only creates or updates; it never deletes a user's resource. Actions that need a
//! human carry the exact `az`/`kubectl` commands instead.

mod action;

pub use action::{Action, Change, ChangeOperation, WorkloadRef};

use serde::{Deserialize, Serialize};

/// An ordered list of actions that fixes one finding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// Applied in order.
    pub actions: Vec<Action>,
}

impl Plan {
    /// A plan of `actions`.
    pub fn new(actions: Vec<Action>) -> Self {
        Self { actions }
    }

    /// Whether every action can be applied without a human.
    pub fn is_automatic(&self) -> bool {
        !self.actions.is_empty() && self.actions.iter().all(|a| !a.needs_human())
    }
}
