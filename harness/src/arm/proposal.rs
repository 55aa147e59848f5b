//! An engine's proposed Azure actions as the harness's own requests, and mutations as typed
//! changes.
//!
//! A `remediation: proposed` scenario is graded by applying what the engine proposed and
//! watching the workload recover. The requests are built here, from the action's own fields,
//! with none of the engine's code: an engine's bug cannot hide in a shared translator.

use azure_model::api_version as v;
use pulldoctor::Action;
use pulldoctor::plan::Change;
use serde_json::json;

use super::ids::stable_guid;
use super::request::{Edit, Request, Service};
use azure_rest::Method;

/// The ARM requests that carry out `action`, or `None` when it is not an ARM action (a
/// Kubernetes change, a manual step, or one that needs Graph and a cluster reset).
///
/// ```
/// use pullproof::arm::proposal::requests_for;
///
/// let action: pulldoctor::Action = serde_json::from_value(serde_json::json!({
///     "action": "setRouteNextHop",
///     "routeTableId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/t",
///     "routeName": "r", "addressPrefix": "10.2.0.0/24", "nextHopType": "VnetLocal"
/// })).unwrap();
/// let reqs = requests_for(&action, "s").unwrap();
/// assert!(reqs[0].path.ends_with("/routeTables/t/routes/r"));
/// assert_eq!(reqs[0].body.as_ref().unwrap()["properties"]["nextHopType"], "VnetLocal");
/// ```
pub fn requests_for(action: &Action, subscription: &str) -> Option<Vec<Request>> {
    let one = |r: Request| Some(vec![r]);
    match action {
        Action::SetRouteNextHop { route_table_id, route_name, address_prefix, next_hop_type } => one(Request::put(
            format!("{route_table_id}/routes/{route_name}"),
            v::NETWORK,
            json!({ "properties": { "addressPrefix": address_prefix, "nextHopType": next_hop_type } }),
            format!("set route {route_name} to next hop {next_hop_type} (proposed)"),
        )),
        Action::AddRegistryIpRule { registry_id, ip } => one(Request::update(
            registry_id.clone(),
            v::CONTAINER_REGISTRY,
            Edit::Append {
                pointer: "/properties/networkRuleSet/ipRules".into(),
                value: json!({ "action": "Allow", "value": ip }),
            },
            format!("allow {ip} in the registry firewall (proposed)"),
        )),
        Action::AllowNsgRule { nsg_id, rule_name, priority, destination, port } => one(Request::put(
            format!("{nsg_id}/securityRules/{rule_name}"),
            v::NETWORK,
            json!({ "properties": {
                "protocol": "Tcp", "access": "Allow", "direction": "Outbound", "priority": priority,
                "sourceAddressPrefix": "*", "sourcePortRange": "*",
                "destinationAddressPrefix": destination, "destinationPortRange": port.to_string(),
            } }),
            format!("add NSG rule {rule_name} (proposed)"),
        )),
        Action::CreateVnetLink { zone_id, link_name, vnet_id } => one(Request::put(
            format!("{zone_id}/virtualNetworkLinks/{link_name}"),
            v::PRIVATE_DNS,
            json!({ "location": "global", "properties": { "virtualNetwork": { "id": vnet_id }, "registrationEnabled": false } }),
            format!("link the zone to {vnet_id} (proposed)"),
        )),
        Action::CreatePeering { vnet_id, name, remote_vnet_id } => one(Request::put(
            format!("{vnet_id}/virtualNetworkPeerings/{name}"),
            v::NETWORK,
            json!({ "properties": {
                "remoteVirtualNetwork": { "id": remote_vnet_id },
                "allowVirtualNetworkAccess": true, "allowForwardedTraffic": true,
            } }),
            format!("peer to {remote_vnet_id} (proposed)"),
        )),
        Action::ApprovePrivateEndpointConnection { connection_id } => one(Request::put(
            connection_id.clone(),
            v::CONTAINER_REGISTRY,
            json!({ "properties": { "privateLinkServiceConnectionState": {
                "status": "Approved", "description": "approved (proposed)"
            } } }),
            format!("approve {connection_id} (proposed)"),
        )),
        Action::CreateRoleAssignment { scope, principal_id, principal_type, role_definition_guid, .. } => {
            let name = stable_guid(&[scope, principal_id, role_definition_guid, "proposal"]);
            one(Request::put(
                format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                v::AUTHORIZATION,
                json!({ "properties": {
                    "roleDefinitionId": format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_definition_guid}"),
                    "principalId": principal_id,
                    "principalType": principal_type,
                } }),
                format!("assign role {role_definition_guid} to {principal_id} (proposed)"),
            ))
        }
        _ => None,
    }
}

/// The typed changes that `requests` make to ARM resources: PUT creates, DELETE deletes, a
/// read-modify-write updates. Requests whose path still holds a placeholder (an id only Azure
/// knows), Graph requests and reads are left out.
pub fn changes(requests: &[Request]) -> Vec<Change> {
    requests
        .iter()
        .filter(|r| r.service == Service::Arm && !r.path.contains("${"))
        .filter_map(|r| match r.method {
            Method::Put => Some(Change::create(r.path.clone())),
            Method::Delete => Some(Change::delete(r.path.clone())),
            Method::Patch => Some(Change::update(r.path.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulldoctor::plan::ChangeOperation;

    #[test]
    fn deletes_and_updates_become_typed_changes_and_placeholders_do_not() {
        let reqs = vec![
            Request::delete(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/routeTables/t/routes/r",
                "x",
                "",
            ),
            Request::update("/subscriptions/s/r", "x", Edit::RemoveKey { pointer: "/a".into(), key: "b".into() }, ""),
            Request::put("/subscriptions/s/x/roleAssignments/${guid}", "x", json!({}), ""),
            Request::get("/subscriptions/s/r", "x", ""),
        ];
        let c = changes(&reqs);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].operation, ChangeOperation::Delete);
        assert_eq!(c[1].operation, ChangeOperation::Update);
    }

    #[test]
    fn kubernetes_and_manual_actions_are_not_arm_requests() {
        let a: Action =
            serde_json::from_value(json!({"action": "manual", "description": "look into it", "commands": []})).unwrap();
        assert!(requests_for(&a, "s").is_none());
    }
}
