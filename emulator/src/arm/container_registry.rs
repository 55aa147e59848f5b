//! `Microsoft.ContainerRegistry/registries`: server-set login server, defaults as ACR answers
//! them, admin credentials (`listCredentials`, `regenerateCredential`).

use axum::http::StatusCode;
use axum::response::Response;
use azure_model::container_registry::{
    RegenerateCredential, RegistryCredentials, RegistryPassword, RegistryProperties,
};
use serde_json::{Value, json};

use super::validate::{self, Provider, canonical};
use super::{ArmFailure, Ctx, arm_time, check_shape, default_field, last_segment, props, reply};
use crate::credential::Secret;
use crate::state::State;
use crate::state::store::key;

/// Enum-valued registry fields: `(JSON pointer, request path, enum)`.
const ENUMS: &[(&str, &str, &validate::Enum)] = &[
    ("/properties/publicNetworkAccess", "properties.publicNetworkAccess", &validate::PUBLIC_NETWORK_ACCESS),
    ("/properties/roleAssignmentMode", "properties.roleAssignmentMode", &validate::ROLE_ASSIGNMENT_MODE),
    ("/properties/networkRuleSet/defaultAction", "properties.networkRuleSet.defaultAction", &validate::DEFAULT_ACTION),
    ("/properties/networkRuleBypassOptions", "properties.networkRuleBypassOptions", &validate::NETWORK_RULE_BYPASS),
    ("/properties/zoneRedundancy", "properties.zoneRedundancy", &validate::ZONE_REDUNDANCY),
];

/// Checks enum values (canonicalising them) and the SKU, and what the SKU allows.
fn check_values(value: &mut Value, existing: Option<&Value>) -> Result<String, ArmFailure> {
    let sku = value
        .pointer("/sku/name")
        .filter(|s| !s.is_null())
        .cloned()
        .or_else(|| existing.and_then(|e| e.pointer("/sku/name")).cloned())
        .unwrap_or_else(|| json!("Premium"));
    if sku.as_str().is_some_and(|s| s.eq_ignore_ascii_case("Classic")) {
        // What ACR answers for the retired Classic tier (seen in hashicorp/terraform-provider-azurerm#17248).
        return Err(ArmFailure::bad_request(
            "ClassicSkuDeprecated",
            "Classic SKU is now deprecated. Please select a managed SKU. Kindly refer to docs for instructions: https://docs.microsoft.com/en-us/azure/container-registry/container-registry-upgrade",
        ));
    }
    let mut holder = json!({ "name": sku });
    canonical(&mut holder, "/name", "sku.name", &validate::REGISTRY_SKU_NAME, Provider::ContainerRegistry)?;
    let sku = holder["name"].as_str().unwrap_or("Premium").to_string();
    for (pointer, path, e) in ENUMS {
        canonical(value, pointer, path, e, Provider::ContainerRegistry)?;
    }
    let rules = value.pointer("/properties/networkRuleSet/ipRules").filter(|r| !r.is_null()).cloned();
    if let Some(rules) = &rules {
        let Some(list) = rules.as_array() else {
            return Err(ArmFailure::invalid_content("properties.networkRuleSet.ipRules must be an array"));
        };
        for i in 0..list.len() {
            canonical(
                value,
                &format!("/properties/networkRuleSet/ipRules/{i}/action"),
                &format!("properties.networkRuleSet.ipRules[{i}].action"),
                &validate::IP_RULE_ACTION,
                Provider::ContainerRegistry,
            )?;
        }
    }
    if sku != "Premium" {
        // Firewall rules and private-only access are Premium features. The codes and messages
        // are ACR's (seen in deployment logs quoted in public repositories).
        let denies = value
            .pointer("/properties/networkRuleSet/defaultAction")
            .and_then(Value::as_str)
            .is_some_and(|a| a == "Deny");
        let has_rules = rules.as_ref().and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        if denies || has_rules {
            return Err(ArmFailure::bad_request(
                "NetworkRuleNotSupported",
                format!("The requested feature virtual network rule is not supported for the SKU {sku}."),
            ));
        }
        if value.pointer("/properties/publicNetworkAccess").and_then(Value::as_str) == Some("Disabled") {
            return Err(ArmFailure::bad_request(
                "DisablingPublicNetworkAccessNotSupported",
                format!(
                    "Disabling public network access is not supported for the SKU {sku}. For more information, please visit https://aka.ms/acr/private-link."
                ),
            ));
        }
    }
    Ok(sku)
}

pub(super) fn prepare(ctx: &Ctx<'_>, value: &mut Value, existing: Option<&Value>) -> Result<(), ArmFailure> {
    let name = value.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if !(5..=50).contains(&name.len()) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ArmFailure::bad_request(
            "InvalidParameter",
            format!("The registry name '{name}' is invalid: it must be 5-50 alphanumeric characters."),
        ));
    }
    let sku = check_values(value, existing)?;
    value["sku"] = json!({"name": sku, "tier": sku});
    let created = existing
        .and_then(|e| e.pointer("/properties/creationDate").cloned())
        .unwrap_or_else(|| json!(arm_time(ctx.now)));
    let location = value["location"].as_str().unwrap_or_default().to_string();
    let p = props(value);
    p.insert("loginServer".into(), json!(format!("{}.azurecr.io", name.to_ascii_lowercase())));
    p.insert("creationDate".into(), created.clone());
    default_field(p, "adminUserEnabled", json!(false));
    default_field(p, "publicNetworkAccess", json!("Enabled"));
    default_field(p, "networkRuleSet", json!({"defaultAction": "Allow", "ipRules": []}));
    if let Some(set) = p.get_mut("networkRuleSet").and_then(Value::as_object_mut) {
        default_field(set, "defaultAction", json!("Allow"));
        default_field(set, "ipRules", json!([]));
    }
    if let Some(rules) = p.get_mut("networkRuleSet").and_then(|s| s.get_mut("ipRules")).and_then(Value::as_array_mut) {
        for r in rules.iter_mut().filter_map(Value::as_object_mut) {
            default_field(r, "action", json!("Allow"));
        }
    }
    default_field(p, "networkRuleBypassOptions", json!("AzureServices"));
    default_field(p, "networkRuleBypassAllowedForTasks", json!(false));
    default_field(p, "roleAssignmentMode", json!("LegacyRegistryPermissions"));
    default_field(p, "anonymousPullEnabled", json!(false));
    default_field(p, "dataEndpointEnabled", json!(false));
    default_field(p, "zoneRedundancy", json!("Disabled"));
    default_field(p, "privateEndpointConnections", json!([]));
    // Read-only fields as ACR's RegistryGet example shows them (defaults of a new registry).
    default_field(
        p,
        "policies",
        json!({
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "lastUpdatedTime": created, "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
        }),
    );
    default_field(p, "encryption", json!({"status": "disabled"}));
    p.insert("status".into(), Value::Null);
    let data_endpoint = p.get("dataEndpointEnabled").and_then(Value::as_bool).unwrap_or(false);
    let host_names = if data_endpoint {
        json!([format!("{}.{location}.data.azurecr.io", name.to_ascii_lowercase())])
    } else {
        json!([])
    };
    p.insert("dataEndpointHostNames".into(), host_names);
    check_shape::<azure_model::Resource<RegistryProperties>>(value)?;
    Ok(())
}

fn admin_disabled(name: &str) -> ArmFailure {
    ArmFailure::bad_request(
        "AdminUserDisabled",
        format!("The admin user is disabled for registry '{name}'. Enable it with adminUserEnabled=true first."),
    )
}

fn credentials(state: &State, id: &str) -> Result<RegistryCredentials, ArmFailure> {
    let registry = state.store.get(id).ok_or_else(|| ArmFailure::resource_not_found(id))?;
    let name = registry.get("name").and_then(Value::as_str).unwrap_or_else(|| last_segment(id)).to_string();
    if !registry.pointer("/properties/adminUserEnabled").and_then(Value::as_bool).unwrap_or(false) {
        return Err(admin_disabled(&name));
    }
    let passwords = state.admin_passwords.get(&key(id)).ok_or_else(|| admin_disabled(&name))?;
    Ok(RegistryCredentials {
        username: name,
        passwords: vec![
            RegistryPassword { name: "password".into(), value: passwords[0].expose().to_string() },
            RegistryPassword { name: "password2".into(), value: passwords[1].expose().to_string() },
        ],
    })
}

/// `POST .../listCredentials` (400 unless the admin user is enabled).
pub(super) fn list_credentials(state: &State, id: &str) -> Result<Response, ArmFailure> {
    let creds = credentials(state, id)?;
    tracing::info!(%id, "admin credentials listed");
    Ok(reply(StatusCode::OK, serde_json::to_value(creds).unwrap_or_default()))
}

/// `POST .../regenerateCredential` `{"name": "password" | "password2"}`.
pub(super) fn regenerate_credential(state: &mut State, id: &str, body: Value) -> Result<Response, ArmFailure> {
    let req: RegenerateCredential = check_shape(&body)?;
    let slot = match req.name.to_ascii_lowercase().as_str() {
        "password" => 0,
        "password2" => 1,
        other => {
            return Err(ArmFailure::bad_request(
                "InvalidParameter",
                format!("The password name '{other}' is invalid. Valid names are 'password' and 'password2'."),
            ));
        }
    };
    credentials(state, id)?;
    state.ensure_admin_passwords(id);
    if let Some(p) = state.admin_passwords.get_mut(&key(id)) {
        p[slot] = Secret::generate_admin_password();
    }
    tracing::info!(%id, password = %req.name, "admin password regenerated");
    list_credentials(state, id)
}

/// `PUT .../registries/R/privateEndpointConnections/NAME`: the registry owner approves or rejects
/// a connection. The state is kept on the private endpoint's connection (automatic or manual),
/// from which the registry's list is derived, so both sides show it, as in Azure.
pub(super) fn put_connection(state: &mut State, id: &str, body: Value) -> Result<Response, ArmFailure> {
    let registry = super::parent_id(id);
    let name = last_segment(id).to_string();
    if !state.store.contains(&registry) {
        return Err(ArmFailure::resource_not_found(&registry));
    }
    let current = connection_named(state, &registry, &name).ok_or_else(|| ArmFailure::resource_not_found(id))?;
    let wanted = body
        .pointer("/properties/privateLinkServiceConnectionState")
        .filter(|s| s.is_object())
        .ok_or_else(|| ArmFailure::invalid_content("properties.privateLinkServiceConnectionState is required"))?;
    let status = match wanted.get("status").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("approved") => "Approved",
        Some("rejected") => "Rejected",
        other => {
            return Err(ArmFailure::bad_request(
                "InvalidPrivateEndpointConnectionStatus",
                format!(
                    "The private endpoint connection status '{}' is invalid. Valid values are 'Approved' and 'Rejected'.",
                    other.unwrap_or_default()
                ),
            ));
        }
    };
    let description = wanted.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
    let pe_id =
        current.pointer("/properties/privateEndpoint/id").and_then(Value::as_str).unwrap_or_default().to_string();
    let pe = state.store.get_mut(&pe_id).ok_or_else(|| ArmFailure::resource_not_found(&pe_id))?;
    let mut updated = false;
    for list in ["privateLinkServiceConnections", "manualPrivateLinkServiceConnections"] {
        let Some(conns) = pe.pointer_mut(&format!("/properties/{list}")).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in conns.iter_mut().filter(|c| {
            c.pointer("/properties/privateLinkServiceId")
                .and_then(Value::as_str)
                .is_some_and(|t| azure_model::id::same_id(t, &registry))
        }) {
            props(c).insert(
                "privateLinkServiceConnectionState".into(),
                json!({"status": status, "description": description, "actionsRequired": "None"}),
            );
            updated = true;
        }
    }
    if !updated {
        return Err(ArmFailure::resource_not_found(id));
    }
    state.commit();
    let stored = connection_named(state, &registry, &name).unwrap_or(current);
    tracing::info!(%id, status, "private endpoint connection updated");
    Ok(reply(StatusCode::OK, stored))
}

/// The registry's (derived) private endpoint connection named `name`, case-insensitively.
fn connection_named(state: &State, registry: &str, name: &str) -> Option<Value> {
    let parent = state.store.get(registry)?;
    crate::state::derived::children(parent, "privateEndpointConnections")
        .iter()
        .find(|c| super::child_named(c, name))
        .cloned()
}
