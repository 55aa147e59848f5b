//! Resource ids and names derived from a baseline, the same on every backend.

use crate::baseline::{Baseline, Peering};

/// The subscription and tenant a baseline is provisioned into, and the id scheme.
#[derive(Debug, Clone)]
pub struct World {
    /// Subscription id.
    pub subscription: String,
    /// Entra tenant id.
    pub tenant: String,
}

impl World {
    /// A world in `subscription` / `tenant`.
    pub fn new(subscription: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self { subscription: subscription.into(), tenant: tenant.into() }
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    pub fn group(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.subscription)
    }

    /// A resource id in `rg`.
    pub fn resource(&self, rg: &str, ty: &str, name: &str) -> String {
        format!("{}/providers/{ty}/{name}", self.group(rg))
    }

    /// The cluster's id.
    pub fn cluster(&self, b: &Baseline) -> String {
        self.resource(&b.cluster.resource_group, "Microsoft.ContainerService/managedClusters", &b.cluster.name)
    }

    /// The cluster's node resource group (`MC_{rg}_{name}_{location}`).
    pub fn node_resource_group(&self, b: &Baseline) -> String {
        format!("MC_{}_{}_{}", b.cluster.resource_group, b.cluster.name, b.location)
    }

    /// The kubelet identity's id (a user-assigned identity in the cluster's group).
    pub fn kubelet_identity(&self, b: &Baseline) -> String {
        self.resource(
            &b.cluster.resource_group,
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            &format!("{}-agentpool", b.cluster.name),
        )
    }

    /// The registry's id.
    pub fn registry(&self, b: &Baseline) -> String {
        self.resource(&b.registry.resource_group, "Microsoft.ContainerRegistry/registries", &b.registry.name)
    }

    /// A VNet's id.
    pub fn vnet(&self, b: &Baseline, name: &str) -> String {
        let rg = b.vnet(name).map(|v| v.resource_group.as_str()).unwrap_or_default();
        self.resource(rg, "Microsoft.Network/virtualNetworks", name)
    }

    /// A subnet's id from `VNET/SUBNET`.
    pub fn subnet(&self, b: &Baseline, path: &str) -> String {
        let (vnet, subnet) = path.split_once('/').unwrap_or((path, ""));
        format!("{}/subnets/{subnet}", self.vnet(b, vnet))
    }

    /// The peering from `from` to `to`.
    pub fn peering(&self, b: &Baseline, from: &str, to: &str) -> String {
        format!("{}/virtualNetworkPeerings/{}", self.vnet(b, from), Peering::name(from, to))
    }

    /// A private DNS zone's id.
    pub fn zone(&self, b: &Baseline, zone: &str) -> String {
        let rg =
            b.private_dns_zones.iter().find(|z| z.name == zone).map(|z| z.resource_group.as_str()).unwrap_or_default();
        self.resource(rg, "Microsoft.Network/privateDnsZones", zone)
    }

    /// The link of `zone` to `vnet` (named `{vnet}-link`).
    pub fn vnet_link(&self, b: &Baseline, zone: &str, vnet: &str) -> String {
        format!("{}/virtualNetworkLinks/{vnet}-link", self.zone(b, zone))
    }

    /// An NSG's id.
    pub fn nsg(&self, b: &Baseline, name: &str) -> String {
        let rg = b.nsgs.iter().find(|n| n.name == name).map(|n| n.resource_group.as_str()).unwrap_or_default();
        self.resource(rg, "Microsoft.Network/networkSecurityGroups", name)
    }

    /// A route table's id.
    pub fn route_table(&self, b: &Baseline, name: &str) -> String {
        let rg = b.route_tables.iter().find(|r| r.name == name).map(|r| r.resource_group.as_str()).unwrap_or_default();
        self.resource(rg, "Microsoft.Network/routeTables", name)
    }

    /// A public IP's id.
    pub fn public_ip(&self, b: &Baseline, name: &str) -> String {
        let rg = b.public_ips.iter().find(|p| p.name == name).map(|p| p.resource_group.as_str()).unwrap_or_default();
        self.resource(rg, "Microsoft.Network/publicIPAddresses", name)
    }

    /// The private endpoint's id.
    pub fn private_endpoint(&self, b: &Baseline) -> Option<String> {
        let pe = b.registry.private_endpoint.as_ref()?;
        let vnet = pe.subnet.split('/').next().unwrap_or_default();
        let rg = b.vnet(vnet).map(|v| v.resource_group.clone()).unwrap_or_default();
        Some(self.resource(&rg, "Microsoft.Network/privateEndpoints", &pe.name))
    }

    /// The scope of a role assignment.
    pub fn role_scope(&self, b: &Baseline, scope: crate::baseline::RoleScope) -> String {
        match scope {
            crate::baseline::RoleScope::Registry => self.registry(b),
            crate::baseline::RoleScope::RegistryResourceGroup => self.group(&b.registry.resource_group),
        }
    }

    /// A role assignment's id: its name is a GUID derived from scope, principal and role, so
    /// re-provisioning is idempotent and faults can name it.
    pub fn role_assignment(&self, scope: &str, principal: &str, role: &str) -> String {
        format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", stable_guid(&[scope, principal, role]))
    }

    /// The Entra token endpoint path for this tenant.
    pub fn token_path(&self) -> String {
        format!("/{}/oauth2/v2.0/token", self.tenant)
    }
}

/// A GUID-shaped name derived from `parts` (FNV-1a 128), stable across runs.
pub fn stable_guid(parts: &[&str]) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for p in parts {
        for b in p.to_ascii_lowercase().bytes().chain([0u8]) {
            h ^= b as u128;
            h = h.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    let x = format!("{h:032x}");
    format!("{}-{}-4{}-a{}-{}", &x[0..8], &x[8..12], &x[13..16], &x[17..20], &x[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable_and_distinct() {
        let a = stable_guid(&["/s/x", "kubelet", "AcrPull"]);
        assert_eq!(a, stable_guid(&["/S/X", "kubelet", "acrpull"]));
        assert_ne!(a, stable_guid(&["/s/x", "kubelet", "Reader"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
