//! `Microsoft.ContainerRegistry/registries`: server-set login server, defaults as ACR answers
//! them, admin credentials (`listCredentials`, `regenerateCredential`).

use axum::http::StatusCode;
use axum::response::Response;
use azure_model::container_registry::{
    RegenerateCredential, RegistryCredentials, RegistryPassword, RegistryProperties,
};
use serde_json::{Value, json};

use super::{ArmFailure, Ctx, arm_time, check_shape, default_field, last_segment, props, reply};
use crate::credential::Secret;
use crate::state::State;
use crate::state::store::key;

pub(super) fn prepare(ctx: &Ctx<'_>, value: &mut Value, existing: Option<&Value>) -> Result<(), ArmFailure> {
    let name = value.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if !(5..=50).contains(&name.len()) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ArmFailure::bad_request(
            "InvalidParameter",
            format!("The registry name '{name}' is invalid: it must be 5-50 alphanumeric characters."),
        ));
    }
    let sku = value.get("sku").and_then(|s| s.get("name")).and_then(Value::as_str).unwrap_or("Premium").to_string();
    value["sku"] = json!({"name": sku, "tier": sku});
    let created = existing
        .and_then(|e| e.pointer("/properties/creationDate").cloned())
        .unwrap_or_else(|| json!(arm_time(ctx.now)));
    let p = props(value);
    p.insert("loginServer".into(), json!(format!("{}.azurecr.io", name.to_ascii_lowercase())));
    p.insert("creationDate".into(), created);
    default_field(p, "adminUserEnabled", json!(false));
    default_field(p, "publicNetworkAccess", json!("Enabled"));
    default_field(p, "networkRuleSet", json!({"defaultAction": "Allow", "ipRules": []}));
    if let Some(rules) = p.get_mut("networkRuleSet").and_then(|s| s.get_mut("ipRules")).and_then(Value::as_array_mut) {
        for r in rules.iter_mut().filter_map(Value::as_object_mut) {
            default_field(r, "action", json!("Allow"));
        }
    }
    default_field(p, "networkRuleBypassOptions", json!("AzureServices"));
    default_field(p, "roleAssignmentMode", json!("LegacyRegistryPermissions"));
    default_field(p, "anonymousPullEnabled", json!(false));
    default_field(p, "dataEndpointEnabled", json!(false));
    default_field(p, "zoneRedundancy", json!("Disabled"));
    default_field(p, "privateEndpointConnections", json!([]));
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
