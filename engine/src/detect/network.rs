//! The network path from the node to the registry.
//!
//! `forbidden` (403) pulls from a known registry:
//! - the registry has a private endpoint (or public access is off) and the node's VNet is not
//!   linked to `privatelink.azurecr.io`: nodes resolve the public address, which refuses
//!   them: `PRIVATE_DNS_ZONE_NOT_LINKED`;
//! - public access with `networkRuleSet.defaultAction: Deny` and an egress IP of the cluster
//!   (or the `client with IP` ACR quotes) not allowed, or public access off with no private
//!   endpoint at all: `ACR_FIREWALL_DENIES_EGRESS`.
//!
//! `timeout` / `unreachable` pulls: the destination is the address dialled (else the private
//! endpoint's). Each link of the path is checked on its own and every broken one reported:
//! the peering between the node VNet and the endpoint's VNet (`VNET_PEERING_MISSING`, or
//! `VNET_PEERING_DISCONNECTED` when a side is not `Connected` or is missing), the NSGs of the
//! node subnet (outbound) and of the endpoint subnet (inbound) (`NSG_BLOCKS_REGISTRY`), and the
//! node subnet's route table (`ROUTE_BLACKHOLE`, `nextHopType: None`), and the endpoint's
//! connection, which carries traffic only once the registry approved it
//! (`PRIVATE_ENDPOINT_NOT_APPROVED`). Traffic routed to an
//! appliance or gateway transits a hub, so a direct peering is not required then.

use std::net::IpAddr;

use azure_model::container_registry::RegistryProperties;
use azure_model::network::{
    ACR_PRIVATE_ZONE, Child, NetworkSecurityGroupProperties, PeeringProperties, PrivateEndpointProperties,
    SecurityRuleProperties, cidr_contains, effective_route, peering_state,
};
use azure_model::{Inventory, Resource};

use super::Context;
use super::support::{Draft, Findings, Placement, RegistryMatch, match_registry, name_of, same};
use crate::evidence::PullFailure;
use crate::finding::{Blame, Confidence, Finding, FindingCode};
use crate::plan::{Action, Change};
use crate::symptom::SymptomClass;

type Registry = Resource<RegistryProperties>;
type Endpoint = Resource<PrivateEndpointProperties>;

/// Runs the detector.
pub(super) fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Findings::default();
    for f in &ctx.failures {
        match f.symptom.class {
            SymptomClass::Forbidden => forbidden(&mut out, ctx, f),
            SymptomClass::Timeout | SymptomClass::Unreachable => path(&mut out, ctx, f),
            _ => {}
        }
        tls(&mut out, ctx, f);
    }
    out.into_vec()
}

fn known_registry<'a>(ctx: &Context<'a>, f: &PullFailure) -> Option<&'a Registry> {
    match match_registry(&ctx.evidence.azure, f.registry_host()?) {
        RegistryMatch::Known(r) => Some(r),
        _ => None,
    }
}

/// Private endpoints whose private link service connections target `registry`.
pub(crate) fn endpoints_of<'a>(inv: &'a Inventory, registry: &Registry) -> Vec<&'a Endpoint> {
    inv.private_endpoints
        .iter()
        .filter(|pe| {
            pe.properties.connections().any(|c| same(&c.properties.private_link_service_id, &registry.id))
                || registry
                    .properties
                    .private_endpoint_connections
                    .iter()
                    .any(|c| c.properties.private_endpoint.as_ref().is_some_and(|p| same(&p.id, &pe.id)))
        })
        .collect()
}

/// The addresses of an endpoint (registry first, then data endpoints).
fn endpoint_ips(inv: &Inventory, registry: &Registry, pe: &Endpoint) -> Vec<IpAddr> {
    let login = registry.properties.login_server.as_deref().unwrap_or_default().to_ascii_lowercase();
    let mut configs: Vec<_> = pe.properties.custom_dns_configs.iter().collect();
    configs.sort_by_key(|c| !c.fqdn.eq_ignore_ascii_case(&login));
    let mut ips: Vec<IpAddr> =
        configs.iter().flat_map(|c| c.ip_addresses.iter()).filter_map(|ip| ip.parse().ok()).collect();
    if ips.is_empty() {
        // From the zone's A records: `NAME` and `NAME.REGION.data`.
        let name = registry.name.to_ascii_lowercase();
        for rs in &inv.a_record_sets {
            let rname = rs.name.to_ascii_lowercase();
            if rname == name || rname.starts_with(&format!("{name}.")) {
                ips.extend(rs.properties.a_records.iter().filter_map(|a| a.ipv4_address.parse::<IpAddr>().ok()));
            }
        }
    }
    ips.dedup();
    ips
}

/// The addresses of `registry`'s data endpoints on `pe`, with their host names: its
/// `customDnsConfigs` for `REG.REGION.data.azurecr.io`, else the zone's `REG.REGION.data` records.
fn data_endpoint_ips(inv: &Inventory, registry: &Registry, pe: &Endpoint) -> Vec<(IpAddr, String)> {
    let name = registry.name.to_ascii_lowercase();
    let mut out: Vec<(IpAddr, String)> = pe
        .properties
        .custom_dns_configs
        .iter()
        .filter(|c| c.fqdn.to_ascii_lowercase().starts_with(&format!("{name}.")) && c.fqdn.contains(".data."))
        .flat_map(|c| {
            c.ip_addresses.iter().filter_map(|ip| ip.parse().ok()).map(|ip| (ip, c.fqdn.to_ascii_lowercase()))
        })
        .collect();
    if out.is_empty() {
        for rs in &inv.a_record_sets {
            let rname = rs.name.to_ascii_lowercase();
            if rname.starts_with(&format!("{name}.")) && rname.ends_with(".data") {
                let host = format!("{rname}.azurecr.io");
                out.extend(
                    rs.properties
                        .a_records
                        .iter()
                        .filter_map(|a| a.ipv4_address.parse().ok())
                        .map(|ip| (ip, host.clone())),
                );
            }
        }
    }
    out
}

fn vnet_of(id: &str) -> Option<String> {
    Inventory::vnet_of_subnet(id).map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// 403

fn forbidden(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure) {
    let inv = &ctx.evidence.azure;
    let client_ips: Vec<IpAddr> =
        f.symptom.attempts.iter().filter_map(|a| a.client_ip.as_deref()?.parse().ok()).collect();
    let Some(registry) = known_registry(ctx, f) else {
        if let (Some(ip), Some(host)) = (client_ips.first(), f.registry_host()) {
            let d = Draft::new(
                FindingCode::AcrFirewallDeniesEgress,
                Confidence::Medium,
                f,
                format!("The firewall of registry {host} refuses the cluster's egress address {ip}; the registry is not in the inventory."),
            )
            .blame(Blame::new("Registry", host.to_string()).note(format!("{ip} not allowed")))
            .line(format!("ACR answered 403: client with IP '{ip}' is not allowed access"))
            .action(Action::Manual {
                change: None,
                description: format!("allow {ip} in the firewall of {host}"),
                commands: vec![format!(
                    "az acr network-rule add -n {} --ip-address {ip}",
                    super::support::registry_name_of_host(host)
                )],
            });
            out.add(host, f, d);
        }
        return;
    };
    let props = &registry.properties;
    let endpoints = endpoints_of(inv, registry);
    let has_private = !endpoints.is_empty() || !props.private_endpoint_connections.is_empty();
    if has_private {
        let Some(place) = ctx.placement(f) else { return };
        let links: Vec<_> = inv.links_of_zone(ACR_PRIVATE_ZONE).collect();
        let linked = |vnet_id: &str| links.iter().any(|l| same(&l.properties.virtual_network.id, vnet_id));
        let zone_exists = inv.private_dns_zones.iter().any(|z| z.name.eq_ignore_ascii_case(ACR_PRIVATE_ZONE));
        // With custom DNS servers, the node asks them, and they ask Azure's resolver from their
        // own VNet: that VNet's links decide, not the node VNet's.
        let servers =
            inv.virtual_network(&place.vnet_id).map(|v| v.properties.dns_servers().to_vec()).unwrap_or_default();
        if !servers.is_empty() && zone_exists {
            let homes: Vec<(String, Option<&Resource<_>>)> =
                servers.iter().map(|ip| (ip.clone(), vnet_holding(inv, ip))).collect();
            if homes.iter().all(|(_, home)| home.is_some_and(|v| linked(&v.id))) {
                // Every server resolves from a linked VNet: not a DNS matter.
                return;
            }
            custom_dns_not_forwarding(out, ctx, f, registry, &place, &homes);
            return;
        }
        if linked(&place.vnet_id) {
            // Linked: the node resolves the endpoint; a 403 there is not a DNS or firewall matter.
            return;
        }
        dns_not_linked(out, ctx, f, registry, &endpoints, &place);
        return;
    }
    if !props.public_access_enabled() {
        let d = Draft::new(
            FindingCode::AcrFirewallDeniesEgress,
            Confidence::High,
            f,
            format!("Registry {} has public network access disabled and no private endpoint, so no node can reach it.", registry.name),
        )
        .blame(Blame::new("Registry", registry.id.clone()).note("publicNetworkAccess Disabled, no private endpoint"))
        .line(format!("registry {}: publicNetworkAccess = Disabled, privateEndpointConnections = []", registry.name))
        .action(Action::Manual {
            change: None,
            description: format!(
                "enable public network access on {} with IP rules for the cluster's egress, or add a private endpoint in a VNet the cluster reaches",
                registry.name
            ),
            commands: vec![format!("az acr update -n {} --public-network-enabled true --default-action Deny", registry.name)],
        });
        out.add(&registry.id, f, d);
        return;
    }
    let Some(rules) = props.network_rule_set.as_ref().filter(|r| r.default_action.eq_ignore_ascii_case("Deny")) else {
        return;
    };
    let mut egress: Vec<(IpAddr, Option<String>)> = ctx
        .cluster
        .and_then(|c| c.properties.network_profile.as_ref()?.load_balancer_profile.as_ref())
        .map(|lb| {
            lb.effective_outbound_ips
                .iter()
                .filter_map(|r| inv.public_ip(&r.id)?.parse().ok().map(|ip| (ip, Some(r.id.clone()))))
                .collect()
        })
        .unwrap_or_default();
    for ip in &client_ips {
        if !egress.iter().any(|(e, _)| e == ip) {
            egress.push((*ip, None));
        }
    }
    let denied: Vec<&(IpAddr, Option<String>)> = egress.iter().filter(|(ip, _)| !rules.allows(*ip)).collect();
    let allowed: Vec<String> = rules.ip_rules.iter().map(|r| r.value.clone()).collect();
    let mut d = Draft::new(
        FindingCode::AcrFirewallDeniesEgress,
        if denied.is_empty() { Confidence::Medium } else { Confidence::High },
        f,
        if denied.is_empty() {
            format!(
                "The firewall of registry {} denies by default and the cluster's egress address is unknown.",
                registry.name
            )
        } else {
            format!(
                "The firewall of registry {} does not allow the cluster's egress address {}.",
                registry.name,
                denied.iter().map(|(ip, _)| ip.to_string()).collect::<Vec<_>>().join(", ")
            )
        },
    )
    .blame(Blame::new("Registry", registry.id.clone()).note("networkRuleSet denies the cluster's egress"))
    .line(format!(
        "registry {}: publicNetworkAccess = Enabled, networkRuleSet.defaultAction = Deny, ipRules = [{}]",
        registry.name,
        allowed.join(", ")
    ));
    for ip in &client_ips {
        d = d.line(format!("ACR answered 403: client with IP '{ip}' is not allowed access"));
    }
    for (ip, id) in &denied {
        d = d.line(match id {
            Some(id) => {
                format!("cluster {} egresses from {ip} ({}), which no IP rule allows", ctx.cluster_name(), name_of(id))
            }
            None => format!("{ip} is not allowed by any IP rule"),
        });
        d = d.action(Action::AddRegistryIpRule { registry_id: registry.id.clone(), ip: ip.to_string() });
    }
    if denied.is_empty() {
        d = d.line("the cluster's effectiveOutboundIPs are not in the inventory (NAT gateway or user-defined routing?)".to_string()).action(
            Action::Manual {
                change: None,
                description: format!("find the cluster's egress address and allow it in the firewall of {}", registry.name),
                commands: vec![
                    "EGRESS_IP=$(kubectl run egress-ip --rm -i -q --restart=Never --image=mcr.microsoft.com/azurelinux/base/core:3.0 -- curl -s https://ifconfig.me)".into(),
                    format!(
                        "az acr network-rule add --name {} --resource-group {} --ip-address \"$EGRESS_IP\"",
                        registry.name,
                        super::support::resource_group_of(&registry.id).unwrap_or_default()
                    ),
                ],
            },
        );
    }
    out.add(&registry.id, f, d);
}

/// The VNet whose address space holds `ip` (a custom DNS server's home).
fn vnet_holding<'a>(
    inv: &'a Inventory,
    ip: &str,
) -> Option<&'a Resource<azure_model::network::VirtualNetworkProperties>> {
    let ip: IpAddr = ip.parse().ok()?;
    inv.virtual_networks
        .iter()
        .find(|v| v.properties.address_space.address_prefixes.iter().any(|p| cidr_contains(p, ip)))
}

/// `CUSTOM_DNS_NOT_FORWARDING`: the node VNet's custom DNS servers resolve the registry
/// publicly. A server inside a VNet of the inventory asks Azure's resolver from that VNet, so
/// the zone must be linked there (high: link it, the fix is automatic). A server outside every
/// VNet of the inventory (on premises, another subscription) cannot be checked: medium, and
/// what it must do is said.
fn custom_dns_not_forwarding(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: &Registry,
    place: &Placement,
    homes: &[(String, Option<&Resource<azure_model::network::VirtualNetworkProperties>>)],
) {
    let inv = &ctx.evidence.azure;
    let Some(zone) = inv.private_dns_zones.iter().find(|z| z.name.eq_ignore_ascii_case(ACR_PRIVATE_ZONE)) else {
        return;
    };
    let links =
        |vnet_id: &str| inv.links_of_zone(ACR_PRIVATE_ZONE).any(|l| same(&l.properties.virtual_network.id, vnet_id));
    let linked: Vec<&str> =
        inv.links_of_zone(ACR_PRIVATE_ZONE).map(|l| name_of(&l.properties.virtual_network.id)).collect();
    let vnet = name_of(&place.vnet_id);
    let servers: Vec<&str> = homes.iter().map(|(ip, _)| ip.as_str()).collect();
    let unlinked: Vec<&Resource<azure_model::network::VirtualNetworkProperties>> =
        homes.iter().filter_map(|(_, h)| *h).filter(|v| !links(&v.id)).collect();
    let outside: Vec<&str> = homes.iter().filter(|(_, h)| h.is_none()).map(|(ip, _)| ip.as_str()).collect();
    let confidence = if unlinked.is_empty() { Confidence::Medium } else { Confidence::High };
    let summary = match unlinked.first() {
        Some(home) => format!(
            "The cluster VNet {vnet} uses the custom DNS server(s) {}, which ask Azure's resolver from VNet {}; {ACR_PRIVATE_ZONE} is not linked to {}, so nodes resolve registry {} to its public endpoint, which refuses them.",
            servers.join(", "),
            home.name,
            home.name,
            registry.name
        ),
        None => format!(
            "The cluster VNet {vnet} uses the custom DNS server(s) {}, outside every VNet of the inventory; they resolve registry {} to its public endpoint, which refuses them.",
            outside.join(", "),
            registry.name
        ),
    };
    let mut d = Draft::new(FindingCode::CustomDnsNotForwarding, confidence, f, summary)
        .line(format!("VNet {vnet}: dhcpOptions.dnsServers = [{}]", servers.join(", ")))
        .line(format!(
            "registry {}: publicNetworkAccess = {}",
            registry.name,
            registry.properties.public_network_access.as_deref().unwrap_or("Enabled")
        ))
        .line(format!("private DNS zone {ACR_PRIVATE_ZONE} is linked to [{}]", linked.join(", ")));
    if links(&place.vnet_id) {
        d = d.line(format!(
            "its link to {vnet} does not help: the nodes never ask Azure's resolver from {vnet}, their DNS servers do"
        ));
    }
    for home in &unlinked {
        let ips: Vec<&str> =
            homes.iter().filter(|(_, h)| h.is_some_and(|v| same(&v.id, &home.id))).map(|(ip, _)| ip.as_str()).collect();
        d = d
            .line(format!(
                "DNS server {} lies in VNet {} ({}), which is not linked to {ACR_PRIVATE_ZONE}",
                ips.join(", "),
                home.name,
                home.properties.address_space.address_prefixes.join(", ")
            ))
            .blame(
                Blame::new("PrivateDnsZone", zone.id.clone()).note(format!("no virtualNetworkLink to {}", home.name)),
            )
            .blame(
                Blame::new("VirtualNetwork", home.id.clone()).note("its DNS forwarder resolves the registry publicly"),
            )
            .action(Action::CreateVnetLink {
                zone_id: zone.id.clone(),
                link_name: format!("{}-link", home.name),
                vnet_id: home.id.clone(),
            });
    }
    if !outside.is_empty() {
        d = d
            .line(format!(
                "DNS server(s) {} lie in no VNet of the inventory (on premises or another subscription)",
                outside.join(", ")
            ))
            .blame(
                Blame::new("VirtualNetwork", place.vnet_id.clone())
                    .note("its custom DNS servers resolve the registry publicly"),
            )
            .action(Action::Manual {
                change: None,
                description: format!(
                    "make DNS server(s) {} forward {ACR_PRIVATE_ZONE} (and azurecr.io) to 168.63.129.16 from a VNet linked to the zone, e.g. through an Azure DNS Private Resolver inbound endpoint",
                    outside.join(", ")
                ),
                commands: vec![],
            });
    }
    out.add(&format!("{}|dns", registry.id), f, d);
}

fn dns_not_linked(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: &Registry,
    endpoints: &[&Endpoint],
    place: &Placement,
) {
    let inv = &ctx.evidence.azure;
    let zone = inv.private_dns_zones.iter().find(|z| z.name.eq_ignore_ascii_case(ACR_PRIVATE_ZONE));
    let linked: Vec<&str> =
        inv.links_of_zone(ACR_PRIVATE_ZONE).map(|l| name_of(&l.properties.virtual_network.id)).collect();
    let vnet = name_of(&place.vnet_id);
    let mut d = Draft::new(
        FindingCode::PrivateDnsZoneNotLinked,
        if zone.is_some() { Confidence::High } else { Confidence::Medium },
        f,
        format!(
            "The private DNS zone {ACR_PRIVATE_ZONE} is not linked to the cluster VNet {vnet}, so nodes resolve registry {} to its public endpoint, which refuses them.",
            registry.name
        ),
    )
    .line(format!(
        "registry {}: publicNetworkAccess = {}",
        registry.name,
        registry.properties.public_network_access.as_deref().unwrap_or("Enabled")
    ));
    for pe in endpoints {
        let ips: Vec<String> = endpoint_ips(inv, registry, pe).iter().map(IpAddr::to_string).collect();
        d = d.line(format!(
            "private endpoint {} ({}) in VNet {}",
            pe.name,
            ips.join(", "),
            pe.properties.subnet.as_ref().and_then(|s| vnet_of(&s.id)).as_deref().map(name_of).unwrap_or("?")
        ));
    }
    let action = match zone {
        Some(z) => {
            d = d
                .blame(Blame::new("PrivateDnsZone", z.id.clone()).note(format!("no virtualNetworkLink to {vnet}")))
                .line(format!(
                    "private DNS zone {ACR_PRIVATE_ZONE} is linked to [{}], not to the cluster VNet {vnet} ({})",
                    linked.join(", "),
                    place.vnet_id
                ));
            if let Some(rs) = inv.a_record_sets.iter().find(|r| r.name.eq_ignore_ascii_case(&registry.name)) {
                let ips: Vec<&str> = rs.properties.a_records.iter().map(|a| a.ipv4_address.as_str()).collect();
                d = d.line(format!(
                    "zone record {}.{ACR_PRIVATE_ZONE} -> {} (what linked VNets resolve)",
                    rs.name,
                    ips.join(", ")
                ));
            }
            Action::CreateVnetLink {
                zone_id: z.id.clone(),
                link_name: format!("{vnet}-link"),
                vnet_id: place.vnet_id.clone(),
            }
        }
        None => {
            d = d
                .blame(
                    Blame::new("VirtualNetwork", place.vnet_id.clone())
                        .note(format!("resolves {ACR_PRIVATE_ZONE} publicly")),
                )
                .line(format!("the inventory has no {ACR_PRIVATE_ZONE} zone; no VNet resolves the private endpoint"));
            Action::Manual {
                change: None,
                description: format!(
                    "create the {ACR_PRIVATE_ZONE} zone with the endpoint's records (a private DNS zone group) and link it to {vnet}"
                ),
                commands: {
                    // The zone goes beside the (first) endpoint, else beside the registry.
                    let home = endpoints.first().map(|pe| pe.id.as_str()).unwrap_or(registry.id.as_str());
                    let rg = super::support::resource_group_of(home).unwrap_or_default();
                    let zone_id = format!(
                        "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Network/privateDnsZones/{ACR_PRIVATE_ZONE}",
                        azure_model::ResourceId::parse(home)
                            .ok()
                            .and_then(|i| i.subscription().map(str::to_string))
                            .unwrap_or_default()
                    );
                    let mut c = vec![
                        format!("az network private-dns zone create -g {rg} -n {ACR_PRIVATE_ZONE}"),
                        format!(
                            "az network private-dns link vnet create -g {rg} -z {ACR_PRIVATE_ZONE} -n {vnet}-link -v {} -e false",
                            place.vnet_id
                        ),
                    ];
                    c.extend(endpoints.iter().map(|pe| {
                        format!(
                            "az network private-endpoint dns-zone-group create -g {} --endpoint-name {} -n default --private-dns-zone {zone_id} --zone-name registry",
                            super::support::resource_group_of(&pe.id).unwrap_or_default(),
                            pe.name
                        )
                    }));
                    c
                },
            }
        }
    };
    d = d
        .line("so the registry name resolves to its public address, where access is refused (403)".to_string())
        .action(action);
    out.add(&format!("{}|{}", place.vnet_id, registry.id), f, d);
}

// ---------------------------------------------------------------------------------------
// timeouts

fn path(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure) {
    let inv = &ctx.evidence.azure;
    let Some(registry) = known_registry(ctx, f) else { return };
    let Some(place) = ctx.placement(f) else { return };
    let endpoints = endpoints_of(inv, registry);
    let dialed: Option<(IpAddr, u16)> = f.symptom.attempts.iter().find_map(|a| {
        let (ip, port) = a.dialed.as_deref()?.rsplit_once(':')?;
        Some((ip.trim_matches(['[', ']']).parse().ok()?, port.parse().ok()?))
    });
    // The endpoint the pull went to (or would go to), and every address on the way.
    let target = endpoints
        .iter()
        .map(|pe| (*pe, endpoint_ips(inv, registry, pe)))
        .find(|(_, ips)| dialed.is_none_or(|(d, _)| ips.contains(&d)));
    let port = dialed.map(|(_, p)| p).unwrap_or(443);
    let destinations: Vec<IpAddr> = match (&target, dialed) {
        (Some((_, ips)), _) => ips.clone(),
        (None, Some((ip, _))) => vec![ip],
        (None, None) => return,
    };
    let Some(&first) = destinations.first() else { return };

    let route_table = place
        .subnet
        .as_ref()
        .and_then(|s| s.route_table.as_ref())
        .and_then(|r| inv.route_tables.iter().find(|t| same(&t.id, &r.id)));
    let transit = route_table.and_then(|t| effective_route(&t.properties, first)).is_some_and(|r| {
        ["VirtualAppliance", "VirtualNetworkGateway"].iter().any(|h| r.properties.next_hop_type.eq_ignore_ascii_case(h))
    });

    // Approval is judged only for an endpoint known to be the one the pull went to: the only
    // one of the registry, or the only one holding the dialled address (endpoints of other
    // teams, or addresses known only from the zone's records, make it ambiguous: then nothing
    // is said, and certainly nothing approved).
    let went_to: Vec<&Endpoint> = match dialed {
        Some((d, _)) => endpoints.iter().copied().filter(|pe| endpoint_ips(inv, registry, pe).contains(&d)).collect(),
        None => endpoints.clone(),
    };
    if let [pe] = went_to.as_slice() {
        not_approved(out, f, registry, pe, dialed.map(|(d, _)| d).unwrap_or(first), port);
    }

    if let Some((pe, _)) = &target
        && let Some(pe_vnet) = pe.properties.subnet.as_ref().and_then(|s| vnet_of(&s.id))
        && !same(&pe_vnet, &place.vnet_id)
        && !transit
    {
        peering(out, ctx, f, registry, pe, &place.vnet_id, &pe_vnet, first, port);
    }

    // NSG on the node subnet (outbound), and on the endpoint's subnet (inbound).
    let node_nsg = place
        .subnet
        .as_ref()
        .and_then(|s| s.network_security_group.as_ref())
        .and_then(|n| inv.network_security_groups.iter().find(|g| same(&g.id, &n.id)));
    let pe_nsg = target
        .as_ref()
        .and_then(|(pe, _)| inv.subnet(&pe.properties.subnet.as_ref()?.id)?.network_security_group)
        .and_then(|n| inv.network_security_groups.iter().find(|g| same(&g.id, &n.id)));
    let vnet_space = vnet_space(ctx, &place.vnet_id);
    let src = place.node_ip;
    // The whole node subnet is affected: say so rather than one node's address.
    let from = place
        .subnet
        .as_ref()
        .and_then(|s| s.address_prefix.clone())
        .map(|p| format!("node subnet {} ({p})", name_of(&place.subnet_id)))
        .or_else(|| src.map(|s| s.to_string()))
        .unwrap_or_default();
    let pe_subnet = target
        .as_ref()
        .and_then(|(pe, _)| pe.properties.subnet.as_ref())
        .map(|s| name_of(&s.id).to_string())
        .unwrap_or_default();
    for (nsg, outbound, subnet) in [(node_nsg, true, name_of(&place.subnet_id)), (pe_nsg, false, pe_subnet.as_str())] {
        let Some(nsg) = nsg else { continue };
        let Some(src) = src else { continue };
        let mut blocked: Vec<(IpAddr, &Child<SecurityRuleProperties>)> = Vec::new();
        for dst in &destinations {
            if let Some(rule) = nsg_blocks(&nsg.properties, outbound, src, *dst, port, &vnet_space) {
                blocked.push((*dst, rule));
            }
        }
        if let Some((_, rule)) = blocked.first() {
            let data = target.as_ref().map(|(pe, _)| data_endpoint_ips(inv, registry, pe)).unwrap_or_default();
            nsg_finding(out, f, registry, nsg, rule, outbound, src, &blocked, port, subnet, &from, &data);
        }
    }

    // Route table on the node subnet.
    if let Some(table) = route_table {
        for dst in &destinations {
            let system = system_prefixes(ctx, &place.vnet_id);
            let chosen = super::route::select(&table.properties, &system, *dst);
            if let super::route::Selected::User(route) = chosen
                && chosen.drops()
            {
                let route_id = route.id.clone().unwrap_or_else(|| format!("{}/routes/{}", table.id, route.name));
                let in_vnet = cidr_in_vnet(ctx, &place.vnet_id, *dst);
                let public = !is_private(*dst);
                let mut d = Draft::new(
                    FindingCode::RouteBlackhole,
                    Confidence::High,
                    f,
                    format!(
                        "Route {} in route table {} on the node subnet sends traffic for registry {} ({dst}) nowhere (next hop None).",
                        route.name, table.name, registry.name
                    ),
                )
                .blame(Blame::new("Route", route_id.clone()).note(format!("{} -> None", route.properties.address_prefix)))
                .line(format!(
                    "node subnet {} uses route table {}; its route for {dst} is {} ({} -> next hop None): packets are dropped",
                    name_of(&place.subnet_id),
                    table.name,
                    route.name,
                    route.properties.address_prefix
                ))
                .line(format!("the pull dialled {dst}:{port} and timed out"));
                d = if in_vnet || public {
                    d.action(Action::SetRouteNextHop {
                        route_table_id: table.id.clone(),
                        route_name: route.name.clone(),
                        address_prefix: route.properties.address_prefix.clone(),
                        next_hop_type: if public { "Internet".into() } else { "VnetLocal".into() },
                    })
                } else {
                    d.action(delete_route(
                        table,
                        route,
                        &route_id,
                        format!(
                            "route {} blackholes {}: remove it so the peering's system route applies, or point it at the hub's firewall (VirtualAppliance)",
                            route.name, route.properties.address_prefix
                        ),
                    ))
                };
                out.add(&route_id, f, d);
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TLS on the path

/// `TLS_INTERCEPTED` and `TLS_HANDSHAKE_TIMEOUT`: the pull reached something that spoke TLS
/// wrongly (a certificate the node does not trust) or not at all (the handshake timed out), and
/// the node subnet's route for the registry's private address sends it through an appliance
/// (next hop `VirtualAppliance`). What the appliance does is out of ARM's sight; the error is
/// what it did, the route is why the traffic went there. Without such a route nothing is said.
fn tls(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure) {
    let text = |needle: &str| f.symptom.attempts.iter().any(|a| a.detail.to_ascii_lowercase().contains(needle));
    let code = if f.symptom.class == SymptomClass::Tls && text("unknown authority") {
        FindingCode::TlsIntercepted
    } else if text("tls handshake timeout") {
        FindingCode::TlsHandshakeTimeout
    } else {
        return;
    };
    let inv = &ctx.evidence.azure;
    let Some(registry) = known_registry(ctx, f) else { return };
    let Some(place) = ctx.placement(f) else { return };
    let Some(table) = place
        .subnet
        .as_ref()
        .and_then(|s| s.route_table.as_ref())
        .and_then(|r| inv.route_tables.iter().find(|t| same(&t.id, &r.id)))
    else {
        return;
    };
    let system = system_prefixes(ctx, &place.vnet_id);
    let destinations: Vec<IpAddr> =
        endpoints_of(inv, registry).iter().flat_map(|pe| endpoint_ips(inv, registry, pe)).collect();
    for dst in destinations {
        let super::route::Selected::User(route) = super::route::select(&table.properties, &system, dst) else {
            continue;
        };
        let p = &route.properties;
        if !p.next_hop_type.eq_ignore_ascii_case("VirtualAppliance") {
            continue;
        }
        let hop = p.next_hop_ip_address.clone().unwrap_or_else(|| "(no address)".into());
        let route_id = route.id.clone().unwrap_or_else(|| format!("{}/routes/{}", table.id, route.name));
        let (what, did) = match code {
            FindingCode::TlsIntercepted => (
                "intercepts TLS: it presented a certificate from a CA the node does not trust",
                "the pull's TLS handshake failed: x509: certificate signed by unknown authority",
            ),
            _ => (
                "accepts the connection and never completes the TLS handshake",
                "the pull's TLS handshake timed out (net/http: TLS handshake timeout) after the connection was made",
            ),
        };
        let d = Draft::new(
            code,
            Confidence::High,
            f,
            format!(
                "Route {} in route table {} sends traffic for registry {} ({dst}) through the appliance at {hop}, which {what}.",
                route.name, table.name, registry.name
            ),
        )
        .blame(Blame::new("Route", route_id.clone()).note(format!("{} -> VirtualAppliance {hop}", p.address_prefix)))
        .blame(Blame::new("RouteTable", table.id.clone()).note(format!("sends {dst} through {hop}")))
        .line(format!(
            "node subnet {} uses route table {}; its route for {dst} is {} ({} -> VirtualAppliance {hop})",
            name_of(&place.subnet_id),
            table.name,
            route.name,
            p.address_prefix
        ))
        .line(did.to_string())
        .action(delete_route(
            table,
            route,
            &route_id,
            format!(
                "let registry traffic past the appliance at {hop}: exempt *.azurecr.io and *.data.azurecr.io from its TLS inspection, or remove route {} so the peering's system route applies (AKS does not trust an inspection CA by default)",
                route.name
            ),
        ));
        out.add(&route_id, f, d);
        return;
    }
}

/// A manual step deleting `route` of `table` (typed as its deletion; pulldoctor never deletes).
fn delete_route(
    table: &Resource<azure_model::network::RouteTableProperties>,
    route: &Child<azure_model::network::RouteProperties>,
    route_id: &str,
    description: String,
) -> Action {
    Action::Manual {
        change: Some(Change::delete(route_id.to_string())),
        description,
        commands: vec![format!(
            "az network route-table route delete -g {} --route-table-name {} -n {}",
            super::support::resource_group_of(&table.id).unwrap_or_default(),
            table.name,
            route.name
        )],
    }
}

/// The state of `pe`'s connection to `registry`: as the registry lists it (with the
/// connection's id, which approving needs), else as the endpoint holds it.
fn connection_state(registry: &Registry, pe: &Endpoint) -> Option<(Option<String>, String, String)> {
    let listed = registry.properties.private_endpoint_connections.iter().find_map(|c| {
        c.properties.private_endpoint.as_ref().filter(|p| same(&p.id, &pe.id))?;
        let state = c.properties.private_link_service_connection_state.as_ref()?;
        Some((c.id.clone(), state.status.clone(), state.description.clone().unwrap_or_default()))
    });
    listed.or_else(|| {
        pe.properties.connections().find_map(|c| {
            if !same(&c.properties.private_link_service_id, &registry.id) {
                return None;
            }
            let state = c.properties.private_link_service_connection_state.as_ref()?;
            Some((None, state.status.clone(), state.description.clone().unwrap_or_default()))
        })
    })
}

/// `PRIVATE_ENDPOINT_NOT_APPROVED`: the endpoint the pull went to has a connection the registry
/// has not approved, so its address carries no traffic.
fn not_approved(out: &mut Findings, f: &PullFailure, registry: &Registry, pe: &Endpoint, dst: IpAddr, port: u16) {
    let Some((connection_id, status, description)) = connection_state(registry, pe) else { return };
    if status.eq_ignore_ascii_case("Approved") {
        return;
    }
    let manual = pe
        .properties
        .manual_private_link_service_connections
        .iter()
        .any(|c| same(&c.properties.private_link_service_id, &registry.id));
    let mut d = Draft::new(
        FindingCode::PrivateEndpointNotApproved,
        Confidence::High,
        f,
        format!(
            "Registry {}'s private endpoint {} has a connection in state {status}, not Approved, so its address {dst} carries no traffic.",
            registry.name, pe.name
        ),
    )
    .blame(Blame::new("Registry", registry.id.clone()).note(format!("connection from {} is {status}", pe.name)))
    .blame(Blame::new("PrivateEndpoint", pe.id.clone()).note(format!("connection {status}")))
    .line(format!(
        "registry {}: privateEndpointConnections[{}].privateLinkServiceConnectionState.status = {status}{}",
        registry.name,
        connection_id.as_deref().map(name_of).unwrap_or(pe.name.as_str()),
        if description.is_empty() { String::new() } else { format!(" (\"{description}\")") }
    ));
    if manual {
        d = d.line(format!(
            "private endpoint {} asks for the connection manually (manualPrivateLinkServiceConnections): it waits for the registry's owner",
            pe.name
        ));
    }
    d = d.line(format!(
        "the node resolves the registry to the endpoint's address {dst}; the pull dialled {dst}:{port} and timed out"
    ));
    let (rg, registry_name) = (super::support::resource_group_of(&registry.id).unwrap_or_default(), &registry.name);
    d = match (connection_id, status.to_ascii_lowercase().as_str()) {
        // Nobody decided yet: approving is the registry owner's ordinary step.
        (Some(id), "pending") => d.action(Action::ApprovePrivateEndpointConnection { connection_id: id }),
        (None, "pending") => d.action(Action::Manual {
            change: None,
            description: format!(
                "approve the connection of private endpoint {} on registry {registry_name} (the registry does not list it in this inventory)",
                pe.name
            ),
            commands: vec![
                format!(
                    "az network private-endpoint-connection list --id {} --query \"[?properties.privateEndpoint.id=='{}'].name\" -o tsv",
                    registry.id, pe.id
                ),
                format!(
                    "az network private-endpoint-connection approve -g {rg} --resource-name {registry_name} --type Microsoft.ContainerRegistry/registries -n NAME --description \"Approved for AKS image pulls\""
                ),
            ],
        }),
        // Someone refused it: a decision for the registry's owner, never overridden here.
        (id, "rejected") => d.action(Action::Manual {
            change: None,
            description: format!(
                "the registry's owner rejected the connection of private endpoint {}: ask them to approve it (or to say which endpoint the cluster should use)",
                pe.name
            ),
            commands: vec![match id {
                Some(id) => format!("az network private-endpoint-connection approve --id {id} --description \"Approved for AKS image pulls\""),
                None => format!(
                    "az network private-endpoint-connection approve -g {rg} --resource-name {registry_name} --type Microsoft.ContainerRegistry/registries -n NAME"
                ),
            }],
        }),
        // Disconnected (the registry's owner removed the connection) or anything else: the
        // endpoint must ask again.
        _ => d.action(Action::Manual {
            change: None,
            description: format!(
                "the connection of private endpoint {} is {status} (the registry's owner removed it): delete the endpoint and create it again, then have the registry's owner approve it",
                pe.name
            ),
            commands: vec![format!(
                "az network private-endpoint delete --ids {}  # then re-create it for registry {registry_name}",
                pe.id
            )],
        }),
    };
    out.add(&format!("approval|{}", pe.id), f, d);
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || cidr_contains("100.64.0.0/10", ip)
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || v6.is_loopback(),
    }
}

fn cidr_in_vnet(ctx: &Context<'_>, vnet_id: &str, ip: IpAddr) -> bool {
    ctx.evidence
        .azure
        .virtual_network(vnet_id)
        .is_some_and(|v| v.properties.address_space.address_prefixes.iter().any(|p| cidr_contains(p, ip)))
}

/// The node subnet's system route prefixes: its VNet's and connected peered VNets' address
/// spaces, and the default route.
fn system_prefixes(ctx: &Context<'_>, vnet_id: &str) -> Vec<String> {
    let inv = &ctx.evidence.azure;
    let mut out: Vec<String> =
        inv.virtual_network(vnet_id).map(|v| v.properties.address_space.address_prefixes.clone()).unwrap_or_default();
    for (_, p) in inv.peerings_of(vnet_id) {
        if p.is_connected()
            && let Some(remote) = inv.virtual_network(&p.remote_virtual_network.id)
        {
            out.extend(remote.properties.address_space.address_prefixes.iter().cloned());
        }
    }
    out.push("0.0.0.0/0".into());
    out
}

/// The address space the `VirtualNetwork` service tag stands for, seen from `vnet_id`: its own
/// prefixes and those of the VNets it is peered with.
fn vnet_space(ctx: &Context<'_>, vnet_id: &str) -> Vec<String> {
    let inv = &ctx.evidence.azure;
    let mut out: Vec<String> =
        inv.virtual_network(vnet_id).map(|v| v.properties.address_space.address_prefixes.clone()).unwrap_or_default();
    for (_, p) in inv.peerings_of(vnet_id) {
        if let Some(remote) = inv.virtual_network(&p.remote_virtual_network.id) {
            out.extend(remote.properties.address_space.address_prefixes.iter().cloned());
        }
    }
    out
}

/// Whether an address prefix (CIDR, `*` or a service tag) of a rule covers `ip`.
fn prefix_covers(prefix: &str, ip: IpAddr, vnet_space: &[String]) -> bool {
    let p = prefix.trim();
    if p == "*" || p.eq_ignore_ascii_case("Any") {
        return true;
    }
    if p.eq_ignore_ascii_case("VirtualNetwork") {
        return vnet_space.iter().any(|c| cidr_contains(c, ip));
    }
    if p.eq_ignore_ascii_case("Internet") {
        return !is_private(ip);
    }
    // The registry's public service tag covers public registry addresses, never a private endpoint.
    if p.to_ascii_lowercase().starts_with("azurecontainerregistry") {
        return !is_private(ip);
    }
    cidr_contains(p, ip)
}

fn port_covers(range: &str, port: u16) -> bool {
    let r = range.trim();
    if r == "*" {
        return true;
    }
    match r.split_once('-') {
        Some((a, b)) => {
            matches!((a.trim().parse::<u16>(), b.trim().parse::<u16>()), (Ok(a), Ok(b)) if a <= port && port <= b)
        }
        None => r.parse::<u16>() == Ok(port),
    }
}

fn rule_covers(
    r: &SecurityRuleProperties,
    outbound: bool,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    vnet_space: &[String],
) -> bool {
    let direction = if outbound { "Outbound" } else { "Inbound" };
    r.direction.eq_ignore_ascii_case(direction)
        && (r.protocol == "*" || r.protocol.eq_ignore_ascii_case("Tcp"))
        && prefix_covers(&r.source_address_prefix, src, vnet_space)
        && (prefix_covers(&r.destination_address_prefix, dst, vnet_space)
            || r.destination_address_prefixes.iter().any(|p| prefix_covers(p, dst, vnet_space)))
        && (port_covers(&r.destination_port_range, port)
            || r.destination_port_ranges.iter().any(|p| port_covers(p, port)))
}

/// The deny rule that decides TCP `src -> dst:port` in `nsg`, when one does: the matching rule
/// with the lowest priority number wins; Azure's default rules allow VNet-to-VNet and outbound
/// traffic. Service tags are resolved (`VirtualNetwork` to `vnet_space`).
pub(crate) fn nsg_blocks<'a>(
    nsg: &'a NetworkSecurityGroupProperties,
    outbound: bool,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    vnet_space: &[String],
) -> Option<&'a Child<SecurityRuleProperties>> {
    nsg.security_rules
        .iter()
        .filter(|r| rule_covers(&r.properties, outbound, src, dst, port, vnet_space))
        .min_by_key(|r| r.properties.priority)
        .filter(|r| r.properties.denies())
}

#[allow(clippy::too_many_arguments)]
fn nsg_finding(
    out: &mut Findings,
    f: &PullFailure,
    registry: &Registry,
    nsg: &Resource<NetworkSecurityGroupProperties>,
    rule: &Child<SecurityRuleProperties>,
    outbound: bool,
    src: IpAddr,
    blocked: &[(IpAddr, &Child<SecurityRuleProperties>)],
    port: u16,
    subnet: &str,
    from: &str,
    data: &[(IpAddr, String)],
) {
    let r = &rule.properties;
    let rule_id = rule.id.clone().unwrap_or_else(|| format!("{}/securityRules/{}", nsg.id, rule.name));
    let direction = if outbound { "Outbound" } else { "Inbound" };
    let dests: Vec<String> = blocked.iter().map(|(ip, _)| ip.to_string()).collect();
    let at = dests.iter().map(|d| format!("{d}:{port}")).collect::<Vec<_>>().join(" and ");
    // Only the data endpoint is cut off: manifests come through, layers do not.
    let data_only: Vec<&(IpAddr, String)> =
        data.iter().filter(|(ip, _)| blocked.iter().any(|(b, _)| b == ip)).collect();
    let data_only = (data_only.len() == blocked.len()).then_some(data_only);
    let (code, summary) = match &data_only {
        Some(hosts) => (
            FindingCode::DataEndpointBlocked,
            format!(
                "Rule {} (priority {}) of network security group {} denies the nodes' traffic to the data endpoint {} of registry {} at {at}: manifests resolve, layer downloads (redirected there) time out.",
                rule.name,
                r.priority,
                nsg.name,
                hosts.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(", "),
                registry.name
            ),
        ),
        None => (
            FindingCode::NsgBlocksRegistry,
            format!(
                "Rule {} (priority {}) of network security group {} denies the nodes' traffic to registry {} at {at}.",
                rule.name, r.priority, nsg.name, registry.name
            ),
        ),
    };
    let mut d = Draft::new(code, Confidence::High, f, summary);
    if let Some(hosts) = &data_only {
        for (ip, host) in hosts {
            d = d.line(format!(
                "registry {} serves layers from its data endpoint {host} ({ip} on its private endpoint): the manifest resolved, the layer download went there",
                registry.name
            ));
        }
    }
    d = d
    .blame(Blame::new("SecurityRule", rule_id.clone()).note(format!("{direction} Deny, priority {}", r.priority)))
    .line(format!("{} subnet {subnet} has NSG {}", if outbound { "node" } else { "private endpoint" }, nsg.name))
    .line(format!(
        "NSG {}: rule {} (priority {}, {direction}, {}, {} {} -> {}:{}) is the first match for TCP from {from} to {}:{port}",
        nsg.name,
        rule.name,
        r.priority,
        r.access,
        r.protocol,
        r.source_address_prefix,
        if r.destination_address_prefixes.is_empty() { r.destination_address_prefix.clone() } else { r.destination_address_prefixes.join(",") },
        if r.destination_port_ranges.is_empty() { r.destination_port_range.clone() } else { r.destination_port_ranges.join(",") },
        dests.join(", ")
    ));
    let used: Vec<u32> = nsg
        .properties
        .security_rules
        .iter()
        .filter(|x| x.properties.direction.eq_ignore_ascii_case(direction))
        .map(|x| x.properties.priority)
        .collect();
    let mut next = r.priority;
    let mut actions = Vec::new();
    for (ip, _) in blocked {
        let free = (100..next).rev().find(|p| {
            !used.contains(p)
                && !actions.iter().any(|a| matches!(a, Action::AllowNsgRule { priority, .. } if priority == p))
        });
        match (outbound, free) {
            (true, Some(p)) => {
                next = p;
                actions.push(Action::AllowNsgRule {
                    nsg_id: nsg.id.clone(),
                    rule_name: format!("allow-{}-{}", registry.name, ip.to_string().replace(['.', ':'], "-")),
                    priority: p,
                    destination: ip.to_string(),
                    port,
                });
            }
            (_, free) => {
                // A free priority ahead of the blocking rule, or (none left) one a person frees.
                let mut commands = Vec::new();
                let priority = match free {
                    Some(p) => {
                        next = p;
                        p.to_string()
                    }
                    None => {
                        commands.push(format!(
                            "# PRIORITY: a free priority below {} in NSG {} (none is free: give rule {} a higher number first)",
                            r.priority, nsg.name, rule.name
                        ));
                        "\"$PRIORITY\"".to_string()
                    }
                };
                commands.push(format!(
                    "az network nsg rule create -g {} --nsg-name {} -n allow-{}-{} --priority {priority} --direction {direction} --access Allow --protocol Tcp --destination-address-prefixes {ip} --destination-port-ranges {port}",
                    super::support::resource_group_of(&nsg.id).unwrap_or_default(),
                    nsg.name,
                    registry.name,
                    ip.to_string().replace(['.', ':'], "-"),
                ));
                actions.push(Action::Manual {
                    change: None,
                    description: format!(
                        "allow TCP {src} -> {ip}:{port} ({direction}) in NSG {} ahead of rule {} (priority {})",
                        nsg.name, rule.name, r.priority
                    ),
                    commands,
                });
            }
        }
    }
    d = d.actions(actions);
    out.add(&rule_id, f, d);
}

/// One side of a peering between two VNets.
struct Side {
    vnet: String,
    remote: String,
    /// The peering's id and properties, if it exists.
    peering: Option<(String, PeeringProperties)>,
}

impl Side {
    fn find(inv: &Inventory, vnet: &str, remote: &str) -> Self {
        let peering = inv.peerings_of(vnet).into_iter().find(|(_, p)| same(&p.remote_virtual_network.id, remote));
        Side { vnet: vnet.to_string(), remote: remote.to_string(), peering }
    }

    fn state(&self) -> &str {
        self.peering.as_ref().and_then(|(_, p)| p.peering_state.as_deref()).unwrap_or("(absent)")
    }

    fn describe(&self) -> String {
        match &self.peering {
            Some((id, p)) => format!(
                "peering {} on {} -> {}: peeringState {}{}",
                name_of(id),
                name_of(&self.vnet),
                name_of(&self.remote),
                p.peering_state.as_deref().unwrap_or("unknown"),
                if p.allow_virtual_network_access { "" } else { ", allowVirtualNetworkAccess false" }
            ),
            None => format!("no peering on {} -> {}", name_of(&self.vnet), name_of(&self.remote)),
        }
    }

    fn conventional_name(&self) -> String {
        format!("{}-to-{}", name_of(&self.vnet), name_of(&self.remote))
    }

    fn create(&self) -> Action {
        let name =
            self.peering.as_ref().map(|(id, _)| name_of(id).to_string()).unwrap_or_else(|| self.conventional_name());
        Action::CreatePeering { vnet_id: self.vnet.clone(), name, remote_vnet_id: self.remote.clone() }
    }
}

#[allow(clippy::too_many_arguments)]
fn peering(
    out: &mut Findings,
    ctx: &Context<'_>,
    f: &PullFailure,
    registry: &Registry,
    pe: &Endpoint,
    node_vnet: &str,
    pe_vnet: &str,
    dst: IpAddr,
    port: u16,
) {
    let inv = &ctx.evidence.azure;
    let local = Side::find(inv, node_vnet, pe_vnet);
    let remote = Side::find(inv, pe_vnet, node_vnet);
    let remote_known = inv.virtual_network(pe_vnet).is_some();
    let connected = |s: &Side| s.peering.as_ref().is_some_and(|(_, p)| p.is_connected());
    // A Connected side implies the other side exists and is Connected too.
    if connected(&local) && (connected(&remote) || !remote_known) {
        return;
    }
    let key = format!("{}|{}", node_vnet.to_ascii_lowercase(), pe_vnet.to_ascii_lowercase());
    let path = format!(
        "private endpoint {} of registry {} ({dst}) is in VNet {}; the nodes are in VNet {}",
        pe.name,
        registry.name,
        name_of(pe_vnet),
        name_of(node_vnet)
    );
    let timed_out = format!("the pull dialled {dst}:{port} and timed out");
    if local.peering.is_none() && remote.peering.is_none() {
        let d = Draft::new(
            FindingCode::VnetPeeringMissing,
            if remote_known { Confidence::High } else { Confidence::Medium },
            f,
            format!(
                "No VNet peering connects the cluster VNet {} to VNet {} of registry {}'s private endpoint.",
                name_of(node_vnet),
                name_of(pe_vnet),
                registry.name
            ),
        )
        .blame(Blame::new("VirtualNetwork", node_vnet.to_string()).note(format!("no peering to {}", name_of(pe_vnet))))
        .blame(Blame::new("VirtualNetwork", pe_vnet.to_string()).note(format!("no peering to {}", name_of(node_vnet))))
        .line(path)
        .line(local.describe())
        .line(if remote_known {
            remote.describe()
        } else {
            format!("VNet {} is not in the inventory", name_of(pe_vnet))
        })
        .line(timed_out)
        .action(local.create())
        .action(remote.create());
        out.add(&key, f, d);
        return;
    }
    let mut d = Draft::new(
        FindingCode::VnetPeeringDisconnected,
        Confidence::High,
        f,
        format!(
            "The VNet peering between {} and {} (registry {}'s private endpoint) is not connected: {} is {}, {} is {}.",
            name_of(node_vnet),
            name_of(pe_vnet),
            registry.name,
            local.peering.as_ref().map(|(id, _)| name_of(id).to_string()).unwrap_or_else(|| local.conventional_name()),
            local.state(),
            remote
                .peering
                .as_ref()
                .map(|(id, _)| name_of(id).to_string())
                .unwrap_or_else(|| remote.conventional_name()),
            remote.state()
        ),
    )
    .line(path)
    .line(local.describe())
    .line(if remote_known { remote.describe() } else { format!("VNet {} is not in the inventory", name_of(pe_vnet)) })
    .line(timed_out);
    // The cluster's side first: re-created from Disconnected it is Initiated, and creating
    // the missing side then connects both.
    for side in [&local, &remote] {
        let Some((id, p)) = &side.peering else {
            if remote_known || !same(&side.vnet, pe_vnet) {
                d = d
                    .blame(
                        Blame::new("VirtualNetwork", side.vnet.clone())
                            .note(format!("its side of the peering to {} is missing", name_of(&side.remote))),
                    )
                    .action(side.create());
            }
            continue;
        };
        let state = p.peering_state.as_deref().unwrap_or_default();
        if state.eq_ignore_ascii_case(peering_state::DISCONNECTED) {
            d = d
                .blame(
                    Blame::new("VirtualNetworkPeering", id.clone())
                        .note("peeringState Disconnected: must be re-created"),
                )
                .action(side.create());
        } else if state.eq_ignore_ascii_case(peering_state::INITIATED) {
            d = d.blame(
                Blame::new("VirtualNetworkPeering", id.clone())
                    .note("peeringState Initiated: the other side is missing"),
            );
        } else if !p.allow_virtual_network_access {
            d = d.blame(Blame::new("VirtualNetworkPeering", id.clone()).note("allowVirtualNetworkAccess false")).action(Action::Manual {
                change: None,
                description: format!("allow virtual network access on peering {}", name_of(id)),
                commands: vec![format!(
                    "az network vnet peering update -g {} --vnet-name {} -n {} --set allowVirtualNetworkAccess=true",
                    super::support::resource_group_of(&side.vnet).unwrap_or_default(),
                    name_of(&side.vnet),
                    name_of(id)
                )],
            });
        }
    }
    out.add(&key, f, d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_model::network::SecurityRuleProperties;

    fn rule(name: &str, prio: u32, access: &str, dir: &str, dst: &str, port: &str) -> Child<SecurityRuleProperties> {
        Child {
            id: None,
            name: name.into(),
            properties: SecurityRuleProperties {
                protocol: "*".into(),
                source_port_range: "*".into(),
                destination_port_range: port.into(),
                destination_port_ranges: vec![],
                source_address_prefix: "*".into(),
                destination_address_prefix: dst.into(),
                destination_address_prefixes: vec![],
                access: access.into(),
                priority: prio,
                direction: dir.into(),
                description: None,
            },
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nsg_lowest_priority_number_wins() {
        let space = vec!["10.10.0.0/16".to_string(), "10.20.0.0/16".to_string()];
        let nsg = NetworkSecurityGroupProperties {
            security_rules: vec![
                rule("deny-hub", 200, "Deny", "Outbound", "10.20.0.0/16", "*"),
                rule("allow-acr", 150, "Allow", "Outbound", "10.20.1.4", "443"),
                rule("deny-in", 100, "Deny", "Inbound", "*", "*"),
            ],
            provisioning_state: None,
        };
        // The allow at 150 beats the deny at 200 for the endpoint, not for its neighbour.
        assert!(nsg_blocks(&nsg, true, ip("10.10.0.4"), ip("10.20.1.4"), 443, &space).is_none());
        assert_eq!(nsg_blocks(&nsg, true, ip("10.10.0.4"), ip("10.20.1.5"), 443, &space).unwrap().name, "deny-hub");
        // Direction matters.
        assert_eq!(nsg_blocks(&nsg, false, ip("10.10.0.4"), ip("10.20.1.5"), 443, &space).unwrap().name, "deny-in");
        // Tags: VirtualNetwork covers peered space; Internet does not cover private addresses.
        let tags = NetworkSecurityGroupProperties {
            security_rules: vec![
                rule("deny-internet", 100, "Deny", "Outbound", "Internet", "*"),
                rule("deny-vnet-443", 110, "Deny", "Outbound", "VirtualNetwork", "443"),
            ],
            provisioning_state: None,
        };
        assert_eq!(
            nsg_blocks(&tags, true, ip("10.10.0.4"), ip("10.20.1.4"), 443, &space).unwrap().name,
            "deny-vnet-443"
        );
        assert!(nsg_blocks(&tags, true, ip("10.10.0.4"), ip("10.30.0.4"), 443, &space).is_none());
        assert_eq!(
            nsg_blocks(&tags, true, ip("10.10.0.4"), ip("20.50.1.1"), 443, &space).unwrap().name,
            "deny-internet"
        );
    }

    #[test]
    fn port_ranges() {
        assert!(port_covers("400-500", 443));
        assert!(!port_covers("80", 443));
        assert!(port_covers("*", 443));
    }
}

#[cfg(test)]
mod world_tests {
    use serde_json::json;

    use super::super::world::*;
    use crate::finding::{Confidence, FindingCode};
    use crate::plan::Action;

    fn timeout(w: &mut World) {
        w.break_rollout("web", None, |rt, img| rt.request(img, &format!("dial tcp {PE_IP}:443: i/o timeout")));
    }

    fn nsg_rule(name: &str, priority: u32, direction: &str, access: &str, dst: &str, port: &str) -> serde_json::Value {
        json!({"name": name, "id": format!("{}/securityRules/{name}", nsg_id()), "properties": {
            "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": port, "sourceAddressPrefix": "*",
            "destinationAddressPrefix": dst, "access": access, "priority": priority, "direction": direction
        }})
    }

    #[test]
    fn an_unapproved_endpoint_is_approved_only_when_pending_and_unambiguous() {
        let pending = scenario("private-endpoint-not-approved");
        let d = diagnose(&pending);
        assert!(
            matches!(d.findings[0].plan.actions.as_slice(), [Action::ApprovePrivateEndpointConnection { .. }]),
            "{:?}",
            d.findings[0].plan.actions
        );

        // Rejected: the owner's decision, never approved automatically.
        let mut rejected = scenario("private-endpoint-not-approved");
        rejected.set(
            &registry_id(),
            "/properties/privateEndpointConnections/0/properties/privateLinkServiceConnectionState/status",
            json!("Rejected"),
        );
        let d = diagnose(&rejected);
        assert_eq!(d.findings[0].code, FindingCode::PrivateEndpointNotApproved);
        assert!(d.findings[0].plan.actions.iter().all(|a| a.needs_human()), "{:?}", d.findings[0].plan.actions);

        // A second endpoint of the registry holding the same address (known only from the zone's
        // records): which one the pull went to is unknown, so nothing is said about approval.
        let mut twins = scenario("private-endpoint-not-approved");
        let pe_id = arm_id(RG_ACR, &format!("Microsoft.Network/privateEndpoints/pe-{REGISTRY}"));
        let mut other = twins.resource(&pe_id).clone();
        other["id"] = json!(arm_id(RG_ACR, "Microsoft.Network/privateEndpoints/pe-other-team"));
        other["name"] = json!("pe-other-team");
        twins.add(other);
        let codes: Vec<_> = diagnose(&twins).findings.iter().map(|f| f.code).collect();
        assert!(!codes.contains(&FindingCode::PrivateEndpointNotApproved), "{codes:?}");
    }

    #[test]
    fn initiated_versus_disconnected_peerings() {
        // Only the cluster side exists (Initiated): create the hub side, nothing else.
        let mut w = scenario("vnet-peering-missing");
        w.set(
            &aks_vnet_id(),
            "/properties/virtualNetworkPeerings",
            json!([{"name": "vnet-shop-aks-to-vnet-shop-hub", "id": format!("{}/virtualNetworkPeerings/vnet-shop-aks-to-vnet-shop-hub", aks_vnet_id()),
                    "properties": {"remoteVirtualNetwork": {"id": hub_vnet_id()}, "allowVirtualNetworkAccess": true, "peeringState": "Initiated"}}]),
        );
        let d = diagnose(&w);
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].code, FindingCode::VnetPeeringDisconnected);
        assert_eq!(
            d.findings[0].plan.actions,
            [Action::CreatePeering {
                vnet_id: hub_vnet_id(),
                name: "vnet-shop-hub-to-vnet-shop-aks".into(),
                remote_vnet_id: aks_vnet_id()
            }]
        );
        // Disconnected (the hub side was deleted): re-create the cluster side, create the hub side.
        let d = diagnose(&scenario("vnet-peering-disconnected"));
        assert_eq!(
            d.findings[0].plan.actions,
            [
                Action::CreatePeering {
                    vnet_id: aks_vnet_id(),
                    name: "vnet-shop-aks-to-vnet-shop-hub".into(),
                    remote_vnet_id: hub_vnet_id()
                },
                Action::CreatePeering {
                    vnet_id: hub_vnet_id(),
                    name: "vnet-shop-hub-to-vnet-shop-aks".into(),
                    remote_vnet_id: aks_vnet_id()
                },
            ]
        );
        // Missing: both directions.
        let d = diagnose(&scenario("vnet-peering-missing"));
        assert_eq!(d.findings[0].plan.actions.len(), 2);
    }

    #[test]
    fn a_higher_priority_allow_rule_wins_over_the_deny() {
        let mut w = scenario("nsg-blocks-registry");
        let f = &diagnose(&w).findings[0];
        // The fix goes below the blocking rule's priority.
        for a in &f.plan.actions {
            assert!(matches!(a, Action::AllowNsgRule { priority, port: 443, .. } if *priority < 210), "{a:?}");
        }
        assert!(matches!(&f.plan.actions[0], Action::AllowNsgRule { destination, .. } if destination == PE_IP));
        let rules = w.resource(&nsg_id())["properties"]["securityRules"].as_array_mut().unwrap();
        rules.push(nsg_rule("allow-acr", 205, "Outbound", "Allow", "10.20.1.0/24", "443"));
        assert!(codes(&w).is_empty());
        // An allow with a larger number comes too late.
        let mut w = scenario("nsg-blocks-registry");
        let rules = w.resource(&nsg_id())["properties"]["securityRules"].as_array_mut().unwrap();
        rules.push(nsg_rule("allow-acr", 220, "Outbound", "Allow", "10.20.1.0/24", "443"));
        assert_eq!(codes(&w), ["NSG_BLOCKS_REGISTRY"]);
    }

    #[test]
    fn an_inbound_deny_on_the_endpoint_subnet_blocks_too() {
        let mut w = World::private_baseline("pe-nsg", K131);
        let nsg = arm_id(RG_NET, "Microsoft.Network/networkSecurityGroups/nsg-private-endpoints");
        w.add(json!({"id": nsg, "name": "nsg-private-endpoints", "type": "Microsoft.Network/networkSecurityGroups", "location": LOCATION,
            "properties": {"securityRules": [{"name": "deny-spokes", "id": format!("{nsg}/securityRules/deny-spokes"), "properties": {
                "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*", "sourceAddressPrefix": "10.10.0.0/16",
                "destinationAddressPrefix": "*", "access": "Deny", "priority": 100, "direction": "Inbound"}}]}}));
        w.resource(&hub_vnet_id())["properties"]["subnets"][1]["properties"]["networkSecurityGroup"] =
            json!({"id": nsg});
        timeout(&mut w);
        let d = diagnose(&w);
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::NsgBlocksRegistry]);
        // Priority 100 leaves no room below it, and AllowNsgRule is outbound: a person does it.
        assert!(d.findings[0].plan.actions.iter().all(Action::needs_human));
        let commands: Vec<String> = d.findings[0].plan.actions.iter().flat_map(Action::commands).collect();
        assert!(commands[0].starts_with("# PRIORITY:"), "{commands:#?}");
        assert!(commands.iter().any(|c| c.contains("--priority \"$PRIORITY\" --direction Inbound")), "{commands:#?}");
        assert!(commands.iter().all(|c| !c.contains('<')), "{commands:#?}");
    }

    #[test]
    fn a_missing_zone_is_created_linked_and_filled() {
        let mut w = scenario("private-dns-missing");
        w.remove(&zone_id());
        let d = diagnose(&w);
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::PrivateDnsZoneNotLinked]);
        let commands: Vec<String> = d.findings[0].plan.actions.iter().flat_map(Action::commands).collect();
        assert!(commands[0].starts_with("az network private-dns zone create -g "), "{commands:#?}");
        assert!(commands[1].starts_with("az network private-dns link vnet create -g "), "{commands:#?}");
        assert!(commands[1].contains(&format!("-v {} -e false", aks_vnet_id())), "{commands:#?}");
        assert!(
            commands[2..].iter().all(|c| c.starts_with("az network private-endpoint dns-zone-group create")
                && c.contains("--private-dns-zone /subscriptions/")),
            "{commands:#?}"
        );
    }

    #[test]
    fn several_independent_breaks_are_all_reported() {
        let mut w = scenario("vnet-peering-missing");
        let rules = w.resource(&nsg_id())["properties"]["securityRules"].as_array_mut().unwrap();
        rules.push(nsg_rule("deny-hub", 150, "Outbound", "Deny", "10.20.0.0/16", "*"));
        assert_eq!(codes(&w), ["VNET_PEERING_MISSING", "NSG_BLOCKS_REGISTRY"]);
    }

    #[test]
    fn traffic_routed_through_a_hub_appliance_needs_no_direct_peering() {
        let mut w = scenario("vnet-peering-missing");
        let routes = w.resource(&route_table_id())["properties"]["routes"].as_array_mut().unwrap();
        routes.push(json!({"name": "to-hub-firewall", "properties": {"addressPrefix": "10.20.0.0/16", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.20.0.4"}}));
        let d = diagnose(&w);
        assert_eq!(d.failures.len(), 2);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }

    #[test]
    fn a_timeout_on_a_healthy_path_is_not_guessed() {
        let mut w = World::private_baseline("healthy-path", K131);
        timeout(&mut w);
        let d = diagnose(&w);
        assert_eq!(d.failures.len(), 2);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }

    #[test]
    fn a_blackhole_to_a_public_registry_is_pointed_back_at_the_internet() {
        let mut w = World::baseline("public-blackhole", K131);
        let routes = w.resource(&route_table_id())["properties"]["routes"].as_array_mut().unwrap();
        routes.push(json!({"name": "default-drop", "id": format!("{}/routes/default-drop", route_table_id()),
                           "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "None"}}));
        w.break_rollout("web", None, |rt, img| rt.request(img, "dial tcp 20.61.99.33:443: i/o timeout"));
        let d = diagnose(&w);
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::RouteBlackhole]);
        assert!(
            matches!(&d.findings[0].plan.actions[0], Action::SetRouteNextHop { next_hop_type, .. } if next_hop_type == "Internet")
        );
    }

    #[test]
    fn a_403_through_a_linked_zone_is_neither_dns_nor_firewall() {
        let mut w = World::private_baseline("linked", K131);
        w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "403 Forbidden", None));
        assert!(codes(&w).is_empty());
    }

    #[test]
    fn the_dns_link_wins_over_the_public_firewall() {
        // Public access on with a firewall that would also refuse: the intended path is private.
        let mut w = scenario("private-dns-missing");
        w.set(&registry_id(), "/properties/publicNetworkAccess", json!("Enabled"));
        assert_eq!(codes(&w), ["PRIVATE_DNS_ZONE_NOT_LINKED"]);
        let d = diagnose(&w);
        assert_eq!(
            d.findings[0].plan.actions,
            [Action::CreateVnetLink {
                zone_id: zone_id(),
                link_name: "vnet-shop-aks-link".into(),
                vnet_id: aks_vnet_id()
            }]
        );
    }

    #[test]
    fn firewall_variants() {
        // The registry is not in the inventory, but ACR quoted the client IP.
        let mut w = scenario("acr-firewall-denies-egress");
        w.remove(&registry_id());
        let d = diagnose(&w);
        assert_eq!(d.findings.len(), 1);
        assert_eq!(
            (d.findings[0].code, d.findings[0].confidence),
            (FindingCode::AcrFirewallDeniesEgress, Confidence::Medium)
        );
        // A body-less 403 (older containerd): the egress IPs from the inventory decide.
        let mut w = scenario("acr-firewall-denies-egress");
        w.break_rollout("web", None, |_, img| K124.token(img, "oauth", "403 Forbidden", None));
        let d = diagnose(&w);
        assert_eq!(
            d.findings[0].plan.actions,
            [Action::AddRegistryIpRule { registry_id: registry_id(), ip: "20.103.51.208".into() }]
        );
        // Public access off and no private endpoint at all: no IP rule can help.
        let mut w = World::baseline("closed", K131);
        w.set(&registry_id(), "/properties/publicNetworkAccess", json!("Disabled"));
        w.break_rollout("web", None, |rt, img| rt.token(img, "anonymous", "403 Forbidden", None));
        let d = diagnose(&w);
        assert_eq!(d.findings.iter().map(|f| f.code).collect::<Vec<_>>(), [FindingCode::AcrFirewallDeniesEgress]);
        assert!(d.findings[0].plan.actions.iter().all(Action::needs_human));
    }
}
