//! A baseline as the ordered ARM and Graph calls that create it.

use azure_model::api_version as v;
use azure_model::authorization::built_in_by_name;
use serde_json::{Value, json};

use super::ids::World;
use super::request::{Capture, Request};
use crate::baseline::{Baseline, ClusterIdentity, Peering};

/// api-version of `Microsoft.ManagedIdentity/userAssignedIdentities`.
pub const MANAGED_IDENTITY_API: &str = "2023-01-31";

/// The binding that holds a principal's object id (`kubelet` or `application:NAME`).
pub fn principal_binding(principal: &str) -> String {
    match principal.strip_prefix("application:") {
        Some(app) => format!("${{sp.{app}.id}}"),
        None => "${kubelet.principalId}".to_string(),
    }
}

/// The requests that create `b` in `world`, in dependency order.
pub fn provision(b: &Baseline, world: &World) -> Vec<Request> {
    let loc = b.location.as_str();
    let mut out = Vec::new();
    for rg in &b.resource_groups {
        out.push(Request::put(
            world.group(rg),
            v::RESOURCES,
            json!({ "location": loc }),
            format!("resource group {rg}"),
        ));
    }
    for app in &b.applications {
        let n = &app.name;
        out.push(
            Request::graph_post("/v1.0/applications", json!({ "displayName": n }), format!("application {n}"))
                .capture(Capture::value(format!("app.{n}.appId"), "/appId"))
                .capture(Capture::value(format!("app.{n}.id"), "/id")),
        );
        out.push(
            Request::graph_post(
                "/v1.0/servicePrincipals",
                json!({ "appId": format!("${{app.{n}.appId}}") }),
                format!("service principal of {n}"),
            )
            .capture(Capture::value(format!("sp.{n}.id"), "/id")),
        );
        let end = app.secret_expires.clone().unwrap_or_else(|| "2099-01-01T00:00:00Z".into());
        out.push(
            Request::graph_post(
                format!("/v1.0/applications/${{app.{n}.id}}/addPassword"),
                json!({ "passwordCredential": { "displayName": "pullproof", "endDateTime": end } }),
                format!("client secret of {n}"),
            )
            .capture(Capture::secret(format!("secret.{n}"), "/secretText")),
        );
    }
    for ip in &b.public_ips {
        out.push(
            Request::put(
                world.public_ip(b, &ip.name),
                v::NETWORK,
                json!({
                    "location": loc, "sku": { "name": "Standard" },
                    "properties": { "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4", "ipAddress": ip.ip }
                }),
                format!("public IP {}", ip.name),
            )
            .capture(Capture::value(format!("ip.{}", ip.name), "/properties/ipAddress")),
        );
    }
    for nsg in &b.nsgs {
        let rules: Vec<Value> = nsg.rules.iter().map(security_rule).collect();
        out.push(Request::put(
            world.nsg(b, &nsg.name),
            v::NETWORK,
            json!({ "location": loc, "properties": { "securityRules": rules } }),
            format!("NSG {}", nsg.name),
        ));
    }
    for rt in &b.route_tables {
        let routes: Vec<Value> = rt.routes.iter().map(route).collect();
        out.push(Request::put(
            world.route_table(b, &rt.name),
            v::NETWORK,
            json!({ "location": loc, "properties": { "routes": routes, "disableBgpRoutePropagation": false } }),
            format!("route table {}", rt.name),
        ));
    }
    for vnet in &b.vnets {
        let subnets: Vec<Value> = vnet
            .subnets
            .iter()
            .map(|s| {
                let mut p = json!({ "addressPrefix": s.prefix });
                if let Some(n) = &s.nsg {
                    p["networkSecurityGroup"] = json!({ "id": world.nsg(b, n) });
                }
                if let Some(t) = &s.route_table {
                    p["routeTable"] = json!({ "id": world.route_table(b, t) });
                }
                json!({ "name": s.name, "properties": p })
            })
            .collect();
        let mut props = json!({ "addressSpace": { "addressPrefixes": [vnet.address_space] }, "subnets": subnets });
        if !vnet.dns_servers.is_empty() {
            props["dhcpOptions"] = json!({ "dnsServers": vnet.dns_servers });
        }
        out.push(Request::put(
            world.vnet(b, &vnet.name),
            v::NETWORK,
            json!({ "location": loc, "properties": props }),
            format!("VNet {}", vnet.name),
        ));
    }
    for p in &b.peerings {
        for (from, to) in [(&p.between[0], &p.between[1]), (&p.between[1], &p.between[0])] {
            out.push(peering(b, world, from, to));
        }
    }
    for z in &b.private_dns_zones {
        out.push(Request::put(
            world.zone(b, &z.name),
            v::PRIVATE_DNS,
            json!({ "location": "global" }),
            format!("private DNS zone {}", z.name),
        ));
        for vnet in &z.links {
            out.push(vnet_link(b, world, &z.name, vnet));
        }
    }
    out.push(registry(b, world));
    if let (Some(pe), Some(request)) = (&b.registry.private_endpoint, private_endpoint(b, world, None)) {
        out.push(request);
        if let Some(zone) = b.private_dns_zones.iter().find(|z| z.name == azure_model::network::ACR_PRIVATE_ZONE) {
            out.push(Request::put(
                format!("{}/A/{}", world.zone(b, &zone.name), b.registry.name.to_ascii_lowercase()),
                v::PRIVATE_DNS,
                json!({ "properties": { "ttl": 10, "aRecords": [{ "ipv4Address": pe.ip }] } }),
                "A record of the registry's private endpoint",
            ));
            if let Some(data_ip) = &pe.data_ip {
                out.push(Request::put(
                    format!(
                        "{}/A/{}.{}.data",
                        world.zone(b, &zone.name),
                        b.registry.name.to_ascii_lowercase(),
                        b.location
                    ),
                    v::PRIVATE_DNS,
                    json!({ "properties": { "ttl": 10, "aRecords": [{ "ipv4Address": data_ip }] } }),
                    "A record of the registry's data endpoint on the private endpoint",
                ));
            }
        }
    }
    out.extend(cluster(b, world));
    for a in &b.role_assignments {
        out.push(role_assignment(b, world, &a.principal, &a.role, a.scope));
    }
    out
}

/// The PUT of the registry's private endpoint: an automatic connection, or with
/// `manual_request = Some(message)` a manual connection request that waits for the registry's
/// owner (`manualPrivateLinkServiceConnections`). `None` when the baseline has no endpoint.
pub fn private_endpoint(b: &Baseline, world: &World, manual_request: Option<&str>) -> Option<Request> {
    let (pe, pe_id) = (b.registry.private_endpoint.as_ref()?, world.private_endpoint(b)?);
    let mut connection = json!({
        "name": format!("{}-connection", pe.name),
        "properties": { "privateLinkServiceId": world.registry(b), "groupIds": ["registry"] }
    });
    let list = match manual_request {
        Some(message) => {
            connection["properties"]["requestMessage"] = json!(message);
            "manualPrivateLinkServiceConnections"
        }
        None => "privateLinkServiceConnections",
    };
    let mut body = json!({
        "location": b.location,
        "properties": {
            "subnet": { "id": world.subnet(b, &pe.subnet) },
            "ipConfigurations": [{
                "name": "registry",
                "properties": { "groupId": "registry", "memberName": "registry", "privateIPAddress": pe.ip }
            }]
        }
    });
    if let Some(data_ip) = &pe.data_ip {
        let member = format!("registry_data_{}", b.location);
        body["properties"]["ipConfigurations"].as_array_mut().into_iter().for_each(|a| {
            a.push(json!({
                "name": member,
                "properties": { "groupId": "registry", "memberName": member, "privateIPAddress": data_ip }
            }))
        });
    }
    body["properties"][list] = json!([connection]);
    Some(Request::put(
        pe_id,
        v::NETWORK,
        body,
        match manual_request {
            Some(_) => format!("private endpoint {} for the registry, as a manual connection request", pe.name),
            None => format!("private endpoint {} for the registry", pe.name),
        },
    ))
}

/// The PUT of one role assignment.
pub fn role_assignment(
    b: &Baseline,
    world: &World,
    principal: &str,
    role: &str,
    scope: crate::baseline::RoleScope,
) -> Request {
    let scope_id = world.role_scope(b, scope);
    let role_id = built_in_by_name(role).map(|r| r.definition_id(&world.subscription)).unwrap_or_default();
    Request::put(
        world.role_assignment(&scope_id, principal, role),
        v::AUTHORIZATION,
        json!({ "properties": { "roleDefinitionId": role_id, "principalId": principal_binding(principal), "principalType": "ServicePrincipal" } }),
        format!("{role} for {principal}"),
    )
}

/// The PUT of one peering direction.
pub fn peering(b: &Baseline, world: &World, from: &str, to: &str) -> Request {
    Request::put(
        world.peering(b, from, to),
        v::NETWORK,
        json!({ "properties": {
            "remoteVirtualNetwork": { "id": world.vnet(b, to) },
            "allowVirtualNetworkAccess": true, "allowForwardedTraffic": false, "allowGatewayTransit": false, "useRemoteGateways": false
        }}),
        format!("peering {}", Peering::name(from, to)),
    )
}

/// The PUT of one zone link.
pub fn vnet_link(b: &Baseline, world: &World, zone: &str, vnet: &str) -> Request {
    Request::put(
        world.vnet_link(b, zone, vnet),
        v::PRIVATE_DNS,
        json!({ "location": "global", "properties": { "virtualNetwork": { "id": world.vnet(b, vnet) }, "registrationEnabled": false } }),
        format!("link {zone} to {vnet}"),
    )
}

/// An NSG rule body.
pub fn security_rule(r: &crate::baseline::SecurityRule) -> Value {
    json!({
        "name": r.name,
        "properties": {
            "protocol": r.protocol, "sourcePortRange": "*", "destinationPortRange": r.port,
            "sourceAddressPrefix": "*", "destinationAddressPrefix": r.destination,
            "access": r.access, "priority": r.priority, "direction": r.direction
        }
    })
}

/// A route body.
pub fn route(r: &crate::baseline::Route) -> Value {
    let mut v =
        json!({ "name": r.name, "properties": { "addressPrefix": r.address_prefix, "nextHopType": r.next_hop_type } });
    if let Some(ip) = &r.next_hop_ip_address {
        v["properties"]["nextHopIpAddress"] = json!(ip);
    }
    v
}

/// A firewall allow entry: a public IP name (bound from its PUT) or a literal.
pub fn firewall_value(b: &Baseline, allow: &str) -> String {
    if b.public_ips.iter().any(|p| p.name == allow) { format!("${{ip.{allow}}}") } else { allow.to_string() }
}

fn registry(b: &Baseline, world: &World) -> Request {
    let r = &b.registry;
    let mut props = json!({
        "adminUserEnabled": r.admin_user_enabled,
        "dataEndpointEnabled": r.data_endpoint_enabled,
        "publicNetworkAccess": if r.public_network_access { "Enabled" } else { "Disabled" },
        "roleAssignmentMode": r.role_assignment_mode,
        "networkRuleBypassOptions": "AzureServices",
    });
    if let Some(fw) = &r.firewall {
        let rules: Vec<Value> =
            fw.allow.iter().map(|a| json!({ "action": "Allow", "value": firewall_value(b, a) })).collect();
        props["networkRuleSet"] = json!({ "defaultAction": fw.default_action, "ipRules": rules });
    }
    Request::put(
        world.registry(b),
        v::CONTAINER_REGISTRY,
        json!({ "location": b.location, "sku": { "name": r.sku }, "properties": props }),
        format!("registry {}", r.name),
    )
    .capture(Capture::value("registry.loginServer", "/properties/loginServer"))
}

fn cluster(b: &Baseline, world: &World) -> Vec<Request> {
    let c = &b.cluster;
    let loc = b.location.as_str();
    let mut out = Vec::new();
    let pools: Vec<Value> = c
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "name": p.name, "count": p.count, "vmSize": "Standard_D2s_v5", "osType": p.os,
                "mode": if i == 0 { "System" } else { "User" }, "type": "VirtualMachineScaleSets",
                "vnetSubnetID": world.subnet(b, &p.subnet),
            })
        })
        .collect();
    let outbound: Vec<Value> = c.egress_ips.iter().map(|ip| json!({ "id": world.public_ip(b, ip) })).collect();
    let mut props = json!({
        "kubernetesVersion": c.kubernetes_version,
        "dnsPrefix": c.name,
        "agentPoolProfiles": pools,
        "nodeResourceGroup": world.node_resource_group(b),
        "networkProfile": {
            "networkPlugin": "azure", "outboundType": "loadBalancer", "loadBalancerSku": "standard",
            "loadBalancerProfile": { "outboundIPs": { "publicIPs": outbound } }
        },
    });
    let mut body = json!({ "location": loc });
    match &c.identity {
        ClusterIdentity::ManagedIdentity => {
            let cp = world.resource(
                &c.resource_group,
                "Microsoft.ManagedIdentity/userAssignedIdentities",
                &format!("{}-controlplane", c.name),
            );
            out.push(Request::put(
                cp.clone(),
                MANAGED_IDENTITY_API,
                json!({ "location": loc }),
                "control plane identity",
            ));
            out.push(
                Request::put(
                    world.kubelet_identity(b),
                    MANAGED_IDENTITY_API,
                    json!({ "location": loc }),
                    "kubelet identity",
                )
                .capture(Capture::value("kubelet.principalId", "/properties/principalId"))
                .capture(Capture::value("kubelet.clientId", "/properties/clientId")),
            );
            body["identity"] = json!({ "type": "UserAssigned", "userAssignedIdentities": { cp: {} } });
            props["identityProfile"] = json!({ "kubeletidentity": {
                "resourceId": world.kubelet_identity(b), "clientId": "${kubelet.clientId}", "objectId": "${kubelet.principalId}"
            }});
        }
        ClusterIdentity::ServicePrincipal { application } => {
            props["servicePrincipalProfile"] = json!({ "clientId": format!("${{app.{application}.appId}}"), "secret": format!("${{secret.{application}}}") });
        }
    }
    body["properties"] = props;
    out.push(Request::put(world.cluster(b), v::CONTAINER_SERVICE, body, format!("AKS cluster {}", c.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Layout};

    fn baseline(name: &str) -> std::sync::Arc<Baseline> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cat = Catalog::load(&Layout::under(root));
        cat.entries.iter().find(|e| e.baseline.name == name).unwrap().baseline.clone()
    }

    #[test]
    fn private_registry_in_dependency_order() {
        let b = baseline("private-registry");
        let w = World::new("sub", "tenant");
        let reqs = provision(&b, &w);
        let pos =
            |needle: &str| reqs.iter().position(|r| r.path.contains(needle)).unwrap_or_else(|| panic!("{needle}"));
        assert!(pos("networkSecurityGroups/aks-nodes-nsg") < pos("virtualNetworks/aks-vnet"));
        assert!(pos("virtualNetworks/hub-vnet") < pos("virtualNetworkPeerings/aks-vnet-to-hub-vnet"));
        assert!(pos("registries/pullproofacr") < pos("privateEndpoints/pullproofacr-pe"));
        assert!(pos("userAssignedIdentities/aks-priv-agentpool") < pos("managedClusters/aks-priv"));
        assert!(pos("managedClusters/aks-priv") < pos("roleAssignments/"));
        assert_eq!(reqs.iter().filter(|r| r.path.contains("virtualNetworkPeerings")).count(), 2);
        let ra = &reqs[pos("roleAssignments/")];
        assert_eq!(ra.body.as_ref().unwrap()["properties"]["principalId"], "${kubelet.principalId}");
        assert!(
            ra.body.as_ref().unwrap()["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap()
                .ends_with("7f951dda-4ed3-4680-a7ca-43fe172d538d")
        );
        let a = &reqs[pos("/A/pullproofacr")];
        assert_eq!(a.body.as_ref().unwrap()["properties"]["aRecords"][0]["ipv4Address"], "10.2.0.5");
    }

    #[test]
    fn firewall_rules_bind_public_ips() {
        let b = baseline("firewalled-registry");
        let reqs = provision(&b, &World::new("sub", "tenant"));
        let reg = reqs.iter().find(|r| r.path.ends_with("registries/pullproofacr")).unwrap();
        let rules = &reg.body.as_ref().unwrap()["properties"]["networkRuleSet"]["ipRules"];
        assert_eq!(rules[0]["value"], "${ip.aks-egress}");
        assert_eq!(rules[1]["value"], "198.51.100.0/24");
    }

    #[test]
    fn service_principal_cluster_uses_graph_bindings() {
        let b = baseline("service-principal-cluster");
        let reqs = provision(&b, &World::new("sub", "tenant"));
        let cl = reqs.iter().find(|r| r.path.ends_with("managedClusters/aks-sp")).unwrap();
        assert_eq!(
            cl.body.as_ref().unwrap()["properties"]["servicePrincipalProfile"]["clientId"],
            "${app.aks-sp-2023.appId}"
        );
        let secret = reqs.iter().find(|r| r.path.contains("addPassword")).unwrap();
        assert!(secret.captures[0].secret);
    }
}
