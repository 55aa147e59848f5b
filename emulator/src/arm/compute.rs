//! `Microsoft.Compute/virtualMachineScaleSets` (only identities matter) and
//! `Microsoft.ManagedIdentity/userAssignedIdentities`.

use azure_model::compute::VirtualMachineScaleSetProperties;
use azure_model::resource::ManagedServiceIdentity;
use serde_json::{Map, Value, json};

use super::{ArmFailure, Ctx, check_shape, default_field, props};
use crate::state::State;

/// Server fields of a user-assigned identity: `principalId`, `clientId`, `tenantId` (kept
/// across updates, as Azure keeps them).
pub(super) fn prepare_identity(ctx: &Ctx<'_>, value: &mut Value, existing: Option<&Value>) -> Result<(), ArmFailure> {
    let keep = |field: &str| existing.and_then(|e| e.pointer(&format!("/properties/{field}"))).cloned();
    let principal = keep("principalId").unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
    let client = keep("clientId").unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
    let p = props(value);
    p.insert("principalId".into(), principal);
    p.insert("clientId".into(), client);
    p.insert("tenantId".into(), json!(ctx.tenant()));
    Ok(())
}

/// Fills an `identity` block: system-assigned principal ids, and each user-assigned identity's
/// `principalId`/`clientId` from the identity resource (which must exist when it is in this
/// subscription).
pub(super) fn fill_identity(
    ctx: &Ctx<'_>,
    state: &State,
    identity: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    let Some(obj) = identity.as_object_mut() else {
        return Err(ArmFailure::invalid_content("`identity` must be an object"));
    };
    let users: Vec<String> = obj
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut filled = Map::new();
    for id in users {
        let in_subscription = azure_model::ResourceId::parse(&id)
            .ok()
            .and_then(|r| r.subscription().map(|s| s.eq_ignore_ascii_case(ctx.subscription())))
            .unwrap_or(false);
        let resource = state.store.get(&id);
        if resource.is_none() && in_subscription {
            return Err(ArmFailure::bad_request(
                "FailedIdentityOperation",
                format!("Identity operation failed: the user assigned identity '{id}' was not found."),
            ));
        }
        let field =
            |f: &str| resource.and_then(|r| r.pointer(&format!("/properties/{f}"))).cloned().unwrap_or(Value::Null);
        filled.insert(id.clone(), json!({"principalId": field("principalId"), "clientId": field("clientId")}));
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let system = kind.contains("systemassigned");
    let user = !filled.is_empty();
    let normalised = match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    };
    obj.insert("type".into(), json!(normalised));
    if user {
        obj.insert("userAssignedIdentities".into(), Value::Object(filled));
    } else {
        obj.remove("userAssignedIdentities");
    }
    if system {
        let keep = existing.and_then(|e| e.pointer("/identity/principalId")).cloned();
        obj.insert("principalId".into(), keep.unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string())));
        obj.insert("tenantId".into(), json!(ctx.tenant()));
    } else {
        obj.remove("principalId");
        obj.remove("tenantId");
    }
    check_shape::<ManagedServiceIdentity>(identity)?;
    Ok(())
}

pub(super) fn prepare_scale_set(
    ctx: &Ctx<'_>,
    state: &State,
    value: &mut Value,
    existing: Option<&Value>,
) -> Result<(), ArmFailure> {
    if let Some(identity) = value.get_mut("identity") {
        if identity.is_null() {
            value.as_object_mut().map(|o| o.remove("identity"));
        } else {
            fill_identity(ctx, state, identity, existing)?;
        }
    }
    let unique = existing
        .and_then(|e| e.pointer("/properties/uniqueId"))
        .cloned()
        .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
    let p = props(value);
    p.insert("uniqueId".into(), unique);
    default_field(p, "orchestrationMode", json!("Uniform"));
    check_shape::<azure_model::Resource<VirtualMachineScaleSetProperties>>(value)?;
    Ok(())
}
