//! `Microsoft.ContainerService/managedClusters`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::SubResource;

/// The client id AKS shows in `servicePrincipalProfile` when the cluster uses managed identity.
pub const MSI_CLIENT_ID: &str = "msi";

/// The properties of a managed cluster that matter to image pulls.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProperties {
    /// `Succeeded`, `Updating`, `Failed`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// The Kubernetes version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The DNS prefix of the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_prefix: Option<String>,
    /// The resource group holding the nodes (`MC_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_resource_group: Option<String>,
    /// Node pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    /// The cluster's service principal (`clientId: "msi"` for managed-identity clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_profile: Option<ServicePrincipalProfile>,
    /// Identities AKS uses; the only key is `kubeletidentity`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity_profile: BTreeMap<String, KubeletIdentity>,
    /// Networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<NetworkProfile>,
}

impl ManagedClusterProperties {
    /// The kubelet identity, when the cluster uses managed identity.
    pub fn kubelet_identity(&self) -> Option<&KubeletIdentity> {
        self.identity_profile.iter().find(|(k, _)| k.eq_ignore_ascii_case("kubeletidentity")).map(|(_, v)| v)
    }

    /// The service principal's client id, when the cluster authenticates with one (not `msi`).
    pub fn service_principal_client_id(&self) -> Option<&str> {
        self.service_principal_profile
            .as_ref()
            .map(|p| p.client_id.as_str())
            .filter(|c| !c.eq_ignore_ascii_case(MSI_CLIENT_ID) && !c.is_empty())
    }
}

/// `identityProfile.kubeletidentity`: `{resourceId, clientId, objectId}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletIdentity {
    /// The user-assigned identity's resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Its client (application) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its object (principal) id: the principal role assignments name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
}

/// A node pool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProfile {
    /// Pool name (`nodepool1`, `win1`...).
    pub name: String,
    /// Node count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `Linux` or `Windows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// `Ubuntu`, `AzureLinux`, `Windows2022`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_sku: Option<String>,
    /// VM size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// `System` or `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The subnet the nodes sit in.
    #[serde(rename = "vnetSubnetID", default, skip_serializing_if = "Option::is_none")]
    pub vnet_subnet_id: Option<String>,
    /// Labels given to every node of the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
}

/// `servicePrincipalProfile`: `{clientId, secret}` (the secret is write-only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalProfile {
    /// The application (client) id, or `msi`.
    pub client_id: String,
    /// The secret; only sent on writes, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `networkProfile` (only what egress and DNS need).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// `azure`, `kubenet`, `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_plugin: Option<String>,
    /// `loadBalancer`, `userDefinedRouting`, `managedNATGateway`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_type: Option<String>,
    /// The load balancer's outbound settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_profile: Option<LoadBalancerProfile>,
}

/// `networkProfile.loadBalancerProfile`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerProfile {
    /// The public IPs the cluster's egress actually uses.
    #[serde(rename = "effectiveOutboundIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub effective_outbound_ips: Vec<SubResource>,
}

/// Body of `POST .../managedClusters/{name}/resetServicePrincipalProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetServicePrincipalProfile {
    /// The application (client) id.
    pub client_id: String,
    /// The new secret.
    pub secret: String,
}
