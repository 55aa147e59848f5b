//! `Microsoft.Compute/virtualMachineScaleSets` (only the identity matters: IMDS answers for the
//! identities attached to the node's scale set).

use serde::{Deserialize, Serialize};

/// Scale set properties kept by pullproof.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineScaleSetProperties {
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The scale set's unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
}

/// The AKS tag naming the pool a scale set backs.
pub const POOL_NAME_TAG: &str = "aks-managed-poolName";
