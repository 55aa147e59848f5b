//! What a scenario expects from the engine and the world.

use pulldoctor::FindingCode;
use pulldoctor::symptom::SymptomClass;
use serde::{Deserialize, Serialize};

/// How the fault must be remediated for the scenario to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Remediation {
    /// The engine's plan is applied as is and must make the workload healthy.
    Automatic,
    /// The engine must propose the right action (it needs a person); the harness then applies the
    /// scenario's own inverse and checks recovery.
    Proposed,
    /// Nothing to remediate (the healthy baseline).
    None,
}

/// The assertions of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectations {
    /// The symptom class the node's pull must show once the fault is live (verify-injected).
    /// Omitted only when there is no fault: the pull must then succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptom: Option<SymptomClass>,
    /// A regular expression the kubelet's event text must match once the fault is live
    /// (verify-injected). Required with a fault. The harness judges the injected symptom with
    /// this alone, never with an engine's parser; `symptom` is its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessagePattern>,
    /// The finding codes the engine must report. Any other code fails the scenario.
    #[serde(default)]
    pub findings: Vec<FindingCode>,
    /// The codes this fault is most easily mistaken for; reported by name when an engine
    /// confuses them.
    #[serde(default)]
    pub forbid: Vec<FindingCode>,
    /// How remediation must happen.
    pub remediation: Remediation,
    /// The kinds of action a right fix may take (documentation for people and engine authors).
    /// The grade does not rest on it: a machine-applicable proposal is applied and must make the
    /// workload recover, and a `manual` one counts only when its typed change is the
    /// scenario's own inverse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionKind>,
    /// How the workload comes back after the fix: a rollout restart (what people do, the
    /// default), or the kubelet's own image pull back-off retrying the failing pod, with
    /// nothing restarted.
    #[serde(default, skip_serializing_if = "Recovery::is_restart")]
    pub recovery: Recovery,
}

/// How the workload comes back after a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Recovery {
    /// `kubectl rollout restart`: a new pod pulls at once.
    #[default]
    Restart,
    /// Nothing is restarted: the failing pod's next pull, when the kubelet's back-off lets it.
    BackOff,
}

impl Recovery {
    /// Whether this is the default.
    pub fn is_restart(&self) -> bool {
        *self == Recovery::Restart
    }
}

/// A kind of remediation action, by its name in the engine contract (`plan.actions[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    /// Assign a role at a scope.
    CreateRoleAssignment,
    /// Link a private DNS zone to a VNet.
    CreateVnetLink,
    /// Create or reconnect a VNet peering.
    CreatePeering,
    /// Allow an address in the registry firewall.
    AddRegistryIpRule,
    /// Add an NSG rule that allows the traffic.
    AllowNsgRule,
    /// Change a route's next hop.
    SetRouteNextHop,
    /// Approve a registry's private endpoint connection.
    ApprovePrivateEndpointConnection,
    /// Reconcile the cluster (re-attach the kubelet identity).
    ReconcileCluster,
    /// Give a service principal a new secret.
    RotateServicePrincipalSecret,
    /// Replace a pull secret's credentials.
    ReplacePullSecret,
    /// Change a workload's node selector.
    SetNodeSelector,
    /// Change a workload's image.
    SetImage,
    /// A person's step, with commands.
    Manual,
}

impl ActionKind {
    /// The kind of `action`, read from its contract name.
    pub fn of(action: &pulldoctor::Action) -> Option<Self> {
        let tag = serde_json::to_value(action).ok()?.get("action")?.clone();
        serde_json::from_value(tag).ok()
    }
}

/// A regular expression over the kubelet's event text (`expect.message`), checked when the
/// scenario is loaded.
#[derive(Debug, Clone)]
pub struct MessagePattern(regex::Regex);

impl MessagePattern {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(Self)
    }

    /// Whether `message` matches.
    pub fn is_match(&self, message: &str) -> bool {
        self.0.is_match(message)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for MessagePattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MessagePattern {}

impl std::fmt::Display for MessagePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MessagePattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessagePattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(&text)
            .map_err(|e| serde::de::Error::custom(format!("`expect.message` is not a valid regular expression: {e}")))
    }
}

impl schemars::JsonSchema for MessagePattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MessagePattern".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "regex",
            "description": "A regular expression (Rust regex syntax) over the kubelet's event text."
        })
    }
}
