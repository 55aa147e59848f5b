//! `Microsoft.Network`: virtual networks, subnets, peerings, private DNS zones and their VNet
//! links and A records, private endpoints, NSGs, route tables and public IPs.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::resource::SubResource;

/// `{addressPrefixes: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    /// CIDR prefixes.
    #[serde(default)]
    pub address_prefixes: Vec<String>,
}

/// A child resource as ARM embeds it: `{id, name, properties}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Child<P> {
    /// The child's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The child's name.
    #[serde(default)]
    pub name: String,
    /// Its properties.
    pub properties: P,
}

/// `Microsoft.Network/virtualNetworks` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkProperties {
    /// The VNet's address space.
    #[serde(default)]
    pub address_space: AddressSpace,
    /// Subnets.
    #[serde(default)]
    pub subnets: Vec<Child<SubnetProperties>>,
    /// Peerings from this VNet.
    #[serde(default)]
    pub virtual_network_peerings: Vec<Child<PeeringProperties>>,
    /// The DNS servers its machines are given (absent or empty: Azure's, 168.63.129.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_options: Option<DhcpOptions>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// A VNet's `dhcpOptions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DhcpOptions {
    /// Custom DNS server addresses, in order.
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

impl VirtualNetworkProperties {
    /// The custom DNS servers (empty: Azure-provided DNS).
    pub fn dns_servers(&self) -> &[String] {
        self.dhcp_options.as_ref().map(|d| d.dns_servers.as_slice()).unwrap_or_default()
    }
}

/// `Microsoft.Network/virtualNetworks/subnets` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    /// The subnet's prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_prefix: Option<String>,
    /// The NSG applied to the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_security_group: Option<SubResource>,
    /// The route table applied to the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<SubResource>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// `Microsoft.Network/virtualNetworks/virtualNetworkPeerings` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeeringProperties {
    /// The VNet on the other side.
    pub remote_virtual_network: SubResource,
    /// Whether VMs in the two VNets may talk.
    #[serde(default = "yes")]
    pub allow_virtual_network_access: bool,
    /// Whether forwarded traffic is allowed.
    #[serde(default)]
    pub allow_forwarded_traffic: bool,
    /// `Initiated`, `Connected` or `Disconnected`; only `Connected` carries traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peering_state: Option<String>,
    /// `FullyInSync`, `RemoteNotInSync`, `LocalNotInSync`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peering_sync_level: Option<String>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

fn yes() -> bool {
    true
}

/// Peering states.
pub mod peering_state {
    /// Traffic flows.
    pub const CONNECTED: &str = "Connected";
    /// One side exists; the other has not been created.
    pub const INITIATED: &str = "Initiated";
    /// The other side was deleted; this side must be re-created.
    pub const DISCONNECTED: &str = "Disconnected";
}

impl PeeringProperties {
    /// Whether this side carries traffic.
    pub fn is_connected(&self) -> bool {
        self.allow_virtual_network_access
            && self.peering_state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(peering_state::CONNECTED))
    }
}

/// `Microsoft.Network/privateDnsZones` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateDnsZoneProperties {
    /// Number of record sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_record_sets: Option<u64>,
    /// Number of VNet links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_virtual_network_links: Option<u64>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// The private DNS zone ACR private endpoints use in public Azure.
pub const ACR_PRIVATE_ZONE: &str = "privatelink.azurecr.io";

/// `Microsoft.Network/privateDnsZones/virtualNetworkLinks` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkLinkProperties {
    /// The linked VNet.
    pub virtual_network: SubResource,
    /// Auto-registration of VM records.
    #[serde(default)]
    pub registration_enabled: bool,
    /// `InProgress` or `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_network_link_state: Option<String>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// `Microsoft.Network/privateDnsZones/A` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ARecordSetProperties {
    /// Time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The fully qualified name (with trailing dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// The addresses.
    #[serde(default)]
    pub a_records: Vec<ARecord>,
}

/// `{ipv4Address}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ARecord {
    /// The address.
    pub ipv4_address: String,
}

/// `Microsoft.Network/privateEndpoints` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpointProperties {
    /// The subnet the endpoint's NIC sits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubResource>,
    /// Connections to the target service (the registry).
    #[serde(default)]
    pub private_link_service_connections: Vec<Child<PrivateLinkServiceConnectionProperties>>,
    /// Connections that wait for the target's owner to approve them (`Pending` until then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_private_link_service_connections: Vec<Child<PrivateLinkServiceConnectionProperties>>,
    /// The FQDN-to-IP pairs of the endpoint.
    #[serde(default)]
    pub custom_dns_configs: Vec<CustomDnsConfig>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// A private link service connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateLinkServiceConnectionProperties {
    /// The target resource (the registry id).
    #[serde(default)]
    pub private_link_service_id: String,
    /// `["registry"]`.
    #[serde(default)]
    pub group_ids: Vec<String>,
    /// Approval state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_service_connection_state: Option<crate::container_registry::ConnectionState>,
}

impl PrivateEndpointProperties {
    /// Every connection, automatic and manual.
    pub fn connections(&self) -> impl Iterator<Item = &Child<PrivateLinkServiceConnectionProperties>> {
        self.private_link_service_connections.iter().chain(&self.manual_private_link_service_connections)
    }
}

/// `{fqdn, ipAddresses}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomDnsConfig {
    /// e.g. `myacr.privatelink.azurecr.io`... or `myacr.azurecr.io`.
    pub fqdn: String,
    /// The endpoint's addresses for that name.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
}

/// `Microsoft.Network/networkSecurityGroups` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSecurityGroupProperties {
    /// User rules.
    #[serde(default)]
    pub security_rules: Vec<Child<SecurityRuleProperties>>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// A security rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleProperties {
    /// `Tcp`, `Udp`, `*`...
    #[serde(default = "any")]
    pub protocol: String,
    /// `*` or a port/range.
    #[serde(default = "any")]
    pub source_port_range: String,
    /// `*`, `443`, `80-443`.
    #[serde(default = "any")]
    pub destination_port_range: String,
    /// Extra destination ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_port_ranges: Vec<String>,
    /// `*`, a CIDR, or a service tag (`VirtualNetwork`, `AzureContainerRegistry`...).
    #[serde(default = "any")]
    pub source_address_prefix: String,
    /// `*`, a CIDR, or a service tag.
    #[serde(default = "any")]
    pub destination_address_prefix: String,
    /// Extra destination prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_address_prefixes: Vec<String>,
    /// `Allow` or `Deny`.
    pub access: String,
    /// 100..4096; lower wins.
    pub priority: u32,
    /// `Inbound` or `Outbound`.
    pub direction: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn any() -> String {
    "*".to_string()
}

impl SecurityRuleProperties {
    /// Whether the rule covers outbound TCP from `src` to `dst:port`. Service tags other than
    /// `*`, `Internet` and `VirtualNetwork` match only their literal name (resolved by callers).
    pub fn matches_outbound(&self, src: IpAddr, dst: IpAddr, port: u16) -> bool {
        self.direction.eq_ignore_ascii_case("Outbound")
            && (self.protocol == "*" || self.protocol.eq_ignore_ascii_case("Tcp"))
            && prefix_matches(&self.source_address_prefix, src)
            && (prefix_matches(&self.destination_address_prefix, dst)
                || self.destination_address_prefixes.iter().any(|p| prefix_matches(p, dst)))
            && (port_matches(&self.destination_port_range, port)
                || self.destination_port_ranges.iter().any(|r| port_matches(r, port)))
    }

    /// Whether this is a deny rule.
    pub fn denies(&self) -> bool {
        self.access.eq_ignore_ascii_case("Deny")
    }
}

fn prefix_matches(prefix: &str, ip: IpAddr) -> bool {
    prefix == "*" || prefix.eq_ignore_ascii_case("Internet") || cidr_contains(prefix, ip)
}

fn port_matches(range: &str, port: u16) -> bool {
    if range == "*" {
        return true;
    }
    match range.split_once('-') {
        Some((a, b)) => {
            matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if a <= port && port <= b)
        }
        None => range.trim().parse::<u16>() == Ok(port),
    }
}

/// The effective decision of an NSG for outbound TCP: the lowest-priority-number matching rule
/// wins; with none, Azure's default rules allow outbound traffic.
pub fn nsg_denies_outbound(
    nsg: &NetworkSecurityGroupProperties,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
) -> Option<&Child<SecurityRuleProperties>> {
    nsg.security_rules
        .iter()
        .filter(|r| r.properties.matches_outbound(src, dst, port))
        .min_by_key(|r| r.properties.priority)
        .filter(|r| r.properties.denies())
}

/// `Microsoft.Network/routeTables` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableProperties {
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Child<RouteProperties>>,
    /// Whether BGP routes are not propagated.
    #[serde(default)]
    pub disable_bgp_route_propagation: bool,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// A user-defined route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteProperties {
    /// Destination CIDR.
    pub address_prefix: String,
    /// `VirtualNetworkGateway`, `VnetLocal`, `Internet`, `VirtualAppliance`, `None`.
    pub next_hop_type: String,
    /// The appliance's address for `VirtualAppliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_ip_address: Option<String>,
}

impl RouteProperties {
    /// Whether the route drops traffic (`nextHopType: None`).
    pub fn is_blackhole(&self) -> bool {
        self.next_hop_type.eq_ignore_ascii_case("None")
    }
}

/// The route a destination takes: the longest matching prefix.
pub fn effective_route(table: &RouteTableProperties, dst: IpAddr) -> Option<&Child<RouteProperties>> {
    table
        .routes
        .iter()
        .filter(|r| cidr_contains(&r.properties.address_prefix, dst))
        .max_by_key(|r| prefix_len(&r.properties.address_prefix))
}

/// `Microsoft.Network/publicIPAddresses` properties.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpAddressProperties {
    /// The allocated address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// `Static` or `Dynamic`.
    #[serde(rename = "publicIPAllocationMethod", default, skip_serializing_if = "Option::is_none")]
    pub public_ip_allocation_method: Option<String>,
    /// `IPv4` or `IPv6`.
    #[serde(rename = "publicIPAddressVersion", default, skip_serializing_if = "Option::is_none")]
    pub public_ip_address_version: Option<String>,
    /// `Succeeded`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

fn prefix_len(cidr: &str) -> u8 {
    cidr.split_once('/').and_then(|(_, l)| l.parse().ok()).unwrap_or(32)
}

/// Whether `ip` lies in `cidr` (`10.0.0.0/8`, or a single address). IPv4 and IPv6.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, len) = match cidr.trim().split_once('/') {
        Some((n, l)) => match l.parse::<u8>() {
            Ok(l) => (n, Some(l)),
            Err(_) => return false,
        },
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32).min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128).min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr() {
        assert!(cidr_contains("10.1.0.0/16", ip("10.1.2.3")));
        assert!(!cidr_contains("10.1.0.0/16", ip("10.2.0.1")));
        assert!(cidr_contains("203.0.113.7", ip("203.0.113.7")));
        assert!(cidr_contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(!cidr_contains("garbage", ip("1.1.1.1")));
        assert!(!cidr_contains("10.0.0.0/xx", ip("10.0.0.1")));
    }

    #[test]
    fn nsg_priority() {
        let rule = |name: &str, prio, access: &str, dst: &str| Child {
            id: None,
            name: name.into(),
            properties: SecurityRuleProperties {
                protocol: "Tcp".into(),
                source_port_range: "*".into(),
                destination_port_range: "443".into(),
                destination_port_ranges: vec![],
                source_address_prefix: "*".into(),
                destination_address_prefix: dst.into(),
                destination_address_prefixes: vec![],
                access: access.into(),
                priority: prio,
                direction: "Outbound".into(),
                description: None,
            },
        };
        let nsg = NetworkSecurityGroupProperties {
            security_rules: vec![rule("deny", 200, "Deny", "10.2.0.0/24"), rule("allow", 100, "Allow", "10.2.0.5")],
            provisioning_state: None,
        };
        assert!(nsg_denies_outbound(&nsg, ip("10.1.0.4"), ip("10.2.0.5"), 443).is_none());
        assert_eq!(nsg_denies_outbound(&nsg, ip("10.1.0.4"), ip("10.2.0.6"), 443).unwrap().name, "deny");
        assert!(nsg_denies_outbound(&nsg, ip("10.1.0.4"), ip("10.2.0.6"), 80).is_none());

        // Enum values are case-insensitive in ARM: a rule stored as written still counts.
        let lower = |r: Child<SecurityRuleProperties>| Child {
            properties: SecurityRuleProperties {
                access: r.properties.access.to_ascii_lowercase(),
                direction: r.properties.direction.to_ascii_uppercase(),
                protocol: r.properties.protocol.to_ascii_lowercase(),
                ..r.properties
            },
            ..r
        };
        let nsg = NetworkSecurityGroupProperties {
            security_rules: vec![lower(rule("deny", 200, "Deny", "10.2.0.0/24"))],
            provisioning_state: None,
        };
        assert!(nsg.security_rules[0].properties.denies());
        assert_eq!(nsg_denies_outbound(&nsg, ip("10.1.0.4"), ip("10.2.0.6"), 443).unwrap().name, "deny");
    }

    #[test]
    fn longest_prefix_route() {
        let route = |name: &str, prefix: &str, hop: &str| Child {
            id: None,
            name: name.into(),
            properties: RouteProperties {
                address_prefix: prefix.into(),
                next_hop_type: hop.into(),
                next_hop_ip_address: None,
            },
        };
        let table = RouteTableProperties {
            routes: vec![route("wide", "10.0.0.0/8", "VnetLocal"), route("hole", "10.2.0.0/24", "None")],
            ..Default::default()
        };
        assert!(effective_route(&table, ip("10.2.0.5")).unwrap().properties.is_blackhole());
        assert!(!effective_route(&table, ip("10.3.0.5")).unwrap().properties.is_blackhole());
    }
}
