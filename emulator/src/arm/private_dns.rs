//! `Microsoft.Network/privateDnsZones` with `virtualNetworkLinks` and `A` record sets.

use std::net::Ipv4Addr;

use axum::http::StatusCode;
use azure_model::id::same_id;
use azure_model::inventory::types;
use azure_model::network::{ARecordSetProperties, PrivateDnsZoneProperties, VirtualNetworkLinkProperties};
use serde_json::{Value, json};

use super::{ArmFailure, Ctx, check_shape, default_field, last_segment, parent_id, props};
use crate::state::State;
use crate::state::store::id_of;

pub(super) fn prepare_zone(value: &mut Value) -> Result<(), ArmFailure> {
    let name = value["name"].as_str().unwrap_or_default().to_string();
    if !name.contains('.') || name.starts_with('.') || name.ends_with('.') {
        return Err(ArmFailure::bad_request(
            "BadRequest",
            format!("The zone name '{name}' is invalid: a private DNS zone name needs at least two labels."),
        ));
    }
    check_shape::<azure_model::Resource<PrivateDnsZoneProperties>>(value)?;
    Ok(())
}

pub(super) fn prepare_link(
    ctx: &Ctx<'_>,
    state: &State,
    value: &mut Value,
    _existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let zone = parent_id(&id);
    let vnet = value
        .pointer("/properties/virtualNetwork/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ArmFailure::invalid_content("properties.virtualNetwork.id is required"))?;
    let in_subscription = azure_model::ResourceId::parse(&vnet)
        .ok()
        .and_then(|r| r.subscription().map(|s| s.eq_ignore_ascii_case(ctx.subscription())))
        .unwrap_or(false);
    if in_subscription && !state.store.contains(&vnet) {
        return Err(ArmFailure::bad_request("BadRequest", format!("Virtual network resource not found for '{vnet}'.")));
    }
    let duplicate = state.store.of_type(types::VIRTUAL_NETWORK_LINK).any(|l| {
        !same_id(id_of(l), &id)
            && same_id(&parent_id(id_of(l)), &zone)
            && l.pointer("/properties/virtualNetwork/id").and_then(Value::as_str).is_some_and(|v| same_id(v, &vnet))
    });
    if duplicate {
        return Err(ArmFailure::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("A virtual network link to '{vnet}' already exists in zone '{}'.", last_segment(&zone)),
        ));
    }
    let p = props(value);
    default_field(p, "registrationEnabled", json!(false));
    default_field(p, "resolutionPolicy", json!("Default"));
    p.insert("virtualNetworkLinkState".into(), json!("Completed"));
    check_shape::<azure_model::Resource<VirtualNetworkLinkProperties>>(value)?;
    Ok(())
}

pub(super) fn prepare_record_set(value: &mut Value) -> Result<(), ArmFailure> {
    let id = id_of(value).to_string();
    let zone = last_segment(&parent_id(&id)).to_ascii_lowercase();
    let name = value["name"].as_str().unwrap_or_default().to_string();
    let fqdn = if name == "@" { format!("{zone}.") } else { format!("{name}.{zone}.") };
    if let Some(records) = value.pointer("/properties/aRecords").and_then(Value::as_array) {
        for r in records {
            let ip = r.get("ipv4Address").and_then(Value::as_str).unwrap_or_default();
            if ip.parse::<Ipv4Addr>().is_err() {
                return Err(ArmFailure::bad_request("BadRequest", format!("The IPv4 address '{ip}' is invalid.")));
            }
        }
    }
    let p = props(value);
    default_field(p, "ttl", json!(3600));
    default_field(p, "aRecords", json!([]));
    p.insert("fqdn".into(), json!(fqdn));
    p.insert("isAutoRegistered".into(), json!(false));
    check_shape::<azure_model::Resource<ARecordSetProperties>>(value)?;
    Ok(())
}
