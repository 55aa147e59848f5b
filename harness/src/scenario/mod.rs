//! Scenarios: `scenarios/NAME.yaml`, one fault each.
//!
//! ```
//! use pullproof::scenario::Scenario;
//!
//! let yaml = r#"
//! name: private-dns-missing
//! summary: The cluster VNet is not linked to privatelink.azurecr.io.
//! cause: "Cause 3: 403 Forbidden: private DNS zone not linked"
//! tags: [network, dns]
//! backends: [host, kind, aks]
//! baseline: private-registry
//! fault:
//!   deleteVnetLink: { zone: privatelink.azurecr.io, vnet: aks-vnet }
//! expect:
//!   symptom: forbidden
//!   message: 'failed to resolve (image|reference) .*: 403 Forbidden'
//!   findings: [PRIVATE_DNS_ZONE_NOT_LINKED]
//!   forbid: [ACR_FIREWALL_DENIES_EGRESS]
//!   remediation: automatic
//! "#;
//! let s = Scenario::from_yaml(yaml).unwrap();
//! assert_eq!(s.fault.kind(), "deleteVnetLink");
//! ```

mod budget;
mod expect;
mod fault;

pub use budget::{Budget, Budgets};
pub use expect::{ActionKind, Expectations, MessagePattern, Recovery, Remediation};
pub use fault::{Fault, Mutation};

use serde::{Deserialize, Serialize};

/// Where a scenario can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackendKind {
    /// Real containerd, registry and network namespaces on this Linux host, with the emulator.
    Host,
    /// A kind cluster and a local registry, with the emulator.
    Kind,
    /// Real AKS and ACR in a sandbox subscription.
    Aks,
}

impl BackendKind {
    /// Every backend.
    pub const ALL: [BackendKind; 3] = [BackendKind::Host, BackendKind::Kind, BackendKind::Aks];

    /// The name as written in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Host => "host",
            BackendKind::Kind => "kind",
            BackendKind::Aks => "aks",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario: a healthy baseline, one fault, and what must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "pullproof scenario",
    description = "A healthy world, exactly one fault, and what a diagnosis engine must conclude."
)]
pub struct Scenario {
    /// The scenario's name: the file stem, lowercase words joined by `-`.
    pub name: String,
    /// What happens, in a sentence or two.
    pub summary: String,
    /// The cause from Microsoft's "Fail to pull images from Azure Container Registry to AKS
    /// cluster" troubleshooting article that this reproduces.
    pub cause: String,
    /// Free-form labels for selection (`--tag network`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Backends that can realise this fault.
    pub backends: Vec<BackendKind>,
    /// The baseline to start from: `fixtures/baselines/NAME.yaml`.
    pub baseline: String,
    /// Exactly one fault.
    pub fault: Fault,
    /// What the engine and the world must show.
    pub expect: Expectations,
    /// Per-phase time budgets.
    #[serde(default)]
    pub budgets: Budgets,
}

impl Scenario {
    /// Parses a scenario from YAML (no cross-file checks).
    pub fn from_yaml(text: &str) -> Result<Self, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }

    /// Whether the scenario has `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// The JSON Schema of scenario files (what `scenarios/schema.json` holds).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Scenario);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// The JSON Schema of baseline files (what `fixtures/baselines/schema.json` holds).
pub fn baseline_schema_json() -> String {
    let schema = schemars::schema_for!(crate::baseline::Baseline);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
