//! An [`Inventory`]: the Azure resources (and Graph objects) that matter to one diagnosis.
//!
//! On disk it is one JSON document whose `resources` array holds ARM resource bodies exactly as
//! `GET` returns them, in any order; the `type` field decides how each is read. The emulator
//! exports its state in the same format and `pulldoctor diagnose --azure FILE` reads it.
//!
//! ```json
//! { "subscriptionId": "...", "tenantId": "...",
//!   "resources": [ {"id": "...", "type": "Microsoft.ContainerRegistry/registries", ...} ],
//!   "applications": [ {"id": "...", "appId": "...", "passwordCredentials": [...]} ],
//!   "servicePrincipals": [ ... ], "registryContent": [ ... ], "unavailable": [ ... ] }
//! ```

use serde::{Deserialize, Serialize};

use crate::authorization::{RoleAssignmentProperties, RoleDefinitionProperties};
use crate::compute::VirtualMachineScaleSetProperties;
use crate::container_registry::{RegistryContent, RegistryProperties};
use crate::container_service::ManagedClusterProperties;
use crate::graph::{Application, ServicePrincipal};
use crate::id::same_id;
use crate::network::*;
use crate::resource::Resource;

/// `Microsoft.Resources/resourceGroups` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupProperties {
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// Something the collector could not read, and why (e.g. `AuthorizationFailed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unavailable {
    /// What was asked for (a resource id, a Graph path).
    pub what: String,
    /// Why it could not be read.
    pub reason: String,
}

/// The resource types an inventory understands, with their ARM `type` strings.
pub mod types {
    /// Resource groups.
    pub const RESOURCE_GROUP: &str = "Microsoft.Resources/resourceGroups";
    /// AKS clusters.
    pub const MANAGED_CLUSTER: &str = "Microsoft.ContainerService/managedClusters";
    /// Registries.
    pub const REGISTRY: &str = "Microsoft.ContainerRegistry/registries";
    /// Role assignments.
    pub const ROLE_ASSIGNMENT: &str = "Microsoft.Authorization/roleAssignments";
    /// Role definitions.
    pub const ROLE_DEFINITION: &str = "Microsoft.Authorization/roleDefinitions";
    /// VNets.
    pub const VIRTUAL_NETWORK: &str = "Microsoft.Network/virtualNetworks";
    /// Subnets.
    pub const SUBNET: &str = "Microsoft.Network/virtualNetworks/subnets";
    /// Peerings.
    pub const PEERING: &str = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings";
    /// Private DNS zones.
    pub const PRIVATE_DNS_ZONE: &str = "Microsoft.Network/privateDnsZones";
    /// Private DNS zone VNet links.
    pub const VIRTUAL_NETWORK_LINK: &str = "Microsoft.Network/privateDnsZones/virtualNetworkLinks";
    /// Private DNS A record sets.
    pub const A_RECORD_SET: &str = "Microsoft.Network/privateDnsZones/A";
    /// Private endpoints.
    pub const PRIVATE_ENDPOINT: &str = "Microsoft.Network/privateEndpoints";
    /// NSGs.
    pub const NETWORK_SECURITY_GROUP: &str = "Microsoft.Network/networkSecurityGroups";
    /// Route tables.
    pub const ROUTE_TABLE: &str = "Microsoft.Network/routeTables";
    /// Public IPs.
    pub const PUBLIC_IP_ADDRESS: &str = "Microsoft.Network/publicIPAddresses";
    /// Scale sets.
    pub const VIRTUAL_MACHINE_SCALE_SET: &str = "Microsoft.Compute/virtualMachineScaleSets";
}

/// The typed contents of an inventory file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    /// The subscription the resources live in.
    pub subscription_id: Option<String>,
    /// The Entra tenant.
    pub tenant_id: Option<String>,
    /// Resource groups.
    pub resource_groups: Vec<Resource<ResourceGroupProperties>>,
    /// AKS clusters.
    pub managed_clusters: Vec<Resource<ManagedClusterProperties>>,
    /// Registries.
    pub registries: Vec<Resource<RegistryProperties>>,
    /// Role assignments (at any scope).
    pub role_assignments: Vec<Resource<RoleAssignmentProperties>>,
    /// Custom role definitions (built-ins are known by id).
    pub role_definitions: Vec<Resource<RoleDefinitionProperties>>,
    /// VNets (with embedded subnets and peerings).
    pub virtual_networks: Vec<Resource<VirtualNetworkProperties>>,
    /// Subnets listed on their own.
    pub subnets: Vec<Resource<SubnetProperties>>,
    /// Peerings listed on their own.
    pub peerings: Vec<Resource<PeeringProperties>>,
    /// Private DNS zones.
    pub private_dns_zones: Vec<Resource<PrivateDnsZoneProperties>>,
    /// Zone VNet links.
    pub virtual_network_links: Vec<Resource<VirtualNetworkLinkProperties>>,
    /// Zone A record sets.
    pub a_record_sets: Vec<Resource<ARecordSetProperties>>,
    /// Private endpoints.
    pub private_endpoints: Vec<Resource<PrivateEndpointProperties>>,
    /// NSGs.
    pub network_security_groups: Vec<Resource<NetworkSecurityGroupProperties>>,
    /// Route tables.
    pub route_tables: Vec<Resource<RouteTableProperties>>,
    /// Public IPs.
    pub public_ip_addresses: Vec<Resource<PublicIpAddressProperties>>,
    /// Scale sets.
    pub virtual_machine_scale_sets: Vec<Resource<VirtualMachineScaleSetProperties>>,
    /// Resources of other types, kept as they were.
    pub other: Vec<serde_json::Value>,
    /// Graph applications.
    pub applications: Vec<Application>,
    /// Graph service principals.
    pub service_principals: Vec<ServicePrincipal>,
    /// Registry repositories and tags.
    pub registry_content: Vec<RegistryContent>,
    /// Evidence that could not be collected.
    pub unavailable: Vec<Unavailable>,
}

/// Why an inventory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The document is not valid JSON or not an inventory.
    #[error("not an inventory document: {0}")]
    Json(#[from] serde_json::Error),
    /// One resource has the right type but the wrong shape.
    #[error("resource #{index} (`{id}`, type {resource_type}) has an unexpected shape: {source}")]
    Resource {
        /// Position in `resources`.
        index: usize,
        /// Its id.
        id: String,
        /// Its type.
        resource_type: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(default)]
    resources: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    applications: Vec<Application>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    service_principals: Vec<ServicePrincipal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    registry_content: Vec<RegistryContent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unavailable: Vec<Unavailable>,
}

fn push<P: serde::de::DeserializeOwned>(
    list: &mut Vec<Resource<P>>,
    index: usize,
    value: serde_json::Value,
) -> Result<(), InventoryError> {
    let id = value.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let resource_type = value.get("type").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let r = serde_json::from_value(value).map_err(|source| InventoryError::Resource {
        index,
        id,
        resource_type,
        source,
    })?;
    list.push(r);
    Ok(())
}

impl Inventory {
    /// Reads an inventory document.
    pub fn from_json(text: &str) -> Result<Self, InventoryError> {
        let raw: RawInventory = serde_json::from_str(text)?;
        let mut inv = Inventory {
            subscription_id: raw.subscription_id,
            tenant_id: raw.tenant_id,
            applications: raw.applications,
            service_principals: raw.service_principals,
            registry_content: raw.registry_content,
            unavailable: raw.unavailable,
            ..Default::default()
        };
        for (i, value) in raw.resources.into_iter().enumerate() {
            inv.add_value(i, value)?;
        }
        Ok(inv)
    }

    /// Adds one ARM resource body, dispatching on its `type` (unknown types land in `other`).
    pub fn add_value(&mut self, index: usize, mut value: serde_json::Value) -> Result<(), InventoryError> {
        let ty = value.get("type").and_then(|v| v.as_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        // ARM omits `properties` on some bodies; every typed properties struct has defaults.
        if let Some(obj) = value.as_object_mut() {
            obj.entry("properties").or_insert_with(|| serde_json::json!({}));
        }
        use types::*;
        let is = |t: &str| ty == t.to_ascii_lowercase();
        match () {
            _ if is(RESOURCE_GROUP) => push(&mut self.resource_groups, index, value),
            _ if is(MANAGED_CLUSTER) => push(&mut self.managed_clusters, index, value),
            _ if is(REGISTRY) => push(&mut self.registries, index, value),
            _ if is(ROLE_ASSIGNMENT) => push(&mut self.role_assignments, index, value),
            _ if is(ROLE_DEFINITION) => push(&mut self.role_definitions, index, value),
            _ if is(VIRTUAL_NETWORK) => push(&mut self.virtual_networks, index, value),
            _ if is(SUBNET) => push(&mut self.subnets, index, value),
            _ if is(PEERING) => push(&mut self.peerings, index, value),
            _ if is(PRIVATE_DNS_ZONE) => push(&mut self.private_dns_zones, index, value),
            _ if is(VIRTUAL_NETWORK_LINK) => push(&mut self.virtual_network_links, index, value),
            _ if is(A_RECORD_SET) => push(&mut self.a_record_sets, index, value),
            _ if is(PRIVATE_ENDPOINT) => push(&mut self.private_endpoints, index, value),
            _ if is(NETWORK_SECURITY_GROUP) => push(&mut self.network_security_groups, index, value),
            _ if is(ROUTE_TABLE) => push(&mut self.route_tables, index, value),
            _ if is(PUBLIC_IP_ADDRESS) => push(&mut self.public_ip_addresses, index, value),
            _ if is(VIRTUAL_MACHINE_SCALE_SET) => push(&mut self.virtual_machine_scale_sets, index, value),
            _ => {
                self.other.push(value);
                Ok(())
            }
        }
    }

    /// Writes the inventory document (pretty JSON).
    pub fn to_json(&self) -> String {
        fn all<P: Serialize>(out: &mut Vec<serde_json::Value>, list: &[Resource<P>]) {
            out.extend(list.iter().filter_map(|r| serde_json::to_value(r).ok()));
        }
        let mut resources = Vec::new();
        all(&mut resources, &self.resource_groups);
        all(&mut resources, &self.managed_clusters);
        all(&mut resources, &self.registries);
        all(&mut resources, &self.role_assignments);
        all(&mut resources, &self.role_definitions);
        all(&mut resources, &self.virtual_networks);
        all(&mut resources, &self.subnets);
        all(&mut resources, &self.peerings);
        all(&mut resources, &self.private_dns_zones);
        all(&mut resources, &self.virtual_network_links);
        all(&mut resources, &self.a_record_sets);
        all(&mut resources, &self.private_endpoints);
        all(&mut resources, &self.network_security_groups);
        all(&mut resources, &self.route_tables);
        all(&mut resources, &self.public_ip_addresses);
        all(&mut resources, &self.virtual_machine_scale_sets);
        resources.extend(self.other.iter().cloned());
        let raw = RawInventory {
            subscription_id: self.subscription_id.clone(),
            tenant_id: self.tenant_id.clone(),
            resources,
            applications: self.applications.clone(),
            service_principals: self.service_principals.clone(),
            registry_content: self.registry_content.clone(),
            unavailable: self.unavailable.clone(),
        };
        serde_json::to_string_pretty(&raw).unwrap_or_else(|_| "{}".to_string())
    }

    /// The registry whose login server is `host` (case-insensitive).
    pub fn registry_by_login_server(&self, host: &str) -> Option<&Resource<RegistryProperties>> {
        self.registries
            .iter()
            .find(|r| r.properties.login_server.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(host)))
    }

    /// Role assignments that apply at `scope` (assigned at the scope or any ancestor of it).
    pub fn role_assignments_at<'a>(
        &'a self,
        scope: &'a str,
    ) -> impl Iterator<Item = &'a Resource<RoleAssignmentProperties>> + 'a {
        self.role_assignments.iter().filter(move |a| {
            let assigned = a.properties.scope.clone().unwrap_or_else(|| {
                a.id.split("/providers/Microsoft.Authorization").next().unwrap_or_default().to_string()
            });
            crate::id::ResourceId::parse(scope).map(|s| s.is_within(&assigned)).unwrap_or(false)
        })
    }

    /// The VNet with `id`.
    pub fn virtual_network(&self, id: &str) -> Option<&Resource<VirtualNetworkProperties>> {
        self.virtual_networks.iter().find(|v| same_id(&v.id, id))
    }

    /// Every peering whose local side is `vnet_id`: embedded in the VNet and listed on their own.
    pub fn peerings_of(&self, vnet_id: &str) -> Vec<(String, PeeringProperties)> {
        let mut out: Vec<(String, PeeringProperties)> = Vec::new();
        if let Some(v) = self.virtual_network(vnet_id) {
            for p in &v.properties.virtual_network_peerings {
                out.push((
                    p.id.clone().unwrap_or_else(|| format!("{}/virtualNetworkPeerings/{}", v.id, p.name)),
                    p.properties.clone(),
                ));
            }
        }
        for p in &self.peerings {
            let parent = p.id.rsplitn(3, '/').nth(2).unwrap_or_default();
            if same_id(parent, vnet_id) && !out.iter().any(|(id, _)| same_id(id, &p.id)) {
                out.push((p.id.clone(), p.properties.clone()));
            }
        }
        out
    }

    /// The subnet with `id` (embedded in its VNet or listed on its own).
    pub fn subnet(&self, id: &str) -> Option<SubnetProperties> {
        if let Some(s) = self.subnets.iter().find(|s| same_id(&s.id, id)) {
            return Some(s.properties.clone());
        }
        let vnet_id = id.rsplitn(3, '/').nth(2)?;
        let name = id.rsplit('/').next()?;
        self.virtual_network(vnet_id)?
            .properties
            .subnets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.properties.clone())
    }

    /// The VNet that contains the subnet `subnet_id`.
    pub fn vnet_of_subnet(subnet_id: &str) -> Option<&str> {
        subnet_id.rsplitn(3, '/').nth(2)
    }

    /// VNet links of the zone named `zone` (any resource group).
    pub fn links_of_zone<'a>(
        &'a self,
        zone: &'a str,
    ) -> impl Iterator<Item = &'a Resource<VirtualNetworkLinkProperties>> + 'a {
        self.virtual_network_links.iter().filter(move |l| {
            crate::id::ResourceId::parse(&l.id)
                .ok()
                .and_then(|id| id.parent())
                .is_some_and(|z| z.name().eq_ignore_ascii_case(zone))
        })
    }

    /// The application with client id `app_id`.
    pub fn application(&self, app_id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The service principal with client id `app_id`.
    pub fn service_principal_of_app(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The address of the public IP with `id`.
    pub fn public_ip(&self, id: &str) -> Option<&str> {
        self.public_ip_addresses.iter().find(|p| same_id(&p.id, id)).and_then(|p| p.properties.ip_address.as_deref())
    }

    /// The content (repositories, tags) of the registry at `login_server`.
    pub fn content_of(&self, login_server: &str) -> Option<&RegistryContent> {
        self.registry_content.iter().find(|c| c.login_server.eq_ignore_ascii_case(login_server))
    }
}

impl Serialize for Inventory {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v: serde_json::Value = serde_json::from_str(&self.to_json()).map_err(serde::ser::Error::custom)?;
        v.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Inventory {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(deserializer)?;
        Inventory::from_json(&v.to_string()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "subscriptionId": "s1",
      "resources": [
        {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks-vnet", "name": "aks-vnet",
         "type": "Microsoft.Network/virtualNetworks", "location": "westeurope",
         "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
           "subnets": [{"name": "nodes", "id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks-vnet/subnets/nodes", "properties": {"addressPrefix": "10.1.0.0/24"}}],
           "virtualNetworkPeerings": [{"name": "to-hub", "properties": {"remoteVirtualNetwork": {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/hub"}, "peeringState": "Connected", "allowVirtualNetworkAccess": true}}]}},
        {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io/virtualNetworkLinks/aks", "name": "aks",
         "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "location": "global",
         "properties": {"virtualNetwork": {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks-vnet"}, "registrationEnabled": false}},
        {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/x", "type": "Microsoft.Web/sites", "name": "x"}
      ]
    }"#;

    #[test]
    fn reads_and_round_trips() {
        let inv = Inventory::from_json(DOC).unwrap();
        assert_eq!(inv.virtual_networks.len(), 1);
        assert_eq!(inv.virtual_network_links.len(), 1);
        assert_eq!(inv.other.len(), 1);
        let vnet = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/AKS-VNET";
        let peerings = inv.peerings_of(vnet);
        assert_eq!(peerings.len(), 1);
        assert!(peerings[0].1.is_connected());
        assert_eq!(inv.links_of_zone("privatelink.azurecr.io").count(), 1);
        assert_eq!(
            inv.subnet(&format!("{vnet}/subnets/nodes")).unwrap().address_prefix.as_deref(),
            Some("10.1.0.0/24")
        );
        let again = Inventory::from_json(&inv.to_json()).unwrap();
        assert_eq!(again, inv);
    }

    #[test]
    fn bad_resource_is_named() {
        let doc = r#"{"resources": [{"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Authorization/roleAssignments/a", "type": "Microsoft.Authorization/roleAssignments", "properties": {"principalId": 7}}]}"#;
        let err = Inventory::from_json(doc).unwrap_err().to_string();
        assert!(err.contains("roleAssignments/a"), "{err}");
    }
}
