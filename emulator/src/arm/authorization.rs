//! `Microsoft.Authorization`: role assignments at any scope and role definitions (the built-ins
//! with their real ids and actions, plus custom definitions).

use axum::http::StatusCode;
use axum::response::Response;
use azure_model::authorization::{RoleAssignmentProperties, RoleDefinitionProperties};
use azure_model::inventory::types;
use serde_json::{Value, json};

use super::catalog::TypeSpec;
use super::{ArmFailure, Ctx, arm_time, check_shape, collection, empty, last_segment, props, reply};
use crate::roles;
use crate::state::State;
use crate::state::store::id_of;

fn is_assignment(spec: &TypeSpec) -> bool {
    spec.name == types::ROLE_ASSIGNMENT
}

/// Whether `inner` is `outer` or beneath it (case-insensitive scope test; `""` is the root).
pub(crate) fn scope_within(inner: &str, outer: &str) -> bool {
    let inner = inner.trim_end_matches('/').to_ascii_lowercase();
    let outer = outer.trim_end_matches('/').to_ascii_lowercase();
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// The scope a stored assignment applies at.
pub(crate) fn assignment_scope(v: &Value) -> String {
    v.pointer("/properties/scope").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
        let id = id_of(v);
        let cut = id.to_ascii_lowercase().rfind("/providers/microsoft.authorization/").unwrap_or(0);
        id[..cut].to_string()
    })
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn scope_exists(state: &State, scope: &str) -> Result<(), ArmFailure> {
    let segs: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    match segs.len() {
        0 | 2 => Ok(()),
        4 => match super::scope_group(scope) {
            Some((gid, rg)) if !state.store.contains(&gid) => Err(ArmFailure::resource_group_not_found(&rg)),
            _ => Ok(()),
        },
        _ => {
            super::require_group(state, scope)?;
            if super::lookup_any(state, scope).is_some() { Ok(()) } else { Err(ArmFailure::resource_not_found(scope)) }
        }
    }
}

pub(super) fn get(
    ctx: &Ctx<'_>,
    state: &State,
    id: &str,
    scope: &str,
    spec: &TypeSpec,
) -> Result<Response, ArmFailure> {
    let name = last_segment(id);
    if is_assignment(spec) {
        return state.store.get(id).map(|v| reply(StatusCode::OK, v.clone())).ok_or_else(|| {
            ArmFailure::new(
                StatusCode::NOT_FOUND,
                "RoleAssignmentNotFound",
                format!("The role assignment '{name}' is not found."),
            )
        });
    }
    definition(ctx, state, scope, name).map(|v| reply(StatusCode::OK, v)).ok_or_else(|| {
        ArmFailure::new(
            StatusCode::NOT_FOUND,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{name}' does not exist."),
        )
    })
}

/// A role definition by GUID: a built-in (with its id under `scope`) or a custom one.
fn definition(ctx: &Ctx<'_>, state: &State, scope: &str, guid: &str) -> Option<Value> {
    if let Some(role) = roles::built_in(guid) {
        // Below a subscription, ARM names built-ins by their subscription-scoped id.
        let segs = scope.split('/').filter(|s| !s.is_empty()).count();
        let scope = if segs > 2 { format!("/subscriptions/{}", ctx.subscription()) } else { scope.to_string() };
        return Some(roles::definition_body(role, &scope));
    }
    state.store.of_type(types::ROLE_DEFINITION).find(|v| last_segment(id_of(v)).eq_ignore_ascii_case(guid)).cloned()
}

pub(super) fn put(
    ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    scope: &str,
    spec: &TypeSpec,
    body: Value,
) -> Result<Response, ArmFailure> {
    scope_exists(state, scope)?;
    let name = last_segment(id).to_string();
    if !body.is_object() {
        return Err(ArmFailure::invalid_content("the request body must be a JSON object"));
    }
    if is_assignment(spec) {
        put_assignment(ctx, state, id, scope, &name, body)
    } else {
        put_definition(state, id, &name, body)
    }
}

fn put_assignment(
    ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    scope: &str,
    name: &str,
    mut body: Value,
) -> Result<Response, ArmFailure> {
    if !is_guid(name) {
        return Err(ArmFailure::bad_request(
            "InvalidRoleAssignmentId",
            format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
        ));
    }
    let requested: RoleAssignmentProperties = check_shape(body.get("properties").unwrap_or(&Value::Null))?;
    if roles::resolve(&state.store, &requested.role_definition_id).is_none() {
        return Err(ArmFailure::bad_request(
            "RoleDefinitionDoesNotExist",
            format!(
                "The specified role definition with ID '{}' does not exist.",
                last_segment(&requested.role_definition_id)
            ),
        ));
    }
    let same = |v: &Value| {
        let p: Option<RoleAssignmentProperties> =
            v.get("properties").and_then(|p| serde_json::from_value(p.clone()).ok());
        p.is_some_and(|p| {
            p.principal_id.eq_ignore_ascii_case(&requested.principal_id)
                && p.role_guid().eq_ignore_ascii_case(requested.role_guid())
                && azure_model::id::same_id(&assignment_scope(v), scope)
        })
    };
    let existing = state.store.get(id).cloned();
    if let Some(e) = &existing
        && !same(e)
    {
        return Err(ArmFailure::bad_request(
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        ));
    }
    if existing.is_none() && state.store.of_type(types::ROLE_ASSIGNMENT).any(same) {
        return Err(ArmFailure::new(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        ));
    }
    let canonical = existing.as_ref().map(|e| id_of(e).to_string()).unwrap_or_else(|| id.to_string());
    let now = arm_time(ctx.now);
    let created_on =
        existing.as_ref().and_then(|e| e.pointer("/properties/createdOn").cloned()).unwrap_or_else(|| json!(now));
    let created_by = existing
        .as_ref()
        .and_then(|e| e.pointer("/properties/createdBy").cloned())
        .unwrap_or_else(|| json!(ctx.caller));
    let obj = body.as_object_mut().expect("checked above");
    obj.insert("id".into(), json!(canonical));
    obj.insert("name".into(), json!(last_segment(&canonical)));
    obj.insert("type".into(), json!(types::ROLE_ASSIGNMENT));
    obj.remove("location");
    let p = props(&mut body);
    p.insert("scope".into(), json!(scope));
    super::default_field(p, "principalType", json!("ServicePrincipal"));
    super::default_field(p, "condition", Value::Null);
    super::default_field(p, "conditionVersion", Value::Null);
    p.insert("createdOn".into(), created_on);
    p.insert("updatedOn".into(), json!(now));
    p.insert("createdBy".into(), created_by);
    p.insert("updatedBy".into(), json!(ctx.caller));
    check_shape::<azure_model::Resource<RoleAssignmentProperties>>(&body)?;
    state.store.insert(body.clone());
    tracing::info!(id = %canonical, principal = %requested.principal_id, role = %requested.role_guid(), "role assignment written");
    Ok(reply(if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED }, body))
}

fn put_definition(state: &mut State, id: &str, name: &str, mut body: Value) -> Result<Response, ArmFailure> {
    if !is_guid(name) {
        return Err(ArmFailure::bad_request(
            "InvalidRoleDefinitionId",
            format!("The role definition ID '{name}' is not valid."),
        ));
    }
    if roles::built_in(name).is_some() {
        return Err(ArmFailure::bad_request(
            "RoleDefinitionUpdateNotPermitted",
            "Built-in role definitions cannot be changed.",
        ));
    }
    let existing = state
        .store
        .of_type(types::ROLE_DEFINITION)
        .find(|v| last_segment(id_of(v)).eq_ignore_ascii_case(name))
        .cloned();
    let canonical = existing.as_ref().map(|e| id_of(e).to_string()).unwrap_or_else(|| id.to_string());
    let obj = body.as_object_mut().expect("checked by the caller");
    obj.insert("id".into(), json!(canonical));
    obj.insert("name".into(), json!(name));
    obj.insert("type".into(), json!(types::ROLE_DEFINITION));
    super::default_field(props(&mut body), "type", json!("CustomRole"));
    check_shape::<azure_model::Resource<RoleDefinitionProperties>>(&body)?;
    if let Some(e) = &existing {
        state.store.remove(id_of(e));
    }
    state.store.insert(body.clone());
    Ok(reply(if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED }, body))
}

pub(super) fn delete(
    _ctx: &Ctx<'_>,
    state: &mut State,
    id: &str,
    _scope: &str,
    spec: &TypeSpec,
) -> Result<Response, ArmFailure> {
    if is_assignment(spec) {
        return Ok(match state.store.remove(id) {
            Some(v) => {
                tracing::info!(%id, "role assignment deleted");
                reply(StatusCode::OK, v)
            }
            None => empty(StatusCode::NO_CONTENT),
        });
    }
    let name = last_segment(id);
    if roles::built_in(name).is_some() {
        return Err(ArmFailure::bad_request(
            "RoleDefinitionUpdateNotPermitted",
            "Built-in role definitions cannot be deleted.",
        ));
    }
    let found = state
        .store
        .of_type(types::ROLE_DEFINITION)
        .find(|v| last_segment(id_of(v)).eq_ignore_ascii_case(name))
        .map(|v| id_of(v).to_string());
    Ok(match found.and_then(|f| state.store.remove(&f)) {
        Some(v) => reply(StatusCode::OK, v),
        None => empty(StatusCode::NO_CONTENT),
    })
}

/// A parsed `$filter` of the role assignment list.
#[derive(Debug, Default, PartialEq)]
struct AssignmentFilter {
    at_scope: bool,
    principal: Option<String>,
}

fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).map(str::to_string)
}

fn parse_filter(filter: &str) -> Result<AssignmentFilter, ArmFailure> {
    let mut f = AssignmentFilter::default();
    let lower = filter.to_ascii_lowercase();
    let mut rest = filter;
    let mut offset = 0;
    let mut terms = Vec::new();
    while let Some(pos) = lower[offset..].find(" and ") {
        terms.push(&rest[..pos]);
        rest = &rest[pos + 5..];
        offset += pos + 5;
    }
    terms.push(rest);
    for term in terms {
        let t = term.trim();
        let tl = t.to_ascii_lowercase();
        if tl == "atscope()" {
            f.at_scope = true;
        } else if let Some(v) = tl.strip_prefix("principalid eq ").and_then(|_| quoted(&t[15..])) {
            f.principal = Some(v);
        } else if tl.starts_with("assignedto(") && tl.ends_with(')') {
            f.principal = quoted(&t[11..t.len() - 1]);
        } else {
            return Err(ArmFailure::bad_request(
                "UnsupportedQuery",
                format!(
                    "The filter '{filter}' is not supported. Supported filters are atScope(), principalId eq '{{id}}' and assignedTo('{{id}}')."
                ),
            ));
        }
    }
    Ok(f)
}

pub(super) fn list(ctx: &Ctx<'_>, state: &State, scope: &str, spec: &TypeSpec) -> Result<Response, ArmFailure> {
    scope_exists(state, scope)?;
    if !is_assignment(spec) {
        let role_name = ctx.param("$filter").map(|f| {
            let t = f.trim();
            t.to_ascii_lowercase().strip_prefix("rolename eq ").and_then(|_| quoted(&t[12..])).unwrap_or_default()
        });
        let segs = scope.split('/').filter(|s| !s.is_empty()).count();
        let def_scope = if segs > 2 { format!("/subscriptions/{}", ctx.subscription()) } else { scope.to_string() };
        let mut values: Vec<Value> = roles::all_built_in().map(|r| roles::definition_body(r, &def_scope)).collect();
        values.extend(state.store.of_type(types::ROLE_DEFINITION).cloned());
        if let Some(name) = role_name {
            values.retain(|v| {
                v.pointer("/properties/roleName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name))
            });
        }
        return Ok(collection(values));
    }
    let filter = match ctx.param("$filter") {
        Some(f) if !f.trim().is_empty() => parse_filter(f)?,
        _ => AssignmentFilter::default(),
    };
    let values = state
        .store
        .of_type(types::ROLE_ASSIGNMENT)
        .filter(|v| {
            let at = assignment_scope(v);
            let above = scope_within(scope, &at);
            let below = scope_within(&at, scope);
            let scope_ok = if filter.at_scope { above } else { above || below };
            let principal_ok = filter.principal.as_deref().is_none_or(|p| {
                v.pointer("/properties/principalId").and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(p))
            });
            scope_ok && principal_ok
        })
        .cloned()
        .collect();
    Ok(collection(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_filter("atScope()").unwrap(), AssignmentFilter { at_scope: true, principal: None });
        assert_eq!(
            parse_filter("atScope() and principalId eq 'AbC'").unwrap(),
            AssignmentFilter { at_scope: true, principal: Some("AbC".into()) }
        );
        assert_eq!(parse_filter("assignedTo('x')").unwrap().principal.as_deref(), Some("x"));
        assert!(parse_filter("roleName eq 'x'").is_err());
        assert!(scope_within("/subscriptions/s/resourceGroups/rg/x", "/Subscriptions/S"));
        assert!(!scope_within("/subscriptions/s2", "/subscriptions/s"));
    }
}
