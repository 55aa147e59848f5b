//! `Microsoft.Network` (except private DNS): VNets with embedded subnets and peerings (with
//! Azure's peering-state machine), private endpoints (address allocation, connection state),
//! NSGs with rules, route tables with routes, and public IPs (allocated from TEST-NET-3).

use std::net::{IpAddr, Ipv4Addr};

use azure_model::id::same_id;
use azure_model::inventory::types;
use azure_model::network::{
    Child, PeeringProperties, PrivateEndpointProperties, PublicIpAddressProperties, RouteProperties,
    SecurityRuleProperties, SubnetProperties, VirtualNetworkProperties, peering_state,
};
use serde_json::{Value, json};

use super::catalog::TypeSpec;
use super::validate::{self, Provider, canonical};
use super::{ArmFailure, Ctx, check_shape, default_field, last_segment, parent_id, props};
use crate::state::State;
use crate::state::derived::{children, upsert_child};
use crate::state::store::id_of;

const NSG_RULE: &str = "Microsoft.Network/networkSecurityGroups/securityRules";
const ROUTE: &str = "Microsoft.Network/routeTables/routes";

pub(super) fn prepare(
    ctx: &Ctx<'_>,
    state: &mut State,
    spec: &TypeSpec,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    match spec.name {
        types::VIRTUAL_NETWORK => prepare_vnet(ctx, state, value, existing),
        types::SUBNET => prepare_subnet(ctx, state, value),
        types::PEERING => prepare_peering(state, value),
        types::PRIVATE_ENDPOINT => prepare_private_endpoint(ctx, state, value, existing),
        types::NETWORK_SECURITY_GROUP => prepare_with_children(value, existing, "securityRules", NSG_RULE, check_rule),
        NSG_RULE => check_rule(value, ""),
        types::ROUTE_TABLE => prepare_with_children(value, existing, "routes", ROUTE, check_route),
        ROUTE => check_route(value, ""),
        types::PUBLIC_IP_ADDRESS => prepare_public_ip(state, value, existing),
        other => Err(ArmFailure::no_route(other)),
    }
}

fn etag() -> Value {
    json!(format!("W/\"{}\"", uuid::Uuid::new_v4()))
}

/// Normalises embedded children sent inside a parent body.
fn embed(parent_id: &str, array: &str, child_type: &str, list: &Value) -> Result<Vec<Value>, ArmFailure> {
    let Some(items) = list.as_array() else {
        return Err(ArmFailure::invalid_content(format!("`{array}` must be an array")));
    };
    items
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let name = c.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string);
            let Some(name) = name else {
                return Err(ArmFailure::invalid_content(format!("every item of `{array}` needs a name")));
            };
            let Some(obj) = c.as_object_mut() else {
                return Err(ArmFailure::invalid_content(format!("items of `{array}` must be objects")));
            };
            obj.insert("id".into(), json!(format!("{parent_id}/{array}/{name}")));
            obj.insert("type".into(), json!(child_type));
            obj.insert("etag".into(), etag());
            props(&mut c).insert("provisioningState".into(), json!("Succeeded"));
            Ok(c)
        })
        .collect()
}

fn prepare_with_children(
    value: &mut Value,
    existing: Option<&Value>,
    array: &str,
    child_type: &str,
    check: fn(&mut Value, &str) -> Result<(), ArmFailure>,
) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let mut list = match value.pointer(&format!("/properties/{array}")) {
        Some(list) => embed(&id, array, child_type, list)?,
        None => existing.map(|e| children(e, array).to_vec()).unwrap_or_default(),
    };
    for (i, c) in list.iter_mut().enumerate() {
        check(c, &format!("properties.{array}[{i}]."))?;
    }
    props(value).insert(array.into(), json!(list));
    Ok(())
}

/// Checks a rule body (`path` is where it sits in the request, e.g. `properties.securityRules[0].`);
/// enum values are canonicalised.
fn check_rule(value: &mut Value, path: &str) -> Result<(), ArmFailure> {
    for (field, e) in [
        ("access", &validate::SECURITY_RULE_ACCESS),
        ("direction", &validate::SECURITY_RULE_DIRECTION),
        ("protocol", &validate::SECURITY_RULE_PROTOCOL),
    ] {
        canonical(value, &format!("/properties/{field}"), &format!("{path}properties.{field}"), e, Provider::Network)?;
    }
    let rule: Child<SecurityRuleProperties> = check_shape(value)?;
    if !(100..=4096).contains(&rule.properties.priority) {
        return Err(ArmFailure::bad_request(
            "SecurityRuleInvalidPriority",
            format!(
                "Security rule {} has invalid Priority. Value provided: {}. Allowed range 100-4096.",
                rule.name, rule.properties.priority
            ),
        ));
    }
    Ok(())
}

fn check_route(value: &mut Value, path: &str) -> Result<(), ArmFailure> {
    canonical(
        value,
        "/properties/nextHopType",
        &format!("{path}properties.nextHopType"),
        &validate::ROUTE_NEXT_HOP_TYPE,
        Provider::Network,
    )?;
    check_shape::<Child<RouteProperties>>(value).map(|_| ())
}

fn in_this_subscription(ctx: &Ctx<'_>, id: &str) -> bool {
    azure_model::ResourceId::parse(id)
        .ok()
        .and_then(|r| r.subscription().map(|s| s.eq_ignore_ascii_case(ctx.subscription())))
        .unwrap_or(false)
}

fn missing_reference(reference: &str, by: &str) -> ArmFailure {
    ArmFailure::bad_request(
        "InvalidResourceReference",
        format!(
            "Resource {reference} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

fn prepare_vnet(
    ctx: &Ctx<'_>,
    state: &mut State,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let subnets = match value.pointer("/properties/subnets") {
        Some(list) => embed(&id, "subnets", types::SUBNET, list)?,
        None => existing.map(|e| children(e, "subnets").to_vec()).unwrap_or_default(),
    };
    for s in &subnets {
        check_subnet_references(ctx, state, s)?;
    }
    // Peerings are managed through their own child resource; a VNet created with embedded
    // peerings gets them processed once it exists (see `create_embedded_peerings`).
    let peerings = match existing {
        Some(e) => children(e, "virtualNetworkPeerings").to_vec(),
        None => match value.pointer("/properties/virtualNetworkPeerings") {
            Some(list) => embed(&id, "virtualNetworkPeerings", types::PEERING, list)?,
            None => Vec::new(),
        },
    };
    let p = props(value);
    default_field(p, "addressSpace", json!({"addressPrefixes": []}));
    p.insert("subnets".into(), json!(subnets));
    p.insert("virtualNetworkPeerings".into(), json!(peerings));
    let guid = existing.and_then(|e| e.pointer("/properties/resourceGuid")).cloned();
    p.insert("resourceGuid".into(), guid.unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string())));
    check_shape::<azure_model::Resource<VirtualNetworkProperties>>(value)?;
    Ok(())
}

fn check_subnet_references(ctx: &Ctx<'_>, state: &State, subnet: &Value) -> Result<(), ArmFailure> {
    let s: Child<SubnetProperties> = check_shape(subnet)?;
    let by = s.id.clone().unwrap_or_default();
    for reference in [&s.properties.network_security_group, &s.properties.route_table].into_iter().flatten() {
        if in_this_subscription(ctx, &reference.id) && !state.store.contains(&reference.id) {
            return Err(missing_reference(&reference.id, &by));
        }
    }
    Ok(())
}

fn prepare_subnet(ctx: &Ctx<'_>, state: &State, value: &mut Value) -> Result<(), ArmFailure> {
    check_subnet_references(ctx, state, value)
}

/// A subnet holding a private endpoint cannot be deleted.
pub(super) fn check_subnet_unused(_ctx: &Ctx<'_>, state: &State, subnet: &Value) -> Result<(), ArmFailure> {
    let id = id_of(subnet);
    if let Some(pe) = state
        .store
        .of_type(types::PRIVATE_ENDPOINT)
        .find(|pe| pe.pointer("/properties/subnet/id").and_then(Value::as_str).is_some_and(|s| same_id(s, id)))
    {
        return Err(ArmFailure::bad_request(
            "InUseSubnetCannotBeDeleted",
            format!("Subnet {} is in use by {} and cannot be deleted.", last_segment(id), id_of(pe)),
        ));
    }
    Ok(())
}

/// The peering in VNet `vnet` (a stored body) whose remote is `remote`.
fn peering_towards<'a>(vnet: &'a Value, remote: &str) -> Option<&'a Value> {
    children(vnet, "virtualNetworkPeerings").iter().find(|p| {
        p.pointer("/properties/remoteVirtualNetwork/id").and_then(Value::as_str).is_some_and(|r| same_id(r, remote))
    })
}

fn set_peering_state(state: &mut State, vnet_id: &str, remote: &str, new_state: &str) {
    let Some(vnet) = state.store.get(vnet_id) else { return };
    let Some(mut peering) = peering_towards(vnet, remote).cloned() else { return };
    peering["properties"]["peeringState"] = json!(new_state);
    peering["etag"] = etag();
    if let Some(v) = state.store.get_mut(vnet_id) {
        upsert_child(v, "virtualNetworkPeerings", peering);
    }
}

/// Azure's peering states: a peering whose reverse does not exist (or was disconnected) is
/// `Initiated`; creating the reverse of an `Initiated` peering connects both; deleting one side
/// leaves the other `Disconnected`, and it must be re-created (re-PUT) to connect again.
fn prepare_peering(state: &mut State, value: &mut Value) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let local = parent_id(&id);
    let remote = value
        .pointer("/properties/remoteVirtualNetwork/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ArmFailure::invalid_content("properties.remoteVirtualNetwork.id is required"))?;
    if same_id(&remote, &local) {
        return Err(ArmFailure::bad_request(
            "CannotPeerVirtualNetworkWithItself",
            format!("Virtual network {local} cannot be peered with itself."),
        ));
    }
    let remote_vnet = state.store.get(&remote).cloned();
    let reverse_state = remote_vnet
        .as_ref()
        .and_then(|r| peering_towards(r, &local))
        .map(|p| p.pointer("/properties/peeringState").and_then(Value::as_str).unwrap_or_default().to_string());
    let new_state = match reverse_state.as_deref() {
        Some(s)
            if s.eq_ignore_ascii_case(peering_state::INITIATED) || s.eq_ignore_ascii_case(peering_state::CONNECTED) =>
        {
            set_peering_state(state, &remote, &local, peering_state::CONNECTED);
            peering_state::CONNECTED
        }
        _ => peering_state::INITIATED,
    };
    let remote_space = remote_vnet.as_ref().and_then(|r| r.pointer("/properties/addressSpace")).cloned();
    let p = props(value);
    default_field(p, "allowVirtualNetworkAccess", json!(true));
    default_field(p, "allowForwardedTraffic", json!(false));
    default_field(p, "allowGatewayTransit", json!(false));
    default_field(p, "useRemoteGateways", json!(false));
    p.insert("peeringState".into(), json!(new_state));
    p.insert("peeringSyncLevel".into(), json!("FullyInSync"));
    if let Some(space) = remote_space {
        p.insert("remoteAddressSpace".into(), space.clone());
        p.insert("remoteVirtualNetworkAddressSpace".into(), space);
    }
    check_shape::<Child<PeeringProperties>>(value)?;
    tracing::info!(peering = %id, state = new_state, "peering written");
    Ok(())
}

/// Processes the peerings a new VNet was created with, as if each was PUT on its own.
pub(super) fn create_embedded_peerings(_ctx: &Ctx<'_>, state: &mut State, vnet_id: &str) -> Result<(), ArmFailure> {
    let Some(vnet) = state.store.get(vnet_id) else { return Ok(()) };
    let peerings = children(vnet, "virtualNetworkPeerings").to_vec();
    for mut p in peerings {
        prepare_peering(state, &mut p)?;
        if let Some(v) = state.store.get_mut(vnet_id) {
            upsert_child(v, "virtualNetworkPeerings", p);
        }
    }
    Ok(())
}

/// Deleting one side of a peering disconnects the other side.
pub(super) fn peering_deleted(_ctx: &Ctx<'_>, state: &mut State, removed: &Value) {
    let local = parent_id(id_of(removed));
    if let Some(remote) = removed.pointer("/properties/remoteVirtualNetwork/id").and_then(Value::as_str) {
        set_peering_state(state, remote, &local, peering_state::DISCONNECTED);
    }
}

/// Deleting a VNet disconnects every peering pointing at it.
pub(super) fn vnet_deleted(_ctx: &Ctx<'_>, state: &mut State, removed: &Value) {
    let gone = id_of(removed).to_string();
    for vnet in state.store.ids_of_type(types::VIRTUAL_NETWORK) {
        set_peering_state(state, &vnet, &gone, peering_state::DISCONNECTED);
    }
}

fn ipv4_prefix(cidr: &str) -> Option<(u32, u8)> {
    let (net, len) = cidr.trim().split_once('/')?;
    let net: Ipv4Addr = net.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(net) & mask, len))
}

/// The next free host addresses of `cidr` (Azure reserves the first four and the last one).
fn allocate(cidr: &str, used: &[IpAddr], count: usize) -> Option<Vec<String>> {
    let (net, len) = ipv4_prefix(cidr)?;
    let size: u64 = 1u64 << (32 - u32::from(len));
    let mut out = Vec::new();
    let mut host: u64 = 4;
    while out.len() < count && host + 1 < size {
        let candidate = IpAddr::V4(Ipv4Addr::from(net.wrapping_add(host as u32)));
        if !used.contains(&candidate) {
            out.push(candidate.to_string());
        }
        host += 1;
    }
    (out.len() == count).then_some(out)
}

fn prepare_private_endpoint(
    ctx: &Ctx<'_>,
    state: &State,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let location = value["location"].as_str().unwrap_or_default().to_string();
    let subnet_id = value
        .pointer("/properties/subnet/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ArmFailure::invalid_content("properties.subnet.id is required"))?;
    let subnet = super::lookup_any(state, &subnet_id).ok_or_else(|| missing_reference(&subnet_id, &id))?;
    let prefix = subnet.pointer("/properties/addressPrefix").and_then(Value::as_str).unwrap_or_default().to_string();

    // Automatic connections are approved at once; manual ones wait for the target's owner
    // (`Pending`, the request message as the description) unless the body already says.
    let mut lists: Vec<(&str, Vec<Value>)> = Vec::new();
    for (array, child_type) in [
        ("privateLinkServiceConnections", "Microsoft.Network/privateEndpoints/privateLinkServiceConnections"),
        (
            "manualPrivateLinkServiceConnections",
            "Microsoft.Network/privateEndpoints/manualPrivateLinkServiceConnections",
        ),
    ] {
        let items = match value.pointer(&format!("/properties/{array}")) {
            Some(list) if !list.is_null() => embed(&id, array, child_type, list)?,
            _ => Vec::new(),
        };
        lists.push((array, items));
    }
    let mut registries = Vec::new();
    for (array, connections) in &mut lists {
        let manual = *array == "manualPrivateLinkServiceConnections";
        for c in connections.iter_mut() {
            let target =
                c.pointer("/properties/privateLinkServiceId").and_then(Value::as_str).unwrap_or_default().to_string();
            if target.is_empty() {
                return Err(ArmFailure::invalid_content(format!(
                    "{array}[].properties.privateLinkServiceId is required"
                )));
            }
            if in_this_subscription(ctx, &target) && !state.store.contains(&target) {
                return Err(missing_reference(&target, &id));
            }
            if let Some(r) = state
                .store
                .get(&target)
                .filter(|r| crate::state::store::type_of(r).eq_ignore_ascii_case(types::REGISTRY))
            {
                registries.push(r.clone());
            }
            // The state is the target owner's (approve, reject): whatever the endpoint's PUT says
            // is ignored, an update keeps it, and a new connection starts Approved (automatic)
            // or Pending (manual).
            let message = c.pointer("/properties/requestMessage").and_then(Value::as_str).map(str::to_string);
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let kept = existing
                .and_then(|e| e.pointer(&format!("/properties/{array}")))
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find(|x| x.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name)))
                })
                .and_then(|x| x.pointer("/properties/privateLinkServiceConnectionState"))
                .cloned();
            let state = kept.unwrap_or_else(|| {
                if manual {
                    json!({"status": "Pending", "description": message.unwrap_or_else(|| "Awaiting approval".into()), "actionsRequired": "None"})
                } else {
                    json!({"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"})
                }
            });
            let p = props(c);
            default_field(p, "groupIds", json!(["registry"]));
            p.insert("privateLinkServiceConnectionState".into(), state);
        }
    }

    // Addresses: kept across updates in the same subnet, else requested statically through
    // ipConfigurations, else the next free ones of the subnet.
    let same_subnet = existing
        .and_then(|e| e.pointer("/properties/subnet/id"))
        .and_then(Value::as_str)
        .is_some_and(|s| same_id(s, &subnet_id));
    let kept = existing.filter(|_| same_subnet).and_then(|e| e.pointer("/properties/customDnsConfigs")).cloned();
    let dns_configs = match kept {
        Some(k) if k.as_array().is_some_and(|a| !a.is_empty()) => k,
        _ => {
            let mut names = Vec::new();
            for r in &registries {
                let login =
                    r.pointer("/properties/loginServer").and_then(Value::as_str).unwrap_or_default().to_string();
                let name = r["name"].as_str().unwrap_or_default().to_ascii_lowercase();
                names.push(("registry".to_string(), login));
                names.push((format!("registry_data_{location}"), format!("{name}.{location}.data.azurecr.io")));
            }
            if names.is_empty() {
                names.push(("default".into(), String::new()));
            }
            let requested: Vec<String> = value
                .pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| {
                            c.pointer("/properties/privateIPAddress").and_then(Value::as_str).map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let used: Vec<IpAddr> = state
                .store
                .of_type(types::PRIVATE_ENDPOINT)
                .filter(|pe| !same_id(id_of(pe), &id))
                .flat_map(|pe| {
                    pe.pointer("/properties/customDnsConfigs")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .flat_map(|c| c["ipAddresses"].as_array().cloned().unwrap_or_default())
                })
                .filter_map(|ip| ip.as_str().and_then(|s| s.parse().ok()))
                .collect();
            let mut used = used;
            used.extend(requested.iter().filter_map(|r| r.parse::<IpAddr>().ok()));
            let mut ips = requested.clone();
            if ips.len() < names.len() {
                let more = allocate(&prefix, &used, names.len() - ips.len()).ok_or_else(|| {
                    ArmFailure::bad_request(
                        "SubnetIsFull",
                        format!("Subnet {} with address prefix '{prefix}' does not have enough capacity for the private endpoint.", last_segment(&subnet_id)),
                    )
                })?;
                ips.extend(more);
            }
            let configs: Vec<Value> = names
                .iter()
                .zip(&ips)
                .filter(|((_, fqdn), _)| !fqdn.is_empty())
                .map(|((_, fqdn), ip)| json!({"fqdn": fqdn, "ipAddresses": [ip]}))
                .collect();
            let ip_configs: Vec<Value> = names
                .iter()
                .zip(&ips)
                .map(|((member, _), ip)| {
                    json!({
                        "name": format!("{member}-ipconfig"),
                        "properties": {"groupId": "registry", "memberName": member, "privateIPAddress": ip},
                    })
                })
                .collect();
            props(value).insert("ipConfigurations".into(), json!(ip_configs));
            json!(configs)
        }
    };
    let nic = existing.and_then(|e| e.pointer("/properties/networkInterfaces")).cloned().unwrap_or_else(|| {
        let group = super::group_of(&id).map(|(g, _)| g).unwrap_or_default();
        json!([{ "id": format!("{group}/providers/Microsoft.Network/networkInterfaces/{}.nic.{}", last_segment(&id), uuid::Uuid::new_v4()) }])
    });
    let p = props(value);
    for (array, connections) in lists {
        p.insert(array.into(), json!(connections));
    }
    p.insert("customDnsConfigs".into(), dns_configs);
    p.insert("networkInterfaces".into(), nic);
    check_shape::<azure_model::Resource<PrivateEndpointProperties>>(value)?;
    Ok(())
}

/// The TEST-NET-3 range public IPs are allocated from (stored only, never dialled).
const PUBLIC_POOL: [u8; 3] = [203, 0, 113];

fn prepare_public_ip(state: &State, value: &mut Value, existing: Option<&Value>) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let given = value.pointer("/properties/ipAddress").and_then(Value::as_str).map(str::to_string);
    let kept = existing.and_then(|e| e.pointer("/properties/ipAddress")).and_then(Value::as_str).map(str::to_string);
    let address = match given.or(kept) {
        Some(a) => a,
        None => {
            let used: Vec<String> = state
                .store
                .of_type(types::PUBLIC_IP_ADDRESS)
                .filter(|p| !same_id(id_of(p), &id))
                .filter_map(|p| p.pointer("/properties/ipAddress").and_then(Value::as_str).map(str::to_string))
                .collect();
            (1..=254u8)
                .map(|h| Ipv4Addr::new(PUBLIC_POOL[0], PUBLIC_POOL[1], PUBLIC_POOL[2], h).to_string())
                .find(|a| !used.contains(a))
                .ok_or_else(|| {
                    ArmFailure::bad_request(
                        "PublicIPCountLimitReached",
                        "Cannot create more than 254 public IP addresses in the emulator.",
                    )
                })?
        }
    };
    for (pointer, path, e) in [
        ("/sku/name", "sku.name", &validate::PUBLIC_IP_SKU_NAME),
        ("/sku/tier", "sku.tier", &validate::PUBLIC_IP_SKU_TIER),
        (
            "/properties/publicIPAllocationMethod",
            "properties.publicIPAllocationMethod",
            &validate::IP_ALLOCATION_METHOD,
        ),
        ("/properties/publicIPAddressVersion", "properties.publicIPAddressVersion", &validate::IP_VERSION),
    ] {
        canonical(value, pointer, path, e, Provider::Network)?;
    }
    if value.get("sku").is_none_or(Value::is_null) {
        value["sku"] = json!({"name": "Standard", "tier": "Regional"});
    } else if let Some(sku) = value.get_mut("sku").and_then(Value::as_object_mut) {
        default_field(sku, "tier", json!("Regional"));
    }
    let p = props(value);
    p.insert("ipAddress".into(), json!(address));
    default_field(p, "publicIPAllocationMethod", json!("Static"));
    default_field(p, "publicIPAddressVersion", json!("IPv4"));
    default_field(p, "idleTimeoutInMinutes", json!(4));
    check_shape::<azure_model::Resource<PublicIpAddressProperties>>(value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_reserved_and_used() {
        let used = vec!["10.2.0.4".parse().unwrap()];
        assert_eq!(allocate("10.2.0.0/24", &used, 2).unwrap(), vec!["10.2.0.5", "10.2.0.6"]);
        assert!(allocate("10.2.0.0/30", &[], 1).is_none());
        assert!(allocate("nonsense", &[], 1).is_none());
    }
}
