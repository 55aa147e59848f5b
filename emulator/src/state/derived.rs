//! Fields ARM computes from other resources, refreshed after every mutation: a registry's
//! `privateEndpointConnections` (from the private endpoints that target it) and a private DNS
//! zone's record-set and link counts.

use azure_model::inventory::types;
use serde_json::{Value, json};

use super::store::{ResourceStore, id_of};

/// Inserts or replaces (by name, case-insensitively) an embedded child in `parent.properties[array]`.
pub(crate) fn upsert_child(parent: &mut Value, array: &str, child: Value) {
    let name = child.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(props) = parent.get_mut("properties").and_then(Value::as_object_mut) else { return };
    let list = props.entry(array).or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(items) = list.as_array_mut() else { return };
    match items
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name)))
    {
        Some(i) => items[i] = child,
        None => items.push(child),
    }
}

/// The embedded children `parent.properties[array]`.
pub(crate) fn children<'a>(parent: &'a Value, array: &str) -> &'a [Value] {
    parent.pointer(&format!("/properties/{array}")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn parent_of(id: &str) -> Option<String> {
    azure_model::ResourceId::parse(id).ok().and_then(|r| r.parent()).map(|p| p.as_str().to_string())
}

/// Recomputes the derived fields of every registry and private DNS zone.
pub(crate) fn refresh(store: &mut ResourceStore) {
    // (registry id lower, connection body)
    let mut connections: Vec<(String, Value)> = Vec::new();
    for pe in store.of_type(types::PRIVATE_ENDPOINT) {
        let pe_id = id_of(pe);
        let pe_name = pe.get("name").and_then(Value::as_str).unwrap_or_default();
        for list in ["privateLinkServiceConnections", "manualPrivateLinkServiceConnections"] {
            for conn in children(pe, list) {
                let target =
                    conn.pointer("/properties/privateLinkServiceId").and_then(Value::as_str).unwrap_or_default();
                let state = conn
                    .pointer("/properties/privateLinkServiceConnectionState")
                    .cloned()
                    .unwrap_or_else(|| json!({"status": "Pending"}));
                let mut state = state;
                if let Some(o) = state.as_object_mut() {
                    o.entry("actionsRequired").or_insert_with(|| json!("None"));
                }
                let name = format!("{pe_name}.{}", &uuid_like(pe_id));
                connections.push((
                    target.to_ascii_lowercase(),
                    json!({
                        "id": format!("{target}/privateEndpointConnections/{name}"),
                        "name": name,
                        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
                        "properties": {
                            "privateEndpoint": {"id": pe_id},
                            "privateLinkServiceConnectionState": state,
                            "provisioningState": "Succeeded",
                        }
                    }),
                ));
            }
        }
    }
    for id in store.ids_of_type(types::REGISTRY) {
        let lower = id.to_ascii_lowercase();
        let mine: Vec<Value> = connections.iter().filter(|(t, _)| *t == lower).map(|(_, c)| c.clone()).collect();
        if let Some(props) = store.get_mut(&id).and_then(|r| r.get_mut("properties")).and_then(Value::as_object_mut) {
            props.insert("privateEndpointConnections".into(), Value::Array(mine));
        }
    }

    let record_sets: Vec<String> = store
        .of_type(types::A_RECORD_SET)
        .filter_map(|v| parent_of(id_of(v)))
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let links: Vec<(String, bool)> = store
        .of_type(types::VIRTUAL_NETWORK_LINK)
        .filter_map(|v| {
            let reg = v.pointer("/properties/registrationEnabled").and_then(Value::as_bool).unwrap_or(false);
            parent_of(id_of(v)).map(|p| (p.to_ascii_lowercase(), reg))
        })
        .collect();
    for id in store.ids_of_type(types::PRIVATE_DNS_ZONE) {
        let lower = id.to_ascii_lowercase();
        let sets = record_sets.iter().filter(|z| **z == lower).count() + 1; // + the SOA record set
        let zone_links: Vec<bool> = links.iter().filter(|(z, _)| *z == lower).map(|(_, r)| *r).collect();
        if let Some(props) = store.get_mut(&id).and_then(|r| r.get_mut("properties")).and_then(Value::as_object_mut) {
            props.insert("numberOfRecordSets".into(), json!(sets));
            props.insert("numberOfVirtualNetworkLinks".into(), json!(zone_links.len()));
            props.insert(
                "numberOfVirtualNetworkLinksWithRegistration".into(),
                json!(zone_links.iter().filter(|r| **r).count()),
            );
            props.insert("maxNumberOfRecordSets".into(), json!(25000));
            props.insert("maxNumberOfVirtualNetworkLinks".into(), json!(1000));
            props.insert("maxNumberOfVirtualNetworkLinksWithRegistration".into(), json!(100));
        }
    }
}

/// A stable GUID-shaped suffix derived from an id (ACR names connections `{endpoint}.{guid}`).
fn uuid_like(id: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.to_ascii_lowercase().as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_gets_connections_and_zone_counts() {
        let mut s = ResourceStore::default();
        let acr = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr";
        s.insert(json!({"id": acr, "type": types::REGISTRY, "properties": {}}));
        s.insert(json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe", "name": "pe",
            "type": types::PRIVATE_ENDPOINT,
            "properties": {"privateLinkServiceConnections": [{"name": "c", "properties": {
                "privateLinkServiceId": acr.to_uppercase(), "groupIds": ["registry"],
                "privateLinkServiceConnectionState": {"status": "Approved"}}}]}
        }));
        let zone =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io";
        s.insert(json!({"id": zone, "type": types::PRIVATE_DNS_ZONE, "properties": {}}));
        s.insert(json!({"id": format!("{zone}/A/acr"), "type": types::A_RECORD_SET, "properties": {}}));
        s.insert(json!({"id": format!("{zone}/virtualNetworkLinks/l"), "type": types::VIRTUAL_NETWORK_LINK, "properties": {}}));
        refresh(&mut s);
        let conns = s.get(acr).unwrap().pointer("/properties/privateEndpointConnections").unwrap().as_array().unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].pointer("/properties/privateLinkServiceConnectionState/status").unwrap(), "Approved");
        assert_eq!(s.get(zone).unwrap().pointer("/properties/numberOfRecordSets").unwrap(), 2);
        assert_eq!(s.get(zone).unwrap().pointer("/properties/numberOfVirtualNetworkLinks").unwrap(), 1);
    }
}
