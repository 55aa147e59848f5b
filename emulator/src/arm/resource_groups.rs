//! `Microsoft.Resources/resourceGroups`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use azure_model::inventory::types;
use serde_json::{Value, json};

use super::{ArmFailure, Ctx, catalog, collection, empty, merge_patch, normalise_location, reply};
use crate::state::State;
use crate::state::store::{id_of, type_of};

pub(super) fn list(state: &State) -> Response {
    collection(state.store.of_type(types::RESOURCE_GROUP).cloned().collect())
}

pub(super) fn get(state: &State, id: &str, name: &str) -> Result<Response, ArmFailure> {
    state
        .store
        .get(id)
        .map(|v| reply(StatusCode::OK, v.clone()))
        .ok_or_else(|| ArmFailure::resource_group_not_found(name))
}

/// `HEAD`: 204 when the group exists, 404 otherwise.
pub(super) fn exists(state: &State, id: &str) -> Response {
    empty(if state.store.contains(id) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
}

pub(super) fn put(
    _ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    name: &str,
    body: Value,
) -> Result<Response, ArmFailure> {
    let existing = state.store.get(id).cloned();
    let Value::Object(mut obj) = body else {
        return Err(ArmFailure::invalid_content("the request body must be a JSON object"));
    };
    let location = obj
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .map(normalise_location)
        .ok_or_else(|| {
            ArmFailure::bad_request("LocationRequired", "The location property is required for this definition.")
        })?;
    if let Some(e) = &existing
        && e.get("location").and_then(Value::as_str).is_some_and(|l| l != location)
    {
        return Err(ArmFailure::new(
            StatusCode::CONFLICT,
            "InvalidResourceGroupLocation",
            format!(
                "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                e["location"].as_str().unwrap_or_default()
            ),
        ));
    }
    let canonical = existing.as_ref().map(|e| id_of(e).to_string()).unwrap_or_else(|| id.to_string());
    let canonical_name = canonical.rsplit('/').next().unwrap_or(name).to_string();
    obj.insert("id".into(), json!(canonical));
    obj.insert("name".into(), json!(canonical_name));
    obj.insert("type".into(), json!(types::RESOURCE_GROUP));
    obj.insert("location".into(), json!(location));
    obj.insert("properties".into(), json!({"provisioningState": "Succeeded"}));
    state.store.insert(Value::Object(obj.clone()));
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    tracing::info!(id = %canonical, "resource group written");
    Ok(reply(status, Value::Object(obj)))
}

pub(super) fn patch(
    ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    name: &str,
    body: Value,
) -> Result<Response, ArmFailure> {
    let mut current = state.store.get(id).cloned().ok_or_else(|| ArmFailure::resource_group_not_found(name))?;
    merge_patch(&mut current, &body);
    put(ctx, state, id, name, current).map(|mut r| {
        *r.status_mut() = StatusCode::OK;
        r
    })
}

/// Deletes the group and everything in it (ARM answers 202 and works in the background; the
/// emulator finishes at once and answers 200).
pub(super) fn delete(ctx: &Ctx<'_>, state: &mut State, id: &str) -> Response {
    if !state.store.contains(id) {
        return ArmFailure::resource_group_not_found(super::last_segment(id)).into_response();
    }
    // Everything in the group goes with it, role assignments scoped inside it included.
    let removed = state.store.remove_within(id);
    for v in &removed {
        if let Some(spec) = catalog::lookup(type_of(v)) {
            super::after_delete(ctx, state, spec, v);
        }
    }
    tracing::info!(%id, resources = removed.len(), "resource group deleted");
    empty(StatusCode::OK)
}
