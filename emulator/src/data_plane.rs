//! The data plane the control plane implies: what each VNet resolves, which VNets reach each
//! other, which rules and routes apply per subnet, how each registry filters public traffic, and
//! what each cluster's nodes authenticate with.
//!
//! A [`DataPlane`] is an immutable snapshot recomputed after every mutation and published on a
//! `tokio::sync::watch` channel ([`crate::RunningEmulator::subscribe`]); backends realise it
//! (DNS resolvers, netfilter rules, node cloud config) instead of polling ARM.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use azure_model::Inventory;
use azure_model::compute::POOL_NAME_TAG;
use azure_model::container_registry::{IpRule, NetworkRuleSet};
use azure_model::container_service::KubeletIdentity;
use azure_model::id::same_id;
use azure_model::network::{Child, RouteProperties, SecurityRuleProperties};

use crate::credential::Secret;
use crate::state::State;

/// One snapshot of the data plane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataPlane {
    /// Every VNet.
    pub vnets: Vec<VnetPlane>,
    /// Every registry.
    pub registries: Vec<RegistryPlane>,
    /// Every managed cluster.
    pub clusters: Vec<ClusterPlane>,
    /// Registered nodes (source address -> scale set).
    pub nodes: Vec<NodeBinding>,
    /// Source addresses whose registry traffic arrives through a private endpoint.
    pub private_sources: Vec<IpAddr>,
}

/// A VNet as its workloads experience it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VnetPlane {
    /// The VNet id.
    pub id: String,
    /// Its address space.
    pub address_prefixes: Vec<String>,
    /// Private DNS zones linked to it, with their A records.
    pub private_zones: Vec<LinkedZone>,
    /// VNets reachable through a peering that is `Connected` in both directions.
    pub connected_peers: Vec<String>,
    /// Subnets with the NSG and route table applied to each.
    pub subnets: Vec<SubnetPlane>,
    /// Custom DNS servers (`dhcpOptions.dnsServers`; empty: Azure's resolver).
    pub dns_servers: Vec<String>,
}

/// A private DNS zone linked to a VNet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkedZone {
    /// The zone name, lower-case (`privatelink.azurecr.io`).
    pub zone: String,
    /// The zone's resource id.
    pub zone_id: String,
    /// A records: relative name (lower-case, `@` for the apex) -> addresses.
    pub a_records: BTreeMap<String, Vec<Ipv4Addr>>,
}

/// A subnet and the rules that apply to its traffic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubnetPlane {
    /// The subnet id.
    pub id: String,
    /// Its prefix.
    pub address_prefix: Option<String>,
    /// The NSG id, when one is applied.
    pub network_security_group_id: Option<String>,
    /// The NSG's rules (empty when none or when the NSG does not exist).
    pub security_rules: Vec<Child<SecurityRuleProperties>>,
    /// The route table id, when one is applied.
    pub route_table_id: Option<String>,
    /// The route table's routes.
    pub routes: Vec<Child<RouteProperties>>,
}

/// A registry's public filtering and private endpoints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegistryPlane {
    /// The registry id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `NAME.azurecr.io`.
    pub login_server: String,
    /// `publicNetworkAccess` is not `Disabled`.
    pub public_network_access_enabled: bool,
    /// `networkRuleSet.defaultAction` (`Allow` when there is no rule set).
    pub default_action: String,
    /// `networkRuleSet.ipRules`.
    pub ip_rules: Vec<IpRule>,
    /// Whether anonymous pull is on.
    pub anonymous_pull_enabled: bool,
    /// Private endpoints connected to the registry.
    pub private_endpoints: Vec<PrivateEndpointPlane>,
    /// Its data endpoint hosts (`REG.REGION.data.azurecr.io`) when `dataEndpointEnabled`:
    /// layer downloads are redirected there.
    pub data_endpoints: Vec<String>,
}

impl RegistryPlane {
    /// Whether a client at `ip` coming over the public endpoint is let through.
    pub fn public_endpoint_allows(&self, ip: IpAddr) -> bool {
        self.public_network_access_enabled
            && NetworkRuleSet { default_action: self.default_action.clone(), ip_rules: self.ip_rules.clone() }
                .allows(ip)
    }
}

/// A private endpoint of a registry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrivateEndpointPlane {
    /// The endpoint id.
    pub id: String,
    /// The subnet its NIC sits in.
    pub subnet_id: Option<String>,
    /// Its addresses (from `customDnsConfigs`).
    pub ip_addresses: Vec<IpAddr>,
    /// The connection status (`Approved`...).
    pub status: String,
}

/// What a cluster's nodes authenticate with, and where its egress comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterPlane {
    /// The cluster id.
    pub id: String,
    /// The node resource group.
    pub node_resource_group: Option<String>,
    /// The kubelet identity (managed-identity clusters).
    pub kubelet_identity: Option<KubeletIdentity>,
    /// The service principal (SP clusters): what the nodes' cloud config holds.
    pub service_principal: Option<ServicePrincipalCredential>,
    /// Public egress addresses (`effectiveOutboundIPs` resolved to addresses).
    pub egress_ips: Vec<IpAddr>,
    /// Node pools.
    pub pools: Vec<PoolPlane>,
}

/// The service principal a cluster's nodes use.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePrincipalCredential {
    /// The application (client) id.
    pub client_id: String,
    /// The secret last given to ARM (unknown for clusters loaded from an export).
    pub secret: Option<Secret>,
}

/// A node pool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolPlane {
    /// Pool name.
    pub name: String,
    /// `Linux` or `Windows`.
    pub os_type: String,
    /// The subnet of the nodes.
    pub vnet_subnet_id: Option<String>,
    /// The scale set backing the pool (tagged `aks-managed-poolName`).
    pub vmss_id: Option<String>,
}

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBinding {
    /// The node's source address as the emulator sees it.
    pub ip: IpAddr,
    /// Its scale set.
    pub vmss_id: String,
}

/// What a name resolves to inside a VNet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A linked private zone answers with these addresses.
    Private(Vec<Ipv4Addr>),
    /// A linked private zone is authoritative for the name but has no record: NXDOMAIN.
    NxDomain {
        /// The zone.
        zone: String,
    },
    /// No linked zone covers the name: public DNS answers.
    Public,
}

/// `NAME.azurecr.io` -> `NAME.privatelink.azurecr.io` (the CNAME Azure publishes for registries
/// with a private endpoint).
fn privatelink_alias(host: &str) -> Option<String> {
    azure_model::container_registry::LOGIN_SERVER_SUFFIXES.iter().find_map(|suffix| {
        let prefix = host.strip_suffix(suffix)?;
        Some(format!("{prefix}.privatelink.{}", suffix.trim_start_matches('.')))
    })
}

impl DataPlane {
    /// Computes the snapshot from the state.
    pub(crate) fn compute(state: &State) -> Self {
        let inv = state.inventory();
        let mut dp = DataPlane {
            vnets: inv.virtual_networks.iter().map(|v| vnet_plane(&inv, v)).collect(),
            registries: registries(&inv),
            clusters: clusters(&inv, state),
            nodes: state.nodes.iter().map(|(ip, vmss)| NodeBinding { ip: *ip, vmss_id: vmss.clone() }).collect(),
            private_sources: state.private_sources.iter().copied().collect(),
        };
        dp.vnets.sort_by_key(|a| a.id.to_ascii_lowercase());
        dp
    }

    /// The VNet with `id`.
    pub fn vnet(&self, id: &str) -> Option<&VnetPlane> {
        self.vnets.iter().find(|v| same_id(&v.id, id))
    }

    /// The registry with login server `host`.
    pub fn registry(&self, login_server: &str) -> Option<&RegistryPlane> {
        self.registries.iter().find(|r| r.login_server.eq_ignore_ascii_case(login_server))
    }

    /// The VNet and subnet with subnet id `id`.
    pub fn subnet(&self, id: &str) -> Option<(&VnetPlane, &SubnetPlane)> {
        self.vnets.iter().find_map(|v| v.subnets.iter().find(|s| same_id(&s.id, id)).map(|s| (v, s)))
    }

    /// Whether traffic flows between VNets `a` and `b` (the same VNet, or a peering connected in
    /// both directions; peering is not transitive).
    pub fn peered(&self, a: &str, b: &str) -> bool {
        same_id(a, b) || self.vnet(a).is_some_and(|v| v.connected_peers.iter().any(|p| same_id(p, b)))
    }

    /// What `host` resolves to from inside VNet `vnet_id`.
    pub fn resolve(&self, vnet_id: &str, host: &str) -> Resolution {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let Some(vnet) = self.vnet(vnet_id) else { return Resolution::Public };
        let mut names = vec![host.clone()];
        if self.registries.iter().any(|r| {
            !r.private_endpoints.is_empty()
                && (host.eq_ignore_ascii_case(&r.login_server) || host.ends_with(".data.azurecr.io"))
        }) && let Some(alias) = privatelink_alias(&host)
        {
            names.push(alias);
        }
        for name in names {
            let zone = vnet
                .private_zones
                .iter()
                .filter(|z| name == z.zone || name.ends_with(&format!(".{}", z.zone)))
                .max_by_key(|z| z.zone.len());
            if let Some(zone) = zone {
                let relative = if name == zone.zone {
                    "@".to_string()
                } else {
                    name[..name.len() - zone.zone.len() - 1].to_string()
                };
                return match zone.a_records.get(&relative) {
                    Some(ips) if !ips.is_empty() => Resolution::Private(ips.clone()),
                    _ => Resolution::NxDomain { zone: zone.zone.clone() },
                };
            }
        }
        Resolution::Public
    }
}

fn parent_id(id: &str) -> Option<String> {
    azure_model::ResourceId::parse(id).ok().and_then(|r| r.parent()).map(|p| p.as_str().to_string())
}

fn vnet_plane(inv: &Inventory, v: &azure_model::Resource<azure_model::network::VirtualNetworkProperties>) -> VnetPlane {
    let private_zones = inv
        .virtual_network_links
        .iter()
        .filter(|l| same_id(&l.properties.virtual_network.id, &v.id))
        .filter_map(|l| parent_id(&l.id))
        .filter_map(|zone_id| inv.private_dns_zones.iter().find(|z| same_id(&z.id, &zone_id)))
        .map(|z| {
            let mut a_records: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
            for set in inv.a_record_sets.iter().filter(|s| parent_id(&s.id).is_some_and(|p| same_id(&p, &z.id))) {
                let ips = set.properties.a_records.iter().filter_map(|r| r.ipv4_address.parse().ok()).collect();
                a_records.insert(set.name.to_ascii_lowercase(), ips);
            }
            LinkedZone { zone: z.name.to_ascii_lowercase(), zone_id: z.id.clone(), a_records }
        })
        .collect();
    let connected_peers = inv
        .peerings_of(&v.id)
        .into_iter()
        .filter(|(_, p)| p.is_connected())
        .map(|(_, p)| p.remote_virtual_network.id)
        .filter(|remote| {
            inv.peerings_of(remote)
                .iter()
                .any(|(_, back)| back.is_connected() && same_id(&back.remote_virtual_network.id, &v.id))
        })
        .collect();
    let subnets = v
        .properties
        .subnets
        .iter()
        .map(|s| {
            let id = s.id.clone().unwrap_or_else(|| format!("{}/subnets/{}", v.id, s.name));
            let nsg_id = s.properties.network_security_group.as_ref().map(|n| n.id.clone());
            let rt_id = s.properties.route_table.as_ref().map(|r| r.id.clone());
            let security_rules = nsg_id
                .as_deref()
                .and_then(|n| inv.network_security_groups.iter().find(|g| same_id(&g.id, n)))
                .map(|g| g.properties.security_rules.clone())
                .unwrap_or_default();
            let routes = rt_id
                .as_deref()
                .and_then(|r| inv.route_tables.iter().find(|t| same_id(&t.id, r)))
                .map(|t| t.properties.routes.clone())
                .unwrap_or_default();
            SubnetPlane {
                id,
                address_prefix: s.properties.address_prefix.clone(),
                network_security_group_id: nsg_id,
                security_rules,
                route_table_id: rt_id,
                routes,
            }
        })
        .collect();
    VnetPlane {
        id: v.id.clone(),
        address_prefixes: v.properties.address_space.address_prefixes.clone(),
        private_zones,
        connected_peers,
        subnets,
        dns_servers: v.properties.dns_servers().to_vec(),
    }
}

fn registries(inv: &Inventory) -> Vec<RegistryPlane> {
    inv.registries
        .iter()
        .map(|r| {
            let p = &r.properties;
            let private_endpoints = inv
                .private_endpoints
                .iter()
                .filter_map(|pe| {
                    let conn =
                        pe.properties.connections().find(|c| same_id(&c.properties.private_link_service_id, &r.id))?;
                    let mut ips: Vec<IpAddr> = Vec::new();
                    for cfg in &pe.properties.custom_dns_configs {
                        for ip in cfg.ip_addresses.iter().filter_map(|i| i.parse().ok()) {
                            if !ips.contains(&ip) {
                                ips.push(ip);
                            }
                        }
                    }
                    Some(PrivateEndpointPlane {
                        id: pe.id.clone(),
                        subnet_id: pe.properties.subnet.as_ref().map(|s| s.id.clone()),
                        ip_addresses: ips,
                        status: conn
                            .properties
                            .private_link_service_connection_state
                            .as_ref()
                            .map(|s| s.status.clone())
                            .unwrap_or_default(),
                    })
                })
                .collect();
            RegistryPlane {
                data_endpoints: if p.data_endpoint_enabled == Some(true) {
                    p.data_endpoint_host_names.iter().map(|h| h.to_ascii_lowercase()).collect()
                } else {
                    Vec::new()
                },
                id: r.id.clone(),
                name: r.name.clone(),
                login_server: p.login_server.clone().unwrap_or_default().to_ascii_lowercase(),
                public_network_access_enabled: p.public_access_enabled(),
                default_action: p
                    .network_rule_set
                    .as_ref()
                    .map(|s| s.default_action.clone())
                    .unwrap_or_else(|| "Allow".into()),
                ip_rules: p.network_rule_set.as_ref().map(|s| s.ip_rules.clone()).unwrap_or_default(),
                anonymous_pull_enabled: p.anonymous_pull_enabled.unwrap_or(false),
                private_endpoints,
            }
        })
        .collect()
}

/// Whether resource `id` lives in resource group `rg`.
pub(crate) fn in_resource_group(id: &str, rg: &str) -> bool {
    azure_model::ResourceId::parse(id)
        .ok()
        .and_then(|i| i.resource_group().map(|g| g.eq_ignore_ascii_case(rg)))
        .unwrap_or(false)
}

fn clusters(inv: &Inventory, state: &State) -> Vec<ClusterPlane> {
    inv.managed_clusters
        .iter()
        .map(|c| {
            let p = &c.properties;
            let node_rg = p.node_resource_group.as_deref();
            let pools = p
                .agent_pool_profiles
                .iter()
                .map(|pool| {
                    let vmss_id = node_rg.and_then(|rg| {
                        inv.virtual_machine_scale_sets
                            .iter()
                            .find(|v| {
                                in_resource_group(&v.id, rg)
                                    && v.tags.get(POOL_NAME_TAG).is_some_and(|t| t.eq_ignore_ascii_case(&pool.name))
                            })
                            .map(|v| v.id.clone())
                    });
                    PoolPlane {
                        name: pool.name.clone(),
                        os_type: pool.os_type.clone().unwrap_or_else(|| "Linux".into()),
                        vnet_subnet_id: pool.vnet_subnet_id.clone(),
                        vmss_id,
                    }
                })
                .collect();
            let egress_ips = p
                .network_profile
                .as_ref()
                .and_then(|n| n.load_balancer_profile.as_ref())
                .map(|lb| {
                    lb.effective_outbound_ips.iter().filter_map(|ip| inv.public_ip(&ip.id)?.parse().ok()).collect()
                })
                .unwrap_or_default();
            ClusterPlane {
                id: c.id.clone(),
                node_resource_group: p.node_resource_group.clone(),
                kubelet_identity: p.kubelet_identity().cloned(),
                service_principal: p.service_principal_client_id().map(|client_id| ServicePrincipalCredential {
                    client_id: client_id.to_string(),
                    secret: state.cluster_secrets.get(&c.id.to_ascii_lowercase()).cloned(),
                }),
                egress_ips,
                pools,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, records: &[(&str, &str)]) -> LinkedZone {
        LinkedZone {
            zone: name.into(),
            zone_id: String::new(),
            a_records: records.iter().map(|(n, ip)| (n.to_string(), vec![ip.parse().unwrap()])).collect(),
        }
    }

    #[test]
    fn resolution_follows_links() {
        let vnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/aks";
        let mut dp = DataPlane {
            vnets: vec![VnetPlane {
                id: vnet.into(),
                private_zones: vec![zone("privatelink.azurecr.io", &[("acr", "10.2.0.5")])],
                ..Default::default()
            }],
            registries: vec![RegistryPlane {
                login_server: "acr.azurecr.io".into(),
                private_endpoints: vec![PrivateEndpointPlane::default()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(dp.resolve(vnet, "ACR.azurecr.io."), Resolution::Private(vec![Ipv4Addr::new(10, 2, 0, 5)]));
        assert_eq!(dp.resolve(vnet, "other.azurecr.io"), Resolution::Public);
        assert_eq!(
            dp.resolve(vnet, "x.privatelink.azurecr.io"),
            Resolution::NxDomain { zone: "privatelink.azurecr.io".into() }
        );
        dp.vnets[0].private_zones.clear();
        assert_eq!(dp.resolve(vnet, "acr.azurecr.io"), Resolution::Public);
        assert!(dp.peered(vnet, &vnet.to_uppercase()));
    }
}
