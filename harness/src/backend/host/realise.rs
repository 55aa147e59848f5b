//! How the emulated control plane becomes the host's data plane (pure functions):
//! a baseline's VNets become a [`TopologySpec`]; each [`DataPlane`] snapshot becomes the router's
//! [`Policy`] and the node VNet's [`DnsView`].

use std::net::{IpAddr, Ipv4Addr};

use azure_model::network::{NetworkSecurityGroupProperties, nsg_denies_outbound};
use pullproof_emulator::DataPlane;
use pullproof_emulator::data_plane::Resolution;
use pullproof_host_net::{
    DnsView, EndpointSpec, Flow, InternetAccess, Ipv4Net, NodeSpec, Policy, PublicSpec, RouteEntry, RouteFate,
    RouteOrigin, TopologySpec, VnetSpec,
};

use crate::arm::World;
use crate::baseline::Baseline;

/// Where the registry's public endpoint lives (TEST-NET-2; only inside our namespaces).
pub const PUBLIC_REGISTRY_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
/// The registry's HTTPS port.
pub const HTTPS: u16 = 443;
/// DNS's port.
pub const DNS: u16 = 53;

/// Why a baseline cannot be laid out on the host.
#[derive(Debug, thiserror::Error)]
#[error("baseline `{baseline}` cannot run on the host backend: {reason}")]
pub struct LayoutError {
    /// The baseline.
    pub baseline: String,
    /// Why.
    pub reason: String,
}

/// The node's address in the first pool's subnet (`.4`, as Azure hands out first).
pub fn node_address(b: &Baseline) -> Result<Ipv4Net, LayoutError> {
    let err = |reason: String| LayoutError { baseline: b.name.clone(), reason };
    let pool = b.cluster.pools.first().ok_or_else(|| err("the cluster has no node pool".into()))?;
    let (vnet, subnet) =
        pool.subnet.split_once('/').ok_or_else(|| err(format!("pool subnet `{}` is not VNET/SUBNET", pool.subnet)))?;
    let prefix = b
        .vnet(vnet)
        .and_then(|v| v.subnets.iter().find(|s| s.name == subnet))
        .map(|s| s.prefix.clone())
        .ok_or_else(|| err(format!("subnet {} is not declared", pool.subnet)))?;
    let net = parse_net(&prefix).map_err(err)?;
    let ip = Ipv4Addr::from(u32::from(net.network()) + 4);
    Ipv4Net::new(ip, net.prefix_len()).map_err(|e| err(e.to_string()))
}

fn parse_net(cidr: &str) -> Result<Ipv4Net, String> {
    let (ip, len) = cidr.split_once('/').ok_or_else(|| format!("`{cidr}` is not a CIDR"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("`{cidr}` is not an IPv4 CIDR"))?;
    let len: u8 = len.parse().map_err(|_| format!("`{cidr}` has a bad prefix length"))?;
    Ipv4Net::new(ip, len).map_err(|e| e.to_string())
}

/// The egress address: the cluster's first egress public IP.
pub fn egress_ip(b: &Baseline) -> Result<Ipv4Addr, LayoutError> {
    let err = |reason: String| LayoutError { baseline: b.name.clone(), reason };
    let name =
        b.cluster.egress_ips.first().ok_or_else(|| err("the cluster has no egress IP (cluster.egressIps)".into()))?;
    let ip = b.public_ips.iter().find(|p| &p.name == name).map(|p| p.ip.clone()).unwrap_or_default();
    ip.parse().map_err(|_| err(format!("public IP {name} has no IPv4 address")))
}

/// The namespaces and addresses a baseline needs.
pub fn topology_spec(b: &Baseline) -> Result<TopologySpec, LayoutError> {
    let err = |reason: String| LayoutError { baseline: b.name.clone(), reason };
    let vnets = b
        .vnets
        .iter()
        .map(|v| Ok(VnetSpec { name: v.name.clone(), cidr: parse_net(&v.address_space).map_err(err)? }))
        .collect::<Result<Vec<_>, LayoutError>>()?;
    let node_vnet = b.cluster.pools.first().and_then(|p| p.subnet.split('/').next()).unwrap_or_default().to_string();
    let endpoints = b
        .registry
        .private_endpoint
        .iter()
        .map(|pe| {
            let ip = pe.ip.parse().map_err(|_| err(format!("private endpoint IP `{}` is not IPv4", pe.ip)))?;
            Ok(EndpointSpec { vnet: pe.subnet.split('/').next().unwrap_or_default().to_string(), ip })
        })
        .chain(b.registry.private_endpoint.iter().filter_map(|pe| pe.data_ip.as_ref().map(|d| (pe, d))).map(
            |(pe, d)| {
                let ip = d.parse().map_err(|_| err(format!("data endpoint IP `{d}` is not IPv4")))?;
                Ok(EndpointSpec { vnet: pe.subnet.split('/').next().unwrap_or_default().to_string(), ip })
            },
        ))
        .collect::<Result<Vec<_>, LayoutError>>()?;
    // The node VNet's custom DNS servers: forwarder VMs in the subnets holding them.
    let custom = b.vnet(&node_vnet).map(|v| v.dns_servers.clone()).unwrap_or_default();
    let mut dns_servers = Vec::new();
    let mut dns_forwarders = Vec::new();
    for ip in &custom {
        let subnet = b.subnet_holding(ip).ok_or_else(|| err(format!("DNS server {ip} is in no declared subnet")))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err(format!("DNS server `{ip}` is not IPv4")))?;
        dns_servers.push(ip);
        dns_forwarders.push(EndpointSpec { vnet: subnet.split('/').next().unwrap_or_default().to_string(), ip });
    }
    // The router hosts the appliance on its port 443: one per world.
    if b.appliances.len() > 1 {
        return Err(err("more than one appliance: the host backend's router hosts one".into()));
    }
    // One view of Azure's resolver serves every forwarder (see `HostWorld`): one VNet.
    if dns_forwarders.iter().any(|f| f.vnet != dns_forwarders[0].vnet) {
        return Err(err("custom DNS servers in more than one VNet: the host backend realises them in one".into()));
    }
    Ok(TopologySpec {
        vnets,
        node: NodeSpec {
            vnet: node_vnet,
            address: node_address(b)?,
            dns: pullproof_host_net::AZURE_DNS,
            imds: pullproof_host_net::AZURE_IMDS,
            dns_servers,
        },
        endpoints,
        dns_forwarders,
        public: PublicSpec { registry_ip: PUBLIC_REGISTRY_IP, egress_ip: egress_ip(b)?, extra_ips: vec![] },
    })
}

/// The ids the realisation needs: the node's VNet and subnet.
#[derive(Debug, Clone)]
pub struct NodePlacement {
    /// The node VNet's id.
    pub vnet_id: String,
    /// The node subnet's id.
    pub subnet_id: String,
    /// The node's address.
    pub ip: Ipv4Addr,
    /// The address of the world's TLS-inspecting appliance, if it has one (the router hosts it).
    pub appliance: Option<Ipv4Addr>,
}

impl NodePlacement {
    /// Where the first pool's node sits.
    pub fn of(b: &Baseline, w: &World) -> Result<Self, LayoutError> {
        let pool = b
            .cluster
            .pools
            .first()
            .ok_or_else(|| LayoutError { baseline: b.name.clone(), reason: "no node pool".into() })?;
        let vnet = pool.subnet.split('/').next().unwrap_or_default();
        let appliance = b.appliances.first().and_then(|a| a.ip.parse().ok());
        Ok(Self {
            vnet_id: w.vnet(b, vnet),
            subnet_id: w.subnet(b, &pool.subnet),
            ip: node_address(b)?.addr(),
            appliance,
        })
    }
}

/// The router's policy for the current control plane: which private flows pass, and the node
/// subnet's routes.
///
/// A flow from the node to a private endpoint passes the router's filter when the registry has
/// approved the endpoint's connection, the endpoint's VNet is the node's or is peered with it
/// (Connected both ways) and no outbound NSG rule on the node subnet denies it. Public traffic passes (with SNAT to the egress IP) unless an NSG rule denies
/// it. Which route a packet takes is left to the kernel: the node subnet's system routes (its
/// VNet's address space, the peered VNets', the default route) and its route table's routes are
/// installed as they are, and Linux's longest-prefix match picks one; next hop `None` drops.
pub fn policy(dp: &DataPlane, node: &NodePlacement) -> Policy {
    let subnet = dp.subnet(&node.subnet_id).map(|(_, s)| s.clone()).unwrap_or_default();
    let nsg =
        NetworkSecurityGroupProperties { security_rules: subnet.security_rules.clone(), provisioning_state: None };
    let src = IpAddr::V4(node.ip);
    let mut allowed = Vec::new();
    for r in &dp.registries {
        for pe in &r.private_endpoints {
            let pe_vnet = pe.subnet_id.as_deref().and_then(|s| s.rsplitn(3, '/').nth(2)).unwrap_or_default();
            for ip in &pe.ip_addresses {
                let IpAddr::V4(v4) = ip else { continue };
                // An endpoint whose connection the registry has not approved (Pending, Rejected,
                // Disconnected) carries no traffic: its address answers nothing.
                let approved = pe.status.eq_ignore_ascii_case("Approved");
                let reachable = approved
                    && dp.peered(&node.vnet_id, pe_vnet)
                    && nsg_denies_outbound(&nsg, src, *ip, HTTPS).is_none();
                if reachable {
                    allowed.push(Flow::new(Ipv4Net::host(node.ip), Ipv4Net::host(*v4)));
                }
            }
        }
    }
    // The node VNet's custom DNS servers (forwarder VMs): reachable as private endpoints are,
    // through a peering (or in the node's own VNet), unless an NSG rule denies DNS.
    let vnet = dp.vnets.iter().find(|v| azure_model::id::same_id(&v.id, &node.vnet_id));
    for server in vnet.map(|v| v.dns_servers.as_slice()).unwrap_or_default() {
        let Ok(ip) = server.parse::<Ipv4Addr>() else { continue };
        let home =
            dp.vnets.iter().find(|v| v.address_prefixes.iter().any(|p| parse_net(p).is_ok_and(|n| n.contains(ip))));
        let Some(home) = home else { continue };
        let same = azure_model::id::same_id(&home.id, &node.vnet_id);
        if (same || dp.peered(&node.vnet_id, &home.id)) && nsg_denies_outbound(&nsg, src, IpAddr::V4(ip), DNS).is_none()
        {
            allowed.push(Flow::new(Ipv4Net::host(node.ip), Ipv4Net::host(ip)));
        }
    }
    let public = IpAddr::V4(PUBLIC_REGISTRY_IP);
    let internet = if nsg_denies_outbound(&nsg, src, public, HTTPS).is_some() {
        InternetAccess::Drop
    } else {
        InternetAccess::Snat
    };
    Policy { allowed, unreachable: vec![], internet, routes: routes(dp, node) }
}

/// The node subnet's routes, as Azure lists them in the NIC's effective routes: system routes
/// for the VNet's and the peered VNets' address spaces and the default route, and the route
/// table's user-defined routes (next hop `None` drops, the world's inspecting appliance takes
/// what is sent to it, anything else forwards).
pub fn routes(dp: &DataPlane, node: &NodePlacement) -> Vec<RouteEntry> {
    let entry = |cidr: &str, fate, origin| parse_net(cidr).ok().map(|prefix| RouteEntry { prefix, fate, origin });
    let mut out = Vec::new();
    for v in &dp.vnets {
        if v.id.eq_ignore_ascii_case(&node.vnet_id) || dp.peered(&node.vnet_id, &v.id) {
            out.extend(v.address_prefixes.iter().filter_map(|p| entry(p, RouteFate::Forward, RouteOrigin::System)));
        }
    }
    out.extend(entry("0.0.0.0/0", RouteFate::Forward, RouteOrigin::System));
    let subnet = dp.subnet(&node.subnet_id).map(|(_, s)| s.clone()).unwrap_or_default();
    for r in &subnet.routes {
        let p = &r.properties;
        let to_appliance = p.next_hop_type.eq_ignore_ascii_case("VirtualAppliance")
            && node.appliance.is_some_and(|a| p.next_hop_ip_address.as_deref() == Some(a.to_string().as_str()));
        let fate = if p.next_hop_type.eq_ignore_ascii_case("None") {
            RouteFate::Drop
        } else if to_appliance {
            RouteFate::Appliance
        } else {
            RouteFate::Forward
        };
        out.extend(entry(&r.properties.address_prefix, fate, RouteOrigin::User));
    }
    out
}

/// What the node's VNet resolves: every registry's login server, through a linked private zone
/// when there is one (with Azure's `privatelink` CNAME), else to the public endpoint. Anything
/// else is NXDOMAIN (a misspelt login server gets `no such host`).
pub fn dns_view(dp: &DataPlane, node: &NodePlacement) -> DnsView {
    dns_view_of(dp, &node.vnet_id)
}

/// What Azure's resolver answers inside VNet `vnet_id` (see [`dns_view`]): for the node's VNet,
/// or for the VNet a custom DNS forwarder asks from.
pub fn dns_view_of(dp: &DataPlane, vnet_id: &str) -> DnsView {
    let mut view = DnsView::new();
    for r in &dp.registries {
        // The data endpoints, as the zone (or the public side) answers them.
        for host in &r.data_endpoints {
            let alias = host.replacen(".azurecr.", ".privatelink.azurecr.", 1);
            view = match dp.resolve(vnet_id, host) {
                Resolution::Private(ips) => view.with_cname(host, &alias).with_a(&alias, ips),
                Resolution::NxDomain { .. } => view.with_cname(host, &alias),
                Resolution::Public => view.with_cname(host, &alias).with_a(&alias, [PUBLIC_REGISTRY_IP]),
            };
        }
        let login = r.login_server.to_ascii_lowercase();
        match dp.resolve(vnet_id, &login) {
            Resolution::Private(ips) => {
                let alias = login.replacen(".azurecr.", ".privatelink.azurecr.", 1);
                view = view.with_cname(&login, &alias).with_a(&alias, ips);
            }
            Resolution::NxDomain { .. } => {
                let alias = login.replacen(".azurecr.", ".privatelink.azurecr.", 1);
                view = view.with_cname(&login, &alias);
            }
            Resolution::Public => {
                if r.private_endpoints.is_empty() {
                    view = view.with_a(&login, [PUBLIC_REGISTRY_IP]);
                } else {
                    let alias = login.replacen(".azurecr.", ".privatelink.azurecr.", 1);
                    view = view.with_cname(&login, &alias).with_a(&alias, [PUBLIC_REGISTRY_IP]);
                }
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Layout};

    fn baseline(name: &str) -> std::sync::Arc<Baseline> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Catalog::load(&Layout::under(root)).entries.into_iter().find(|e| e.baseline.name == name).unwrap().baseline
    }

    #[test]
    fn every_baseline_lays_out() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for e in Catalog::load(&Layout::under(root)).entries {
            let spec = topology_spec(&e.baseline).unwrap();
            spec.validate().unwrap_or_else(|err| panic!("{}: {err}", e.baseline.name));
        }
    }

    #[test]
    fn private_registry_layout() {
        let b = baseline("private-registry");
        let spec = topology_spec(&b).unwrap();
        assert_eq!(spec.node.address.to_string(), "10.1.0.4/24");
        assert_eq!(spec.endpoints[0].ip, Ipv4Addr::new(10, 2, 0, 5));
        assert_eq!(spec.endpoints[0].vnet, "hub-vnet");
        assert_eq!(spec.public.egress_ip, Ipv4Addr::new(203, 0, 113, 15));
    }
}
